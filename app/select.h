/*
 * select.h: which account serves the next request.
 *
 * One read of accounts and marks, then the strategy in memory: sticky
 * (default; keep the current account until it is limited), round-robin,
 * least-used (fewest requests), hybrid (sticky, moving on after
 * hybrid_rotate_requests).  Marks are per (account, model).
 */
#ifndef QR_SELECT_H
#define QR_SELECT_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct account;

struct select_result {
	struct account	*acct;		/* chosen, or NULL */
	size_t		 serving;	/* active accounts that serve the model */
	size_t		 limited;	/* of those, marked until later */
	int64_t		 earliest_reset;/* ms, when limited > 0 */
	size_t		 total;		/* accounts in the pool */
	int64_t		 hits;		/* the chosen one's (expired) mark hits */
	size_t		 needs_login;	/* serve the model, need a new login */
	size_t		 disabled;	/* serve the model, disabled */
};

/*
 * Pick an account for model, skipping the ids in skip[0..nskip).
 * Returns 0 with r->acct set (caller frees with account_free), or
 * -ENOENT with the counts filled in to say why there is none.
 */
int	select_account(struct server *, const char *model,
	    char (*skip)[24], size_t nskip, struct select_result *r);

/*
 * Why no active account serves the model although some would: a sentence
 * for the client naming the cause and the fix (needs_login: 'qwenrelay
 * accounts login'; disabled: 'qwenrelay accounts enable ID') in buf.
 * Returns 1 when that is the case (answer 503), 0 when no account at all
 * serves the model (404).
 */
int	select_unusable(const struct select_result *, const char *model,
	    char *buf, size_t len);

#endif
