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

int
store_login_purge(struct store *st, int64_t now)
{
	struct txn	 t;
	MDB_cursor	*c;
	MDB_val		 k, v;
	int		 rc, n = 0;

	if (txn_begin(&t, st, false) != 0)
		return t.ret;
	if ((rc = mdb_cursor_open(t.txn, st->dbi[DB_LOGINS], &c)) != 0) {
		txn_abort(&t);
		return store_mdb_err(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		json_tokener *tok = json_tokener_new_ex(8);
		json_object *o = json_tokener_parse_ex(tok, v.mv_data,
		    (int)v.mv_size);
		json_tokener_free(tok);
		/* Keep a finished login an extra 10 minutes for late polls. */
		if (o == NULL || jget_i64(o, "expires_at", 0) + 600000 < now) {
			mdb_cursor_del(c, 0);
			n++;
		}
		json_object_put(o);
	}
	mdb_cursor_close(c);
	if (n == 0) {
		txn_abort(&t);
		return 0;
	}
	rc = txn_commit(&t);
	return rc == 0 ? n : rc;
}
