/*
 * test_oauth.c: PKCE, form encoding and the OAuth answer parsers; tokens
 * sealed at rest (a canary never appears in data.mdb in clear); and the
 * cost of the accounts + marks read that list and selection use.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "accounts.h"
#include "cfg.h"
#include "oauth.h"
#include "store.h"
#include "tap.h"
#include "util.h"
#include "xmalloc.h"

static int
file_has(const char *path, const char *needle)
{
	char	*buf;
	ssize_t	 r;
	size_t	 n = 0, cap = 1 << 20;
	int	 fd, found;

	if ((fd = open(path, O_RDONLY)) == -1)
		return -1;
	buf = xmalloc(cap);
	while ((r = read(fd, buf + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	close(fd);
	found = memmem_str(buf, n, needle);
	free(buf);
	return found;
}

static void
test_pkce(void)
{
	char	*v, *c, *e;
	size_t	 i;
	int	 good = 1;

	v = oauth_pkce_verifier();
	ok(v != NULL && strlen(v) == 43, "verifier is 43 characters");
	for (i = 0; v != NULL && v[i] != '\0'; i++)
		if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' &&
		    v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') ||
		    v[i] == '-' || v[i] == '_'))
			good = 0;
	ok(good, "verifier is base64url");
	c = oauth_pkce_verifier();
	ok(c != NULL && strcmp(v, c) != 0, "two verifiers differ");
	free(v);
	free(c);
	/* RFC 7636, appendix B. */
	c = oauth_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
	is_string("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", c,
	    "S256 challenge matches RFC 7636");
	free(c);
	e = oauth_form_escape("openid profile email model.completion");
	is_string("openid%20profile%20email%20model.completion", e,
	    "space is %%20");
	free(e);
	e = oauth_form_escape("urn:ietf:a+b&c=d~_-.");
	is_string("urn%3Aietf%3Aa%2Bb%26c%3Dd~_-.", e, "reserved escaped");
	free(e);
}

static void
test_parse(void)
{
	struct oauth_device	d;
	struct oauth_tokens	t;
	char			err[512];

	is_int(OAUTH_OK, oauth_parse_device(200, "{\"device_code\":\"dc\","
	    "\"user_code\":\"AB-12\",\"verification_uri\":\"https://x/a\","
	    "\"verification_uri_complete\":\"https://x/a?u=AB-12\","
	    "\"expires_in\":900,\"interval\":5}", &d, err, sizeof(err)),
	    "device answer parsed");
	ok(d.expires_in == 900 && d.interval == 5 &&
	    strcmp(d.user_code, "AB-12") == 0 &&
	    strcmp(d.verification_uri_complete, "https://x/a?u=AB-12") == 0,
	    "device fields");
	oauth_device_free(&d);
	is_int(OAUTH_OK, oauth_parse_device(200, "{\"device_code\":\"dc\","
	    "\"user_code\":\"AB\",\"verification_uri\":\"https://x/a\","
	    "\"expires_in\":600}", &d, err, sizeof(err)), "no interval");
	ok(d.interval == 0 && strcmp(d.verification_uri_complete,
	    "https://x/a") == 0, "interval 0 (caller uses 2 s), uri copied");
	oauth_device_free(&d);
	is_int(OAUTH_ERROR, oauth_parse_device(200, "{\"error\":\"x\"}", &d,
	    err, sizeof(err)), "2xx without device_code is an error");
	is_int(OAUTH_TRANSIENT, oauth_parse_device(503, "oops", &d, err,
	    sizeof(err)), "503 is transient");
	is_int(OAUTH_ERROR, oauth_parse_device(200, "[1,2]", &d, err,
	    sizeof(err)), "non-object body");

	is_int(OAUTH_PENDING, oauth_parse_token(400,
	    "{\"error\":\"authorization_pending\"}", 0, &t, err, sizeof(err)),
	    "pending");
	is_int(OAUTH_SLOW_DOWN, oauth_parse_token(400,
	    "{\"error\":\"slow_down\"}", 0, &t, err, sizeof(err)),
	    "slow_down under 400");
	is_int(OAUTH_SLOW_DOWN, oauth_parse_token(429,
	    "{\"error\":\"slow_down\"}", 0, &t, err, sizeof(err)),
	    "slow_down under 429");
	is_int(OAUTH_EXPIRED, oauth_parse_token(400,
	    "{\"error\":\"expired_token\"}", 0, &t, err, sizeof(err)),
	    "expired_token");
	is_int(OAUTH_DENIED, oauth_parse_token(400,
	    "{\"error\":\"access_denied\"}", 0, &t, err, sizeof(err)),
	    "access_denied");
	is_int(OAUTH_PENDING, oauth_parse_token(200, "{\"status\":\"pending\"}",
	    0, &t, err, sizeof(err)), "2xx status pending");
	is_int(OAUTH_TRANSIENT, oauth_parse_token(502, "<html>", 0, &t, err,
	    sizeof(err)), "non-JSON 502 is transient");
	is_int(OAUTH_OK, oauth_parse_token(200, "{\"access_token\":\"A\","
	    "\"refresh_token\":\"R\",\"token_type\":\"Bearer\","
	    "\"expires_in\":3600,\"resource_url\":\"portal.qwen.ai\"}", 0, &t,
	    err, sizeof(err)), "tokens");
	ok(strcmp(t.access_token, "A") == 0 && strcmp(t.refresh_token, "R") ==
	    0 && t.expires_in == 3600 && strcmp(t.resource_url,
	    "portal.qwen.ai") == 0, "token fields");
	oauth_tokens_free(&t);
	is_int(OAUTH_OK, oauth_parse_token(200, "{\"access_token\":\"A\","
	    "\"token_type\":\"Bearer\",\"expires_in\":60}", 1, &t, err,
	    sizeof(err)), "refresh without refresh_token");
	ok(t.refresh_token == NULL && t.resource_url == NULL,
	    "absent refresh_token and resource_url stay NULL (caller keeps "
	    "the old ones)");
	oauth_tokens_free(&t);
	is_int(OAUTH_ERROR, oauth_parse_token(200, "{\"access_token\":\"\"}",
	    1, &t, err, sizeof(err)), "empty access_token is no success");
	is_int(OAUTH_REJECTED, oauth_parse_token(400,
	    "{\"error\":\"invalid_request\",\"error_description\":"
	    "\"Invalid refresh token or client_id\"}", 1, &t, err,
	    sizeof(err)), "invalid_request on refresh: rejected");
	ok(strstr(err, "accounts login") != NULL, "says what to do: %s", err);
	is_int(OAUTH_REJECTED, oauth_parse_token(200,
	    "{\"error\":\"invalid_grant\"}", 1, &t, err, sizeof(err)),
	    "invalid_grant under 200: rejected (error field wins)");
	is_int(OAUTH_REJECTED, oauth_parse_token(401, "", 1, &t, err,
	    sizeof(err)), "401 on refresh: rejected");
	is_int(OAUTH_TRANSIENT, oauth_parse_token(429, "{\"error\":\"x\"}", 1,
	    &t, err, sizeof(err)), "429 on refresh: transient");
	is_int(OAUTH_TRANSIENT, oauth_parse_token(500,
	    "{\"error\":\"server_error\"}", 1, &t, err, sizeof(err)),
	    "500 on refresh: transient");
}

static void
test_store(void)
{
	struct store_opts	 so = { 64, 126 };
	struct store		*st;
	struct cfg		 c;
	struct account_new	 an;
	struct mark		 m;
	unsigned char		 key[CRYPTO_SEAL_KEY_LEN];
	json_object		*arr;
	char			 err[512], dir[512], path[600], id[24], dup[24];
	char			 tok[64], model[32];
	size_t			 count, i;
	int64_t			 t0, t1;
	int			 n = 2000, k;

	snprintf(dir, sizeof(dir), "%s/state", test_tmpdir());
	setenv("QWENRELAY_STATE_DIR", dir, 1);
	setenv("QWENRELAY_MAX_ACCOUNTS", "10", 1);
	if (cfg_load(&c, "/nonexistent/qwenrelay.json", err, sizeof(err)) != 0)
		bail("cfg: %s", err);
	if (store_open(&st, dir, &so, err, sizeof(err)) != 0)
		bail("store_open: %s", err);
	is_int(0, accounts_key_load(&c, st, key, err, sizeof(err)),
	    "seal.key created");
	memset(&an, 0, sizeof(an));
	an.provider = "qwen-oauth";
	an.access = "CANARY_ACCESS_7f3a9c";
	an.refresh = "CANARY_REFRESH_55b1e0";
	an.expires_at = now_ms() + 3600000;
	is_int(0, account_create(st, &c, key, &an, id, dup, &count),
	    "account with canary tokens");
	is_int(-EEXIST, account_create(st, &c, key, &an, id, dup, &count),
	    "same refresh token: duplicate");
	store_close(st);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	is_int(0, file_has(path, "CANARY_ACCESS_7f3a9c"),
	    "access token not in data.mdb in clear");
	is_int(0, file_has(path, "CANARY_REFRESH_55b1e0"),
	    "refresh token not in data.mdb in clear");
	/* A wrong key file with accounts present is a clear error. */
	snprintf(path, sizeof(path), "%s/seal.key", dir);
	unlink(path);
	if (store_open(&st, dir, &so, err, sizeof(err)) != 0)
		bail("store_open: %s", err);
	ok(accounts_key_load(&c, st, key, err, sizeof(err)) != 0 &&
	    strstr(err, "seal.key") != NULL && strstr(err, "restore") != NULL,
	    "missing seal.key with accounts: %s", err);

	/* Fill to 10 accounts with 2 marks each, then time the list read. */
	for (k = 1; k < 10; k++) {
		snprintf(tok, sizeof(tok), "tok-%d", k);
		an.access = tok;
		an.refresh = tok;
		account_create(st, &c, key, &an, id, dup, &count);
		for (i = 0; i < 2; i++) {
			memset(&m, 0, sizeof(m));
			memcpy(m.account, id, sizeof(m.account));
			snprintf(model, sizeof(model), "model-%zu", i);
			m.model = model;
			m.resets_at = now_ms() + 60000;
			m.hits = 1;
			m.reason = (char *)(uintptr_t)"rate_limit";
			store_mark_set(st, &m);
		}
	}
	is_int(-EDQUOT, (an.access = an.refresh = "tok-x", account_create(st,
	    &c, key, &an, id, dup, &count)), "11th account refused");
	is_int(10, (long long)count, "with the count");
	is_int(0, accounts_list_json(st, &arr), "list as JSON");
	ok(json_object_array_length(arr) == 10, "ten accounts listed");
	ok(strstr(json_object_to_json_string(arr), "tok-") == NULL,
	    "no token in the listing");
	json_object_put(arr);
	t0 = mono_ms();
	for (k = 0; k < n; k++) {
		struct account **l;
		struct mark *ml;
		size_t na, nm;
		store_account_list(st, &l, &na);
		store_mark_list(st, &ml, &nm);
		account_list_free(l, na);
		mark_list_free(ml, nm);
	}
	t1 = mono_ms();
	diag("store_account_list + store_mark_list (10 accounts, 18 marks): "
	    "%.1f us per selection read", (double)(t1 - t0) * 1000.0 / n);
	ok(1, "timed the selection read");
	store_close(st);
	cfg_free(&c);
}

int
main(void)
{
	plan_lazy();
	test_pkce();
	test_parse();
	test_store();
	test_tmpdir_cleanup();
	return 0;
}
