/*
 * stats.c: generic counter records in the stats env (MDB_NOSYNC), for the
 * Prometheus metrics and the per-key sliding-minute limits.
 *
 * Why a batch: every write transaction on the stats env takes its single
 * writer lock, which all workers share.  A request's metrics are several
 * records (route and code, key, tokens, latency histogram, rotations), so
 * they are written in one transaction, not one each.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "store_int.h"

#define STATS_KEY_MAX	200

int
store_stats_apply(struct store *st, const struct stats_op *ops, size_t n)
{
	struct txn	t;
	int64_t		f[STORE_STATS_FIELDS];
	char		val[1024];
	size_t		i;
	int		len;

	if (st == NULL)
		return -EINVAL;
	if (n == 0)
		return 0;
	if (txn_begin_stats(&t, st, false) != 0)
		return t.ret;
	for (i = 0; i < n && t.ret == 0; i++) {
		if (ops[i].nf == 0 || ops[i].nf > STORE_STATS_FIELDS ||
		    ops[i].klen == 0 || ops[i].klen > STATS_KEY_MAX)
			continue;
		counters_get(&t, ops[i].key, ops[i].klen, f, ops[i].nf);
		if (ops[i].fn(f, ops[i].nf, ops[i].arg) != 0)
			continue;
		if ((len = counters_format(val, sizeof(val), f, ops[i].nf)) > 0)
			txn_put(&t, st->sdbi, ops[i].key, ops[i].klen, val,
			    (size_t)len, 0);
	}
	return txn_commit(&t);
}

int
store_stats_scan(struct store *st, const void *prefix, size_t plen,
    int (*fn)(const void *, size_t, const int64_t *, void *), void *arg)
{
	struct txn	 t;
	MDB_cursor	*c;
	MDB_val		 k, v;
	int64_t		 f[STORE_STATS_FIELDS];
	int		 rc;

	if (st == NULL)
		return -EINVAL;
	if (txn_begin_stats(&t, st, true) != 0)
		return t.ret;
	if ((rc = mdb_cursor_open(t.txn, st->sdbi, &c)) != 0) {
		txn_abort(&t);
		return store_mdb_err(rc);
	}
	k.mv_data = (void *)(uintptr_t)prefix;
	k.mv_size = plen;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 &&
	    k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (counters_parse(v.mv_data, v.mv_size, f,
		    STORE_STATS_FIELDS) != 0)
			continue;
		if (fn(k.mv_data, k.mv_size, f, arg) != 0)
			break;
	}
	mdb_cursor_close(c);
	txn_abort(&t);
	return 0;
}
