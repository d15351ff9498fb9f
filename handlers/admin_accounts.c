/*
 * admin_accounts.c: the account pool over HTTP (admin key).
 *
 *   GET    /admin/api/accounts        every account, as `accounts list --json`
 *   POST   /admin/api/accounts        add an API-key account
 *   GET    /admin/api/accounts/{id}   one account
 *   PATCH  /admin/api/accounts/{id}   {"label":..,"enabled":bool}
 *   DELETE /admin/api/accounts/{id}   remove it
 *
 * Nothing here ever answers with a token or an API key.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "accounts.h"
#include "catalog.h"
#include "cfg.h"
#include "log.h"
#include "handlers.h"
#include "provider.h"
#include "req.h"
#include "store.h"
#include "xmalloc.h"

#define LABEL_MAX	64
#define APIKEY_MAX	4096
#define URL_MAX		2048
#define MODELS_MAX	64

/* 503 unless the store and the sealing key are usable; 0 when they are. */
static int
need_store(struct req *r, int key)
{
	if (r->srv->st == NULL) {
		resp_error(r, 503, "server_error", "store_unavailable",
		    "The state store cannot be opened; see the server log.");
		return -1;
	}
	if (key && !r->srv->have_key) {
		resp_error(r, 503, "server_error", "seal_key_unavailable",
		    "The sealing key cannot be loaded: %s", r->srv->key_err);
		return -1;
	}
	return 0;
}

static int
bad(struct req *r, const char *msg)
{
	resp_error(r, 400, "invalid_request_error", "invalid_request", "%s",
	    msg);
	return 0;
}

/* A string member: 1 and *out if present and valid, 0 absent, -1 bad. */
static int
get_str(json_object *o, const char *k, size_t max, const char **out)
{
	json_object	*v;
	const char	*s;
	size_t		 i, n;

	*out = NULL;
	if (!json_object_object_get_ex(o, k, &v) ||
	    json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n == 0 || n > max || strlen(s) != n)
		return -1;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -1;
	*out = s;
	return 1;
}

static int
list_accounts(struct req *r)
{
	json_object	*arr;
	int		 rc;

	if ((rc = accounts_list_json(r->srv->st, &arr)) != 0)
		return rc;
	resp_json(r, 200, arr);
	json_object_put(arr);
	return 0;
}

static int
add_account(struct req *r)
{
	const struct provider	*p;
	struct account_new	 an;
	struct account		*a;
	json_object		*o = r->json, *v, *out;
	const char		*prov, *label, *key, *base, **models = NULL;
	char			 why[256], msg[512], id[24], dup[24], *url;
	size_t			 n, i, count = 0;
	int			 rc;

	if (need_store(r, 1) != 0)
		return 0;
	if (get_str(o, "provider", 64, &prov) != 1 ||
	    (p = provider_find(prov)) == NULL || p->oauth) {
		resp_error(r, 400, "invalid_request_error", "invalid_provider",
		    "\"provider\" must be one of the API-key presets (%s, "
		    "without qwen-oauth: log that in with POST "
		    "/admin/api/logins).", provider_names());
		return 0;
	}
	if (get_str(o, "label", LABEL_MAX, &label) < 0)
		return bad(r, "\"label\" must be a string of 1 to 64 printable "
		    "characters.");
	if (get_str(o, "api_key", APIKEY_MAX, &key) != 1)
		return bad(r, "\"api_key\" is required: the provider's key, "
		    "1 to 4096 printable characters.");
	if (get_str(o, "base_url", URL_MAX, &base) < 0)
		return bad(r, "\"base_url\" must be a URL string.");
	if (base == NULL && p->base_url == NULL)
		return bad(r, "\"base_url\" is required for this provider "
		    "(for example http://127.0.0.1:8000/v1).");
	url = provider_base_url(r->srv->cfg, prov, base);
	if (!provider_url_allowed(r->srv->cfg, url, why, sizeof(why))) {
		free(url);
		resp_error(r, 400, "invalid_request_error", "invalid_base_url",
		    "base_url is not allowed: %s", why);
		return 0;
	}
	free(url);
	if (json_object_object_get_ex(o, "models", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_array) ||
		    (n = json_object_array_length(v)) == 0 || n > MODELS_MAX)
			return bad(r, "\"models\" must be an array of 1 to 64 "
			    "model names.");
		models = xcalloc(n + 1, sizeof(*models));
		for (i = 0; i < n; i++) {
			json_object *m = json_object_array_get_idx(v, i);
			const char *s;
			if (!json_object_is_type(m, json_type_string) ||
			    (s = json_object_get_string(m)) == NULL ||
			    !model_id_valid(s, (size_t)
			    json_object_get_string_len(m))) {
				free(models);
				return bad(r, "\"models\" must hold non-empty "
				    "strings of at most 200 bytes without "
				    "control characters.");
			}
			models[i] = s;
		}
	}
	memset(&an, 0, sizeof(an));
	an.provider = prov;
	an.label = label;
	an.models = models;
	an.access = key;
	an.base_url = base;
	rc = account_create(r->srv->st, r->srv->cfg, r->srv->seal_key, &an,
	    id, dup, &count);
	if (rc == 0 && models == NULL) {
		/* Its catalog now; a failure is in the answer's catalog_error. */
		if (catalog_refresh(r->srv, id, &n, msg, sizeof(msg)) != 0)
			log_warn("account %s: catalog not fetched: %s", id, msg);
	}
	free(models);
	if (rc == -EDQUOT) {
		account_limit_message(msg, sizeof(msg), count,
		    r->srv->cfg->max_accounts);
		resp_error(r, 409, "invalid_request_error",
		    "account_limit_reached", "%s", msg);
		return 0;
	}
	if (rc == -EEXIST) {
		resp_error(r, 409, "invalid_request_error", "duplicate_account",
		    "This API key is already present as account %s.", dup);
		return 0;
	}
	if (rc != 0)
		return rc;
	if ((rc = store_account_get(r->srv->st, id, &a)) != 0)
		return rc;
	out = account_json(a, NULL, 0);
	account_free(a);
	resp_json(r, 201, out);
	json_object_put(out);
	return 0;
}

int
handle_admin_accounts(struct req *r)
{
	if (need_store(r, 0) != 0)
		return 0;
	if (r->method == M_POST)
		return add_account(r);
	return list_accounts(r);
}

struct patch {
	const char	*label;
	int		 enabled;	/* -1 unchanged */
	int		 refused;	/* enable asked of a needs_login account */
};

static int
patch_fn(struct account *a, void *arg)
{
	struct patch	*pa = arg;

	if (pa->label != NULL) {
		free(a->label);
		a->label = xstrdup(pa->label);
	}
	if (pa->enabled == 1 && strcmp(a->status, "disabled") == 0) {
		free(a->status);
		a->status = xstrdup("active");
		free(a->status_reason);
		a->status_reason = NULL;
	} else if (pa->enabled == 1 && strcmp(a->status, "needs_login") == 0) {
		pa->refused = 1;
		return 1;
	} else if (pa->enabled == 0 && strcmp(a->status, "disabled") != 0) {
		free(a->status);
		a->status = xstrdup("disabled");
		free(a->status_reason);
		a->status_reason = xstrdup("disabled by the operator");
	}
	return 0;
}

static int
show(struct req *r, int status)
{
	struct account	*a;
	struct mark	*m = NULL;
	size_t		 nm = 0;
	json_object	*o;
	int		 rc;

	if ((rc = store_account_get(r->srv->st, r->param, &a)) != 0)
		return rc;
	if ((rc = store_mark_list(r->srv->st, &m, &nm)) != 0) {
		account_free(a);
		return rc;
	}
	o = account_json(a, m, nm);
	account_free(a);
	mark_list_free(m, nm);
	resp_json(r, status, o);
	json_object_put(o);
	return 0;
}

int
handle_admin_account(struct req *r)
{
	struct patch	 pa;
	json_object	*v, *o;
	int		 rc;

	if (need_store(r, 0) != 0)
		return 0;
	if (r->method == M_GET)
		return show(r, 200);
	if (r->method == M_DELETE) {
		if ((rc = store_account_del(r->srv->st, r->param)) != 0)
			return rc;
		o = json_object_new_object();
		json_object_object_add(o, "id",
		    json_object_new_string(r->param));
		json_object_object_add(o, "deleted",
		    json_object_new_boolean(1));
		resp_json(r, 200, o);
		json_object_put(o);
		return 0;
	}
	memset(&pa, 0, sizeof(pa));
	pa.enabled = -1;
	if (get_str(r->json, "label", LABEL_MAX, &pa.label) < 0)
		return bad(r, "\"label\" must be a string of 1 to 64 printable "
		    "characters.");
	if (json_object_object_get_ex(r->json, "enabled", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return bad(r, "\"enabled\" must be true or false.");
		pa.enabled = json_object_get_boolean(v) ? 1 : 0;
	}
	if ((rc = store_account_update(r->srv->st, r->param, patch_fn,
	    &pa)) != 0)
		return rc;
	if (pa.refused) {
		resp_error(r, 409, "invalid_request_error", "needs_login",
		    "Account %s needs a new login; remove it and log in again "
		    "(POST /admin/api/logins).", r->param);
		return 0;
	}
	return show(r, 200);
}
