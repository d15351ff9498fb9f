/*
 * loadtab.c: the load table shared through a file (see loadtab.h).
 *
 * A slot is claimed with a compare-and-swap on its pid: 0 (never used) or
 * a dead pid (kill(pid, 0) says ESRCH) -> ours.  Atomics in a MAP_SHARED
 * mapping are shared between processes as they are between threads.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "loadtab.h"
#include "log.h"
#include "req.h"

#define LOADTAB_BYTES	(sizeof(struct load) * LOADTAB_SLOTS)

static int
pid_dead(int pid)
{
	return pid > 0 && kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

struct load *
loadtab_open(const char *state_dir, int *me)
{
	struct load	*t;
	struct stat	 sb;
	char		 path[1024];
	int		 fd, i, cur;

	*me = -1;
	if (snprintf(path, sizeof(path), "%s/workers.load", state_dir) >=
	    (int)sizeof(path))
		return NULL;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		log_warn("%s: %s; /health/deep shows this worker only", path,
		    strerror(errno));
		return NULL;
	}
	/* Grow, never shrink: another worker may have it mapped. */
	if (fstat(fd, &sb) == -1 || ((size_t)sb.st_size < LOADTAB_BYTES &&
	    ftruncate(fd, (off_t)LOADTAB_BYTES) == -1)) {
		log_warn("%s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	t = mmap(NULL, LOADTAB_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (t == MAP_FAILED) {
		log_warn("%s: mmap: %s", path, strerror(errno));
		return NULL;
	}
	for (i = 0; i < LOADTAB_SLOTS; i++) {
		cur = atomic_load(&t[i].pid);
		if ((cur == 0 || pid_dead(cur)) &&
		    atomic_compare_exchange_strong(&t[i].pid, &cur,
		    (int)getpid())) {
			*me = i;
			return t;
		}
	}
	log_warn("%s: all %d slots are taken; /health/deep shows this "
	    "worker only", path, LOADTAB_SLOTS);
	munmap(t, LOADTAB_BYTES);
	return NULL;
}

void
loadtab_close(struct load *t, int me)
{
	if (t == NULL)
		return;
	if (me >= 0 && me < LOADTAB_SLOTS) {
		atomic_store(&t[me].state, LOAD_EMPTY);
		atomic_store(&t[me].in_flight, 0);
		atomic_store(&t[me].pid, 0);
	}
	munmap(t, LOADTAB_BYTES);
}

int
loadtab_live(struct load *t, int i)
{
	int	pid = atomic_load(&t[i].pid);

	return pid > 0 && atomic_load(&t[i].state) != LOAD_EMPTY &&
	    !pid_dead(pid);
}
