/*
 * upstream.c: libcurl, kept to this file.
 *
 * Only http and https; the caller has already checked that plain http
 * goes to loopback (or that the operator allowed it).  Redirects are not
 * followed: an API that redirects a POST is misconfigured, and following
 * would send the key elsewhere.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "conn.h"
#include "upstream.h"
#include "util.h"
#include "xmalloc.h"

/* How often a running call looks at the client's connection. */
#define WATCH_MS	500

struct upstream {
	CURL			*h;
	const struct conn_watch	*watch;	/* the client's connection, or NULL */
};

static size_t	on_write(char *, size_t, size_t, void *);
static size_t	on_header(char *, size_t, size_t, void *);
static int	on_progress(void *, curl_off_t, curl_off_t, curl_off_t,
		    curl_off_t);

struct upstream *
upstream_new(void)
{
	struct upstream	*u = xcalloc(1, sizeof(*u));

	if ((u->h = curl_easy_init()) == NULL) {
		free(u);
		return NULL;
	}
	/*
	 * What every call sets alike, once per handle: upstream_perform sets
	 * only what differs between calls (a reset and ~20 options per call
	 * were a tenth of curl's cost for a short chat).
	 */
	curl_easy_setopt(u->h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(u->h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(u->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(u->h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(u->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(u->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(u->h, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Whatever encoding the upstream offers, we hand on plain bytes. */
	curl_easy_setopt(u->h, CURLOPT_ACCEPT_ENCODING, "");
	return u;
}

void
upstream_free(struct upstream *u)
{
	if (u == NULL)
		return;
	curl_easy_cleanup(u->h);
	free(u);
}

void
upstream_watch(struct upstream *u, const struct conn_watch *w)
{
	u->watch = w;
}

int
upstream_client_gone(const struct upstream *u)
{
	return u != NULL && u->watch != NULL && conn_gone(u->watch);
}

struct xfer {
	struct upstream_call	*c;
	CURL			*h;
	const struct conn_watch	*watch;
	int64_t			 last_watch;
	size_t			 cap;
	int			 aborted;
	int			 too_large;
	int64_t			 last_tick;
};

static long
xfer_status(struct xfer *x)
{
	long	st = 0;

	if (x->c->status == 0) {
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &st);
		x->c->status = st;
	}
	return x->c->status;
}

static size_t
on_write(char *p, size_t size, size_t n, void *arg)
{
	struct xfer		*x = arg;
	struct upstream_call	*c = x->c;
	size_t			 len = size * n;
	long			 st = xfer_status(x);

	if (c->stream && st >= 200 && st < 300 && c->on_data != NULL) {
		if (c->on_data(c->arg, p, len) != 0) {
			x->aborted = 1;
			return 0;	/* curl stops and closes the connection */
		}
		return len;
	}
	if (c->resp_len + len > c->max_response) {
		x->too_large = 1;
		return 0;
	}
	if (c->resp_len + len + 1 > x->cap) {
		x->cap = (c->resp_len + len + 1) * 2;
		c->resp = xrealloc(c->resp, x->cap);
	}
	memcpy(c->resp + c->resp_len, p, len);
	c->resp_len += len;
	c->resp[c->resp_len] = '\0';
	return len;
}

static void
copy_header_value(char *dst, size_t sz, const char *v, size_t n)
{
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' ||
	    v[n - 1] == ' '))
		n--;
	if (n >= sz)
		n = sz - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct xfer		*x = arg;
	struct upstream_call	*c = x->c;
	size_t			 len = size * n;

	/* A new status line (after 100 Continue, say) resets what we read. */
	if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
		c->status = 0;
		c->retry_after[0] = c->retry_after_ms[0] = '\0';
		c->content_type[0] = '\0';
		return len;
	}
	if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
		copy_header_value(c->retry_after, sizeof(c->retry_after),
		    p + 12, len - 12);
	else if (len > 15 && strncasecmp(p, "retry-after-ms:", 15) == 0)
		copy_header_value(c->retry_after_ms, sizeof(c->retry_after_ms),
		    p + 15, len - 15);
	else if (len > 13 && strncasecmp(p, "Content-Type:", 13) == 0)
		copy_header_value(c->content_type, sizeof(c->content_type),
		    p + 13, len - 13);
	return len;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	struct xfer	*x = arg;
	int64_t		 now = mono_ms();

	(void)dt; (void)dn; (void)ut; (void)un;
	if (x->watch != NULL && now - x->last_watch >= WATCH_MS) {
		x->last_watch = now;
		if (conn_gone(x->watch)) {
			x->aborted = 1;
			return 1;	/* curl closes the upstream connection */
		}
	}
	if (x->c->on_tick == NULL || now - x->last_tick < 1000)
		return 0;
	x->last_tick = now;
	if (x->c->on_tick(x->c->arg) != 0) {
		x->aborted = 1;
		return 1;
	}
	return 0;
}

enum upstream_result
upstream_perform(struct upstream *u, struct upstream_call *c)
{
	struct curl_slist	*hl = NULL;
	struct xfer		 x;
	CURLcode		 rc;
	size_t			 i;

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.h = u->h;
	x.watch = u->watch;
	x.last_tick = x.last_watch = mono_ms();
	c->status = 0;
	c->resp = NULL;
	c->resp_len = 0;
	c->errbuf[0] = c->retry_after[0] = c->retry_after_ms[0] = '\0';
	c->content_type[0] = '\0';

	for (i = 0; c->headers != NULL && c->headers[i] != NULL; i++)
		hl = curl_slist_append(hl, c->headers[i]);
	/* No "Expect: 100-continue" round trip for big bodies. */
	hl = curl_slist_append(hl, "Expect:");
	/* Everything a call can differ in is set on every call. */
	curl_easy_setopt(u->h, CURLOPT_URL, c->url);
	curl_easy_setopt(u->h, CURLOPT_HTTPHEADER, hl);
	if (c->body != NULL) {
		curl_easy_setopt(u->h, CURLOPT_POST, 1L);
		curl_easy_setopt(u->h, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(u->h, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)c->body_len);
	} else {
		/* No last call's body left behind (POSTFIELDS means POST). */
		curl_easy_setopt(u->h, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(u->h, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)-1);
		curl_easy_setopt(u->h, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(u->h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(u->h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(u->h, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(u->h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(u->h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	/* Idle limit, not a total one, for a stream: it must not be cut. */
	curl_easy_setopt(u->h, CURLOPT_LOW_SPEED_LIMIT, c->stream ? 1L : 0L);
	curl_easy_setopt(u->h, CURLOPT_LOW_SPEED_TIME,
	    c->stream ? (long)c->idle_timeout_s : 0L);
	curl_easy_setopt(u->h, CURLOPT_TIMEOUT,
	    c->stream ? 0L : (long)c->total_timeout_s);

	rc = curl_easy_perform(u->h);
	/* Nothing of this call's (on the stack, or the caller's) stays set. */
	curl_easy_setopt(u->h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(u->h, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hl);
	if (x.aborted)
		return UP_ABORTED;
	if (x.too_large)
		return UP_TOO_LARGE;
	switch (rc) {
	case CURLE_OK:
		xfer_status(&x);
		return UP_OK;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SEND_ERROR:
		return UP_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return UP_TIMEOUT;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
		return x.c->status != 0 ? UP_ERROR : UP_CONNECT;
	default:
		if (c->errbuf[0] == '\0')
			snprintf(c->errbuf, sizeof(c->errbuf), "%s",
			    curl_easy_strerror(rc));
		return UP_ERROR;
	}
}

void
upstream_call_done(struct upstream_call *c)
{
	free(c->resp);
	c->resp = NULL;
	c->resp_len = 0;
}

int64_t
upstream_retry_after_ms(const struct upstream_call *c, int64_t now)
{
	const char	*es;
	long long	 v;
	struct tm	 tm;
	char		*end;

	if (c->retry_after_ms[0] != '\0') {
		v = parse_int(c->retry_after_ms, 0, 86400000LL * 7, &es);
		if (es == NULL)
			return v;
	}
	if (c->retry_after[0] == '\0')
		return -1;
	v = parse_int(c->retry_after, 0, 86400LL * 7, &es);
	if (es == NULL)
		return v * 1000;
	/* An HTTP date: "Sun, 06 Nov 1994 08:49:37 GMT". */
	memset(&tm, 0, sizeof(tm));
	end = strptime(c->retry_after, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL)
		return -1;
	v = (long long)timegm(&tm) * 1000 - now;
	return v < 0 ? 0 : v;
}
