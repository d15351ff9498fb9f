/*
 * crypto.h: the few primitives qwenrelay needs, over OpenSSL libcrypto.
 *
 * Random bytes, SHA-256, base64url, constant-time comparison, and
 * AES-256-GCM sealing of tokens at rest.
 */
#ifndef QR_CRYPTO_H
#define QR_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CRYPTO_SHA256_LEN	32
#define CRYPTO_SEAL_KEY_LEN	32

/* Fill buf with n cryptographically random bytes.  Returns 0 or -EIO. */
int	 crypto_random(void *buf, size_t n);
void	 crypto_sha256(const void *, size_t, unsigned char out[CRYPTO_SHA256_LEN]);
/* 1 if equal, in time independent of the contents. */
int	 crypto_ct_eq(const void *, const void *, size_t);

/* base64url without padding; returns a new string (caller frees). */
char	*b64url_encode(const void *, size_t);
/* Standard base64 with padding; returns a new string (caller frees). */
char	*b64_encode(const void *, size_t);
/* Lower-case hex; returns a new string (caller frees). */
char	*hex_encode(const void *, size_t);

/*
 * Seal plaintext under key: returns a new string "v1.<b64url(nonce|ct|tag)>"
 * (caller frees).  The associated data binds the ciphertext to its place
 * (an account id, say) so sealed values can't be swapped between records.
 */
char	*crypto_seal(const unsigned char key[CRYPTO_SEAL_KEY_LEN],
	    const char *ad, const char *plaintext);
/*
 * Open a value made by crypto_seal.  Returns 0 and a new string in *out
 * (free with xfree_secret), or -EBADMSG if it was tampered with, sealed
 * under another key or bound to another ad.
 */
int	 crypto_open(const unsigned char key[CRYPTO_SEAL_KEY_LEN],
	    const char *ad, const char *sealed, char **out);

/*
 * Load the 32-byte sealing key from path, creating it (mode 0600) when it
 * does not exist and create is set.  Refuses a file that is not exactly
 * 32 bytes or is readable by group/other.  Returns 0 or -errno, with a
 * reason in err.
 */
int	 crypto_key_load(const char *path, int create,
	    unsigned char key[CRYPTO_SEAL_KEY_LEN], char *err, size_t errlen);

#endif
