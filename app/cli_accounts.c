/*
 * cli_accounts.c: qwenrelay accounts login|list|show|remove|enable|disable|
 * import, and qwenrelay refresh.
 *
 * The operator's side of the pool.  login runs the device flow in the
 * terminal (URL and user code on stdout, a countdown on stderr, Ctrl-C
 * cancels); import takes qwen-code's oauth_creds.json.  Both check the
 * account limit before any network call, and both recognise an account
 * by its refresh token, current or retired.  Nothing here prints a token.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "accounts.h"
#include "catalog.h"
#include "cfg.h"
#include "cli.h"
#include "oauth.h"
#include "provider.h"
#include "refresh.h"
#include "req.h"
#include "store.h"
#include "upstream.h"
#include "util.h"
#include "xmalloc.h"

#define CREDS_MAX_BYTES		(1 << 20)
#define LABEL_MAX		64

static volatile sig_atomic_t cli_cancelled;

static void
on_int(int sig)
{
	(void)sig;
	cli_cancelled = 1;
}

static int
accounts_usage(void)
{
	fprintf(stderr,
	    "usage: qwenrelay accounts login [--label NAME]\n"
	    "       qwenrelay accounts list [--json]\n"
	    "       qwenrelay accounts show ID\n"
	    "       qwenrelay accounts remove|enable|disable ID\n"
	    "       qwenrelay accounts refresh-models ID   (fetch its "
	    "upstream's GET /models)\n"
	    "       qwenrelay accounts import [FILE]   (default "
	    "$QWEN_HOME/oauth_creds.json or ~/.qwen/oauth_creds.json)\n");
	return 2;
}

static void	close_server(struct server *);

/* Does the key open the first account's token?  0 also when there is none. */
static int
key_opens_accounts(struct server *srv)
{
	struct account	**l;
	char		 *acc;
	size_t		  n, i;
	int		  rc = 0;

	if (store_account_list(srv->st, &l, &n) != 0)
		return 0;	/* reported by whatever reads next */
	for (i = 0; i < n; i++)
		if (l[i]->access_sealed != NULL) {
			rc = account_open_tokens(srv->seal_key, l[i], &acc,
			    NULL);
			xfree_secret(acc);
			break;
		}
	account_list_free(l, n);
	return rc;
}

/* Open the store and the sealing key into srv; prints why not. */
static int
open_server(const struct cfg *cfg, struct server *srv)
{
	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;
	srv->started_ms = now_ms();
	if ((srv->st = cli_store_open(cfg)) == NULL)
		return -1;
	if (accounts_key_load(cfg, srv->st, srv->seal_key, srv->key_err,
	    sizeof(srv->key_err)) != 0) {
		fprintf(stderr, "qwenrelay: sealing key: %s\n", srv->key_err);
		store_close(srv->st);
		srv->st = NULL;
		return -1;
	}
	srv->have_key = 1;
	if (key_opens_accounts(srv) != 0) {
		fprintf(stderr, "qwenrelay: %s/%s does not open the tokens in "
		    "this store (a different key file?); restore the one that "
		    "goes with it\n", cfg->state_dir, SEAL_KEY_FILE);
		close_server(srv);
		return -1;
	}
	return 0;
}

static void
close_server(struct server *srv)
{
	xwipe(srv->seal_key, sizeof(srv->seal_key));
	store_close(srv->st);
	srv->st = NULL;
}

/* 0 when another account fits; prints the limit sentence and returns 1. */
static int
check_limit(struct server *srv)
{
	char	msg[512];
	size_t	n = 0;
	int	rc;

	if ((rc = store_account_count(srv->st, &n)) != 0) {
		fprintf(stderr, "qwenrelay: %s\n", store_strerror(rc));
		return 1;
	}
	if ((long long)n >= srv->cfg->max_accounts) {
		account_limit_message(msg, sizeof(msg), n,
		    srv->cfg->max_accounts);
		fprintf(stderr, "qwenrelay: %s\n", msg);
		return 1;
	}
	return 0;
}

/* Create the account and report; the exit status. */
static int
add_account(struct server *srv, const struct account_new *an)
{
	char	id[24], dup[24], msg[512];
	size_t	count = 0;
	int	rc;

	rc = account_create(srv->st, srv->cfg, srv->seal_key, an, id, dup,
	    &count);
	if (rc == -EEXIST) {
		fprintf(stderr, "This account is already present as %s; "
		    "nothing added.\n", dup);
		printf("%s\n", dup);
		return 0;
	}
	if (rc == -EDQUOT) {
		account_limit_message(msg, sizeof(msg), count,
		    srv->cfg->max_accounts);
		fprintf(stderr, "qwenrelay: %s\n", msg);
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "qwenrelay: cannot store the account: %s\n",
		    store_strerror(rc));
		return 1;
	}
	fprintf(stderr, "Added account %s%s%s%s.\n", id,
	    an->label != NULL ? " (" : "", an->label != NULL ? an->label : "",
	    an->label != NULL ? ")" : "");
	printf("%s\n", id);
	return 0;
}

static int
valid_label(const char *s)
{
	size_t	i, n = strlen(s);

	if (n == 0 || n > LABEL_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* Sleep until mono time t, in 100 ms steps; 1 if cancelled. */
static int
wait_until(int64_t t, int64_t deadline)
{
	int64_t	last = -1, now, left;

	while ((now = mono_ms()) < t) {
		if (cli_cancelled)
			return 1;
		left = (deadline - now) / 1000;
		if (left != last) {
			fprintf(stderr, "\rwaiting for approval... %lld:%02lld "
			    "left ", (long long)(left / 60),
			    (long long)(left % 60));
			last = left;
		}
		usleep(100 * 1000);
	}
	return cli_cancelled ? 1 : 0;
}

static int
accounts_login(const struct cfg *cfg, const char *label)
{
	struct server		 srv;
	struct sigaction	 sa, old;
	struct oauth_device	 d;
	struct oauth_tokens	 t;
	struct account_new	 an;
	enum oauth_result	 res;
	char			*verifier = NULL, *challenge = NULL;
	char			 err[512];
	int64_t			 deadline, interval, next, left;
	int			 rc = 1;

	if (label != NULL && !valid_label(label)) {
		fprintf(stderr, "qwenrelay: --label: 1 to %d printable "
		    "characters\n", LABEL_MAX);
		return 2;
	}
	if (open_server(cfg, &srv) != 0)
		return 1;
	if (check_limit(&srv) != 0) {
		close_server(&srv);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_int;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);

	verifier = oauth_pkce_verifier();
	if (verifier == NULL) {
		fprintf(stderr, "qwenrelay: no random bytes available\n");
		goto out;
	}
	challenge = oauth_pkce_challenge(verifier);
	res = oauth_device_start(cfg, challenge, &d, err, sizeof(err));
	if (res != OAUTH_OK) {
		fprintf(stderr, "qwenrelay: cannot start the login at %s: "
		    "%s\nCheck qwen_oauth_base_url and the network, then try "
		    "again.\n", cfg->qwen_oauth_base_url, err);
		goto out;
	}
	printf("Open this URL in a browser and approve the login:\n  %s\n"
	    "User code: %s\n", d.verification_uri_complete, d.user_code);
	fflush(stdout);
	interval = d.interval > 0 ? d.interval * 1000 :
	    OAUTH_DEFAULT_INTERVAL * 1000;
	deadline = mono_ms() + d.expires_in * 1000;
	next = mono_ms() + interval;
	for (;;) {
		if (wait_until(next < deadline ? next : deadline, deadline)) {
			fprintf(stderr, "\ncancelled\n");
			rc = 130;
			break;
		}
		if (mono_ms() >= deadline) {
			fprintf(stderr, "\nThe code expired before it was "
			    "approved; run 'qwenrelay accounts login' again.\n");
			break;
		}
		res = oauth_device_poll(cfg, d.device_code, verifier, &t, err,
		    sizeof(err));
		if (cli_cancelled) {
			oauth_tokens_free(&t);
			fprintf(stderr, "\ncancelled\n");
			rc = 130;
			break;
		}
		if (res == OAUTH_PENDING || res == OAUTH_TRANSIENT) {
			if (res == OAUTH_TRANSIENT)
				fprintf(stderr, "\n(poll failed, retrying: "
				    "%s)\n", err);
			next = mono_ms() + interval;
			continue;
		}
		if (res == OAUTH_SLOW_DOWN) {
			interval = interval * 3 / 2;
			if (interval > OAUTH_MAX_INTERVAL_MS)
				interval = OAUTH_MAX_INTERVAL_MS;
			next = mono_ms() + interval;
			continue;
		}
		if (res != OAUTH_OK) {
			fprintf(stderr, "\nqwenrelay: login failed: %s\n", err);
			break;
		}
		left = (deadline - mono_ms()) / 1000;
		(void)left;
		fprintf(stderr, "\nApproved.\n");
		memset(&an, 0, sizeof(an));
		an.provider = "qwen-oauth";
		an.label = label;
		an.access = t.access_token;
		an.refresh = t.refresh_token;
		an.base_url = t.resource_url;
		an.expires_at = now_ms() + t.expires_in * 1000;
		if (t.refresh_token == NULL) {
			fprintf(stderr, "qwenrelay: the token answer has no "
			    "refresh_token; cannot keep this account\n");
			oauth_tokens_free(&t);
			break;
		}
		rc = add_account(&srv, &an);
		oauth_tokens_free(&t);
		break;
	}
	oauth_device_free(&d);
out:
	sigaction(SIGINT, &old, NULL);
	xfree_secret(verifier);
	free(challenge);
	close_server(&srv);
	return rc;
}

static int
accounts_list(const struct cfg *cfg, int json)
{
	struct store	*st;
	json_object	*arr, *o;
	size_t		 i, n;
	char		 exp[32];
	int		 rc;

	if ((st = cli_store_open(cfg)) == NULL)
		return 1;
	rc = accounts_list_json(st, &arr);
	store_close(st);
	if (rc != 0) {
		fprintf(stderr, "qwenrelay: %s\n", store_strerror(rc));
		return 1;
	}
	n = json_object_array_length(arr);
	if (json)
		printf("%s\n", json_object_to_json_string_ext(arr,
		    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	else if (n == 0)
		printf("No accounts. Add one: qwenrelay accounts login "
		    "(or accounts import)\n");
	else {
		printf("%-10s %-18s %-16s %-11s %-20s %8s  %s\n", "ID",
		    "PROVIDER", "LABEL", "STATUS", "EXPIRES", "REQUESTS",
		    "REASON");
		for (i = 0; i < n; i++) {
			json_object *v;
			o = json_object_array_get_idx(arr, i);
			json_object_object_get_ex(o, "expires_at", &v);
			fmt_utc(json_object_get_int64(v), exp, sizeof(exp));
			json_object_object_get_ex(o, "total_requests", &v);
			printf("%-10s %-18s %-16.16s %-11s %-20s %8lld  %s\n",
			    json_object_get_string(json_object_object_get(o,
			    "id")),
			    json_object_get_string(json_object_object_get(o,
			    "provider")),
			    json_object_get_string(json_object_object_get(o,
			    "label")),
			    json_object_get_string(json_object_object_get(o,
			    "status")), exp,
			    (long long)json_object_get_int64(v),
			    json_object_object_get(o, "status_reason") ?
			    json_object_get_string(json_object_object_get(o,
			    "status_reason")) : "");
		}
	}
	json_object_put(arr);
	return 0;
}

static int
accounts_show(const struct cfg *cfg, const char *id)
{
	struct store	*st;
	struct account	*a;
	struct mark	*m = NULL;
	size_t		 nm = 0;
	json_object	*o;
	int		 rc;

	if ((st = cli_store_open(cfg)) == NULL)
		return 1;
	rc = store_account_get(st, id, &a);
	if (rc == 0)
		rc = store_mark_list(st, &m, &nm);
	store_close(st);
	if (rc == -ENOENT) {
		fprintf(stderr, "qwenrelay: no account %s (see qwenrelay "
		    "accounts list)\n", id);
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "qwenrelay: %s\n", store_strerror(rc));
		return 1;
	}
	o = account_json(a, m, nm);
	printf("%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	account_free(a);
	mark_list_free(m, nm);
	return 0;
}

/* accounts refresh-models ID: fetch and store the catalog, say what came. */
static int
accounts_refresh_models(const struct cfg *cfg, const char *id)
{
	struct server	 srv;
	struct account	*a = NULL;
	size_t		 n, i;
	char		 err[512];
	int		 rc;

	if (open_server(cfg, &srv) != 0)
		return 1;
	fprintf(stderr, "Fetching the model catalog of %s (GET /models)...\n",
	    id);
	rc = catalog_refresh(&srv, id, &n, err, sizeof(err));
	if (rc == -ENOENT)
		fprintf(stderr, "qwenrelay: no account %s (see qwenrelay "
		    "accounts list)\n", id);
	else if (rc != 0)
		fprintf(stderr, "qwenrelay: the catalog could not be fetched: "
		    "%s.\nThe account keeps serving what it served; check its "
		    "base URL and key, then try again.\n", err);
	else if (store_account_get_bare(srv.st, id, &a) == 0) {
		for (i = 0; a->catalog != NULL && a->catalog[i] != NULL; i++)
			printf("%s\n", a->catalog[i]);
		fprintf(stderr, "Catalog: %zu model%s.%s\n", n, n == 1 ? "" :
		    "s", a->models_pinned ? " The account's --models still "
		    "decide what it serves." : "");
		account_free(a);
	}
	upstream_free(srv.upstream);
	srv.upstream = NULL;
	close_server(&srv);
	return rc == 0 ? 0 : 1;
}

static int
set_status_fn(struct account *a, void *arg)
{
	const char	*want = arg;

	if (strcmp(a->status, want) == 0)
		return 1;
	if (strcmp(want, "active") == 0 &&
	    strcmp(a->status, "needs_login") == 0)
		return -EKEYREJECTED;
	free(a->status);
	a->status = xstrdup(want);
	free(a->status_reason);
	a->status_reason = strcmp(want, "disabled") == 0 ?
	    xstrdup("disabled by the operator") : NULL;
	return 0;
}

static int
accounts_set(const struct cfg *cfg, const char *verb, const char *id)
{
	struct store	*st;
	int		 rc;

	if ((st = cli_store_open(cfg)) == NULL)
		return 1;
	if (strcmp(verb, "remove") == 0)
		rc = store_account_del(st, id);
	else
		rc = store_account_update(st, id, set_status_fn,
		    (void *)(uintptr_t)(strcmp(verb, "enable") == 0 ?
		    "active" : "disabled"));
	store_close(st);
	if (rc == -ENOENT) {
		fprintf(stderr, "qwenrelay: no account %s (see qwenrelay "
		    "accounts list)\n", id);
		return 1;
	}
	if (rc == -EKEYREJECTED) {
		fprintf(stderr, "qwenrelay: account %s needs a new login; "
		    "remove it and run 'qwenrelay accounts login'\n", id);
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "qwenrelay: %s\n", store_strerror(rc));
		return 1;
	}
	fprintf(stderr, "%s account %s.\n", strcmp(verb, "remove") == 0 ?
	    "Removed" : strcmp(verb, "enable") == 0 ? "Enabled" : "Disabled",
	    id);
	return 0;
}

/* Read a whole small file; NULL with a sentence in err. */
static char *
read_small(const char *path, char *err, size_t errlen)
{
	struct stat	 sb;
	char		*buf;
	ssize_t		 r;
	size_t		 got = 0;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > CREDS_MAX_BYTES) {
		snprintf(err, errlen, "%s is not a regular file under 1 MiB",
		    path);
		close(fd);
		return NULL;
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	while (got < (size_t)sb.st_size &&
	    (r = read(fd, buf + got, (size_t)sb.st_size - got)) > 0)
		got += (size_t)r;
	close(fd);
	buf[got] = '\0';
	return buf;
}

static const char *
creds_str(json_object *o, const char *k)
{
	json_object	*v;
	const char	*s;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	return *s != '\0' ? s : NULL;
}

static int
accounts_import(const struct cfg *cfg, const char *file, const char *label)
{
	struct server		 srv;
	struct account_new	 an;
	json_object		*o, *v;
	unsigned char		 h[CRYPTO_SHA256_LEN];
	char			*path, *text, err[512], dup[24];
	const char		*home;
	int			 rc;

	if (file != NULL)
		path = xstrdup(file);
	else if ((home = getenv("QWEN_HOME")) != NULL && *home != '\0')
		path = xasprintf("%s/oauth_creds.json", home);
	else if ((home = getenv("HOME")) != NULL && *home != '\0')
		path = xasprintf("%s/.qwen/oauth_creds.json", home);
	else {
		fprintf(stderr, "qwenrelay: no FILE given and neither "
		    "QWEN_HOME nor HOME is set\n");
		return 2;
	}
	if ((text = read_small(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "qwenrelay: %s\n", err);
		free(path);
		return 1;
	}
	o = json_tokener_parse(text);
	xfree_secret(text);
	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    creds_str(o, "access_token") == NULL ||
	    creds_str(o, "refresh_token") == NULL ||
	    creds_str(o, "token_type") == NULL ||
	    !json_object_object_get_ex(o, "expiry_date", &v) ||
	    !(json_object_is_type(v, json_type_int) ||
	    json_object_is_type(v, json_type_double))) {
		fprintf(stderr, "qwenrelay: %s is not a qwen-code credentials "
		    "file (it needs access_token, refresh_token, token_type "
		    "and expiry_date in ms)\n", path);
		json_object_put(o);
		free(path);
		return 1;
	}
	if (open_server(cfg, &srv) != 0) {
		json_object_put(o);
		free(path);
		return 1;
	}
	/* Known (current or rotated away from)?  Then say so and stop. */
	account_token_hash(creds_str(o, "refresh_token"), h);
	if (store_seen_find(srv.st, h, dup) == 0) {
		fprintf(stderr, "This account is already present as %s; "
		    "nothing added.\n", dup);
		printf("%s\n", dup);
		rc = 0;
	} else if ((rc = check_limit(&srv)) == 0) {
		memset(&an, 0, sizeof(an));
		an.provider = "qwen-oauth";
		an.label = label;
		an.access = creds_str(o, "access_token");
		an.refresh = creds_str(o, "refresh_token");
		an.base_url = creds_str(o, "resource_url");
		an.expires_at = json_object_get_int64(v);
		rc = add_account(&srv, &an);
	}
	json_object_put(o);
	free(path);
	close_server(&srv);
	return rc;
}

int
cli_accounts(const struct cfg *cfg, int argc, char **argv)
{
	const char	*arg = NULL, *label = NULL;
	int		 json = 0, i;

	if (argc < 1)
		return accounts_usage();
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--label") == 0 && i + 1 < argc)
			label = argv[++i];
		else if (argv[i][0] == '-' || arg != NULL) {
			fprintf(stderr, "qwenrelay: accounts %s: unknown or "
			    "incomplete argument %s\n", argv[0], argv[i]);
			return accounts_usage();
		}
		else
			arg = argv[i];
	}
	if (strcmp(argv[0], "login") == 0 && arg == NULL && !json)
		return accounts_login(cfg, label);
	if (strcmp(argv[0], "list") == 0 && arg == NULL && label == NULL)
		return accounts_list(cfg, json);
	if (strcmp(argv[0], "import") == 0 && !json) {
		if (label != NULL && !valid_label(label))
			return accounts_usage();
		return accounts_import(cfg, arg, label);
	}
	if (arg == NULL || json || label != NULL)
		return accounts_usage();
	if (!valid_ident(arg, 23)) {
		fprintf(stderr, "qwenrelay: \"%s\" is not an account id (see "
		    "qwenrelay accounts list)\n", arg);
		return 1;
	}
	if (strcmp(argv[0], "show") == 0)
		return accounts_show(cfg, arg);
	if (strcmp(argv[0], "refresh-models") == 0)
		return accounts_refresh_models(cfg, arg);
	if (strcmp(argv[0], "remove") == 0 || strcmp(argv[0], "enable") == 0 ||
	    strcmp(argv[0], "disable") == 0)
		return accounts_set(cfg, argv[0], arg);
	return accounts_usage();
}

int
cli_refresh(const struct cfg *cfg, int argc, char **argv)
{
	struct server		  srv;
	struct account		**l, *a;
	const struct provider	 *p;
	size_t			  n, i;
	char			 *access, err[512], exp[32];
	int			  all = 0, failed = 0, rc;
	int64_t			  before;

	if (argc == 1 && strcmp(argv[0], "--all") == 0)
		all = 1;
	else if (argc != 0) {
		fprintf(stderr, "usage: qwenrelay refresh [--all]\n");
		return 2;
	}
	if (open_server(cfg, &srv) != 0)
		return 1;
	if ((rc = store_account_list(srv.st, &l, &n)) != 0) {
		fprintf(stderr, "qwenrelay: %s\n", store_strerror(rc));
		close_server(&srv);
		return 1;
	}
	for (i = 0; i < n; i++) {
		p = provider_find(l[i]->provider);
		if (p == NULL || !p->oauth || l[i]->state != ACCT_ACTIVE)
			continue;
		before = l[i]->expires_at;
		rc = refresh_ensure(&srv, l[i]->id, all ? REFRESH_FORCE :
		    REFRESH_BLOCKING, &access, err, sizeof(err));
		xfree_secret(access);
		a = NULL;
		if (store_account_get(srv.st, l[i]->id, &a) != 0)
			a = NULL;
		fmt_utc(a != NULL ? a->expires_at : before, exp, sizeof(exp));
		if (rc == 0)
			printf("%s\t%s\t%s\texpires %s\n", l[i]->id,
			    l[i]->label, a != NULL && a->expires_at != before ?
			    "refreshed" : "fresh", exp);
		else {
			printf("%s\t%s\t%s\t%s\n", l[i]->id, l[i]->label,
			    rc == -EKEYREJECTED ? "needs_login" : "failed",
			    err);
			failed = 1;
		}
		fflush(stdout);
		account_free(a);
	}
	account_list_free(l, n);
	/* Where no keeper runs (lighttpd, mod_fcgid), cron does its work. */
	if ((rc = catalog_keeper_pass(&srv)) > 0)
		printf("model catalogs refreshed: %d\n", rc);
	upstream_free(srv.upstream);
	srv.upstream = NULL;
	close_server(&srv);
	return failed ? 1 : 0;
}
