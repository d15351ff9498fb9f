/*
 * crypto.c: random, hashing, encoding and AES-256-GCM sealing.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "crypto.h"
#include "xmalloc.h"

#define SEAL_PREFIX	"v1."
#define SEAL_NONCE	12
#define SEAL_TAG	16

int
crypto_random(void *buf, size_t n)
{
	if (n > (size_t)0x7fffffff || RAND_bytes(buf, (int)n) != 1)
		return -EIO;
	return 0;
}

/*
 * OpenSSL 3 looks an algorithm up by name ("fetches" it) on every
 * SHA256() or EVP_aes_256_gcm() init: 10-13k instructions each, a tenth
 * of a chat request's own work.  Fetch each once per process instead.
 * Written once under pthread_once, read only after: safe for threads, and
 * nothing to free (the process keeps them to its end).
 */
static pthread_once_t	 algs_once = PTHREAD_ONCE_INIT;
static EVP_MD		*alg_sha256;
static EVP_CIPHER	*alg_gcm;

static void
algs_fetch(void)
{
	alg_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	alg_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_MD *
md_sha256(void)
{
	pthread_once(&algs_once, algs_fetch);
	return alg_sha256 != NULL ? alg_sha256 : EVP_sha256();
}

static const EVP_CIPHER *
cipher_gcm(void)
{
	pthread_once(&algs_once, algs_fetch);
	return alg_gcm != NULL ? alg_gcm : EVP_aes_256_gcm();
}

void
crypto_sha256(const void *p, size_t n, unsigned char out[CRYPTO_SHA256_LEN])
{
	if (EVP_Digest(p, n, out, NULL, md_sha256(), NULL) != 1)
		SHA256(p, n, out);
}

int
crypto_ct_eq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
b64url_encode(const void *in, size_t n)
{
	const unsigned char	*p = in;
	char			*out, *o;
	size_t			 i;
	uint32_t		 v;

	out = o = xmalloc(n / 3 * 4 + 5);
	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = b64url_alphabet[v >> 18 & 63];
		*o++ = b64url_alphabet[v >> 12 & 63];
		*o++ = b64url_alphabet[v >> 6 & 63];
		*o++ = b64url_alphabet[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)p[i] << 16;
		*o++ = b64url_alphabet[v >> 18 & 63];
		*o++ = b64url_alphabet[v >> 12 & 63];
	} else if (n - i == 2) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		*o++ = b64url_alphabet[v >> 18 & 63];
		*o++ = b64url_alphabet[v >> 12 & 63];
		*o++ = b64url_alphabet[v >> 6 & 63];
	}
	*o = '\0';
	return out;
}

static int
b64url_val(char c)
{
	const char	*p;

	if (c == '\0' || (p = strchr(b64url_alphabet, c)) == NULL)
		return -1;
	return (int)(p - b64url_alphabet);
}

/* Decode into a new buffer; returns -EBADMSG on a bad character or length. */
static int
b64url_decode(const char *s, unsigned char **out, size_t *outlen)
{
	size_t		 n = strlen(s), i, o = 0;
	unsigned char	*buf;
	uint32_t	 v = 0;
	int		 bits = 0, d;

	if (n % 4 == 1)
		return -EBADMSG;
	buf = xmalloc(n * 3 / 4 + 1);
	for (i = 0; i < n; i++) {
		if ((d = b64url_val(s[i])) < 0) {
			free(buf);
			return -EBADMSG;
		}
		v = v << 6 | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(v >> bits);
		}
	}
	*out = buf;
	*outlen = o;
	return 0;
}

char *
b64_encode(const void *in, size_t n)
{
	char	*out = xmalloc((n + 2) / 3 * 4 + 1);

	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return out;
}

char *
hex_encode(const void *in, size_t n)
{
	static const char	 hx[] = "0123456789abcdef";
	const unsigned char	*p = in;
	char			*out;
	size_t			 i;

	out = xmalloc(n * 2 + 1);
	for (i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = '\0';
	return out;
}

char *
crypto_seal(const unsigned char key[CRYPTO_SEAL_KEY_LEN], const char *ad,
    const char *pt)
{
	EVP_CIPHER_CTX	*ctx;
	unsigned char	*buf;
	size_t		 ptlen = strlen(pt), total;
	char		*b64, *out;
	int		 len, ok = 0;

	if (ptlen > 1 << 20)
		return NULL;
	total = SEAL_NONCE + ptlen + SEAL_TAG;
	buf = xmalloc(total);
	if (crypto_random(buf, SEAL_NONCE) != 0 ||
	    (ctx = EVP_CIPHER_CTX_new()) == NULL) {
		free(buf);
		return NULL;
	}
	if (EVP_EncryptInit_ex(ctx, cipher_gcm(), NULL, key, buf) == 1 &&
	    EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)ad,
	    (int)strlen(ad)) == 1 &&
	    EVP_EncryptUpdate(ctx, buf + SEAL_NONCE, &len,
	    (const unsigned char *)pt, (int)ptlen) == 1 &&
	    EVP_EncryptFinal_ex(ctx, buf + SEAL_NONCE + len, &len) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG,
	    buf + SEAL_NONCE + ptlen) == 1)
		ok = 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		xwipe(buf, total);
		free(buf);
		return NULL;
	}
	b64 = b64url_encode(buf, total);
	free(buf);
	out = xasprintf("%s%s", SEAL_PREFIX, b64);
	free(b64);
	return out;
}

int
crypto_open(const unsigned char key[CRYPTO_SEAL_KEY_LEN], const char *ad,
    const char *sealed, char **out)
{
	EVP_CIPHER_CTX	*ctx;
	unsigned char	*buf;
	char		*pt;
	size_t		 n, ctlen;
	int		 len, ok = 0;

	if (strncmp(sealed, SEAL_PREFIX, strlen(SEAL_PREFIX)) != 0 ||
	    b64url_decode(sealed + strlen(SEAL_PREFIX), &buf, &n) != 0)
		return -EBADMSG;
	if (n < SEAL_NONCE + SEAL_TAG) {
		free(buf);
		return -EBADMSG;
	}
	ctlen = n - SEAL_NONCE - SEAL_TAG;
	pt = xmalloc(ctlen + 1);
	if ((ctx = EVP_CIPHER_CTX_new()) != NULL &&
	    EVP_DecryptInit_ex(ctx, cipher_gcm(), NULL, key, buf) == 1 &&
	    EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)ad,
	    (int)strlen(ad)) == 1 &&
	    EVP_DecryptUpdate(ctx, (unsigned char *)pt, &len,
	    buf + SEAL_NONCE, (int)ctlen) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG,
	    buf + SEAL_NONCE + ctlen) == 1 &&
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)pt + len, &len) == 1)
		ok = 1;
	EVP_CIPHER_CTX_free(ctx);
	free(buf);
	pt[ctlen] = '\0';
	if (!ok || strlen(pt) != ctlen) {
		xwipe(pt, ctlen);
		free(pt);
		return -EBADMSG;
	}
	*out = pt;
	return 0;
}

int
crypto_key_load(const char *path, int create,
    unsigned char key[CRYPTO_SEAL_KEY_LEN], char *err, size_t errlen)
{
	struct stat	 sb;
	ssize_t		 n;
	int		 fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1 && errno == ENOENT && create) {
		/*
		 * Write a temporary file, then link(2) it into place: the key
		 * appears whole or not at all, and when two workers race the
		 * loser reads the winner's key instead of making its own.
		 */
		char tmp[4096];

		if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path,
		    (long)getpid()) >= sizeof(tmp) ||
		    crypto_random(key, CRYPTO_SEAL_KEY_LEN) != 0) {
			snprintf(err, errlen, "cannot make a new key for %s",
			    path);
			return -EIO;
		}
		unlink(tmp);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd == -1) {
			rc = -errno;
			snprintf(err, errlen, "cannot create %s: %s", tmp,
			    strerror(errno));
			return rc;
		}
		rc = write(fd, key, CRYPTO_SEAL_KEY_LEN) == CRYPTO_SEAL_KEY_LEN &&
		    fsync(fd) == 0 ? 0 : -EIO;
		close(fd);
		if (rc == 0 && link(tmp, path) == -1)
			rc = errno == EEXIST ? 1 : -errno;
		unlink(tmp);
		if (rc == 0)
			return 0;
		xwipe(key, CRYPTO_SEAL_KEY_LEN);
		if (rc < 0) {
			snprintf(err, errlen, "cannot write %s", path);
			return rc;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd == -1) {
		rc = -errno;
		snprintf(err, errlen, "cannot open key file %s: %s", path,
		    strerror(errno));
		return rc;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    (sb.st_mode & 077) != 0) {
		close(fd);
		snprintf(err, errlen, "key file %s must be a regular file of "
		    "mode 0600 (chmod 600 %s)", path, path);
		return -EPERM;
	}
	n = read(fd, key, CRYPTO_SEAL_KEY_LEN);
	if (n != CRYPTO_SEAL_KEY_LEN || read(fd, &sb, 1) != 0) {
		close(fd);
		xwipe(key, CRYPTO_SEAL_KEY_LEN);
		snprintf(err, errlen, "key file %s is not exactly %d bytes; "
		    "restore it from backup (sealed tokens cannot be read "
		    "without it)", path, CRYPTO_SEAL_KEY_LEN);
		return -EINVAL;
	}
	close(fd);
	return 0;
}
