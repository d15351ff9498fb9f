/*
 * relay.c: the gateway's main path.
 *
 *   pick an account -> make sure its token is fresh -> send -> classify
 *
 * and around that the rotation rules of DESIGN.md: a 429 or quota answer
 * that arrives before any byte went to the client marks the account for
 * that model (shared by every worker through the store) and the request
 * moves on; short waits are waited out on the same account; when every
 * account is limited we wait up to max_rate_limit_wait_seconds, then say
 * 429 with Retry-After.  Once bytes went to the client, no retry.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "accounts.h"
#include "cfg.h"
#include "log.h"
#include "provider.h"
#include "refresh.h"
#include "relay.h"
#include "req.h"
#include "select.h"
#include "store.h"
#include "upstream.h"
#include "util.h"
#include "xmalloc.h"

#define QWEN_OUTPUT_LIMIT	65536
#define QWEN_USER_AGENT		"QwenCode/0.15.10 (linux; x64)"
#define MAX_RESPONSE		(64u << 20)
#define MAX_ATTEMPTS		32
#define SSE_LINE_MAX		(1u << 20)

struct relay {
	struct req		*r;
	enum relay_kind		 kind;
	const char		*model;
	int			 stream;
	int64_t			 last_write;	/* mono ms of the last byte to the client */
	int			 data_sent;	/* upstream bytes reached the client */
	char			*line;		/* SSE line being assembled */
	size_t			 linelen;
	int64_t			 prompt_tokens;
	int64_t			 completion_tokens;
};

/* ---- body adjustments ---- */

static const char *
text_of(json_object *content, char **owned)
{
	size_t		 i, n;
	json_object	*part, *t;
	char		*acc = NULL;

	*owned = NULL;
	if (json_object_is_type(content, json_type_string))
		return json_object_get_string(content);
	if (!json_object_is_type(content, json_type_array))
		return "";
	n = json_object_array_length(content);
	for (i = 0; i < n; i++) {
		part = json_object_array_get_idx(content, i);
		if (!json_object_object_get_ex(part, "text", &t) ||
		    !json_object_is_type(t, json_type_string))
			continue;
		char *next = xasprintf("%s%s%s", acc ? acc : "", acc ? "\n" : "",
		    json_object_get_string(t));
		free(acc);
		acc = next;
	}
	*owned = acc;
	return acc != NULL ? acc : "";
}

static int
is_system(json_object *m)
{
	json_object	*role;

	return json_object_object_get_ex(m, "role", &role) &&
	    json_object_is_type(role, json_type_string) &&
	    strcmp(json_object_get_string(role), "system") == 0;
}

void
relay_adjust_qwen(json_object *body, int stream)
{
	json_object	*msgs, *nm, *m, *content = NULL, *sys, *part, *arr, *v;
	size_t		 i, n;
	char		*merged = NULL, *owned, *next;
	const char	*caps[] = { "max_tokens", "max_completion_tokens" };

	if (json_object_object_get_ex(body, "messages", &msgs) &&
	    json_object_is_type(msgs, json_type_array)) {
		/* Every system message's text, merged into one that leads. */
		n = json_object_array_length(msgs);
		for (i = 0; i < n; i++) {
			m = json_object_array_get_idx(msgs, i);
			if (!is_system(m))
				continue;
			json_object_object_get_ex(m, "content", &content);
			const char *t = text_of(content, &owned);
			next = xasprintf("%s%s%s", merged ? merged : "",
			    merged && *t ? "\n\n" : "", t);
			free(owned);
			free(merged);
			merged = next;
		}
		part = json_object_new_object();
		json_object_object_add(part, "type", json_object_new_string("text"));
		json_object_object_add(part, "text",
		    json_object_new_string(merged != NULL ? merged : ""));
		v = json_object_new_object();
		json_object_object_add(v, "type", json_object_new_string("ephemeral"));
		json_object_object_add(part, "cache_control", v);
		arr = json_object_new_array();
		json_object_array_add(arr, part);
		sys = json_object_new_object();
		json_object_object_add(sys, "role", json_object_new_string("system"));
		json_object_object_add(sys, "content", arr);
		nm = json_object_new_array();
		json_object_array_add(nm, sys);
		for (i = 0; i < n; i++) {
			m = json_object_array_get_idx(msgs, i);
			if (!is_system(m))
				json_object_array_add(nm, json_object_get(m));
		}
		json_object_object_add(body, "messages", nm);
		free(merged);
	}
	if (stream) {
		json_object *so;
		if (!json_object_object_get_ex(body, "stream_options", &so) ||
		    !json_object_is_type(so, json_type_object)) {
			so = json_object_new_object();
			json_object_object_add(body, "stream_options", so);
		}
		json_object_object_add(so, "include_usage",
		    json_object_new_boolean(1));
	}
	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (json_object_object_get_ex(body, caps[i], &v) &&
		    json_object_is_type(v, json_type_int) &&
		    json_object_get_int64(v) > QWEN_OUTPUT_LIMIT)
			json_object_object_add(body, caps[i],
			    json_object_new_int(QWEN_OUTPUT_LIMIT));
}

/* ---- classification ---- */

static int
contains_ci(const char *h, const char *n)
{
	return h != NULL && strcasestr(h, n) != NULL;
}

enum relay_class
relay_classify(long st, const char *body)
{
	json_object	*o = NULL, *e, *v;
	const char	*code = NULL, *type = NULL, *msg = NULL;
	int		 quota;
	enum relay_class c;

	if (st >= 200 && st < 300)
		return RC_OK;
	if (body != NULL && (o = json_tokener_parse(body)) != NULL &&
	    json_object_object_get_ex(o, "error", &e)) {
		if (json_object_is_type(e, json_type_object)) {
			if (json_object_object_get_ex(e, "code", &v))
				code = json_object_get_string(v);
			if (json_object_object_get_ex(e, "type", &v))
				type = json_object_get_string(v);
			if (json_object_object_get_ex(e, "message", &v))
				msg = json_object_get_string(v);
		} else
			msg = json_object_get_string(e);
	}
	quota = contains_ci(code, "insufficient_quota") ||
	    contains_ci(code, "quota_exceeded") ||
	    contains_ci(type, "insufficient_quota") ||
	    contains_ci(type, "quota_exceeded") ||
	    contains_ci(msg, "quota exceeded") ||
	    contains_ci(msg, "allocated quota");
	if (st == 429)
		c = quota ? RC_QUOTA : RC_RATE;
	else if (st == 403)
		c = quota ? RC_QUOTA : RC_AUTH;
	else if (st == 401)
		c = RC_AUTH;
	else if (st >= 500 || st == 408)
		c = RC_FAULT;
	else
		c = RC_CLIENT;
	json_object_put(o);
	return c;
}

/* ---- writing to the client ---- */

static int
open_sse(struct relay *rl)
{
	if (rl->r->opened)
		return 0;
	return resp_open(rl->r, 200, "text/event-stream",
	    "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
}

/* Pick usage out of one SSE line, if it has any. */
static void
sse_line(struct relay *rl, const char *p, size_t n)
{
	json_object	*o, *u, *v;

	if (n < 6 || strncmp(p, "data:", 5) != 0 ||
	    memmem(p, n, "\"usage\"", 7) == NULL)
		return;
	char *s = xstrndup(p + 5, n - 5);
	if ((o = json_tokener_parse(s)) != NULL &&
	    json_object_object_get_ex(o, "usage", &u) &&
	    json_object_is_type(u, json_type_object)) {
		if (json_object_object_get_ex(u, "prompt_tokens", &v))
			rl->prompt_tokens = json_object_get_int64(v);
		if (json_object_object_get_ex(u, "completion_tokens", &v))
			rl->completion_tokens = json_object_get_int64(v);
	}
	json_object_put(o);
	free(s);
}

static int
on_data(void *arg, const char *p, size_t n)
{
	struct relay	*rl = arg;
	size_t		 i, start = 0;

	if (open_sse(rl) != 0 || resp_write(rl->r, p, n) != 0 ||
	    resp_flush(rl->r) != 0)
		return -1;		/* the client is gone: stop upstream now */
	rl->data_sent = 1;
	rl->last_write = mono_ms();
	for (i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (rl->linelen > 0) {
			size_t add = i - start;
			if (rl->linelen + add < SSE_LINE_MAX) {
				rl->line = xrealloc(rl->line, rl->linelen + add + 1);
				memcpy(rl->line + rl->linelen, p + start, add);
				sse_line(rl, rl->line, rl->linelen + add);
			}
			rl->linelen = 0;
		} else
			sse_line(rl, p + start, i - start);
		start = i + 1;
	}
	if (start < n && rl->linelen + (n - start) < SSE_LINE_MAX) {
		rl->line = xrealloc(rl->line, rl->linelen + (n - start) + 1);
		memcpy(rl->line + rl->linelen, p + start, n - start);
		rl->linelen += n - start;
	}
	return 0;
}

/* While waiting: keep a streaming client's connection alive. */
static int
on_tick(void *arg)
{
	struct relay	*rl = arg;
	int64_t		 ka = rl->r->srv->cfg->sse_keepalive_seconds * 1000;

	if (!rl->stream || mono_ms() - rl->last_write < ka)
		return 0;
	if (open_sse(rl) != 0 || resp_puts(rl->r, ": ping\n\n") != 0 ||
	    resp_flush(rl->r) != 0)
		return -1;
	rl->last_write = mono_ms();
	return 0;
}

/* Sleep ms, ticking every second; -1 if the client went away. */
static int
wait_ms(struct relay *rl, int64_t ms)
{
	int64_t	end = mono_ms() + ms, left;

	while ((left = end - mono_ms()) > 0) {
		usleep((useconds_t)(left > 1000 ? 1000 : left) * 1000);
		if (on_tick(rl) != 0 ||
		    upstream_client_gone(rl->r->srv->upstream))
			return -1;
	}
	return 0;
}

/* ---- one upstream attempt ---- */

struct attempt {
	enum upstream_result	 res;
	struct upstream_call	 call;
};

static char *
build_body(struct relay *rl, const struct account *a)
{
	json_object	*b = NULL;
	const char	*s;
	char		*out;

	if (json_object_deep_copy(rl->r->json, &b, NULL) != 0)
		return NULL;
	json_object_object_add(b, "model", json_object_new_string(rl->model));
	if (strcmp(a->provider, "qwen-oauth") == 0 && rl->kind == RELAY_CHAT)
		relay_adjust_qwen(b, rl->stream);
	s = json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	out = xstrdup(s);
	json_object_put(b);
	return out;
}

static void
attempt_run(struct relay *rl, const struct account *a, const char *token,
    struct attempt *at)
{
	const struct cfg	*cfg = rl->r->srv->cfg;
	char			*url, *base, *body, *auth;
	const char		*hdrs[10];
	size_t			 nh = 0;
	int			 qwen = strcmp(a->provider, "qwen-oauth") == 0;
	char			 err[256];

	memset(at, 0, sizeof(*at));
	base = provider_base_url(cfg, a->provider, a->base_url);
	if (base == NULL || !provider_url_allowed(cfg, base, err, sizeof(err))) {
		log_warn("account %s: %s", a->id, base == NULL ?
		    "no base URL" : err);
		free(base);
		at->res = UP_CONNECT;
		return;
	}
	url = xasprintf("%s/%s", base, rl->kind == RELAY_CHAT ?
	    "chat/completions" : "embeddings");
	free(base);
	body = build_body(rl, a);
	auth = xasprintf("Authorization: Bearer %s", token);
	hdrs[nh++] = auth;
	hdrs[nh++] = "Content-Type: application/json";
	hdrs[nh++] = rl->stream ? "Accept: text/event-stream" :
	    "Accept: application/json";
	if (qwen) {
		hdrs[nh++] = "User-Agent: " QWEN_USER_AGENT;
		hdrs[nh++] = "X-DashScope-UserAgent: " QWEN_USER_AGENT;
		hdrs[nh++] = "X-DashScope-CacheControl: enable";
		hdrs[nh++] = "X-DashScope-AuthType: qwen-oauth";
	} else
		hdrs[nh++] = "User-Agent: qwenrelay/" PACKAGE_VERSION;
	hdrs[nh] = NULL;

	at->call.url = url;
	at->call.headers = hdrs;
	at->call.body = body;
	at->call.body_len = body != NULL ? strlen(body) : 0;
	at->call.stream = rl->stream;
	at->call.connect_timeout_ms = (long)cfg->upstream_connect_timeout_ms;
	at->call.idle_timeout_s = (long)cfg->upstream_idle_timeout_seconds;
	at->call.total_timeout_s = (long)cfg->upstream_total_timeout_seconds;
	at->call.max_response = MAX_RESPONSE;
	at->call.on_data = on_data;
	at->call.on_tick = on_tick;
	at->call.arg = rl;
	at->res = body == NULL ? UP_ERROR :
	    upstream_perform(rl->r->srv->upstream, &at->call);
	at->call.url = NULL;
	at->call.headers = NULL;
	at->call.body = NULL;
	free(url);
	free(body);
	xfree_secret(auth);
}

/* ---- bookkeeping ---- */

/* One attempt on an account: requests, tokens, errors by class. */
static void
count(struct relay *rl, const char *acct, const char *error_class)
{
	struct usage	u;

	if (acct == NULL)
		return;
	memset(&u, 0, sizeof(u));
	u.requests = 1;
	u.when = now_ms();
	if (error_class == NULL) {
		u.prompt_tokens = rl->prompt_tokens;
		u.completion_tokens = rl->completion_tokens;
	} else {
		u.errors = 1;
		u.error_class = error_class;
	}
	store_usage_add(rl->r->srv->st, 'a', acct, &u);
}

/* The client key's view: one request, whatever the rotation behind it. */
static void
count_client(struct relay *rl)
{
	struct usage	u;
	char		cls[16];

	if (rl->r->client == NULL)
		return;
	memset(&u, 0, sizeof(u));
	u.requests = 1;
	u.when = now_ms();
	u.prompt_tokens = rl->prompt_tokens;
	u.completion_tokens = rl->completion_tokens;
	if (rl->r->status >= 400 || rl->r->broken) {
		snprintf(cls, sizeof(cls), "%s", rl->r->broken ? "client_gone" :
		    rl->r->status == 429 ? "rate_limit" :
		    rl->r->status >= 500 ? "upstream" : "client");
		u.errors = 1;
		u.error_class = cls;
	}
	store_usage_add(rl->r->srv->st, 'c', rl->r->client->name, &u);
}

/*
 * Token counts from a non-streamed answer.  Only the "usage" object is
 * parsed, not the whole answer (parsing the answer was a tenth of a chat
 * request's CPU): inside a JSON string every quote is escaped, so the
 * bytes "usage" followed by a colon can only be a key.  The last one is
 * the top-level one (OpenAI puts usage after choices).
 */
static void
usage_from_body(struct relay *rl, const char *body)
{
	json_tokener	*tok;
	json_object	*u, *v;
	const char	*p, *k = NULL;

	if (body == NULL)
		return;
	for (p = body; (p = strstr(p, "\"usage\"")) != NULL; ) {
		p += 7;
		p += strspn(p, " \t\r\n");
		if (*p == ':')
			k = p + 1 + strspn(p + 1, " \t\r\n");
	}
	if (k == NULL || *k != '{' || (tok = json_tokener_new_ex(4)) == NULL)
		return;
	u = json_tokener_parse_ex(tok, k, (int)strnlen(k, 1 << 16));
	json_tokener_free(tok);
	if (u == NULL)
		return;
	if (json_object_object_get_ex(u, "prompt_tokens", &v))
		rl->prompt_tokens = json_object_get_int64(v);
	if (json_object_object_get_ex(u, "completion_tokens", &v))
		rl->completion_tokens = json_object_get_int64(v);
	json_object_put(u);
}

/* Consecutive hits recorded on (account, model). */
static int64_t
mark_hits(struct server *srv, const char *acct, const char *model)
{
	struct mark	*m;
	size_t		 n, i;
	int64_t		 hits = 0;

	if (store_mark_list(srv->st, &m, &n) != 0)
		return 0;
	for (i = 0; i < n; i++)
		if (strcmp(m[i].account, acct) == 0 &&
		    strcmp(m[i].model, model) == 0)
			hits = m[i].hits;
	mark_list_free(m, n);
	return hits;
}

static int64_t
backoff_ms(const struct cfg *c, int64_t hits)
{
	int64_t	ms = c->exponential_backoff_base_ms;

	while (hits-- > 0 && ms < c->exponential_backoff_max_ms)
		ms *= 2;
	return ms < c->exponential_backoff_max_ms ? ms :
	    c->exponential_backoff_max_ms;
}

static void
park(struct relay *rl, const char *acct, int64_t until, int64_t hits,
    const char *reason)
{
	struct mark	m;

	memset(&m, 0, sizeof(m));
	snprintf(m.account, sizeof(m.account), "%s", acct);
	m.model = (char *)(uintptr_t)rl->model;
	m.resets_at = until;
	m.hits = hits;
	m.reason = (char *)(uintptr_t)reason;
	store_mark_set(rl->r->srv->st, &m);
	log_info("account %s parked for %s until +%llds (%s)", acct,
	    rl->model, (long long)((until - now_ms()) / 1000), reason);
}

/* Answer with an upstream's non-2xx body as it came (it is OpenAI-shaped). */
static void
relay_upstream_error(struct relay *rl, struct attempt *at)
{
	if (rl->r->opened) {
		resp_error(rl->r, (int)at->call.status, "upstream_error",
		    "upstream_error", "The provider answered %ld.",
		    at->call.status);
		return;
	}
	if (at->call.resp != NULL) {
		json_object	*o = json_tokener_parse(at->call.resp), *e;
		int		 shaped = o != NULL &&
		    json_object_object_get_ex(o, "error", &e);

		json_object_put(o);
		if (shaped) {
			resp_body(rl->r, (int)at->call.status, NULL, NULL,
			    at->call.resp, at->call.resp_len, 0);
			return;
		}
	}
	resp_error(rl->r, at->call.status >= 500 ? 502 : (int)at->call.status,
	    "upstream_error", "upstream_error",
	    "The provider answered %ld with a body that is not an OpenAI "
	    "error.", at->call.status);
}

/*
 * The openai SDKs ask for encoding_format "base64" by default and decode
 * what comes back; a provider that ignores the field answers float arrays,
 * which the SDK would decode into garbage.  Give the client what it asked
 * for: float32 little-endian, base64.  Returns a new body or NULL.
 */
static char *
embeddings_as_base64(struct relay *rl, const char *body)
{
	json_object	*fmt, *o, *data, *d, *e;
	size_t		 i, j, n, m;
	char		*out = NULL;
	int		 changed = 0;

	if (!json_object_object_get_ex(rl->r->json, "encoding_format", &fmt) ||
	    !json_object_is_type(fmt, json_type_string) ||
	    strcmp(json_object_get_string(fmt), "base64") != 0 ||
	    (o = json_tokener_parse(body)) == NULL)
		return NULL;
	if (json_object_object_get_ex(o, "data", &data) &&
	    json_object_is_type(data, json_type_array)) {
		n = json_object_array_length(data);
		for (i = 0; i < n; i++) {
			d = json_object_array_get_idx(data, i);
			if (!json_object_object_get_ex(d, "embedding", &e) ||
			    !json_object_is_type(e, json_type_array))
				continue;
			m = json_object_array_length(e);
			unsigned char *buf = xcalloc(m ? m : 1, 4);
			for (j = 0; j < m; j++) {
				float f = (float)json_object_get_double(
				    json_object_array_get_idx(e, j));
				uint32_t u;
				memcpy(&u, &f, 4);
				buf[4 * j] = (unsigned char)u;
				buf[4 * j + 1] = (unsigned char)(u >> 8);
				buf[4 * j + 2] = (unsigned char)(u >> 16);
				buf[4 * j + 3] = (unsigned char)(u >> 24);
			}
			char *b64 = b64_encode(buf, m * 4);
			free(buf);
			json_object_object_add(d, "embedding",
			    json_object_new_string(b64));
			free(b64);
			changed = 1;
		}
	}
	if (changed)
		out = xstrdup(json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return out;
}

static void
answer_success(struct relay *rl, struct attempt *at)
{
	char	*conv;

	if (rl->stream) {
		/* Streamed already; an empty 2xx still needs headers. */
		open_sse(rl);
		return;
	}
	usage_from_body(rl, at->call.resp);
	if (rl->kind == RELAY_EMBED &&
	    (conv = embeddings_as_base64(rl, at->call.resp)) != NULL) {
		free(at->call.resp);
		at->call.resp = conv;
		at->call.resp_len = strlen(conv);
	}
	resp_body(rl->r, (int)at->call.status, at->call.content_type[0] ?
	    at->call.content_type : NULL, NULL, at->call.resp,
	    at->call.resp_len, 0);
}

/*
 * The embedding models active accounts serve, "a, b" (caller frees), or
 * NULL when there are none.
 */
static char *
embed_models(struct req *r)
{
	struct account	 **l;
	const char	 **seen;
	char		  *out = NULL, *next;
	size_t		   n, i, j, k, ns = 0;

	if (store_account_list_bare(r->srv->st, &l, &n) != 0)
		return NULL;
	for (i = 0, k = 0; i < n; i++)
		for (j = 0; l[i]->models[j] != NULL; j++)
			k++;
	seen = xcalloc(k + 1, sizeof(*seen));
	for (i = 0; i < n; i++) {
		if (strcmp(l[i]->status, "active") != 0)
			continue;
		for (j = 0; l[i]->models[j] != NULL; j++) {
			const char *m = l[i]->models[j];
			if (!provider_is_embed_model(provider_find(
			    l[i]->provider), m))
				continue;
			for (k = 0; k < ns && strcmp(seen[k], m) != 0; k++)
				;
			if (k < ns)
				continue;
			seen[ns++] = m;
			next = xasprintf("%s%s%s", out ? out : "",
			    out ? ", " : "", m);
			free(out);
			out = next;
		}
	}
	free(seen);
	account_list_free(l, n);
	return out;
}

static void
no_account(struct relay *rl, const struct select_result *sr,
    int64_t waited_ms, const char *last_err)
{
	struct req	*r = rl->r;
	char		 when[32], hdr[64];
	int64_t		 wait;

	if (sr->total == 0) {
		resp_error(r, 503, "server_error", "no_accounts",
		    "The pool has no accounts. Add one: 'qwenrelay accounts "
		    "login' (Qwen) or 'qwenrelay accounts add --provider P' "
		    "(API key).");
		return;
	}
	if (sr->serving == 0 && rl->kind == RELAY_EMBED) {
		char *names = embed_models(r);
		resp_error(r, 400, "invalid_request_error", "model_not_found",
		    "No active account serves embedding model '%.100s'. %s%s",
		    rl->model, names != NULL ? "Models that can embed here: " :
		    "No account serves an embedding model; add one with "
		    "'qwenrelay accounts add ... --models NAME'.",
		    names != NULL ? names : "");
		free(names);
		return;
	}
	if (sr->serving == 0) {
		resp_error(r, 404, "invalid_request_error", "model_not_found",
		    "No active account serves model '%.100s'. See GET "
		    "/v1/models for the models the pool serves.", rl->model);
		return;
	}
	if (sr->limited > 0 && last_err == NULL) {
		wait = sr->earliest_reset - now_ms();
		if (wait < 0)
			wait = 0;
		fmt_utc(sr->earliest_reset, when, sizeof(when));
		snprintf(hdr, sizeof(hdr), "Retry-After: %lld\r\n",
		    (long long)((wait + 999) / 1000));
		resp_error_h(r, 429, hdr, "rate_limit_exceeded",
		    "rate_limit_exceeded", "Every account that serves '%.100s' "
		    "is rate limited or out of quota%s. The earliest resets at "
		    "%s (in %llds); retry then, or add accounts.", rl->model,
		    waited_ms > 0 ? " (after waiting)" : "", when,
		    (long long)((wait + 999) / 1000));
		return;
	}
	resp_error(r, 503, "server_error", "no_usable_account",
	    "No account could serve this request%s%s. Check 'qwenrelay "
	    "accounts list'; accounts marked needs_login need 'qwenrelay "
	    "accounts login'.", last_err ? ": " : "", last_err ? last_err : "");
}

int
relay_request(struct req *r, enum relay_kind kind, const char *model)
{
	const struct cfg	*cfg = r->srv->cfg;
	struct relay		 rl;
	struct select_result	 sr;
	struct attempt		 at;
	struct account		*a = NULL;
	char			 skip[MAX_ATTEMPTS][24], err[256];
	char			*token = NULL;
	const char		*last_err = NULL;
	size_t			 nskip = 0;
	int64_t			 waited = 0, until, hits, after;
	int			 faults = 0, attempts = 0, same_retries = 0;
	int			 forced = 0, rc;
	enum relay_class	 cls;
	json_object		*s;

	memset(&rl, 0, sizeof(rl));
	rl.r = r;
	rl.kind = kind;
	rl.model = model;
	rl.last_write = mono_ms();
	rl.stream = kind == RELAY_CHAT &&
	    json_object_object_get_ex(r->json, "stream", &s) &&
	    json_object_get_boolean(s);

	if (r->srv->upstream == NULL)
		r->srv->upstream = upstream_new();
	if (r->srv->upstream == NULL || r->srv->st == NULL) {
		resp_error(r, 503, "server_error", "unavailable",
		    "The gateway cannot reach its store or HTTP client; see "
		    "the server log.");
		return 0;
	}

	while (attempts++ < MAX_ATTEMPTS) {
		if (a == NULL) {
			rc = select_account(r->srv, model, skip, nskip, &sr);
			if (rc == -ENOENT && sr.limited > 0 && last_err == NULL &&
			    sr.limited + nskip >= sr.serving) {
				int64_t w = sr.earliest_reset - now_ms();
				if (w < 0)
					w = 0;
				if (waited + w <= cfg->max_rate_limit_wait_seconds
				    * 1000) {
					if (wait_ms(&rl, w + 50) != 0)
						goto out;
					waited += w + 50;
					nskip = 0;	/* the parked ones are back */
					continue;
				}
			}
			if (rc != 0) {
				if (rc == -ENOENT)
					no_account(&rl, &sr, waited, last_err);
				else
					resp_error(r, 503, "server_error",
					    "store_error", "Cannot read the "
					    "accounts: %s.", store_strerror(rc));
				count(&rl, NULL, "no_account");
				goto out;
			}
			a = sr.acct;
			same_retries = 0;
			forced = 0;
		}
		if (token == NULL) {
			rc = refresh_ensure(r->srv, a->id, forced, &token, err,
			    sizeof(err));
			if (rc != 0) {
				log_warn("account %s: %s", a->id, err);
				last_err = "an account's token could not be "
				    "refreshed";
				goto next_account;
			}
		}

		attempt_run(&rl, a, token, &at);
		if (at.res == UP_ABORTED) {
			log_info("client went away; upstream closed");
			count(&rl, a->id, "client_gone");
			upstream_call_done(&at.call);
			goto out;
		}
		if (at.res != UP_OK) {
			faults++;
			last_err = at.res == UP_TIMEOUT ? "the provider timed "
			    "out" : "the provider could not be reached";
			log_warn("account %s: upstream %s: %s", a->id,
			    at.res == UP_TIMEOUT ? "timeout" : "error",
			    at.call.errbuf);
			count(&rl, a->id, at.res == UP_TIMEOUT ? "timeout" :
			    "upstream");
			upstream_call_done(&at.call);
			if (rl.data_sent || faults > cfg->upstream_retries) {
				resp_error(r, at.res == UP_TIMEOUT ? 504 : 502,
				    "upstream_error", at.res == UP_TIMEOUT ?
				    "upstream_timeout" : "upstream_unreachable",
				    "%s%s.", last_err, rl.data_sent ?
				    " mid-answer" : " (after retries)");
				goto out;
			}
			goto next_account;
		}

		cls = relay_classify(at.call.status, at.call.resp);
		switch (cls) {
		case RC_OK:
			answer_success(&rl, &at);
			count(&rl, a->id, NULL);
			/*
			 * Success ends a run of hits: the next backoff starts
			 * low.  The selection already read the marks.
			 */
			if (sr.hits > 0)
				store_mark_clear(r->srv->st, a->id, model);
			upstream_call_done(&at.call);
			goto out;
		case RC_CLIENT:
			relay_upstream_error(&rl, &at);
			count(&rl, a->id, "client");
			upstream_call_done(&at.call);
			goto out;
		case RC_FAULT:
			faults++;
			count(&rl, a->id, "upstream");
			last_err = "the provider failed";
			if (faults > cfg->upstream_retries) {
				relay_upstream_error(&rl, &at);
				upstream_call_done(&at.call);
				goto out;
			}
			upstream_call_done(&at.call);
			goto next_account;
		case RC_AUTH:
			count(&rl, a->id, "auth");
			upstream_call_done(&at.call);
			if (!forced && provider_find(a->provider) != NULL &&
			    provider_find(a->provider)->oauth) {
				/* Refresh once, retry once. */
				forced = 1;
				xfree_secret(token);
				token = NULL;
				continue;
			}
			park(&rl, a->id, now_ms() + 60000, 1, "auth");
			last_err = "an account's credentials were rejected";
			goto next_account;
		case RC_RATE:
		case RC_QUOTA: {
			int quota = cls == RC_QUOTA;
			count(&rl, a->id, quota ? "quota" : "rate_limit");
			hits = mark_hits(r->srv, a->id, model);
			after = upstream_retry_after_ms(&at.call, now_ms());
			upstream_call_done(&at.call);
			if (after < 0)
				after = quota ?
				    cfg->quota_cooldown_seconds * 1000 :
				    backoff_ms(cfg, hits);
			if (after <= cfg->retry_same_account_threshold_seconds *
			    1000 && same_retries == 0) {
				same_retries++;
				if (wait_ms(&rl, after) != 0)
					goto out;
				waited += after;
				continue;
			}
			if (!cfg->switch_on_first_rate_limit &&
			    same_retries == 0 && !quota) {
				int64_t b = backoff_ms(cfg, hits);
				same_retries++;
				if (wait_ms(&rl, b) != 0)
					goto out;
				waited += b;
				continue;
			}
			until = now_ms() + after;
			park(&rl, a->id, until, hits + 1, quota ? "quota" :
			    "rate_limit");
			goto next_account;
		}
		}
next_account:
		if (nskip < MAX_ATTEMPTS)
			snprintf(skip[nskip++], sizeof(skip[0]), "%s", a->id);
		account_free(a);
		a = NULL;
		xfree_secret(token);
		token = NULL;
	}
	if (!r->opened)
		resp_error(r, 502, "upstream_error", "too_many_attempts",
		    "Gave up after %d attempts.", MAX_ATTEMPTS);
out:
	count_client(&rl);
	account_free(a);
	xfree_secret(token);
	free(rl.line);
	return 0;
}
