/*
 * refresh.c: refresh_ensure, the one way to get a usable access token.
 *
 * A lease in the account record (lease_until, lease_pid) makes one process
 * the refresher.  The refresh token is copied from the record inside the
 * transaction that takes the lease, so the token sent is the current one
 * however many processes raced for it.  The HTTP call runs outside any
 * transaction; its answer is committed at once (nothing else happens in
 * between: a crash there loses the rotated token, unavoidably, so the
 * window is kept as small as the code can make it).
 *
 * lease_pid says who holds the lease: a pid (a refresher; free once
 * lease_until is past or the pid is dead; our own pid counts as a live
 * holder too, so the threads of one worker wait for each other on the
 * lease exactly as processes do, and srv->refresh_lock is not needed
 * here), 0 (free), LEASE_COOL (nobody:
 * a proactive refresh failed, proactive tries pause until lease_until) or
 * LEASE_SUSPECT (nobody, but an earlier refresher stopped without
 * storing a result).  A lease taken over from a refresher that stopped is
 * suspect: if the provider then rejects the refresh token, the rotated
 * token was lost in that crash, and the account's reason says so
 * ("refresh interrupted"), not "invalid grant".
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accounts.h"
#include "cfg.h"
#include "log.h"
#include "metrics.h"
#include "oauth.h"
#include "provider.h"
#include "refresh.h"
#include "req.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

#define LEASE_MS		30000	/* longer than one OAuth call (25 s) */
#define WAIT_STEP_US		75000
#define WAIT_CAP_MS		35000
#define LEASE_COOL		(-1)
#define LEASE_SUSPECT		(-2)

#define REFRESH_INTERRUPTED	"refresh interrupted: a process refreshing " \
	"this account stopped (killed?) after sending the refresh token and " \
	"before storing the new one, so the rotated token was lost; log in " \
	"again with 'qwenrelay accounts login'"

enum refresh_need
refresh_due(int64_t expires_at, int64_t refreshed_at, int64_t now,
    int64_t buffer_ms)
{
	int64_t	soft, hard, life, left;

	if (expires_at == 0)
		return REFRESH_NONE;
	if (buffer_ms < 0)
		buffer_ms = 0;
	hard = REFRESH_SKEW_SECONDS * 1000;
	soft = buffer_ms + hard;
	if (refreshed_at > 0 && refreshed_at < expires_at) {
		life = expires_at - refreshed_at;
		if (soft > life / 2)
			soft = life / 2;
		if (hard > life / 4)
			hard = life / 4;
	}
	left = expires_at - now;
	if (left < hard)
		return REFRESH_HARD;
	if (left < soft)
		return REFRESH_SOFT;
	return REFRESH_NONE;
}

/* The parts of the record a refresher needs, copied under the lease. */
struct snap {
	struct account	 a;		/* id, access_sealed, refresh_sealed */
	int64_t		 expires_at;
};

static void
snap_take(struct snap *s, const struct account *a)
{
	free(s->a.access_sealed);
	free(s->a.refresh_sealed);
	memset(s, 0, sizeof(*s));
	memcpy(s->a.id, a->id, sizeof(s->a.id));
	s->a.access_sealed = a->access_sealed != NULL ?
	    xstrdup(a->access_sealed) : NULL;
	s->a.refresh_sealed = a->refresh_sealed != NULL ?
	    xstrdup(a->refresh_sealed) : NULL;
	s->expires_at = a->expires_at;
}

static void
snap_free(struct snap *s)
{
	free(s->a.access_sealed);
	free(s->a.refresh_sealed);
	memset(s, 0, sizeof(*s));
}

struct lease_arg {
	int64_t		 now;
	int64_t		 since;		/* forced: refreshes at or after this do */
	int		 force;
	int		 blocking;	/* REFRESH_BLOCKING was asked */
	int64_t		 buffer_ms;
	int		 outcome;	/* LEASE_* */
	enum refresh_need need;		/* as decided under the lease */
	int64_t		 busy_since;	/* when the other lease began */
	int64_t		 stale_pid;	/* the stopped refresher we replace */
	int		 suspect;	/* an earlier refresher stopped mid-way */
	struct snap	 snap;		/* the record under the lease */
};

enum { LEASE_TAKEN, LEASE_BUSY, LEASE_FRESH, LEASE_GONE, LEASE_COOLING };

/*
 * Is the lease held by a refresher that is still at it?  Our own pid
 * counts as live until lease_until: another thread of this process may
 * hold it.
 */
static int
lease_live(const struct account *a, int64_t now)
{
	if (a->lease_pid <= 0 || a->lease_until <= now)
		return 0;
	if (a->lease_pid == (int64_t)getpid())
		return 1;
	if (kill((pid_t)a->lease_pid, 0) == -1 && errno == ESRCH)
		return 0;
	return 1;
}

static int
lease_fn(struct account *a, void *arg)
{
	struct lease_arg	*la = arg;

	snap_take(&la->snap, a);
	la->need = refresh_due(a->expires_at, a->refreshed_at, la->now,
	    la->buffer_ms);
	if (a->state != ACCT_ACTIVE) {
		la->outcome = LEASE_GONE;
		return 1;
	}
	/* Someone refreshed since we decided to: use theirs. */
	if ((la->force && a->refreshed_at >= la->since) ||
	    (!la->force && la->need == REFRESH_NONE)) {
		la->outcome = LEASE_FRESH;
		return 1;
	}
	if (lease_live(a, la->now)) {
		la->outcome = LEASE_BUSY;
		la->busy_since = a->lease_until - LEASE_MS;
		return 1;
	}
	if (!la->force && !la->blocking && la->need == REFRESH_SOFT &&
	    a->lease_pid < 0 && a->lease_until > la->now) {
		la->outcome = LEASE_COOLING;
		return 1;
	}
	la->suspect = a->lease_pid > 0 || a->lease_pid == LEASE_SUSPECT;
	la->stale_pid = a->lease_pid > 0 ? a->lease_pid : 0;
	a->lease_until = la->now + LEASE_MS;
	a->lease_pid = (int64_t)getpid();
	la->outcome = LEASE_TAKEN;
	return 0;
}

struct commit_arg {
	const unsigned char	*key;
	struct oauth_tokens	*t;		/* non-NULL: store this pair */
	const char		*old_refresh;
	const char		*sent_sealed;	/* the refresh token we sent */
	int64_t			 now;
	const char		*reason;	/* non-NULL: needs_login */
	const char		*error;		/* non-NULL: failed for now */
	int64_t			 lease_pid;	/* the lease after a failure */
	int64_t			 lease_until;
	int			 superseded;	/* out: a newer token is stored */
};

static void
set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s != NULL ? xstrdup(s) : NULL;
}

/* Store the new pair; the rotated token is never dropped, lease or not. */
static int
commit_tokens(struct account *a, struct commit_arg *ca)
{
	const char	*rt;
	char		*as, *rs;

	/* Keep the old refresh token when none comes back. */
	rt = ca->t->refresh_token != NULL ? ca->t->refresh_token :
	    ca->old_refresh;
	as = account_seal(ca->key, a->id, ca->t->access_token);
	rs = account_seal(ca->key, a->id, rt);
	if (as == NULL || rs == NULL) {
		free(as);
		free(rs);
		return -EIO;
	}
	free(a->access_sealed);
	a->access_sealed = as;
	free(a->refresh_sealed);
	a->refresh_sealed = rs;
	a->expires_at = ca->now + ca->t->expires_in * 1000;
	/* Keep the previous resource_url when none comes back. */
	if (ca->t->resource_url != NULL)
		set_str(&a->base_url, ca->t->resource_url);
	a->refreshed_at = ca->now;
	set_str(&a->last_error, NULL);
	if (a->lease_pid == (int64_t)getpid() || a->lease_pid < 0) {
		a->lease_until = 0;
		a->lease_pid = 0;
	}
	/*
	 * The retired token's hash is in the seen db since it was current;
	 * add the new one so a copy of the fresh credentials is known too.
	 */
	account_token_hash(rt, a->seen_add);
	a->has_seen_add = 1;
	return 0;
}

static int
commit_fn(struct account *a, void *arg)
{
	struct commit_arg	*ca = arg;

	if (ca->t != NULL)
		return commit_tokens(a, ca);
	/* A newer refresh token than the one we sent: not our failure. */
	if (ca->sent_sealed != NULL && (a->refresh_sealed == NULL ||
	    strcmp(a->refresh_sealed, ca->sent_sealed) != 0)) {
		ca->superseded = 1;
		if (a->lease_pid != (int64_t)getpid())
			return 1;
		a->lease_until = 0;
		a->lease_pid = 0;
		return 0;
	}
	/* A failure: touch nothing if another refresher took over. */
	if (a->lease_pid != (int64_t)getpid())
		return 1;
	a->lease_until = ca->lease_until;
	a->lease_pid = ca->lease_pid;
	if (ca->reason != NULL) {
		a->lease_until = 0;
		a->lease_pid = 0;
		set_str(&a->status, "needs_login");
		set_str(&a->status_reason, ca->reason);
		set_str(&a->last_error, ca->reason);
		return 0;
	}
	if (ca->error != NULL)
		set_str(&a->last_error, ca->error);
	return 0;
}

/* Extend our lease before each attempt, so retries never outlive it. */
static int
renew_fn(struct account *a, void *arg)
{
	int64_t	*now = arg;

	if (a->lease_pid != (int64_t)getpid())
		return -EBUSY;	/* taken over: someone else refreshes now */
	a->lease_until = *now + LEASE_MS;
	return 0;
}

/*
 * Drop our lease on a failure path, with what happened.  reason: the
 * account needs a new login; else error (may be NULL) is remembered and
 * the lease becomes pid/until.  Returns 1 when a newer refresh token than
 * the one sent was found stored (nothing was failed then), else 0.
 */
static int
release(struct server *srv, const struct lease_arg *la, const char *reason,
    const char *error, int64_t pid, int64_t until)
{
	struct commit_arg	ca;

	memset(&ca, 0, sizeof(ca));
	ca.reason = reason;
	ca.error = error;
	ca.sent_sealed = la->snap.a.refresh_sealed;
	ca.lease_pid = pid;
	ca.lease_until = until;
	if (store_account_update(srv->st, la->snap.a.id, commit_fn, &ca) != 0)
		log_warn("refresh %s: could not release the lease",
		    la->snap.a.id);
	return ca.superseded;
}

/* Sleep between tries; never longer than the cap. */
static void
sleep_ms(long long ms)
{
	while (ms > 0) {
		long long s = ms > 500 ? 500 : ms;
		usleep((useconds_t)(s * 1000));
		ms -= s;
	}
}

/* The access token of a, unsealed. */
static int
give(struct server *srv, const struct account *a, char **access, char *err,
    size_t errlen)
{
	int	rc;

	if ((rc = account_open_tokens(srv->seal_key, a, access, NULL)) != 0)
		snprintf(err, errlen, "account %s: its token cannot be opened "
		    "with this seal.key", a->id);
	return rc;
}

/*
 * We hold the lease: refresh with the token read under it, commit the
 * answer at once.  Returns as refresh_ensure, or 1: a newer token was
 * stored meanwhile, read the record again.
 */
static int
do_refresh(struct server *srv, struct lease_arg *la, char **access,
    char *err, size_t errlen)
{
	const struct cfg	*c = srv->cfg;
	const char		*id = la->snap.a.id;
	struct oauth_tokens	 t;
	struct commit_arg	 ca;
	enum oauth_result	 res = OAUTH_TRANSIENT;
	char			*acc = NULL, *ref = NULL, why[512];
	long long		 delay = c->token_refresh_retry_delay_ms;
	long long		 i, tries = c->token_refresh_retry_attempts;
	int64_t			 t0 = mono_ms(), now;
	int			 blocking, rc;

	blocking = la->force || la->blocking || la->need == REFRESH_HARD;
	if (la->stale_pid != 0)
		log_warn("refresh %s: taking over from pid %lld, which stopped "
		    "refreshing without storing a result", id,
		    (long long)la->stale_pid);
	if ((rc = account_open_tokens(srv->seal_key, &la->snap.a, &acc,
	    &ref)) != 0 || ref == NULL) {
		xfree_secret(acc);
		xfree_secret(ref);
		/*
		 * Not needs_login: the tokens may be fine and the key file
		 * the wrong one; restoring the right key must fix it.
		 */
		snprintf(err, errlen, "account %s: its tokens cannot be "
		    "opened with this seal.key; restore the seal.key that "
		    "goes with this store", id);
		release(srv, la, NULL, "tokens cannot be opened with this "
		    "seal.key", la->suspect ? LEASE_SUSPECT : 0, 0);
		return -EIO;
	}
	if (!blocking || tries < 1)
		tries = 1;
	memset(&t, 0, sizeof(t));
	why[0] = '\0';
	for (i = 0; i < tries; i++) {
		if (i > 0) {
			sleep_ms(delay);
			delay *= 2;
			now = now_ms();
			if (store_account_update(srv->st, id, renew_fn,
			    &now) != 0) {
				/* Never refresh with a token another may use. */
				xfree_secret(acc);
				xfree_secret(ref);
				snprintf(err, errlen, "refresh of account %s "
				    "failed for now: %s", id, why);
				return -EAGAIN;
			}
		}
		res = oauth_refresh(c, ref, &t, why, sizeof(why));
		if (res == OAUTH_OK) {
			/* Nothing between the answer and its commit. */
			memset(&ca, 0, sizeof(ca));
			ca.key = srv->seal_key;
			ca.t = &t;
			ca.old_refresh = ref;
			ca.now = now_ms();
			rc = store_account_update(srv->st, id, commit_fn, &ca);
			break;
		}
		if (res != OAUTH_TRANSIENT)
			break;
		log_warn("refresh %s: attempt %lld of %lld failed: %s",
		    id, i + 1, tries, why);
	}
	if (res == OAUTH_OK) {
		xfree_secret(acc);
		xfree_secret(ref);
		if (rc != 0) {
			/* The rotated token is only in memory now: say so. */
			log_err("refresh %s: the new tokens could not be "
			    "stored: %s", id, store_strerror(rc));
			snprintf(err, errlen, "the new tokens could not be "
			    "stored: %s", store_strerror(rc));
			oauth_tokens_free(&t);
			return rc;
		}
		log_info("refresh %s: ok in %lldms (%lld call%s), expires in "
		    "%llds", id, (long long)(mono_ms() - t0), i + 1,
		    i == 0 ? "" : "s", t.expires_in);
		metrics_refresh(srv->st, METRIC_REFRESH_OK);
		*access = xstrdup(t.access_token);
		oauth_tokens_free(&t);
		return 0;
	}
	xfree_secret(ref);
	oauth_tokens_free(&t);
	if (res == OAUTH_REJECTED) {
		const char *reason = la->suspect ? REFRESH_INTERRUPTED : why;

		xfree_secret(acc);
		if (release(srv, la, reason, NULL, 0, 0))
			return 1;
		log_warn("refresh %s: needs a new login: %s", id, reason);
		metrics_refresh(srv->st, METRIC_REFRESH_REJECTED);
		snprintf(err, errlen, "account %s needs a new login: %s",
		    id, reason);
		return -EKEYREJECTED;
	}
	metrics_refresh(srv->st, METRIC_REFRESH_FAILED);
	now = now_ms();
	if (!la->force && !la->blocking && la->snap.expires_at > now) {
		/* The token still works: use it, try again later. */
		log_warn("refresh %s: failed (%s); using the current token, "
		    "valid %llds more; next try in %ds", id, why,
		    (long long)((la->snap.expires_at - now) / 1000),
		    REFRESH_COOLDOWN_MS / 1000);
		if (release(srv, la, NULL, why, la->suspect ? LEASE_SUSPECT :
		    LEASE_COOL, now + REFRESH_COOLDOWN_MS)) {
			xfree_secret(acc);
			return 1;
		}
		*access = acc;
		return 0;
	}
	xfree_secret(acc);
	log_warn("refresh %s: failed: %s", id, why);
	if (release(srv, la, NULL, why, la->suspect ? LEASE_SUSPECT : 0, 0))
		return 1;
	snprintf(err, errlen, "refresh of account %s failed for now: %s",
	    id, why);
	return -EAGAIN;
}

int
refresh_ensure(struct server *srv, const char *id, int flags, char **access,
    char *err, size_t errlen)
{
	const struct provider	*p;
	struct account		*a = NULL;
	struct lease_arg	 la;
	int64_t			 since = now_ms(), wait_end, now;
	int64_t			 buffer_ms;
	int			 force = (flags & REFRESH_FORCE) != 0;
	int			 rc;

	*access = NULL;
	err[0] = '\0';
	if (srv->st == NULL || !srv->have_key) {
		snprintf(err, errlen, "the store or seal.key is not available");
		return -EIO;
	}
	buffer_ms = srv->cfg->proactive_refresh_buffer_seconds * 1000;
	wait_end = mono_ms() + WAIT_CAP_MS;
	memset(&la, 0, sizeof(la));
	for (;;) {
		account_free(a);
		a = NULL;
		if ((rc = store_account_get_bare(srv->st, id, &a)) != 0) {
			snprintf(err, errlen, rc == -ENOENT ? "no account %s" :
			    "account %s: %s", id, store_strerror(rc));
			goto out;
		}
		if (a->state == ACCT_DISABLED) {
			snprintf(err, errlen, "account %s is disabled", id);
			rc = -EPERM;
			goto out;
		}
		if (a->state == ACCT_NEEDS_LOGIN) {
			snprintf(err, errlen, "account %s needs a new login: %s",
			    id, a->status_reason != NULL ? a->status_reason :
			    "refresh rejected");
			rc = -EKEYREJECTED;
			goto out;
		}
		now = now_ms();
		p = provider_find(a->provider);
		if (p == NULL || !p->oauth || a->refresh_sealed == NULL ||
		    (!force && refresh_due(a->expires_at, a->refreshed_at,
		    now, buffer_ms) == REFRESH_NONE) ||
		    (force && a->refreshed_at >= since)) {
			rc = give(srv, a, access, err, errlen);
			goto out;
		}
		la.now = now;
		la.since = since;
		la.force = force;
		la.blocking = (flags & REFRESH_BLOCKING) != 0;
		la.buffer_ms = buffer_ms;
		la.suspect = 0;
		la.stale_pid = 0;
		if ((rc = store_account_update(srv->st, id, lease_fn,
		    &la)) != 0) {
			snprintf(err, errlen, "account %s: %s", id,
			    store_strerror(rc));
			goto out;
		}
		if (la.outcome == LEASE_TAKEN) {
			if ((rc = do_refresh(srv, &la, access, err,
			    errlen)) == 1)
				continue;	/* a newer token: use it */
			goto out;
		}
		if (la.outcome == LEASE_FRESH || la.outcome == LEASE_GONE)
			continue;	/* re-read and decide again */
		/*
		 * Busy or cooling down while the token is still valid and
		 * nobody needs to wait: use it (a proactive refresh never
		 * blocks).
		 */
		if (!force && !la.blocking && la.need == REFRESH_SOFT) {
			rc = give(srv, &la.snap.a, access, err, errlen);
			goto out;
		}
		/* Busy: wait for the other refresher, then use its token. */
		if (mono_ms() > wait_end) {
			snprintf(err, errlen, "account %s: another process is "
			    "still refreshing it", id);
			rc = -EAGAIN;
			goto out;
		}
		usleep(WAIT_STEP_US);
		/* A forced refresh is satisfied by the one we waited for. */
		if (force && la.busy_since < since)
			since = la.busy_since;
	}
out:
	snap_free(&la.snap);
	account_free(a);
	return rc;
}
