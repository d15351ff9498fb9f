/*
 * accounts.h: accounts as the rest of the program sees them: created with
 * their tokens sealed under the state directory's key, opened on use.
 */
#ifndef QR_ACCOUNTS_H
#define QR_ACCOUNTS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct cfg;
struct store;
struct account;
struct mark;
struct json_object;

#define SEAL_KEY_FILE	"seal.key"
/* Bytes of a model id, wherever one is accepted (chat, embeddings,
   --models, the admin API, a fetched catalog, GET /v1/models/{id}). */
#define MODEL_ID_MAX	200

/*
 * Load <state_dir>/seal.key.  It is created (0600) only while the store
 * holds no account; a missing or damaged key with accounts present is an
 * error that says so, never a silent new key.  Returns 0 or -errno.
 */
int	 accounts_key_load(const struct cfg *, struct store *,
	    unsigned char key[CRYPTO_SEAL_KEY_LEN], char *err, size_t errlen);

struct account_new {
	const char	*provider;
	const char	*label;		/* may be NULL */
	const char	*const *models;	/* NULL: the preset's defaults */
	const char	*access;	/* access token or API key */
	const char	*refresh;	/* NULL for API-key accounts */
	const char	*base_url;	/* resource_url for qwen-oauth */
	int64_t		 expires_at;	/* ms, 0 = never */
};

/*
 * Create an account.  Returns 0 and the new id, -EEXIST with dup_id (the
 * same refresh token or API key, current or retired, is known),
 * -EDQUOT with *count when max_accounts are there, or another -errno.
 */
int	 account_create(struct store *, const struct cfg *,
	    const unsigned char key[CRYPTO_SEAL_KEY_LEN],
	    const struct account_new *, char id[24], char dup_id[24],
	    size_t *count);

/* Unseal an account's tokens; free each with xfree_secret.  refresh may be NULL. */
int	 account_open_tokens(const unsigned char key[CRYPTO_SEAL_KEY_LEN],
	    const struct account *, char **access, char **refresh);
/* Seal a token for account id (the id is the associated data). */
char	*account_seal(const unsigned char key[CRYPTO_SEAL_KEY_LEN],
	    const char *id, const char *token);
/* The hash under which a refresh token or API key is remembered. */
void	 account_token_hash(const char *token,
	    unsigned char out[CRYPTO_SHA256_LEN]);

/* The sentence for the account limit, with the command that fixes it. */
void	 account_limit_message(char *buf, size_t sz, size_t count, long long max);

/*
 * The public view of an account, as `accounts list --json` and the admin
 * API show it: id, provider, label, status, status_reason, models,
 * expires_at, counters and its marks.  Never a token.  Caller puts it.
 */
struct json_object *account_json(const struct account *,
	    const struct mark *marks, size_t nmarks);
/*
 * Every account as a JSON array of account_json objects (one read of the
 * accounts and one of the marks).  Returns 0 or the store's -errno.
 */
int	 accounts_list_json(struct store *, struct json_object **out);

/*
 * The models an account serves: the operator's --models when pinned,
 * else the upstream's catalog when one was fetched and is not empty, else
 * the preset's defaults stored at creation.  NULL-terminated, owned by
 * the account; empty means any model.
 */
char *const *account_models(const struct account *);
/*
 * Is s (len bytes, as the JSON string said) a model id we accept?  1 to
 * MODEL_ID_MAX bytes, no NUL or other control byte; anything else (/, :,
 * @, spaces, UTF-8) is the provider's business.
 */
int	 model_id_valid(const char *s, size_t len);
/* Does the account serve this model?  (An empty list serves any.) */
int	 account_serves(const struct account *, const char *model);

#endif
