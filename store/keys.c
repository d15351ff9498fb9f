/*
 * keys.c: client API keys.
 *
 * keys db:  sha256(key) -> {"v":1,"name":..,"admin":bool,"created":ms,
 *                            "rpm"?:n,"tpm"?:n,"models"?:[..]}
 * counters (stats env): "k" + sha256(key) -> {"v":1,"last_used":ms,"n":count}
 * A key's name is unique; lookups by name scan (there are few keys).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "xmalloc.h"

static void
models_free(char **m)
{
	size_t	i;

	if (m == NULL)
		return;
	for (i = 0; m[i] != NULL; i++)
		free(m[i]);
	free(m);
}

void
client_key_free(struct client_key *k)
{
	if (k == NULL)
		return;
	free(k->name);
	models_free(k->lim.models);
	free(k);
}

void
client_key_list_free(struct client_key **l, size_t n)
{
	size_t	i;

	if (l == NULL)
		return;
	for (i = 0; i < n; i++)
		client_key_free(l[i]);
	free(l);
}

static struct client_key *
key_from_json(const void *hash, json_object *o)
{
	struct client_key	*k;
	const char		*name = jget_str(o, "name");
	json_object		*a;

	if (name == NULL)
		return NULL;
	k = xcalloc(1, sizeof(*k));
	memcpy(k->hash, hash, STORE_HASH_LEN);
	k->name = xstrdup(name);
	k->admin = json_object_object_get_ex(o, "admin", &a) &&
	    json_object_get_boolean(a);
	k->created_ms = jget_i64(o, "created", 0);
	k->lim.rpm = jget_i64(o, "rpm", 0);
	k->lim.tpm = jget_i64(o, "tpm", 0);
	if (json_object_object_get_ex(o, "models", &a) &&
	    json_object_is_type(a, json_type_array)) {
		size_t i, j, n = json_object_array_length(a);
		k->lim.models = xcalloc(n + 1, sizeof(char *));
		for (i = 0, j = 0; i < n; i++) {
			json_object *m = json_object_array_get_idx(a, i);
			if (json_object_is_type(m, json_type_string))
				k->lim.models[j++] =
				    xstrdup(json_object_get_string(m));
		}
	}
	return k;
}

#define KCACHE_N	(sizeof(((struct store *)0)->kcache) / \
			    sizeof(((struct store *)0)->kcache[0]))

/* A deep copy: every pointer client_key_free frees is duplicated. */
static struct client_key *
key_dup(const struct client_key *k)
{
	struct client_key	*c = xmalloc(sizeof(*c));
	size_t			 n, i;

	*c = *k;
	c->name = xstrdup(k->name);
	c->lim.models = NULL;
	if (k->lim.models != NULL) {
		for (n = 0; k->lim.models[n] != NULL; n++)
			;
		c->lim.models = xcalloc(n + 1, sizeof(char *));
		for (i = 0; i < n; i++)
			c->lim.models[i] = xstrdup(k->lim.models[i]);
	}
	return c;
}

/* Counters of a key (stats env): "1 <requests> <last_used>". */
static void
key_counters(struct store *st, struct client_key *k)
{
	struct txn	t;
	MDB_val		v;
	int64_t		f[2];
	unsigned char	sk[1 + STORE_HASH_LEN];

	sk[0] = 'k';
	memcpy(sk + 1, k->hash, STORE_HASH_LEN);
	if (txn_begin_stats(&t, st, true) != 0)
		return;
	if (txn_get(&t, st->sdbi, sk, sizeof(sk), &v) == 0 &&
	    counters_parse(v.mv_data, v.mv_size, f, 2) == 0) {
		k->requests = f[0];
		k->last_used_ms = f[1];
	}
	txn_abort(&t);
}

static int
find_name(struct txn *t, const char *name, unsigned char hash[STORE_HASH_LEN])
{
	MDB_cursor	*c;
	MDB_val		 k, v;
	json_object	*o;
	int		 rc, found = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[DB_KEYS], &c)) != 0)
		return store_mdb_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !found;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char *s = xstrndup(v.mv_data, v.mv_size);
		o = json_tokener_parse(s);
		free(s);
		const char *n = jget_str(o, "name");
		if (n != NULL && strcmp(n, name) == 0 &&
		    k.mv_size == STORE_HASH_LEN) {
			memcpy(hash, k.mv_data, STORE_HASH_LEN);
			found = 1;
		}
		json_object_put(o);
	}
	mdb_cursor_close(c);
	return found ? 0 : -ENOENT;
}

int
store_key_add(struct store *st, const unsigned char hash[STORE_HASH_LEN],
    const char *name, int admin, const struct key_limits *lim, int64_t now)
{
	struct txn	 t;
	json_object	*o;
	unsigned char	 other[STORE_HASH_LEN];
	int		 rc;

	if (txn_begin(&t, st, false) != 0)
		return t.ret;
	if (find_name(&t, name, other) == 0) {
		txn_abort(&t);
		return -EEXIST;
	}
	o = json_object_new_object();
	json_object_object_add(o, "v", json_object_new_int(1));
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "admin", json_object_new_boolean(admin));
	json_object_object_add(o, "created", json_object_new_int64(now));
	if (lim != NULL && lim->rpm > 0)
		json_object_object_add(o, "rpm", json_object_new_int64(lim->rpm));
	if (lim != NULL && lim->tpm > 0)
		json_object_object_add(o, "tpm", json_object_new_int64(lim->tpm));
	if (lim != NULL && lim->models != NULL) {
		json_object *a = json_object_new_array();
		size_t i;
		for (i = 0; lim->models[i] != NULL; i++)
			json_object_array_add(a,
			    json_object_new_string(lim->models[i]));
		json_object_object_add(o, "models", a);
	}
	rc = txn_put_json(&t, st->dbi[DB_KEYS], hash, STORE_HASH_LEN, o);
	json_object_put(o);
	if (rc != 0) {
		txn_abort(&t);
		return rc;
	}
	return txn_commit(&t);
}

int
store_key_find(struct store *st, const unsigned char hash[STORE_HASH_LEN],
    struct client_key **out)
{
	struct txn	 t;
	json_object	*o;
	int		 rc;

	struct key_cached *c;
	size_t		 id, i;

	if (txn_begin(&t, st, true) != 0)
		return t.ret;
	id = mdb_txn_id(t.txn);
	/* Parsed already, and no commit since: a copy, no parse. */
	pthread_mutex_lock(&st->cache_lock);
	for (i = 0; i < KCACHE_N; i++) {
		c = &st->kcache[i];
		if (c->txn == id && c->k != NULL &&
		    memcmp(c->hash, hash, STORE_HASH_LEN) == 0) {
			*out = key_dup(c->k);
			pthread_mutex_unlock(&st->cache_lock);
			txn_abort(&t);
			return 0;
		}
	}
	pthread_mutex_unlock(&st->cache_lock);
	rc = txn_get_json(&t, st->dbi[DB_KEYS], hash, STORE_HASH_LEN, &o);
	txn_abort(&t);
	if (rc != 0)
		return rc;
	*out = key_from_json(hash, o);
	json_object_put(o);
	if (*out == NULL)
		return -EINVAL;
	pthread_mutex_lock(&st->cache_lock);
	c = &st->kcache[st->kcache_next++ % KCACHE_N];
	client_key_free(c->k);
	c->k = key_dup(*out);
	c->txn = id;
	memcpy(c->hash, hash, STORE_HASH_LEN);
	pthread_mutex_unlock(&st->cache_lock);
	return 0;
}

static int
key_cmp(const void *a, const void *b)
{
	const struct client_key *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

int
store_key_list(struct store *st, struct client_key ***out, size_t *n)
{
	struct txn		  t;
	MDB_cursor		 *c;
	MDB_val			  k, v;
	struct client_key	**l = NULL, *ck;
	size_t			  cnt = 0, i;
	int			  rc;

	*out = NULL;
	*n = 0;
	if (txn_begin(&t, st, true) != 0)
		return t.ret;
	if ((rc = mdb_cursor_open(t.txn, st->dbi[DB_KEYS], &c)) != 0) {
		txn_abort(&t);
		return store_mdb_err(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char *s = xstrndup(v.mv_data, v.mv_size);
		json_object *o = json_tokener_parse(s);
		free(s);
		if (k.mv_size == STORE_HASH_LEN &&
		    (ck = key_from_json(k.mv_data, o)) != NULL) {
			l = xrealloc(l, (cnt + 1) * sizeof(*l));
			l[cnt++] = ck;
		}
		json_object_put(o);
	}
	mdb_cursor_close(c);
	txn_abort(&t);
	for (i = 0; i < cnt; i++)
		key_counters(st, l[i]);
	if (cnt > 1)
		qsort(l, cnt, sizeof(*l), key_cmp);
	*out = l;
	*n = cnt;
	return 0;
}

int
store_key_revoke(struct store *st, const char *name)
{
	struct txn	t;
	unsigned char	hash[STORE_HASH_LEN];
	int		rc;

	if (txn_begin(&t, st, false) != 0)
		return t.ret;
	if ((rc = find_name(&t, name, hash)) != 0) {
		txn_abort(&t);
		return rc;
	}
	txn_del(&t, st->dbi[DB_KEYS], hash, STORE_HASH_LEN);
	return txn_commit(&t);
}

int
store_key_touch(struct store *st, const unsigned char hash[STORE_HASH_LEN],
    int64_t now)
{
	struct txn	t;
	int64_t		f[2];	/* requests, last used */
	unsigned char	sk[1 + STORE_HASH_LEN];

	sk[0] = 'k';
	memcpy(sk + 1, hash, STORE_HASH_LEN);
	if (txn_begin_stats(&t, st, false) != 0)
		return t.ret;
	counters_get(&t, sk, sizeof(sk), f, 2);
	if (f[0] < INT64_MAX)	/* the record is read from disk: input */
		f[0]++;
	f[1] = now;
	counters_put(&t, sk, sizeof(sk), f, 2);
	return txn_commit(&t);
}

static int
touch_fn(int64_t *f, size_t nf, void *arg)
{
	(void)nf;
	f[0]++;
	f[1] = *(int64_t *)arg;
	return 0;
}

void
store_key_touch_op(const unsigned char hash[STORE_HASH_LEN], int64_t now,
    struct stats_op *op, unsigned char *key, int64_t *arg)
{
	key[0] = 'k';
	memcpy(key + 1, hash, STORE_HASH_LEN);
	*arg = now;
	memset(op, 0, sizeof(*op));
	op->key = key;
	op->klen = 1 + STORE_HASH_LEN;
	op->nf = 2;
	op->fn = touch_fn;
	op->arg = arg;
}
