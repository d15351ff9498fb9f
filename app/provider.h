/*
 * provider.h: what differs between kinds of account, as a table of data
 * and functions.
 *
 * qwen-oauth accounts log in with the device flow and refresh; the others
 * hold an API key.  Each preset gives a base URL and the models it serves
 * by default; an account may override both.  How a request is shaped for
 * a provider (body adjustments, extra headers) and how its answers read
 * (classify) are functions of the table, so the relay never asks which
 * provider it talks to.  The Qwen specifics live in provider_qwen.c.
 */
#ifndef QR_PROVIDER_H
#define QR_PROVIDER_H

#include <stddef.h>

#include "oauth.h"

struct account;
struct cfg;
struct json_object;
struct server;

/* Every provider preset, resolved once from the account's name. */
enum provider_id {
	PROV_QWEN_OAUTH,
	PROV_CODING_PLAN,
	PROV_CODING_PLAN_CN,
	PROV_DASHSCOPE,
	PROV_OPENROUTER,
	PROV_OPENAI_COMPAT,
	PROV__MAX
};

/* Which upstream endpoint a call goes to. */
enum provider_call {
	PCALL_CHAT,		/* POST {base}/chat/completions */
	PCALL_EMBED		/* POST {base}/embeddings */
};

/* What an upstream answer (or the lack of one) means for rotation. */
enum relay_class {
	RC_OK,			/* 2xx: deliver */
	RC_RATE,		/* throttled: short wait or another account */
	RC_QUOTA,		/* quota spent: park the account */
	RC_BILLING,		/* out of credit / arrears: park the account */
	RC_AUTH,		/* token rejected: refresh once */
	RC_FAULT,		/* 5xx: try another account */
	RC_CLIENT,		/* the request itself is wrong: relay as is */
	RC_MALFORMED,		/* a 2xx that is not the promised answer (upcheck.c) */
	/* not answers from the provider, but outcomes of an attempt */
	RC_TIMEOUT,		/* connect, idle or total timeout */
	RC_UNREACHABLE,		/* no connection, or an unreadable answer */
	RC_GONE,		/* the client went away */
	RC_NO_TOKEN,		/* the account's token could not be made fresh */
	RC_NO_ACCOUNT,		/* the selector found no account to try */
	RC__MAX
};

/*
 * What the body the client sent asked for, read once before any
 * adjustment, so a provider adjustment never hides the client's choice.
 */
struct client_wants {
	int	stream;			/* "stream": true */
	int	include_usage;		/* stream_options.include_usage: true */
};

struct provider {
	enum provider_id	 id;
	const char		*name;
	int			 oauth;		/* device flow + refresh (refresh.c) */
	const char		*base_url;	/* NULL: from the account */
	const char *const	*models;	/* NULL-terminated defaults */
	const char *const	*embed_models;	/* which of them embed */

	/*
	 * Adjust the upstream body in place (the client's body, deep
	 * copied, model already set).  NULL: send it as is.
	 */
	void	(*adjust_body)(struct json_object *body, enum provider_call,
		    const struct client_wants *);
	/*
	 * Append this provider's request headers ("Name: value", static
	 * strings) to hdrs from index n, at most max in all; returns the new
	 * count.  User-Agent included.
	 */
	size_t	(*add_headers)(const char **hdrs, size_t n, size_t max);
	/* Read a non-streamed answer: status and body (may be NULL). */
	enum relay_class (*classify)(long status, const char *body);
	/*
	 * The refresh grant, once (oauth.h's oauth_refresh contract), for
	 * providers whose tokens expire; NULL for API keys.  refresh.c runs
	 * it under its lease (today by calling oauth_refresh, the only one).
	 */
	enum oauth_result (*refresh)(const struct cfg *,
		    const char *refresh_token, struct oauth_tokens *,
		    char *err, size_t errlen);
	/*
	 * The upstream's model ids (catalog.h): 0 and a NULL-terminated
	 * list, or a negative errno with a sentence in err.
	 */
	int	(*fetch_catalog)(struct server *, const struct account *,
		    char ***ids, char *err, size_t errlen);
};

/* The preset of that name, or NULL. */
const struct provider *provider_find(const char *name);
/* The preset by id (never NULL for id < PROV__MAX). */
const struct provider *provider_get(enum provider_id);
/* "qwen-oauth, qwen-coding-plan, ..." for messages. */
const char *provider_names(void);

/*
 * The API base URL for an account: for qwen-oauth, from resource_url
 * ("https://" added when there is no scheme, "/v1" appended unless it is
 * there; default qwen_default_resource_url); for the others the account's
 * base_url or the preset's.  Returns a new string (caller frees), or NULL
 * when the account has none.
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

/*
 * The classifier for OpenAI-shaped answers of any provider in the table
 * (see provider.c for the codes and their sources): 2xx ok; 402 and the
 * out-of-credit / arrears codes billing; quota words quota; 429 rate;
 * 401 and a 403 that is not quota/billing auth; 408/5xx fault; the rest
 * client.  Pure; body may be NULL or not JSON.
 */
enum relay_class provider_classify(long status, const char *body);

/* The presets' functions that are not in the table's own file. */
void	 qwen_adjust_body(struct json_object *, enum provider_call,
	    const struct client_wants *);
size_t	 qwen_add_headers(const char **hdrs, size_t n, size_t max);

#endif
