/*
 * admin_keys.c: client keys over HTTP (admin key).
 *
 *   GET    /admin/api/keys          every key, as `keys list --json`
 *   POST   /admin/api/keys          {"name","admin"?,"rpm"?,"tpm"?,"models"?}
 *                                   -> 201 {"name","key"}: the key, once
 *   DELETE /admin/api/keys/{name}   revoke it; the next request with it,
 *                                   on any worker, is 401
 *
 * Only the 201 carries a key, and only the new one; lists never do.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "handlers.h"
#include "keys.h"
#include "req.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

static int
bad(struct req *r, const char *msg)
{
	resp_error(r, 400, "invalid_request_error", "invalid_request", "%s",
	    msg);
	return 0;
}

/* A positive whole number member; 1 set, 0 absent or null, -1 bad. */
static int
get_limit(json_object *o, const char *k, int64_t *out)
{
	json_object	*v;

	*out = 0;
	if (!json_object_object_get_ex(o, k, &v) ||
	    json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -1;
	*out = json_object_get_int64(v);
	return *out >= 1 && *out <= KEYS_LIMIT_MAX ? 1 : -1;
}

/* "models": an array of names, or null; -1 when malformed. */
static int
get_models(json_object *o, char ***out)
{
	json_object	*v, *m;
	size_t		 i, n;

	*out = NULL;
	if (!json_object_object_get_ex(o, "models", &v) ||
	    json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_array) ||
	    (n = json_object_array_length(v)) == 0 || n > KEYS_MODELS_MAX)
		return -1;
	*out = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		m = json_object_array_get_idx(v, i);
		if (!json_object_is_type(m, json_type_string) ||
		    !keys_model_name_ok(json_object_get_string(m),
		    (size_t)json_object_get_string_len(m)) ||
		    strlen(json_object_get_string(m)) !=
		    (size_t)json_object_get_string_len(m)) {
			xfree_strv(*out);
			*out = NULL;
			return -1;
		}
		(*out)[i] = xstrdup(json_object_get_string(m));
	}
	return 1;
}

static int
create(struct req *r)
{
	struct key_limits	 lim;
	json_object		*o = r->json, *v, *ans;
	const char		*name;
	char			*key;
	int			 admin = 0, rc;

	if (!json_object_object_get_ex(o, "name", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    !valid_ident((name = json_object_get_string(v)), KEYS_NAME_MAX) ||
	    strlen(name) != (size_t)json_object_get_string_len(v))
		return bad(r, "\"name\" is required: 1 to 64 characters "
		    "of A-Z a-z 0-9 . _ -.");
	if (json_object_object_get_ex(o, "admin", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_boolean))
			return bad(r, "\"admin\" must be true or false.");
		admin = json_object_get_boolean(v);
	}
	memset(&lim, 0, sizeof(lim));
	if (get_limit(o, "rpm", &lim.rpm) < 0 ||
	    get_limit(o, "tpm", &lim.tpm) < 0)
		return bad(r, "\"rpm\" and \"tpm\" must be whole numbers from "
		    "1 to 100000000 (or absent: no limit of the key's own).");
	if (get_models(o, &lim.models) < 0)
		return bad(r, "\"models\" must be an array of 1 to 64 "
		    "model names (1 to 200 bytes, no control byte or comma), "
		    "or null for every model.");
	rc = keys_create(r->srv->st, name, admin, &lim, &key);
	xfree_strv(lim.models);
	if (rc == -EEXIST) {
		resp_error(r, 409, "invalid_request_error", "key_exists",
		    "A key named '%s' exists; revoke it first (DELETE "
		    "/admin/api/keys/%s) or pick another name.", name, name);
		return 0;
	}
	if (rc == -EIO) {
		resp_error(r, 500, "server_error", "no_random",
		    "No random bytes available to make a key.");
		return 0;
	}
	if (rc != 0)
		return rc;
	ans = json_object_new_object();
	json_object_object_add(ans, "name", json_object_new_string(name));
	json_object_object_add(ans, "key", json_object_new_string(key));
	json_object_object_add(ans, "admin", json_object_new_boolean(admin));
	resp_json_h(r, 201, ans, "Cache-Control: no-store\r\n");
	/* json-c keeps its own copy of the key: wipe it before release. */
	json_object_object_get_ex(ans, "key", &v);
	xwipe((void *)(uintptr_t)json_object_get_string(v),
	    (size_t)json_object_get_string_len(v));
	json_object_put(ans);
	xfree_secret(key);
	return 0;
}

int
handle_admin_keys(struct req *r)
{
	json_object	*a;
	int		 rc;

	if (r->srv->st == NULL) {
		resp_error(r, 503, "server_error", "store_unavailable",
		    "The state store cannot be opened; see the server log.");
		return 0;
	}
	if (r->method == M_POST)
		return create(r);
	if ((rc = keys_list_json(r->srv->st, &a)) != 0)
		return rc;
	resp_json(r, 200, a);
	json_object_put(a);
	return 0;
}

int
handle_admin_key(struct req *r)
{
	json_object	*o;
	int		 rc;

	if (r->srv->st == NULL) {
		resp_error(r, 503, "server_error", "store_unavailable",
		    "The state store cannot be opened; see the server log.");
		return 0;
	}
	rc = store_key_revoke(r->srv->st, r->param);
	if (rc == -ENOENT) {
		resp_error(r, 404, "invalid_request_error", "key_not_found",
		    "No key named '%s' (GET /admin/api/keys lists them).",
		    r->param);
		return 0;
	}
	if (rc != 0)
		return rc;
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(r->param));
	json_object_object_add(o, "revoked", json_object_new_boolean(1));
	resp_json(r, 200, o);
	json_object_put(o);
	return 0;
}
