/*
 * pool.c: the serve master.
 *
 * The master never opens the store or initialises libcurl: both are unsafe
 * to carry across fork().  It only listens, forks, waits and signals.
 * Besides the workers it keeps one keeper child (keeper.c) for proactive
 * refresh and store housekeeping, respawned like a worker.
 */
#include "config.h"

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
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

#define POOL_DRAIN_SECONDS	30
#define POOL_RESPAWN_LIMIT	10	/* deaths within a second before we slow down */

static volatile sig_atomic_t pool_term, pool_hup, pool_chld;
static sigset_t pool_oldmask;	/* the mask workers run with */

static void
on_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		pool_term = 1;
	else if (sig == SIGHUP)
		pool_hup = 1;
	else if (sig == SIGCHLD)
		pool_chld = 1;
}

/*
 * Fork a worker (serving fd) or the keeper (which never touches the
 * listen socket).  Returns the pid, or -1.
 */
static pid_t
spawn(const struct cfg *cfg, int fd, int keeper)
{
	pid_t	pid = fork();

	if (pid == 0) {
		struct sigaction sa;

		if (keeper)
			close(fd);
		/*
		 * Default dispositions before unblocking: a SIGTERM that
		 * arrives before the child installs its own handler must
		 * end it, not run the master's handler in the child.
		 */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGHUP, &sa, NULL);
		sigaction(SIGCHLD, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigprocmask(SIG_SETMASK, &pool_oldmask, NULL);
		_exit(keeper ? keeper_run(cfg) : worker_run(cfg, fd));
	}
	if (pid == -1)
		log_err("fork (%s): %s", keeper ? "keeper" : "worker",
		    strerror(errno));
	return pid;
}

static int
open_listen(const char *addr)
{
	int	fd;

	if (addr[0] == '/')
		unlink(addr);	/* a stale socket from a previous run */
	fd = FCGX_OpenSocket(addr, 128);
	if (fd >= 0 && addr[0] == '/')
		chmod(addr, 0660);
	return fd;
}

int
pool_run(struct cfg *cfg, const char *addr, int nworkers)
{
	struct sigaction	 sa;
	sigset_t		 mask, old;
	pid_t			*pids, pid, keeper = 0;
	int			 fd, i, status, alive;
	int64_t			 deadline;
	char			 perr[1024];

	if ((fd = open_listen(addr)) < 0) {
		log_err("cannot listen on %s: %s (is another server using "
		    "it?)", addr, strerror(errno));
		return 1;
	}
	/* Root's work is done: leave it before any worker exists. */
	if (priv_drop(cfg, addr, perr, sizeof(perr)) != 0) {
		log_err("serve: %s", perr);
		if (strcmp(cfg->log_file, "stderr") != 0)
			fprintf(stderr, "qwenrelay: %s\n", perr);
		close(fd);
		if (addr[0] == '/')
			unlink(addr);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	log_info("serve: listening on %s with %d workers", addr, nworkers);
	pids = xcalloc((size_t)nworkers, sizeof(*pids));
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &old);
	pool_oldmask = old;

	while (!pool_term) {
		/* Reap and respawn. */
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid == keeper) {
				if (!WIFEXITED(status) ||
				    WEXITSTATUS(status) != 0)
					log_warn("keeper %ld died (status %d); "
					    "respawning", (long)pid, status);
				keeper = 0;
			}
			for (i = 0; i < nworkers; i++)
				if (pids[i] == pid) {
					if (!WIFEXITED(status) ||
					    WEXITSTATUS(status) != 0)
						log_warn("worker %ld died "
						    "(status %d); respawning",
						    (long)pid, status);
					pids[i] = 0;
				}
		}
		if (pool_hup) {
			struct cfg	nc;
			char		err[512];

			pool_hup = 0;
			if (cfg_load(&nc, cfg->path, err, sizeof(err)) != 0) {
				log_err("SIGHUP: config not reloaded: %s", err);
				cfg_free(&nc);
			} else {
				cfg_free(cfg);
				*cfg = nc;
				log_info("SIGHUP: config reloaded; recycling "
				    "workers");
				/* Workers finish their request, then exit. */
				for (i = 0; i < nworkers; i++)
					if (pids[i] > 0)
						kill(pids[i], SIGUSR1);
				if (keeper > 0)
					kill(keeper, SIGTERM);
			}
		}
		if (keeper == 0 && (keeper = spawn(cfg, fd, 1)) == -1)
			keeper = 0;
		for (i = 0; i < nworkers; i++)
			if (pids[i] == 0 && (pids[i] = spawn(cfg, fd, 0)) == -1)
				pids[i] = 0;
		pool_chld = 0;
		/* Sleep until a signal; then loop. */
		sigsuspend(&old);
		if (pool_chld)
			usleep(50 * 1000); /* don't spin on a crash loop */
	}

	/* Drain: workers finish the request in hand and exit. */
	log_info("serve: draining %d workers", nworkers);
	for (i = 0; i < nworkers; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	if (keeper > 0)
		kill(keeper, SIGTERM);
	deadline = mono_ms() + POOL_DRAIN_SECONDS * 1000;
	for (;;) {
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid == keeper)
				keeper = 0;
			for (i = 0; i < nworkers; i++)
				if (pids[i] == pid)
					pids[i] = 0;
		}
		for (alive = keeper > 0, i = 0; i < nworkers; i++)
			alive += pids[i] > 0;
		if (alive == 0 || mono_ms() > deadline)
			break;
		usleep(20 * 1000);
	}
	for (i = 0; i < nworkers; i++)
		if (pids[i] > 0) {
			log_warn("worker %ld did not drain in %ds; killing",
			    (long)pids[i], POOL_DRAIN_SECONDS);
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
	if (keeper > 0) {
		kill(keeper, SIGKILL);
		waitpid(keeper, NULL, 0);
	}
	free(pids);
	close(fd);
	if (addr[0] == '/')
		unlink(addr);
	log_info("serve: stopped");
	return 0;
}
