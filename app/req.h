/*
 * req.h: one HTTP request as handlers see it, and the response writer.
 *
 * The worker fills a struct req from the FastCGI parameters; handlers read
 * it and answer through resp_*().  Nothing here names libfcgi: the bytes go
 * to a struct sink, which the worker points at the FastCGI stream and the
 * unit tests point at memory.
 */
#ifndef QR_REQ_H
#define QR_REQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "outcome.h"

struct cfg;
struct store;
struct client_key;

/* The shape of the errors a route answers with (resp_error). */
enum resp_shape {
	RESP_SHAPE_OPENAI = 0,	/* {"error":{"message","type","code","param"}} */
	RESP_SHAPE_ANTHROPIC	/* {"type":"error","error":{"type","message"}} */
};

enum http_method {
	M_GET = 1 << 0,
	M_POST = 1 << 1,
	M_PUT = 1 << 2,
	M_PATCH = 1 << 3,
	M_DELETE = 1 << 4,
	M_OPTIONS = 1 << 5,
	M_HEAD = 1 << 6,
	M_OTHER = 1 << 7
};

/* Where response bytes go.  write returns 0 or -1 (the client is gone). */
struct sink {
	int	(*write)(void *ctx, const void *, size_t);
	int	(*flush)(void *ctx);
	void	*ctx;
};

/*
 * Write n bytes to s unless *broken is set; a failed write sets it, so
 * every later write fails too.  Returns 0, or -1 (broken).  resp.c.
 */
int	sink_send(const struct sink *s, int *broken, const void *, size_t n);

enum load_state {
	LOAD_EMPTY = 0,		/* no process in this slot */
	LOAD_STARTING,		/* forked, threads not up yet */
	LOAD_SERVING,
	LOAD_STOPPING		/* draining: accepts no more */
};

/*
 * A worker process's load, shared by its threads (atomics, no lock):
 * what /health/deep reports and what admission control decides on.
 * Under `serve` every worker's struct lives in one shared memory segment
 * the master made before forking, so the master (dynamic mode) and any
 * worker's /health/deep see the whole pool.
 */
struct load {
	atomic_int		 pid;
	atomic_int		 state;		/* enum load_state */
	atomic_int		 in_flight;	/* requests being served now */
	atomic_int		 capacity;	/* request slots (cfg threads) */
	atomic_int		 threads;	/* slots + reserve for probes */
	atomic_ulong		 served;	/* requests answered */
	atomic_ulong		 refused;	/* 503s for lack of a slot */
	int64_t			 started_ms;	/* wall clock */
};

/*
 * What a worker thread owns for its whole life, lent to every request.
 * The store and the sealing key are the process's, shared by its threads;
 * the upstream client is the thread's own.
 */
struct server {
	const struct cfg	*cfg;
	struct store		*st;		/* NULL if the store failed to open */
	char			 st_err[768];	/* why it failed */
	void			*upstream;	/* per-worker upstream client */
	unsigned char		 seal_key[32];	/* tokens at rest */
	int			 have_key;	/* seal_key loaded */
	char			 key_err[256];	/* why not */
	int64_t			 started_ms;
	unsigned long		 served;
	struct load		*load;		/* NULL outside a worker */
	struct load		*pool;		/* serve: every worker, or NULL */
	int			 npool;
	/*
	 * The refresh lease names a process; the process's threads take
	 * this lock around taking it and refreshing, so one thread refreshes
	 * and the others then see fresh tokens.  NULL: single-threaded.
	 */
	pthread_mutex_t		*refresh_lock;
	/*
	 * Access log, 0 or -1 = off.  One descriptor per process, shared by
	 * its threads: SIGHUP reopens the file onto the same number (dup2).
	 */
	int			 alog_fd;
	int			 alog_gen;	/* reopens seen when it was opened */
};

struct req {
	struct server		*srv;
	enum http_method	 method;
	const char		*method_name;
	const char		*path;		/* routed path, e.g. /v1/models */
	const char		*raw_path;	/* what the client asked for */
	const char		*request_uri;	/* REQUEST_URI as sent, or NULL */
	const char		*query;
	const char		*origin;	/* Origin header, or NULL */
	const char		*content_type;
	const char		*acr_headers;	/* Access-Control-Request-Headers */
	const char		*auth;		/* Authorization / x-api-key value */
	const char		*remote_addr;

	char			*body;		/* NUL-terminated; body_len bytes */
	size_t			 body_len;
	json_object		*json;		/* parsed body when the route wants it */

	char			 param[256];	/* the {id} of the route (a model id
						   may have '/'; see route.h) */
	struct client_key	*client;	/* authenticated key, or NULL */
	int			 admin;
	enum resp_shape		 err_shape;	/* set by the route */

	struct sink		 sink;
	int			 status;	/* sent status, for the request log */
	int			 opened;	/* headers sent */
	int			 broken;	/* a write failed: client gone */
	size_t			 sent;		/* body bytes sent */
	int64_t			 t0;		/* monotonic ms at start */
	int			 route;		/* enum route_id, -1 = none matched */
	struct req_outcome	 out;		/* what the relay did (outcome.h) */
};

/*
 * Send the status line and headers.  ctype NULL means application/json.
 * extra is NULL or more header lines, each ending in "\r\n".  Adds
 * nosniff, frame DENY and the CORS headers the config allows.
 */
int	resp_open(struct req *, int status, const char *ctype, const char *extra);
/* Body bytes; 0, or -1 once the client is gone (then every later write is -1). */
int	resp_write(struct req *, const void *, size_t);
int	resp_puts(struct req *, const char *);
int	resp_flush(struct req *);
/*
 * A complete response: headers (extra may be NULL), Content-Length, the
 * body, and a final "\n" when newline is set (JSON answers end in one).
 */
int	resp_body(struct req *, int status, const char *ctype, const char *extra,
	    const char *body, size_t len, int newline);
/* A complete JSON response (takes no ownership of obj). */
int	resp_json(struct req *, int status, json_object *obj);
/* The same with extra header lines. */
int	resp_json_h(struct req *, int status, json_object *obj,
	    const char *extra);
/* A complete OpenAI-shaped error: {"error":{"message","type","code","param"}}. */
int	resp_error(struct req *, int status, const char *type, const char *code,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same with extra header lines (Retry-After, Allow). */
int	resp_error_h(struct req *, int status, const char *extra,
	    const char *type, const char *code, const char *fmt, ...)
	    __attribute__((format(printf, 6, 7)));
const char *resp_status_text(int);

/* Release what a request holds; the struct itself belongs to the caller. */
void	req_free(struct req *);

#endif
