/* test_store.c: the LMDB store in a temporary directory. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "store.h"
#include "tap.h"
#include "xmalloc.h"

static int
relabel(struct account *a, void *arg)
{
	(void)arg;
	free(a->label);
	a->label = xstrdup("after");
	return 0;
}

static int
relabel_back(struct account *a, void *arg)
{
	(void)arg;
	free(a->label);
	a->label = xstrdup("before");
	return 0;
}

int
main(void)
{
	struct store_opts	  so = { 16, 64 };
	struct store		 *st;
	struct store_stats	  ss;
	struct client_key	 *k = NULL, **l;
	struct stat		  sb;
	unsigned char		  h1[32], h2[32];
	char			  err[256], path[512];
	size_t			  n;

	plan_lazy();
	snprintf(path, sizeof(path), "%s/state", test_tmpdir());
	if (store_open(&st, path, &so, err, sizeof(err)) != 0)
		bail("store_open: %s", err);
	ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0700,
	    "state dir is 0700");
	snprintf(path, sizeof(path), "%s/state/data.mdb", test_tmpdir());
	ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600,
	    "data.mdb is 0600");
	is_int(0, store_stats(st, &ss), "stats");
	is_int(STORE_SCHEMA_VERSION, ss.schema, "schema version written");

	memset(h1, 1, sizeof(h1));
	memset(h2, 2, sizeof(h2));
	is_int(0, store_key_add(st, h1, "alice", 0, NULL, 1000), "add alice");
	is_int(0, store_key_add(st, h2, "root", 1, NULL, 2000), "add root");
	is_int(-EEXIST, store_key_add(st, h2, "alice", 0, NULL, 3000),
	    "names are unique");
	is_int(0, store_key_find(st, h2, &k), "find by hash");
	ok(k != NULL && strcmp(k->name, "root") == 0 && k->admin &&
	    k->created_ms == 2000, "record round-trips");
	client_key_free(k);
	memset(h2, 3, sizeof(h2));
	is_int(-ENOENT, store_key_find(st, h2, &k), "unknown hash");
	is_int(0, store_key_touch(st, h1, 5000), "touch");
	is_int(0, store_key_touch(st, h1, 6000), "touch again");
	is_int(0, store_key_list(st, &l, &n), "list");
	is_int(2, (long long)n, "two keys");
	ok(n == 2 && strcmp(l[0]->name, "alice") == 0 &&
	    l[0]->last_used_ms == 6000 && l[0]->requests == 2,
	    "list sorted, with counters from the stats env");
	client_key_list_free(l, n);
	is_int(0, store_key_find(st, h1, &k), "find alice (now cached)");
	client_key_free(k);
	is_int(0, store_key_find(st, h1, &k), "find alice again, from the "
	    "cache");
	ok(k != NULL && strcmp(k->name, "alice") == 0 && !k->admin &&
	    k->created_ms == 1000, "the cached copy is the record");
	client_key_free(k);
	{
		/* A cached key with a models list: copies are deep. */
		unsigned char	 h3[STORE_HASH_LEN];
		char		*ml[] = { "m1", "m2", NULL };
		struct key_limits lim = { 0, 0, ml };
		int		 j, good = 1;

		memset(h3, 7, sizeof(h3));
		is_int(0, store_key_add(st, h3, "lim", 0, &lim, 1500),
		    "add a key with a models list");
		for (j = 0; j < 3; j++) {
			if (store_key_find(st, h3, &k) != 0 ||
			    k->lim.models == NULL ||
			    strcmp(k->lim.models[1], "m2") != 0)
				good = 0;
			client_key_free(k);
		}
		ok(good, "found three times (two from the cache), each copy "
		    "with its own models list");
	}
	is_int(0, store_key_revoke(st, "alice"), "revoke");
	is_int(-ENOENT, store_key_revoke(st, "alice"), "revoke twice");
	is_int(-ENOENT, store_key_find(st, h1, &k), "revoked key is gone");

	/* The parsed-accounts cache must never serve a stale record. */
	{
		struct account	 a, **al;
		char		*models[] = { "m", NULL }, dup[24];
		size_t		 an, cnt;

		memset(&a, 0, sizeof(a));
		strcpy(a.id, "k1");
		a.provider = "openai-compatible";
		a.label = "before";
		a.models = models;
		a.access_sealed = "v1.x";
		a.status = "active";
		memset(h1, 9, sizeof(h1));
		is_int(0, store_account_add(st, &a, h1, 10, &cnt, dup),
		    "account added");
		store_account_list_bare(st, &al, &an);
		ok(an == 1 && strcmp(al[0]->label, "before") == 0,
		    "listed (and cached)");
		account_list_free(al, an);
		{
			struct account_snap	*s1, *s2, *s3;
			struct account *const	*l1;
			struct account *const	*l2;
			struct account *const	*l3;
			size_t			 n1, n2, n3;

			is_int(0, store_account_snap_get(st, &s1, &l1, &n1),
			    "borrow the list");
			store_account_snap_get(st, &s2, &l2, &n2);
			ok(s1 == s2 && l1 == l2 && n1 == 1 &&
			    strcmp(l1[0]->label, "before") == 0,
			    "borrowed twice without a commit: one shared list, "
			    "no copy");
			store_account_snap_put(s2);
			store_account_update(st, "k1", relabel, NULL);
			store_account_snap_get(st, &s3, &l3, &n3);
			ok(s3 != s1 && n3 == 1 &&
			    strcmp(l3[0]->label, "after") == 0,
			    "after a commit: a new list");
			ok(strcmp(l1[0]->label, "before") == 0,
			    "the old borrowed list stays valid until put");
			store_account_snap_put(s1);
			store_account_snap_put(s3);
			store_account_snap_put(NULL);
			store_account_update(st, "k1", relabel_back, NULL);
		}
		is_int(0, store_account_update(st, "k1", relabel, NULL),
		    "relabel");
		store_account_list_bare(st, &al, &an);
		ok(an == 1 && strcmp(al[0]->label, "after") == 0,
		    "a commit invalidates the cache");
		account_list_free(al, an);
		store_key_touch(st, h2, 7000);	/* stats env: no invalidation needed */
		store_account_list(st, &al, &an);
		ok(an == 1 && strcmp(al[0]->label, "after") == 0,
		    "cached list again, with counters");
		account_list_free(al, an);
		is_int(0, store_account_del(st, "k1"), "delete");
		store_account_list_bare(st, &al, &an);
		is_int(0, (long long)an, "a deleted account is gone from the list");
		account_list_free(al, an);
	}
	/* Counter records round-trip any int64 (formatted by hand). */
	{
		static const int64_t deltas[] = { 0, 1, 9, 10, -1, -10,
		    INT64_MAX, INT64_MIN + 1, 1234567890123LL };
		int64_t	v = 0, want = 0;
		size_t	i;
		int	good = 1;

		for (i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
			if (i > 0)
				store_stats_incr(st, "ctr", -want, &v);
			want = deltas[i];
			if (store_stats_incr(st, "ctr", want, &v) != 0 ||
			    v != want) {
				diag("counter %lld read back as %lld",
				    (long long)want, (long long)v);
				good = 0;
			}
		}
		ok(good, "counters: 0, 1, 9, 10, negatives, INT64_MAX, "
		    "INT64_MIN+1 read back exactly");
	}
	{
		/* Stored Responses API turns, with expiry. */
		char *text = NULL;

		is_int(0, store_response_put(st, "resp_a", "{\"x\":1}", 5000),
		    "response put");
		is_int(0, store_response_put(st, "resp_b", "{}", 9000),
		    "second response put");
		is_int(0, store_response_get(st, "resp_a", 4000, &text),
		    "response get before it expires");
		is_string("{\"x\":1}", text, "the text comes back as put");
		free(text);
		is_int(-ENOENT, store_response_get(st, "resp_a", 5000, &text),
		    "expired: -ENOENT");
		ok(text == NULL, "nothing returned when expired");
		is_int(-ENOENT, store_response_get(st, "resp_z", 0, &text),
		    "unknown: -ENOENT");
		is_int(1, store_response_purge(st, 6000), "purge drops the "
		    "expired one");
		is_int(0, store_response_get(st, "resp_b", 6000, &text),
		    "purge keeps the live one");
		free(text);
	}
	store_close(st);

	/* Reopen: everything committed is still there. */
	snprintf(path, sizeof(path), "%s/state", test_tmpdir());
	if (store_open(&st, path, &so, err, sizeof(err)) != 0)
		bail("reopen: %s", err);
	memset(h2, 2, sizeof(h2));
	is_int(0, store_key_find(st, h2, &k), "key survives reopen");
	client_key_free(k);
	store_close(st);

	ok(store_open(&st, "/proc/nope/state", &so, err, sizeof(err)) != 0 &&
	    strstr(err, "/proc/nope") != NULL, "unopenable dir names itself");
	return 0;
}
