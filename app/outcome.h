/*
 * outcome.h: what happened to one request behind the handler, for the
 * metrics and the access log (written once, after the handler returns, by
 * app/metrics.c and app/access_log.c).  The relay fills it through these
 * few calls; the record lives in struct req, so it is per request and
 * needs no lock.
 */
#ifndef QR_OUTCOME_H
#define QR_OUTCOME_H

#include <stdint.h>

struct req;
struct account;

/* Why the relay left an account for another one (or retried it). */
enum rotation_reason {
	ROT_RATE_LIMIT,
	ROT_QUOTA,
	ROT_AUTH,
	ROT_BILLING,		/* the provider wants payment */
	ROT_UPSTREAM,		/* 5xx or unreachable */
	ROT_TIMEOUT,
	ROT_REFRESH,		/* its token could not be refreshed */
	ROT__MAX
};

/*
 * Usage counters the relay recorded for this request (per account tried,
 * per client key), written with the request's other counters in one stats
 * write transaction after the handler returns (metrics_request_done).
 */
#define OUTCOME_USAGE_MAX	4
struct outcome_usage {
	char		kind;		/* 'a' account, 'c' client key */
	char		id[80];		/* account id or key name */
	char		error_class[24];/* "" = no error */
	int64_t		requests;
	int64_t		errors;
	int64_t		prompt_tokens;
	int64_t		completion_tokens;
	int64_t		when;		/* ms */
};

struct req_outcome {
	char		model[128];	/* the model served (after aliases) */
	char		account[24];	/* the last account tried, or "" */
	char		provider[32];	/* its provider preset */
	int		upstream_status;/* last upstream HTTP status, 0 = none */
	int		attempts;	/* upstream calls made */
	int64_t		tokens_in;	/* prompt tokens reported */
	int64_t		tokens_out;	/* completion tokens reported */
	int64_t		upstream_ms;	/* time in upstream calls, summed */
	int64_t		upstream_last_ms;/* the last call's duration */
	int		last_reason;	/* -1 or enum rotation_reason of the last failed attempt */
	unsigned int	rotations[ROT__MAX];
	struct outcome_usage usage[OUTCOME_USAGE_MAX];
	size_t		nusage;
};

/* The model the request asked for, after aliases (truncated to fit). */
void	outcome_model(struct req *, const char *model);
/* One upstream call to a: its HTTP status (0 if none) and duration. */
void	outcome_attempt(struct req *, const struct account *a, long status,
	    int64_t ms);
/*
 * How the last attempt ended, as the relay's error class
 * (relay_class_name: "rate_limit", "quota", "billing", "auth", "upstream",
 * "timeout", "refresh", "client", ...; NULL = success).
 */
void	outcome_class(struct req *, const char *error_class);
/* The relay moves on from the last attempt's account (counted by reason). */
void	outcome_rotated(struct req *);
/* The tokens the provider reported for the answer. */
void	outcome_tokens(struct req *, int64_t in, int64_t out);

/*
 * One request's usage for (kind, id) ('a' account, 'c' client key):
 * queued in r->out for the request's one stats write; when the queue is
 * full (more than OUTCOME_USAGE_MAX attempts) written at once, so nothing
 * is lost.  u->error_class is copied.  Returns 0, or the store's -errno of
 * a direct write.
 */
struct usage;
int	outcome_usage(struct req *, char kind, const char *id,
	    const struct usage *u);

/* The label of a rotation reason ("rate_limit", ...). */
const char *outcome_reason_name(enum rotation_reason);

#endif
