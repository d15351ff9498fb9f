/*
 * worker.c: one worker process.  Accepts a FastCGI request, turns it into
 * a struct req (body capped before it is read), dispatches, logs one line.
 *
 * This file and pool.c are the only ones that include <fcgiapp.h>.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "access_log.h"
#include "accounts.h"
#include "cfg.h"
#include "log.h"
#include "metrics.h"
#include "req.h"
#include "route.h"
#include "store.h"
#include "upstream.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

static volatile sig_atomic_t worker_stop;
/* SIGHUPs received: the access log reopens when this moves. */
static volatile sig_atomic_t worker_hup;

static void
on_hup(int sig)
{
	(void)sig;
	worker_hup++;
}

static void
on_stop(int sig)
{
	(void)sig;
	worker_stop = 1;
	/* Makes libfcgi's accept() give up instead of retrying on EINTR. */
	FCGX_ShutdownPending();
}

static int
fcgx_write(void *ctx, const void *p, size_t n)
{
	FCGX_Stream	*out = ctx;

	while (n > 0) {
		int chunk = n > 1 << 20 ? 1 << 20 : (int)n;
		if (FCGX_PutStr(p, chunk, out) != chunk)
			return -1;
		p = (const char *)p + chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

static int
fcgx_flush(void *ctx)
{
	return FCGX_FFlush(ctx) == 0 ? 0 : -1;
}

static enum http_method
method_parse(const char *m)
{
	static const struct { const char *n; enum http_method m; } t[] = {
		{ "GET", M_GET }, { "POST", M_POST }, { "PUT", M_PUT },
		{ "PATCH", M_PATCH }, { "DELETE", M_DELETE },
		{ "OPTIONS", M_OPTIONS }, { "HEAD", M_HEAD },
	};
	size_t	i;

	for (i = 0; m != NULL && i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(m, t[i].n) == 0)
			return t[i].m;
	return M_OTHER;
}

/* The client's key: Authorization: Bearer, x-api-key, or Apache's rewrite copy. */
static const char *
auth_value(FCGX_ParamArray env)
{
	const char	*a;

	if ((a = FCGX_GetParam("HTTP_AUTHORIZATION", env)) == NULL ||
	    *a == '\0')
		a = FCGX_GetParam("REDIRECT_HTTP_AUTHORIZATION", env);
	if (a != NULL && *a != '\0') {
		if (strncasecmp(a, "Bearer ", 7) != 0)
			return "";
		a += 7;
		while (*a == ' ')
			a++;
		return a;
	}
	return FCGX_GetParam("HTTP_X_API_KEY", env);
}

/* Read the body.  Returns 0, 413 (too large) or 400 (short). */
static int
read_body(struct req *r, FCGX_Request *fr, long long max)
{
	const char	*cl = FCGX_GetParam("CONTENT_LENGTH", fr->envp);
	const char	*es;
	long long	 len = 0;
	size_t		 got = 0;
	int		 n;

	if (cl != NULL && *cl != '\0') {
		len = parse_int(cl, 0, 1LL << 40, &es);
		if (es != NULL)
			return 400;
	}
	if (len > max)
		return 413;
	if (len == 0)
		return 0;
	r->body = xmalloc((size_t)len + 1);
	while (got < (size_t)len) {
		n = FCGX_GetStr(r->body + got, (int)((size_t)len - got), fr->in);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	r->body[got] = '\0';
	r->body_len = got;
	return got == (size_t)len ? 0 : 400;
}

static void
request_log(const struct req *r)
{
	if (!r->srv->cfg->request_log)
		return;
	log_info("%s %s %d %lu %ldms key=%s%s",
	    r->method_name, r->raw_path, r->status, (unsigned long)r->sent,
	    (long)(mono_ms() - r->t0),
	    r->client != NULL ? r->client->name : "-",
	    r->broken ? " client-gone" : "");
}

static void
serve_one(struct server *srv, FCGX_Request *fr)
{
	struct req	 r;
	struct route_env renv;
	char		 pathbuf[2048];
	int		 rc;

	memset(&r, 0, sizeof(r));
	r.srv = srv;
	r.route = -1;
	r.out.last_reason = -1;
	r.t0 = mono_ms();
	r.sink.write = fcgx_write;
	r.sink.flush = fcgx_flush;
	r.sink.ctx = fr->out;
	r.method_name = FCGX_GetParam("REQUEST_METHOD", fr->envp);
	if (r.method_name == NULL)
		r.method_name = "GET";
	r.method = method_parse(r.method_name);
	renv.request_uri = FCGX_GetParam("REQUEST_URI", fr->envp);
	renv.script_name = FCGX_GetParam("SCRIPT_NAME", fr->envp);
	renv.path_info = FCGX_GetParam("PATH_INFO", fr->envp);
	renv.document_uri = FCGX_GetParam("DOCUMENT_URI", fr->envp);
	r.path = route_path(&renv, pathbuf, sizeof(pathbuf));
	r.raw_path = r.path;
	r.query = FCGX_GetParam("QUERY_STRING", fr->envp);
	r.origin = FCGX_GetParam("HTTP_ORIGIN", fr->envp);
	r.content_type = FCGX_GetParam("CONTENT_TYPE", fr->envp);
	r.acr_headers = FCGX_GetParam("HTTP_ACCESS_CONTROL_REQUEST_HEADERS",
	    fr->envp);
	r.auth = auth_value(fr->envp);
	r.remote_addr = FCGX_GetParam("REMOTE_ADDR", fr->envp);

	rc = read_body(&r, fr, srv->cfg->max_body_bytes);
	if (rc == 413)
		resp_error(&r, 413, "invalid_request_error",
		    "request_too_large", "The request body is larger than "
		    "max_body_bytes (%lld bytes).",
		    srv->cfg->max_body_bytes);
	else if (rc == 400)
		resp_error(&r, 400, "invalid_request_error",
		    "invalid_request", "The request body is shorter than its "
		    "Content-Length.");
	else
		dispatch(&r);
	if (!r.opened)
		resp_error(&r, 500, "server_error", "internal_error",
		    "No response was produced; see the server log.");
	srv->served++;
	request_log(&r);
	metrics_request_done(&r);
	access_log_write(&r, (int)worker_hup);
	req_free(&r);
}

void
server_signals(void (*fn)(int))
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int
server_open(struct server *srv, const struct cfg *cfg, const char *who)
{
	struct store_opts	so;
	int			rc;

	so.map_size_mb = (size_t)cfg->store_map_size_mb;
	so.max_readers = 512;
	if (srv->st == NULL && (rc = store_open(&srv->st, cfg->state_dir, &so,
	    srv->st_err, sizeof(srv->st_err))) != 0) {
		cfg_state_hint(cfg, rc, srv->st_err, sizeof(srv->st_err));
		log_err("%s: store: %s", who, srv->st_err);
		srv->st = NULL;
		return -1;
	}
	if (!srv->have_key) {
		if (accounts_key_load(cfg, srv->st, srv->seal_key, srv->key_err,
		    sizeof(srv->key_err)) == 0)
			srv->have_key = 1;
		else
			log_err("%s: sealing key: %s", who, srv->key_err);
	}
	return 0;
}

void
server_close(struct server *srv)
{
	xwipe(srv->seal_key, sizeof(srv->seal_key));
	srv->have_key = 0;
	store_close(srv->st);
	srv->st = NULL;
}

int
worker_run(const struct cfg *cfg, int fd)
{
	struct server		 srv;
	struct sigaction	 sa;
	FCGX_Request		 fr;

	server_signals(on_stop);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_hup;
	sa.sa_flags = SA_RESTART;	/* a reopen must not end accept() */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	memset(&srv, 0, sizeof(srv));
	srv.cfg = cfg;
	srv.started_ms = now_ms();
	server_open(&srv, cfg, "worker");
	access_log_open(&srv);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (FCGX_Init() != 0) {
		log_err("FCGX_Init failed");
		return 1;
	}
	if (FCGX_InitRequest(&fr, fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_err("FCGX_InitRequest failed");
		return 1;
	}
	while (!worker_stop) {
		if (FCGX_Accept_r(&fr) < 0)
			break;
		/* A store that failed at start may work now (disk freed). */
		if (srv.st == NULL || !srv.have_key)
			server_open(&srv, cfg, "worker");
		serve_one(&srv, &fr);
		FCGX_Finish_r(&fr);
		if (cfg->max_requests > 0 &&
		    srv.served >= (unsigned long)cfg->max_requests)
			break;
	}
	FCGX_Free(&fr, 0);
	upstream_free(srv.upstream);
	server_close(&srv);
	curl_global_cleanup();
	return 0;
}
