/*
 * store_int.h: what the files of store/ share among themselves.
 *
 * A transaction carries a sticky error (Knot DNS's knot_lmdb_txn_t): once
 * an operation fails, later ones do nothing and commit aborts, so callers
 * write begin; op; op; return txn_commit(&t).
 */
#ifndef QR_STORE_INT_H
#define QR_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <json-c/json.h>
#include <lmdb.h>

#include "store.h"

enum store_db {
	DB_META = 0,
	DB_KEYS,
	DB_ACCOUNTS,
	DB_MARKS,
	DB_LOGINS,
	DB_SEEN,	/* refresh-token hashes -> account id */
	DB__MAX
};

struct store {
	MDB_env		*env;
	MDB_dbi		 dbi[DB__MAX];
	MDB_env		*senv;		/* stats, MDB_NOSYNC */
	MDB_dbi		 sdbi;
	MDB_env		*renv;		/* stored responses, MDB_NOSYNC */
	MDB_dbi		 rdbi;
	char		*dir;
	/*
	 * The accounts as last parsed, with the id of the read transaction
	 * they were read in.  Every commit to the env makes a new id, so an
	 * equal id means the records are byte for byte the same: no parse.
	 * Reference counted: threads borrow it (store_account_snap_get);
	 * cache_lock guards the pointer and the count's first increment.
	 */
	pthread_mutex_t	  cache_lock;
	struct account_snap *cache;
	/*
	 * Client keys as last parsed (every authenticated request looks one
	 * up), exact while the env's txn id is the one they were read in;
	 * also under cache_lock.  Replaced round robin.
	 */
	struct key_cached {
		size_t		 txn;		/* 0: empty */
		unsigned char	 hash[STORE_HASH_LEN];
		struct client_key *k;
	}		  kcache[8];
	unsigned int	  kcache_next;
};

struct account_snap {
	atomic_int	  refs;
	struct account	**l;
	size_t		  n;
	size_t		  txn;		/* mdb_txn_id it was read in */
};

/* Drop one reference; the last frees the list. */
void	 snap_put(struct account_snap *);

struct txn {
	struct store	*st;
	MDB_txn		*txn;
	MDB_env		*env;
	int		 ret;
	bool		 rdonly;
};

int	 store_mdb_err(int);

int	 txn_begin(struct txn *, struct store *, bool rdonly);
int	 txn_begin_stats(struct txn *, struct store *, bool rdonly);
int	 txn_begin_responses(struct txn *, struct store *, bool rdonly);
int	 txn_commit(struct txn *);
void	 txn_abort(struct txn *);

/* Point val at the record (valid until the txn ends); -ENOENT if absent. */
int	 txn_get(struct txn *, MDB_dbi, const void *k, size_t klen, MDB_val *val);
int	 txn_put(struct txn *, MDB_dbi, const void *k, size_t klen,
	    const void *v, size_t vlen, unsigned int flags);
int	 txn_del(struct txn *, MDB_dbi, const void *k, size_t klen);
/*
 * Delete every record of dbi for which stale(value, now) is true, in t (a
 * write txn just begun), then end t: commit when something went, else
 * abort.  Returns how many records went, or a store error (t ended).
 */
int	 txn_purge(struct txn *, MDB_dbi,
	    int (*stale)(const MDB_val *, int64_t now), int64_t now);
/* Parse a JSON record into a new object (caller puts). */
int	 txn_get_json(struct txn *, MDB_dbi, const void *k, size_t klen,
	    json_object **);
int	 txn_put_json(struct txn *, MDB_dbi, const void *k, size_t klen,
	    json_object *);

/* Counter records: versioned text "1 f0 f1 ..." (see accounts.c). */
int	 counters_parse(const void *, size_t, int64_t *, size_t);
int	 counters_format(char *, size_t, const int64_t *, size_t);
/* Read a counter record in t (zeros when absent or not ours); write one. */
void	 counters_get(struct txn *, const void *key, size_t klen, int64_t *,
	    size_t);
void	 counters_put(struct txn *, const void *key, size_t klen,
	    const int64_t *, size_t);

/* Versioned JSON helpers. */
int64_t	 jget_i64(json_object *, const char *, int64_t def);
const char *jget_str(json_object *, const char *);

#endif
