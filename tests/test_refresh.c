/*
 * test_refresh.c: when a token is due for refresh (refresh_due), from a
 * table: the configured buffer and skew, capped by the token's lifetime
 * so a short-lived token is not refreshed on every request.
 */
#include "config.h"

#include <stdint.h>

#include "refresh.h"
#include "tap.h"

#define S	1000LL
#define T0	1700000000000LL		/* "now" in the table, ms */

static const struct {
	const char	*what;
	int64_t		 expires_at;	/* relative to T0; 0 = never */
	int64_t		 refreshed_at;	/* relative to T0; 0 = unknown */
	int64_t		 buffer;
	enum refresh_need want;
} cases[] = {
	{ "never expires", 0, 0, 1800 * S, REFRESH_NONE },
	{ "unknown lifetime, far off", 3600 * S, 0, 1800 * S, REFRESH_NONE },
	{ "unknown lifetime, inside buffer+skew", 1800 * S, 0, 1800 * S,
	    REFRESH_SOFT },
	{ "unknown lifetime, 300 s left of 1800 s buffer", 300 * S, 0,
	    1800 * S, REFRESH_SOFT },
	{ "unknown lifetime, 61 s left", 61 * S, 0, 1800 * S, REFRESH_SOFT },
	{ "unknown lifetime, 59 s left: hard", 59 * S, 0, 1800 * S,
	    REFRESH_HARD },
	{ "expired", -10 * S, 0, 1800 * S, REFRESH_HARD },
	{ "expired, buffer 0", -1 * S, 0, 0, REFRESH_HARD },
	{ "6 h token, 1 h in: not due", 5 * 3600 * S, -3600 * S, 1800 * S,
	    REFRESH_NONE },
	{ "6 h token, 1820 s left: soft", 1820 * S, -(21600 - 1820) * S,
	    1800 * S, REFRESH_SOFT },
	{ "1 h token: buffer capped at 30 min", 1900 * S, -1700 * S,
	    1800 * S, REFRESH_NONE },
	{ "1 h token, 1790 s left: soft", 1790 * S, -1810 * S, 1800 * S,
	    REFRESH_SOFT },
	/* The issue-11 regime: 30 s tokens, buffer 0, 60 s skew. */
	{ "30 s token just refreshed: not due", 30 * S, 0 * S + 1, 0,
	    REFRESH_NONE },
	{ "30 s token, 20 s left: not due", 20 * S, -10 * S, 0, REFRESH_NONE },
	{ "30 s token, 14 s left: soft", 14 * S, -16 * S, 0, REFRESH_SOFT },
	{ "30 s token, 7 s left: hard", 7 * S, -23 * S, 0, REFRESH_HARD },
	{ "30 s token, buffer 1800: just refreshed, not due", 30 * S, 1,
	    1800 * S, REFRESH_NONE },
	{ "negative buffer acts as 0", 20 * S, -10 * S, -5 * S, REFRESH_NONE },
};

int
main(void)
{
	size_t	i, n = sizeof(cases) / sizeof(cases[0]);

	plan(n + 1);
	for (i = 0; i < n; i++) {
		int64_t e = cases[i].expires_at != 0 ?
		    T0 + cases[i].expires_at : 0;
		int64_t r = cases[i].refreshed_at != 0 ?
		    T0 + cases[i].refreshed_at : 0;

		is_int(cases[i].want, refresh_due(e, r, T0, cases[i].buffer),
		    "%s", cases[i].what);
	}
	/* However short the life, a fresh token lasts a while. */
	{
		int64_t life, k, bad = 0;

		for (life = 2 * S; life <= 7200 * S; life += 2 * S)
			for (k = 0; k < life / 2; k += S)
				if (refresh_due(T0 + life, T0, T0 + k,
				    0) != REFRESH_NONE)
					bad++;
		is_int(0, bad, "no lifetime is due in its first half");
	}
	return 0;
}
