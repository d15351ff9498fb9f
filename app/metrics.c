/*
 * metrics.c: recording and rendering the Prometheus metrics (metrics.h).
 *
 * Records in the stats env, one per label set, each a counter record:
 *   "Mh" NUL route NUL code     [requests]
 *   "Mk" NUL key name           [requests]
 *   "Mt"                        [input tokens, output tokens]
 *   "Mu" NUL provider           [bucket counts..., sum ms, count]
 *   "Mr"                        [one count per enum rotation_reason]
 *   "Mf"                        [one count per enum metric_refresh]
 * The keys are written as NUL-separated text so a prefix scan finds a
 * family and the label values come back out of the key.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "key_limits.h"
#include "log.h"
#include "loadtab.h"
#include "metrics.h"
#include "outcome.h"
#include "req.h"
#include "route.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

#define MKEY_MAX	192

/* Upstream latency buckets, in ms (Prometheus "le" in seconds). */
static const int64_t up_buckets_ms[] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000
};
#define NBUCKETS	(sizeof(up_buckets_ms) / sizeof(up_buckets_ms[0]))
#define UP_FIELDS	(NBUCKETS + 1 + 2)	/* buckets, +Inf, sum, count */

static const char *const refresh_names[METRIC_REFRESH__MAX] = {
	[METRIC_REFRESH_OK] = "ok",
	[METRIC_REFRESH_FAILED] = "failed",
	[METRIC_REFRESH_REJECTED] = "needs_login",
};

/* key = tag NUL a NUL b (a, b may be NULL); 0 when it does not fit. */
static size_t
mkey(char *buf, const char *tag, const char *a, const char *b)
{
	size_t	n = strlen(tag), la, lb;

	memcpy(buf, tag, n);
	if (a == NULL)
		return n;
	la = strlen(a);
	lb = b != NULL ? strlen(b) + 1 : 0;
	if (n + 1 + la + lb > MKEY_MAX)
		return 0;
	buf[n++] = '\0';
	memcpy(buf + n, a, la);
	n += la;
	if (b != NULL) {
		buf[n++] = '\0';
		memcpy(buf + n, b, lb - 1);
		n += lb - 1;
	}
	return n;
}

/* Add arg[0..nf) to the record. */
static int
add_fn(int64_t *f, size_t nf, void *arg)
{
	const int64_t	*d = arg;
	size_t		 i;

	for (i = 0; i < nf; i++)
		f[i] += d[i];
	return 0;
}

/* The metrics' own records (7) and the relay's usage (2 per entry). */
#define BATCH_MAX	(8 + 2 * OUTCOME_USAGE_MAX)

struct batch {
	struct stats_op	ops[BATCH_MAX];
	size_t		n;
	char		keys[BATCH_MAX][MKEY_MAX];
};

static void
batch_add(struct batch *b, size_t klen, size_t nf, int64_t *delta)
{
	if (klen == 0 || b->n >= BATCH_MAX)
		return;
	b->ops[b->n].key = b->keys[b->n];
	b->ops[b->n].klen = klen;
	b->ops[b->n].nf = nf;
	b->ops[b->n].fn = add_fn;
	b->ops[b->n].arg = delta;
	b->n++;
}

void
metrics_request_done(const struct req *r)
{
	struct batch	 b;
	char		 code[8];
	int64_t		 one = 1, one_k = 1, tok[2], up[UP_FIELDS], rot[ROT__MAX];
	int64_t		 targ[2], touch;
	struct usage	 u[OUTCOME_USAGE_MAX];
	const struct outcome_usage *q;
	size_t		 i;
	int		 any, rc;

	if (r->srv->st == NULL)
		return;
	b.n = 0;
	snprintf(code, sizeof(code), "%d", r->status);
	batch_add(&b, mkey(b.keys[b.n], "Mh", route_name(r->route), code), 1,
	    &one);
	if (r->client != NULL)
		batch_add(&b, mkey(b.keys[b.n], "Mk", r->client->name, NULL), 1,
		    &one_k);
	if (r->out.tokens_in > 0 || r->out.tokens_out > 0) {
		tok[0] = r->out.tokens_in;
		tok[1] = r->out.tokens_out;
		batch_add(&b, mkey(b.keys[b.n], "Mt", NULL, NULL), 2, tok);
	}
	if (r->out.attempts > 0) {
		memset(up, 0, sizeof(up));
		for (i = 0; i < NBUCKETS &&
		    r->out.upstream_last_ms > up_buckets_ms[i]; i++)
			;
		up[i] = 1;	/* i == NBUCKETS: +Inf */
		up[NBUCKETS + 1] = r->out.upstream_last_ms;
		up[NBUCKETS + 2] = 1;
		batch_add(&b, mkey(b.keys[b.n], "Mu", r->out.provider[0] ?
		    r->out.provider : "unknown", NULL), UP_FIELDS, up);
	}
	for (i = 0, any = 0; i < ROT__MAX; i++)
		any |= (rot[i] = r->out.rotations[i]) != 0;
	if (any)
		batch_add(&b, mkey(b.keys[b.n], "Mr", NULL, NULL), ROT__MAX, rot);
	if (b.n < BATCH_MAX && limits_tokens_op(r, &b.ops[b.n], b.keys[b.n],
	    targ) == 0)
		b.n++;
	/* The key's own use counter (keys list): in this transaction too. */
	if (r->client != NULL && b.n < BATCH_MAX) {
		store_key_touch_op(r->client->hash, now_ms(), &b.ops[b.n],
		    (unsigned char *)b.keys[b.n], &touch);
		b.n++;
	}
	/* The relay's usage counters (outcome_usage): same transaction. */
	for (i = 0; i < r->out.nusage && b.n + 2 <= BATCH_MAX; i++) {
		q = &r->out.usage[i];
		memset(&u[i], 0, sizeof(u[i]));
		u[i].requests = q->requests;
		u[i].prompt_tokens = q->prompt_tokens;
		u[i].completion_tokens = q->completion_tokens;
		u[i].errors = q->errors;
		u[i].error_class = q->error_class[0] ? q->error_class : NULL;
		u[i].when = q->when;
		b.n += store_usage_ops(q->kind, q->id, &u[i], &b.ops[b.n],
		    b.keys[b.n], b.keys[b.n + 1]);
	}
	if ((rc = store_stats_apply(r->srv->st, b.ops, b.n)) != 0)
		log_debug("metrics not recorded: %s", store_strerror(rc));
}

void
metrics_refresh(struct store *st, enum metric_refresh res)
{
	struct stats_op	op;
	int64_t		d[METRIC_REFRESH__MAX];

	if (st == NULL || (unsigned int)res >= METRIC_REFRESH__MAX)
		return;
	memset(d, 0, sizeof(d));
	d[res] = 1;
	op.key = "Mf";
	op.klen = 2;
	op.nf = METRIC_REFRESH__MAX;
	op.fn = add_fn;
	op.arg = d;
	store_stats_apply(st, &op, 1);
}

void
metrics_inflight(const struct server *srv, int64_t *inflight,
    int64_t *capacity)
{
	int	i, st;

	*inflight = 1;
	*capacity = srv->cfg->workers;
	if (srv->load == NULL)
		return;
	/* This process's slots, or the whole pool's when it is shared. */
	*inflight = atomic_load(&srv->load->in_flight);
	*capacity = atomic_load(&srv->load->capacity);
	if (srv->pool == NULL)
		return;
	*inflight = *capacity = 0;
	for (i = 0; i < srv->npool; i++) {
		if (!loadtab_live(srv->pool, i))
			continue;
		*inflight += atomic_load(&srv->pool[i].in_flight);
		st = atomic_load(&srv->pool[i].state);
		if (st == LOAD_SERVING)
			*capacity += atomic_load(&srv->pool[i].capacity);
	}
}

/* ---- rendering ---- */

struct out {
	char	*buf;
	size_t	 len, cap;
};

static void
outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
outf(struct out *o, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		o->cap = o->cap * 2 + (size_t)n;
		o->buf = xrealloc(o->buf, o->cap);
	}
}

/* A label value, escaped per the text format (\\, \", \n). */
static void
outl(struct out *o, const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\\' || s[i] == '"')
			outf(o, "\\%c", s[i]);
		else if (s[i] == '\n')
			outf(o, "\\n");
		else
			outf(o, "%c", s[i]);
	}
}

static void
head(struct out *o, const char *name, const char *type, const char *help)
{
	outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The n-th NUL-separated part of a record key (0 = the tag). */
static int
part(const void *key, size_t klen, int n, const char **s, size_t *len)
{
	const char	*p = key, *end = p + klen, *e;

	for (;;) {
		e = memchr(p, '\0', (size_t)(end - p));
		if (e == NULL)
			e = end;
		if (n-- == 0) {
			*s = p;
			*len = (size_t)(e - p);
			return 0;
		}
		if (e == end)
			return -1;
		p = e + 1;
	}
}

struct scan {
	struct out	*o;
	const char	*name;
	const char	*l1, *l2;	/* label names of parts 1 and 2 */
	int		 nf;		/* field to print, -1 = histogram */
};

static int
scan_fn(const void *key, size_t klen, const int64_t *f, void *arg)
{
	struct scan	*sc = arg;
	const char	*s;
	size_t		 n, i;
	int64_t		 cum = 0;

	if (sc->nf >= 0) {
		outf(sc->o, "%s{", sc->name);
		if (part(key, klen, 1, &s, &n) == 0) {
			outf(sc->o, "%s=\"", sc->l1);
			outl(sc->o, s, n);
			outf(sc->o, "\"");
		}
		if (sc->l2 != NULL && part(key, klen, 2, &s, &n) == 0) {
			outf(sc->o, ",%s=\"", sc->l2);
			outl(sc->o, s, n);
			outf(sc->o, "\"");
		}
		outf(sc->o, "} %lld\n", (long long)f[sc->nf]);
		return 0;
	}
	/* histogram by provider */
	if (part(key, klen, 1, &s, &n) != 0)
		return 0;
	for (i = 0; i <= NBUCKETS; i++) {
		cum += f[i];
		outf(sc->o, "%s_bucket{provider=\"", sc->name);
		outl(sc->o, s, n);
		if (i < NBUCKETS)
			outf(sc->o, "\",le=\"%g\"} %lld\n",
			    (double)up_buckets_ms[i] / 1000.0, (long long)cum);
		else
			outf(sc->o, "\",le=\"+Inf\"} %lld\n", (long long)cum);
	}
	outf(sc->o, "%s_sum{provider=\"", sc->name);
	outl(sc->o, s, n);
	outf(sc->o, "\"} %.3f\n", (double)f[NBUCKETS + 1] / 1000.0);
	outf(sc->o, "%s_count{provider=\"", sc->name);
	outl(sc->o, s, n);
	outf(sc->o, "\"} %lld\n", (long long)f[NBUCKETS + 2]);
	return 0;
}

static void
family(struct out *o, struct store *st, const char *tag, const char *name,
    const char *l1, const char *l2, int nf)
{
	struct scan	sc = { o, name, l1, l2, nf };
	char		prefix[4];

	/* "Mh\0": the tag and its separator, so "Mh" never matches "Mhx". */
	memcpy(prefix, tag, 2);
	prefix[2] = '\0';
	store_stats_scan(st, prefix, 3, scan_fn, &sc);
}

/* Fields of a label-less record (zeros when absent). */
static int
get_fn(const void *key, size_t klen, const int64_t *f, void *arg)
{
	int64_t	*d = arg;

	if (klen != 2)
		return 0;
	(void)key;
	memcpy(d, f, STORE_STATS_FIELDS * sizeof(*f));
	return 1;
}

static void
get_plain(struct store *st, const char *tag, int64_t *f)
{
	memset(f, 0, STORE_STATS_FIELDS * sizeof(*f));
	store_stats_scan(st, tag, 2, get_fn, f);
}

/* Is a parked until later than now, for any model? */
static int
parked(const struct account *a, const struct mark *m, size_t nm, int64_t now)
{
	size_t	i;

	for (i = 0; i < nm; i++)
		if (strcmp(m[i].account, a->id) == 0 && m[i].resets_at > now)
			return 1;
	return 0;
}

static void
accounts(struct out *o, struct store *st)
{
	static const char *const states[] = { "active", "limited", "disabled",
	    "needs_login" };
	struct account	**l;
	struct mark	 *m = NULL;
	size_t		  n, nm = 0, i, j;
	int64_t		  now = now_ms();
	const char	 *cur;

	if (store_account_list_bare(st, &l, &n) != 0)
		return;
	if (store_mark_list(st, &m, &nm) != 0)
		nm = 0;
	head(o, "qwenrelay_account_status", "gauge", "1 for the account's "
	    "current status (limited: active but parked for a model).");
	for (i = 0; i < n; i++) {
		cur = l[i]->status != NULL ? l[i]->status : "active";
		if (strcmp(cur, "active") == 0 && parked(l[i], m, nm, now))
			cur = "limited";
		for (j = 0; j < sizeof(states) / sizeof(states[0]); j++) {
			outf(o, "qwenrelay_account_status{account=\"");
			outl(o, l[i]->id, strlen(l[i]->id));
			outf(o, "\",provider=\"");
			outl(o, l[i]->provider, strlen(l[i]->provider));
			outf(o, "\",status=\"%s\"} %d\n", states[j],
			    strcmp(cur, states[j]) == 0);
		}
	}
	head(o, "qwenrelay_account_token_expiry_seconds", "gauge",
	    "Seconds until the account's access token expires (negative: "
	    "expired); only accounts whose tokens expire.");
	for (i = 0; i < n; i++) {
		if (l[i]->expires_at == 0)
			continue;
		outf(o, "qwenrelay_account_token_expiry_seconds{account=\"");
		outl(o, l[i]->id, strlen(l[i]->id));
		outf(o, "\"} %lld\n", (long long)((l[i]->expires_at - now) /
		    1000));
	}
	head(o, "qwenrelay_accounts", "gauge", "Accounts in the pool.");
	outf(o, "qwenrelay_accounts %lu\n", (unsigned long)n);
	account_list_free(l, n);
	mark_list_free(m, nm);
}

int
metrics_render(struct server *srv, char **res, size_t *len)
{
	struct out	 o;
	struct store	*st = srv->st;
	int64_t		 f[STORE_STATS_FIELDS], infl, cap;
	size_t		 i;

	*res = NULL;
	*len = 0;
	if (st == NULL)
		return -EIO;
	o.cap = 8192;
	o.len = 0;
	o.buf = xmalloc(o.cap);
	o.buf[0] = '\0';

	head(&o, "qwenrelay_http_requests_total", "counter",
	    "HTTP requests answered, by route pattern and status code.");
	family(&o, st, "Mh", "qwenrelay_http_requests_total", "route", "code",
	    0);
	head(&o, "qwenrelay_key_requests_total", "counter",
	    "Requests authenticated with each client key (by name).");
	family(&o, st, "Mk", "qwenrelay_key_requests_total", "key", NULL, 0);
	head(&o, "qwenrelay_upstream_request_duration_seconds", "histogram",
	    "Duration of the upstream call that answered a request, by "
	    "provider preset.");
	family(&o, st, "Mu", "qwenrelay_upstream_request_duration_seconds",
	    "provider", NULL, -1);

	get_plain(st, "Mt", f);
	head(&o, "qwenrelay_tokens_total", "counter",
	    "Tokens the providers reported, by direction.");
	outf(&o, "qwenrelay_tokens_total{direction=\"input\"} %lld\n"
	    "qwenrelay_tokens_total{direction=\"output\"} %lld\n",
	    (long long)f[0], (long long)f[1]);
	get_plain(st, "Mr", f);
	head(&o, "qwenrelay_rotations_total", "counter",
	    "Times a request left an account for another (or retried it), "
	    "by reason.");
	for (i = 0; i < ROT__MAX; i++)
		outf(&o, "qwenrelay_rotations_total{reason=\"%s\"} %lld\n",
		    outcome_reason_name((enum rotation_reason)i),
		    (long long)f[i]);
	get_plain(st, "Mf", f);
	head(&o, "qwenrelay_refreshes_total", "counter",
	    "OAuth token refreshes, by result.");
	for (i = 0; i < METRIC_REFRESH__MAX; i++)
		outf(&o, "qwenrelay_refreshes_total{result=\"%s\"} %lld\n",
		    refresh_names[i], (long long)f[i]);

	accounts(&o, st);

	metrics_inflight(srv, &infl, &cap);
	head(&o, "qwenrelay_requests_in_flight", "gauge",
	    "Requests being served by the pool's worker processes.");
	outf(&o, "qwenrelay_requests_in_flight %lld\n", (long long)infl);
	head(&o, "qwenrelay_requests_capacity", "gauge",
	    "Requests the pool can serve at once (its live workers times "
	    "threads per worker).");
	outf(&o, "qwenrelay_requests_capacity %lld\n", (long long)cap);
	*res = o.buf;
	*len = o.len;
	return 0;
}
