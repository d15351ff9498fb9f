/*
 * main.c: qwenrelay, an OpenAI-compatible gateway over a pool of provider
 * accounts, served as FastCGI.
 *
 * With no arguments and a FastCGI listening socket on fd 0 (lighttpd
 * bin-path, Apache mod_fcgid) it is one worker.  With a subcommand it is
 * the operator's tool.  The config is loaded and checked first, for every
 * mode, so a typo fails before anything starts.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cfg.h"
#include "cli.h"
#include "log.h"
#include "pool.h"
#include "provider.h"
#include "util.h"
#include "worker.h"

static void
usage_to(FILE *f)
{
	fprintf(f,
	    "usage: qwenrelay                      (FastCGI worker; socket on fd 0)\n"
	    "       qwenrelay serve [--listen HOST:PORT|/path.sock] [--workers N]\n"
	    "       qwenrelay accounts login [--label NAME] | list [--json] | show ID\n"
	    "                | remove ID | enable ID | disable ID | import [FILE]\n"
	    "                | refresh-models ID\n"
	    "       qwenrelay accounts add --provider P [--label L] [--base-url URL]\n"
	    "                [--models a,b] [--api-key-env VAR]   (key on stdin)\n"
	    "                providers: %s\n"
	    "       qwenrelay refresh [--all]\n"
	    "       qwenrelay keys add NAME [--admin] [--rpm N] [--tpm N] [--models a,b]\n"
	    "                | list [--json] | revoke NAME\n"
	    "       qwenrelay config check\n"
	    "       qwenrelay version\n"
	    "config: $QWENRELAY_CONFIG, else %s beside this binary, else %s;\n"
	    "        QWENRELAY_<KEY> overrides.  Every command and key: man 8 qwenrelay\n",
	    provider_names(), CFG_BESIDE_NAME, CFG_DEFAULT_PATH);
}

static int
usage(void)
{
	usage_to(stderr);
	return 2;
}

/*
 * Was help asked for: "help", "--help" or "-h" as any argument before a
 * "--"?  (Checked before the config is read, so help works with a broken
 * or unreadable config.)  Not for "keys add -h": key and account names
 * never start with '-'.
 */
static int
wants_help(int argc, char **argv)
{
	int	i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0 ||
		    (i == 1 && strcmp(argv[i], "help") == 0))
			return 1;
	}
	return 0;
}

/* Is fd 0 a listening socket, as web servers hand FastCGI apps? */
static int
stdin_is_listener(void)
{
	struct stat	sb;
	int		acc = 0;
	socklen_t	len = sizeof(acc);

	if (fstat(STDIN_FILENO, &sb) == -1 || !S_ISSOCK(sb.st_mode))
		return 0;
	if (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_ACCEPTCONN, &acc,
	    &len) == -1)
		return 1;	/* not knowable; trust the socket */
	return acc != 0;
}

static int
serve(struct cfg *cfg, int argc, char **argv)
{
	const char	*listen = cfg->listen, *es;
	long long	 workers = cfg->workers;
	int		 i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			listen = argv[++i];
		else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
			workers = parse_int(argv[++i], 1, 256, &es);
			if (es != NULL) {
				fprintf(stderr, "qwenrelay: --workers: %s "
				    "(1 to 256)\n", es);
				return 2;
			}
		} else {
			fprintf(stderr, "qwenrelay: serve: unknown or incomplete "
			    "argument %s\n", argv[i]);
			return usage();
		}
	}
	return pool_run(cfg, listen, (int)workers);
}

/* serve decides about root itself (privdrop.c); a spawned worker cannot. */
static void
warn_startup(const struct cfg *cfg, int serving)
{
	if (cfg->auth_disabled)
		log_warn("auth_disabled is true: every route is open without "
		    "a key; keep this server on loopback only");
	if (geteuid() == 0 && !serving)
		log_warn("worker running as root: have the web server spawn "
		    "it as an unprivileged user, or use 'qwenrelay serve' "
		    "with \"user\"");
}

int
main(int argc, char **argv)
{
	struct cfg	 cfg;
	char		 err[512];
	int		 rc;

	if (argc == 2 && (strcmp(argv[1], "version") == 0 ||
	    strcmp(argv[1], "--version") == 0)) {
		printf("qwenrelay %s\n", PACKAGE_VERSION);
		return 0;
	}
	/* Help asked for goes to stdout and succeeds: qwenrelay X --help | less */
	if (wants_help(argc, argv)) {
		usage_to(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "serve") != 0 &&
	    strcmp(argv[1], "keys") != 0 && strcmp(argv[1], "config") != 0 &&
	    strcmp(argv[1], "accounts") != 0 && strcmp(argv[1], "refresh") != 0)
		return usage();
	if (argc < 2 && !stdin_is_listener()) {
		fprintf(stderr, "qwenrelay: no FastCGI socket on standard "
		    "input; run it from a web server, or use 'qwenrelay "
		    "serve'.\n");
		return usage();
	}

	if (cfg_load(&cfg, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "qwenrelay: config: %s\n", err);
		log_err("config: %s", err);
		cfg_free(&cfg);
		return 1;
	}
	if (log_open(cfg.log_level, cfg.log_file) != 0) {
		fprintf(stderr, "qwenrelay: cannot open log_file %s\n",
		    cfg.log_file);
		cfg_free(&cfg);
		return 1;
	}
	umask(077);

	if (argc < 2) {
		warn_startup(&cfg, 0);
		rc = worker_run(&cfg, STDIN_FILENO, NULL, 0, -1);
	} else if (strcmp(argv[1], "serve") == 0) {
		warn_startup(&cfg, 1);
		rc = serve(&cfg, argc - 2, argv + 2);
	} else if (strcmp(argv[1], "keys") == 0)
		rc = cli_keys(&cfg, argc - 2, argv + 2);
	else if (strcmp(argv[1], "accounts") == 0 && argc >= 3 &&
	    strcmp(argv[2], "add") == 0)
		rc = cli_accounts_add(&cfg, argc - 3, argv + 3);
	else if (strcmp(argv[1], "accounts") == 0 ||
	    strcmp(argv[1], "refresh") == 0) {
		/* These talk to Qwen; no fork follows, so init here. */
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = argv[1][0] == 'a' ?
		    cli_accounts(&cfg, argc - 2, argv + 2) :
		    cli_refresh(&cfg, argc - 2, argv + 2);
		curl_global_cleanup();
	}
	else
		rc = cli_config(&cfg, argc - 2, argv + 2);
	cfg_free(&cfg);
	log_close();
	return rc;
}
