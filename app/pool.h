/*
 * pool.h: `qwenrelay serve`, a prefork master in the manner of PHP-FPM
 * (static or dynamic): it owns the listening socket, forks the workers
 * (which open LMDB and libcurl themselves), respawns any that die (with
 * backoff), replaces them on SIGHUP and drains them on SIGTERM.
 */
#ifndef QR_POOL_H
#define QR_POOL_H

#include <stdint.h>

struct cfg;

/*
 * The process manager's decision: how many workers it wants, given live
 * workers (not stopping) of which idle have nothing in flight.  static:
 * always max.  dynamic (PHP-FPM's pm = dynamic): one more while fewer
 * than min_spare are idle (up to max), one fewer while more than
 * max_spare are idle (down to 1), else as is; never below 1.
 */
int	pool_target(int dynamic, int live, int idle, int max, int min_spare,
	    int max_spare);

/*
 * How long to wait before respawning a worker that died abnormally, after
 * crashes such deaths in a row (reset once a worker lives 2 s): 100 ms,
 * doubling, at most 30 s.
 */
int64_t	pool_backoff_ms(int crashes);

/* Listen on addr ("HOST:PORT", ":PORT" or a socket path). Returns an exit status. */
int	pool_run(struct cfg *, const char *addr, int workers);

#endif
