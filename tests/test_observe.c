/*
 * test_observe.c: what is written after a request: the metrics batch and
 * its Prometheus rendering, and the access log line, from made-up
 * outcomes in a temporary store.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "access_log.h"
#include "cfg.h"
#include "metrics.h"
#include "outcome.h"
#include "req.h"
#include "route.h"
#include "store.h"
#include "tap.h"
#include "util.h"
#include "xmalloc.h"

static struct server	srv;

/* A finished chat request of key k through account a0, rotated once. */
static void
fake(struct req *r, struct client_key *k, int status, int64_t up_ms)
{
	struct account	a;

	memset(r, 0, sizeof(*r));
	memset(&a, 0, sizeof(a));
	r->srv = &srv;
	r->method_name = "POST";
	r->route = ROUTE_CHAT;
	r->status = status;
	r->client = k;
	r->t0 = mono_ms();
	snprintf(a.id, sizeof(a.id), "%s", "k0000000a");
	a.provider = (char *)(uintptr_t)"openai-compatible";
	outcome_model(r, "coder-model");
	outcome_attempt(r, &a, 429, 5);
	outcome_class(r, "quota");
	outcome_rotated(r);
	outcome_attempt(r, &a, 200, up_ms);
	outcome_class(r, NULL);
	outcome_tokens(r, 11, 7);
}

int
main(void)
{
	struct cfg		 cfg;
	struct store_opts	 so = { 16, 64 };
	struct client_key	 k, **l;
	struct req		 r;
	json_object		*o, *v;
	char			 err[256], dir[512], *text, *line;
	size_t			 len, n, i;

	plan_lazy();
	unsetenv("QWENRELAY_CONFIG");
	if (cfg_load(&cfg, "/nonexistent", err, sizeof(err)) != 0)
		bail("cfg: %s", err);
	snprintf(dir, sizeof(dir), "%s/st", test_tmpdir());
	if (store_open(&srv.st, dir, &so, err, sizeof(err)) != 0)
		bail("store: %s", err);
	srv.cfg = &cfg;
	memset(&k, 0, sizeof(k));
	memset(k.hash, 7, sizeof(k.hash));
	k.name = (char *)(uintptr_t)"laptop";
	store_key_add(srv.st, k.hash, "laptop", 0, NULL, 1);

	fake(&r, &k, 200, 300);
	metrics_request_done(&r);
	fake(&r, &k, 200, 40000);
	metrics_request_done(&r);
	fake(&r, NULL, 404, 0);
	r.route = -1;
	memset(&r.out, 0, sizeof(r.out));
	metrics_request_done(&r);

	is_int(0, metrics_render(&srv, &text, &len), "render");
	ok(strlen(text) == len, "length");
	ok(strstr(text, "qwenrelay_http_requests_total{route=\"/v1/chat/"
	    "completions\",code=\"200\"} 2\n") != NULL, "requests by route, code");
	ok(strstr(text, "qwenrelay_http_requests_total{route=\"other\","
	    "code=\"404\"} 1\n") != NULL, "an unmatched path is route other");
	ok(strstr(text, "qwenrelay_key_requests_total{key=\"laptop\"} 2\n") !=
	    NULL, "requests by key name");
	ok(strstr(text, "qwenrelay_tokens_total{direction=\"input\"} 22\n") &&
	    strstr(text, "qwenrelay_tokens_total{direction=\"output\"} 14\n"),
	    "tokens by direction");
	ok(strstr(text, "qwenrelay_rotations_total{reason=\"quota\"} 2\n") !=
	    NULL, "rotations by reason");
	ok(strstr(text, "_bucket{provider=\"openai-compatible\",le=\"0.5\"} 1\n")
	    && strstr(text, "_bucket{provider=\"openai-compatible\",le=\"30\"} 1\n")
	    && strstr(text, "_bucket{provider=\"openai-compatible\",le=\"60\"} 2\n")
	    && strstr(text, "_bucket{provider=\"openai-compatible\",le=\"+Inf\"} "
	    "2\n") && strstr(text, "duration_seconds_sum{provider=\""
	    "openai-compatible\"} 40.300\n") && strstr(text,
	    "duration_seconds_count{provider=\"openai-compatible\"} 2\n"),
	    "the histogram is cumulative, sum in seconds");
	ok(strstr(text, "# TYPE qwenrelay_upstream_request_duration_seconds "
	    "histogram\n") != NULL, "histogram TYPE line");
	free(text);
	metrics_refresh(srv.st, METRIC_REFRESH_REJECTED);
	metrics_render(&srv, &text, &len);
	ok(strstr(text, "qwenrelay_refreshes_total{result=\"needs_login\"} 1\n")
	    != NULL, "refreshes by result");
	free(text);
	/* The key's use counter rides in the same batch. */
	store_key_list(srv.st, &l, &n);
	ok(n == 1 && l[0]->requests == 2 && l[0]->last_used_ms > 0,
	    "the key's requests and last use are counted");
	client_key_list_free(l, n);

	fake(&r, &k, 200, 300);
	line = access_log_line(&r, 1764439364120LL, &len);
	ok(len > 0 && line[len - 1] == '\n' && strchr(line, '\n') ==
	    line + len - 1, "one line, ending in a newline");
	o = json_tokener_parse(line);
	ok(o != NULL, "the line is JSON");
	{
		static const char *const fields[] = { "time", "key", "method",
		    "route", "model", "account", "status", "upstream_status",
		    "latency_ms", "input_tokens", "output_tokens", "attempts" };
		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			ok(json_object_object_get_ex(o, fields[i], NULL),
			    "field %s", fields[i]);
	}
	json_object_object_get_ex(o, "time", &v);
	is_string("2025-11-29T18:02:44.120Z", json_object_get_string(v),
	    "time in UTC with ms");
	json_object_object_get_ex(o, "route", &v);
	is_string("/v1/chat/completions", json_object_get_string(v),
	    "route pattern");
	json_object_object_get_ex(o, "attempts", &v);
	is_int(2, json_object_get_int(v), "attempts");
	json_object_object_get_ex(o, "upstream_status", &v);
	is_int(200, json_object_get_int(v), "the last upstream status");
	json_object_put(o);
	free(line);
	fake(&r, NULL, 401, 0);
	r.out.attempts = 0;
	r.out.model[0] = '\0';
	line = access_log_line(&r, 1, &len);
	ok(strstr(line, "\"key\":null") && strstr(line, "\"upstream_status\""
	    ":null") && strstr(line, "\"model\":null"),
	    "no key, no upstream call: nulls");
	free(line);
	is_string("/admin/api/keys/{id}", route_name(ROUTE_ADMIN_KEY),
	    "route names write {id}");
	is_string("other", route_name(-1), "no route: other");

	store_close(srv.st);
	cfg_free(&cfg);
	test_tmpdir_cleanup();
	return 0;
}
