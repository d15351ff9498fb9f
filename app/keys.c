/*
 * keys.c: client API keys as a service (see keys.h).
 *
 * A key is "qr-" and 43 base64url characters (32 random bytes); the store
 * keeps only its SHA-256.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "accounts.h"
#include "crypto.h"
#include "keys.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

#define KEY_RANDOM_BYTES	32

int
keys_create(struct store *st, const char *name, int admin,
    const struct key_limits *lim, char **out)
{
	unsigned char	 raw[KEY_RANDOM_BYTES], h[CRYPTO_SHA256_LEN];
	char		*b64, *key;
	int		 rc;

	*out = NULL;
	if (!valid_ident(name, KEYS_NAME_MAX))
		return -EINVAL;
	if (crypto_random(raw, sizeof(raw)) != 0)
		return -EIO;
	b64 = b64url_encode(raw, sizeof(raw));
	xwipe(raw, sizeof(raw));
	key = xasprintf("qr-%s", b64);
	xfree_secret(b64);
	crypto_sha256(key, strlen(key), h);
	if ((rc = store_key_add(st, h, name, admin, lim, now_ms())) != 0) {
		xfree_secret(key);
		return rc;
	}
	*out = key;
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

int
keys_list_json(struct store *st, json_object **out)
{
	struct client_key	**l;
	json_object		 *a, *o, *m;
	size_t			  n, i, j;
	int			  rc;

	*out = NULL;
	if ((rc = store_key_list(st, &l, &n)) != 0)
		return rc;
	a = json_object_new_array();
	for (i = 0; i < n; i++) {
		o = json_object_new_object();
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
		json_object_object_add(o, "rpm",
		    json_object_new_int64(l[i]->lim.rpm));
		json_object_object_add(o, "tpm",
		    json_object_new_int64(l[i]->lim.tpm));
		if (l[i]->lim.models != NULL) {
			m = json_object_new_array();
			for (j = 0; l[i]->lim.models[j] != NULL; j++)
				json_object_array_add(m, json_object_new_string(
				    l[i]->lim.models[j]));
			json_object_object_add(o, "models", m);
		} else
			json_object_object_add(o, "models", NULL);
		add_usage(st, o, l[i]->name);
		json_object_array_add(a, o);
	}
	client_key_list_free(l, n);
	*out = a;
	return 0;
}

int
keys_model_name_ok(const char *s, size_t n)
{
	/* The pool's one rule for model ids, less the list separator. */
	return model_id_valid(s, n) && memchr(s, ',', n) == NULL;
}

int
keys_models_parse(const char *csv, char ***out, const char **why)
{
	const char	*p = csv, *e;
	char		**l;
	size_t		  n = 0, len;

	*out = NULL;
	*why = NULL;
	l = xcalloc(KEYS_MODELS_MAX + 1, sizeof(*l));
	for (;;) {
		e = strchr(p, ',');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (!keys_model_name_ok(p, len)) {
			*why = "each model is 1 to 200 bytes with no control "
			    "byte, separated by commas";
			goto fail;
		}
		if (n == KEYS_MODELS_MAX) {
			*why = "at most 64 models";
			goto fail;
		}
		l[n++] = xstrndup(p, len);
		if (e == NULL)
			break;
		p = e + 1;
	}
	*out = l;
	return 0;
fail:
	xfree_strv(l);
	return -EINVAL;
}
