/*
 * accounts.c: creating accounts and opening their sealed tokens.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "accounts.h"
#include "cfg.h"
#include "provider.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

int
accounts_key_load(const struct cfg *c, struct store *st,
    unsigned char key[CRYPTO_SEAL_KEY_LEN], char *err, size_t errlen)
{
	char	*path;
	size_t	 n = 0;
	int	 rc;

	path = xasprintf("%s/%s", c->state_dir, SEAL_KEY_FILE);
	if (st != NULL && store_account_count(st, &n) != 0)
		n = 1;	/* can't tell: never create over possible accounts */
	rc = crypto_key_load(path, n == 0, key, err, errlen);
	if (rc == -ENOENT && n > 0)
		snprintf(err, errlen, "%s is missing but the store holds %zu "
		    "account(s) sealed under it; restore the file from backup "
		    "(or remove the accounts and log in again)", path, n);
	free(path);
	return rc;
}

void
account_token_hash(const char *token, unsigned char out[CRYPTO_SHA256_LEN])
{
	crypto_sha256(token, strlen(token), out);
}

char *
account_seal(const unsigned char key[CRYPTO_SEAL_KEY_LEN], const char *id,
    const char *token)
{
	return crypto_seal(key, id, token);
}

int
account_open_tokens(const unsigned char key[CRYPTO_SEAL_KEY_LEN],
    const struct account *a, char **access, char **refresh)
{
	int	rc;

	*access = NULL;
	if (refresh != NULL)
		*refresh = NULL;
	if (a->access_sealed == NULL)
		return -EINVAL;
	if ((rc = crypto_open(key, a->id, a->access_sealed, access)) != 0)
		return rc;
	if (refresh != NULL && a->refresh_sealed != NULL &&
	    (rc = crypto_open(key, a->id, a->refresh_sealed, refresh)) != 0) {
		xfree_secret(*access);
		*access = NULL;
		return rc;
	}
	return 0;
}

void
account_limit_message(char *buf, size_t sz, size_t count, long long max)
{
	snprintf(buf, sz, "The pool already has %zu of %lld accounts "
	    "(max_accounts). Remove one first: 'qwenrelay accounts list', "
	    "then 'qwenrelay accounts remove ID'.", count, max);
}

int
model_id_valid(const char *s, size_t len)
{
	size_t	i;

	if (s == NULL || len == 0 || len > MODEL_ID_MAX || strlen(s) != len)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

char *const *
account_models(const struct account *a)
{
	static char *const none[] = { NULL };

	if (!a->models_pinned && a->catalog != NULL && a->catalog[0] != NULL)
		return a->catalog;
	return a->models != NULL ? a->models : none;
}

int
account_serves(const struct account *a, const char *model)
{
	char *const	*m = account_models(a);
	size_t		 i;

	if (m[0] == NULL)
		return 1;
	for (i = 0; m[i] != NULL; i++)
		if (strcmp(m[i], model) == 0)
			return 1;
	return 0;
}

int
account_create(struct store *st, const struct cfg *c,
    const unsigned char key[CRYPTO_SEAL_KEY_LEN], const struct account_new *in,
    char id[24], char dup_id[24], size_t *count)
{
	const struct provider	*p = provider_find(in->provider);
	struct account		 a;
	unsigned char		 rnd[4], h[CRYPTO_SHA256_LEN];
	const char *const	*models;
	size_t			 i, n;
	int			 rc, tries;
	char			*hex;

	if (p == NULL)
		return -EINVAL;
	models = in->models != NULL ? in->models : p->models;
	for (n = 0; models[n] != NULL; n++)
		;
	/* Dedup on the refresh token (OAuth) or the key itself (API key). */
	account_token_hash(in->refresh != NULL ? in->refresh : in->access, h);

	for (tries = 0; tries < 8; tries++) {
		memset(&a, 0, sizeof(a));
		if (crypto_random(rnd, sizeof(rnd)) != 0)
			return -EIO;
		hex = hex_encode(rnd, sizeof(rnd));
		snprintf(a.id, sizeof(a.id), "%s%s", p->oauth ? "q" : "k", hex);
		free(hex);
		a.provider = (char *)(uintptr_t)in->provider;
		a.label = (char *)(uintptr_t)(in->label != NULL ? in->label : "");
		a.models = xcalloc(n + 1, sizeof(char *));
		a.models_pinned = in->models != NULL;
		for (i = 0; i < n; i++)
			a.models[i] = (char *)(uintptr_t)models[i];
		a.access_sealed = account_seal(key, a.id, in->access);
		a.refresh_sealed = in->refresh != NULL ?
		    account_seal(key, a.id, in->refresh) : NULL;
		a.base_url = (char *)(uintptr_t)in->base_url;
		a.expires_at = in->expires_at;
		a.created_at = now_ms();
		a.status = (char *)(uintptr_t)"active";
		rc = a.access_sealed == NULL ||
		    (in->refresh != NULL && a.refresh_sealed == NULL) ? -EIO :
		    store_account_add(st, &a, h, c->max_accounts, count, dup_id);
		free(a.models);
		free(a.access_sealed);
		free(a.refresh_sealed);
		if (rc != -EAGAIN)
			break;
	}
	if (rc == 0)
		memcpy(id, a.id, sizeof(a.id));
	return rc;
}

static json_object *
str_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? json_object_new_string(s) : NULL;
}

json_object *
account_json(const struct account *a, const struct mark *m, size_t nm)
{
	json_object	*o = json_object_new_object(), *arr, *mo;
	size_t		 i;

	json_object_object_add(o, "id", json_object_new_string(a->id));
	json_object_object_add(o, "provider",
	    json_object_new_string(a->provider));
	json_object_object_add(o, "label", json_object_new_string(
	    a->label != NULL ? a->label : ""));
	json_object_object_add(o, "status", json_object_new_string(
	    a->status != NULL ? a->status : "active"));
	json_object_object_add(o, "status_reason",
	    str_or_null(a->status_reason));
	arr = json_object_new_array();
	for (i = 0; account_models(a)[i] != NULL; i++)
		json_object_array_add(arr,
		    json_object_new_string(account_models(a)[i]));
	json_object_object_add(o, "models", arr);
	json_object_object_add(o, "models_source", json_object_new_string(
	    a->models_pinned ? "operator" : a->catalog != NULL &&
	    a->catalog[0] != NULL ? "catalog" : "preset"));
	arr = NULL;
	if (a->catalog != NULL) {
		arr = json_object_new_array();
		for (i = 0; a->catalog[i] != NULL; i++)
			json_object_array_add(arr,
			    json_object_new_string(a->catalog[i]));
	}
	json_object_object_add(o, "catalog", arr);
	json_object_object_add(o, "catalog_at",
	    json_object_new_int64(a->catalog_at));
	json_object_object_add(o, "catalog_error", str_or_null(a->catalog_error));
	json_object_object_add(o, "base_url", str_or_null(a->base_url));
	json_object_object_add(o, "expires_at",
	    json_object_new_int64(a->expires_at));
	json_object_object_add(o, "created_at",
	    json_object_new_int64(a->created_at));
	json_object_object_add(o, "refreshed_at",
	    json_object_new_int64(a->refreshed_at));
	json_object_object_add(o, "last_error", str_or_null(a->last_error));
	json_object_object_add(o, "last_used_at",
	    json_object_new_int64(a->last_used_at));
	json_object_object_add(o, "total_requests",
	    json_object_new_int64(a->total_requests));
	json_object_object_add(o, "prompt_tokens",
	    json_object_new_int64(a->prompt_tokens));
	json_object_object_add(o, "completion_tokens",
	    json_object_new_int64(a->completion_tokens));
	json_object_object_add(o, "errors", json_object_new_int64(a->errors));
	arr = json_object_new_array();
	for (i = 0; i < nm; i++) {
		if (strcmp(m[i].account, a->id) != 0)
			continue;
		mo = json_object_new_object();
		json_object_object_add(mo, "model",
		    json_object_new_string(m[i].model));
		json_object_object_add(mo, "resets_at",
		    json_object_new_int64(m[i].resets_at));
		json_object_object_add(mo, "reason",
		    json_object_new_string(m[i].reason != NULL ?
		    m[i].reason : ""));
		json_object_array_add(arr, mo);
	}
	json_object_object_add(o, "marks", arr);
	return o;
}

int
accounts_list_json(struct store *st, json_object **out)
{
	struct account	**l;
	struct mark	 *m = NULL;
	size_t		  n, nm = 0, i;
	int		  rc;

	*out = NULL;
	if ((rc = store_account_list(st, &l, &n)) != 0)
		return rc;
	if ((rc = store_mark_list(st, &m, &nm)) != 0) {
		account_list_free(l, n);
		return rc;
	}
	*out = json_object_new_array();
	for (i = 0; i < n; i++)
		json_object_array_add(*out, account_json(l[i], m, nm));
	account_list_free(l, n);
	mark_list_free(m, nm);
	return 0;
}
