/*
 * relay.c: the gateway's main path, the I/O half.
 *
 *   pick an account -> make sure its token is fresh -> send -> classify
 *   -> relay_decide() -> do what it said
 *
 * Every choice (deliver, wait and retry, refresh, park and move on, wait
 * for a parked account, fail) is relay_decide()'s (relay_decide.c, pure,
 * table-tested); what differs between providers is their table's
 * (provider.h).  This file selects, sends, streams, waits, parks, counts
 * and writes the answers.  Once bytes went to the client, no retry.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "accounts.h"
#include "cfg.h"
#include "key_limits.h"
#include "log.h"
#include "outcome.h"
#include "provider.h"
#include "refresh.h"
#include "relay.h"
#include "req.h"
#include "select.h"
#include "store.h"
#include "upcheck.h"
#include "upstream.h"
#include "util.h"
#include "xmalloc.h"

#define MAX_RESPONSE		(64u << 20)
#define MAX_ATTEMPTS		32
#define SSE_EVENT_MAX		(1u << 20)

struct relay {
	struct req		*r;
	enum relay_kind		 kind;
	const char		*model;
	struct client_wants	 wants;		/* what the client's body asked */
	int			 stream;
	int64_t			 last_write;	/* mono ms of the last byte to the client */
	int			 data_sent;	/* upstream bytes reached the client */
	int			 sse_checked;	/* the stream's first bytes were */
	char			 bad_answer[128]; /* why a 2xx was refused, or "" */
	char			*ev;		/* SSE event being assembled */
	size_t			 evlen, evcap;
	size_t			 linestart;	/* offset of the current line in ev */
	int64_t			 prompt_tokens;
	int64_t			 completion_tokens;
};

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
	json_object	*o;

	if (n < 6 || strncmp(p, "data:", 5) != 0 ||
	    memmem(p, n, "\"usage\"", 7) == NULL)
		return;
	char *s = xstrndup(p + 5, n - 5);
	if ((o = json_tokener_parse(s)) != NULL &&
	    upcheck_usage(o, &rl->prompt_tokens, &rl->completion_tokens))
		log_warn("upstream sent unbelievable usage; counted as 0");
	json_object_put(o);
	free(s);
}

/* Bytes to the client; -1 when it is gone. */
static int
emit(struct relay *rl, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (open_sse(rl) != 0 || resp_write(rl->r, p, n) != 0 ||
	    resp_flush(rl->r) != 0)
		return -1;
	rl->data_sent = 1;
	rl->last_write = mono_ms();
	return 0;
}

/*
 * One whole event is in rl->ev: count its usage, then relay it unless it
 * is a usage-only chunk the client did not ask for.
 */
static int
event_done(struct relay *rl)
{
	size_t	i, start = 0, n = rl->evlen;
	int	rc = 0;

	for (i = 0; i < n; i++)
		if (rl->ev[i] == '\n') {
			sse_line(rl, rl->ev + start, i - start);
			start = i + 1;
		}
	if (start < n)
		sse_line(rl, rl->ev + start, n - start);
	if (!relay_drop_event(rl->ev, n, &rl->wants))
		rc = emit(rl, rl->ev, n);
	rl->evlen = rl->linestart = 0;
	return rc;
}

static void
ev_append(struct relay *rl, const char *p, size_t n)
{
	if (rl->evlen + n + 1 > rl->evcap) {
		rl->evcap = (rl->evlen + n + 1) * 2;
		rl->ev = xrealloc(rl->ev, rl->evcap);
	}
	memcpy(rl->ev + rl->evlen, p, n);
	rl->evlen += n;
	rl->ev[rl->evlen] = '\0';
}

/*
 * A piece of a streamed 2xx body: assembled into events (ended by a blank
 * line), each relayed whole.  An event too long to hold goes out as is.
 */
static int
on_data(void *arg, const char *p, size_t n)
{
	struct relay	*rl = arg;
	const char	*nl, *end = p + n;
	size_t		 len;

	if (!rl->sse_checked && n > 0) {
		rl->sse_checked = 1;
		if (upcheck_sse_start(p, n, rl->bad_answer,
		    sizeof(rl->bad_answer)) != 0)
			return -1;	/* nothing sent yet: answer 502 */
	}
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			ev_append(rl, p, (size_t)(end - p));
			break;
		}
		ev_append(rl, p, (size_t)(nl - p) + 1);
		p = nl + 1;
		len = rl->evlen - rl->linestart;
		if (len == 1 || (len == 2 && rl->ev[rl->linestart] == '\r')) {
			if (event_done(rl) != 0)
				return -1;	/* the client is gone: stop now */
		} else
			rl->linestart = rl->evlen;
	}
	if (rl->evlen > SSE_EVENT_MAX) {
		if (emit(rl, rl->ev, rl->evlen) != 0)
			return -1;
		rl->evlen = rl->linestart = 0;
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
build_body(struct relay *rl, const struct provider *p)
{
	json_object	*b = NULL, *m = NULL;
	const char	*s;
	char		*out;

	if (p->adjust_body == NULL) {
		/* Only "model" differs: swap it in, serialise, put it back
		   (no deep copy of the request: half of building a body). */
		b = rl->r->json;
		if (json_object_object_get_ex(b, "model", &m))
			json_object_get(m);
		json_object_object_add(b, "model",
		    json_object_new_string(rl->model));
		out = xstrdup(json_object_to_json_string_ext(b,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		if (m != NULL)
			json_object_object_add(b, "model", m);
		else
			json_object_object_del(b, "model");
		return out;
	}
	if (json_object_deep_copy(rl->r->json, &b, NULL) != 0)
		return NULL;
	json_object_object_add(b, "model", json_object_new_string(rl->model));
	if (p->adjust_body != NULL)
		p->adjust_body(b, rl->kind == RELAY_CHAT ? PCALL_CHAT :
		    PCALL_EMBED, &rl->wants);
	s = json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	out = xstrdup(s);
	json_object_put(b);
	return out;
}

static void
attempt_run(struct relay *rl, const struct account *a,
    const struct provider *p, const char *token, struct attempt *at)
{
	const struct cfg	*cfg = rl->r->srv->cfg;
	char			*url, *base, *body, *auth;
	const char		*hdrs[16];
	size_t			 nh = 0;
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
	body = build_body(rl, p);
	auth = xasprintf("Authorization: Bearer %s", token);
	hdrs[nh++] = auth;
	hdrs[nh++] = "Content-Type: application/json";
	hdrs[nh++] = rl->stream ? "Accept: text/event-stream" :
	    "Accept: application/json";
	nh = p->add_headers(hdrs, nh, sizeof(hdrs) / sizeof(hdrs[0]) - 1);
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
	int64_t t0 = mono_ms();
	at->res = body == NULL ? UP_ERROR :
	    upstream_perform(rl->r->srv->upstream, &at->call);
	outcome_attempt(rl->r, a, at->call.status, mono_ms() - t0);
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

	outcome_class(rl->r, error_class);
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
	outcome_usage(rl->r, 'a', acct, &u);
}

/* The client key's view: one request, whatever the rotation behind it. */
static void
count_client(struct relay *rl)
{
	struct usage	u;
	char		cls[16];

	outcome_tokens(rl->r, rl->prompt_tokens, rl->completion_tokens);
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
	outcome_usage(rl->r, 'c', rl->r->client->name, &u);
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
	int		 bad = 0;

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
		rl->prompt_tokens = upcheck_tokens(v, &bad);
	if (json_object_object_get_ex(u, "completion_tokens", &v))
		rl->completion_tokens = upcheck_tokens(v, &bad);
	if (bad)
		log_warn("upstream sent unbelievable usage; counted as 0");
	json_object_put(u);
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
	/* Only error statuses are relayed as errors (no 1xx/2xx/3xx/6xx+). */
	if (at->call.status < 400 || at->call.status > 599) {
		resp_error(rl->r, 502, "upstream_error", "upstream_error",
		    "The provider answered with status %ld, which is not an "
		    "answer to this request.", at->call.status);
		return;
	}
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

/*
 * A 2xx the protocol does not allow (upcheck.c): the reason in
 * rl->bad_answer, and 1; else 0.  Streams were checked as they started.
 */
static int
answer_malformed(struct relay *rl, const struct attempt *at)
{
	if (rl->stream)
		return rl->bad_answer[0] != '\0';
	return upcheck_body(rl->kind == RELAY_EMBED ? UPCHECK_EMBED :
	    UPCHECK_CHAT, at->call.resp, at->call.resp_len, rl->bad_answer,
	    sizeof(rl->bad_answer)) != 0;
}

static void
answer_success(struct relay *rl, struct attempt *at)
{
	char	*conv;

	if (rl->stream) {
		/* Streamed already, but for a last event without its blank
		   line; an empty 2xx still needs headers. */
		if (rl->evlen > 0)
			event_done(rl);
		open_sse(rl);
		return;
	}
	if (rl->kind == RELAY_EMBED &&
	    (conv = embeddings_as_base64(rl, at->call.resp)) != NULL) {
		free(at->call.resp);
		at->call.resp = conv;
		at->call.resp_len = strlen(conv);
	}
	resp_body(rl->r, (int)at->call.status,
	    upcheck_content_type(at->call.content_type), NULL, at->call.resp,
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
		for (j = 0; account_models(l[i])[j] != NULL; j++)
			k++;
	seen = xcalloc(k + 1, sizeof(*seen));
	for (i = 0; i < n; i++) {
		if (l[i]->state != ACCT_ACTIVE)
			continue;
		for (j = 0; account_models(l[i])[j] != NULL; j++) {
			const char *m = account_models(l[i])[j];
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

/* Answer a failure the decision named. */
static void
fail(struct relay *rl, enum relay_fail f, const struct select_result *sr,
    int64_t waited_ms, const char *last_err)
{
	struct req	*r = rl->r;
	char		 when[32], hdr[64], msg[512];
	int64_t		 wait;
	char		*names;

	switch (f) {
	case FAIL_NO_ACCOUNTS:
		resp_error(r, 503, "server_error", "no_accounts",
		    "The pool has no accounts. Add one: 'qwenrelay accounts "
		    "login' (Qwen) or 'qwenrelay accounts add --provider P' "
		    "(API key).");
		return;
	case FAIL_NOT_SERVED:
		if (select_unusable(sr, rl->model, msg, sizeof(msg))) {
			resp_error(r, 503, "server_error", "no_usable_account",
			    "%s", msg);
			return;
		}
		if (rl->kind == RELAY_EMBED) {
			names = embed_models(r);
			resp_error(r, 400, "invalid_request_error",
			    "model_not_found", "No active account serves "
			    "embedding model '%.100s'. %s%s", rl->model,
			    names != NULL ? "Models that can embed here: " :
			    "No account serves an embedding model; add one "
			    "with 'qwenrelay accounts add ... --models NAME'.",
			    names != NULL ? names : "");
			free(names);
			return;
		}
		resp_error(r, 404, "invalid_request_error", "model_not_found",
		    "No active account serves model '%.100s'. See GET "
		    "/v1/models for the models the pool serves.", rl->model);
		return;
	case FAIL_LIMITED:
		wait = sr->earliest_reset - now_ms();
		if (wait < 0)
			wait = 0;
		fmt_utc(sr->earliest_reset, when, sizeof(when));
		snprintf(hdr, sizeof(hdr), "Retry-After: %lld\r\n",
		    (long long)((wait + 999) / 1000));
		resp_error_h(r, 429, hdr, "rate_limit_exceeded",
		    "rate_limit_exceeded", "Every account that serves '%.100s' "
		    "is rate limited, out of quota or out of credit%s. The "
		    "earliest resets at %s (in %llds); retry then, or add "
		    "accounts.", rl->model,
		    waited_ms > 0 ? " (after waiting)" : "", when,
		    (long long)((wait + 999) / 1000));
		return;
	case FAIL_TIMEOUT:
	case FAIL_UNREACHABLE:
		resp_error(r, f == FAIL_TIMEOUT ? 504 : 502, "upstream_error",
		    f == FAIL_TIMEOUT ? "upstream_timeout" :
		    "upstream_unreachable", "%s%s.", f == FAIL_TIMEOUT ?
		    "the provider timed out" : "the provider could not be "
		    "reached", rl->data_sent ? " mid-answer" :
		    " (after retries)");
		return;
	case FAIL_MALFORMED:
		resp_error(r, 502, "upstream_error", "upstream_malformed",
		    "The provider answered with %s; nothing was passed on. "
		    "Retry; if it persists, check the account's provider with "
		    "'qwenrelay accounts list'.", rl->bad_answer);
		return;
	case FAIL_NONE:
	case FAIL_UNUSABLE:
		break;
	}
	resp_error(r, 503, "server_error", "no_usable_account",
	    "No account could serve this request%s%s. Check 'qwenrelay "
	    "accounts list'; accounts marked needs_login need 'qwenrelay "
	    "accounts login'.", last_err ? ": " : "", last_err ? last_err : "");
}

/* The class of an attempt that did not bring an HTTP answer. */
static enum relay_class
transport_class(enum upstream_result res)
{
	switch (res) {
	case UP_OK:
		return RC_OK;
	case UP_ABORTED:
		return RC_GONE;
	case UP_TIMEOUT:
		return RC_TIMEOUT;
	case UP_CONNECT:
	case UP_TOO_LARGE:
	case UP_ERROR:
		break;
	}
	return RC_UNREACHABLE;
}

/* What the client's body asked for, read before any adjustment. */
static void
read_wants(json_object *body, enum relay_kind kind, struct client_wants *w)
{
	json_object	*s, *so, *iu;

	memset(w, 0, sizeof(*w));
	w->stream = kind == RELAY_CHAT &&
	    json_object_object_get_ex(body, "stream", &s) &&
	    json_object_get_boolean(s);
	w->include_usage = json_object_object_get_ex(body, "stream_options",
	    &so) && json_object_is_type(so, json_type_object) &&
	    json_object_object_get_ex(so, "include_usage", &iu) &&
	    json_object_get_boolean(iu);
}

int
relay_request(struct req *r, enum relay_kind kind, const char *model)
{
	const struct cfg	*cfg = r->srv->cfg;
	const struct provider	*prov = NULL;
	struct relay		 rl;
	struct select_result	 sr;
	struct relay_state	 st;
	struct relay_step	 step;
	struct attempt		 at;
	struct account		*a = NULL;
	char			 skip[MAX_ATTEMPTS][24], err[256];
	char			*token = NULL;
	const char		*last_err = NULL;
	size_t			 nskip = 0;
	int64_t			 waited = 0;
	int			 faults = 0, attempts = 0, same_retries = 0;
	int			 refreshed = 0, rc;

	memset(&rl, 0, sizeof(rl));
	memset(&sr, 0, sizeof(sr));
	memset(&at, 0, sizeof(at));
	rl.r = r;
	rl.kind = kind;
	rl.model = model;
	rl.last_write = mono_ms();
	read_wants(r->json, kind, &rl.wants);
	rl.stream = rl.wants.stream;

	outcome_model(r, model);
	if (limits_model_check(r, model) != 0)
		return 0;
	if (r->srv->upstream == NULL)
		r->srv->upstream = upstream_new();
	if (r->srv->upstream == NULL || r->srv->st == NULL) {
		resp_error(r, 503, "server_error", "unavailable",
		    "The gateway cannot reach its store or HTTP client; see "
		    "the server log.");
		return 0;
	}

	while (attempts++ < MAX_ATTEMPTS) {
		memset(&st, 0, sizeof(st));
		st.retry_after_ms = -1;
		st.waited_ms = waited;
		st.had_error = last_err != NULL;
		if (a == NULL) {
			rc = select_account(r->srv, model, skip, nskip, &sr);
			if (rc != 0 && rc != -ENOENT) {
				resp_error(r, 503, "server_error",
				    "store_error", "Cannot read the "
				    "accounts: %s.", store_strerror(rc));
				count(&rl, NULL, "no_account");
				goto out;
			}
			if (rc == -ENOENT) {
				st.cls = RC_NO_ACCOUNT;
				st.total = sr.total;
				st.serving = sr.serving;
				st.limited = sr.limited;
				st.skipped = sr.skipped;
				st.reset_in_ms = sr.earliest_reset - now_ms();
				step = relay_decide(cfg, &st);
				if (step.act == ACT_WAIT_SELECT) {
					if (wait_ms(&rl, step.wait_ms) != 0)
						goto out;
					waited += step.wait_ms;
					nskip = 0;	/* the parked ones are back */
					continue;
				}
				fail(&rl, step.fail, &sr, waited, last_err);
				count(&rl, NULL, "no_account");
				goto out;
			}
			a = sr.acct;
			prov = sr.prov != NULL ? sr.prov :
			    provider_get(PROV_OPENAI_COMPAT);
			same_retries = 0;
			refreshed = 0;
		}
		st.hits = sr.hits;
		st.same_retries = same_retries;
		st.refreshed = refreshed;
		st.can_refresh = prov->refresh != NULL;

		if (token == NULL && (rc = refresh_ensure(r->srv, a->id,
		    refreshed ? REFRESH_FORCE : 0, &token, err,
		    sizeof(err))) != 0) {
			log_warn("account %s: %s", a->id, err);
			last_err = "an account's token could not be refreshed";
			st.cls = RC_NO_TOKEN;
		} else {
			rl.sse_checked = 0;
			rl.bad_answer[0] = '\0';
			attempt_run(&rl, a, prov, token, &at);
			st.cls = at.res == UP_OK ? prov->classify(at.call.status,
			    at.call.resp) : transport_class(at.res);
			/* A 2xx that is not the promised answer. */
			if ((at.res == UP_ABORTED && rl.bad_answer[0] != '\0') ||
			    (st.cls == RC_OK && answer_malformed(&rl, &at))) {
				st.cls = RC_MALFORMED;
				log_warn("account %s: upstream answered %ld with "
				    "%s", a->id, at.call.status, rl.bad_answer);
			}
			/* Usage before count(), which records it. */
			if (st.cls == RC_OK && !rl.stream)
				usage_from_body(&rl, at.call.resp);
			if (at.res == UP_OK)
				st.retry_after_ms = upcheck_retry_after(
				    upstream_retry_after_ms(&at.call, now_ms()));
			else if (at.res != UP_ABORTED)
				log_warn("account %s: upstream %s: %s", a->id,
				    at.res == UP_TIMEOUT ? "timeout" : "error",
				    at.call.errbuf);
			if (st.cls == RC_FAULT || st.cls == RC_TIMEOUT ||
			    st.cls == RC_UNREACHABLE)
				faults++;
			st.faults = faults;
			st.data_sent = rl.data_sent;
			count(&rl, a->id, relay_class_name(st.cls));
		}
		step = relay_decide(cfg, &st);

		switch (step.act) {
		case ACT_DELIVER:
			answer_success(&rl, &at);
			/*
			 * Success ends a run of hits: the next backoff starts
			 * low.  The selection already read the marks.
			 */
			if (sr.hits > 0)
				store_mark_clear(r->srv->st, a->id, model);
			upstream_call_done(&at.call);
			goto out;
		case ACT_RELAY_ERROR:
			relay_upstream_error(&rl, &at);
			upstream_call_done(&at.call);
			goto out;
		case ACT_STOP:
			log_info("client went away; upstream closed");
			upstream_call_done(&at.call);
			goto out;
		case ACT_FAIL:
			if (st.cls != RC_NO_TOKEN)
				upstream_call_done(&at.call);
			fail(&rl, step.fail, &sr, waited, last_err);
			goto out;
		case ACT_WAIT_RETRY:
			upstream_call_done(&at.call);
			same_retries++;
			if (wait_ms(&rl, step.wait_ms) != 0)
				goto out;
			waited += step.wait_ms;
			continue;
		case ACT_REFRESH_RETRY:
			upstream_call_done(&at.call);
			refreshed = 1;
			xfree_secret(token);
			token = NULL;
			continue;
		case ACT_PARK_NEXT:
			if (st.cls != RC_NO_TOKEN)
				upstream_call_done(&at.call);
			park(&rl, a->id, now_ms() + step.park_ms, step.park_hits,
			    step.reason);
			if (st.cls == RC_AUTH)
				last_err = "an account's credentials were "
				    "rejected";
			break;
		case ACT_NEXT:
			if (st.cls != RC_NO_TOKEN)
				upstream_call_done(&at.call);
			if (st.cls == RC_FAULT)
				last_err = "the provider failed";
			else if (st.cls == RC_TIMEOUT)
				last_err = "the provider timed out";
			else if (st.cls == RC_UNREACHABLE)
				last_err = "the provider could not be reached";
			break;
		case ACT_WAIT_SELECT:
			break;
		}
		/* The next account. */
		outcome_rotated(r);
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
	free(rl.ev);
	return 0;
}
