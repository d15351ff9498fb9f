/*
 * select.h: which account serves the next request.
 *
 * select_account() reads accounts, marks and the strategy's cursor from
 * the store, asks select_pick() (pure: the strategies and the filters),
 * and writes back the cursor the pick moved.  Strategies (cfg.strategy):
 * sticky (default; keep the current account until it is limited),
 * round-robin, least-used (fewest requests), hybrid (sticky, moving on
 * after hybrid_rotate_requests).  Marks are per (account, model); an
 * account serves a model when its model list (the operator's --models,
 * else the upstream's catalog, else the preset's defaults; empty = any)
 * names it.
 */
#ifndef QR_SELECT_H
#define QR_SELECT_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

struct server;
struct account;
struct mark;
struct provider;

struct select_result {
	struct account	*acct;		/* chosen, or NULL */
	const struct provider *prov;	/* its provider (resolved once), or NULL */
	size_t		 serving;	/* active accounts that serve the model */
	size_t		 limited;	/* of those, marked until later */
	size_t		 skipped;	/* of those, in skip[] and not limited */
	int64_t		 earliest_reset;/* ms, when limited > 0 */
	size_t		 total;		/* accounts in the pool */
	int64_t		 hits;		/* the chosen one's (expired) mark hits */
	size_t		 needs_login;	/* serve the model, need a new login */
	size_t		 disabled;	/* serve the model, disabled */
};

/*
 * Pick an account for model, skipping the ids in skip[0..nskip).
 * Returns 0 with r->acct set (caller frees with account_free), -ENOENT
 * with the counts filled in to say why there is none, or the store's
 * -errno.
 */
int	select_account(struct server *, const char *model,
	    char (*skip)[24], size_t nskip, struct select_result *r);

/* Everything a pick depends on. */
struct select_in {
	enum select_strategy	  strategy;
	struct account *const	 *accts;	/* the pool, creation order */
	size_t			  n;
	const struct mark	 *marks;
	size_t			  nmarks;
	const char		 *model;
	char			(*skip)[24];	/* tried this request */
	size_t			  nskip;
	int64_t			  now;		/* ms */
	const char		 *sticky;	/* meta "sticky", "" for none */
	int64_t			  rr_cursor;	/* round-robin: counter after
						   this request's increment */
	int64_t			  hybrid_count;	/* hybrid: requests the sticky
						   account served in its run */
	long long		  hybrid_rotate;/* hybrid_rotate_requests */
};

/* What a pick decided; the caller writes the cursors back. */
struct select_out {
	long		 pick;		/* index into accts, or -1 */
	size_t		 serving, limited, skipped, total;
	size_t		 needs_login, disabled;	/* would serve, not active */
	int64_t		 earliest_reset;
	int64_t		 hits;		/* the pick's mark hits (expired mark) */
	int		 sticky_moved;	/* sticky: meta "sticky" = accts[pick] */
	int		 hybrid_restart;/* hybrid: the pick starts a new run
					   (its count = 1); else count + 1 */
};

/*
 * The strategies, pure: filter the pool to active accounts that serve
 * in->model, are not marked past in->now and not in skip, then pick by
 * in->strategy.  Returns 0 with out->pick >= 0, or -ENOENT with pick -1
 * and the counts saying why.
 */
int	select_pick(const struct select_in *in, struct select_out *out);

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
