/*
 * oauth.c: the Qwen OAuth client (device flow with PKCE, token poll,
 * refresh grant), after qwen-protocol.md sections 1 to 3.
 *
 * Each call builds a form, POSTs it with a fresh curl handle bounded in
 * time, protocol and response size, and classifies the answer on its
 * "error" field first, the HTTP status second.  Secrets pass through here
 * in memory only; every buffer that held one is wiped before it is freed.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "cfg.h"
#include "crypto.h"
#include "oauth.h"
#include "provider.h"
#include "xmalloc.h"

/* Under the 30 s refresh lease, so one attempt never outlives it. */
#define OAUTH_TOTAL_TIMEOUT_MS	25000L
#define OAUTH_PKCE_BYTES	32

struct buf {
	char	*p;
	size_t	 n;
	int	 over;
};

char *
oauth_pkce_verifier(void)
{
	unsigned char	raw[OAUTH_PKCE_BYTES];
	char		*v;

	if (crypto_random(raw, sizeof(raw)) != 0)
		return NULL;
	v = b64url_encode(raw, sizeof(raw));
	xwipe(raw, sizeof(raw));
	return v;
}

char *
oauth_pkce_challenge(const char *verifier)
{
	unsigned char	h[CRYPTO_SHA256_LEN];

	crypto_sha256(verifier, strlen(verifier), h);
	return b64url_encode(h, sizeof(h));
}

char *
oauth_form_escape(const char *s)
{
	static const char	 hex[] = "0123456789ABCDEF";
	char			*o, *p;
	unsigned char		 c;

	o = p = xmalloc(strlen(s) * 3 + 1);
	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.' || c == '~')
			*p++ = (char)c;
		else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return o;
}

/* Append "&name=value" (value escaped) to a form being built. */
static char *
form_add(char *form, const char *name, const char *value)
{
	char	*v = oauth_form_escape(value), *n;

	n = xasprintf("%s%s%s=%s", form != NULL ? form : "",
	    form != NULL ? "&" : "", name, v);
	xfree_secret(v);
	xfree_secret(form);
	return n;
}

static size_t
on_body(char *p, size_t sz, size_t nm, void *arg)
{
	struct buf	*b = arg;
	size_t		 n = sz * nm;

	if (b->n + n > OAUTH_MAX_RESPONSE) {
		b->over = 1;
		return 0;	/* makes curl fail the transfer */
	}
	b->p = xrealloc(b->p, b->n + n + 1);
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/*
 * POST a form to the OAuth base URL + path.  Returns 0 with the status and
 * the body (caller frees with xfree_secret; may be ""), or -1 with a
 * sentence in err (nothing was received).
 */
static int
post_form(const struct cfg *c, const char *path, const char *form,
    long *status, char **body, char *err, size_t errlen)
{
	CURL			*h;
	struct curl_slist	*hd = NULL;
	struct buf		 b = { NULL, 0, 0 };
	char			*url, why[256];
	CURLcode		 cc;

	*body = NULL;
	*status = 0;
	url = xasprintf("%s%s", c->qwen_oauth_base_url, path);
	if (!provider_url_allowed(c, url, why, sizeof(why))) {
		snprintf(err, errlen, "qwen_oauth_base_url is not allowed: %s",
		    why);
		free(url);
		return -1;
	}
	if ((h = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot start an HTTP client");
		free(url);
		return -1;
	}
	hd = curl_slist_append(hd,
	    "Content-Type: application/x-www-form-urlencoded");
	hd = curl_slist_append(hd, "Accept: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)c->upstream_connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, OAUTH_TOTAL_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "qwenrelay/" PACKAGE_VERSION);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hd);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "cannot reach %s: %s", url, b.over ?
		    "the answer is larger than 1 MiB" : curl_easy_strerror(cc));
		free(url);
		xfree_secret(b.p);
		return -1;
	}
	free(url);
	*body = b.p != NULL ? b.p : xstrdup("");
	return 0;
}

/* A string member, or NULL when absent, empty or not a string. */
static const char *
jstr(json_object *o, const char *k)
{
	json_object	*v;
	const char	*s;

	if (o == NULL || !json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	return s != NULL && *s != '\0' ? s : NULL;
}

static long long
jint(json_object *o, const char *k, long long def)
{
	json_object	*v;

	if (o == NULL || !json_object_object_get_ex(o, k, &v))
		return def;
	if (json_object_is_type(v, json_type_int) ||
	    json_object_is_type(v, json_type_double))
		return json_object_get_int64(v);
	return def;
}

static json_object *
parse_body(const char *body)
{
	json_object	*o = json_tokener_parse(body);

	if (o != NULL && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* "error: description" for messages, bounded; never a token. */
static void
describe(json_object *o, long status, char *err, size_t errlen)
{
	const char	*e = jstr(o, "error"), *d = jstr(o, "error_description");

	if (e == NULL && o != NULL) {
		json_object *eo;
		/* OpenAI-shaped {"error":{"message"}} from a proxy in front. */
		if (json_object_object_get_ex(o, "error", &eo) &&
		    json_object_is_type(eo, json_type_object))
			d = jstr(eo, "message");
	}
	snprintf(err, errlen, "HTTP %ld%s%.64s%s%.200s", status,
	    e != NULL ? ", " : "", e != NULL ? e : "",
	    d != NULL ? ": " : "", d != NULL ? d : "");
}

enum oauth_result
oauth_parse_device(long status, const char *body, struct oauth_device *d,
    char *err, size_t errlen)
{
	json_object	*o = parse_body(body);

	memset(d, 0, sizeof(*d));
	if (status < 200 || status > 299 || jstr(o, "device_code") == NULL ||
	    jstr(o, "user_code") == NULL ||
	    jstr(o, "verification_uri") == NULL) {
		char why[300];
		describe(o, status, why, sizeof(why));
		snprintf(err, errlen, "the device authorization was refused "
		    "(%s)", why);
		json_object_put(o);
		return status == 429 || status >= 500 ? OAUTH_TRANSIENT :
		    OAUTH_ERROR;
	}
	d->device_code = xstrdup(jstr(o, "device_code"));
	d->user_code = xstrdup(jstr(o, "user_code"));
	d->verification_uri = xstrdup(jstr(o, "verification_uri"));
	d->verification_uri_complete = jstr(o,
	    "verification_uri_complete") != NULL ? xstrdup(jstr(o,
	    "verification_uri_complete")) : xstrdup(d->verification_uri);
	d->expires_in = jint(o, "expires_in", 600);
	if (d->expires_in <= 0 || d->expires_in > 86400)
		d->expires_in = 600;
	d->interval = jint(o, "interval", 0);
	if (d->interval < 0 || d->interval > 60)
		d->interval = 0;
	json_object_put(o);
	return OAUTH_OK;
}

enum oauth_result
oauth_parse_token(long status, const char *body, int refresh,
    struct oauth_tokens *t, char *err, size_t errlen)
{
	json_object		*o = parse_body(body);
	const char		*e;
	enum oauth_result	 res;
	char			 why[300];

	memset(t, 0, sizeof(*t));
	e = jstr(o, "error");
	if (status >= 200 && status <= 299 && e == NULL &&
	    jstr(o, "access_token") != NULL) {
		t->access_token = xstrdup(jstr(o, "access_token"));
		t->refresh_token = dup_or_null(jstr(o, "refresh_token"));
		t->token_type = xstrdup(jstr(o, "token_type") != NULL ?
		    jstr(o, "token_type") : "Bearer");
		t->resource_url = dup_or_null(jstr(o, "resource_url"));
		if (t->resource_url == NULL)
			t->resource_url = dup_or_null(jstr(o, "endpoint"));
		t->expires_in = jint(o, "expires_in", 3600);
		if (t->expires_in <= 0 || t->expires_in > 10LL * 365 * 86400)
			t->expires_in = 3600;
		json_object_put(o);
		return OAUTH_OK;
	}
	describe(o, status, why, sizeof(why));
	if (e == NULL && status >= 200 && status <= 299 && !refresh &&
	    jstr(o, "status") != NULL && strcmp(jstr(o, "status"),
	    "pending") == 0)
		res = OAUTH_PENDING;
	else if (e != NULL && strcmp(e, "authorization_pending") == 0)
		res = OAUTH_PENDING;
	else if (e != NULL && strcmp(e, "slow_down") == 0)
		res = OAUTH_SLOW_DOWN;
	else if (e != NULL && strcmp(e, "expired_token") == 0)
		res = OAUTH_EXPIRED;
	else if (e != NULL && strcmp(e, "access_denied") == 0)
		res = OAUTH_DENIED;
	else if (refresh && e != NULL && (strcmp(e, "invalid_grant") == 0 ||
	    strcmp(e, "invalid_request") == 0 ||
	    strcmp(e, "invalid_client") == 0 ||
	    strcmp(e, "unauthorized_client") == 0))
		res = OAUTH_REJECTED;
	else if (status == 429 || status >= 500 || (e != NULL &&
	    (strcmp(e, "server_error") == 0 ||
	    strcmp(e, "temporarily_unavailable") == 0)))
		res = OAUTH_TRANSIENT;
	else if (refresh && (status == 400 || status == 401))
		res = OAUTH_REJECTED;
	else if (!refresh && status == 401)
		res = OAUTH_EXPIRED;
	else
		res = OAUTH_ERROR;
	switch (res) {
	case OAUTH_EXPIRED:
		snprintf(err, errlen, "the device code expired (%s); start "
		    "the login again", why);
		break;
	case OAUTH_DENIED:
		snprintf(err, errlen, "the login was denied at Qwen (%s)",
		    why);
		break;
	case OAUTH_REJECTED:
		snprintf(err, errlen, "the refresh token was rejected (%s); "
		    "log in again with 'qwenrelay accounts login'", why);
		break;
	default:
		snprintf(err, errlen, "%s", why);
		break;
	}
	json_object_put(o);
	return res;
}

enum oauth_result
oauth_device_start(const struct cfg *c, const char *challenge,
    struct oauth_device *d, char *err, size_t errlen)
{
	char			*form = NULL, *body;
	long			 status;
	enum oauth_result	 res;

	memset(d, 0, sizeof(*d));
	form = form_add(form, "client_id", OAUTH_CLIENT_ID);
	form = form_add(form, "scope", OAUTH_SCOPE);
	form = form_add(form, "code_challenge", challenge);
	form = form_add(form, "code_challenge_method", "S256");
	if (post_form(c, OAUTH_DEVICE_PATH, form, &status, &body, err,
	    errlen) != 0) {
		xfree_secret(form);
		return OAUTH_TRANSIENT;
	}
	xfree_secret(form);
	res = oauth_parse_device(status, body, d, err, errlen);
	xfree_secret(body);
	return res;
}

enum oauth_result
oauth_device_poll(const struct cfg *c, const char *device_code,
    const char *verifier, struct oauth_tokens *t, char *err, size_t errlen)
{
	char			*form = NULL, *body;
	long			 status;
	enum oauth_result	 res;

	memset(t, 0, sizeof(*t));
	form = form_add(form, "grant_type", OAUTH_DEVICE_GRANT);
	form = form_add(form, "client_id", OAUTH_CLIENT_ID);
	form = form_add(form, "device_code", device_code);
	form = form_add(form, "code_verifier", verifier);
	if (post_form(c, OAUTH_TOKEN_PATH, form, &status, &body, err,
	    errlen) != 0) {
		xfree_secret(form);
		return OAUTH_TRANSIENT;
	}
	xfree_secret(form);
	res = oauth_parse_token(status, body, 0, t, err, errlen);
	xfree_secret(body);
	return res;
}

enum oauth_result
oauth_refresh(const struct cfg *c, const char *refresh_token,
    struct oauth_tokens *t, char *err, size_t errlen)
{
	char			*form = NULL, *body;
	long			 status;
	enum oauth_result	 res;

	memset(t, 0, sizeof(*t));
	form = form_add(form, "grant_type", "refresh_token");
	form = form_add(form, "refresh_token", refresh_token);
	form = form_add(form, "client_id", OAUTH_CLIENT_ID);
	if (post_form(c, OAUTH_TOKEN_PATH, form, &status, &body, err,
	    errlen) != 0) {
		xfree_secret(form);
		return OAUTH_TRANSIENT;
	}
	xfree_secret(form);
	res = oauth_parse_token(status, body, 1, t, err, errlen);
	xfree_secret(body);
	return res;
}

void
oauth_device_free(struct oauth_device *d)
{
	if (d == NULL)
		return;
	xfree_secret(d->device_code);
	free(d->user_code);
	free(d->verification_uri);
	free(d->verification_uri_complete);
	memset(d, 0, sizeof(*d));
}

void
oauth_tokens_free(struct oauth_tokens *t)
{
	if (t == NULL)
		return;
	xfree_secret(t->access_token);
	xfree_secret(t->refresh_token);
	free(t->token_type);
	free(t->resource_url);
	memset(t, 0, sizeof(*t));
}
