/* test_crypto.c: SHA-256, base64url (PKCE vectors), sealing. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto.h"
#include "tap.h"
#include "xmalloc.h"

int
main(void)
{
	unsigned char	 h[32], key[32], key2[32];
	char		*s, *sealed, *out = NULL, path[512], err[256];
	struct stat	 sb;

	plan_lazy();
	/* RFC 7636 appendix B: verifier -> challenge. */
	crypto_sha256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", 43, h);
	s = b64url_encode(h, 32);
	is_string("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", s,
	    "PKCE S256 challenge matches RFC 7636");
	free(s);
	s = b64url_encode("f", 1);
	is_string("Zg", s, "base64url of 1 byte has no padding");
	free(s);
	s = b64url_encode("fo", 2);
	is_string("Zm8", s, "base64url of 2 bytes");
	free(s);
	s = hex_encode("\x01\xab", 2);
	is_string("01ab", s, "hex_encode");
	free(s);
	ok(crypto_ct_eq("abc", "abc", 3) && !crypto_ct_eq("abc", "abd", 3),
	    "crypto_ct_eq");

	memset(key, 7, sizeof(key));
	sealed = crypto_seal(key, "acct-1", "canary-refresh-token");
	ok(sealed != NULL && strstr(sealed, "canary") == NULL,
	    "sealed text does not contain the plaintext");
	is_int(0, crypto_open(key, "acct-1", sealed, &out), "open succeeds");
	is_string("canary-refresh-token", out, "round trip");
	xfree_secret(out);
	out = NULL;
	is_int(-EBADMSG, crypto_open(key, "acct-2", sealed, &out),
	    "bound to its associated data");
	memset(key2, 8, sizeof(key2));
	is_int(-EBADMSG, crypto_open(key2, "acct-1", sealed, &out),
	    "wrong key fails");
	sealed[10] = sealed[10] == 'A' ? 'B' : 'A';
	is_int(-EBADMSG, crypto_open(key, "acct-1", sealed, &out),
	    "tampering is detected");
	free(sealed);
	is_int(-EBADMSG, crypto_open(key, "a", "v1.!!", &out),
	    "garbage is rejected");

	snprintf(path, sizeof(path), "%s/seal.key", test_tmpdir());
	is_int(0, crypto_key_load(path, 1, key, err, sizeof(err)),
	    "key file created");
	ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600,
	    "key file is 0600");
	is_int(0, crypto_key_load(path, 0, key2, err, sizeof(err)),
	    "key file loads");
	ok(memcmp(key, key2, 32) == 0, "same key back");
	chmod(path, 0644);
	ok(crypto_key_load(path, 0, key2, err, sizeof(err)) == -EPERM &&
	    strstr(err, "chmod 600") != NULL,
	    "a group-readable key file is refused with the fix");
	snprintf(path, sizeof(path), "%s/none.key", test_tmpdir());
	ok(crypto_key_load(path, 0, key2, err, sizeof(err)) == -ENOENT,
	    "a missing key is an error when not creating");
	return 0;
}
