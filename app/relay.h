/*
 * relay.h: send a client's OpenAI request to an account of the pool and
 * relay the answer, rotating on rate limits, quota, billing and upstream
 * faults.
 *
 * The loop in relay.c does the I/O; every decision it takes (deliver,
 * wait and retry, refresh and retry, park the account and move on, fail)
 * comes from relay_decide(), a pure function of what happened and where
 * the request stands.
 */
#ifndef QR_RELAY_H
#define QR_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "provider.h"

struct req;
struct cfg;

enum relay_kind {
	RELAY_CHAT,		/* POST {base}/chat/completions */
	RELAY_EMBED		/* POST {base}/embeddings */
};

/*
 * r->json is the validated client body; model is the name after aliases.
 * Always answers the client; returns 0.
 */
int	relay_request(struct req *r, enum relay_kind, const char *model);

/* Where a request stands when something happened (the decision's input). */
struct relay_state {
	enum relay_class cls;		/* what happened */
	int64_t		 retry_after_ms;/* the answer's Retry-After; -1 none */
	int64_t		 hits;		/* consecutive marks on (account, model)
					   before this answer */
	int		 data_sent;	/* bytes already reached the client */
	int		 faults;	/* upstream faults so far, this included */
	int		 same_retries;	/* waits already spent on this account */
	int		 refreshed;	/* this account's token was force-refreshed */
	int		 can_refresh;	/* the provider refreshes tokens */
	int64_t		 waited_ms;	/* waited so far in this request */
	int		 had_error;	/* an account failed otherwise than limits */
	/* RC_NO_ACCOUNT: what the selector saw */
	size_t		 total;		/* accounts in the pool */
	size_t		 serving;	/* active accounts serving the model */
	size_t		 limited;	/* of those, parked */
	size_t		 skipped;	/* of those, already tried this request */
	int64_t		 reset_in_ms;	/* earliest reset, from now */
};

enum relay_action {
	ACT_DELIVER,		/* relay the answer (2xx) */
	ACT_RELAY_ERROR,	/* relay the provider's error answer, stop */
	ACT_WAIT_RETRY,		/* wait wait_ms, same account again */
	ACT_REFRESH_RETRY,	/* force a token refresh, same account again */
	ACT_PARK_NEXT,		/* mark (account, model) for park_ms; next account */
	ACT_NEXT,		/* next account, no mark */
	ACT_WAIT_SELECT,	/* wait wait_ms for a parked account, select again */
	ACT_FAIL,		/* answer the client with fail, stop */
	ACT_STOP		/* the client is gone: stop, answer nothing */
};

enum relay_fail {
	FAIL_NONE,
	FAIL_NO_ACCOUNTS,	/* 503 no_accounts: the pool is empty */
	FAIL_NOT_SERVED,	/* 404 (chat) / 400 (embeddings) model_not_found */
	FAIL_LIMITED,		/* 429 with Retry-After: all parked */
	FAIL_UNUSABLE,		/* 503 no_usable_account */
	FAIL_TIMEOUT,		/* 504 upstream_timeout */
	FAIL_UNREACHABLE,	/* 502 upstream_unreachable */
	FAIL_MALFORMED		/* 502 upstream_malformed */
};

struct relay_step {
	enum relay_action act;
	int64_t		 wait_ms;	/* ACT_WAIT_RETRY, ACT_WAIT_SELECT */
	int64_t		 park_ms;	/* ACT_PARK_NEXT: from now */
	int64_t		 park_hits;	/* ACT_PARK_NEXT: hits to record */
	const char	*reason;	/* ACT_PARK_NEXT: "rate_limit", "quota",
					   "billing", "auth" */
	enum relay_fail	 fail;		/* ACT_FAIL */
};

/*
 * The relay's one decision: what to do next, given what happened (s->cls
 * and the rest of s) and the rotation settings of cfg (DESIGN.md,
 * "Accounts, rotation, refresh").  Pure: reads only its arguments.
 *   RC_OK                      deliver
 *   RC_CLIENT                  relay the provider's error
 *   RC_MALFORMED               fail 502 upstream_malformed (nothing of it
 *                              was passed on; a broken provider is not
 *                              retried into another answer)
 *   RC_GONE                    stop
 *   RC_TIMEOUT, RC_UNREACHABLE next account; fail 504/502 once bytes went
 *                              out or faults > upstream_retries
 *   RC_FAULT                   next account; relay the error after
 *                              upstream_retries
 *   RC_AUTH                    refresh once (providers that refresh), else
 *                              park 60 s
 *   RC_NO_TOKEN                next account
 *   RC_RATE, RC_QUOTA          Retry-After (or backoff from hits, or
 *                              quota_cooldown_seconds) within
 *                              retry_same_account_threshold_seconds: wait
 *                              once on the same account; a rate limit with
 *                              switch_on_first_rate_limit off: one backoff
 *                              wait; otherwise park and move on
 *   RC_BILLING                 park for Retry-After or
 *                              quota_cooldown_seconds and move on (waiting
 *                              does not bring credit back)
 *   RC_NO_ACCOUNT              wait for the earliest reset when every
 *                              remaining account is parked and the wait
 *                              fits max_rate_limit_wait_seconds; else fail
 *                              with why
 */
struct relay_step relay_decide(const struct cfg *, const struct relay_state *);

/* A name for a class: the error counter's key ("quota", ...); NULL for RC_OK. */
const char *relay_class_name(enum relay_class);

/*
 * The qwen-oauth body adjustments (provider_qwen.c), for tests: stream as
 * the client asked.  Modifies body in place.
 */
void	relay_adjust_qwen(struct json_object *body, int stream);

/*
 * Is this SSE event (its data line, "data: {...}") a usage-only chunk
 * ("choices":[] with a "usage" object) that the client did not ask for?
 * Pure; used by the relay to drop what a provider adjustment added.
 */
int	relay_drop_event(const char *event, size_t len,
	    const struct client_wants *);

#endif
