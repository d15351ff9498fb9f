/*
 * marks.c: rate-limit and quota marks per (account, model), shared by
 * every worker.
 *
 * marks db: id NUL model -> {"v":1,"resets_at":ms,"hits":n,"reason":".."}
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "xmalloc.h"

static size_t
mark_key(char *buf, size_t sz, const char *account, const char *model)
{
	size_t	a = strlen(account), m = strlen(model);

	if (a + 1 + m > sz)
		return 0;
	memcpy(buf, account, a + 1);
	memcpy(buf + a + 1, model, m);
	return a + 1 + m;
}

int
store_mark_set(struct store *st, const struct mark *mk)
{
	struct txn	 t;
	json_object	*o;
	char		 key[512];
	size_t		 klen;

	if ((klen = mark_key(key, sizeof(key), mk->account, mk->model)) == 0)
		return -EINVAL;
	o = json_object_new_object();
	json_object_object_add(o, "v", json_object_new_int(1));
	json_object_object_add(o, "resets_at",
	    json_object_new_int64(mk->resets_at));
	json_object_object_add(o, "hits", json_object_new_int64(mk->hits));
	json_object_object_add(o, "reason", json_object_new_string(
	    mk->reason != NULL ? mk->reason : "rate_limit"));
	if (txn_begin(&t, st, false) == 0)
		txn_put_json(&t, st->dbi[DB_MARKS], key, klen, o);
	json_object_put(o);
	return txn_commit(&t);
}

int
store_mark_clear(struct store *st, const char *account, const char *model)
{
	struct txn	t;
	char		key[512];
	size_t		klen;
	int		rc;

	if ((klen = mark_key(key, sizeof(key), account, model)) == 0)
		return -EINVAL;
	if (txn_begin(&t, st, false) != 0)
		return t.ret;
	rc = txn_del(&t, st->dbi[DB_MARKS], key, klen);
	if (rc == -ENOENT) {
		txn_abort(&t);
		return 0;
	}
	return txn_commit(&t);
}

void
mark_list_free(struct mark *l, size_t n)
{
	size_t	i;

	if (l == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(l[i].model);
		free(l[i].reason);
	}
	free(l);
}

int
store_mark_list(struct store *st, struct mark **out, size_t *n)
{
	struct txn	 t;
	MDB_cursor	*c;
	MDB_val		 k, v;
	struct mark	*l = NULL;
	size_t		 cnt = 0;
	int		 rc;

	*out = NULL;
	*n = 0;
	if (txn_begin(&t, st, true) != 0)
		return t.ret;
	if ((rc = mdb_cursor_open(t.txn, st->dbi[DB_MARKS], &c)) != 0) {
		txn_abort(&t);
		return store_mdb_err(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const char *nul = memchr(k.mv_data, '\0', k.mv_size);
		size_t alen;
		if (nul == NULL ||
		    (alen = (size_t)(nul - (const char *)k.mv_data)) >= 24)
			continue;
		json_tokener *tok = json_tokener_new_ex(8);
		json_object *o = json_tokener_parse_ex(tok, v.mv_data,
		    (int)v.mv_size);
		json_tokener_free(tok);
		if (o == NULL)
			continue;
		l = xrealloc(l, (cnt + 1) * sizeof(*l));
		memset(&l[cnt], 0, sizeof(l[cnt]));
		memcpy(l[cnt].account, k.mv_data, alen);
		l[cnt].model = xstrndup(nul + 1, k.mv_size - alen - 1);
		l[cnt].resets_at = jget_i64(o, "resets_at", 0);
		l[cnt].hits = jget_i64(o, "hits", 0);
		l[cnt].reason = xstrdup(jget_str(o, "reason") ?
		    jget_str(o, "reason") : "rate_limit");
		cnt++;
		json_object_put(o);
	}
	mdb_cursor_close(c);
	txn_abort(&t);
	*out = l;
	*n = cnt;
	return 0;
}
