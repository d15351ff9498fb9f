/*
 * worker.c: one worker process, serving many requests at once.
 *
 * libfcgi's threaded model (its examples/threaded.c): FCGX_Init once, then
 * every thread has its own FCGX_Request and blocks in FCGX_Accept_r on the
 * shared listening socket; the kernel hands each connection to one of
 * them.  A thread turns the request into a struct req (body capped before
 * it is read), dispatches, logs one line.  Threads rather than an event
 * loop because libfcgi and libcurl's easy interface both block, and a
 * blocked thread costs a few hundred KiB while the request is an LLM stream
 * that lasts seconds to minutes.
 *
 * Capacity is known: cfg threads request slots, plus WORKER_RESERVE
 * threads that stay free for probes.  A request that arrives while every
 * slot is busy gets an early 503 with Retry-After, except /health (and
 * /health/deep), which is answered at once whatever the load.
 *
 * Shared by the threads: the config (read only), the store (LMDB with
 * MDB_NOTLS; its cache has a lock), the sealing key (read only once
 * loaded), the load counters (atomics).  Each thread owns its libcurl easy
 * handle.  Signals are handled in one place: the main thread blocks them
 * all before starting the threads and takes them with sigtimedwait.
 *
 * This file and pool.c are the only ones that include <fcgiapp.h>.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "access_log.h"
#include "accounts.h"
#include "cfg.h"
#include "conn.h"
#include "loadtab.h"
#include "log.h"
#include "metrics.h"
#include "req.h"
#include "route.h"
#include "store.h"
#include "upstream.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

static int
fcgx_write(void *ctx, const void *p, size_t n)
{
	FCGX_Stream	*out = ctx;

	while (n > 0) {
		int chunk = n > 1 << 20 ? 1 << 20 : (int)n;
		if (FCGX_PutStr(p, chunk, out) != chunk)
			return -1;
		p = (const char *)p + chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

static int
fcgx_flush(void *ctx)
{
	return FCGX_FFlush(ctx) == 0 ? 0 : -1;
}

static enum http_method
method_parse(const char *m)
{
	static const struct { const char *n; enum http_method m; } t[] = {
		{ "GET", M_GET }, { "POST", M_POST }, { "PUT", M_PUT },
		{ "PATCH", M_PATCH }, { "DELETE", M_DELETE },
		{ "OPTIONS", M_OPTIONS }, { "HEAD", M_HEAD },
	};
	size_t	i;

	for (i = 0; m != NULL && i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(m, t[i].n) == 0)
			return t[i].m;
	return M_OTHER;
}

/* The client's key: Authorization: Bearer, x-api-key, or Apache's rewrite copy. */
static const char *
auth_value(FCGX_ParamArray env)
{
	const char	*a;

	if ((a = FCGX_GetParam("HTTP_AUTHORIZATION", env)) == NULL ||
	    *a == '\0')
		a = FCGX_GetParam("REDIRECT_HTTP_AUTHORIZATION", env);
	if (a != NULL && *a != '\0') {
		if (strncasecmp(a, "Bearer ", 7) != 0)
			return "";
		a += 7;
		while (*a == ' ')
			a++;
		return a;
	}
	return FCGX_GetParam("HTTP_X_API_KEY", env);
}

/* Read the body.  Returns 0, 413 (too large) or 400 (short). */
static int
read_body(struct req *r, FCGX_Request *fr, long long max)
{
	const char	*cl = FCGX_GetParam("CONTENT_LENGTH", fr->envp);
	const char	*es;
	long long	 len = 0;
	size_t		 got = 0;
	int		 n;

	if (cl != NULL && *cl != '\0') {
		len = parse_int(cl, 0, 1LL << 40, &es);
		if (es != NULL)
			return 400;
	}
	if (len > max)
		return 413;
	if (len == 0)
		return 0;
	r->body = xmalloc((size_t)len + 1);
	while (got < (size_t)len) {
		n = FCGX_GetStr(r->body + got, (int)((size_t)len - got), fr->in);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	r->body[got] = '\0';
	r->body_len = got;
	return got == (size_t)len ? 0 : 400;
}

static void
request_log(const struct req *r)
{
	if (!r->srv->cfg->request_log)
		return;
	log_info("%s %s %d %lu %ldms key=%s%s",
	    r->method_name, r->raw_path, r->status, (unsigned long)r->sent,
	    (long)(mono_ms() - r->t0),
	    r->client != NULL ? r->client->name : "-",
	    r->broken ? " client-gone" : "");
}

static void
serve_one(struct server *srv, FCGX_Request *fr, int over)
{
	struct conn_watch cw;
	struct req	 r;
	struct route_env renv;
	char		 pathbuf[2048];
	int		 rc;

	memset(&r, 0, sizeof(r));
	r.srv = srv;
	r.route = -1;
	r.out.last_reason = -1;
	r.t0 = mono_ms();
	r.sink.write = fcgx_write;
	r.sink.flush = fcgx_flush;
	r.sink.ctx = fr->out;
	r.method_name = FCGX_GetParam("REQUEST_METHOD", fr->envp);
	if (r.method_name == NULL)
		r.method_name = "GET";
	r.method = method_parse(r.method_name);
	renv.request_uri = FCGX_GetParam("REQUEST_URI", fr->envp);
	renv.script_name = FCGX_GetParam("SCRIPT_NAME", fr->envp);
	renv.path_info = FCGX_GetParam("PATH_INFO", fr->envp);
	renv.document_uri = FCGX_GetParam("DOCUMENT_URI", fr->envp);
	r.path = route_path(&renv, pathbuf, sizeof(pathbuf));
	r.raw_path = r.path;
	r.request_uri = renv.request_uri;
	r.query = FCGX_GetParam("QUERY_STRING", fr->envp);
	r.origin = FCGX_GetParam("HTTP_ORIGIN", fr->envp);
	r.content_type = FCGX_GetParam("CONTENT_TYPE", fr->envp);
	r.acr_headers = FCGX_GetParam("HTTP_ACCESS_CONTROL_REQUEST_HEADERS",
	    fr->envp);
	r.auth = auth_value(fr->envp);
	r.remote_addr = FCGX_GetParam("REMOTE_ADDR", fr->envp);

	if (over && !route_always(r.path)) {
		/* Every slot is busy: say so now rather than queue unbounded. */
		if (srv->load != NULL)
			atomic_fetch_add(&srv->load->refused, 1);
		resp_error_h(&r, 503, "Retry-After: 1\r\n", "server_error",
		    "overloaded", "The gateway is serving as many requests as "
		    "it is configured for (threads per worker); retry in a "
		    "moment, or raise threads / workers.");
		goto done;
	}
	rc = read_body(&r, fr, srv->cfg->max_body_bytes);
	if (rc == 413)
		resp_error(&r, 413, "invalid_request_error",
		    "request_too_large", "The request body is larger than "
		    "max_body_bytes (%lld bytes).",
		    srv->cfg->max_body_bytes);
	else if (rc == 400)
		resp_error(&r, 400, "invalid_request_error",
		    "invalid_request", "The request body is shorter than its "
		    "Content-Length.");
	else {
		conn_watch_init(&cw, fr->ipcFd,
		    FCGX_GetParam("SERVER_ADDR", fr->envp),
		    FCGX_GetParam("SERVER_PORT", fr->envp), r.remote_addr,
		    FCGX_GetParam("REMOTE_PORT", fr->envp));
		if (srv->upstream != NULL)
			upstream_watch(srv->upstream, &cw);
		dispatch(&r);
		if (srv->upstream != NULL)
			upstream_watch(srv->upstream, NULL);
	}
	if (!r.opened) {
		if (conn_fd_gone(fr->ipcFd))
			r.broken = 1;	/* nobody to answer */
		else
			resp_error(&r, 500, "server_error", "internal_error",
			    "No response was produced; see the server log.");
	}
done:
	srv->served++;
	if (srv->load != NULL)
		atomic_fetch_add(&srv->load->served, 1);
	request_log(&r);
	metrics_request_done(&r);
	/* srv's own generation: the main thread reopens for everyone. */
	access_log_write(&r, srv->alog_gen);
	req_free(&r);
}

void
server_signals(void (*fn)(int))
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int
server_open(struct server *srv, const struct cfg *cfg, const char *who)
{
	struct store_opts	so;
	int			rc;

	so.map_size_mb = (size_t)cfg->store_map_size_mb;
	/*
	 * A thread holds at most one read transaction at a time (MDB_NOTLS
	 * ties slots to transactions, not threads), so readers are bounded
	 * by threads x processes; 4096 slots cost 256 KiB of lock file.
	 */
	so.max_readers = 4096;
	if (srv->st == NULL && (rc = store_open(&srv->st, cfg->state_dir, &so,
	    srv->st_err, sizeof(srv->st_err))) != 0) {
		cfg_state_hint(cfg, rc, srv->st_err, sizeof(srv->st_err));
		log_err("%s: store: %s", who, srv->st_err);
		srv->st = NULL;
		return -1;
	}
	if (!srv->have_key) {
		if (accounts_key_load(cfg, srv->st, srv->seal_key, srv->key_err,
		    sizeof(srv->key_err)) == 0)
			srv->have_key = 1;
		else
			log_err("%s: sealing key: %s", who, srv->key_err);
	}
	return 0;
}

void
server_close(struct server *srv)
{
	xwipe(srv->seal_key, sizeof(srv->seal_key));
	srv->have_key = 0;
	store_close(srv->st);
	srv->st = NULL;
}

/* Threads beyond the request slots, kept for /health and quick 503s. */
#define WORKER_RESERVE		4
#define WORKER_STACK		(512u << 10)
#define WORKER_WAKE		SIGUSR2	/* interrupts a thread's accept() */

struct worker;

struct wthread {
	struct worker	*w;
	pthread_t	 tid;
	int		 started;
	atomic_int	 busy;		/* between accept and finish */
	atomic_int	 done;		/* left its loop */
	struct server	 srv;		/* this thread's view; own upstream */
	pthread_cond_t	 lf_cv;		/* woken to lead (lf_go) */
	struct wthread	*lf_next;	/* below it on the idle stack */
	int		 lf_go;		/* leadership handed to it */
};

struct worker {
	const struct cfg	*cfg;
	int			 fd;
	struct server		 base;	/* store + key, shared */
	pthread_mutex_t		 lock;	/* guards reopening base */
	pthread_mutex_t		 refresh_lock;	/* see struct server */
	struct load		 own;	/* the load, unless the pool's */
	struct load		*load;
	atomic_int		 stop;
	atomic_ulong		 accepted;
	struct wthread		*t;
	int			 nt;
	/*
	 * Leader/followers: one idle thread (the leader) waits in accept;
	 * the others wait on the idle stack, the most recently idle on top.
	 * The leader, once it has a connection, hands the lead to the top
	 * one.  So at low load the same one or two threads serve every
	 * request, with warm stacks, caches and upstream connections; with
	 * every thread in accept, the kernel handed each connection to the
	 * next waiter in turn: each request ran on a thread idle for a
	 * hundred requests (20-25% more CPU per request measured at c1).
	 */
	pthread_mutex_t		 lf_lock;
	int			 lf_leader;	/* some thread leads */
	struct wthread		*lf_top;
};

static int	lf_lead(struct worker *, struct wthread *);
static void	lf_handoff(struct worker *);

static void
on_wake(int sig)
{
	(void)sig;	/* only to make accept() return EINTR */
}

/*
 * Give t a usable store and key: the process's, opened once; a store that
 * failed at start is tried again (a disk freed later heals the process).
 */
static void
thread_sync(struct wthread *t)
{
	struct worker	*w = t->w;
	void		*up = t->srv.upstream;
	unsigned long	 served = t->srv.served;

	if (t->srv.st != NULL && t->srv.have_key)
		return;
	pthread_mutex_lock(&w->lock);
	if (w->base.st == NULL || !w->base.have_key)
		server_open(&w->base, w->cfg, "worker");
	t->srv = w->base;
	pthread_mutex_unlock(&w->lock);
	t->srv.upstream = up;
	t->srv.served = served;
	t->srv.load = w->load;
}

static void *
thread_main(void *arg)
{
	struct wthread	*t = arg;
	struct worker	*w = t->w;
	FCGX_Request	 fr;
	sigset_t	 wake;
	int		 n;

	sigemptyset(&wake);
	sigaddset(&wake, WORKER_WAKE);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	t->srv.upstream = upstream_new();
	if (FCGX_InitRequest(&fr, w->fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_err("FCGX_InitRequest failed");
		goto out;
	}
	while (!atomic_load(&w->stop)) {
		if (lf_lead(w, t) != 0)
			break;
		if (FCGX_Accept_r(&fr) < 0) {
			if (atomic_load(&w->stop)) {
				lf_handoff(w);
				break;
			}
			usleep(10 * 1000);	/* e.g. out of fds: no spin */
			lf_handoff(w);
			continue;
		}
		lf_handoff(w);
		atomic_store(&t->busy, 1);
		n = atomic_fetch_add(&w->load->in_flight, 1) + 1;
		thread_sync(t);
		serve_one(&t->srv, &fr, n > atomic_load(&w->load->capacity));
		/*
		 * The slot is free before the answer's last bytes go out: a
		 * client that sends its next request the moment this one
		 * ends must find it free, not a 503.
		 */
		atomic_fetch_sub(&w->load->in_flight, 1);
		FCGX_Finish_r(&fr);
		atomic_store(&t->busy, 0);
		if (w->cfg->max_requests > 0 &&
		    atomic_fetch_add(&w->accepted, 1) + 1 ==
		    (unsigned long)w->cfg->max_requests) {
			/* Recycle: tell the main thread now, not at its tick. */
			atomic_store(&w->stop, 1);
			kill(getpid(), SIGUSR1);
		}
	}
	FCGX_Free(&fr, 0);
out:
	upstream_free(t->srv.upstream);
	t->srv.upstream = NULL;
	atomic_store(&t->done, 1);
	return NULL;
}

/*
 * Wait until t leads (may call accept).  Returns 0 when it does, -1 when
 * the worker stops first (then t does not lead).  Followers look at stop
 * every 50 ms: the stop path needs no change.
 */
static int
lf_lead(struct worker *w, struct wthread *t)
{
	struct wthread	**pp;
	struct timespec	  ts;

	pthread_mutex_lock(&w->lf_lock);
	if (atomic_load(&w->stop)) {
		pthread_mutex_unlock(&w->lf_lock);
		return -1;
	}
	if (!w->lf_leader) {
		w->lf_leader = 1;
		pthread_mutex_unlock(&w->lf_lock);
		return 0;
	}
	t->lf_go = 0;
	t->lf_next = w->lf_top;
	w->lf_top = t;
	while (!t->lf_go && !atomic_load(&w->stop)) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 50 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&t->lf_cv, &w->lf_lock, &ts);
	}
	if (atomic_load(&w->stop)) {
		/* Stopping: nobody needs the lead; off the stack. */
		for (pp = &w->lf_top; *pp != NULL; pp = &(*pp)->lf_next)
			if (*pp == t) {
				*pp = t->lf_next;
				break;
			}
		pthread_mutex_unlock(&w->lf_lock);
		return -1;
	}
	pthread_mutex_unlock(&w->lf_lock);
	return 0;
}

/* The leader gives up the lead: to the most recently idle thread. */
static void
lf_handoff(struct worker *w)
{
	struct wthread	*n;

	pthread_mutex_lock(&w->lf_lock);
	if ((n = w->lf_top) != NULL) {
		w->lf_top = n->lf_next;
		n->lf_go = 1;
		pthread_cond_signal(&n->lf_cv);
	} else
		w->lf_leader = 0;
	pthread_mutex_unlock(&w->lf_lock);
}

/* Start the threads; returns how many started. */
static int
threads_start(struct worker *w)
{
	pthread_attr_t	at;
	pthread_condattr_t ca;
	int		i, n = 0;

	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, WORKER_STACK);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (i = 0; i < w->nt; i++)
		pthread_cond_init(&w->t[i].lf_cv, &ca);
	pthread_condattr_destroy(&ca);
	for (i = 0; i < w->nt; i++) {
		w->t[i].w = w;
		w->t[i].srv = w->base;
		w->t[i].srv.upstream = NULL;
		w->t[i].srv.load = w->load;
		if (pthread_create(&w->t[i].tid, &at, thread_main,
		    &w->t[i]) != 0) {
			log_err("worker: cannot start thread %d of %d: %s; "
			    "serving with fewer (lower threads)", i + 1,
			    w->nt, strerror(errno));
			break;
		}
		w->t[i].started = 1;
		n++;
	}
	pthread_attr_destroy(&at);
	return n;
}

/*
 * Stop: idle threads leave accept() at once; busy ones finish their
 * request (a stream runs to its end) for up to the grace period.
 * Returns 1 when every thread ended, 0 when the grace ran out.
 */
static int
threads_stop(struct worker *w)
{
	int64_t	deadline = mono_ms() + w->cfg->shutdown_grace_seconds * 1000;
	int	i, alive, logged = 0;

	atomic_store(&w->stop, 1);
	FCGX_ShutdownPending();
	for (;;) {
		for (alive = 0, i = 0; i < w->nt; i++) {
			if (!w->t[i].started || atomic_load(&w->t[i].done))
				continue;
			alive++;
			/*
			 * Again every round: a signal that came just before
			 * the thread entered accept() was lost.
			 */
			if (!atomic_load(&w->t[i].busy))
				pthread_kill(w->t[i].tid, WORKER_WAKE);
		}
		if (alive == 0)
			break;
		if (mono_ms() > deadline) {
			log_warn("worker: %d requests still running after "
			    "shutdown_grace_seconds (%lld); stopping anyway",
			    atomic_load(&w->load->in_flight),
			    w->cfg->shutdown_grace_seconds);
			return 0;
		}
		if (!logged && atomic_load(&w->load->in_flight) > 0) {
			log_info("worker: draining %d requests",
			    atomic_load(&w->load->in_flight));
			logged = 1;
		}
		usleep(50 * 1000);
	}
	for (i = 0; i < w->nt; i++)
		if (w->t[i].started)
			pthread_join(w->t[i].tid, NULL);
	return 1;
}

int
worker_run(const struct cfg *cfg, int fd, struct load *pool, int npool, int me)
{
	struct worker		 w;
	struct load		*tab = NULL;
	struct sigaction	 sa;
	struct timespec		 ts = { 0, 200 * 1000 * 1000 };
	sigset_t		 set;
	int			 sig, clean;

	memset(&w, 0, sizeof(w));
	w.cfg = cfg;
	w.fd = fd;
	w.base.cfg = cfg;
	w.base.started_ms = now_ms();
	server_open(&w.base, cfg, "worker");
	/* Spawned by a web server: share the load through state_dir. */
	if (pool == NULL && w.base.st != NULL &&
	    (tab = loadtab_open(cfg->state_dir, &me)) != NULL) {
		pool = tab;
		npool = LOADTAB_SLOTS;
	}
	w.load = pool != NULL && me >= 0 && me < npool ? &pool[me] : &w.own;
	w.base.load = w.load;
	if (w.load != &w.own) {
		w.base.pool = pool;
		w.base.npool = npool;
	}
	atomic_store(&w.load->pid, (int)getpid());
	atomic_store(&w.load->state, LOAD_STARTING);
	atomic_store(&w.load->in_flight, 0);
	atomic_store(&w.load->served, 0);
	atomic_store(&w.load->refused, 0);
	w.load->started_ms = w.base.started_ms;
	w.nt = (int)cfg->threads + WORKER_RESERVE;
	atomic_store(&w.load->capacity, (int)cfg->threads);
	atomic_store(&w.load->threads, w.nt);
	pthread_mutex_init(&w.lock, NULL);
	pthread_mutex_init(&w.refresh_lock, NULL);
	pthread_mutex_init(&w.lf_lock, NULL);
	w.base.refresh_lock = &w.refresh_lock;
	/* One access log descriptor for all threads (copied with base). */
	access_log_open(&w.base);
	/* Once, before any thread: curl_global_init is not thread-safe. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (FCGX_Init() != 0) {
		log_err("FCGX_Init failed");
		return 1;
	}

	/* Every signal comes to this thread's sigtimedwait, nowhere else. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, WORKER_WAKE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, WORKER_WAKE);
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_wake;	/* no SA_RESTART: accept() returns */
	sigemptyset(&sa.sa_mask);
	sigaction(WORKER_WAKE, &sa, NULL);

	w.t = xcalloc((size_t)w.nt, sizeof(*w.t));
	if ((w.nt = threads_start(&w)) == 0)
		return 1;
	if (w.nt < (int)cfg->threads + WORKER_RESERVE) {
		/* Fewer threads: fewer slots, still WORKER_RESERVE spare. */
		atomic_store(&w.load->capacity, w.nt > WORKER_RESERVE ?
		    w.nt - WORKER_RESERVE : 1);
		atomic_store(&w.load->threads, w.nt);
	}
	atomic_store(&w.load->state, LOAD_SERVING);
	while (!atomic_load(&w.stop)) {
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGHUP) {
			/* Both reopen onto the descriptor threads use. */
			if (log_open(NULL, cfg->log_file) != 0)
				log_err("SIGHUP: cannot reopen %s",
				    cfg->log_file);
			access_log_open(&w.base);
		} else if (sig > 0)
			break;		/* SIGTERM, SIGINT, SIGUSR1 */
	}
	atomic_store(&w.load->state, LOAD_STOPPING);
	clean = threads_stop(&w);
	if (!clean)
		_exit(0);	/* threads still use the store: leave as is */
	for (sig = 0; sig < w.nt; sig++)
		xwipe(w.t[sig].srv.seal_key, sizeof(w.t[sig].srv.seal_key));
	free(w.t);
	loadtab_close(tab, me);
	server_close(&w.base);
	pthread_mutex_destroy(&w.lock);
	pthread_mutex_destroy(&w.refresh_lock);
	curl_global_cleanup();
	return 0;
}
