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
	struct req		r;
	struct route_env	renv = { NULL, NULL, NULL, NULL };
	char			buf[512];

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
	renv.request_uri = path;
	r.path = route_path(&renv, buf, sizeof(buf));
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

/*
 * What each web server sends, captured from the real servers with the
 * shipped deploy/ configs (tests/integration/webfront.py) and a FastCGI
 * program that prints its parameters (tests/tools/capture_env.py):
 * lighttpd 1.4.69, nginx 1.22.1, Apache 2.4.71 + mod_fcgid 2.3.9.
 * Document roots are shortened to /srv/www, /var/www/html and /home;
 * the last entries (marked) are constructed edge cases.
 * NULL: the server did not send the variable.  route_path reads only
 * REQUEST_URI, SCRIPT_NAME, PATH_INFO and DOCUMENT_URI; the rest is
 * here so the table shows the whole set each server sends.
 */
static const struct capture {
	const char	*server;
	const char	*request_uri, *script_name, *path_info, *document_uri;
	const char	*script_filename, *redirect_url, *query_string;
	const char	*want;
} captures[] = {
	/* lighttpd, "/" mount, fix-root-scriptname enabled */
	{ "lighttpd / fix-root", "/v1/models?x=1", "", "/v1/models", NULL,
	    "/srv/www/", NULL, "x=1", "/v1/models" },
	{ "lighttpd / fix-root", "/health", "", "/health", NULL,
	    "/srv/www/", NULL, "", "/health" },
	{ "lighttpd / fix-root", "/v1/models/Qwen%2FQwen3-Coder", "",
	    "/v1/models/Qwen/Qwen3-Coder", NULL, "/srv/www/", NULL, "",
	    "/v1/models/Qwen/Qwen3-Coder" },
	{ "lighttpd / fix-root", "/v1/models/a/b", "", "/v1/models/a/b",
	    NULL, "/srv/www/", NULL, "", "/v1/models/a/b" },
	/* lighttpd, "/" mount, fix-root-scriptname disabled (the issue) */
	{ "lighttpd /", "/v1/models?x=1", "/v1", "/models", NULL,
	    "/srv/www/v1", NULL, "x=1", "/v1/models" },
	{ "lighttpd /", "/health", "/health", NULL, NULL,
	    "/srv/www/health", NULL, "", "/health" },
	{ "lighttpd /", "/metrics", "/metrics", NULL, NULL,
	    "/srv/www/metrics", NULL, "", "/metrics" },
	{ "lighttpd /qwenrelay/", "/qwenrelay/metrics", "/qwenrelay/metrics",
	    NULL, NULL, "/srv/www/qwenrelay/metrics", NULL, "", "/metrics" },
	{ "lighttpd /", "/health/deep", "/health", "/deep", NULL,
	    "/srv/www/health", NULL, "", "/health/deep" },
	{ "lighttpd /", "/v1/chat/completions", "/v1", "/chat/completions",
	    NULL, "/srv/www/v1", NULL, "", "/v1/chat/completions" },
	{ "lighttpd /", "/v1/models/Qwen%2FQwen3-Coder", "/v1",
	    "/models/Qwen/Qwen3-Coder", NULL, "/srv/www/v1", NULL, "",
	    "/v1/models/Qwen/Qwen3-Coder" },
	{ "lighttpd /", "/v1/models/a/b", "/v1", "/models/a/b", NULL,
	    "/srv/www/v1", NULL, "", "/v1/models/a/b" },
	/* lighttpd, "/qwenrelay/" mount: the same with either setting */
	{ "lighttpd /qwenrelay/", "/qwenrelay/v1/models?x=1",
	    "/qwenrelay/v1", "/models", NULL, "/srv/www/qwenrelay/v1", NULL,
	    "x=1", "/v1/models" },
	{ "lighttpd /qwenrelay/", "/qwenrelay/health", "/qwenrelay/health",
	    NULL, NULL, "/srv/www/qwenrelay/health", NULL, "", "/health" },
	{ "lighttpd /qwenrelay/", "/qwenrelay/v1/models/Qwen%2FQwen3-Coder",
	    "/qwenrelay/v1", "/models/Qwen/Qwen3-Coder", NULL,
	    "/srv/www/qwenrelay/v1", NULL, "", "/v1/models/Qwen/Qwen3-Coder" },
	{ "lighttpd /qwenrelay/", "/qwenrelay/v1/models/a/b",
	    "/qwenrelay/v1", "/models/a/b", NULL, "/srv/www/qwenrelay/v1",
	    NULL, "", "/v1/models/a/b" },
	/* nginx, include fastcgi_params (no PATH_INFO) */
	{ "nginx", "/v1/models?x=1", "/v1/models", NULL, "/v1/models",
	    NULL, NULL, "x=1", "/v1/models" },
	{ "nginx", "/health", "/health", NULL, "/health", NULL, NULL, "",
	    "/health" },
	{ "nginx", "/v1/models/Qwen%2FQwen3-Coder",
	    "/v1/models/Qwen/Qwen3-Coder", NULL, "/v1/models/Qwen/Qwen3-Coder",
	    NULL, NULL, "", "/v1/models/Qwen/Qwen3-Coder" },
	{ "nginx", "/v1/models/a/b", "/v1/models/a/b", NULL,
	    "/v1/models/a/b", NULL, NULL, "", "/v1/models/a/b" },
	/* Apache mod_proxy_fcgi, ProxyPass "/" (no PATH_INFO) */
	{ "apache proxy_fcgi", "/v1/models?x=1", "/v1/models", NULL, NULL,
	    "proxy:fcgi://localhost/v1/models", NULL, "x=1", "/v1/models" },
	{ "apache proxy_fcgi", "/health", "/health", NULL, NULL,
	    "proxy:fcgi://localhost/health", NULL, "", "/health" },
	{ "apache proxy_fcgi", "/v1/models/a/b", "/v1/models/a/b", NULL,
	    NULL, "proxy:fcgi://localhost/v1/models/a/b", NULL, "",
	    "/v1/models/a/b" },
	/* ... with AllowEncodedSlashes NoDecode: %2F stays encoded */
	{ "apache proxy_fcgi NoDecode", "/v1/models/Qwen%2FQwen3-Coder",
	    "/v1/models/Qwen%2FQwen3-Coder", NULL, NULL,
	    "proxy:fcgi://localhost/v1/models/Qwen%2FQwen3-Coder", NULL, "",
	    "/v1/models/Qwen/Qwen3-Coder" },
	/* Apache mod_fcgid vhost, AliasMatch to APP_DIR/qwenrelay.fcgi/$1 */
	{ "apache fcgid vhost", "/v1/models?x=1", "", "/v1/models", NULL,
	    "/usr/local/lib/qwenrelay/qwenrelay.fcgi", NULL, "x=1",
	    "/v1/models" },
	{ "apache fcgid vhost", "/health", "", "/health", NULL,
	    "/usr/local/lib/qwenrelay/qwenrelay.fcgi", NULL, "", "/health" },
	{ "apache fcgid vhost", "/v1/models/a/b", "", "/v1/models/a/b",
	    NULL, "/usr/local/lib/qwenrelay/qwenrelay.fcgi", NULL, "",
	    "/v1/models/a/b" },
	{ "apache fcgid vhost NoDecode", "/v1/models/Qwen%2FQwen3-Coder", "",
	    "/v1/models/Qwen%2FQwen3-Coder", NULL,
	    "/usr/local/lib/qwenrelay/qwenrelay.fcgi", NULL, "",
	    "/v1/models/Qwen/Qwen3-Coder" },
	/* Apache mod_fcgid, deploy/apache/htaccess in ~alice/public_html/relay */
	{ "apache htaccess ~alice/relay", "/~alice/relay/v1/models?x=1",
	    "/~alice/relay/qwenrelay.fcgi", "/v1/models", NULL,
	    "/home/alice/public_html/relay/qwenrelay.fcgi",
	    "/~alice/relay/v1/models", "x=1", "/v1/models" },
	{ "apache htaccess ~alice/relay", "/~alice/relay/health",
	    "/~alice/relay/qwenrelay.fcgi", "/health", NULL,
	    "/home/alice/public_html/relay/qwenrelay.fcgi",
	    "/~alice/relay/health", "", "/health" },
	{ "apache htaccess ~alice/relay", "/~alice/relay/v1/models/a/b",
	    "/~alice/relay/qwenrelay.fcgi", "/v1/models/a/b", NULL,
	    "/home/alice/public_html/relay/qwenrelay.fcgi",
	    "/~alice/relay/v1/models/a/b", "", "/v1/models/a/b" },
	/* The same directory under the document root: /sub/dir/ */
	{ "apache htaccess /sub/dir", "/sub/dir/v1/chat/completions",
	    "/sub/dir/qwenrelay.fcgi", "/v1/chat/completions", NULL,
	    "/var/www/html/sub/dir/qwenrelay.fcgi",
	    "/sub/dir/v1/chat/completions", "", "/v1/chat/completions" },
	/* A hand-written rewrite that drops the path (RewriteRule
	 * !^qwenrelay\.fcgi qwenrelay.fcgi [L]): only REQUEST_URI has it */
	{ "apache rewrite, no PATH_INFO", "/sub/dir/v1/models?x=1",
	    "/sub/dir/qwenrelay.fcgi", NULL, NULL,
	    "/var/www/html/sub/dir/qwenrelay.fcgi", "/sub/dir/v1/models",
	    "x=1", "/v1/models" },
	/* Constructed, not captured: a hand-written fastcgi_param set */
	{ "REQUEST_URI only", "/api/v1/models/", NULL, NULL, NULL, NULL,
	    NULL, NULL, "/v1/models" },
	{ "DOCUMENT_URI only", NULL, NULL, NULL, "/v1/models", NULL, NULL,
	    NULL, "/v1/models" },
	/* Not an API path: the client's path, for the 404 */
	{ "lighttpd / unknown", "/nothing/here?q", "/nothing", "/here", NULL,
	    "/srv/www/nothing", NULL, "q", "/nothing/here" },
	{ "nothing at all", NULL, NULL, NULL, NULL, NULL, NULL, NULL, "/" },
};

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
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct route_env e = { paths[i].uri, paths[i].script,
		    paths[i].pinfo, NULL };
		is_string(paths[i].want, route_path(&e, buf, sizeof(buf)),
		    "route_path(%s)", paths[i].uri ? paths[i].uri : "NULL");
	}
	for (i = 0; i < sizeof(captures) / sizeof(captures[0]); i++) {
		const struct capture *c = &captures[i];
		struct route_env e = { c->request_uri, c->script_name,
		    c->path_info, c->document_uri };
		is_string(c->want, route_path(&e, buf, sizeof(buf)),
		    "%s: %s", c->server, c->request_uri ? c->request_uri : "-");
	}
	{
		/* A path longer than the buffer is cut, never overrun. */
		struct route_env e = { NULL, "/v1/models/", "abcdefghij", NULL };
		char small[16];

		is_string("/v1/models/abcd", route_path(&e, small,
		    sizeof(small)), "long path truncated to the buffer");
	}

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
