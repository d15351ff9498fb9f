/*
 * cli_keys.c: qwenrelay keys add NAME [--admin] [--rpm N] [--tpm N]
 *     [--models a,b] | list [--json] | revoke NAME
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
#include "keys.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

static int
keys_usage(void)
{
	fprintf(stderr, "usage: qwenrelay keys add NAME [--admin] [--rpm N] "
	    "[--tpm N] [--models a,b]\n"
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
keys_add(struct store *st, const char *name, int admin,
    const struct key_limits *lim)
{
	char	*key;
	int	 rc;

	rc = keys_create(st, name, admin, lim, &key);
	if (rc == -EINVAL) {
		fprintf(stderr, "qwenrelay: key name \"%s\" is not valid: use "
		    "1-%d characters of A-Z a-z 0-9 . _ -\n", name,
		    KEYS_NAME_MAX);
		return 1;
	}
	if (rc == -EEXIST) {
		fprintf(stderr, "qwenrelay: a key named \"%s\" exists; revoke "
		    "it first (qwenrelay keys revoke %s) or pick another "
		    "name\n", name, name);
		return 1;
	}
	if (rc == -EIO) {
		fprintf(stderr, "qwenrelay: no random bytes available\n");
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "qwenrelay: cannot store the key: %s\n",
		    store_strerror(rc));
		return 1;
	}
	printf("%s\n", key);
	fflush(stdout);
	fprintf(stderr, "Created %skey \"%s\". It is shown only this once: "
	    "keep it now.\n", admin ? "admin " : "", name);
	xfree_secret(key);
	return 0;
}

static int
keys_list(struct store *st, int json)
{
	struct client_key	**l;
	size_t			  n, i, j;
	char			  c[32], u[32];
	int			  rc;

	if ((rc = store_key_list(st, &l, &n)) != 0) {
		fprintf(stderr, "qwenrelay: %s\n", store_strerror(rc));
		return 1;
	}
	if (json) {
		json_object *a;
		if ((rc = keys_list_json(st, &a)) != 0) {
			client_key_list_free(l, n);
			fprintf(stderr, "qwenrelay: %s\n", store_strerror(rc));
			return 1;
		}
		printf("%s\n", json_object_to_json_string_ext(a,
		    JSON_C_TO_STRING_PRETTY));
		json_object_put(a);
	} else if (n == 0)
		printf("No keys. Create one: qwenrelay keys add NAME\n");
	else {
		printf("%-24s %-5s %-20s %-20s %-9s %s\n", "NAME", "ADMIN",
		    "CREATED", "LAST USED", "REQUESTS", "LIMITS");
		for (i = 0; i < n; i++) {
			fmt_utc(l[i]->created_ms, c, sizeof(c));
			fmt_utc(l[i]->last_used_ms, u, sizeof(u));
			printf("%-24s %-5s %-20s %-20s %-9lld", l[i]->name,
			    l[i]->admin ? "yes" : "no", c, u,
			    (long long)l[i]->requests);
			if (l[i]->lim.rpm > 0)
				printf(" rpm=%lld", (long long)l[i]->lim.rpm);
			if (l[i]->lim.tpm > 0)
				printf(" tpm=%lld", (long long)l[i]->lim.tpm);
			for (j = 0; l[i]->lim.models != NULL &&
			    l[i]->lim.models[j] != NULL; j++)
				printf("%s%s", j == 0 ? " models=" : ",",
				    l[i]->lim.models[j]);
			printf("\n");
		}
	}
	client_key_list_free(l, n);
	return 0;
}

int
cli_keys(const struct cfg *cfg, int argc, char **argv)
{
	struct store		*st;
	struct key_limits	 lim;
	int			 rc, admin = 0, json = 0, limits = 0, i;
	const char		*name = NULL, *es;

	if (argc < 1)
		return keys_usage();
	memset(&lim, 0, sizeof(lim));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--admin") == 0)
			admin = 1;
		else if ((strcmp(argv[i], "--rpm") == 0 ||
		    strcmp(argv[i], "--tpm") == 0) && i + 1 < argc) {
			int64_t v = parse_int(argv[i + 1], 1, KEYS_LIMIT_MAX,
			    &es);
			if (es != NULL) {
				fprintf(stderr, "qwenrelay: %s %s: %s (a whole "
				    "number from 1 to %lld)\n", argv[i],
				    argv[i + 1], es, KEYS_LIMIT_MAX);
				xfree_strv(lim.models);
				return 2;
			}
			if (argv[i][2] == 'r')
				lim.rpm = v;
			else
				lim.tpm = v;
			limits = 1;
			i++;
		} else if (strcmp(argv[i], "--models") == 0 && i + 1 < argc &&
		    lim.models == NULL) {
			if (keys_models_parse(argv[++i], &lim.models, &es)
			    != 0) {
				fprintf(stderr, "qwenrelay: --models: %s\n", es);
				return 2;
			}
			limits = 1;
		}
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (argv[i][0] == '-' || name != NULL) {
			fprintf(stderr, "qwenrelay: keys %s: unknown or "
			    "incomplete argument %s\n", argv[0], argv[i]);
			goto usage;
		}
		else
			name = argv[i];
	}
	if (strcmp(argv[0], "add") == 0) {
		if (name == NULL || json)
			goto usage;
	} else if (strcmp(argv[0], "revoke") == 0) {
		if (name == NULL || admin || json || limits)
			goto usage;
	} else if (strcmp(argv[0], "list") == 0) {
		if (name != NULL || admin || limits)
			goto usage;
	} else
		goto usage;

	if ((st = cli_store_open(cfg)) == NULL) {
		xfree_strv(lim.models);
		return 1;
	}
	if (strcmp(argv[0], "add") == 0)
		rc = keys_add(st, name, admin, &lim);
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
	xfree_strv(lim.models);
	return rc;
usage:
	xfree_strv(lim.models);
	return keys_usage();
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
