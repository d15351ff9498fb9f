/*
 * test_route.c: route_path under the ways web servers pass the path, and
 * dispatch() end to end into a memory sink: 404, 405 + Allow, 401, 403,
 * preflight, CORS, bad JSON.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "crypto.h"
#include "req.h"
#include "route.h"
#include "store.h"
#include "tap.h"
#include "xmalloc.h"

struct membuf {
	char	*p;
	size_t	 n;
};

static int
mem_write(void *ctx, const void *p, size_t n)
{
	struct membuf	*m = ctx;

	m->p = xrealloc(m->p, m->n + n + 1);
	memcpy(m->p + m->n, p, n);
	m->n += n;
	m->p[m->n] = '\0';
	return 0;
}

static struct server	srv;
static struct membuf	out;

static const char *
run(const char *method, const char *path, const char *auth, const char *body)
{
	struct req	r;
	char		buf[512];

	free(out.p);
	memset(&out, 0, sizeof(out));
	memset(&r, 0, sizeof(r));
	r.srv = &srv;
	r.sink.write = mem_write;
	r.sink.ctx = &out;
	r.method_name = method;
	r.method = strcmp(method, "GET") == 0 ? M_GET :
	    strcmp(method, "POST") == 0 ? M_POST :
	    strcmp(method, "OPTIONS") == 0 ? M_OPTIONS : M_DELETE;
	r.path = route_path(path, NULL, NULL, buf, sizeof(buf));
	r.auth = auth;
	r.origin = "http://allowed.example";
	if (body != NULL) {
		r.body = xstrdup(body);
		r.body_len = strlen(body);
	}
	dispatch(&r);
	req_free(&r);
	return out.p != NULL ? out.p : "";
}

int
main(void)
{
	static const struct { const char *uri, *script, *pinfo, *want; } paths[] = {
		{ "/v1/models", NULL, NULL, "/v1/models" },
		{ "/v1/models?x=1", NULL, NULL, "/v1/models" },
		{ "/qwenrelay/v1/models", NULL, NULL, "/v1/models" },
		{ "/a/b/health", NULL, NULL, "/health" },
		{ "/qwenrelay.fcgi/v1/chat/completions", "/qwenrelay.fcgi",
		    "/v1/chat/completions", "/v1/chat/completions" },
		{ "/v1/models/", NULL, NULL, "/v1/models" },
		{ "/nothing/here", NULL, NULL, "/nothing/here" },
		{ NULL, "/health", NULL, "/health" },
	};
	struct cfg		 cfg;
	struct store_opts	 so = { 16, 64 };
	unsigned char		 h[32];
	char			 buf[256], err[256], dir[512];
	const char		*o;
	size_t			 i;

	plan_lazy();
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		is_string(paths[i].want, route_path(paths[i].uri,
		    paths[i].script, paths[i].pinfo, buf, sizeof(buf)),
		    "route_path(%s)", paths[i].uri ? paths[i].uri : "NULL");

	unsetenv("QWENRELAY_CONFIG");
	setenv("QWENRELAY_CORS_ALLOWED_ORIGINS", "http://allowed.example", 1);
	if (cfg_load(&cfg, "/nonexistent", err, sizeof(err)) != 0)
		bail("cfg: %s", err);
	snprintf(dir, sizeof(dir), "%s/st", test_tmpdir());
	if (store_open(&srv.st, dir, &so, err, sizeof(err)) != 0)
		bail("store: %s", err);
	srv.cfg = &cfg;
	crypto_sha256("qr-user", 7, h);
	store_key_add(srv.st, h, "user", 0, NULL, 1);
	crypto_sha256("qr-admin", 8, h);
	store_key_add(srv.st, h, "admin", 1, NULL, 1);

	o = run("GET", "/health", NULL, NULL);
	ok(strncmp(o, "Status: 200", 11) == 0 && strstr(o, "\"ok\""),
	    "health without a key");
	ok(strstr(o, "X-Content-Type-Options: nosniff") != NULL &&
	    strstr(o, "X-Frame-Options: DENY") != NULL, "safety headers");
	ok(strstr(o, "Access-Control-Allow-Origin: http://allowed.example") != NULL,
	    "CORS origin allowed by config");
	o = run("GET", "/v1/models", NULL, NULL);
	ok(strncmp(o, "Status: 401", 11) == 0 &&
	    strstr(o, "\"missing_api_key\"") && strstr(o, "keys add"),
	    "/v1 without a key: 401 that says what to do");
	o = run("GET", "/v1/models", "qr-wrong", NULL);
	ok(strncmp(o, "Status: 401", 11) == 0 &&
	    strstr(o, "\"invalid_api_key\""), "wrong key: 401");
	o = run("GET", "/v1/nothing", "qr-user", NULL);
	ok(strncmp(o, "Status: 404", 11) == 0 && strstr(o, "\"error\""),
	    "unknown /v1 path with a key: 404 JSON");
	o = run("DELETE", "/health", NULL, NULL);
	ok(strncmp(o, "Status: 405", 11) == 0 &&
	    strstr(o, "Allow: GET, HEAD, OPTIONS"), "405 with Allow: %s", o);
	o = run("GET", "/health/deep", "qr-user", NULL);
	ok(strncmp(o, "Status: 403", 11) == 0 &&
	    strstr(o, "\"admin_required\""), "deep health needs admin");
	o = run("GET", "/health/deep", "qr-admin", NULL);
	ok(strncmp(o, "Status: 200", 11) == 0 && strstr(o, "\"store\""),
	    "deep health with admin key");
	o = run("OPTIONS", "/v1/chat/completions", NULL, NULL);
	ok(strncmp(o, "Status: 204", 11) == 0 &&
	    strstr(o, "Access-Control-Allow-Headers: authorization"),
	    "preflight needs no key");
	o = run("OPTIONS", "/v1/messages", NULL, NULL);
	ok(strncmp(o, "Status: 204", 11) == 0 &&
	    strstr(o, "anthropic-version, anthropic-beta") != NULL,
	    "preflight for /v1/messages allows Anthropic's headers");
	o = run("POST", "/v1/messages", "qr-wrong", NULL);
	ok(strncmp(o, "Status: 401", 11) == 0 && strstr(o, "{\"type\":"
	    "\"error\",\"error\":{\"type\":\"authentication_error\"") != NULL,
	    "/v1/messages: a wrong key is an Anthropic authentication_error");
	o = run("GET", "/v1/messages", "qr-user", NULL);
	ok(strncmp(o, "Status: 405", 11) == 0 && strstr(o, "\"type\":"
	    "\"invalid_request_error\"") != NULL && strstr(o, "\"code\"") ==
	    NULL, "/v1/messages: 405 in Anthropic's shape too");
	o = run("POST", "/v1/responses", "qr-wrong", NULL);
	ok(strncmp(o, "Status: 401", 11) == 0 &&
	    strstr(o, "\"invalid_api_key\"") != NULL,
	    "/v1/responses: OpenAI-shaped 401");
	o = run("POST", "/v1/chat/completions", "qr-wrong", NULL);
	ok(strstr(o, "\"invalid_api_key\"") != NULL,
	    "the shape does not leak to the next request");
	o = run("GET", "/qwenrelay/health", NULL, NULL);
	ok(strncmp(o, "Status: 200", 11) == 0, "mounted under a prefix");

	{
		struct json_object	*j;
		const char		*why;

		j = parse_json_object("{\"a\":1}", 7, &why);
		ok(j != NULL, "parse_json_object accepts an object");
		json_object_put(j);
		ok(parse_json_object("[1]", 3, &why) == NULL,
		    "rejects a non-object");
		ok(parse_json_object("{\"a\":1} x", 9, &why) == NULL,
		    "rejects trailing garbage");
		ok(parse_json_object("{\"a\":", 5, &why) == NULL,
		    "rejects truncated JSON");
		char deep[300];
		memset(deep, '[', 200);
		strcpy(deep + 200, "");
		ok(parse_json_object(deep, 200, &why) == NULL,
		    "rejects deep nesting");
		ok(parse_json_object("{\"a\":\"\0\"}", 9, &why) == NULL,
		    "rejects an embedded NUL");
	}

	/* What the reserve threads still answer when every slot is busy. */
	{
		static const struct { const char *path; int want; } probes[] = {
			{ "/health", 1 }, { "/v1/health", 1 },
			{ "/health/deep", 1 }, { "/v1/health/deep", 1 },
			{ "/v1/chat/completions", 0 }, { "/v1/models", 0 },
			{ "/health/x", 0 }, { "/healthz", 0 }, { "/", 0 },
			{ "", 0 }, { NULL, 0 },
		};
		size_t	j;

		for (j = 0; j < sizeof(probes) / sizeof(probes[0]); j++)
			is_int(probes[j].want, route_always(probes[j].path),
			    "route_always(%s)", probes[j].path ?
			    probes[j].path : "NULL");
	}

	free(out.p);
	store_close(srv.st);
	cfg_free(&cfg);
	return 0;
}
