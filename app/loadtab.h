/*
 * loadtab.h: the load table of workers a web server spawns.
 *
 * Under lighttpd bin-path or mod_fcgid no master of ours exists to share
 * memory with the workers, so /health/deep could only speak for the one
 * process that answered.  The workers share a small file instead,
 * state_dir/workers.load, mapped by each (MAP_SHARED): one struct load per
 * slot, claimed by pid, given back at exit; a slot whose pid is dead is
 * free again (a killed worker).  `serve` does not use it: its master maps
 * an anonymous table before forking (pool.c).
 */
#ifndef QR_LOADTAB_H
#define QR_LOADTAB_H

struct load;

#define LOADTAB_SLOTS	256

/*
 * Map state_dir/workers.load (created 0600, LOADTAB_SLOTS slots) and
 * claim a slot for this process.  Returns the table (LOADTAB_SLOTS
 * entries) with *me set to the slot, or NULL when it cannot (the worker
 * then keeps its load to itself; logged).
 */
struct load	*loadtab_open(const char *state_dir, int *me);
/* Give the slot back and unmap; accepts NULL. */
void		 loadtab_close(struct load *, int me);
/* Is slot i a live worker (claimed, its pid alive)? */
int		 loadtab_live(struct load *, int i);

#endif
