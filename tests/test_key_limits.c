/* test_key_limits.c: the sliding-minute decision, from a table. */
#include "config.h"

#include <string.h>

#include "key_limits.h"
#include "tap.h"

/* One step: at time t (ms) a request comes (or tokens are added). */
struct step {
	int64_t			t;
	int64_t			tokens;		/* > 0: add tokens instead */
	enum limit_verdict	want;
	int64_t			retry;		/* expected Retry-After, 0 = any */
};

static void
run(const char *name, int64_t rpm, int64_t tpm, const struct step *s,
    size_t n)
{
	int64_t	f[LIMITS_FIELDS], retry;
	size_t	i;

	memset(f, 0, sizeof(f));
	for (i = 0; i < n; i++) {
		if (s[i].tokens > 0) {
			limits_add_tokens(f, s[i].t, s[i].tokens);
			continue;
		}
		enum limit_verdict v = limits_decide(f, s[i].t, rpm, tpm,
		    &retry);
		is_int(s[i].want, v, "%s: step %zu verdict", name, i);
		if (v != LIMIT_OK && s[i].retry > 0)
			is_int(s[i].retry, retry, "%s: step %zu retry-after",
			    name, i);
		if (v != LIMIT_OK)
			ok(retry >= 1 && retry <= 60,
			    "%s: step %zu retry in 1..60", name, i);
	}
}

int
main(void)
{
	/* Base well past zero: bucket numbers are positive. */
	const int64_t T = 1000000000000LL;	/* a multiple of 5000 */
	static struct step rpm3[] = {
		{ 0, 0, LIMIT_OK, 0 },
		{ 1000, 0, LIMIT_OK, 0 },
		{ 2000, 0, LIMIT_OK, 0 },
		/* 4th within the minute: the first bucket frees at T+60 s */
		{ 3000, 0, LIMIT_RPM, 57 },
		/* refused requests are not counted */
		{ 30000, 0, LIMIT_RPM, 30 },
		{ 59999, 0, LIMIT_RPM, 1 },
		/* the minute slid past the first three */
		{ 60000, 0, LIMIT_OK, 0 },
		{ 60001, 0, LIMIT_OK, 0 },
		{ 60002, 0, LIMIT_OK, 0 },
		{ 60003, 0, LIMIT_RPM, 0 },
	};
	static struct step slide[] = {
		{ 0, 0, LIMIT_OK, 0 },
		{ 30000, 0, LIMIT_OK, 0 },
		{ 31000, 0, LIMIT_RPM, 29 },
		/* at 60 s the first one left the window, the second not */
		{ 61000, 0, LIMIT_OK, 0 },
		{ 62000, 0, LIMIT_RPM, 28 },
		/* long idle: everything gone */
		{ 500000, 0, LIMIT_OK, 0 },
		{ 500001, 0, LIMIT_OK, 0 },
	};
	static struct step tpm[] = {
		{ 0, 0, LIMIT_OK, 0 },
		{ 100, 600, LIMIT_OK, 0 },
		{ 200, 0, LIMIT_OK, 0 },	/* 600 < 1000: admitted */
		{ 300, 500, LIMIT_OK, 0 },	/* now 1100 */
		{ 400, 0, LIMIT_TPM, 60 },
		{ 60000, 0, LIMIT_OK, 0 },
	};
	size_t	i;

	plan_lazy();
	for (i = 0; i < sizeof(rpm3) / sizeof(rpm3[0]); i++)
		rpm3[i].t += T;
	for (i = 0; i < sizeof(slide) / sizeof(slide[0]); i++)
		slide[i].t += T;
	for (i = 0; i < sizeof(tpm) / sizeof(tpm[0]); i++)
		tpm[i].t += T;
	run("rpm 3", 3, 0, rpm3, sizeof(rpm3) / sizeof(rpm3[0]));
	run("slide rpm 2", 2, 0, slide, sizeof(slide) / sizeof(slide[0]));
	run("tpm 1000", 0, 1000, tpm, sizeof(tpm) / sizeof(tpm[0]));
	{
		int64_t f[LIMITS_FIELDS], r;
		memset(f, 0, sizeof(f));
		is_int(LIMIT_OK, limits_decide(f, T, 0, 0, &r),
		    "no limits: always ok");
	}
	return 0;
}
