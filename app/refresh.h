/*
 * refresh.h: keeping OAuth access tokens fresh, one refresher at a time
 * across every process sharing the store.
 *
 * The protocol: a short write transaction takes a lease on the account
 * (lease_until, lease_pid) and copies the refresh token as it is under
 * that lease: the token sent is always the current one; the HTTP refresh
 * runs outside any transaction; the answer is committed at once, in a
 * second short transaction that writes the new pair (the new refresh
 * token before anyone can use the old one: only the lease holder uses
 * it), remembers the new refresh token's hash, and drops the lease.
 * Others that find a live lease either use the still-valid token they
 * have (a proactive refresh never blocks) or wait for the lease to go and
 * read the new token (the token is expired, or the provider said 401).
 */
#ifndef QR_REFRESH_H
#define QR_REFRESH_H

#include <stddef.h>
#include <stdint.h>

struct server;

#define REFRESH_SKEW_SECONDS	60
/* After a failed proactive refresh, the next proactive try waits this. */
#define REFRESH_COOLDOWN_MS	30000

/* refresh_ensure flags */
#define REFRESH_FORCE		0x1	/* refresh now (the token got a 401) */
#define REFRESH_BLOCKING	0x2	/* a due refresh waits and retries */

enum refresh_need {
	REFRESH_NONE = 0,	/* the token is good for longer than the margin */
	REFRESH_SOFT,		/* due, but still valid: refresh, never block */
	REFRESH_HARD		/* expired (within the skew): must refresh */
};

/*
 * When is a token due?  expires_at, refreshed_at and now in ms since the
 * epoch (expires_at 0: never expires; refreshed_at 0: unknown), buffer_ms
 * proactive_refresh_buffer_seconds * 1000.  The soft margin is buffer +
 * REFRESH_SKEW_SECONDS, the hard one REFRESH_SKEW_SECONDS; when the
 * token's lifetime L (expires_at - refreshed_at) is known they are capped
 * at L/2 and L/4, so a token just refreshed is never due at once however
 * short its life (without the cap a 30 s token is refreshed on every
 * request).  Pure; tested from a table.
 */
enum refresh_need refresh_due(int64_t expires_at, int64_t refreshed_at,
	    int64_t now, int64_t buffer_ms);

/*
 * Give the account's usable access token (API key for API-key accounts)
 * in *access (free with xfree_secret).  For qwen-oauth accounts, refresh
 * first when flags has REFRESH_FORCE or refresh_due says so.  A SOFT
 * refresh (token still valid) without REFRESH_BLOCKING makes one attempt,
 * never waits for another refresher, and on a transient failure logs it,
 * keeps the valid token and leaves the account alone for
 * REFRESH_COOLDOWN_MS.  A HARD, forced or blocking refresh retries
 * token_refresh_retry_attempts times; when they all fail for now, a
 * request (no REFRESH_FORCE, no REFRESH_BLOCKING) still gets the token if
 * it has not expired yet.
 * Returns 0; -EKEYREJECTED when the account needs a new login (status set
 * to needs_login with the reason: "refresh interrupted ..." when an
 * earlier refresher stopped between sending the token and storing its
 * successor, else the provider's answer); -EAGAIN when the refresh failed
 * for now; -ENOENT no such account; -EPERM account disabled; another
 * -errno otherwise.  err gets a sentence.
 */
int	refresh_ensure(struct server *, const char *account_id, int flags,
	    char **access, char *err, size_t errlen);

#endif
