/*
 * oauth.h: the Qwen OAuth client: device authorization with PKCE (S256),
 * the device-code token poll, and the refresh grant.
 *
 * Every call is one HTTP POST with its own curl handle (logins and
 * refreshes are rare).  Answers are classified on the "error" field, not
 * on the HTTP status, because clients and servers disagree on the status
 * (qwen-protocol.md, section 9).  Nothing here logs a token, a device code
 * or a verifier; error sentences never contain one either.
 */
#ifndef QR_OAUTH_H
#define QR_OAUTH_H

#include <stddef.h>

struct cfg;

#define OAUTH_CLIENT_ID		"f0304373b74a44d2b584a3fb70ca9e56"
#define OAUTH_SCOPE		"openid profile email model.completion"
#define OAUTH_DEVICE_PATH	"/api/v1/oauth2/device/code"
#define OAUTH_TOKEN_PATH	"/api/v1/oauth2/token"
#define OAUTH_DEVICE_GRANT	"urn:ietf:params:oauth:grant-type:device_code"
#define OAUTH_DEFAULT_INTERVAL	2	/* seconds, when the server sends none */
#define OAUTH_MAX_INTERVAL_MS	10000	/* slow_down never waits longer */
#define OAUTH_MAX_RESPONSE	(1 << 20)

struct oauth_device {
	char		*device_code;
	char		*user_code;
	char		*verification_uri;
	char		*verification_uri_complete;
	long long	 expires_in;	/* seconds */
	long long	 interval;	/* seconds; 0 when the server sent none */
};

struct oauth_tokens {
	char		*access_token;
	char		*refresh_token;	/* NULL when none came back */
	char		*token_type;
	char		*resource_url;	/* NULL when none came back */
	long long	 expires_in;	/* seconds */
};

enum oauth_result {
	OAUTH_OK = 0,
	OAUTH_PENDING,		/* authorization_pending: ask again later */
	OAUTH_SLOW_DOWN,	/* slow_down: ask again, less often */
	OAUTH_EXPIRED,		/* expired_token: start over */
	OAUTH_DENIED,		/* access_denied: the user said no */
	OAUTH_REJECTED,		/* refresh: invalid_grant/invalid_request/400/401 */
	OAUTH_TRANSIENT,	/* network, 5xx, 429: try again later */
	OAUTH_ERROR		/* anything else: a protocol error */
};

/* A new PKCE verifier: base64url of 32 random bytes (43 chars), or NULL. */
char	*oauth_pkce_verifier(void);
/* base64url(SHA-256(verifier)), no padding; caller frees. */
char	*oauth_pkce_challenge(const char *verifier);
/* Form-encode a value (RFC 3986 unreserved kept, space as %20); caller frees. */
char	*oauth_form_escape(const char *);

/*
 * Ask for a device code.  Returns OAUTH_OK with *d filled (free with
 * oauth_device_free), or OAUTH_TRANSIENT/OAUTH_ERROR with a sentence in err.
 */
enum oauth_result oauth_device_start(const struct cfg *, const char *challenge,
	    struct oauth_device *d, char *err, size_t errlen);
/*
 * Poll the token endpoint once for a device code.  OAUTH_OK fills *t
 * (free with oauth_tokens_free); the other results fill err.
 */
enum oauth_result oauth_device_poll(const struct cfg *, const char *device_code,
	    const char *verifier, struct oauth_tokens *t, char *err,
	    size_t errlen);
/*
 * The refresh grant, once (the caller retries).  OAUTH_OK fills *t;
 * OAUTH_REJECTED means the refresh token is dead (a new login is needed);
 * OAUTH_TRANSIENT may work later.
 */
enum oauth_result oauth_refresh(const struct cfg *, const char *refresh_token,
	    struct oauth_tokens *t, char *err, size_t errlen);

/* The parsers behind the calls, exposed for the unit tests. */
enum oauth_result oauth_parse_device(long status, const char *body,
	    struct oauth_device *, char *err, size_t errlen);
enum oauth_result oauth_parse_token(long status, const char *body, int refresh,
	    struct oauth_tokens *, char *err, size_t errlen);

/* Free the strings (wiping secrets); accept NULL members. */
void	oauth_device_free(struct oauth_device *);
void	oauth_tokens_free(struct oauth_tokens *);

#endif
