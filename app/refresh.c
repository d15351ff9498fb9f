/*
 * refresh.c: refresh_ensure, the one way to get a usable access token.
 *
 * A lease in the account record (lease_until, lease_pid) makes one process
 * the refresher; the HTTP call runs outside any transaction; the new pair
 * is written, with the new refresh token's hash remembered for import
 * dedup, in the same short transaction that drops the lease.  A lease is
 * free when it is past lease_until or its pid is dead, so a refresher
 * killed mid-way holds nobody up for long.  Waiters poll the record until
 * the lease is gone and then use what the refresher wrote.  The lease
 * names a process; a worker's threads serialise on srv->refresh_lock
 * around taking it, so within a process one thread refreshes and the
 * rest find the new tokens.
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

struct lease_arg {
	int64_t		 now;
	int64_t		 since;		/* refreshes at or after this count */
	int		 force;
	int64_t		 buffer_ms;
	int		 outcome;	/* LEASE_* */
	int64_t		 busy_since;	/* when the other lease began */
};

enum { LEASE_TAKEN, LEASE_BUSY, LEASE_FRESH, LEASE_GONE };

static int
lease_live(const struct account *a, int64_t now)
{
	if (a->lease_pid <= 0 || a->lease_until <= now)
		return 0;
	if (a->lease_pid == (int64_t)getpid())
		return 0;	/* ours, left over from an earlier attempt */
	if (kill((pid_t)a->lease_pid, 0) == -1 && errno == ESRCH)
		return 0;
	return 1;
}

static int
needs_refresh(const struct account *a, int64_t now, int64_t buffer_ms)
{
	return a->expires_at != 0 && a->expires_at - now < buffer_ms;
}

static int
lease_fn(struct account *a, void *arg)
{
	struct lease_arg	*la = arg;

	if (strcmp(a->status, "active") != 0) {
		la->outcome = LEASE_GONE;
		return 1;
	}
	if (lease_live(a, la->now)) {
		la->outcome = LEASE_BUSY;
		la->busy_since = a->lease_until - LEASE_MS;
		return 1;
	}
	/* Someone refreshed since we decided to: use theirs. */
	if ((la->force && a->refreshed_at >= la->since) ||
	    (!la->force && !needs_refresh(a, la->now, la->buffer_ms))) {
		la->outcome = LEASE_FRESH;
		return 1;
	}
	a->lease_until = la->now + LEASE_MS;
	a->lease_pid = (int64_t)getpid();
	la->outcome = LEASE_TAKEN;
	return 0;
}

struct commit_arg {
	const unsigned char	*key;
	struct oauth_tokens	*t;
	const char		*old_refresh;
	int64_t			 now;
	const char		*reason;	/* non-NULL: needs_login */
	const char		*error;		/* non-NULL: transient failure */
};

static void
set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s != NULL ? xstrdup(s) : NULL;
}

static int
commit_fn(struct account *a, void *arg)
{
	struct commit_arg	*ca = arg;
	const char		*rt;
	char			*as, *rs;

	a->lease_until = 0;
	a->lease_pid = 0;
	if (ca->reason != NULL) {
		set_str(&a->status, "needs_login");
		set_str(&a->status_reason, ca->reason);
		set_str(&a->last_error, ca->reason);
		return 0;
	}
	if (ca->error != NULL) {
		set_str(&a->last_error, ca->error);
		return 0;
	}
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
	/*
	 * The retired token's hash is in the seen db since it was current;
	 * add the new one so a copy of the fresh credentials is known too.
	 */
	account_token_hash(rt, a->seen_add);
	a->has_seen_add = 1;
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

/* Store lease-free on a failure path, with what happened. */
static void
release(struct server *srv, const char *id, const char *reason,
    const char *error)
{
	struct commit_arg	ca;

	memset(&ca, 0, sizeof(ca));
	ca.reason = reason;
	ca.error = error;
	if (store_account_update(srv->st, id, commit_fn, &ca) != 0)
		log_warn("refresh %s: could not release the lease", id);
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

/* We hold the lease: do the HTTP refresh with retries, write the result. */
static int
do_refresh(struct server *srv, const struct account *a, char **access,
    char *err, size_t errlen)
{
	const struct cfg	*c = srv->cfg;
	struct oauth_tokens	 t;
	struct commit_arg	 ca;
	enum oauth_result	 res = OAUTH_TRANSIENT;
	char			*acc = NULL, *ref = NULL, why[512];
	long long		 delay = c->token_refresh_retry_delay_ms;
	long long		 i, tries = c->token_refresh_retry_attempts;
	int64_t			 t0 = mono_ms();
	int			 rc;

	if ((rc = account_open_tokens(srv->seal_key, a, &acc, &ref)) != 0 ||
	    ref == NULL) {
		xfree_secret(acc);
		xfree_secret(ref);
		/*
		 * Not needs_login: the tokens may be fine and the key file
		 * the wrong one; restoring the right key must fix it.
		 */
		snprintf(err, errlen, "account %s: its tokens cannot be "
		    "opened with this seal.key; restore the seal.key that "
		    "goes with this store", a->id);
		release(srv, a->id, NULL, "tokens cannot be opened with this "
		    "seal.key");
		return -EIO;
	}
	xfree_secret(acc);
	if (tries < 1)
		tries = 1;
	memset(&t, 0, sizeof(t));
	for (i = 0; i < tries; i++) {
		int64_t now;

		if (i > 0) {
			sleep_ms(delay);
			delay *= 2;
			now = now_ms();
			if (store_account_update(srv->st, a->id, renew_fn,
			    &now) != 0) {
				/* Never refresh with a token another may use. */
				xfree_secret(ref);
				snprintf(err, errlen, "refresh of account %s "
				    "failed for now: %s", a->id, why);
				return -EAGAIN;
			}
		}
		res = oauth_refresh(c, ref, &t, why, sizeof(why));
		if (res != OAUTH_TRANSIENT)
			break;
		log_warn("refresh %s: attempt %lld of %lld failed: %s",
		    a->id, i + 1, tries, why);
	}
	memset(&ca, 0, sizeof(ca));
	ca.key = srv->seal_key;
	ca.t = &t;
	ca.old_refresh = ref;
	ca.now = now_ms();
	if (res == OAUTH_OK) {
		rc = store_account_update(srv->st, a->id, commit_fn, &ca);
		if (rc != 0) {
			/* The rotated token is only in memory now: say so. */
			log_err("refresh %s: the new tokens could not be "
			    "stored: %s", a->id, store_strerror(rc));
			snprintf(err, errlen, "the new tokens could not be "
			    "stored: %s", store_strerror(rc));
			oauth_tokens_free(&t);
			xfree_secret(ref);
			return rc;
		}
		log_info("refresh %s: ok in %lldms (%lld call%s), expires in "
		    "%llds", a->id, (long long)(mono_ms() - t0), i + 1,
		    i == 0 ? "" : "s", t.expires_in);
		metrics_refresh(srv->st, METRIC_REFRESH_OK);
		*access = xstrdup(t.access_token);
		oauth_tokens_free(&t);
		xfree_secret(ref);
		return 0;
	}
	xfree_secret(ref);
	oauth_tokens_free(&t);
	if (res == OAUTH_REJECTED) {
		log_warn("refresh %s: needs a new login: %s", a->id, why);
		metrics_refresh(srv->st, METRIC_REFRESH_REJECTED);
		release(srv, a->id, why, NULL);
		snprintf(err, errlen, "account %s needs a new login: %s",
		    a->id, why);
		return -EKEYREJECTED;
	}
	log_warn("refresh %s: failed: %s", a->id, why);
	metrics_refresh(srv->st, METRIC_REFRESH_FAILED);
	release(srv, a->id, NULL, why);
	snprintf(err, errlen, "refresh of account %s failed for now: %s",
	    a->id, why);
	return -EAGAIN;
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

int
refresh_ensure(struct server *srv, const char *id, int force, char **access,
    char *err, size_t errlen)
{
	const struct provider	*p;
	struct account		*a = NULL;
	struct lease_arg	 la;
	int64_t			 since = now_ms(), wait_end;
	int64_t			 buffer_ms;
	int			 rc;

	*access = NULL;
	err[0] = '\0';
	if (srv->st == NULL || !srv->have_key) {
		snprintf(err, errlen, "the store or seal.key is not available");
		return -EIO;
	}
	buffer_ms = (srv->cfg->proactive_refresh_buffer_seconds +
	    REFRESH_SKEW_SECONDS) * 1000;
	wait_end = mono_ms() + WAIT_CAP_MS;
	for (;;) {
		account_free(a);
		a = NULL;
		if ((rc = store_account_get_bare(srv->st, id, &a)) != 0) {
			snprintf(err, errlen, rc == -ENOENT ? "no account %s" :
			    "account %s: %s", id, store_strerror(rc));
			return rc;
		}
		if (strcmp(a->status, "disabled") == 0) {
			snprintf(err, errlen, "account %s is disabled", id);
			account_free(a);
			return -EPERM;
		}
		if (strcmp(a->status, "needs_login") == 0) {
			snprintf(err, errlen, "account %s needs a new login: %s",
			    id, a->status_reason != NULL ? a->status_reason :
			    "refresh rejected");
			account_free(a);
			return -EKEYREJECTED;
		}
		p = provider_find(a->provider);
		if (p == NULL || !p->oauth || a->refresh_sealed == NULL ||
		    (!force && !needs_refresh(a, now_ms(), buffer_ms)) ||
		    (force && a->refreshed_at >= since)) {
			rc = give(srv, a, access, err, errlen);
			account_free(a);
			return rc;
		}
		memset(&la, 0, sizeof(la));
		la.since = since;
		la.force = force;
		la.buffer_ms = buffer_ms;
		if (srv->refresh_lock != NULL)
			pthread_mutex_lock(srv->refresh_lock);
		la.now = now_ms();
		if ((rc = store_account_update(srv->st, id, lease_fn,
		    &la)) != 0) {
			if (srv->refresh_lock != NULL)
				pthread_mutex_unlock(srv->refresh_lock);
			snprintf(err, errlen, "account %s: %s", id,
			    store_strerror(rc));
			account_free(a);
			return rc;
		}
		if (la.outcome == LEASE_TAKEN) {
			rc = do_refresh(srv, a, access, err, errlen);
			if (srv->refresh_lock != NULL)
				pthread_mutex_unlock(srv->refresh_lock);
			account_free(a);
			return rc;
		}
		if (srv->refresh_lock != NULL)
			pthread_mutex_unlock(srv->refresh_lock);
		if (la.outcome == LEASE_FRESH || la.outcome == LEASE_GONE)
			continue;	/* re-read and decide again */
		/* Busy: wait for the other refresher, then use its token. */
		if (mono_ms() > wait_end) {
			snprintf(err, errlen, "account %s: another process is "
			    "still refreshing it", id);
			account_free(a);
			return -EAGAIN;
		}
		usleep(WAIT_STEP_US);
		/* A forced refresh is satisfied by the one we waited for. */
		if (force && la.busy_since < since)
			since = la.busy_since;
	}
}
