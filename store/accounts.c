/*
 * accounts.c: provider accounts, retired refresh-token hashes, usage
 * counters.
 *
 * accounts db: id -> {"v":1, "id", "provider", "label", "models":[..],
 *     "access":sealed, "refresh":sealed|null, "base_url", "expires_at",
 *     "created_at", "status", "status_reason", "last_error",
 *     "lease_until", "lease_pid", "refreshed_at"}
 * seen db: sha256(refresh token) -> id, for every refresh token an account
 *     has had, so an import of a stale copy is recognised.
 * counters (stats env): <kind> + id -> {"requests", "prompt_tokens", ...}
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "xmalloc.h"

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void
account_free(struct account *a)
{
	if (a == NULL)
		return;
	free(a->provider);
	free(a->label);
	xfree_strv(a->models);
	xfree_strv(a->catalog);
	free(a->catalog_error);
	free(a->access_sealed);
	free(a->refresh_sealed);
	free(a->base_url);
	free(a->status);
	free(a->status_reason);
	free(a->last_error);
	free(a);
}

void
account_list_free(struct account **l, size_t n)
{
	size_t	i;

	if (l == NULL)
		return;
	for (i = 0; i < n; i++)
		account_free(l[i]);
	free(l);
}

/* A NULL-terminated copy of the string array at key, or NULL if absent. */
static char **
strlist_from(json_object *o, const char *key)
{
	json_object	*m;
	char		**l;
	size_t		 i, n;

	if (!json_object_object_get_ex(o, key, &m) ||
	    !json_object_is_type(m, json_type_array))
		return NULL;
	n = json_object_array_length(m);
	l = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++)
		l[i] = xstrdup(json_object_get_string(
		    json_object_array_get_idx(m, i)));
	return l;
}

static struct account *
account_from_json(json_object *o)
{
	struct account	*a;
	json_object	*m;
	const char	*id = jget_str(o, "id");
	size_t		 i, n;

	if (id == NULL || strlen(id) >= sizeof(a->id))
		return NULL;
	a = xcalloc(1, sizeof(*a));
	strcpy(a->id, id);
	a->provider = dup_or_null(jget_str(o, "provider"));
	a->label = dup_or_null(jget_str(o, "label"));
	a->access_sealed = dup_or_null(jget_str(o, "access"));
	a->refresh_sealed = dup_or_null(jget_str(o, "refresh"));
	a->base_url = dup_or_null(jget_str(o, "base_url"));
	a->status = xstrdup(jget_str(o, "status") ? jget_str(o, "status") :
	    "active");
	a->status_reason = dup_or_null(jget_str(o, "status_reason"));
	a->last_error = dup_or_null(jget_str(o, "last_error"));
	a->expires_at = jget_i64(o, "expires_at", 0);
	a->created_at = jget_i64(o, "created_at", 0);
	a->lease_until = jget_i64(o, "lease_until", 0);
	a->lease_pid = jget_i64(o, "lease_pid", 0);
	a->refreshed_at = jget_i64(o, "refreshed_at", 0);
	n = json_object_object_get_ex(o, "models", &m) &&
	    json_object_is_type(m, json_type_array) ?
	    json_object_array_length(m) : 0;
	a->models = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++)
		a->models[i] = xstrdup(json_object_get_string(
		    json_object_array_get_idx(m, i)));
	if (a->provider == NULL)
		a->provider = xstrdup("qwen-oauth");
	a->state = strcmp(a->status, "active") == 0 ? ACCT_ACTIVE :
	    strcmp(a->status, "needs_login") == 0 ? ACCT_NEEDS_LOGIN :
	    ACCT_DISABLED;
	/* Records before the catalog: a non-empty list was the operator's. */
	a->models_pinned = jget_i64(o, "models_pinned", n > 0 ? 1 : 0) != 0;
	a->catalog = strlist_from(o, "catalog");
	a->catalog_at = jget_i64(o, "catalog_at", 0);
	a->catalog_error = dup_or_null(jget_str(o, "catalog_error"));
	return a;
}

static void
add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v != NULL ? json_object_new_string(v) :
	    NULL);
}

static json_object *
account_to_json(const struct account *a)
{
	json_object	*o = json_object_new_object(), *m;
	size_t		 i;

	json_object_object_add(o, "v", json_object_new_int(1));
	add_str(o, "id", a->id);
	add_str(o, "provider", a->provider);
	add_str(o, "label", a->label);
	m = json_object_new_array();
	for (i = 0; a->models != NULL && a->models[i] != NULL; i++)
		json_object_array_add(m, json_object_new_string(a->models[i]));
	json_object_object_add(o, "models", m);
	json_object_object_add(o, "models_pinned",
	    json_object_new_int(a->models_pinned ? 1 : 0));
	if (a->catalog != NULL) {
		m = json_object_new_array();
		for (i = 0; a->catalog[i] != NULL; i++)
			json_object_array_add(m,
			    json_object_new_string(a->catalog[i]));
		json_object_object_add(o, "catalog", m);
	}
	json_object_object_add(o, "catalog_at",
	    json_object_new_int64(a->catalog_at));
	add_str(o, "catalog_error", a->catalog_error);
	add_str(o, "access", a->access_sealed);
	add_str(o, "refresh", a->refresh_sealed);
	add_str(o, "base_url", a->base_url);
	json_object_object_add(o, "expires_at",
	    json_object_new_int64(a->expires_at));
	json_object_object_add(o, "created_at",
	    json_object_new_int64(a->created_at));
	add_str(o, "status", a->status != NULL ? a->status : "active");
	add_str(o, "status_reason", a->status_reason);
	add_str(o, "last_error", a->last_error);
	json_object_object_add(o, "lease_until",
	    json_object_new_int64(a->lease_until));
	json_object_object_add(o, "lease_pid",
	    json_object_new_int64(a->lease_pid));
	json_object_object_add(o, "refreshed_at",
	    json_object_new_int64(a->refreshed_at));
	return o;
}

static int
put_account(struct txn *t, const struct account *a)
{
	json_object	*o = account_to_json(a);
	int		 rc;

	rc = txn_put_json(t, t->st->dbi[DB_ACCOUNTS], a->id, strlen(a->id), o);
	json_object_put(o);
	return rc;
}

static int	usage_read(struct store *, char, const char *, int64_t *);

static void
fill_usage(struct store *st, struct account *a)
{
	int64_t	f[5];

	if (usage_read(st, 'a', a->id, f) != 0)
		return;
	a->total_requests = f[0];
	a->prompt_tokens = f[1];
	a->completion_tokens = f[2];
	a->errors = f[3];
	a->last_used_at = f[4];
}

int
store_account_count(struct store *st, size_t *n)
{
	struct txn	t;
	MDB_stat	ms;
	int		rc;

	if (txn_begin(&t, st, true) != 0)
		return t.ret;
	rc = mdb_stat(t.txn, st->dbi[DB_ACCOUNTS], &ms);
	txn_abort(&t);
	if (rc != 0)
		return store_mdb_err(rc);
	*n = ms.ms_entries;
	return 0;
}

int
store_account_add(struct store *st, const struct account *a,
    const unsigned char *rh, long long max, size_t *count, char dup_id[24])
{
	struct txn	t;
	MDB_stat	ms;
	MDB_val		v;
	int		rc;

	if (txn_begin(&t, st, false) != 0)
		return t.ret;
	if (rh != NULL && txn_get(&t, st->dbi[DB_SEEN], rh, STORE_HASH_LEN,
	    &v) == 0) {
		size_t n = v.mv_size < 23 ? v.mv_size : 23;
		memcpy(dup_id, v.mv_data, n);
		dup_id[n] = '\0';
		txn_abort(&t);
		return -EEXIST;
	}
	if ((rc = mdb_stat(t.txn, st->dbi[DB_ACCOUNTS], &ms)) != 0) {
		txn_abort(&t);
		return store_mdb_err(rc);
	}
	*count = ms.ms_entries;
	if ((long long)ms.ms_entries >= max) {
		txn_abort(&t);
		return -EDQUOT;
	}
	if (txn_get(&t, st->dbi[DB_ACCOUNTS], a->id, strlen(a->id), &v) == 0) {
		txn_abort(&t);
		return -EAGAIN;		/* id collision: caller picks another */
	}
	put_account(&t, a);
	if (rh != NULL)
		txn_put(&t, st->dbi[DB_SEEN], rh, STORE_HASH_LEN, a->id,
		    strlen(a->id), 0);
	return txn_commit(&t);
}

int
store_account_get(struct store *st, const char *id, struct account **out)
{
	struct txn	 t;
	json_object	*o;
	int		 rc;

	if (txn_begin(&t, st, true) != 0)
		return t.ret;
	rc = txn_get_json(&t, st->dbi[DB_ACCOUNTS], id, strlen(id), &o);
	txn_abort(&t);
	if (rc != 0)
		return rc;
	*out = account_from_json(o);
	json_object_put(o);
	if (*out == NULL)
		return -EINVAL;
	fill_usage(st, *out);
	return 0;
}

static int	account_list(struct store *, struct account ***, size_t *, int);

static struct account	*account_dup(const struct account *);

int
store_account_get_bare(struct store *st, const char *id, struct account **out)
{
	struct txn	 t;
	json_object	*o;
	size_t		 i;
	int		 rc;

	if (txn_begin(&t, st, true) != 0)
		return t.ret;
	/* The list cache is exact while no commit happened since it was read. */
	pthread_mutex_lock(&st->cache_lock);
	if (st->cache != NULL && st->cache->txn == mdb_txn_id(t.txn)) {
		txn_abort(&t);
		rc = -ENOENT;
		for (i = 0; i < st->cache->n; i++)
			if (strcmp(st->cache->l[i]->id, id) == 0) {
				*out = account_dup(st->cache->l[i]);
				rc = 0;
				break;
			}
		pthread_mutex_unlock(&st->cache_lock);
		return rc;
	}
	pthread_mutex_unlock(&st->cache_lock);
	rc = txn_get_json(&t, st->dbi[DB_ACCOUNTS], id, strlen(id), &o);
	txn_abort(&t);
	if (rc != 0)
		return rc;
	*out = account_from_json(o);
	json_object_put(o);
	return *out == NULL ? -EINVAL : 0;
}

static int
acct_cmp(const void *x, const void *y)
{
	const struct account *const *a = x, *const *b = y;

	if ((*a)->created_at != (*b)->created_at)
		return (*a)->created_at < (*b)->created_at ? -1 : 1;
	return strcmp((*a)->id, (*b)->id);
}

int
store_account_list(struct store *st, struct account ***out, size_t *n)
{
	return account_list(st, out, n, 1);
}

int
store_account_list_bare(struct store *st, struct account ***out, size_t *n)
{
	return account_list(st, out, n, 0);
}

static char **
models_dup(char **m)
{
	char	**l;
	size_t	  i, n;

	for (n = 0; m != NULL && m[n] != NULL; n++)
		;
	l = xcalloc(n + 1, sizeof(*l));
	for (i = 0; i < n; i++)
		l[i] = xstrdup(m[i]);
	return l;
}

static struct account *
account_dup(const struct account *a)
{
	struct account	*c = xmalloc(sizeof(*c));

	*c = *a;
	c->provider = dup_or_null(a->provider);
	c->label = dup_or_null(a->label);
	c->models = models_dup(a->models);
	c->catalog = a->catalog != NULL ? models_dup(a->catalog) : NULL;
	c->catalog_error = dup_or_null(a->catalog_error);
	c->access_sealed = dup_or_null(a->access_sealed);
	c->refresh_sealed = dup_or_null(a->refresh_sealed);
	c->base_url = dup_or_null(a->base_url);
	c->status = dup_or_null(a->status);
	c->status_reason = dup_or_null(a->status_reason);
	c->last_error = dup_or_null(a->last_error);
	return c;
}


void
snap_put(struct account_snap *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	account_list_free(s->l, s->n);
	free(s);
}

void
store_account_snap_put(struct account_snap *s)
{
	snap_put(s);
}

struct account *
account_copy(const struct account *a)
{
	return account_dup(a);
}

int
store_account_snap_get(struct store *st, struct account_snap **snap,
    struct account *const **out, size_t *n)
{
	struct txn	  t;
	MDB_cursor	 *c;
	MDB_val		  k, v;
	struct account	**l = NULL, *a;
	struct account_snap *s, *old = NULL;
	size_t		  cnt = 0, id;
	int		  rc;

	*snap = NULL;
	*out = NULL;
	*n = 0;
	if (txn_begin(&t, st, true) != 0)
		return t.ret;
	id = mdb_txn_id(t.txn);
	pthread_mutex_lock(&st->cache_lock);
	if (st->cache != NULL && st->cache->txn == id) {
		s = st->cache;
		atomic_fetch_add(&s->refs, 1);
		pthread_mutex_unlock(&st->cache_lock);
		txn_abort(&t);
		goto done;
	}
	pthread_mutex_unlock(&st->cache_lock);
	if ((rc = mdb_cursor_open(t.txn, st->dbi[DB_ACCOUNTS], &c)) != 0) {
		txn_abort(&t);
		return store_mdb_err(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		json_tokener *tok = json_tokener_new_ex(16);
		json_object *o = json_tokener_parse_ex(tok, v.mv_data,
		    (int)v.mv_size);
		json_tokener_free(tok);
		if (o != NULL && (a = account_from_json(o)) != NULL) {
			l = xrealloc(l, (cnt + 1) * sizeof(*l));
			l[cnt++] = a;
		}
		json_object_put(o);
	}
	mdb_cursor_close(c);
	txn_abort(&t);
	if (cnt > 1)
		qsort(l, cnt, sizeof(*l), acct_cmp);
	s = xcalloc(1, sizeof(*s));
	atomic_init(&s->refs, 1);	/* the caller's */
	s->l = l;
	s->n = cnt;
	s->txn = id;
	pthread_mutex_lock(&st->cache_lock);
	/* Another thread may have cached a newer list meanwhile: keep it. */
	if (st->cache == NULL || st->cache->txn < id) {
		old = st->cache;
		atomic_fetch_add(&s->refs, 1);	/* the store's */
		st->cache = s;
	}
	pthread_mutex_unlock(&st->cache_lock);
	snap_put(old);
done:
	*snap = s;
	*out = s->l;
	*n = s->n;
	return 0;
}

static int
account_list(struct store *st, struct account ***out, size_t *n, int usage)
{
	struct account_snap	 *s;
	struct account *const	 *sl;
	struct account		**l;
	size_t			  cnt, i;
	int			  rc;

	*out = NULL;
	*n = 0;
	if ((rc = store_account_snap_get(st, &s, &sl, &cnt)) != 0)
		return rc;
	l = xcalloc(cnt + 1, sizeof(*l));
	for (i = 0; i < cnt; i++)
		l[i] = account_dup(sl[i]);
	snap_put(s);
	for (i = 0; usage && i < cnt; i++)
		fill_usage(st, l[i]);
	*out = l;
	*n = cnt;
	return 0;
}

/* Delete every record of db whose key starts with prefix, or whose value is val. */
static void
del_matching(struct txn *t, MDB_dbi dbi, const char *prefix, size_t plen,
    const char *val)
{
	MDB_cursor	*c;
	MDB_val		 k, v;
	int		 rc;

	if (t->ret != 0 || mdb_cursor_open(t->txn, dbi, &c) != 0)
		return;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		int hit = prefix != NULL ? (k.mv_size >= plen &&
		    memcmp(k.mv_data, prefix, plen) == 0) :
		    (v.mv_size == strlen(val) &&
		    memcmp(v.mv_data, val, v.mv_size) == 0);
		if (hit)
			mdb_cursor_del(c, 0);
	}
	mdb_cursor_close(c);
}

int
store_account_del(struct store *st, const char *id)
{
	struct txn	t;
	char		prefix[26];
	int		rc;

	if (txn_begin(&t, st, false) != 0)
		return t.ret;
	if ((rc = txn_del(&t, st->dbi[DB_ACCOUNTS], id, strlen(id))) != 0) {
		txn_abort(&t);
		return rc;
	}
	/* marks are keyed id NUL model */
	memcpy(prefix, id, strlen(id) + 1);
	del_matching(&t, st->dbi[DB_MARKS], prefix, strlen(id) + 1, NULL);
	del_matching(&t, st->dbi[DB_SEEN], NULL, 0, id);
	return txn_commit(&t);
}

int
store_account_update(struct store *st, const char *id,
    int (*fn)(struct account *, void *), void *arg)
{
	struct txn	 t;
	json_object	*o;
	struct account	*a;
	int		 rc;

	if (txn_begin(&t, st, false) != 0)
		return t.ret;
	if ((rc = txn_get_json(&t, st->dbi[DB_ACCOUNTS], id, strlen(id),
	    &o)) != 0) {
		txn_abort(&t);
		return rc;
	}
	a = account_from_json(o);
	json_object_put(o);
	if (a == NULL) {
		txn_abort(&t);
		return -EINVAL;
	}
	rc = fn(a, arg);
	if (rc != 0) {
		txn_abort(&t);
		account_free(a);
		return rc < 0 ? rc : 0;
	}
	put_account(&t, a);
	if (a->has_seen_add)
		txn_put(&t, st->dbi[DB_SEEN], a->seen_add, STORE_HASH_LEN,
		    a->id, strlen(a->id), 0);
	account_free(a);
	return txn_commit(&t);
}

int
store_seen_find(struct store *st, const unsigned char hash[STORE_HASH_LEN],
    char id[24])
{
	struct txn	t;
	MDB_val		v;
	int		rc;

	if (txn_begin(&t, st, true) != 0)
		return t.ret;
	rc = txn_get(&t, st->dbi[DB_SEEN], hash, STORE_HASH_LEN, &v);
	if (rc == 0) {
		size_t n = v.mv_size < 23 ? v.mv_size : 23;
		memcpy(id, v.mv_data, n);
		id[n] = '\0';
	}
	txn_abort(&t);
	return rc;
}

/* ---- usage counters (stats env) ---- */

/*
 * A counter record is versioned text, "1 f0 f1 ...": one parse of a few
 * numbers instead of a JSON round trip on every request.  Errors by class
 * live in their own records ("e" kind id NUL class -> "1 n"), written only
 * when an error happens.
 */
enum { U_REQUESTS, U_PROMPT, U_COMPLETION, U_ERRORS, U_LAST_USED, U__MAX };

/* Parse "1 a b c" into f[0..n); missing fields are 0.  -EINVAL if not ours. */
int
counters_parse(const void *p, size_t len, int64_t *f, size_t n)
{
	const uint64_t	 LIM = (UINT64_MAX - 9) / 10;	/* no wrap */
	const char	*s = p, *e = s + len;
	uint64_t	 u;
	size_t		 i;
	int		 neg;

	memset(f, 0, n * sizeof(*f));
	if (len == 0 || len >= 1024 || s[0] != '1')
		return -EINVAL;
	/* By hand, as counters_format writes them: " <v>" with v in decimal. */
	for (s++, i = 0; i < n && s < e && *s == ' '; i++) {
		s++;
		if ((neg = s < e && *s == '-'))
			s++;
		/* Saturating like strtoll: a record read from disk is input. */
		for (u = 0; s < e && *s >= '0' && *s <= '9'; s++)
			u = u > LIM ? UINT64_MAX : u * 10 + (uint64_t)(*s - '0');
		if (neg)
			f[i] = u > (uint64_t)INT64_MAX ? INT64_MIN :
			    -(int64_t)u;
		else
			f[i] = u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
	}
	return 0;
}

/*
 * " <v>" in decimal at buf, at most sz bytes; returns the length or 0
 * when it does not fit.  By hand: snprintf's format engine was most of a
 * counter write's cost (two or three writes per request).
 */
static size_t
put_i64(char *buf, size_t sz, int64_t v)
{
	char		 tmp[24];
	size_t		 n = 0, i;
	uint64_t	 u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		tmp[n++] = '-';
	if (n + 1 > sz)
		return 0;
	buf[0] = ' ';
	for (i = 0; i < n; i++)
		buf[1 + i] = tmp[n - 1 - i];
	return n + 1;
}

int
counters_format(char *buf, size_t sz, const int64_t *f, size_t n)
{
	size_t	i, o, w;

	if (sz < 2)
		return -EINVAL;
	buf[0] = '1';
	o = 1;
	for (i = 0; i < n; i++) {
		if ((w = put_i64(buf + o, sz - o - 1, f[i])) == 0)
			return -EINVAL;
		o += w;
	}
	buf[o] = '\0';
	return (int)o;
}

void
counters_get(struct txn *t, const void *key, size_t klen, int64_t *f, size_t n)
{
	MDB_val	v;

	if (txn_get(t, t->st->sdbi, key, klen, &v) != 0 ||
	    counters_parse(v.mv_data, v.mv_size, f, n) != 0)
		memset(f, 0, n * sizeof(*f));
	if (t->ret == -ENOENT || t->ret == -EINVAL)
		t->ret = 0;
}

void
counters_put(struct txn *t, const void *key, size_t klen, const int64_t *f,
    size_t n)
{
	char	val[256];
	int	len;

	if ((len = counters_format(val, sizeof(val), f, n)) > 0)
		txn_put(t, t->st->sdbi, key, klen, val, (size_t)len, 0);
}

/* The usage record's key, kind + id; 0 if it does not fit. */
static size_t
usage_key(char *buf, size_t sz, char kind, const char *id)
{
	size_t	n = (size_t)snprintf(buf, sz, "%c%s", kind, id);

	return n < sz - 1 ? n : 0;
}

/* The counters of (kind, id) into f[0..U__MAX); -ENOENT when none. */
static int
usage_read(struct store *st, char kind, const char *id, int64_t *f)
{
	struct txn	t;
	MDB_val		v;
	char		key[80];
	size_t		klen;
	int		rc;

	if ((klen = usage_key(key, sizeof(key), kind, id)) == 0)
		return -EINVAL;
	if (txn_begin_stats(&t, st, true) != 0)
		return t.ret;
	rc = txn_get(&t, st->sdbi, key, klen, &v);
	if (rc == 0)
		rc = counters_parse(v.mv_data, v.mv_size, f, U__MAX);
	txn_abort(&t);
	return rc;
}

/* a + b, saturating at INT64_MIN/MAX (a record read from disk is input). */
static int64_t
sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

/* A usage record plus what one request adds (arg: the struct usage). */
static int
usage_fn(int64_t *f, size_t nf, void *arg)
{
	const struct usage	*u = arg;

	(void)nf;
	f[U_REQUESTS] = sat_add(f[U_REQUESTS], u->requests);
	f[U_PROMPT] = sat_add(f[U_PROMPT], u->prompt_tokens);
	f[U_COMPLETION] = sat_add(f[U_COMPLETION], u->completion_tokens);
	f[U_ERRORS] = sat_add(f[U_ERRORS], u->errors);
	if (u->when > 0 && u->requests > 0)
		f[U_LAST_USED] = u->when;
	return 0;
}

/* One more error of a class. */
static int
one_more_fn(int64_t *f, size_t nf, void *arg)
{
	(void)nf;
	(void)arg;
	f[0] = sat_add(f[0], 1);
	return 0;
}

size_t
store_usage_ops(char kind, const char *id, const struct usage *u,
    struct stats_op *ops, char key[STORE_USAGE_KEY_MAX],
    char ekey[STORE_USAGE_EKEY_MAX])
{
	size_t	klen, eklen, cl;

	memset(ops, 0, 2 * sizeof(*ops));
	if ((klen = usage_key(key, STORE_USAGE_KEY_MAX, kind, id)) == 0)
		return 0;
	ops[0].key = key;
	ops[0].klen = klen;
	ops[0].nf = U__MAX;
	ops[0].fn = usage_fn;
	ops[0].arg = (void *)(uintptr_t)u;
	/* errors by class: "e" + key + NUL + class */
	if (u->error_class == NULL ||
	    (cl = strlen(u->error_class)) + klen + 2 >= STORE_USAGE_EKEY_MAX)
		return 1;
	eklen = (size_t)snprintf(ekey, STORE_USAGE_EKEY_MAX, "e%s", key) + 1;
	memcpy(ekey + eklen, u->error_class, cl);
	ops[1].key = ekey;
	ops[1].klen = eklen + cl;
	ops[1].nf = 1;
	ops[1].fn = one_more_fn;
	return 2;
}

int
store_usage_add(struct store *st, char kind, const char *id,
    const struct usage *u)
{
	struct stats_op	ops[2];
	char		key[STORE_USAGE_KEY_MAX], ek[STORE_USAGE_EKEY_MAX];
	size_t		n;

	if ((n = store_usage_ops(kind, id, u, ops, key, ek)) == 0)
		return -EINVAL;
	return store_stats_apply(st, ops, n);
}

int
store_usage_get(struct store *st, char kind, const char *id, char **json)
{
	struct txn	 t;
	MDB_cursor	*c;
	MDB_val		 k, v;
	json_object	*o, *ec = NULL;
	int64_t		 f[U__MAX], n;
	char		 key[80], ek[96];
	size_t		 klen, eklen;
	int		 rc;

	if ((klen = usage_key(key, sizeof(key), kind, id)) == 0)
		return -EINVAL;
	if (txn_begin_stats(&t, st, true) != 0)
		return t.ret;
	rc = txn_get(&t, st->sdbi, key, klen, &v);
	if (rc != 0 || counters_parse(v.mv_data, v.mv_size, f, U__MAX) != 0) {
		txn_abort(&t);
		return rc != 0 ? rc : -EINVAL;
	}
	o = json_object_new_object();
	json_object_object_add(o, "requests", json_object_new_int64(f[U_REQUESTS]));
	json_object_object_add(o, "prompt_tokens", json_object_new_int64(f[U_PROMPT]));
	json_object_object_add(o, "completion_tokens",
	    json_object_new_int64(f[U_COMPLETION]));
	json_object_object_add(o, "errors", json_object_new_int64(f[U_ERRORS]));
	json_object_object_add(o, "last_used", json_object_new_int64(f[U_LAST_USED]));
	/* errors by class: "e" + key + NUL + class */
	eklen = (size_t)snprintf(ek, sizeof(ek), "e%s", key) + 1;
	if (mdb_cursor_open(t.txn, st->sdbi, &c) == 0) {
		k.mv_data = ek;
		k.mv_size = eklen;
		for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 &&
		    k.mv_size > eklen && memcmp(k.mv_data, ek, eklen) == 0;
		    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			char *cls = xstrndup((const char *)k.mv_data + eklen,
			    k.mv_size - eklen);
			counters_parse(v.mv_data, v.mv_size, &n, 1);
			if (ec == NULL)
				ec = json_object_new_object();
			json_object_object_add(ec, cls, json_object_new_int64(n));
			free(cls);
		}
		mdb_cursor_close(c);
	}
	txn_abort(&t);
	if (ec != NULL)
		json_object_object_add(o, "errors_by_class", ec);
	*json = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return 0;
}

int
store_stats_incr(struct store *st, const char *key, int64_t delta,
    int64_t *out)
{
	struct txn	t;
	int64_t		n;
	size_t		klen = strlen(key) + 1;	/* NUL keeps these apart from usage keys */

	if (txn_begin_stats(&t, st, false) != 0)
		return t.ret;
	counters_get(&t, key, klen, &n, 1);
	n = sat_add(n, delta);
	counters_put(&t, key, klen, &n, 1);
	if (out != NULL)
		*out = n;
	return txn_commit(&t);
}

/* ---- meta ---- */

int
store_meta_get(struct store *st, const char *key, char *buf, size_t sz)
{
	struct txn	t;
	MDB_val		v;
	int		rc;

	if (txn_begin(&t, st, true) != 0)
		return t.ret;
	rc = txn_get(&t, st->dbi[DB_META], key, strlen(key), &v);
	if (rc == 0) {
		size_t n = v.mv_size < sz - 1 ? v.mv_size : sz - 1;
		memcpy(buf, v.mv_data, n);
		buf[n] = '\0';
	}
	txn_abort(&t);
	return rc;
}

int
store_meta_put(struct store *st, const char *key, const char *val)
{
	struct txn	t;

	if (txn_begin(&t, st, false) != 0)
		return t.ret;
	txn_put(&t, st->dbi[DB_META], key, strlen(key), val, strlen(val), 0);
	return txn_commit(&t);
}
