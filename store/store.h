/*
 * store.h: qwenrelay's persistent state, in LMDB.  The only public face of
 * store/; nothing outside it includes <lmdb.h>.
 *
 * Two environments live under the state directory:
 *   <state_dir>/data.mdb   accounts, sealed tokens, logins, marks, client
 *                          keys, meta: fully synced commits.
 *   <state_dir>/stats/     counters and last-used times: MDB_NOSYNC with
 *                          MDB_WRITEMAP, so a request never waits for an
 *                          fsync or a write(2).  A power cut may lose the
 *                          newest counts, never an account.
 *
 * Open once per process, after fork.  Every function returns 0 or a
 * negative errno: -ENOENT (no such record), -EEXIST, -ENOSPC (map full),
 * -EINVAL (bad record), -EIO (anything else LMDB reports).  Records handed
 * out are copies the caller owns and frees with the matching _free().
 */
#ifndef QR_STORE_H
#define QR_STORE_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

#define STORE_SCHEMA_VERSION	1
#define STORE_HASH_LEN		32

struct store;

struct store_opts {
	size_t		map_size_mb;	/* main env map size */
	unsigned int	max_readers;
};

/* Open (creating 0700/0600 as needed).  err gets a reason on failure. */
int	store_open(struct store **, const char *dir,
	    const struct store_opts *, char *err, size_t errlen);
/* Close; accepts NULL. */
void	store_close(struct store *);
/* Clear stale reader slots of dead processes; returns how many. */
int	store_reader_check(struct store *);
/* A short text for an error code from these functions. */
const char *store_strerror(int);

struct store_stats {
	size_t		map_size;
	size_t		used_bytes;
	unsigned int	readers_used;
	unsigned int	max_readers;
	size_t		n_keys;
	size_t		n_accounts;
	size_t		n_logins;
	int		schema;
};
int	store_stats(struct store *, struct store_stats *);

/*
 * A key's own limits: requests and tokens per sliding minute (0 = none of
 * its own: client_rate_limit_rpm applies to requests, no token limit) and
 * the models it may use (NULL = every model; else NULL-terminated).
 */
struct key_limits {
	int64_t		 rpm;
	int64_t		 tpm;
	char		**models;
};

/* Client keys: indexed by the SHA-256 of the key; the key itself is never stored. */
struct client_key {
	unsigned char	 hash[STORE_HASH_LEN];
	char		*name;
	int		 admin;
	struct key_limits lim;
	int64_t		 created_ms;
	int64_t		 last_used_ms;	/* from the stats env; 0 = never */
	int64_t		 requests;
};

/*
 * -EEXIST if a key of that name exists.  lim may be NULL (no limits of its
 * own); it is copied.
 */
int	store_key_add(struct store *, const unsigned char hash[STORE_HASH_LEN],
	    const char *name, int admin, const struct key_limits *lim,
	    int64_t now);
/* -ENOENT when no key has this hash. */
int	store_key_find(struct store *, const unsigned char hash[STORE_HASH_LEN],
	    struct client_key **);
/* All keys, sorted by name; *n may be 0. */
int	store_key_list(struct store *, struct client_key ***, size_t *n);
/* -ENOENT when no key has that name. */
int	store_key_revoke(struct store *, const char *name);
/* Count one use (stats env, not synced). */
int	store_key_touch(struct store *, const unsigned char hash[STORE_HASH_LEN],
	    int64_t now);
void	client_key_free(struct client_key *);
struct stats_op;
/*
 * The same count as a stats op, for a caller's batch (store_stats_apply):
 * key must hold STORE_HASH_LEN + 1 bytes and arg 1 int64_t, both living
 * as long as op.
 */
void	store_key_touch_op(const unsigned char hash[STORE_HASH_LEN],
	    int64_t now, struct stats_op *op, unsigned char *key, int64_t *arg);
void	client_key_list_free(struct client_key **, size_t);


/*
 * Accounts.  Tokens are stored sealed (app/ seals them); the store never
 * sees a token in clear.  status is "active", "disabled" or "needs_login";
 * state is the same as an enum, set once when the record is read (an
 * unknown word reads as ACCT_DISABLED: never serve what we cannot name).
 * Writers change status; state follows on the next read.
 * Counters come from the stats env and are filled in by get and list.
 */
enum account_state {
	ACCT_ACTIVE,
	ACCT_DISABLED,
	ACCT_NEEDS_LOGIN
};

struct account {
	char		 id[24];
	char		*provider;
	char		*label;
	char		**models;		/* NULL-terminated; may be empty */
	int		 models_pinned;		/* models set by the operator
						   (--models): the catalog never
						   replaces them */
	char		**catalog;		/* the upstream's GET /models ids,
						   NULL-terminated; NULL = none */
	int64_t		 catalog_at;		/* ms of the last fetch attempt; 0 */
	char		*catalog_error;		/* why the last attempt failed, or NULL */
	char		*access_sealed;		/* sealed access token or API key */
	char		*refresh_sealed;	/* sealed refresh token, or NULL */
	char		*base_url;		/* resource_url (qwen) or base URL */
	int64_t		 expires_at;		/* ms; 0 = does not expire */
	int64_t		 created_at;
	char		*status;
	enum account_state state;		/* status, as read */
	char		*status_reason;		/* why needs_login/disabled, or NULL */
	char		*last_error;
	int64_t		 lease_until;		/* refresh lease, ms */
	int64_t		 lease_pid;
	int64_t		 refreshed_at;
	/* set by an update callback: remember this retired refresh-token hash */
	unsigned char	 seen_add[STORE_HASH_LEN];
	int		 has_seen_add;
	/* counters (stats env) */
	int64_t		 last_used_at;
	int64_t		 total_requests;
	int64_t		 prompt_tokens;
	int64_t		 completion_tokens;
	int64_t		 errors;
};

void	account_free(struct account *);
void	account_list_free(struct account **, size_t);

/*
 * Add a new account in one write transaction.  Fails with -EEXIST (and the
 * existing id in dup_id) when refresh_hash is already known, current or
 * retired; -EDQUOT when max accounts exist already (count in *count).
 * refresh_hash may be NULL (API-key accounts: then key_hash dedups).
 */
int	store_account_add(struct store *, const struct account *,
	    const unsigned char *refresh_hash, long long max, size_t *count,
	    char dup_id[24]);
int	store_account_get(struct store *, const char *id, struct account **);
/* The same without the counters; served from the parsed-list cache when exact. */
int	store_account_get_bare(struct store *, const char *id, struct account **);
/* All accounts in creation order. */
int	store_account_list(struct store *, struct account ***, size_t *);
/* The same without the counters (one read transaction, no stats reads). */
int	store_account_list_bare(struct store *, struct account ***, size_t *);

/*
 * The accounts without counters, borrowed instead of copied: the parsed
 * list the store caches (exact while no commit happened since it was
 * read), shared by every thread of the process.  *l points at n accounts
 * in creation order, READ ONLY, valid until store_account_snap_put(snap);
 * keep one beyond that with account_copy.  Copying the whole list was a
 * sixth of a chat request's CPU with ten accounts.  Returns 0 or -errno
 * (then nothing is held).
 */
struct account_snap;
int	store_account_snap_get(struct store *, struct account_snap **snap,
	    struct account *const **l, size_t *n);
/* Drop a borrowed list; accepts NULL. */
void	store_account_snap_put(struct account_snap *);
/* A deep copy the caller owns (account_free). */
struct account *account_copy(const struct account *);
int	store_account_count(struct store *, size_t *);
/* Delete an account, its marks, its retired-token hashes; -ENOENT if absent. */
int	store_account_del(struct store *, const char *id);
/*
 * Read-modify-write one account in one short write transaction.  fn gets
 * the current record; returns 0 to write it back, 1 to leave it unchanged,
 * or a negative errno to abort (returned).  Never call network I/O in fn.
 */
int	store_account_update(struct store *, const char *id,
	    int (*fn)(struct account *, void *), void *);
/* Which account a (current or retired) refresh-token hash belongs to. */
int	store_seen_find(struct store *, const unsigned char hash[STORE_HASH_LEN],
	    char id[24]);

/* Usage counters, in the stats env (no fsync). */
struct usage {
	int64_t		requests;
	int64_t		prompt_tokens;
	int64_t		completion_tokens;
	int64_t		errors;
	const char	*error_class;	/* counted under errors_by_class */
	int64_t		when;
};
/* Add u to (kind, id)'s counters in one stats write txn; 0 or -errno. */
int	store_usage_add(struct store *, char kind, const char *id,
	    const struct usage *);
/*
 * The same change as stats ops, for a caller's batch (store_stats_apply:
 * one write transaction for everything a request records).  Fills ops[0]
 * (the counters) and, when u->error_class is set, ops[1] (errors by
 * class); key and ekey hold their keys.  u, key and ekey must outlive the
 * ops.  Returns how many ops were filled: 1 or 2, or 0 when id is too long
 * (nothing to record).
 */
#define STORE_USAGE_KEY_MAX	80
#define STORE_USAGE_EKEY_MAX	160
struct stats_op;
size_t	store_usage_ops(char kind, const char *id, const struct usage *u,
	    struct stats_op *ops, char key[STORE_USAGE_KEY_MAX],
	    char ekey[STORE_USAGE_EKEY_MAX]);
/* Counters as a JSON text (caller frees), or -ENOENT. */
int	store_usage_get(struct store *, char kind, const char *id, char **json);

/* Rate-limit marks per (account, model). */
struct mark {
	char		 account[24];
	char		*model;
	int64_t		 resets_at;	/* ms */
	int64_t		 hits;		/* consecutive */
	char		*reason;	/* "rate_limit", "quota", ... */
};
int	store_mark_set(struct store *, const struct mark *);
int	store_mark_clear(struct store *, const char *account, const char *model);
/* All marks (expired ones too; the caller compares resets_at). */
int	store_mark_list(struct store *, struct mark **, size_t *);
void	mark_list_free(struct mark *, size_t);

/* Small named values in meta (sticky pointer, cursors) and in stats. */
int	store_meta_get(struct store *, const char *key, char *buf, size_t sz);
int	store_meta_put(struct store *, const char *key, const char *val);
/* Atomically add delta to a counter in the stats env; the new value in *out. */
int	store_stats_incr(struct store *, const char *key, int64_t delta,
	    int64_t *out);

/*
 * Pending device logins, as JSON objects with at least "expires_at" (ms).
 * update works like store_account_update but on the JSON record.
 */
int	store_login_put(struct store *, const char *id, const char *json);
int	store_login_get(struct store *, const char *id, char **json);
int	store_login_update(struct store *, const char *id,
	    int (*fn)(struct json_object *, void *), void *);
/* Delete logins whose expires_at is before now; returns how many. */
int	store_login_purge(struct store *, int64_t now);

/*
 * Counter records in the stats env, for app/metrics.c and app/key_limits.c.
 * A record is up to STORE_STATS_FIELDS int64 fields under a binary key
 * (at most 200 bytes).  store_stats_apply runs every op in ONE write
 * transaction (the stats env's single writer lock is taken once per
 * batch): each op's fn gets the record's current fields (zeros when
 * absent) and changes them in place; returning nonzero leaves that record
 * unwritten.  fn must not block.
 */
#define STORE_STATS_FIELDS	32
struct stats_op {
	const void	*key;
	size_t		 klen;
	size_t		 nf;		/* fields in the record, <= STORE_STATS_FIELDS */
	int		(*fn)(int64_t *f, size_t nf, void *arg);
	void		*arg;
};
int	store_stats_apply(struct store *, const struct stats_op *, size_t n);
/*
 * Call fn for every record whose key starts with prefix, in key order, in
 * one read transaction; fn returns nonzero to stop.  f has STORE_STATS_FIELDS
 * fields (zeros past the record's own).  key points into the transaction:
 * copy what you keep.
 */
int	store_stats_scan(struct store *, const void *prefix, size_t plen,
	    int (*fn)(const void *key, size_t klen, const int64_t *f, void *arg),
	    void *arg);

/*
 * Stored Responses API turns (previous_response_id), in their own env
 * (state_dir/responses, no fsync: a cache).  text is app/'s record.
 * put: 0 or a negative errno (-ENOSPC when the map is full).  get: 0 with a
 * new string in *text, -ENOENT when absent or expired at now (ms).  purge:
 * drops what expired at now; returns how many, or a negative errno.
 */
int	store_response_put(struct store *, const char *id, const char *text,
	    int64_t expires_ms);
int	store_response_get(struct store *, const char *id, int64_t now,
	    char **text);
int	store_response_purge(struct store *, int64_t now);

#endif
