/*
 * key_limits.c: per-key request and token limits and model lists (key_limits.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cfg.h"
#include "key_limits.h"
#include "log.h"
#include "req.h"
#include "store.h"
#include "util.h"

/* Move the window to bucket number b: buckets that fell out are zeroed. */
static void
roll(int64_t *f, int64_t b)
{
	int64_t	i;

	if (b <= f[0])
		return;		/* same bucket, or the clock stepped back */
	if (b - f[0] >= LIMITS_BUCKETS || f[0] <= 0) {
		memset(f + 1, 0, 2 * LIMITS_BUCKETS * sizeof(*f));
	} else
		for (i = f[0] + 1; i <= b; i++) {
			f[1 + i % LIMITS_BUCKETS] = 0;
			f[1 + LIMITS_BUCKETS + i % LIMITS_BUCKETS] = 0;
		}
	f[0] = b;
}

/*
 * Seconds until the sum of the buckets v (the newest is number b) drops
 * below limit, at time now.
 */
static int64_t
retry_after(const int64_t *v, int64_t b, int64_t limit, int64_t now)
{
	int64_t	sum = 0, i, left, when;

	for (i = 0; i < LIMITS_BUCKETS; i++)
		sum += v[i];
	left = sum;
	/* Oldest first: bucket b-11 expires when bucket b+1 starts. */
	for (i = b - LIMITS_BUCKETS + 1; i <= b; i++) {
		left -= v[((i % LIMITS_BUCKETS) + LIMITS_BUCKETS) %
		    LIMITS_BUCKETS];
		if (left < limit) {
			when = (i + LIMITS_BUCKETS) * LIMITS_BUCKET_MS;
			when = (when - now + 999) / 1000;
			return when < 1 ? 1 : when;
		}
	}
	return LIMITS_BUCKETS * LIMITS_BUCKET_MS / 1000;
}

static int64_t
sum(const int64_t *v)
{
	int64_t	s = 0;
	int	i;

	for (i = 0; i < LIMITS_BUCKETS; i++)
		s += v[i];
	return s;
}

enum limit_verdict
limits_decide(int64_t *f, int64_t now, int64_t rpm, int64_t tpm,
    int64_t *retry_s)
{
	int64_t	b = now / LIMITS_BUCKET_MS;

	*retry_s = 0;
	roll(f, b);
	if (rpm > 0 && sum(f + 1) >= rpm) {
		*retry_s = retry_after(f + 1, f[0], rpm, now);
		return LIMIT_RPM;
	}
	if (tpm > 0 && sum(f + 1 + LIMITS_BUCKETS) >= tpm) {
		*retry_s = retry_after(f + 1 + LIMITS_BUCKETS, f[0], tpm, now);
		return LIMIT_TPM;
	}
	f[1 + f[0] % LIMITS_BUCKETS]++;
	return LIMIT_OK;
}

void
limits_add_tokens(int64_t *f, int64_t now, int64_t tokens)
{
	roll(f, now / LIMITS_BUCKET_MS);
	if (tokens > 0)
		f[1 + LIMITS_BUCKETS + f[0] % LIMITS_BUCKETS] += tokens;
}

int64_t
limits_rpm(const struct cfg *cfg, const struct client_key *k)
{
	if (k != NULL && k->lim.rpm > 0)
		return k->lim.rpm;
	return cfg->client_rate_limit_rpm;
}

static size_t
record_key(char *buf, const char *name)
{
	int	n = snprintf(buf, LIMITS_KEY_MAX, "L%s", name);

	return n > 0 && n < LIMITS_KEY_MAX ? (size_t)n : 0;
}

struct admit {
	int64_t			now, rpm, tpm, retry;
	enum limit_verdict	v;
};

static int
admit_fn(int64_t *f, size_t nf, void *arg)
{
	struct admit	*a = arg;

	(void)nf;
	a->v = limits_decide(f, a->now, a->rpm, a->tpm, &a->retry);
	return 0;	/* written either way: the roll is kept */
}

int
limits_admit(struct req *r)
{
	struct stats_op	op;
	struct admit	a;
	char		key[LIMITS_KEY_MAX], hdr[64];
	int		rc;

	if (r->client == NULL)
		return 0;
	memset(&a, 0, sizeof(a));
	a.rpm = limits_rpm(r->srv->cfg, r->client);
	a.tpm = r->client->lim.tpm;
	if (a.rpm <= 0 && a.tpm <= 0)
		return 0;
	a.now = now_ms();
	memset(&op, 0, sizeof(op));
	if ((op.klen = record_key(key, r->client->name)) == 0)
		return 0;
	op.key = key;
	op.nf = LIMITS_FIELDS;
	op.fn = admit_fn;
	op.arg = &a;
	if ((rc = store_stats_apply(r->srv->st, &op, 1)) != 0) {
		log_warn("key %s: limit not checked: %s", r->client->name,
		    store_strerror(rc));
		return 0;
	}
	if (a.v == LIMIT_OK)
		return 0;
	snprintf(hdr, sizeof(hdr), "Retry-After: %lld\r\n",
	    (long long)a.retry);
	if (a.v == LIMIT_RPM)
		resp_error_h(r, 429, hdr, "requests", "rate_limit_exceeded",
		    "This key made %lld requests in the last minute, its "
		    "limit%s; retry after %lld s (Retry-After).",
		    (long long)a.rpm, r->client->lim.rpm > 0 ? "" :
		    " (client_rate_limit_rpm)", (long long)a.retry);
	else
		resp_error_h(r, 429, hdr, "tokens", "rate_limit_exceeded",
		    "This key used its limit of %lld tokens in the last "
		    "minute; retry after %lld s (Retry-After).",
		    (long long)a.tpm, (long long)a.retry);
	return -1;
}

static int
listed(char *const *l, const char *m)
{
	size_t	i;

	for (i = 0; l[i] != NULL; i++)
		if (strcmp(l[i], m) == 0)
			return 1;
	return 0;
}

int
limits_model_allowed(const struct cfg *cfg, const struct client_key *k,
    const char *model)
{
	if (k == NULL || k->lim.models == NULL)
		return 1;
	return listed(k->lim.models, model) ||
	    listed(k->lim.models, cfg_alias(cfg, model));
}

int
limits_model_check(struct req *r, const char *model)
{
	json_object	*m;
	const char	*asked = NULL;

	if (r->client == NULL || r->client->lim.models == NULL)
		return 0;
	if (json_object_object_get_ex(r->json, "model", &m) &&
	    json_object_is_type(m, json_type_string))
		asked = json_object_get_string(m);
	if (listed(r->client->lim.models, model) ||
	    (asked != NULL && limits_model_allowed(r->srv->cfg, r->client,
	    asked)))
		return 0;
	resp_error(r, 403, "invalid_request_error", "model_not_allowed",
	    "This key may not use model '%.100s'. GET /v1/models lists the "
	    "models it may use; the operator sets them with 'qwenrelay keys "
	    "add NAME --models a,b'.", asked != NULL ? asked : model);
	return -1;
}

static int
tokens_fn(int64_t *f, size_t nf, void *arg)
{
	const int64_t	*a = arg;

	(void)nf;
	limits_add_tokens(f, a[0], a[1]);
	return 0;
}

int
limits_tokens_op(const struct req *r, struct stats_op *op, char *key,
    int64_t *arg)
{
	if (r->client == NULL || r->client->lim.tpm <= 0 ||
	    r->out.tokens_in + r->out.tokens_out <= 0)
		return -1;
	memset(op, 0, sizeof(*op));
	if ((op->klen = record_key(key, r->client->name)) == 0)
		return -1;
	arg[0] = now_ms();
	arg[1] = r->out.tokens_in + r->out.tokens_out;
	op->key = key;
	op->nf = LIMITS_FIELDS;
	op->fn = tokens_fn;
	op->arg = arg;
	return 0;
}
