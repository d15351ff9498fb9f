/*
 * upstream.h: the one module that talks to providers (libcurl).
 *
 * One CURL handle per worker thread, reused so connections stay open.  A call
 * either buffers the answer (non-streaming, capped, total timeout) or hands
 * each piece of the body to a callback as it arrives (streaming, idle
 * timeout only, so a long stream is never cut).
 */
#ifndef QR_UPSTREAM_H
#define QR_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

struct cfg;
struct conn_watch;

struct upstream;

/* Create/free a worker's client; call after fork.  Free accepts NULL. */
struct upstream	*upstream_new(void);
void		 upstream_free(struct upstream *);
/*
 * Watch w, the connection of the request being served, during every later
 * call on u: about every 500 ms (conn_gone); once the client or the web
 * server dropped the request the call ends as UP_ABORTED and the upstream
 * connection is closed, streaming or not, before or after the first byte.
 * NULL stops watching.  The worker sets it per request; w stays the
 * caller's and must outlive the calls.
 */
void		 upstream_watch(struct upstream *, const struct conn_watch *);
/*
 * Between calls (a wait before a retry, say): 1 when the watched client
 * is gone (conn_gone), else 0; 0 too when nothing is watched or u is NULL.
 */
int		 upstream_client_gone(const struct upstream *);

enum upstream_result {
	UP_OK = 0,		/* an HTTP answer came (any status) */
	UP_CONNECT,		/* could not connect / resolve / TLS */
	UP_TIMEOUT,		/* connect, idle or total timeout */
	UP_ABORTED,		/* a callback asked to stop (client gone) */
	UP_TOO_LARGE,		/* buffered answer over the cap */
	UP_ERROR		/* anything else */
};

struct upstream_call {
	/* in */
	const char	*url;
	const char	*const *headers;	/* "Name: value", NULL-terminated */
	const char	*body;
	size_t		 body_len;
	int		 stream;		/* hand the body to on_data */
	long		 connect_timeout_ms;
	long		 idle_timeout_s;	/* streaming */
	long		 total_timeout_s;	/* non-streaming */
	size_t		 max_response;		/* buffered cap */
	/*
	 * Streaming: called with each piece of a 2xx body (status known);
	 * return 0 to go on, -1 to abort.  Non-2xx bodies are buffered.
	 */
	int		(*on_data)(void *, const char *, size_t);
	/* Called about once a second while waiting; -1 aborts. */
	int		(*on_tick)(void *);
	void		*arg;

	/* out */
	long		 status;
	char		*resp;			/* buffered body (NUL-terminated) */
	size_t		 resp_len;
	char		 content_type[128];
	char		 retry_after[64];	/* Retry-After header, raw */
	char		 retry_after_ms[32];	/* retry-after-ms header, raw */
	char		 errbuf[256];		/* curl's words on failure */
};

/*
 * Perform the call.  Returns the result; c->status and c->resp are set
 * when UP_OK (c->resp also for a non-2xx answer while streaming).  The
 * caller frees c->resp with upstream_call_done().
 */
enum upstream_result upstream_perform(struct upstream *, struct upstream_call *);
void	upstream_call_done(struct upstream_call *);

/*
 * Retry-After as milliseconds from now: seconds or an HTTP date; -1 when
 * absent or unreadable.  Takes retry-after-ms first when present.
 */
int64_t	upstream_retry_after_ms(const struct upstream_call *, int64_t now_ms);

#endif
