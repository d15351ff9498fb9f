/*
 * worker.h: the FastCGI accept loop of one worker process.
 */
#ifndef QR_WORKER_H
#define QR_WORKER_H

struct cfg;
struct server;

/*
 * Serve requests on the listening socket fd until told to stop (SIGTERM,
 * SIGINT, SIGUSR1) or max_requests is reached.  Opens the store and the
 * upstream client itself: call it after fork.  Returns an exit status.
 */
int	worker_run(const struct cfg *, int listen_fd);

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
