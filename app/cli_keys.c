/*
 * cli_keys.c: qwenrelay keys add NAME [--admin] | list [--json] | revoke NAME
 *
 * A key is "qr-" and 43 base64url characters (32 random bytes).  It is
 * printed once, alone on its line on stdout, so scripts can capture it;
 * the store keeps only its SHA-256.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cfg.h"
#include "cli.h"
#include "crypto.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

#define KEY_RANDOM_BYTES	32
#define KEY_NAME_MAX		64

static int
keys_usage(void)
{
	fprintf(stderr, "usage: qwenrelay keys add NAME [--admin]\n"
	    "       qwenrelay keys list [--json]\n"
	    "       qwenrelay keys revoke NAME\n");
	return 2;
}

struct store *
cli_store_open(const struct cfg *cfg)
{
	struct store_opts	 so;
	struct store		*st;
	char			 err[1024];
	int			 rc;

	so.map_size_mb = (size_t)cfg->store_map_size_mb;
	so.max_readers = 512;
	if ((rc = store_open(&st, cfg->state_dir, &so, err,
	    sizeof(err))) != 0) {
		if (rc == -EACCES || rc == -EPERM || rc == -EROFS) {
			cfg_state_hint(cfg, rc, err, sizeof(err));
			fprintf(stderr, "qwenrelay: %s\n", err);
		} else
			fprintf(stderr, "qwenrelay: %s\n(state_dir is %s; set "
			    "QWENRELAY_STATE_DIR or state_dir in the config)\n",
			    err, cfg->state_dir);
		return NULL;
	}
	return st;
}

static int
keys_add(struct store *st, const char *name, int admin)
{
	unsigned char	 raw[KEY_RANDOM_BYTES], h[CRYPTO_SHA256_LEN];
	char		*b64, *key;
	int		 rc;

	if (!valid_ident(name, KEY_NAME_MAX)) {
		fprintf(stderr, "qwenrelay: key name \"%s\" is not valid: use "
		    "1-%d characters of A-Z a-z 0-9 . _ -\n", name,
		    KEY_NAME_MAX);
		return 1;
	}
	if (crypto_random(raw, sizeof(raw)) != 0) {
		fprintf(stderr, "qwenrelay: no random bytes available\n");
		return 1;
	}
	b64 = b64url_encode(raw, sizeof(raw));
	xwipe(raw, sizeof(raw));
	key = xasprintf("qr-%s", b64);
	xfree_secret(b64);
	crypto_sha256(key, strlen(key), h);
	rc = store_key_add(st, h, name, admin, now_ms());
	if (rc == -EEXIST) {
		fprintf(stderr, "qwenrelay: a key named \"%s\" exists; revoke "
		    "it first (qwenrelay keys revoke %s) or pick another "
		    "name\n", name, name);
		xfree_secret(key);
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "qwenrelay: cannot store the key: %s\n",
		    store_strerror(rc));
		xfree_secret(key);
		return 1;
	}
	printf("%s\n", key);
	fflush(stdout);
	fprintf(stderr, "Created %skey \"%s\". It is shown only this once: "
	    "keep it now.\n", admin ? "admin " : "", name);
	xfree_secret(key);
	return 0;
}

/* Tokens and errors of the requests relayed for this key. */
static void
add_usage(struct store *st, json_object *o, const char *name)
{
	static const char *const fields[] = { "prompt_tokens",
	    "completion_tokens", "errors", "errors_by_class" };
	json_object	*u, *v;
	char		*s;
	size_t		 i;

	if (store_usage_get(st, 'c', name, &s) != 0)
		return;
	if ((u = json_tokener_parse(s)) != NULL)
		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (json_object_object_get_ex(u, fields[i], &v))
				json_object_object_add(o, fields[i],
				    json_object_get(v));
	json_object_put(u);
	free(s);
}

static int
keys_list(struct store *st, int json)
{
	struct client_key	**l;
	size_t			  n, i;
	char			  c[32], u[32];
	int			  rc;

	if ((rc = store_key_list(st, &l, &n)) != 0) {
		fprintf(stderr, "qwenrelay: %s\n", store_strerror(rc));
		return 1;
	}
	if (json) {
		json_object *a = json_object_new_array();
		for (i = 0; i < n; i++) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "name",
			    json_object_new_string(l[i]->name));
			json_object_object_add(o, "admin",
			    json_object_new_boolean(l[i]->admin));
			json_object_object_add(o, "created_at",
			    json_object_new_int64(l[i]->created_ms));
			json_object_object_add(o, "last_used_at",
			    json_object_new_int64(l[i]->last_used_ms));
			json_object_object_add(o, "requests",
			    json_object_new_int64(l[i]->requests));
			add_usage(st, o, l[i]->name);
			json_object_array_add(a, o);
		}
		printf("%s\n", json_object_to_json_string_ext(a,
		    JSON_C_TO_STRING_PRETTY));
		json_object_put(a);
	} else if (n == 0)
		printf("No keys. Create one: qwenrelay keys add NAME\n");
	else {
		printf("%-24s %-5s %-20s %-20s %s\n", "NAME", "ADMIN",
		    "CREATED", "LAST USED", "REQUESTS");
		for (i = 0; i < n; i++) {
			fmt_utc(l[i]->created_ms, c, sizeof(c));
			fmt_utc(l[i]->last_used_ms, u, sizeof(u));
			printf("%-24s %-5s %-20s %-20s %lld\n", l[i]->name,
			    l[i]->admin ? "yes" : "no", c, u,
			    (long long)l[i]->requests);
		}
	}
	client_key_list_free(l, n);
	return 0;
}

int
cli_keys(const struct cfg *cfg, int argc, char **argv)
{
	struct store	*st;
	int		 rc, admin = 0, json = 0, i;
	const char	*name = NULL;

	if (argc < 1)
		return keys_usage();
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--admin") == 0)
			admin = 1;
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (argv[i][0] == '-' || name != NULL)
			return keys_usage();
		else
			name = argv[i];
	}
	if (strcmp(argv[0], "add") == 0) {
		if (name == NULL || json)
			return keys_usage();
	} else if (strcmp(argv[0], "revoke") == 0) {
		if (name == NULL || admin || json)
			return keys_usage();
	} else if (strcmp(argv[0], "list") == 0) {
		if (name != NULL || admin)
			return keys_usage();
	} else
		return keys_usage();

	if ((st = cli_store_open(cfg)) == NULL)
		return 1;
	if (strcmp(argv[0], "add") == 0)
		rc = keys_add(st, name, admin);
	else if (strcmp(argv[0], "list") == 0)
		rc = keys_list(st, json);
	else {
		rc = store_key_revoke(st, name);
		if (rc == -ENOENT)
			fprintf(stderr, "qwenrelay: no key named \"%s\" (see "
			    "qwenrelay keys list)\n", name);
		else if (rc != 0)
			fprintf(stderr, "qwenrelay: %s\n", store_strerror(rc));
		else
			fprintf(stderr, "Revoked key \"%s\".\n", name);
		rc = rc == 0 ? 0 : 1;
	}
	store_close(st);
	return rc;
}

int
cli_config(const struct cfg *cfg, int argc, char **argv)
{
	if (argc != 1 || strcmp(argv[0], "check") != 0) {
		fprintf(stderr, "usage: qwenrelay config check\n");
		return 2;
	}
	cfg_print(cfg, stdout);
	fprintf(stderr, "config ok (%s)\n", cfg->path != NULL ? cfg->path :
	    "no file: defaults and environment");
	return 0;
}
