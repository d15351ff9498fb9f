/*
 * worker.h: the FastCGI accept loop of one worker process.
 */
#ifndef QR_WORKER_H
#define QR_WORKER_H

struct cfg;

/*
 * Serve requests on the listening socket fd until told to stop (SIGTERM,
 * SIGINT, SIGUSR1) or max_requests is reached.  Opens the store and the
 * upstream client itself: call it after fork.  Returns an exit status.
 */
int	worker_run(const struct cfg *, int listen_fd);

#endif
