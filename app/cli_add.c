/*
 * cli_add.c: qwenrelay accounts add --provider P --label L
 *            [--base-url URL] [--models a,b] [--api-key-env VAR]
 *
 * Adds an API-key account.  The key never comes from argv (it would show
 * in ps and shell history): it is read from standard input (one line,
 * trailing newline stripped; echo off on a terminal) or from the named
 * environment variable.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "accounts.h"
#include "catalog.h"
#include "cfg.h"
#include "cli.h"
#include "provider.h"
#include "req.h"
#include "store.h"
#include "upstream.h"
#include "util.h"
#include "xmalloc.h"

#define API_KEY_MAX	4096

static int
add_usage(void)
{
	fprintf(stderr, "usage: qwenrelay accounts add --provider P [--label L] "
	    "[--base-url URL] [--models a,b] [--api-key-env VAR]\n"
	    "  the API key is read from standard input unless --api-key-env "
	    "names a variable\n  providers: %s\n", provider_names());
	return 2;
}

/* One line from stdin, echo off on a terminal; NULL on EOF. */
static char *
read_key(void)
{
	struct termios	 t, saved;
	int		 tty = isatty(STDIN_FILENO);
	char		*buf = xmalloc(API_KEY_MAX + 2), *p;

	if (tty) {
		fprintf(stderr, "API key: ");
		if (tcgetattr(STDIN_FILENO, &saved) == 0) {
			t = saved;
			t.c_lflag &= ~(tcflag_t)ECHO;
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
		} else
			tty = 0;
	}
	p = fgets(buf, API_KEY_MAX + 2, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		fprintf(stderr, "\n");
	}
	if (p == NULL) {
		free(buf);
		return NULL;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf;
}

/* Split "a,b" into a NULL-terminated list (caller frees each and the list). */
static char **
split_models(const char *s)
{
	char	**l = NULL, *dup = xstrdup(s), *tok, *save = NULL;
	size_t	  n = 0;

	for (tok = strtok_r(dup, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (*tok == '\0')
			continue;
		if (!model_id_valid(tok, strlen(tok))) {
			for (n = 0; l != NULL && l[n] != NULL; n++)
				free(l[n]);
			free(l);
			free(dup);
			return NULL;
		}
		l = xrealloc(l, (n + 2) * sizeof(*l));
		l[n++] = xstrdup(tok);
		l[n] = NULL;
	}
	free(dup);
	return l;
}

static int
key_ok(const char *k)
{
	size_t	i;

	for (i = 0; k[i] != '\0'; i++)
		if ((unsigned char)k[i] <= ' ' || (unsigned char)k[i] > '~')
			return 0;
	return i > 0 && i <= API_KEY_MAX;
}

/*
 * The new account's model catalog, fetched now; a failure is reported and
 * kept in the record, never fatal (the keeper and `accounts
 * refresh-models` try again).
 */
static void
add_catalog(const struct cfg *cfg, struct store *st,
    const unsigned char key[CRYPTO_SEAL_KEY_LEN], const char *id)
{
	struct server	srv;
	size_t		n;
	char		err[512];

	memset(&srv, 0, sizeof(srv));
	srv.cfg = cfg;
	srv.st = st;
	memcpy(srv.seal_key, key, sizeof(srv.seal_key));
	srv.have_key = 1;
	fprintf(stderr, "Fetching the model catalog (GET /models)...\n");
	if (catalog_refresh(&srv, id, &n, err, sizeof(err)) == 0)
		fprintf(stderr, "Catalog: %zu model%s (see 'qwenrelay accounts "
		    "show %s').\n", n, n == 1 ? "" : "s", id);
	else
		fprintf(stderr, "The model catalog could not be fetched: %s.\n"
		    "The account serves %s until 'qwenrelay accounts "
		    "refresh-models %s' succeeds (the pool's keeper retries "
		    "too); or pin its models with --models.\n", err,
		    "its preset's models (any model when the preset has "
		    "none)", id);
	upstream_free(srv.upstream);
	xwipe(srv.seal_key, sizeof(srv.seal_key));
}

int
cli_accounts_add(const struct cfg *cfg, int argc, char **argv)
{
	const char		*prov = NULL, *label = NULL, *base = NULL;
	const char		*models = NULL, *env = NULL;
	const struct provider	*p;
	struct account_new	 an;
	struct store		*st;
	unsigned char		 key[CRYPTO_SEAL_KEY_LEN];
	char			 err[512], id[24], dup[24], **ml = NULL;
	char			*apikey = NULL;
	size_t			 count = 0, i;
	int			 rc, ret = 1;

	for (i = 0; i < (size_t)argc; i++) {
		const char **dst = strcmp(argv[i], "--provider") == 0 ? &prov :
		    strcmp(argv[i], "--label") == 0 ? &label :
		    strcmp(argv[i], "--base-url") == 0 ? &base :
		    strcmp(argv[i], "--models") == 0 ? &models :
		    strcmp(argv[i], "--api-key-env") == 0 ? &env : NULL;
		if (dst == NULL || i + 1 >= (size_t)argc) {
			fprintf(stderr, "qwenrelay: accounts add: unknown or "
			    "incomplete argument %s\n", argv[i]);
			return add_usage();
		}
		*dst = argv[++i];
	}
	if (prov == NULL)
		return add_usage();
	if ((p = provider_find(prov)) == NULL || p->oauth) {
		fprintf(stderr, "qwenrelay: provider \"%s\" is not an API-key "
		    "provider; use one of: %s%s\n", prov, provider_names(),
		    p != NULL ? " (qwen-oauth accounts: qwenrelay accounts "
		    "login)" : "");
		return 2;
	}
	if (label != NULL && (strlen(label) > 64 || !valid_ident(label, 64))) {
		fprintf(stderr, "qwenrelay: --label: use 1-64 characters of "
		    "A-Z a-z 0-9 . _ -\n");
		return 2;
	}
	if (base == NULL && p->base_url == NULL) {
		fprintf(stderr, "qwenrelay: provider %s needs --base-url "
		    "(for example http://127.0.0.1:8000/v1)\n", prov);
		return 2;
	}
	if (base != NULL && !provider_url_allowed(cfg, base, err, sizeof(err))) {
		fprintf(stderr, "qwenrelay: --base-url: %s\n", err);
		return 2;
	}
	if (models != NULL && ((ml = split_models(models)) == NULL)) {
		fprintf(stderr, "qwenrelay: --models: give model names "
		    "(at most %d bytes each, no control characters) "
		    "separated by commas\n",
		    MODEL_ID_MAX);
		return 2;
	}

	if (env != NULL) {
		const char *v = getenv(env);
		apikey = v != NULL ? xstrdup(v) : NULL;
		if (apikey == NULL)
			fprintf(stderr, "qwenrelay: the variable %s named by "
			    "--api-key-env is not set\n", env);
	} else if ((apikey = read_key()) == NULL)
		fprintf(stderr, "qwenrelay: no API key on standard input\n");
	if (apikey == NULL)
		goto out;
	if (!key_ok(apikey)) {
		fprintf(stderr, "qwenrelay: the API key is empty or has spaces "
		    "or control characters\n");
		goto out;
	}

	if ((st = cli_store_open(cfg)) == NULL)
		goto out;
	if (store_account_count(st, &count) == 0 &&
	    (long long)count >= cfg->max_accounts) {
		account_limit_message(err, sizeof(err), count, cfg->max_accounts);
		fprintf(stderr, "qwenrelay: %s\n", err);
		store_close(st);
		goto out;
	}
	if (accounts_key_load(cfg, st, key, err, sizeof(err)) != 0) {
		fprintf(stderr, "qwenrelay: %s\n", err);
		store_close(st);
		goto out;
	}
	memset(&an, 0, sizeof(an));
	an.provider = prov;
	an.label = label;
	an.models = (const char *const *)ml;
	an.access = apikey;
	an.base_url = base;
	rc = account_create(st, cfg, key, &an, id, dup, &count);
	if (rc == 0 && ml == NULL)
		add_catalog(cfg, st, key, id);
	xwipe(key, sizeof(key));
	store_close(st);
	if (rc == -EEXIST) {
		printf("already present as %s\n", dup);
		ret = 0;
	} else if (rc == -EDQUOT) {
		account_limit_message(err, sizeof(err), count, cfg->max_accounts);
		fprintf(stderr, "qwenrelay: %s\n", err);
	} else if (rc != 0)
		fprintf(stderr, "qwenrelay: cannot add the account: %s\n",
		    store_strerror(rc));
	else {
		printf("%s\n", id);
		fprintf(stderr, "Added %s account %s%s%s.\n", prov, id,
		    label ? " " : "", label ? label : "");
		ret = 0;
	}
out:
	xfree_secret(apikey);
	xfree_strv(ml);
	return ret;
}
