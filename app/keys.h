/*
 * keys.h: client API keys as a service, shared by `qwenrelay keys` and
 * the admin API (handlers/admin_keys.c): create, list, parse limits.
 */
#ifndef QR_KEYS_H
#define QR_KEYS_H

#include <stdint.h>

struct store;
struct key_limits;
struct json_object;

#define KEYS_NAME_MAX		64
#define KEYS_MODELS_MAX		64
#define KEYS_LIMIT_MAX		100000000LL

/*
 * Make a new key "qr-" + 43 base64url characters (32 random bytes), store
 * its SHA-256 under name with lim (may be NULL).  *key gets the key, which
 * exists nowhere else: the caller shows it once and frees it with
 * xfree_secret().  Returns 0, -EINVAL (bad name: see valid_ident), -EEXIST
 * (the name is taken), -EIO (no random bytes) or a store error.
 */
int	keys_create(struct store *, const char *name, int admin,
	    const struct key_limits *lim, char **key);

/*
 * Every key as a JSON array of {"name","admin","created_at","last_used_at",
 * "requests","rpm","tpm","models", and the usage counters "prompt_tokens",
 * "completion_tokens","errors","errors_by_class" when any}; never a key or
 * its hash.  Caller puts *out.  Returns 0 or a store error.
 */
int	keys_list_json(struct store *, struct json_object **out);

/*
 * "a,b,c" -> NULL-terminated list in *out (caller frees with
 * xfree_strv).  Returns 0, or -EINVAL with a reason in *why (an
 * empty name, more than KEYS_MODELS_MAX names, a name model_id_valid
 * refuses).
 */
int	keys_models_parse(const char *csv, char ***out, const char **why);
/* One model name: model_id_valid and no comma; 1 when fine. */
int	keys_model_name_ok(const char *, size_t len);

#endif
