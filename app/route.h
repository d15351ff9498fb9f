/*
 * route.h: the static route table and the dispatcher.
 */
#ifndef QR_ROUTE_H
#define QR_ROUTE_H

struct req;

enum auth_level {
	AUTH_NONE = 0,
	AUTH_CLIENT,
	AUTH_ADMIN,
	AUTH_METRICS		/* admin, or none with metrics_public */
};

enum route_id {
	ROUTE_HEALTH,
	ROUTE_V1_HEALTH,
	ROUTE_HEALTH_DEEP,
	ROUTE_V1_HEALTH_DEEP,
	ROUTE_CHAT,
	ROUTE_EMBEDDINGS,
	ROUTE_MODELS,
	ROUTE_MODEL,
	ROUTE_RESPONSES,
	ROUTE_MESSAGES,
	ROUTE_MESSAGES_COUNT,
	ROUTE_ADMIN_ACCOUNTS,
	ROUTE_ADMIN_ACCOUNT,
	ROUTE_ADMIN_LOGINS,
	ROUTE_ADMIN_LOGIN,
	ROUTE_ADMIN_KEYS,
	ROUTE_ADMIN_KEY,
	ROUTE_METRICS,
	ROUTE_ADMIN_PAGE,
	ROUTE_ADMIN_JS,
	ROUTE_ADMIN_CSS,
	ROUTE__MAX
};

struct route {
	const char	*pattern;	/* "*" stands for one {id} segment of
					   A-Za-z0-9._-; a final "**" for the
					   rest of the path, '/' included,
					   percent-decoded (opaque ids) */
	unsigned int	 methods;	/* enum http_method bits */
	enum auth_level	 auth;
	int		 json_body;	/* parse the body as a JSON object */
	int		(*handler)(struct req *);
	int		 err_shape;	/* enum resp_shape of its errors */
};

/* The CGI variables the request path is derived from; NULL when unset. */
struct route_env {
	const char	*request_uri;	/* REQUEST_URI: as sent, with ?query */
	const char	*script_name;	/* SCRIPT_NAME (decoded) */
	const char	*path_info;	/* PATH_INFO (decoded) */
	const char	*document_uri;	/* DOCUMENT_URI (nginx) */
};

/*
 * The path to route on, from what the web server passed: SCRIPT_NAME +
 * PATH_INFO when they hold an API path, else REQUEST_URI without its
 * query, else DOCUMENT_URI; %2F decoded, trailing slashes dropped, and
 * anything before the first /v1, /health, /admin or /metrics segment (a
 * mount prefix, a script name) removed.  A mount prefix must not itself
 * contain a segment of those names.  The variable sets each server sends
 * are in tests/test_route.c.  Writes into buf (truncated to
 * bufsz - 1 bytes) and returns a pointer into it; never NULL.
 */
const char *route_path(const struct route_env *, char *buf, size_t bufsz);

/*
 * Is path one of the probes answered even when every request slot is
 * busy (/health, /health/deep and their /v1 twins)?  They are cheap and
 * never call upstream; the worker's reserve threads serve them.
 */
int	route_always(const char *path);

/*
 * Does path match pattern (see struct route)?  Returns 1 with the {id}
 * in param (psz bytes, NUL-terminated) when the pattern has one, else 0.
 * "**": %XX decoded; a malformed escape, a control byte (decoded ones
 * too) or an id over psz - 1 bytes is no match.
 */
int	route_match(const char *pattern, const char *path, char *param,
	    size_t psz);

/*
 * The route's pattern for logs and metric labels, "{id}" for the id
 * segment ("/admin/api/keys/{id}"); "other" for -1 (nothing matched).
 * Static storage.
 */
const char *route_name(int route);

/* Route, authenticate, validate and call the handler; always answers. */
void	dispatch(struct req *);

/* Parse JSON with bounded depth; NULL if malformed or not an object. */
struct json_object *parse_json_object(const char *, size_t, const char **why);

#endif
