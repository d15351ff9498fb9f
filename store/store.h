/*
 * store.h: qwenrelay's persistent state, in LMDB.  The only public face of
 * store/; nothing outside it includes <lmdb.h>.
 *
 * Two environments live under the state directory:
 *   <state_dir>/data.mdb   accounts, sealed tokens, logins, marks, client
 *                          keys, meta: fully synced commits.
 *   <state_dir>/stats/     counters and last-used times: MDB_NOSYNC, so a
 *                          request never waits for an fsync.  A power cut
 *                          may lose the newest counts, never an account.
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

/* Client keys: indexed by the SHA-256 of the key; the key itself is never stored. */
struct client_key {
	unsigned char	 hash[STORE_HASH_LEN];
	char		*name;
	int		 admin;
	int64_t		 created_ms;
	int64_t		 last_used_ms;	/* from the stats env; 0 = never */
	int64_t		 requests;
};

/* -EEXIST if a key of that name exists. */
int	store_key_add(struct store *, const unsigned char hash[STORE_HASH_LEN],
	    const char *name, int admin, int64_t now);
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
void	client_key_list_free(struct client_key **, size_t);

#endif
