/*
 * floor_relay.c: the floor for POST /v1/chat/completions.
 *
 * The least a FastCGI relay can do: read the body, POST it upstream with
 * one persistent CURL handle per process (connection reuse), swap the
 * client's Authorization for the operator's token, relay status and body.
 * A body with "stream":true is relayed chunk by chunk as curl delivers it,
 * flushed after each write, as an SSE relay must.  No JSON parsing, no
 * accounts, no store, no logging: tests/bench/run.sh compares qwenrelay's
 * chat path against this to see what the gateway's own work costs.
 *
 * Environment: FLOOR_UPSTREAM (full URL, e.g.
 * http://127.0.0.1:PORT/v1/chat/completions), FLOOR_TOKEN (Bearer token).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#define MAX_BODY	(32L * 1024 * 1024)

/* Per-request relay state, handed to curl's callbacks. */
struct relay {
	CURL		*curl;
	FCGX_Stream	*out;
	int		 stream;	/* relay chunks as they arrive */
	int		 started;	/* response head written to the client */
	int		 client_gone;	/* a write to the client failed */
	char		*buf;		/* non-streaming: the whole answer */
	size_t		 len, cap;
};

/* Write the FastCGI response head from what curl knows of the answer. */
static void
relay_head(struct relay *rl)
{
	long		 status = 0;
	char		*ctype = NULL;

	/* libfcgi's own printf: keep to %d and %s. */
	curl_easy_getinfo(rl->curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(rl->curl, CURLINFO_CONTENT_TYPE, &ctype);
	FCGX_FPrintF(rl->out, "Status: %d\r\nContent-Type: %s\r\n",
	    status > 0 ? (int)status : 502,
	    ctype != NULL ? ctype : "application/json");
	/* As qwenrelay does: a known length spares lighttpd chunking. */
	if (rl->stream)
		FCGX_PutS("Cache-Control: no-cache\r\n", rl->out);
	else
		FCGX_FPrintF(rl->out, "Content-Length: %d\r\n", (int)rl->len);
	FCGX_PutS("\r\n", rl->out);
	rl->started = 1;
}

/*
 * curl's write callback.  Streaming: pass the bytes on and flush; a short
 * return makes curl abort the transfer when the client has gone away.
 * Otherwise: collect into rl->buf.
 */
static size_t
on_data(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct relay	*rl = ctx;
	size_t		 n = size * nmemb;
	char		*nb;

	if (rl->stream) {
		if (!rl->started)
			relay_head(rl);
		if (FCGX_PutStr(p, (int)n, rl->out) != (int)n ||
		    FCGX_FFlush(rl->out) != 0) {
			rl->client_gone = 1;
			return 0;
		}
		return n;
	}
	if (rl->len + n > rl->cap) {
		rl->cap = (rl->len + n) * 2;
		if ((nb = realloc(rl->buf, rl->cap)) == NULL)
			return 0;
		rl->buf = nb;
	}
	memcpy(rl->buf + rl->len, p, n);
	rl->len += n;
	return n;
}

/* Read the request body (CONTENT_LENGTH bytes); NUL-terminated, or NULL. */
static char *
read_body(FCGX_Request *r, long *lenp)
{
	const char	*cl = FCGX_GetParam("CONTENT_LENGTH", r->envp);
	long		 len = cl != NULL ? strtol(cl, NULL, 10) : 0;
	char		*body;

	if (len < 0 || len > MAX_BODY)
		return NULL;
	if ((body = malloc((size_t)len + 1)) == NULL)
		return NULL;
	if (len > 0 && FCGX_GetStr(body, (int)len, r->in) != (int)len) {
		free(body);
		return NULL;
	}
	body[len] = '\0';
	*lenp = len;
	return body;
}

static void
fail(FCGX_Stream *out, int status, const char *msg)
{
	FCGX_FPrintF(out, "Status: %d\r\nContent-Type: application/json\r\n\r\n"
	    "{\"error\":{\"message\":\"%s\",\"type\":\"floor_error\","
	    "\"code\":null}}", status, msg);
}

static void
relay_one(CURL *curl, struct curl_slist *hdrs, FCGX_Request *r)
{
	struct relay	 rl;
	CURLcode	 rc;
	char		*body;
	long		 len = 0;

	if ((body = read_body(r, &len)) == NULL) {
		fail(r->out, 400, "cannot read body");
		return;
	}
	memset(&rl, 0, sizeof(rl));
	rl.curl = curl;
	rl.out = r->out;
	rl.stream = strstr(body, "\"stream\":true") != NULL;

	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, len);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &rl);
	rc = curl_easy_perform(curl);

	if (rc != CURLE_OK && !rl.started) {
		if (!rl.client_gone)
			fail(r->out, 502, curl_easy_strerror(rc));
	} else if (!rl.stream) {
		relay_head(&rl);
		if (rl.len > 0)
			FCGX_PutStr(rl.buf, (int)rl.len, r->out);
	}
	free(rl.buf);
	free(body);
}

int
main(void)
{
	const char		*url = getenv("FLOOR_UPSTREAM");
	const char		*token = getenv("FLOOR_TOKEN");
	struct curl_slist	*hdrs = NULL;
	FCGX_Request		 r;
	CURL			*curl;
	char			 auth[1024];

	if (url == NULL || token == NULL) {
		fprintf(stderr, "floor_relay: set FLOOR_UPSTREAM and "
		    "FLOOR_TOKEN\n");
		return EXIT_FAILURE;
	}
	if ((size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
	    token) >= sizeof(auth))
		return EXIT_FAILURE;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
	    (curl = curl_easy_init()) == NULL)
		return EXIT_FAILURE;
	hdrs = curl_slist_append(hdrs, auth);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (hdrs == NULL)
		return EXIT_FAILURE;

	/* Set once; the handle keeps its connection cache across requests. */
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);

	if (FCGX_Init() != 0 || FCGX_InitRequest(&r, 0, 0) != 0)
		return EXIT_FAILURE;
	while (FCGX_Accept_r(&r) >= 0) {
		relay_one(curl, hdrs, &r);
		FCGX_Finish_r(&r);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	return EXIT_SUCCESS;
}
