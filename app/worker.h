/*
 * worker.h: the FastCGI accept loop of one worker process.
 */
#ifndef QR_WORKER_H
#define QR_WORKER_H

struct cfg;
struct server;

struct load;

/*
 * Serve requests on the listening socket fd on cfg threads (+ reserve)
 * until told to stop (SIGTERM, SIGINT, SIGUSR1) or max_requests is
 * reached; then drain for up to shutdown_grace_seconds.  Opens the store
 * and the upstream clients itself: call it after fork.  pool is NULL (the
 * worker keeps its load to itself) or the serve master's shared array of
 * npool slots, of which pool[me] is this worker's.  Returns an exit status.
 */
int	worker_run(const struct cfg *, int listen_fd, struct load *pool,
	    int npool, int me);

/*
 * What every long-lived process (worker, keeper) does first, after fork:
 * stop on SIGTERM, SIGINT and SIGUSR1 through fn (no SA_RESTART, so a
 * blocked accept or sleep returns), ignore SIGPIPE.
 */
void	server_signals(void (*fn)(int));
/*
 * Open what srv needs for cfg: the store and, once it is open, the
 * sealing key.  Either may fail (logged, prefixed by who); it is tried
 * again on the next call, so a disk freed later heals the process.
 * Returns 0 when the store is open.
 */
int	server_open(struct server *, const struct cfg *, const char *who);
/* Close the store and wipe the key; accepts a half-open server. */
void	server_close(struct server *);

#endif
