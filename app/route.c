/*
 * route.c: method + path -> handler, through one static table (kcgi's
 * disps[PAGE__MAX]).  Also authentication, CORS preflight, body parsing and
 * the one place that maps a handler's negative errno to a status.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "crypto.h"
#include "handlers.h"
#include "key_limits.h"
#include "log.h"
#include "req.h"
#include "route.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

#define JSON_MAX_DEPTH	64

static const struct route routes[ROUTE__MAX] = {
	[ROUTE_HEALTH] = { "/health", M_GET | M_HEAD, AUTH_NONE, 0,
	    handle_health },
	[ROUTE_V1_HEALTH] = { "/v1/health", M_GET | M_HEAD, AUTH_NONE, 0,
	    handle_health },
	[ROUTE_HEALTH_DEEP] = { "/health/deep", M_GET, AUTH_ADMIN, 0,
	    handle_health_deep },
	[ROUTE_V1_HEALTH_DEEP] = { "/v1/health/deep", M_GET, AUTH_ADMIN, 0,
	    handle_health_deep },
	[ROUTE_CHAT] = { "/v1/chat/completions", M_POST, AUTH_CLIENT, 1,
	    handle_chat },
	[ROUTE_EMBEDDINGS] = { "/v1/embeddings", M_POST, AUTH_CLIENT, 1,
	    handle_embeddings },
	[ROUTE_MODELS] = { "/v1/models", M_GET, AUTH_CLIENT, 0,
	    handle_models },
	/* Model ids are the provider's: "qwen/qwen3-coder" is one id. */
	[ROUTE_MODEL] = { "/v1/models/**", M_GET, AUTH_CLIENT, 0,
	    handle_model },
	[ROUTE_RESPONSES] = { "/v1/responses", M_POST, AUTH_CLIENT, 1,
	    handle_responses, RESP_SHAPE_OPENAI },
	/* Anthropic's clients get Anthropic's error shape, auth included. */
	[ROUTE_MESSAGES] = { "/v1/messages", M_POST, AUTH_CLIENT, 1,
	    handle_messages, RESP_SHAPE_ANTHROPIC },
	[ROUTE_MESSAGES_COUNT] = { "/v1/messages/count_tokens", M_POST,
	    AUTH_CLIENT, 1, handle_count_tokens, RESP_SHAPE_ANTHROPIC },
	[ROUTE_ADMIN_ACCOUNTS] = { "/admin/api/accounts", M_GET | M_POST,
	    AUTH_ADMIN, 1, handle_admin_accounts },
	[ROUTE_ADMIN_ACCOUNT] = { "/admin/api/accounts/*",
	    M_GET | M_PATCH | M_DELETE, AUTH_ADMIN, 1, handle_admin_account },
	/* The body is optional here: the handler parses it when present. */
	[ROUTE_ADMIN_LOGINS] = { "/admin/api/logins", M_POST, AUTH_ADMIN, 0,
	    handle_admin_logins },
	[ROUTE_ADMIN_LOGIN] = { "/admin/api/logins/*", M_GET, AUTH_ADMIN, 0,
	    handle_admin_login },
	[ROUTE_ADMIN_KEYS] = { "/admin/api/keys", M_GET | M_POST, AUTH_ADMIN, 1,
	    handle_admin_keys },
	[ROUTE_ADMIN_KEY] = { "/admin/api/keys/*", M_DELETE, AUTH_ADMIN, 0,
	    handle_admin_key },
	[ROUTE_METRICS] = { "/metrics", M_GET, AUTH_METRICS, 0,
	    handle_metrics },
	/* The page and its assets need no key; every API call does. */
	[ROUTE_ADMIN_PAGE] = { "/admin", M_GET | M_HEAD, AUTH_NONE, 0,
	    handle_admin_page },
	[ROUTE_ADMIN_JS] = { "/admin/app.js", M_GET | M_HEAD, AUTH_NONE, 0,
	    handle_admin_js },
	[ROUTE_ADMIN_CSS] = { "/admin/app.css", M_GET | M_HEAD, AUTH_NONE, 0,
	    handle_admin_css },
};

/* route_name: the patterns with "{id}" for "*", built once by hand. */
static const char *const route_names[ROUTE__MAX] = {
	[ROUTE_HEALTH] = "/health",
	[ROUTE_V1_HEALTH] = "/v1/health",
	[ROUTE_HEALTH_DEEP] = "/health/deep",
	[ROUTE_V1_HEALTH_DEEP] = "/v1/health/deep",
	[ROUTE_CHAT] = "/v1/chat/completions",
	[ROUTE_EMBEDDINGS] = "/v1/embeddings",
	[ROUTE_MODELS] = "/v1/models",
	[ROUTE_MODEL] = "/v1/models/{id}",
	[ROUTE_RESPONSES] = "/v1/responses",
	[ROUTE_MESSAGES] = "/v1/messages",
	[ROUTE_MESSAGES_COUNT] = "/v1/messages/count_tokens",
	[ROUTE_ADMIN_ACCOUNTS] = "/admin/api/accounts",
	[ROUTE_ADMIN_ACCOUNT] = "/admin/api/accounts/{id}",
	[ROUTE_ADMIN_LOGINS] = "/admin/api/logins",
	[ROUTE_ADMIN_LOGIN] = "/admin/api/logins/{id}",
	[ROUTE_ADMIN_KEYS] = "/admin/api/keys",
	[ROUTE_ADMIN_KEY] = "/admin/api/keys/{id}",
	[ROUTE_METRICS] = "/metrics",
	[ROUTE_ADMIN_PAGE] = "/admin",
	[ROUTE_ADMIN_JS] = "/admin/app.js",
	[ROUTE_ADMIN_CSS] = "/admin/app.css",
};

const char *
route_name(int id)
{
	if (id < 0 || id >= ROUTE__MAX || route_names[id] == NULL)
		return "other";
	return route_names[id];
}

/* The families every route lives under; anything before them is a mount prefix. */
static int
is_root_segment(const char *s, size_t n)
{
	return (n == 2 && strncmp(s, "v1", 2) == 0) ||
	    (n == 6 && strncmp(s, "health", 6) == 0) ||
	    (n == 5 && strncmp(s, "admin", 5) == 0) ||
	    (n == 7 && strncmp(s, "metrics", 7) == 0);
}

/*
 * Write a then b into buf (up to the query when cut_query), decode %2F
 * (Apache with AllowEncodedSlashes NoDecode passes it encoded; every
 * other escape arrives decoded or not at all) and drop trailing slashes.
 * Returns the first /v1, /health, /admin or /metrics segment in buf, with
 * *found set, or buf itself ("/" when empty) with *found clear.
 */
static const char *
path_from(const char *a, const char *b, int cut_query, char *buf,
    size_t bufsz, int *found)
{
	const char	*seg, *e;
	size_t		 n = 0, i, j;

	*found = 0;
	for (; a != NULL && *a != '\0' && n + 1 < bufsz; a++) {
		if (cut_query && (*a == '?' || *a == '#'))
			break;
		buf[n++] = *a;
	}
	for (; b != NULL && *b != '\0' && n + 1 < bufsz; b++)
		buf[n++] = *b;
	buf[n] = '\0';
	for (i = j = 0; i < n; i++, j++) {
		if (buf[i] == '%' && buf[i + 1] == '2' &&
		    (buf[i + 2] == 'F' || buf[i + 2] == 'f')) {
			buf[j] = '/';
			i += 2;
		} else
			buf[j] = buf[i];
	}
	buf[n = j] = '\0';
	/* Collapse a trailing slash: /v1/models/ is /v1/models. */
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	if (n == 0 && bufsz > 1) {
		buf[0] = '/';
		buf[1] = '\0';
	}
	/* Skip a mount prefix: /qwenrelay/v1/models -> /v1/models. */
	for (seg = buf; *seg == '/'; seg = e) {
		e = strchr(seg + 1, '/');
		if (e == NULL)
			e = seg + strlen(seg);
		if (is_root_segment(seg + 1, (size_t)(e - seg - 1))) {
			*found = 1;
			return seg;
		}
		if (*e == '\0')
			break;
	}
	return buf;
}

static int
set(const char *s)
{
	return s != NULL && *s != '\0';
}

const char *
route_path(const struct route_env *env, char *buf, size_t bufsz)
{
	const char	*p;
	int		 found;

	/*
	 * SCRIPT_NAME + PATH_INFO is the path as the server itself resolved
	 * and decoded it (RFC 3875 4.1.5, 4.1.13), however it split the two
	 * (lighttpd: "/v1" + "/models" or "" + "/v1/models"; nginx: all in
	 * SCRIPT_NAME; mod_fcgid after a rewrite: "/~u/relay/qwenrelay.fcgi"
	 * + "/v1/models").  Internal rewrites are already applied to it.
	 */
	if (set(env->script_name) || set(env->path_info)) {
		p = path_from(env->script_name, env->path_info, 0, buf, bufsz,
		    &found);
		if (found)
			return p;
	}
	/* A rewrite that dropped the path: what the client asked for. */
	if (set(env->request_uri))
		return path_from(env->request_uri, NULL, 1, buf, bufsz, &found);
	if (set(env->document_uri))
		return path_from(env->document_uri, NULL, 1, buf, bufsz,
		    &found);
	return path_from(env->script_name, env->path_info, 0, buf, bufsz,
	    &found);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The rest of a path as an opaque id: %XX decoded (a server that passes
 * the path undecoded, REQUEST_URI, and one that decodes it, PATH_INFO,
 * give the same id, "qwen%2Fqwen3-coder" too).  A malformed escape, a
 * control byte or a result over psz - 1 bytes is no match.
 */
static int
rest_param(const char *p, char *param, size_t psz)
{
	size_t	n = 0;
	int	hi, lo, c;

	for (; *p != '\0'; p++) {
		c = (unsigned char)*p;
		if (c == '%') {
			if ((hi = hexval(p[1])) < 0 || (lo = hexval(p[2])) < 0)
				return 0;
			c = hi * 16 + lo;
			p += 2;
		}
		if (c < 0x20 || c == 0x7f || n + 1 >= psz)
			return 0;
		param[n++] = (char)c;
	}
	param[n] = '\0';
	return n > 0;
}

int
route_match(const char *pat, const char *path, char *param, size_t psz)
{
	const char	*star = strchr(pat, '*');
	size_t		 pre, suf, plen = strlen(path), n;

	if (star == NULL)
		return strcmp(pat, path) == 0;
	pre = (size_t)(star - pat);
	if (star[1] == '*')
		return strncmp(pat, path, pre) == 0 &&
		    rest_param(path + pre, param, psz);
	suf = strlen(star + 1);
	if (plen < pre + suf + 1 || strncmp(pat, path, pre) != 0 ||
	    strcmp(path + plen - suf, star + 1) != 0)
		return 0;
	n = plen - pre - suf;
	if (n >= psz || memchr(path + pre, '/', n) != NULL)
		return 0;
	memcpy(param, path + pre, n);
	param[n] = '\0';
	return valid_ident(param, psz - 1);
}

static void
allow_header(unsigned int m, char *buf, size_t sz)
{
	static const struct { unsigned int bit; const char *name; } names[] = {
		{ M_GET, "GET" }, { M_HEAD, "HEAD" }, { M_POST, "POST" },
		{ M_PUT, "PUT" }, { M_PATCH, "PATCH" }, { M_DELETE, "DELETE" },
	};
	size_t	i, n = 0;
	int	w;

	buf[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((m & names[i].bit) == 0)
			continue;
		w = snprintf(buf + n, sz - n, "%s, ", names[i].name);
		if (w < 0 || (size_t)w >= sz - n)
			return;
		n += (size_t)w;
	}
	snprintf(buf + n, sz - n, "OPTIONS");
}

static enum auth_level
family_auth(const char *path)
{
	if (strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/v1") == 0)
		return AUTH_CLIENT;
	if (strncmp(path, "/admin/", 7) == 0 || strcmp(path, "/admin") == 0)
		return AUTH_ADMIN;
	return AUTH_NONE;
}

/*
 * Check the client key.  Returns 0 with r->client set (or auth disabled),
 * or answers 401/403/503 itself and returns -1.
 */
static int
authenticate(struct req *r, enum auth_level need)
{
	unsigned char		 h[CRYPTO_SHA256_LEN];
	struct client_key	*k = NULL;
	int			 rc;

	if (need == AUTH_METRICS)
		need = r->srv->cfg->metrics_public ? AUTH_NONE : AUTH_ADMIN;
	if (need == AUTH_NONE)
		return 0;
	if (r->srv->cfg->auth_disabled) {
		r->admin = 1;
		return 0;
	}
	if (r->auth == NULL || *r->auth == '\0') {
		resp_error(r, 401, "invalid_request_error", "missing_api_key",
		    "No API key given. Send 'Authorization: Bearer <key>'; "
		    "create a key with 'qwenrelay keys add NAME'.");
		return -1;
	}
	if (r->srv->st == NULL) {
		resp_error(r, 503, "server_error", "store_unavailable",
		    "The state store cannot be opened; see the server log.");
		return -1;
	}
	crypto_sha256(r->auth, strlen(r->auth), h);
	rc = store_key_find(r->srv->st, h, &k);
	/* The lookup is by hash; confirm it in constant time all the same. */
	if (rc != 0 || !crypto_ct_eq(k->hash, h, sizeof(h))) {
		client_key_free(k);
		if (rc != 0 && rc != -ENOENT) {
			resp_error(r, 503, "server_error", "store_unavailable",
			    "Cannot check the API key: %s.", store_strerror(rc));
			return -1;
		}
		resp_error(r, 401, "invalid_request_error", "invalid_api_key",
		    "Incorrect API key provided. Check the key, or create one "
		    "with 'qwenrelay keys add NAME'.");
		return -1;
	}
	r->client = k;
	r->admin = k->admin;
	/* Its use is counted after the request, in the metrics' batch. */
	if (limits_admit(r) != 0)
		return -1;
	if (need == AUTH_ADMIN && !k->admin) {
		resp_error(r, 403, "invalid_request_error", "admin_required",
		    "This route needs an admin key ('qwenrelay keys add NAME "
		    "--admin').");
		return -1;
	}
	return 0;
}

struct json_object *
parse_json_object(const char *s, size_t n, const char **why)
{
	json_tokener		*tok;
	json_object		*o;
	enum json_tokener_error	 e;

	*why = NULL;
	if (n > 0x7fffffff || strlen(s) != n) {
		*why = "the body contains a NUL byte";
		return NULL;
	}
	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	o = json_tokener_parse_ex(tok, s, (int)n);
	e = json_tokener_get_error(tok);
	if (e == json_tokener_success && tok->char_offset < (int)n) {
		/* Trailing bytes after the value: only whitespace is fine. */
		const char *p = s + tok->char_offset;
		while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
			p++;
		if (*p != '\0')
			e = json_tokener_error_parse_unexpected;
	}
	if (e == json_tokener_continue)
		e = json_tokener_error_parse_eof;
	json_tokener_free(tok);
	if (e != json_tokener_success) {
		json_object_put(o);
		*why = e == json_tokener_error_depth ?
		    "nested too deeply" : json_tokener_error_desc(e);
		return NULL;
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		*why = "expected a JSON object";
		return NULL;
	}
	return o;
}

static void
preflight(struct req *r, unsigned int methods)
{
	char	allow[128], hdr[1024];

	allow_header(methods, allow, sizeof(allow));
	snprintf(hdr, sizeof(hdr),
	    "Access-Control-Allow-Methods: %s\r\n"
	    "Access-Control-Allow-Headers: %s\r\n"
	    "Access-Control-Max-Age: 600\r\n"
	    "Allow: %s\r\nContent-Length: 0\r\n",
	    allow, "authorization, content-type, x-api-key, "
	    "openai-organization, openai-project, x-stainless-os, "
	    "x-stainless-lang, x-stainless-package-version, "
	    "x-stainless-runtime, x-stainless-runtime-version, "
	    "x-stainless-arch, x-stainless-retry-count, "
	    "x-stainless-timeout, anthropic-version, anthropic-beta, "
	    "anthropic-dangerous-direct-browser-access", allow);
	resp_open(r, 204, "text/plain", hdr);
}

/* The one place a negative errno from a handler becomes a status. */
static void
answer_errno(struct req *r, int rc)
{
	switch (rc) {
	case -EINVAL:
		resp_error(r, 400, "invalid_request_error", "invalid_request",
		    "The request is not valid for this route.");
		break;
	case -EACCES:
	case -EPERM:
		resp_error(r, 403, "invalid_request_error", "forbidden",
		    "Not allowed.");
		break;
	case -ENOENT:
		resp_error(r, 404, "invalid_request_error", "not_found",
		    "No such resource.");
		break;
	case -ENOSPC:
		resp_error(r, 507, "server_error", "store_full",
		    "The state store is full; raise store_map_size_mb.");
		break;
	default:
		resp_error(r, 500, "server_error", "internal_error",
		    "Internal error; see the server log.");
		log_err("%s %s: handler failed: %s", r->method_name, r->path,
		    strerror(-rc));
		break;
	}
}

int
route_always(const char *path)
{
	static const enum route_id probes[] = { ROUTE_HEALTH, ROUTE_V1_HEALTH,
	    ROUTE_HEALTH_DEEP, ROUTE_V1_HEALTH_DEEP };
	char	param[sizeof(((struct req *)0)->param)];
	size_t	i;

	for (i = 0; path != NULL && i < sizeof(probes) / sizeof(probes[0]); i++)
		if (route_match(routes[probes[i]].pattern, path, param,
		    sizeof(param)))
			return 1;
	return 0;
}

void
dispatch(struct req *r)
{
	const struct route	*rt = NULL;
	unsigned int		 allowed = 0;
	char			 allow[128], hdr[256];
	const char		*why;
	size_t			 i;
	int			 rc;

	for (i = 0; i < ROUTE__MAX; i++) {
		char param[sizeof(r->param)];
		if (!route_match(routes[i].pattern, r->path, param,
		    sizeof(param)))
			continue;
		/* HEAD is GET without the body (resp.c drops it). */
		allowed |= routes[i].methods | ((routes[i].methods & M_GET) ?
		    M_HEAD : 0);
		r->err_shape = routes[i].err_shape;
		if ((routes[i].methods & (r->method == M_HEAD ?
		    M_GET | M_HEAD : r->method)) && rt == NULL) {
			rt = &routes[i];
			r->route = (int)i;
			memcpy(r->param, param, sizeof(param));
		}
	}

	if (rt != NULL)
		r->err_shape = rt->err_shape;

	if (r->method == M_OPTIONS) {
		if (allowed == 0 && family_auth(r->path) == AUTH_NONE) {
			resp_error(r, 404, "invalid_request_error",
			    "not_found", "Unknown path %.200s.", r->path);
			return;
		}
		preflight(r, allowed ? allowed : M_GET | M_POST);
		return;
	}
	/* Under /v1 and /admin, who you are is checked before what exists. */
	if (rt == NULL) {
		if (authenticate(r, family_auth(r->path)) != 0)
			return;
		if (allowed == 0) {
			resp_error(r, 404, "invalid_request_error",
			    "not_found", "Unknown path %.200s. The API is "
			    "under /v1 (for example /v1/chat/completions).",
			    r->path);
			return;
		}
		allow_header(allowed, allow, sizeof(allow));
		snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
		resp_error_h(r, 405, hdr, "invalid_request_error",
		    "method_not_allowed", "Method %s is not allowed on %.200s; "
		    "use %s.", r->method_name, r->path, allow);
		return;
	}
	if (authenticate(r, rt->auth) != 0)
		return;
	if (rt->json_body && (r->method & (M_POST | M_PUT | M_PATCH))) {
		if (r->body_len == 0) {
			resp_error(r, 400, "invalid_request_error",
			    "invalid_json", "The request needs a JSON body.");
			return;
		}
		if ((r->json = parse_json_object(r->body, r->body_len,
		    &why)) == NULL) {
			resp_error(r, 400, "invalid_request_error",
			    "invalid_json", "The body is not valid JSON: %s.",
			    why);
			return;
		}
	}
	rc = rt->handler(r);
	if (rc < 0 && !r->opened)
		answer_errno(r, rc);
}
