/*
 * pool.h: `qwenrelay serve`, a prefork master in the manner of PHP-FPM's
 * static pool: it owns the listening socket, forks the workers (which open
 * LMDB and libcurl themselves), respawns any that die, recycles them on
 * SIGHUP and drains them on SIGTERM.
 */
#ifndef QR_POOL_H
#define QR_POOL_H

struct cfg;

/* Listen on addr ("HOST:PORT", ":PORT" or a socket path). Returns an exit status. */
int	pool_run(struct cfg *, const char *addr, int workers);

#endif
