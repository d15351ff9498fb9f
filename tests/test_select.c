/*
 * test_select.c: select_pick(), every strategy from a table: which
 * accounts may serve (status, --models, catalog), marks, skips, and the
 * cursors each strategy moves; and catalog_parse(), which reads the
 * catalogs the selection uses.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "accounts.h"
#include "catalog.h"
#include "cfg.h"
#include "select.h"
#include "store.h"
#include "tap.h"
#include "xmalloc.h"

#define NOW	1000000

static void
strlcat_(char *d, const char *s, size_t sz)
{
	size_t	n = strlen(d);

	snprintf(d + n, sz - n, "%s", s);
}

static char *m_coder[] = { "coder-model", NULL };
static char *m_none[] = { NULL };
static char *m_odd[] = { "odd-model", "qwen/qwen3-coder", NULL };
static char *m_embed[] = { "text-embedding-v3", NULL };

/* A pool of four: a0 a1 a2 serve coder-model, a3 serves by catalog. */
static struct account pool[4];
static struct account *const pool_p[] = {
	&pool[0], &pool[1], &pool[2], &pool[3]
};

static void
pool_init(void)
{
	size_t	i;

	memset(pool, 0, sizeof(pool));
	for (i = 0; i < 4; i++) {
		snprintf(pool[i].id, sizeof(pool[i].id), "a%zu", i);
		pool[i].state = ACCT_ACTIVE;
		pool[i].models = m_coder;
		pool[i].models_pinned = 1;
		pool[i].total_requests = 10;
	}
	pool[1].total_requests = 3;
	pool[2].total_requests = 7;
	/* a3: preset defaults (coder-model) replaced by its catalog */
	pool[3].models_pinned = 0;
	pool[3].catalog = m_odd;
}

static void
catalog_table(void)
{
	static const struct {
		const char	*body;
		int		 rc;
		const char	*ids;	/* joined with ',' */
		const char	*what;
	} t[] = {
		{ "{\"object\":\"list\",\"data\":[{\"id\":\"odd-model\"},"
		    "{\"id\":\"qwen/qwen3-coder\",\"object\":\"model\"}]}", 0,
		    "odd-model,qwen/qwen3-coder,", "OpenAI's list" },
		{ "{\"data\":[]}", 0, "", "an empty list" },
		{ "{\"data\":[{\"id\":\"a\"},{\"id\":\"a\"},{\"id\":7},{},"
		    "\"b\",{\"id\":\"\"}]}", 0, "a,",
		    "duplicates, non-strings, empty ids left out" },
		{ "{\"data\":[{\"id\":\"a\\nb\"},{\"id\":\"a\\u0000b\"},"
		    "{\"id\":\"ok/id:x\"}]}", 0, "ok/id:x,",
		    "ids with control bytes left out" },
		{ "[{\"id\":\"a\"}]", -EINVAL, NULL, "a bare array" },
		{ "{\"models\":[]}", -EINVAL, NULL, "no data" },
		{ "<html>", -EINVAL, NULL, "not JSON" },
		{ NULL, -EINVAL, NULL, "no body" },
	};
	char	**ids, err[256], got[512];
	size_t	 i, j;
	int	 rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		rc = catalog_parse(t[i].body, &ids, err, sizeof(err));
		got[0] = '\0';
		for (j = 0; ids != NULL && ids[j] != NULL; j++) {
			strlcat_(got, ids[j], sizeof(got));
			strlcat_(got, ",", sizeof(got));
		}
		ok(rc == t[i].rc && (t[i].ids == NULL ? ids == NULL :
		    strcmp(got, t[i].ids) == 0), "catalog: %s", t[i].what);
		xfree_strv(ids);
	}
}

int
main(void)
{
	static struct mark marks[] = {
		{ "a0", "coder-model", NOW + 5000, 2, "rate_limit" },
		{ "a1", "coder-model", NOW - 1, 3, "quota" },	/* expired */
		{ "a2", "odd-model", NOW + 9000, 1, "billing" },
	};
	static char skip1[][24] = { "a1" };
	static const struct {
		enum select_strategy	 strat;
		const char		*model;
		const char		*sticky;
		int64_t			 rr, hyb;
		size_t			 nmarks;	/* of marks[] */
		int			 skip_a1;
		int			 a2_state;	/* ACCT_* for a2 */
		int			 want;		/* index, -1 none */
		int			 moved, restart;
		size_t			 serving, limited;
		const char		*what;
	} t[] = {
		{ STRAT_STICKY, "coder-model", "", 0, 0, 0, 0, ACCT_ACTIVE, 0,
		    1, 0, 3, 0, "sticky, no current: the first" },
		{ STRAT_STICKY, "coder-model", "a1", 0, 0, 0, 0, ACCT_ACTIVE, 1,
		    0, 0, 3, 0, "sticky keeps the current" },
		{ STRAT_STICKY, "coder-model", "a0", 0, 0, 1, 0, ACCT_ACTIVE, 1,
		    1, 0, 3, 1, "sticky: current marked, the next after it" },
		{ STRAT_STICKY, "coder-model", "a1", 0, 0, 1, 1, ACCT_ACTIVE, 2,
		    1, 0, 3, 1, "sticky: current tried, the next" },
		{ STRAT_STICKY, "coder-model", "a2", 0, 0, 1, 0, ACCT_NEEDS_LOGIN,
		    1, 1, 0, 2, 1, "sticky: current needs login, wraps past a0" },
		{ STRAT_STICKY, "coder-model", "a1", 0, 0, 1, 1,
		    ACCT_DISABLED, -1, 0, 0, 2, 1,
		    "sticky: none left (marked, tried, disabled)" },
		{ STRAT_STICKY, "coder-model", "gone", 0, 0, 0, 0, ACCT_ACTIVE, 0,
		    1, 0, 3, 0, "sticky: unknown current, the first" },
		{ STRAT_ROUND_ROBIN, "coder-model", "", 1, 0, 0, 0, ACCT_ACTIVE,
		    0, 0, 0, 3, 0, "round-robin cursor 1" },
		{ STRAT_ROUND_ROBIN, "coder-model", "", 2, 0, 0, 0, ACCT_ACTIVE,
		    1, 0, 0, 3, 0, "round-robin cursor 2" },
		{ STRAT_ROUND_ROBIN, "coder-model", "", 4, 0, 0, 0, ACCT_ACTIVE,
		    0, 0, 0, 3, 0, "round-robin wraps" },
		{ STRAT_ROUND_ROBIN, "coder-model", "", 2, 0, 1, 0, ACCT_ACTIVE,
		    2, 0, 0, 3, 1, "round-robin over the unmarked only" },
		{ STRAT_LEAST_USED, "coder-model", "", 0, 0, 0, 0, ACCT_ACTIVE, 1,
		    0, 0, 3, 0, "least-used: fewest requests" },
		{ STRAT_LEAST_USED, "coder-model", "", 0, 0, 0, 1, ACCT_ACTIVE, 2,
		    0, 0, 3, 0, "least-used: the fewest not tried" },
		{ STRAT_HYBRID, "coder-model", "a1", 0, 10, 0, 0, ACCT_ACTIVE, 1,
		    0, 0, 3, 0, "hybrid: inside the run, stays" },
		{ STRAT_HYBRID, "coder-model", "a1", 0, 49, 0, 0, ACCT_ACTIVE, 1,
		    0, 0, 3, 0, "hybrid: the run's last request" },
		{ STRAT_HYBRID, "coder-model", "a1", 0, 50, 0, 0, ACCT_ACTIVE, 2,
		    1, 1, 3, 0, "hybrid: run over, the next starts one" },
		{ STRAT_HYBRID, "coder-model", "a0", 0, 3, 1, 0, ACCT_ACTIVE, 1,
		    1, 1, 3, 1, "hybrid: current marked, moves" },
		{ STRAT_STICKY, "odd-model", "", 0, 0, 0, 0, ACCT_ACTIVE, 3, 1, 0,
		    1, 0, "catalog: only a3 lists odd-model" },
		{ STRAT_STICKY, "qwen/qwen3-coder", "a0", 0, 0, 0, 0, ACCT_ACTIVE,
		    3, 1, 0, 1, 0, "catalog: an id with a slash" },
		{ STRAT_ROUND_ROBIN, "coder-model", "", 3, 0, 0, 0, ACCT_ACTIVE,
		    2, 0, 0, 3, 0, "catalog replaces a3's defaults" },
		{ STRAT_LEAST_USED, "text-embedding-v3", "", 0, 0, 0, 0,
		    ACCT_ACTIVE, -1, 0, 0, 0, 0, "nobody serves it" },
	};
	struct select_in	in;
	struct select_out	out;
	char			big[202];
	size_t			i;
	int			rc;

	plan_lazy();
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		pool_init();
		pool[2].state = t[i].a2_state;
		memset(&in, 0, sizeof(in));
		in.strategy = t[i].strat;
		in.accts = pool_p;
		in.n = 4;
		in.marks = marks;
		in.nmarks = t[i].nmarks ? sizeof(marks) / sizeof(marks[0]) : 0;
		in.model = t[i].model;
		in.skip = skip1;
		in.nskip = t[i].skip_a1 ? 1 : 0;
		in.now = NOW;
		in.sticky = t[i].sticky;
		in.rr_cursor = t[i].rr;
		in.hybrid_count = t[i].hyb;
		in.hybrid_rotate = 50;
		rc = select_pick(&in, &out);
		ok(out.pick == t[i].want && rc == (t[i].want < 0 ? -ENOENT : 0) &&
		    (t[i].want < 0 || (out.sticky_moved == t[i].moved &&
		    out.hybrid_restart == t[i].restart)) &&
		    out.serving == t[i].serving && out.limited == t[i].limited &&
		    out.total == 4, "pick: %s", t[i].what);
		if (out.pick != t[i].want)
			diag("picked %ld, wanted %d", out.pick, t[i].want);
	}

	/* marks: earliest reset and the hits of an expired mark */
	pool_init();
	memset(&in, 0, sizeof(in));
	in.strategy = STRAT_STICKY;
	in.accts = pool_p;
	in.n = 4;
	in.marks = marks;
	in.nmarks = 3;
	in.model = "coder-model";
	in.now = NOW;
	in.sticky = "a1";
	select_pick(&in, &out);
	ok(out.pick == 1 && out.hits == 3, "an expired mark's hits come back");
	ok(out.earliest_reset == NOW + 5000, "earliest reset of the live marks");

	/* account_models: operator > catalog > defaults; empty serves any */
	pool_init();
	ok(account_models(&pool[3]) == (char *const *)m_odd,
	    "catalog used when not pinned");
	pool[3].models_pinned = 1;
	ok(account_models(&pool[3]) == (char *const *)m_coder,
	    "--models wins over the catalog");
	pool[3].models_pinned = 0;
	pool[3].catalog = m_none;
	ok(account_models(&pool[3]) == (char *const *)m_coder,
	    "an empty catalog leaves the defaults");
	pool[3].models = m_none;
	ok(account_serves(&pool[3], "anything"), "no list serves any model");
	pool[3].models = m_embed;
	ok(!account_serves(&pool[3], "coder-model"), "a list serves only its own");
	catalog_table();
	ok(model_id_valid("qwen/qwen3-coder:free", 21) &&
	    model_id_valid("caf\xc3\xa9 x", 7) && !model_id_valid("", 0) &&
	    !model_id_valid("a\nb", 3) && !model_id_valid("a\0b", 3) &&
	    !model_id_valid("a\x7f", 2), "model_id_valid: opaque, no controls");
	memset(big, 'm', sizeof(big));
	big[200] = '\0';
	ok(model_id_valid(big, 200), "model_id_valid: 200 bytes");
	big[200] = 'm';
	big[201] = '\0';
	ok(!model_id_valid(big, 201), "model_id_valid: not 201");
	return 0;
}
