/*
 * refresh.h: keeping OAuth access tokens fresh, one refresher at a time
 * across every process sharing the store.
 *
 * The protocol: a short write transaction takes a lease on the account
 * (lease_until, lease_pid); the HTTP refresh runs outside any transaction;
 * a second short transaction writes the new tokens (the new refresh token
 * before anyone can use the old one: only the lease holder uses it),
 * remembers the retired refresh token's hash, and drops the lease.  Others
 * that find a live lease wait for it to go, then read the new token.
 */
#ifndef QR_REFRESH_H
#define QR_REFRESH_H

#include <stddef.h>

struct server;

#define REFRESH_SKEW_SECONDS	60

/*
 * Give the account's usable access token (API key for API-key accounts)
 * in *access (free with xfree_secret).  For qwen-oauth accounts, refresh
 * first when force is set or the token expires within
 * proactive_refresh_buffer_seconds + REFRESH_SKEW_SECONDS.
 * Returns 0; -EKEYREJECTED when the account needs a new login (status set
 * to needs_login with the reason); -EAGAIN when the refresh failed for now
 * (after token_refresh_retry_attempts); -ENOENT no such account; -EPERM
 * account disabled; another -errno otherwise.  err gets a sentence.
 */
int	refresh_ensure(struct server *, const char *account_id, int force,
	    char **access, char *err, size_t errlen);

#endif
