/*
 * metrics.h: Prometheus metrics.  Counters live in the stats env (shared by
 * every worker, kept across restarts); gauges are read at scrape time from
 * the accounts and marks.  Label values are route patterns, status codes,
 * key names, account ids, provider presets and fixed reasons: never a key,
 * token or anything a client sent.
 */
#ifndef QR_METRICS_H
#define QR_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct req;
struct server;
struct store;

enum metric_refresh {
	METRIC_REFRESH_OK,
	METRIC_REFRESH_FAILED,		/* transient: retried later */
	METRIC_REFRESH_REJECTED,	/* the account needs a new login */
	METRIC_REFRESH__MAX
};

/*
 * Count a finished request: route and status, key, tokens, upstream
 * latency, rotations, the tokens of the key's tpm window and the key's
 * use counter (keys list), all in ONE stats write transaction.  Called
 * once per request after the handler.
 */
void	metrics_request_done(const struct req *);

/* Count one refresh with its result (one small stats write). */
void	metrics_refresh(struct store *, enum metric_refresh);

/*
 * The whole exposition, Prometheus text format 0.0.4, into *out (caller
 * frees; *len its length).  Returns 0 or a store error.
 */
int	metrics_render(struct server *, char **out, size_t *len);

/*
 * Requests in flight and the capacity to serve them, from the workers'
 * shared load table (serve's, or the one in state_dir): every live
 * worker's in-flight count, and the request slots of those serving.
 * Outside a worker (no table): 1 and the configured workers.
 */
void	metrics_inflight(const struct server *, int64_t *inflight,
	    int64_t *capacity);

#endif
