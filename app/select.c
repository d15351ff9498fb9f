/*
 * select.c: the account selection strategies.  select_pick() decides
 * from what it is given; select_account() reads the store for it and
 * writes back the cursors it moved.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "accounts.h"
#include "cfg.h"
#include "provider.h"
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

/* Index in cand[0..nc) of the account with that id, or -1. */
static long
find_cand(const struct select_in *in, const size_t *cand, size_t nc,
    const char *id)
{
	size_t	i;

	for (i = 0; i < nc; i++)
		if (strcmp(in->accts[cand[i]]->id, id) == 0)
			return (long)i;
	return -1;
}

/*
 * Sticky (and hybrid, rotate > 0): the sticky account if it is a
 * candidate and its run is not over, else the next candidate after it in
 * creation order (wrapping).  Returns the index into cand.
 */
static size_t
pick_sticky(const struct select_in *in, const size_t *cand, size_t nc,
    long long rotate, struct select_out *out)
{
	const char	*cur = in->sticky != NULL ? in->sticky : "";
	long		 ci;
	size_t		 i, j, start = 0;

	if ((ci = find_cand(in, cand, nc, cur)) >= 0) {
		if (rotate <= 0 || in->hybrid_count + 1 <= rotate)
			return (size_t)ci;
		start = (size_t)ci + 1;		/* its run is over */
	} else {
		/* The current one cannot serve: the next one after it. */
		for (i = 0; i < in->n; i++)
			if (strcmp(in->accts[i]->id, cur) == 0)
				break;
		for (j = 1; i < in->n && j <= in->n; j++) {
			long k = find_cand(in, cand, nc,
			    in->accts[(i + j) % in->n]->id);
			if (k >= 0) {
				start = (size_t)k;
				break;
			}
		}
	}
	start %= nc;
	out->sticky_moved = strcmp(in->accts[cand[start]]->id, cur) != 0;
	out->hybrid_restart = rotate > 0;
	return start;
}

int
select_pick(const struct select_in *in, struct select_out *out)
{
	size_t		*cand, nc = 0, i, c = 0;
	int64_t		 until;
	const struct account *a;

	memset(out, 0, sizeof(*out));
	out->pick = -1;
	out->total = in->n;
	cand = xcalloc(in->n + 1, sizeof(*cand));
	for (i = 0; i < in->n; i++) {
		a = in->accts[i];
		if (!account_serves(a, in->model))
			continue;
		if (a->state != ACCT_ACTIVE) {
			if (a->state == ACCT_DISABLED)
				out->disabled++;
			else
				out->needs_login++;
			continue;
		}
		out->serving++;
		if ((until = marked_until(in->marks, in->nmarks, a->id,
		    in->model, in->now)) != 0) {
			out->limited++;
			if (out->earliest_reset == 0 ||
			    until < out->earliest_reset)
				out->earliest_reset = until;
			continue;
		}
		if (skipped(a->id, in->skip, in->nskip)) {
			out->skipped++;
			continue;
		}
		cand[nc++] = i;
	}
	if (nc == 0) {
		free(cand);
		return -ENOENT;
	}
	switch (in->strategy) {
	case STRAT_ROUND_ROBIN:
		c = in->rr_cursor > 0 ?
		    (size_t)((in->rr_cursor - 1) % (int64_t)nc) : 0;
		break;
	case STRAT_LEAST_USED:
		for (i = 1; i < nc; i++)
			if (in->accts[cand[i]]->total_requests <
			    in->accts[cand[c]]->total_requests)
				c = i;
		break;
	case STRAT_HYBRID:
		c = pick_sticky(in, cand, nc, in->hybrid_rotate, out);
		break;
	case STRAT_STICKY:
	default:
		c = pick_sticky(in, cand, nc, 0, out);
		break;
	}
	out->pick = (long)cand[c];
	free(cand);
	/* Hits left by an expired mark: the relay clears them on success. */
	for (i = 0; i < in->nmarks; i++)
		if (strcmp(in->marks[i].account, in->accts[out->pick]->id) == 0 &&
		    strcmp(in->marks[i].model, in->model) == 0)
			out->hits = in->marks[i].hits;
	return 0;
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
	struct account		**all = NULL;
	struct mark		 *marks = NULL;
	struct select_in	  in;
	struct select_out	  out;
	size_t			  nall = 0, nm = 0, i;
	char			  sticky[24] = "", key[40];
	int64_t			  v;
	int			  rc;

	memset(r, 0, sizeof(*r));
	/*
	 * Only least-used needs the counters (a read per account, into a
	 * copy); the others borrow the store's parsed list, read only, and
	 * copy just the account chosen.
	 */
	if (cfg->strategy == STRAT_LEAST_USED)
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
	memset(&in, 0, sizeof(in));
	in.strategy = cfg->strategy;
	in.accts = all;
	in.n = nall;
	in.marks = marks;
	in.nmarks = nm;
	in.model = model;
	in.skip = skip;
	in.nskip = nskip;
	in.now = now_ms();
	in.sticky = sticky;
	in.hybrid_rotate = cfg->hybrid_rotate_requests;
	if (cfg->strategy == STRAT_STICKY || cfg->strategy == STRAT_HYBRID)
		store_meta_get(srv->st, "sticky", sticky, sizeof(sticky));
	if (cfg->strategy == STRAT_ROUND_ROBIN)
		store_stats_incr(srv->st, "rr", 1, &in.rr_cursor);
	if (cfg->strategy == STRAT_HYBRID && *sticky != '\0') {
		snprintf(key, sizeof(key), "hybrid:%s", sticky);
		store_stats_incr(srv->st, key, 0, &in.hybrid_count);
	}

	rc = select_pick(&in, &out);
	r->total = out.total;
	r->serving = out.serving;
	r->limited = out.limited;
	r->skipped = out.skipped;
	r->earliest_reset = out.earliest_reset;
	r->needs_login = out.needs_login;
	r->disabled = out.disabled;
	if (rc == 0) {
		r->acct = all[out.pick];
		r->prov = provider_find(r->acct->provider);
		r->hits = out.hits;
		if (out.sticky_moved)
			store_meta_put(srv->st, "sticky", r->acct->id);
		if (cfg->strategy == STRAT_HYBRID) {
			snprintf(key, sizeof(key), "hybrid:%s", r->acct->id);
			v = 0;
			if (out.hybrid_restart)
				store_stats_incr(srv->st, key, 0, &v);
			/* A new run counts this request as its first. */
			store_stats_incr(srv->st, key, 1 - (out.hybrid_restart ?
			    v : 0), NULL);
		}
	}
	mark_list_free(marks, nm);
	if (snap != NULL) {
		if (rc == 0)
			r->acct = account_copy(r->acct);
		store_account_snap_put(snap);
	} else {
		for (i = 0; i < nall; i++)
			if (all[i] != r->acct)
				account_free(all[i]);
		free(all);
	}
	return rc;
}

int
select_unusable(const struct select_result *r, const char *model, char *buf,
    size_t len)
{
	if (r->serving > 0 || r->needs_login + r->disabled == 0)
		return 0;
	snprintf(buf, len, "Model '%.100s' is served by %zu account%s, but "
	    "none is usable now:%s%s%s%s%s. 'qwenrelay accounts list' shows "
	    "each account's status and reason.", model,
	    r->needs_login + r->disabled,
	    r->needs_login + r->disabled == 1 ? "" : "s",
	    r->needs_login > 0 ? " " : "",
	    r->needs_login == 0 ? "" : r->needs_login == 1 ?
	    "1 needs a new login (run 'qwenrelay accounts login')" :
	    "some need a new login (run 'qwenrelay accounts login')",
	    r->needs_login > 0 && r->disabled > 0 ? ";" : "",
	    r->disabled > 0 ? " " : "",
	    r->disabled == 0 ? "" : r->disabled == 1 ?
	    "1 is disabled (enable it: 'qwenrelay accounts enable ID')" :
	    "some are disabled (enable them: 'qwenrelay accounts enable ID')");
	return 1;
}
