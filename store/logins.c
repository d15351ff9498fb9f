/*
 * logins.c: device logins in progress, so that any worker can answer a
 * poll.  Records are JSON objects owned by app/ (device code and PKCE
 * verifier are sealed there); the store only needs "expires_at".
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "xmalloc.h"

int
store_login_put(struct store *st, const char *id, const char *json)
{
	struct txn	t;

	if (txn_begin(&t, st, false) != 0)
		return t.ret;
	txn_put(&t, st->dbi[DB_LOGINS], id, strlen(id), json, strlen(json), 0);
	return txn_commit(&t);
}

int
store_login_get(struct store *st, const char *id, char **json)
{
	struct txn	t;
	MDB_val		v;
	int		rc;

	if (txn_begin(&t, st, true) != 0)
		return t.ret;
	rc = txn_get(&t, st->dbi[DB_LOGINS], id, strlen(id), &v);
	if (rc == 0)
		*json = xstrndup(v.mv_data, v.mv_size);
	txn_abort(&t);
	return rc;
}

int
store_login_update(struct store *st, const char *id,
    int (*fn)(struct json_object *, void *), void *arg)
{
	struct txn	 t;
	json_object	*o;
	int		 rc;

	if (txn_begin(&t, st, false) != 0)
		return t.ret;
	if ((rc = txn_get_json(&t, st->dbi[DB_LOGINS], id, strlen(id),
	    &o)) != 0) {
		txn_abort(&t);
		return rc;
	}
	rc = fn(o, arg);
	if (rc != 0) {
		json_object_put(o);
		txn_abort(&t);
		return rc < 0 ? rc : 0;
	}
	txn_put_json(&t, st->dbi[DB_LOGINS], id, strlen(id), o);
	json_object_put(o);
	return txn_commit(&t);
}

/* Unreadable, or expired more than 10 minutes ago (kept for late polls). */
static int
login_stale(const MDB_val *v, int64_t now)
{
	json_tokener	*tok = json_tokener_new_ex(8);
	json_object	*o = json_tokener_parse_ex(tok, v->mv_data,
			    (int)v->mv_size);
	int		 stale;

	json_tokener_free(tok);
	stale = o == NULL || jget_i64(o, "expires_at", 0) + 600000 < now;
	json_object_put(o);
	return stale;
}

int
store_login_purge(struct store *st, int64_t now)
{
	struct txn	 t;

	if (txn_begin(&t, st, false) != 0)
		return t.ret;
	return txn_purge(&t, st->dbi[DB_LOGINS], login_stale, now);
}
