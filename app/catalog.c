/*
 * catalog.c: fetching, parsing and storing each account's model catalog
 * (GET {base}/models), and the keeper's periodic pass over them.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "accounts.h"
#include "catalog.h"
#include "cfg.h"
#include "log.h"
#include "provider.h"
#include "refresh.h"
#include "req.h"
#include "store.h"
#include "upstream.h"
#include "util.h"
#include "xmalloc.h"

#define CATALOG_MAX_BYTES	(8u << 20)

int
catalog_parse(const char *body, char ***out, char *err, size_t errlen)
{
	json_object	*o, *data, *e, *id;
	char		**l;
	const char	*s;
	size_t		 i, j, n, k = 0;

	*out = NULL;
	if (body == NULL || (o = json_tokener_parse(body)) == NULL) {
		snprintf(err, errlen, "the answer is not JSON");
		return -EINVAL;
	}
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "data", &data) ||
	    !json_object_is_type(data, json_type_array)) {
		json_object_put(o);
		snprintf(err, errlen, "the answer has no \"data\" list "
		    "(OpenAI's {\"object\":\"list\",\"data\":[...]})");
		return -EINVAL;
	}
	n = json_object_array_length(data);
	if (n > CATALOG_MAX_IDS)
		n = CATALOG_MAX_IDS;
	l = xcalloc(n + 1, sizeof(*l));
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(data, i);
		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "id", &id) ||
		    !json_object_is_type(id, json_type_string))
			continue;
		s = json_object_get_string(id);
		if (!model_id_valid(s, (size_t)json_object_get_string_len(id)))
			continue;
		for (j = 0; j < k && strcmp(l[j], s) != 0; j++)
			;
		if (j == k)
			l[k++] = xstrdup(s);
	}
	json_object_put(o);
	*out = l;
	return 0;
}

int
catalog_fetch_openai(struct server *srv, const struct account *a,
    char ***ids, char *err, size_t errlen)
{
	const struct provider	*p = provider_find(a->provider);
	struct upstream_call	 c;
	enum upstream_result	 res;
	const char		*hdrs[16];
	char			*base, *url, *auth, *token = NULL, why[256];
	size_t			 nh = 0;
	int			 rc;

	*ids = NULL;
	if (p == NULL) {
		snprintf(err, errlen, "unknown provider \"%s\"", a->provider);
		return -EINVAL;
	}
	base = provider_base_url(srv->cfg, a->provider, a->base_url);
	if (base == NULL || !provider_url_allowed(srv->cfg, base, why,
	    sizeof(why))) {
		snprintf(err, errlen, "%s", base == NULL ? "no base URL" : why);
		free(base);
		return -EINVAL;
	}
	if ((rc = refresh_ensure(srv, a->id, 0, &token, why,
	    sizeof(why))) != 0) {
		snprintf(err, errlen, "no usable token: %s", why);
		free(base);
		return rc;
	}
	if (srv->upstream == NULL && (srv->upstream = upstream_new()) == NULL) {
		snprintf(err, errlen, "cannot start the HTTP client");
		xfree_secret(token);
		free(base);
		return -ENOMEM;
	}
	url = xasprintf("%s/models", base);
	auth = xasprintf("Authorization: Bearer %s", token);
	xfree_secret(token);
	hdrs[nh++] = auth;
	hdrs[nh++] = "Accept: application/json";
	nh = p->add_headers(hdrs, nh, sizeof(hdrs) / sizeof(hdrs[0]) - 1);
	hdrs[nh] = NULL;
	memset(&c, 0, sizeof(c));
	c.url = url;
	c.headers = hdrs;
	c.connect_timeout_ms = (long)srv->cfg->upstream_connect_timeout_ms;
	c.total_timeout_s = CATALOG_TIMEOUT_S;
	c.idle_timeout_s = CATALOG_TIMEOUT_S;
	c.max_response = CATALOG_MAX_BYTES;
	res = upstream_perform(srv->upstream, &c);
	if (res != UP_OK)
		snprintf(err, errlen, "GET %s: %s", url, res == UP_TIMEOUT ?
		    "timed out" : c.errbuf[0] ? c.errbuf : "failed");
	else if (c.status != 200)
		snprintf(err, errlen, "GET %s answered %ld", url, c.status);
	rc = res != UP_OK ? -EIO : c.status != 200 ? -EPROTO :
	    catalog_parse(c.resp, ids, why, sizeof(why));
	if (rc == -EINVAL)
		snprintf(err, errlen, "GET %s: %s", url, why);
	upstream_call_done(&c);
	xfree_secret(auth);
	free(url);
	free(base);
	return rc;
}

struct put_arg {
	char		**ids;		/* NULL: a failure */
	const char	 *error;
	int64_t		  when;
};

static int
put_catalog(struct account *a, void *arg)
{
	struct put_arg	*pa = arg;

	a->catalog_at = pa->when;
	free(a->catalog_error);
	a->catalog_error = pa->error != NULL ? xstrdup(pa->error) : NULL;
	if (pa->ids != NULL) {
		xfree_strv(a->catalog);
		a->catalog = pa->ids;
		pa->ids = NULL;		/* the record owns them now */
	}
	return 0;
}

int
catalog_refresh(struct server *srv, const char *id, size_t *count,
    char *err, size_t errlen)
{
	const struct provider	*p;
	struct account		*a = NULL;
	struct put_arg		 pa;
	char			**ids = NULL;
	int			 rc, src;

	*count = 0;
	if ((rc = store_account_get_bare(srv->st, id, &a)) != 0) {
		snprintf(err, errlen, "no account %s: %s", id,
		    store_strerror(rc));
		return rc;
	}
	p = provider_find(a->provider);
	rc = p != NULL ? p->fetch_catalog(srv, a, &ids, err, errlen) :
	    -EINVAL;
	if (p == NULL)
		snprintf(err, errlen, "unknown provider \"%s\"", a->provider);
	account_free(a);
	memset(&pa, 0, sizeof(pa));
	pa.when = now_ms();
	pa.ids = rc == 0 ? ids : NULL;
	pa.error = rc == 0 ? NULL : err;
	for (*count = 0; rc == 0 && ids[*count] != NULL; (*count)++)
		;
	src = store_account_update(srv->st, id, put_catalog, &pa);
	xfree_strv(pa.ids);
	if (rc == 0 && src != 0) {
		snprintf(err, errlen, "cannot store the catalog: %s",
		    store_strerror(src));
		return src;
	}
	return rc;
}

int
catalog_keeper_pass(struct server *srv)
{
	struct account	**l;
	size_t		  n, i, count;
	int64_t		  now = now_ms(), age;
	int64_t		  retry = srv->cfg->proactive_refresh_check_interval_seconds *
	    1000;
	char		  err[512];
	int		  done = 0;

	if (!srv->have_key || store_account_list_bare(srv->st, &l, &n) != 0)
		return 0;
	for (i = 0; i < n; i++) {
		age = now - l[i]->catalog_at;
		if (l[i]->state != ACCT_ACTIVE || l[i]->models_pinned ||
		    (age < CATALOG_MAX_AGE_S * 1000 &&
		    (l[i]->catalog_error == NULL || age < retry)))
			continue;
		if (catalog_refresh(srv, l[i]->id, &count, err,
		    sizeof(err)) == 0) {
			log_info("keeper: account %s: catalog of %zu models",
			    l[i]->id, count);
			done++;
		} else
			log_warn("keeper: account %s: catalog not fetched: %s",
			    l[i]->id, err);
	}
	account_list_free(l, n);
	return done;
}
