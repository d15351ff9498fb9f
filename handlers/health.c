/*
 * health.c: GET /health (no key) and GET /health/deep (admin key).
 *
 * /health is what a load balancer or uptime check polls: 200 while this
 * worker can read its store, 503 with the reason when it cannot.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "accounts.h"
#include "cfg.h"
#include "req.h"
#include "handlers.h"
#include "loadtab.h"
#include "store.h"
#include "util.h"

static json_object *
base_status(const struct req *r, const char *status)
{
	json_object	*o = json_object_new_object();

	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "version",
	    json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(o, "uptime_seconds", json_object_new_int64(
	    (now_ms() - r->srv->started_ms) / 1000));
	return o;
}

int
handle_health(struct req *r)
{
	json_object	*o;
	int		 st = 200;

	if (r->srv->st == NULL) {
		o = base_status(r, "error");
		json_object_object_add(o, "message", json_object_new_string(
		    r->srv->st_err[0] ? r->srv->st_err :
		    "state store unavailable"));
		st = 503;
	} else
		o = base_status(r, "ok");
	resp_json(r, st, o);
	json_object_put(o);
	return 0;
}

/*
 * Counts by status and, per account, what an operator needs to see a
 * needs_login at a glance.  Never a token.
 */
static json_object *
accounts_summary(struct req *r)
{
	json_object	*arr = NULL, *o, *by, *list, *a, *v;
	size_t		 i, n = 0;
	int64_t		 active = 0, disabled = 0, needs = 0;
	const char	*st;

	o = json_object_new_object();
	if (accounts_list_json(r->srv->st, &arr) == 0)
		n = json_object_array_length(arr);
	list = json_object_new_array();
	for (i = 0; i < n; i++) {
		a = json_object_array_get_idx(arr, i);
		st = json_object_object_get_ex(a, "status", &v) ?
		    json_object_get_string(v) : "";
		if (strcmp(st, "active") == 0)
			active++;
		else if (strcmp(st, "disabled") == 0)
			disabled++;
		else
			needs++;
		v = json_object_new_object();
		json_object_object_add(v, "id", json_object_get(
		    json_object_object_get(a, "id")));
		json_object_object_add(v, "provider", json_object_get(
		    json_object_object_get(a, "provider")));
		json_object_object_add(v, "status", json_object_get(
		    json_object_object_get(a, "status")));
		json_object_object_add(v, "status_reason", json_object_get(
		    json_object_object_get(a, "status_reason")));
		json_object_object_add(v, "expires_at", json_object_get(
		    json_object_object_get(a, "expires_at")));
		json_object_array_add(list, v);
	}
	json_object_put(arr);
	json_object_object_add(o, "total", json_object_new_int64((int64_t)n));
	json_object_object_add(o, "max",
	    json_object_new_int64(r->srv->cfg->max_accounts));
	by = json_object_new_object();
	json_object_object_add(by, "active", json_object_new_int64(active));
	json_object_object_add(by, "disabled", json_object_new_int64(disabled));
	json_object_object_add(by, "needs_login", json_object_new_int64(needs));
	json_object_object_add(o, "by_status", by);
	json_object_object_add(o, "list", list);
	return o;
}

static const char *const load_states[] = {
	[LOAD_EMPTY] = "empty", [LOAD_STARTING] = "starting",
	[LOAD_SERVING] = "serving", [LOAD_STOPPING] = "stopping"
};

/* One worker's load into o: the numbers of struct load, by name. */
static void
load_json(json_object *o, struct load *l)
{
	int	st = atomic_load(&l->state);

	json_object_object_add(o, "pid", json_object_new_int(
	    atomic_load(&l->pid)));
	json_object_object_add(o, "state", json_object_new_string(
	    st >= 0 && st <= LOAD_STOPPING ? load_states[st] : "?"));
	json_object_object_add(o, "requests_served", json_object_new_int64(
	    (int64_t)atomic_load(&l->served)));
	json_object_object_add(o, "requests_in_flight", json_object_new_int(
	    atomic_load(&l->in_flight)));
	json_object_object_add(o, "capacity", json_object_new_int(
	    atomic_load(&l->capacity)));
	json_object_object_add(o, "threads", json_object_new_int(
	    atomic_load(&l->threads)));
	json_object_object_add(o, "refused_overloaded", json_object_new_int64(
	    (int64_t)atomic_load(&l->refused)));
}

/*
 * Every live worker of this pool (serve's table, or the one the web
 * server's workers share through state_dir), and the totals.
 */
static json_object *
pool_json(struct load *pool, int n)
{
	json_object	*o = json_object_new_object(), *arr, *w;
	int64_t		 in_flight = 0, capacity = 0;
	int		 i, st;

	arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		/* Claimed, and its process alive (a killed one leaves a row). */
		if (!loadtab_live(pool, i))
			continue;
		st = atomic_load(&pool[i].state);
		w = json_object_new_object();
		load_json(w, &pool[i]);
		json_object_array_add(arr, w);
		in_flight += atomic_load(&pool[i].in_flight);
		if (st == LOAD_SERVING)
			capacity += atomic_load(&pool[i].capacity);
	}
	json_object_object_add(o, "requests_in_flight",
	    json_object_new_int64(in_flight));
	json_object_object_add(o, "capacity", json_object_new_int64(capacity));
	json_object_object_add(o, "workers", arr);
	return o;
}

int
handle_health_deep(struct req *r)
{
	struct store_stats	 ss;
	json_object		*o, *s;

	if (r->srv->st == NULL || store_stats(r->srv->st, &ss) != 0)
		return handle_health(r);
	o = base_status(r, "ok");
	s = json_object_new_object();
	json_object_object_add(s, "schema", json_object_new_int(ss.schema));
	json_object_object_add(s, "map_size_bytes",
	    json_object_new_int64((int64_t)ss.map_size));
	json_object_object_add(s, "used_bytes",
	    json_object_new_int64((int64_t)ss.used_bytes));
	json_object_object_add(s, "readers_used",
	    json_object_new_int((int)ss.readers_used));
	json_object_object_add(s, "max_readers",
	    json_object_new_int((int)ss.max_readers));
	json_object_object_add(s, "client_keys",
	    json_object_new_int64((int64_t)ss.n_keys));
	json_object_object_add(s, "pending_logins",
	    json_object_new_int64((int64_t)ss.n_logins));
	json_object_object_add(o, "store", s);
	s = json_object_new_object();
	json_object_object_add(s, "pid", json_object_new_int((int)getpid()));
	if (r->srv->load != NULL)
		load_json(s, r->srv->load);
	else
		json_object_object_add(s, "requests_served",
		    json_object_new_int64((int64_t)r->srv->served));
	json_object_object_add(o, "worker", s);
	if (r->srv->pool != NULL)
		json_object_object_add(o, "pool", pool_json(r->srv->pool,
		    r->srv->npool));
	json_object_object_add(o, "accounts", accounts_summary(r));
	resp_json(r, 200, o);
	json_object_put(o);
	return 0;
}
