/*
 * bench_store.c: what the store costs on this machine, for the notes.
 *
 *   selection read   store_account_list + store_mark_list, 10 accounts
 *   usage counter    store_usage_add into the stats env (MDB_NOSYNC)
 *   synced write     store_mark_set into data.mdb (fully synced commit)
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
	store_close(st);
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
