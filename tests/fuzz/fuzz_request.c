/*
 * fuzz_request.c: a client request end to end, minus the web server:
 * route_path on the server variables, then dispatch (router, auth, body
 * JSON with bounded depth, the handler) into a memory sink, against an
 * LMDB store in a temporary directory with one (non-admin) client key
 * and no accounts, so nothing leaves the process.
 *
 * Input: "METHOD\nREQUEST_URI\nSCRIPT_NAME\nPATH_INFO\nDOCUMENT_URI\nBODY..."
 * (an empty line means the variable is unset).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "crypto.h"
#include "log.h"
#include "req.h"
#include "route.h"
#include "store.h"
#include "xmalloc.h"

static struct server	srv;
static struct cfg	cfg;

static int
null_write(void *ctx, const void *p, size_t n)
{
	size_t	*total = ctx;

	(void)p;
	*total += n;
	return 0;
}

static int
setup(void)
{
	struct store_opts	 so = { 64, 126 };
	unsigned char		 h[32];
	char			 err[256], tmpl[] = "/tmp/qrfuzz.XXXXXX";
	char			 dir[64];

	unsetenv("QWENRELAY_CONFIG");
	if (cfg_load(&cfg, "/nonexistent", err, sizeof(err)) != 0 ||
	    mkdtemp(tmpl) == NULL) {
		fprintf(stderr, "fuzz_request: %s\n", err);
		abort();
	}
	log_open("error", "/dev/null");
	snprintf(dir, sizeof(dir), "%s/st", tmpl);
	if (store_open(&srv.st, dir, &so, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_request: %s\n", err);
		abort();
	}
	srv.cfg = &cfg;
	crypto_sha256("qr-fuzz", 7, h);
	store_key_add(srv.st, h, "fuzz", 0, NULL, 1);
	return 0;
}

/* The next '\n'-terminated field of [*p, end) as a new string. */
static char *
field(const char **p, const char *end)
{
	const char	*nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t		 n = nl != NULL ? (size_t)(nl - *p) : (size_t)(end - *p);
	char		*s = xmalloc(n + 1);

	memcpy(s, *p, n);
	s[n] = '\0';
	*p = nl != NULL ? nl + 1 : end;
	return s;
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	 done;
	static const struct { const char *name; enum http_method m; } ms[] = {
		{ "GET", M_GET }, { "POST", M_POST }, { "PUT", M_PUT },
		{ "PATCH", M_PATCH }, { "DELETE", M_DELETE },
		{ "OPTIONS", M_OPTIONS }, { "HEAD", M_HEAD },
	};
	const char	*p = (const char *)data, *end = p + size;
	char		*method, *uri, *script, *pinfo, *docuri, buf[1024];
	struct route_env env;
	struct req	 r;
	size_t		 i, total = 0;

	if (!done)
		done = setup() == 0;
	method = field(&p, end);
	uri = field(&p, end);
	script = field(&p, end);
	pinfo = field(&p, end);
	docuri = field(&p, end);
	memset(&r, 0, sizeof(r));
	r.srv = &srv;
	r.sink.write = null_write;
	r.sink.ctx = &total;
	r.method = M_OTHER;
	r.method_name = method;
	for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		if (strcmp(method, ms[i].name) == 0)
			r.method = ms[i].m;
	r.raw_path = uri;
	memset(&env, 0, sizeof(env));
	env.request_uri = *uri ? uri : NULL;
	env.script_name = *script ? script : NULL;
	env.path_info = *pinfo ? pinfo : NULL;
	env.document_uri = *docuri ? docuri : NULL;
	r.path = route_path(&env, buf, sizeof(buf));
	r.auth = "qr-fuzz";
	r.origin = "http://example.test";
	r.body_len = (size_t)(end - p);
	r.body = xmalloc(r.body_len + 1);
	memcpy(r.body, p, r.body_len);
	r.body[r.body_len] = '\0';
	dispatch(&r);
	req_free(&r);
	free(method);
	free(uri);
	free(script);
	free(pinfo);
	free(docuri);
	return 0;
}
