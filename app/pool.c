/*
 * pool.c: the serve master.
 *
 * The master never opens the store or initialises libcurl: both are unsafe
 * to carry across fork().  It listens, forks, waits and signals; besides
 * the workers it keeps one keeper child (keeper.c) for proactive refresh
 * and store housekeeping, respawned like a worker.
 *
 * PHP-FPM's process managers are the model.  static: `workers` processes
 * always.  dynamic: between 1 and `workers`, keeping pm_min_spare_workers
 * to pm_max_spare_workers idle ones (a worker with no request in flight);
 * one is started or gracefully stopped per second.  Each worker serves
 * `threads` requests at once (worker.c), so a process is coarse capacity.
 *
 * What the master knows of its workers it reads from a shared memory
 * segment made before the first fork: one struct load per slot, written
 * by the worker in it (pid, state, requests in flight, capacity, served).
 * There are twice as many slots as `workers`, so that after SIGHUP fresh
 * workers start at once while the old ones drain.  /health/deep in any
 * worker reports the whole table.
 *
 * Started as root with `user` set, the master becomes that user right
 * after binding, before the first fork.
 *
 * Signals come to the master's loop through sigtimedwait, nowhere else:
 * SIGCHLD reaps and respawns (with exponential backoff while workers die
 * young, a crash loop), SIGHUP re-reads the config, reopens the log and
 * replaces the workers gracefully, SIGTERM/SIGINT drain every worker for
 * up to shutdown_grace_seconds and then kill what is left.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "cfg.h"
#include "keeper.h"
#include "log.h"
#include "pool.h"
#include "privdrop.h"
#include "req.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

#define POOL_YOUNG_MS		2000	/* crashes this young keep the backoff growing */
#define POOL_BACKOFF_MIN_MS	100
#define POOL_BACKOFF_MAX_MS	30000
#define POOL_KILL_MARGIN_MS	5000	/* after the workers' own grace */

struct pool {
	struct cfg	*cfg;
	int		 fd;
	int		 dynamic;	/* pm == "dynamic", resolved at (re)load */
	int		 max;		/* workers */
	int		 nslots;	/* 2 x max */
	struct load	*load;		/* shared: nslots entries */
	pid_t		*pids;		/* master's own view of each slot */
	int64_t		*born;		/* mono ms at fork */
	int		*stopping;	/* told to stop (SIGUSR1/SIGTERM) */
	pid_t		 keeper;
	int		 crashes;	/* consecutive young deaths */
	int64_t		 next_spawn;	/* mono ms: backoff gate */
	int64_t		 last_scale;
};

static sigset_t pool_oldmask;	/* the mask workers run with */

/*
 * Fork a worker into slot (serving fd) or, slot -1, the keeper (which
 * never touches the listen socket).  Returns the pid, or -1.
 */
static pid_t
spawn(struct pool *p, int slot)
{
	pid_t	pid;

	if (slot >= 0) {
		memset(&p->load[slot], 0, sizeof(p->load[slot]));
		atomic_store(&p->load[slot].state, LOAD_STARTING);
	}
	pid = fork();
	if (pid == 0) {
		struct sigaction sa;

		if (slot < 0)
			close(p->fd);
		/*
		 * Default dispositions before unblocking: a SIGTERM that
		 * arrives before the child installs its own handling must
		 * end it, not run the master's handler in the child.
		 */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGHUP, &sa, NULL);
		sigaction(SIGCHLD, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigprocmask(SIG_SETMASK, &pool_oldmask, NULL);
		_exit(slot < 0 ? keeper_run(p->cfg) :
		    worker_run(p->cfg, p->fd, p->load, p->nslots, slot));
	}
	if (pid == -1) {
		log_err("fork (%s): %s", slot < 0 ? "keeper" : "worker",
		    strerror(errno));
		if (slot >= 0)
			atomic_store(&p->load[slot].state, LOAD_EMPTY);
		return -1;
	}
	if (slot >= 0) {
		p->pids[slot] = pid;
		p->born[slot] = mono_ms();
		p->stopping[slot] = 0;
		atomic_store(&p->load[slot].pid, (int)pid);
	}
	return pid;
}

static int
open_listen(const char *addr)
{
	int	fd;

	if (addr[0] == '/')
		unlink(addr);	/* a stale socket from a previous run */
	fd = FCGX_OpenSocket(addr, 1024);
	if (fd >= 0 && addr[0] == '/')
		chmod(addr, 0660);
	return fd;
}

/* Workers alive and not told to stop; *idle: those with nothing in flight. */
static int
count_live(const struct pool *p, int *idle)
{
	int	i, n = 0;

	*idle = 0;
	for (i = 0; i < p->nslots; i++) {
		if (p->pids[i] <= 0 || p->stopping[i])
			continue;
		n++;
		if (atomic_load(&p->load[i].state) == LOAD_SERVING &&
		    atomic_load(&p->load[i].in_flight) == 0)
			(*idle)++;
	}
	return n;
}

static int
free_slot(const struct pool *p)
{
	int	i;

	for (i = 0; i < p->nslots; i++)
		if (p->pids[i] <= 0)
			return i;
	return -1;
}

/* Tell the worker in slot i to finish what it serves and exit. */
static void
retire(struct pool *p, int i, int sig)
{
	if (p->pids[i] <= 0 || p->stopping[i])
		return;
	p->stopping[i] = 1;
	kill(p->pids[i], sig);
}

static void
reap(struct pool *p)
{
	pid_t	pid;
	int	status, i, young;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == p->keeper) {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				log_warn("keeper %ld died (status %d); "
				    "respawning", (long)pid, status);
			p->keeper = 0;
			continue;
		}
		for (i = 0; i < p->nslots; i++) {
			if (p->pids[i] != pid)
				continue;
			young = mono_ms() - p->born[i] < POOL_YOUNG_MS;
			if (!p->stopping[i] && (!WIFEXITED(status) ||
			    WEXITSTATUS(status) != 0)) {
				/* A crash, or a start that fails: back off. */
				int64_t b = pool_backoff_ms(p->crashes);

				p->crashes++;
				p->next_spawn = mono_ms() + b;
				log_warn("worker %ld died (status %d%s); "
				    "respawning in %lld ms", (long)pid, status,
				    young ? ", young" : "", (long long)b);
			}
			if (!young)
				p->crashes = 0;
			p->pids[i] = 0;
			p->stopping[i] = 0;
			atomic_store(&p->load[i].state, LOAD_EMPTY);
			atomic_store(&p->load[i].pid, 0);
		}
	}
}

int64_t
pool_backoff_ms(int crashes)
{
	int64_t	b = POOL_BACKOFF_MIN_MS;
	int	c;

	for (c = 0; c < crashes && b < POOL_BACKOFF_MAX_MS; c++)
		b *= 2;
	return b > POOL_BACKOFF_MAX_MS ? POOL_BACKOFF_MAX_MS : b;
}

int
pool_target(int dynamic, int live, int idle, int max, int min_spare,
    int max_spare)
{
	if (!dynamic)
		return max;
	if (live < 1)
		return 1;
	if (idle < min_spare && live < max)
		return live + 1;
	if (idle > max_spare && live > 1)
		return live - 1;
	return live > max ? max : live;
}

/* Start or stop workers toward the target of the process manager. */
static void
scale(struct pool *p)
{
	int	live, idle, want, i, slot;
	int64_t	now = mono_ms();

	live = count_live(p, &idle);
	want = live;
	/* dynamic: one step a second, so a burst does not fork a crowd */
	if (!p->dynamic || live < 1 || now - p->last_scale >= 1000)
		want = pool_target(p->dynamic, live, idle, p->max,
		    (int)p->cfg->pm_min_spare_workers,
		    (int)p->cfg->pm_max_spare_workers);
	if (p->dynamic && want != live)
		p->last_scale = now;
	for (; live > want; live--) {
		/* Stop an idle one: it drains nothing and exits at once. */
		for (i = 0; i < p->nslots; i++)
			if (p->pids[i] > 0 && !p->stopping[i] &&
			    atomic_load(&p->load[i].in_flight) == 0)
				break;
		if (i == p->nslots)
			break;
		retire(p, i, SIGUSR1);
	}
	for (; live < want && now >= p->next_spawn; live++) {
		if ((slot = free_slot(p)) < 0 || spawn(p, slot) == -1)
			break;
	}
}

static void
reload(struct pool *p)
{
	struct cfg	nc;
	char		err[512];
	int		i;

	if (cfg_load(&nc, p->cfg->path, err, sizeof(err)) != 0) {
		log_err("SIGHUP: config not reloaded: %s", err);
		cfg_free(&nc);
		return;
	}
	if (log_open(nc.log_level, nc.log_file) != 0)
		log_err("SIGHUP: cannot open log_file %s; logging stays where "
		    "it was", nc.log_file);
	cfg_free(p->cfg);
	*p->cfg = nc;
	p->dynamic = strcmp(p->cfg->pm, "dynamic") == 0;
	log_info("SIGHUP: config reloaded, log reopened; replacing workers "
	    "(the old ones finish their requests)");
	/* The new ones start at once (free slots), the old ones drain. */
	for (i = 0; i < p->nslots; i++)
		retire(p, i, SIGUSR1);
	if (p->keeper > 0)
		kill(p->keeper, SIGTERM);
	p->crashes = 0;
	p->next_spawn = 0;
}

static void
drain(struct pool *p)
{
	int64_t	deadline = mono_ms() + p->cfg->shutdown_grace_seconds * 1000 +
	    POOL_KILL_MARGIN_MS;
	int	i, alive;

	log_info("serve: draining (up to %llds)",
	    p->cfg->shutdown_grace_seconds);
	for (i = 0; i < p->nslots; i++)
		if (p->pids[i] > 0) {
			p->stopping[i] = 0;	/* SIGUSR1'd ones get SIGTERM too */
			retire(p, i, SIGTERM);
		}
	if (p->keeper > 0)
		kill(p->keeper, SIGTERM);
	for (;;) {
		reap(p);
		for (alive = p->keeper > 0, i = 0; i < p->nslots; i++)
			alive += p->pids[i] > 0;
		if (alive == 0 || mono_ms() > deadline)
			break;
		usleep(20 * 1000);
	}
	for (i = 0; i < p->nslots; i++)
		if (p->pids[i] > 0) {
			log_warn("worker %ld did not stop in time; killing",
			    (long)p->pids[i]);
			kill(p->pids[i], SIGKILL);
			waitpid(p->pids[i], NULL, 0);
		}
	if (p->keeper > 0) {
		kill(p->keeper, SIGKILL);
		waitpid(p->keeper, NULL, 0);
	}
}

int
pool_run(struct cfg *cfg, const char *addr, int nworkers)
{
	struct pool		 p;
	struct sigaction	 sa;
	struct timespec		 ts;
	sigset_t		 mask;
	size_t			 shm;
	int			 sig;
	char			 perr[1024];

	memset(&p, 0, sizeof(p));
	p.cfg = cfg;
	p.max = nworkers;
	p.nslots = 2 * nworkers;
	p.dynamic = strcmp(cfg->pm, "dynamic") == 0;
	if ((p.fd = open_listen(addr)) < 0) {
		log_err("cannot listen on %s: %s (is another server using "
		    "it?)", addr, strerror(errno));
		return 1;
	}
	/* Root's work is done: leave it before any worker exists. */
	if (priv_drop(cfg, addr, perr, sizeof(perr)) != 0) {
		log_err("serve: %s", perr);
		if (strcmp(cfg->log_file, "stderr") != 0)
			fprintf(stderr, "qwenrelay: %s\n", perr);
		close(p.fd);
		if (addr[0] == '/')
			unlink(addr);
		return 1;
	}
	shm = sizeof(*p.load) * (size_t)p.nslots;
	p.load = mmap(NULL, shm, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p.load == MAP_FAILED) {
		log_err("serve: shared memory for %d workers: %s", p.nslots,
		    strerror(errno));
		close(p.fd);
		return 1;
	}
	p.pids = xcalloc((size_t)p.nslots, sizeof(*p.pids));
	p.born = xcalloc((size_t)p.nslots, sizeof(*p.born));
	p.stopping = xcalloc((size_t)p.nslots, sizeof(*p.stopping));

	/* Blocked, and taken by sigtimedwait below: no handler runs. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &pool_oldmask);
	signal(SIGPIPE, SIG_IGN);
	/* SIGCHLD must not be discarded as "ignored by default". */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);

	log_info("serve: listening on %s, %s pool of %s%d workers x %lld "
	    "threads", addr, p.dynamic ? "dynamic" : "static",
	    p.dynamic ? "up to " : "", nworkers, cfg->threads);
	for (;;) {
		reap(&p);
		if (p.keeper == 0 && (p.keeper = spawn(&p, -1)) == -1)
			p.keeper = 0;
		scale(&p);
		ts.tv_sec = 0;
		ts.tv_nsec = 250 * 1000 * 1000;
		sig = sigtimedwait(&mask, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP)
			reload(&p);
	}
	drain(&p);
	munmap(p.load, shm);
	free(p.pids);
	free(p.born);
	free(p.stopping);
	close(p.fd);
	if (addr[0] == '/')
		unlink(addr);
	log_info("serve: stopped");
	return 0;
}
