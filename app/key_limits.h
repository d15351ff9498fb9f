/*
 * key_limits.h: per-key limits.  Requests and tokens per sliding minute, shared
 * by every worker through one counter record per key in the stats env, and
 * the models a key may use.
 *
 * The minute is 12 buckets of 5 s: a request is refused while the buckets
 * of the last 60 s (this one included) already hold rpm requests or tpm
 * tokens; refused requests are not counted, so a client that backs off
 * for Retry-After seconds gets through.  Tokens are known only when an
 * answer is done, so tpm admits the request that crosses it and refuses
 * the next ones.
 */
#ifndef QR_KEY_LIMITS_H
#define QR_KEY_LIMITS_H

#include <stddef.h>
#include <stdint.h>

struct cfg;
struct client_key;
struct req;
struct stats_op;

#define LIMITS_BUCKETS		12
#define LIMITS_BUCKET_MS	5000
/* record: [0] newest bucket number, [1..12] requests, [13..24] tokens */
#define LIMITS_FIELDS		(1 + 2 * LIMITS_BUCKETS)
#define LIMITS_KEY_MAX		80

enum limit_verdict {
	LIMIT_OK,
	LIMIT_RPM,		/* too many requests this minute */
	LIMIT_TPM		/* too many tokens this minute */
};

/*
 * The decision, on a record f of LIMITS_FIELDS at wall time now (ms):
 * rolls the window forward, compares with rpm and tpm (0 = no limit) and,
 * when the request may go, counts it.  On a refusal *retry_s is the
 * seconds until enough buckets have expired (at least 1).  Pure: tested
 * from a table.
 */
enum limit_verdict limits_decide(int64_t *f, int64_t now, int64_t rpm,
	    int64_t tpm, int64_t *retry_s);
/* Add tokens to the record at now (rolling it forward first). */
void	limits_add_tokens(int64_t *f, int64_t now, int64_t tokens);

/* The requests limit that applies to k: its own rpm, else the config's. */
int64_t	limits_rpm(const struct cfg *, const struct client_key *);

/*
 * Admit r's key: 0 when it may go on, -1 when it has been answered (429
 * with Retry-After, code rate_limit_exceeded).  No store write when the
 * key has no limit.  A store error lets the request through (logged).
 */
int	limits_admit(struct req *);

/*
 * May k use model?  1 when k has no model list (or k is NULL), when the
 * list names model, or names the model an alias of model points to.
 */
int	limits_model_allowed(const struct cfg *, const struct client_key *,
	    const char *model);
/*
 * For the relay: model is the name after aliases.  0 when the key may use
 * it (under the client's own name or the target's), else answers 403
 * code model_not_allowed and returns -1.
 */
int	limits_model_check(struct req *, const char *model);

/*
 * The stats op that adds the tokens of r's finished request to its key's
 * window; 0 and op filled when the key has a token limit, -1 when there is
 * nothing to record.  key must hold LIMITS_KEY_MAX bytes and arg 2
 * int64_t (now, tokens); both must outlive the op.
 */
int	limits_tokens_op(const struct req *, struct stats_op *op, char *key,
	    int64_t *arg);

#endif
