/*
 * keeper.h: the serve pool's housekeeping process.
 */
#ifndef QR_KEEPER_H
#define QR_KEEPER_H

struct cfg;

/*
 * Run the keeper until SIGTERM: every proactive_refresh_check_interval_
 * seconds clear stale LMDB readers, purge expired logins and (when
 * proactive_token_refresh) refresh OAuth accounts inside the buffer.
 * Called in a fresh child after fork; returns the exit status.
 */
int	keeper_run(const struct cfg *);

/* One pass of the above over an open server; returns accounts refreshed. */
struct server;
int	keeper_pass(struct server *);

#endif
