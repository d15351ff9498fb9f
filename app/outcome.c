/*
 * outcome.c: filling the per-request outcome record (outcome.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "outcome.h"
#include "req.h"
#include "store.h"

static const struct {
	const char		*cls;	/* the relay's error class */
	enum rotation_reason	 why;
} classes[] = {
	{ "rate_limit", ROT_RATE_LIMIT },
	{ "quota", ROT_QUOTA },
	{ "billing", ROT_BILLING },
	{ "auth", ROT_AUTH },
	{ "upstream", ROT_UPSTREAM },
	{ "timeout", ROT_TIMEOUT },
	{ "refresh", ROT_REFRESH },
};

static const char *const reason_names[ROT__MAX] = {
	[ROT_RATE_LIMIT] = "rate_limit",
	[ROT_QUOTA] = "quota",
	[ROT_AUTH] = "auth",
	[ROT_BILLING] = "billing",
	[ROT_UPSTREAM] = "upstream_error",
	[ROT_TIMEOUT] = "timeout",
	[ROT_REFRESH] = "refresh_failed",
};

const char *
outcome_reason_name(enum rotation_reason r)
{
	return (unsigned int)r < ROT__MAX ? reason_names[r] : "other";
}

void
outcome_model(struct req *r, const char *model)
{
	snprintf(r->out.model, sizeof(r->out.model), "%s",
	    model != NULL ? model : "");
	r->out.last_reason = -1;
}

void
outcome_attempt(struct req *r, const struct account *a, long status,
    int64_t ms)
{
	r->out.attempts++;
	r->out.upstream_status = (int)status;
	r->out.upstream_ms += ms;
	r->out.upstream_last_ms = ms;
	snprintf(r->out.account, sizeof(r->out.account), "%s", a->id);
	snprintf(r->out.provider, sizeof(r->out.provider), "%s",
	    a->provider != NULL ? a->provider : "");
}

void
outcome_class(struct req *r, const char *cls)
{
	size_t	i;

	r->out.last_reason = -1;
	for (i = 0; cls != NULL && i < sizeof(classes) / sizeof(classes[0]);
	    i++)
		if (strcmp(cls, classes[i].cls) == 0)
			r->out.last_reason = (int)classes[i].why;
}

void
outcome_rotated(struct req *r)
{
	if (r->out.last_reason >= 0 && r->out.last_reason < ROT__MAX)
		r->out.rotations[r->out.last_reason]++;
}

void
outcome_tokens(struct req *r, int64_t in, int64_t out)
{
	r->out.tokens_in = in;
	r->out.tokens_out = out;
}

int
outcome_usage(struct req *r, char kind, const char *id,
    const struct usage *u)
{
	struct outcome_usage	*q;

	if (r->out.nusage >= OUTCOME_USAGE_MAX ||
	    strlen(id) >= sizeof(q->id) || (u->error_class != NULL &&
	    strlen(u->error_class) >= sizeof(q->error_class)))
		return store_usage_add(r->srv->st, kind, id, u);
	q = &r->out.usage[r->out.nusage++];
	q->kind = kind;
	snprintf(q->id, sizeof(q->id), "%s", id);
	snprintf(q->error_class, sizeof(q->error_class), "%s",
	    u->error_class != NULL ? u->error_class : "");
	q->requests = u->requests;
	q->errors = u->errors;
	q->prompt_tokens = u->prompt_tokens;
	q->completion_tokens = u->completion_tokens;
	q->when = u->when;
	return 0;
}
