/*
 * store.c: opening the LMDB environments, transactions, the error map.
 *
 * The opening order follows Knot DNS: create, set map size, max dbs and
 * max readers, open; every failure closes what was made and says why.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_int.h"
#include "util.h"
#include "xmalloc.h"

static const char *const db_names[DB__MAX] = {
	"meta", "keys", "accounts", "marks", "logins", "seen"
};

int
store_mdb_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_MAP_FULL:
	case ENOSPC:
		return -ENOSPC;
	case MDB_READERS_FULL:
		return -EAGAIN;
	case EACCES:
		return -EACCES;
	case ENOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

const char *
store_strerror(int rc)
{
	switch (rc) {
	case 0:
		return "ok";
	case -ENOENT:
		return "not found";
	case -EEXIST:
		return "already exists";
	case -ENOSPC:
		return "store is full (raise store_map_size_mb)";
	case -EAGAIN:
		return "too many readers";
	case -EACCES:
		return "permission denied on the state directory";
	case -EINVAL:
		return "malformed record";
	default:
		return "store I/O error";
	}
}

static int
env_open(MDB_env **envp, const char *path, size_t mapsize,
    unsigned int maxdbs, unsigned int maxreaders, unsigned int flags,
    char *err, size_t errlen)
{
	MDB_env	*env;
	long	 pg = sysconf(_SC_PAGESIZE);
	int	 rc;

	if (pg > 0)
		mapsize = (mapsize + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
	if ((rc = mdb_env_create(&env)) != 0) {
		snprintf(err, errlen, "mdb_env_create: %s", mdb_strerror(rc));
		return store_mdb_err(rc);
	}
	if ((rc = mdb_env_set_mapsize(env, mapsize)) != 0 ||
	    (rc = mdb_env_set_maxdbs(env, maxdbs)) != 0 ||
	    (rc = mdb_env_set_maxreaders(env, maxreaders)) != 0 ||
	    (rc = mdb_env_open(env, path, flags | MDB_NOTLS, 0600)) != 0) {
		snprintf(err, errlen, "%s: %s", path, mdb_strerror(rc));
		mdb_env_close(env);
		return store_mdb_err(rc);
	}
	*envp = env;
	return 0;
}

/* Open the named dbs and write the schema version on first use. */
static int
dbs_open(struct store *st, char *err, size_t errlen)
{
	MDB_txn		*txn;
	MDB_val		 k, v;
	char		 ver[16];
	int		 rc, i;

	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		goto fail;
	for (i = 0; i < DB__MAX; i++)
		if ((rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE,
		    &st->dbi[i])) != 0) {
			mdb_txn_abort(txn);
			goto fail;
		}
	k.mv_data = "schema";
	k.mv_size = 6;
	rc = mdb_get(txn, st->dbi[DB_META], &k, &v);
	if (rc == MDB_NOTFOUND) {
		snprintf(ver, sizeof(ver), "%d", STORE_SCHEMA_VERSION);
		v.mv_data = ver;
		v.mv_size = strlen(ver);
		rc = mdb_put(txn, st->dbi[DB_META], &k, &v, 0);
	} else if (rc == 0) {
		const char *es;
		snprintf(ver, sizeof(ver), "%.*s", (int)v.mv_size,
		    (const char *)v.mv_data);
		long long have = parse_int(ver, 1, 1000000, &es);
		if (es != NULL || have > STORE_SCHEMA_VERSION) {
			mdb_txn_abort(txn);
			snprintf(err, errlen, "store schema %s is newer than "
			    "this qwenrelay understands (%d); upgrade "
			    "qwenrelay", ver, STORE_SCHEMA_VERSION);
			return -EINVAL;
		}
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;

	if ((rc = mdb_txn_begin(st->senv, NULL, 0, &txn)) != 0)
		goto fail;
	if ((rc = mdb_dbi_open(txn, "counters", MDB_CREATE, &st->sdbi)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;

	if ((rc = mdb_txn_begin(st->renv, NULL, 0, &txn)) != 0)
		goto fail;
	if ((rc = mdb_dbi_open(txn, "responses", MDB_CREATE, &st->rdbi)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "opening databases: %s", mdb_strerror(rc));
	return store_mdb_err(rc);
}

int
store_open(struct store **out, const char *dir, const struct store_opts *o,
    char *err, size_t errlen)
{
	struct store	*st;
	char		*sdir, *rdir;
	int		 rc;

	if ((rc = mkdir_p(dir, 0700)) != 0) {
		snprintf(err, errlen, "cannot create state dir %s: %s", dir,
		    strerror(-rc));
		return rc;
	}
	sdir = xasprintf("%s/stats", dir);
	if (mkdir(sdir, 0700) == -1 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", sdir,
		    strerror(errno));
		free(sdir);
		return rc;
	}
	rdir = xasprintf("%s/responses", dir);
	if (mkdir(rdir, 0700) == -1 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", rdir,
		    strerror(errno));
		free(sdir);
		free(rdir);
		return rc;
	}
	st = xcalloc(1, sizeof(*st));
	pthread_mutex_init(&st->cache_lock, NULL);
	st->dir = xstrdup(dir);
	rc = env_open(&st->env, dir, o->map_size_mb << 20, DB__MAX,
	    o->max_readers, 0, err, errlen);
	if (rc == 0)
		rc = env_open(&st->senv, sdir, 64u << 20, 2, o->max_readers,
		    MDB_NOSYNC | MDB_WRITEMAP | MDB_MAPASYNC, err, errlen);
	/*
	 * Stored Responses API turns: a cache (lost on a crash, no fsync),
	 * in a map of its own so conversations cannot fill the accounts';
	 * no MDB_WRITEMAP, so the file grows with use, not to the map size.
	 */
	if (rc == 0)
		rc = env_open(&st->renv, rdir, 512u << 20, 1, o->max_readers,
		    MDB_NOSYNC, err, errlen);
	free(sdir);
	free(rdir);
	if (rc == 0) {
		store_reader_check(st);
		rc = dbs_open(st, err, errlen);
	}
	if (rc != 0) {
		store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void
store_close(struct store *st)
{
	size_t	i;

	if (st == NULL)
		return;
	if (st->senv != NULL) {
		mdb_env_sync(st->senv, 1);
		mdb_env_close(st->senv);
	}
	if (st->renv != NULL)
		mdb_env_close(st->renv);
	if (st->env != NULL)
		mdb_env_close(st->env);
	snap_put(st->cache);
	for (i = 0; i < sizeof(st->kcache) / sizeof(st->kcache[0]); i++)
		client_key_free(st->kcache[i].k);
	pthread_mutex_destroy(&st->cache_lock);
	free(st->dir);
	free(st);
}

int
store_reader_check(struct store *st)
{
	int	dead = 0, d2 = 0, d3 = 0;

	mdb_reader_check(st->env, &dead);
	if (st->senv != NULL)
		mdb_reader_check(st->senv, &d2);
	if (st->renv != NULL)
		mdb_reader_check(st->renv, &d3);
	return dead + d2 + d3;
}

static int
begin(struct txn *t, struct store *st, MDB_env *env, bool rdonly)
{
	int	rc, tries;

	memset(t, 0, sizeof(*t));
	t->st = st;
	t->env = env;
	t->rdonly = rdonly;
	for (tries = 0; tries < 2; tries++) {
		rc = mdb_txn_begin(env, NULL, rdonly ? MDB_RDONLY : 0, &t->txn);
		if (rc != MDB_READERS_FULL)
			break;
		/* A dead process may hold slots: clear them, retry once. */
		store_reader_check(st);
	}
	t->ret = store_mdb_err(rc);
	if (rc != 0)
		t->txn = NULL;
	return t->ret;
}

int
txn_begin(struct txn *t, struct store *st, bool rdonly)
{
	return begin(t, st, st->env, rdonly);
}

int
txn_begin_stats(struct txn *t, struct store *st, bool rdonly)
{
	return begin(t, st, st->senv, rdonly);
}

int
txn_begin_responses(struct txn *t, struct store *st, bool rdonly)
{
	return begin(t, st, st->renv, rdonly);
}

int
txn_commit(struct txn *t)
{
	int	rc;

	if (t->txn == NULL)
		return t->ret;
	if (t->ret != 0 || t->rdonly) {
		mdb_txn_abort(t->txn);
		t->txn = NULL;
		return t->ret;
	}
	rc = mdb_txn_commit(t->txn);
	t->txn = NULL;
	t->ret = store_mdb_err(rc);
	return t->ret;
}

void
txn_abort(struct txn *t)
{
	if (t->txn != NULL)
		mdb_txn_abort(t->txn);
	t->txn = NULL;
}

int
txn_get(struct txn *t, MDB_dbi dbi, const void *k, size_t klen, MDB_val *val)
{
	MDB_val	key = { klen, (void *)(uintptr_t)k };
	int	rc;

	if (t->ret != 0)
		return t->ret;
	rc = mdb_get(t->txn, dbi, &key, val);
	/* Not found is an answer, not a failure of the transaction. */
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	return t->ret = store_mdb_err(rc);
}

int
txn_put(struct txn *t, MDB_dbi dbi, const void *k, size_t klen,
    const void *v, size_t vlen, unsigned int flags)
{
	MDB_val	key = { klen, (void *)(uintptr_t)k };
	MDB_val	val = { vlen, (void *)(uintptr_t)v };
	int	rc;

	if (t->ret != 0)
		return t->ret;
	rc = mdb_put(t->txn, dbi, &key, &val, flags);
	if (rc == MDB_KEYEXIST)
		return -EEXIST;
	return t->ret = store_mdb_err(rc);
}

int
txn_del(struct txn *t, MDB_dbi dbi, const void *k, size_t klen)
{
	MDB_val	key = { klen, (void *)(uintptr_t)k };
	int	rc;

	if (t->ret != 0)
		return t->ret;
	rc = mdb_del(t->txn, dbi, &key, NULL);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	return t->ret = store_mdb_err(rc);
}

int
txn_purge(struct txn *t, MDB_dbi dbi,
    int (*stale)(const MDB_val *, int64_t), int64_t now)
{
	MDB_cursor	*c;
	MDB_val		 k, v;
	int		 rc, n = 0;

	if ((rc = mdb_cursor_open(t->txn, dbi, &c)) != 0) {
		txn_abort(t);
		return store_mdb_err(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (stale(&v, now)) {
			mdb_cursor_del(c, 0);
			n++;
		}
	}
	mdb_cursor_close(c);
	if (n == 0) {
		txn_abort(t);
		return 0;
	}
	rc = txn_commit(t);
	return rc == 0 ? n : rc;
}

int
txn_get_json(struct txn *t, MDB_dbi dbi, const void *k, size_t klen,
    json_object **out)
{
	json_tokener	*tok;
	MDB_val		 v;
	int		 rc;

	if ((rc = txn_get(t, dbi, k, klen, &v)) != 0)
		return rc;
	if (v.mv_size > 1 << 24)
		return -EINVAL;
	tok = json_tokener_new_ex(16);
	*out = json_tokener_parse_ex(tok, v.mv_data, (int)v.mv_size);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(*out, json_type_object)) {
		json_tokener_free(tok);
		json_object_put(*out);
		*out = NULL;
		return -EINVAL;
	}
	json_tokener_free(tok);
	return 0;
}

int
txn_put_json(struct txn *t, MDB_dbi dbi, const void *k, size_t klen,
    json_object *o)
{
	size_t		 n;
	const char	*s;

	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
	return txn_put(t, dbi, k, klen, s, n, 0);
}

int64_t
jget_i64(json_object *o, const char *k, int64_t def)
{
	json_object	*v;

	if (!json_object_object_get_ex(o, k, &v))
		return def;
	return json_object_get_int64(v);
}

const char *
jget_str(json_object *o, const char *k)
{
	json_object	*v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static size_t
db_entries(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_stat	ms;

	if (mdb_stat(txn, dbi, &ms) != 0)
		return 0;
	return ms.ms_entries;
}

int
store_stats(struct store *st, struct store_stats *out)
{
	MDB_envinfo	 ei;
	MDB_stat	 ms;
	struct txn	 t;
	MDB_val		 v;
	char		 ver[16];
	const char	*es;

	memset(out, 0, sizeof(*out));
	if (mdb_env_info(st->env, &ei) != 0 || mdb_env_stat(st->env, &ms) != 0)
		return -EIO;
	out->map_size = ei.me_mapsize;
	out->used_bytes = (ei.me_last_pgno + 1) * (size_t)ms.ms_psize;
	out->readers_used = ei.me_numreaders;
	out->max_readers = ei.me_maxreaders;
	if (txn_begin(&t, st, true) != 0)
		return t.ret;
	out->n_keys = db_entries(t.txn, st->dbi[DB_KEYS]);
	out->n_accounts = db_entries(t.txn, st->dbi[DB_ACCOUNTS]);
	out->n_logins = db_entries(t.txn, st->dbi[DB_LOGINS]);
	if (txn_get(&t, st->dbi[DB_META], "schema", 6, &v) == 0) {
		snprintf(ver, sizeof(ver), "%.*s", (int)v.mv_size,
		    (const char *)v.mv_data);
		out->schema = (int)parse_int(ver, 0, 1000000, &es);
	}
	txn_abort(&t);
	return 0;
}
