/*
 * bench_store.c: what the store costs on this machine, for the notes.
 *
 *   selection read   store_account_list + store_mark_list, 10 accounts
 *   usage counter    store_usage_add into the stats env (MDB_NOSYNC)
 *   synced write     store_mark_set into data.mdb (fully synced commit)
 *   metrics batch    metrics_request_done for a relayed chat request (one
 *                    stats transaction: route+code, key, tokens, latency
 *                    histogram, the key's use counter)
 *   access log line  access_log_line + write(2) to an O_APPEND file
 *   /metrics render  metrics_render with 10 accounts
 *
 * The gap between the last two is why counters live in their own
 * unsynced environment: a synced commit per request would cap a worker.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

#include "access_log.h"
#include "cfg.h"
#include "metrics.h"
#include "outcome.h"
#include "req.h"
#include "route.h"
#include "store.h"
#include "util.h"

static double
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int
main(int argc, char **argv)
{
	struct store_opts	 so = { 64, 126 };
	struct store		*st;
	struct account		 a, **l;
	struct mark		*m, mk;
	struct usage		 u;
	unsigned char		 h[STORE_HASH_LEN];
	char			 dir[] = "/tmp/qrbench.XXXXXX", err[256], dup[24];
	char			*models[] = { "coder-model", NULL };
	size_t			 n, nm, cnt;
	double			 t0;
	int			 i, iters = argc > 1 ? atoi(argv[1]) : 20000;

	if (mkdtemp(dir) == NULL || store_open(&st, dir, &so, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "bench_store: %s\n", err);
		return 1;
	}
	for (i = 0; i < 10; i++) {
		memset(&a, 0, sizeof(a));
		snprintf(a.id, sizeof(a.id), "k%08d", i);
		a.provider = "openai-compatible";
		a.label = "bench";
		a.models = models;
		a.access_sealed = "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
		a.base_url = "http://127.0.0.1:1/v1";
		a.status = "active";
		a.created_at = i;
		memset(h, i, sizeof(h));
		store_account_add(st, &a, h, 100, &cnt, dup);
	}
	memset(&mk, 0, sizeof(mk));
	strcpy(mk.account, "k00000001");
	mk.model = "coder-model";
	mk.resets_at = now_ms() + 60000;
	mk.hits = 1;
	mk.reason = "quota";
	store_mark_set(st, &mk);

	t0 = now_us();
	for (i = 0; i < iters; i++) {
		store_account_list(st, &l, &n);
		store_mark_list(st, &m, &nm);
		account_list_free(l, n);
		mark_list_free(m, nm);
	}
	printf("selection read, with counters (least-used): %.1f us\n",
	    (now_us() - t0) / iters);
	t0 = now_us();
	for (i = 0; i < iters; i++) {
		store_account_list_bare(st, &l, &n);
		store_mark_list(st, &m, &nm);
		account_list_free(l, n);
		mark_list_free(m, nm);
	}
	printf("selection read, bare (other strategies): %.1f us\n",
	    (now_us() - t0) / iters);

	memset(&u, 0, sizeof(u));
	u.requests = 1;
	u.prompt_tokens = 10;
	u.completion_tokens = 20;
	t0 = now_us();
	for (i = 0; i < iters; i++) {
		u.when = i;
		store_usage_add(st, 'a', "k00000001", &u);
	}
	printf("usage counter, stats env (NOSYNC, WRITEMAP): %.1f us\n",
	    (now_us() - t0) / iters);

	t0 = now_us();
	for (i = 0; i < iters / 20; i++) {
		mk.hits = i;
		store_mark_set(st, &mk);
	}
	printf("synced commit, data.mdb: %.1f us\n",
	    (now_us() - t0) / (iters / 20));
	{
		struct cfg		 cfg;
		struct server		 srv;
		struct req		 r;
		struct client_key	 k;
		char			 e2[256], *text, *line, path[128];
		size_t			 len;
		int			 fd;

		unsetenv("QWENRELAY_CONFIG");
		cfg_load(&cfg, "/nonexistent", e2, sizeof(e2));
		memset(&srv, 0, sizeof(srv));
		srv.cfg = &cfg;
		srv.st = st;
		memset(&k, 0, sizeof(k));
		k.name = "bench";
		memset(&r, 0, sizeof(r));
		r.srv = &srv;
		r.client = &k;
		r.route = ROUTE_CHAT;
		r.status = 200;
		r.method_name = "POST";
		memset(&a, 0, sizeof(a));
		strcpy(a.id, "k00000001");
		a.provider = "openai-compatible";
		outcome_model(&r, "coder-model");
		outcome_attempt(&r, &a, 200, 420);
		outcome_tokens(&r, 12, 34);
		t0 = now_us();
		for (i = 0; i < iters; i++)
			metrics_request_done(&r);
		printf("metrics batch per request (one stats txn): %.1f us\n",
		    (now_us() - t0) / iters);
		snprintf(path, sizeof(path), "%s/access.jsonl", dir);
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
		t0 = now_us();
		for (i = 0; i < iters; i++) {
			line = access_log_line(&r, now_ms(), &len);
			if (write(fd, line, len) != (ssize_t)len)
				break;
			free(line);
		}
		printf("access log line (json-c + one write): %.1f us\n",
		    (now_us() - t0) / iters);
		close(fd);
		t0 = now_us();
		for (i = 0; i < 200; i++) {
			metrics_render(&srv, &text, &len);
			free(text);
		}
		printf("/metrics render, 10 accounts: %.1f us (%lu bytes)\n",
		    (now_us() - t0) / 200, (unsigned long)len);
		cfg_free(&cfg);
	}
	store_close(st);
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
