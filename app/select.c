/*
 * select.c: the account selection strategies.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "accounts.h"
#include "cfg.h"
#include "req.h"
#include "select.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

static int
skipped(const char *id, char (*skip)[24], size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strcmp(skip[i], id) == 0)
			return 1;
	return 0;
}

/* The reset time of a live mark on (id, model), or 0. */
static int64_t
marked_until(const struct mark *m, size_t nm, const char *id,
    const char *model, int64_t now)
{
	size_t	i;

	for (i = 0; i < nm; i++)
		if (m[i].resets_at > now && strcmp(m[i].account, id) == 0 &&
		    strcmp(m[i].model, model) == 0)
			return m[i].resets_at;
	return 0;
}

/* Index in c[0..n) of the account with that id, or -1. */
static long
find_id(struct account **c, size_t n, const char *id)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strcmp(c[i]->id, id) == 0)
			return (long)i;
	return -1;
}

/*
 * Sticky: the account in meta "sticky" if usable, else the next usable
 * one after it in creation order (wrapping), which becomes current.
 */
static size_t
pick_sticky(struct server *srv, struct account **all, size_t nall,
    struct account **c, size_t n, int rotate_after)
{
	char	cur[24] = "", key[32];
	long	i, start = 0;
	int64_t	count = 0;

	store_meta_get(srv->st, "sticky", cur, sizeof(cur));
	if ((i = find_id(c, n, cur)) >= 0) {
		if (rotate_after <= 0)
			return (size_t)i;
		snprintf(key, sizeof(key), "hybrid:%s", cur);
		store_stats_incr(srv->st, key, 1, &count);
		if (count <= rotate_after)
			return (size_t)i;
		store_stats_incr(srv->st, key, -count, NULL);
		start = i + 1;
	} else if ((i = find_id(all, nall, cur)) >= 0) {
		/* The current one is limited: the next usable after it. */
		size_t j;
		for (j = 1; j <= nall; j++) {
			long k = find_id(c, n, all[((size_t)i + j) % nall]->id);
			if (k >= 0) {
				start = k;
				break;
			}
		}
	}
	i = start % (long)n;
	if (strcmp(c[i]->id, cur) != 0)
		store_meta_put(srv->st, "sticky", c[i]->id);
	if (rotate_after > 0) {
		snprintf(key, sizeof(key), "hybrid:%s", c[i]->id);
		store_stats_incr(srv->st, key, 1, &count);
	}
	return (size_t)i;
}

/* Give back the list: a borrowed snapshot, or a copy of our own. */
static void
select_release(struct account_snap *snap, struct account **all, size_t n)
{
	if (snap != NULL)
		store_account_snap_put(snap);
	else
		account_list_free(all, n);
}

int
select_account(struct server *srv, const char *model, char (*skip)[24],
    size_t nskip, struct select_result *r)
{
	const struct cfg	 *cfg = srv->cfg;
	struct account_snap	 *snap = NULL;
	struct account *const	 *borrowed;
	struct account		**all = NULL, **cand;
	struct mark		 *marks = NULL;
	size_t			  nall = 0, nm = 0, n = 0, i, pick = 0;
	int64_t			  now = now_ms(), until, cursor;
	int			  rc;

	memset(r, 0, sizeof(*r));
	/*
	 * Only least-used needs the counters (a read per account, into a
	 * copy); the others borrow the store's parsed list, read only, and
	 * copy just the account chosen.
	 */
	if (strcmp(cfg->account_selection_strategy, "least-used") == 0)
		rc = store_account_list(srv->st, &all, &nall);
	else if ((rc = store_account_snap_get(srv->st, &snap, &borrowed,
	    &nall)) == 0)
		all = (struct account **)(uintptr_t)borrowed;
	if (rc != 0)
		return rc;
	if ((rc = store_mark_list(srv->st, &marks, &nm)) != 0) {
		select_release(snap, all, nall);
		return rc;
	}
	r->total = nall;
	cand = xcalloc(nall + 1, sizeof(*cand));
	for (i = 0; i < nall; i++) {
		if (strcmp(all[i]->status, "active") != 0 ||
		    !account_serves(all[i], model))
			continue;
		r->serving++;
		if ((until = marked_until(marks, nm, all[i]->id, model,
		    now)) != 0) {
			r->limited++;
			if (r->earliest_reset == 0 || until < r->earliest_reset)
				r->earliest_reset = until;
			continue;
		}
		if (skipped(all[i]->id, skip, nskip))
			continue;
		cand[n++] = all[i];
	}
	if (n == 0) {
		mark_list_free(marks, nm);
		free(cand);
		select_release(snap, all, nall);
		return -ENOENT;
	}

	const char *s = cfg->account_selection_strategy;
	if (strcmp(s, "round-robin") == 0) {
		store_stats_incr(srv->st, "rr", 1, &cursor);
		pick = (size_t)((cursor - 1) % (int64_t)n);
	} else if (strcmp(s, "least-used") == 0) {
		for (i = 1; i < n; i++)
			if (cand[i]->total_requests <
			    cand[pick]->total_requests)
				pick = i;
	} else
		pick = pick_sticky(srv, all, nall, cand, n,
		    strcmp(s, "hybrid") == 0 ?
		    (int)cfg->hybrid_rotate_requests : 0);

	r->acct = cand[pick];
	/* Hits left by an expired mark: the relay clears them on success. */
	for (i = 0; i < nm; i++)
		if (strcmp(marks[i].account, r->acct->id) == 0 &&
		    strcmp(marks[i].model, model) == 0)
			r->hits = marks[i].hits;
	mark_list_free(marks, nm);
	if (snap != NULL) {
		r->acct = account_copy(r->acct);
		store_account_snap_put(snap);
	} else {
		for (i = 0; i < nall; i++)
			if (all[i] != r->acct)
				account_free(all[i]);
		free(all);
	}
	free(cand);
	return 0;
}
