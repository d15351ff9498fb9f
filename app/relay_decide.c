/*
 * relay_decide.c: the relay's decisions as pure functions: what to do
 * after an attempt (relay_decide), and which streamed events the client
 * should not see (relay_drop_event).  No I/O, no store, no clock: the
 * caller passes in what it saw, tests pass in tables.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cfg.h"
#include "relay.h"
#include "xmalloc.h"

#define AUTH_PARK_MS	60000

static int64_t
backoff_ms(const struct cfg *c, int64_t hits)
{
	int64_t	ms = c->exponential_backoff_base_ms;

	while (hits-- > 0 && ms < c->exponential_backoff_max_ms)
		ms *= 2;
	return ms < c->exponential_backoff_max_ms ? ms :
	    c->exponential_backoff_max_ms;
}

static struct relay_step
act(enum relay_action a)
{
	struct relay_step	st;

	memset(&st, 0, sizeof(st));
	st.act = a;
	return st;
}

static struct relay_step
fail(enum relay_fail f)
{
	struct relay_step	st = act(ACT_FAIL);

	st.fail = f;
	return st;
}

static struct relay_step
park(int64_t ms, int64_t hits, const char *reason)
{
	struct relay_step	st = act(ACT_PARK_NEXT);

	st.park_ms = ms;
	st.park_hits = hits;
	st.reason = reason;
	return st;
}

static struct relay_step
wait_retry(int64_t ms)
{
	struct relay_step	st = act(ACT_WAIT_RETRY);

	st.wait_ms = ms;
	return st;
}

/* Nothing to try: wait for a parked account, or say why not. */
static struct relay_step
no_account(const struct cfg *c, const struct relay_state *s)
{
	struct relay_step	st;
	int64_t			w = s->reset_in_ms < 0 ? 0 : s->reset_in_ms;

	if (s->limited > 0 && !s->had_error &&
	    s->limited + s->skipped >= s->serving &&
	    s->waited_ms + w <= c->max_rate_limit_wait_seconds * 1000) {
		st = act(ACT_WAIT_SELECT);
		st.wait_ms = w + 50;
		return st;
	}
	if (s->total == 0)
		return fail(FAIL_NO_ACCOUNTS);
	if (s->serving == 0)
		return fail(FAIL_NOT_SERVED);
	if (s->limited > 0 && !s->had_error)
		return fail(FAIL_LIMITED);
	return fail(FAIL_UNUSABLE);
}

struct relay_step
relay_decide(const struct cfg *c, const struct relay_state *s)
{
	int64_t	after;

	switch (s->cls) {
	case RC_OK:
		return act(ACT_DELIVER);
	case RC_CLIENT:
		return act(ACT_RELAY_ERROR);
	case RC_MALFORMED:
		return fail(FAIL_MALFORMED);
	case RC_GONE:
		return act(ACT_STOP);
	case RC_TIMEOUT:
	case RC_UNREACHABLE:
		if (s->data_sent || s->faults > c->upstream_retries)
			return fail(s->cls == RC_TIMEOUT ? FAIL_TIMEOUT :
			    FAIL_UNREACHABLE);
		return act(ACT_NEXT);
	case RC_FAULT:
		if (s->faults > c->upstream_retries)
			return act(ACT_RELAY_ERROR);
		return act(ACT_NEXT);
	case RC_AUTH:
		if (s->can_refresh && !s->refreshed)
			return act(ACT_REFRESH_RETRY);
		return park(AUTH_PARK_MS, 1, "auth");
	case RC_NO_TOKEN:
		return act(ACT_NEXT);
	case RC_BILLING:
		after = s->retry_after_ms >= 0 ? s->retry_after_ms :
		    c->quota_cooldown_seconds * 1000;
		return park(after, s->hits + 1, "billing");
	case RC_RATE:
	case RC_QUOTA:
		after = s->retry_after_ms >= 0 ? s->retry_after_ms :
		    s->cls == RC_QUOTA ? c->quota_cooldown_seconds * 1000 :
		    backoff_ms(c, s->hits);
		if (after <= c->retry_same_account_threshold_seconds * 1000 &&
		    s->same_retries == 0)
			return wait_retry(after);
		if (!c->switch_on_first_rate_limit && s->same_retries == 0 &&
		    s->cls == RC_RATE)
			return wait_retry(backoff_ms(c, s->hits));
		return park(after, s->hits + 1, s->cls == RC_QUOTA ? "quota" :
		    "rate_limit");
	case RC_NO_ACCOUNT:
		return no_account(c, s);
	case RC__MAX:
		break;
	}
	return fail(FAIL_UNUSABLE);
}

const char *
relay_class_name(enum relay_class c)
{
	static const char *const names[RC__MAX] = {
		[RC_OK] = NULL,
		[RC_RATE] = "rate_limit",
		[RC_QUOTA] = "quota",
		[RC_BILLING] = "billing",
		[RC_AUTH] = "auth",
		[RC_FAULT] = "upstream",
		[RC_CLIENT] = "client",
		[RC_MALFORMED] = "malformed",
		[RC_TIMEOUT] = "timeout",
		[RC_UNREACHABLE] = "upstream",
		[RC_GONE] = "client_gone",
		[RC_NO_TOKEN] = "refresh",
		[RC_NO_ACCOUNT] = "no_account",
	};

	return (unsigned)c < RC__MAX ? names[c] : "unknown";
}

void
relay_adjust_qwen(json_object *body, int stream)
{
	struct client_wants	w;

	memset(&w, 0, sizeof(w));
	w.stream = stream;
	qwen_adjust_body(body, PCALL_CHAT, &w);
}

int
relay_drop_event(const char *ev, size_t len, const struct client_wants *w)
{
	const char	*p, *end = ev + len, *nl;
	json_object	*o, *ch, *u;
	char		*s;
	int		 drop = 0;

	if (!w->stream || w->include_usage)
		return 0;
	/* The event's data line(s); one JSON object per event here. */
	for (p = ev; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if ((size_t)(nl - p) > 5 && strncmp(p, "data:", 5) == 0)
			break;
	}
	if (p >= end || memmem(p, (size_t)(nl - p), "\"usage\"", 7) == NULL)
		return 0;
	s = xstrndup(p + 5, (size_t)(nl - p) - 5);
	if ((o = json_tokener_parse(s)) != NULL &&
	    json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "choices", &ch) &&
	    json_object_is_type(ch, json_type_array) &&
	    json_object_array_length(ch) == 0 &&
	    json_object_object_get_ex(o, "usage", &u) &&
	    json_object_is_type(u, json_type_object))
		drop = 1;
	json_object_put(o);
	free(s);
	return drop;
}
