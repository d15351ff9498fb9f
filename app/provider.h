/*
 * provider.h: what differs between kinds of account, as a table.
 *
 * qwen-oauth accounts log in with the device flow and refresh; the others
 * hold an API key.  Each preset gives a base URL and the models it serves
 * by default; an account may override both.
 */
#ifndef QR_PROVIDER_H
#define QR_PROVIDER_H

#include <stddef.h>

struct cfg;

struct provider {
	const char		*name;
	int			 oauth;		/* device flow + refresh */
	const char		*base_url;	/* NULL: from the account */
	const char *const	*models;	/* NULL-terminated defaults */
	const char *const	*embed_models;	/* which of them embed */
};

/* The preset of that name, or NULL. */
const struct provider *provider_find(const char *name);
/* "qwen-oauth, qwen-coding-plan, ..." for messages. */
const char *provider_names(void);

/*
 * The API base URL for an account: for qwen-oauth, from resource_url
 * ("https://" added when there is no scheme, "/v1" appended unless it is
 * there; default qwen_default_resource_url); for the others the account's
 * base_url or the preset's.  Returns a new string (caller frees).
 */
char	*provider_base_url(const struct cfg *, const char *provider,
	    const char *account_base);

/*
 * Is this upstream URL allowed?  https always; http only for loopback
 * hosts (127.0.0.0/8, ::1, localhost) or with allow_insecure_upstream.
 * Returns 1, or 0 with the reason in err.
 */
int	 provider_url_allowed(const struct cfg *, const char *url,
	    char *err, size_t errlen);

/* Is model an embedding model of this provider's defaults? */
int	 provider_is_embed_model(const struct provider *, const char *model);

#endif
