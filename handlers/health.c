/*
 * health.c: GET /health (no key) and GET /health/deep (admin key).
 *
 * /health is what a load balancer or uptime check polls: 200 while this
 * worker can read its store, 503 with the reason when it cannot.
 */
#include "config.h"

#include <unistd.h>

#include <json-c/json.h>

#include "req.h"
#include "handlers.h"
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
	json_object_object_add(s, "requests_served",
	    json_object_new_int64((int64_t)r->srv->served));
	json_object_object_add(o, "worker", s);
	json_object_object_add(o, "accounts",
	    json_object_new_int64((int64_t)ss.n_accounts));
	resp_json(r, 200, o);
	json_object_put(o);
	return 0;
}
