/*
 * models.c: GET /v1/models (the union of the models of usable accounts,
 * each account's --models, else its upstream catalog, else its preset's;
 * OpenAI's list shape, owned_by = provider) and GET /v1/models/{id}.
 * Aliases from the config are listed when their target is served.  A key
 * with a model list (keys add --models) sees only those models.
 */
#include "config.h"

#include <string.h>

#include <json-c/json.h>

#include "accounts.h"
#include "cfg.h"
#include "handlers.h"
#include "key_limits.h"
#include "req.h"
#include "store.h"

static void
add_model(json_object *list, const char *id, const char *owner,
    int64_t created)
{
	size_t		 i, n = json_object_array_length(list);
	json_object	*o, *v;

	for (i = 0; i < n; i++) {
		o = json_object_array_get_idx(list, i);
		if (json_object_object_get_ex(o, "id", &v) &&
		    strcmp(json_object_get_string(v), id) == 0)
			return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "object", json_object_new_string("model"));
	json_object_object_add(o, "created", json_object_new_int64(created));
	json_object_object_add(o, "owned_by", json_object_new_string(owner));
	json_object_array_add(list, o);
}

/* The served models, or NULL on a store error (answered). */
static json_object *
served(struct req *r)
{
	struct account		**l;
	size_t			  n, i, j;
	json_object		 *list;
	const struct cfg_alias	 *al = r->srv->cfg->model_aliases;
	int			  rc;

	if (r->srv->st == NULL ||
	    (rc = store_account_list(r->srv->st, &l, &n)) != 0) {
		resp_error(r, 503, "server_error", "store_error",
		    "Cannot read the accounts.");
		return NULL;
	}
	list = json_object_new_array();
	for (i = 0; i < n; i++) {
		char *const *m = account_models(l[i]);
		if (l[i]->state != ACCT_ACTIVE)
			continue;
		for (j = 0; m[j] != NULL; j++)
			add_model(list, m[j], l[i]->provider,
			    l[i]->created_at / 1000);
	}
	/*
	 * An exact alias is listed under its own name when its target is;
	 * a prefix pattern ("claude-*") names no model, so it is not.
	 */
	for (i = 0; al != NULL && al[i].from != NULL; i++) {
		size_t k, m = json_object_array_length(list);
		if (al[i].prefix > 0)
			continue;
		for (k = 0; k < m; k++) {
			json_object *o = json_object_array_get_idx(list, k), *v,
			    *ow, *cr;
			json_object_object_get_ex(o, "id", &v);
			if (strcmp(json_object_get_string(v), al[i].to) != 0)
				continue;
			json_object_object_get_ex(o, "owned_by", &ow);
			json_object_object_get_ex(o, "created", &cr);
			add_model(list, al[i].from, json_object_get_string(ow),
			    json_object_get_int64(cr));
			break;
		}
	}
	account_list_free(l, n);
	/* A key with a model list sees only what it may use. */
	if (r->client != NULL && r->client->lim.models != NULL) {
		json_object *mine = json_object_new_array(), *v;
		size_t k, m = json_object_array_length(list);
		for (k = 0; k < m; k++) {
			json_object *o = json_object_array_get_idx(list, k);
			json_object_object_get_ex(o, "id", &v);
			if (limits_model_allowed(r->srv->cfg, r->client,
			    json_object_get_string(v)))
				json_object_array_add(mine, json_object_get(o));
		}
		json_object_put(list);
		list = mine;
	}
	return list;
}

int
handle_models(struct req *r)
{
	json_object	*list, *o;

	if ((list = served(r)) == NULL)
		return 0;
	o = json_object_new_object();
	json_object_object_add(o, "object", json_object_new_string("list"));
	json_object_object_add(o, "data", list);
	resp_json(r, 200, o);
	json_object_put(o);
	return 0;
}

int
handle_model(struct req *r)
{
	json_object	*list, *o, *v;
	size_t		 i, n;
	const char	*target = cfg_alias(r->srv->cfg, r->param);

	if ((list = served(r)) == NULL)
		return 0;
	n = json_object_array_length(list);
	for (i = 0; i < n; i++) {
		o = json_object_array_get_idx(list, i);
		json_object_object_get_ex(o, "id", &v);
		if (strcmp(json_object_get_string(v), r->param) == 0) {
			resp_json(r, 200, o);
			json_object_put(list);
			return 0;
		}
	}
	/* A name a prefix alias maps to a served model: answer as that name. */
	for (i = 0; target != r->param && i < n; i++) {
		o = json_object_array_get_idx(list, i);
		json_object_object_get_ex(o, "id", &v);
		if (strcmp(json_object_get_string(v), target) == 0) {
			json_object_object_add(o, "id",
			    json_object_new_string(r->param));
			resp_json(r, 200, o);
			json_object_put(list);
			return 0;
		}
	}
	json_object_put(list);
	resp_error(r, 404, "invalid_request_error", "model_not_found",
	    "The model '%.200s' is not served by any active account (see GET "
	    "/v1/models).", r->param);
	return 0;
}
