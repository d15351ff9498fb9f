/*
 * responses.c: stored Responses API turns, so a client may continue a
 * conversation with previous_response_id instead of sending it whole.
 *
 * They live in their own env (state_dir/responses, MDB_NOSYNC): a cache
 * that may be lost on a crash, kept apart so that long conversations can
 * neither fill the accounts' map nor wait on an fsync.  A value is
 * "1 <expires_ms> <text>" (version, expiry, then app/'s text), so purging
 * reads only the prefix.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "xmalloc.h"

/* Parse the "1 <expires> " prefix; returns the text's offset or 0. */
static size_t
resp_prefix(const char *p, size_t n, int64_t *expires)
{
	size_t	i = 2;
	int64_t	e = 0;

	if (n < 4 || p[0] != '1' || p[1] != ' ')
		return 0;
	for (; i < n && p[i] >= '0' && p[i] <= '9' && i < 22; i++)
		e = e * 10 + (p[i] - '0');
	if (i >= n || p[i] != ' ')
		return 0;
	*expires = e;
	return i + 1;
}

int
store_response_put(struct store *st, const char *id, const char *text,
    int64_t expires_ms)
{
	struct txn	 t;
	char		 head[32];
	char		*v;
	size_t		 hn, tn = strlen(text);
	int		 rc;

	hn = (size_t)snprintf(head, sizeof(head), "1 %" PRId64 " ", expires_ms);
	v = xmalloc(hn + tn);
	memcpy(v, head, hn);
	memcpy(v + hn, text, tn);
	if (txn_begin_responses(&t, st, false) != 0) {
		free(v);
		return t.ret;
	}
	txn_put(&t, st->rdbi, id, strlen(id), v, hn + tn, 0);
	free(v);
	rc = txn_commit(&t);
	return rc;
}

int
store_response_get(struct store *st, const char *id, int64_t now, char **text)
{
	struct txn	t;
	MDB_val		v;
	int64_t		exp = 0;
	size_t		off;
	int		rc;

	*text = NULL;
	if (txn_begin_responses(&t, st, true) != 0)
		return t.ret;
	rc = txn_get(&t, st->rdbi, id, strlen(id), &v);
	if (rc == 0) {
		off = resp_prefix(v.mv_data, v.mv_size, &exp);
		if (off == 0)
			rc = -EINVAL;
		else if (exp <= now)
			rc = -ENOENT;
		else
			*text = xstrndup((const char *)v.mv_data + off,
			    v.mv_size - off);
	}
	txn_abort(&t);
	return rc;
}

/* A record past its expiry, or one that is not ours. */
static int
resp_stale(const MDB_val *v, int64_t now)
{
	int64_t	exp = 0;

	return resp_prefix(v->mv_data, v->mv_size, &exp) == 0 || exp <= now;
}

int
store_response_purge(struct store *st, int64_t now)
{
	struct txn	 t;

	if (txn_begin_responses(&t, st, false) != 0)
		return t.ret;
	return txn_purge(&t, st->rdbi, resp_stale, now);
}
