/* test_util.c: bounded parsing and identifier checks, by tables. */
#include "config.h"

#include <string.h>

#include "tap.h"
#include "util.h"

int
main(void)
{
	static const struct { const char *s; long long min, max, want;
	    const char *err; } ints[] = {
		{ "0", 0, 10, 0, NULL },
		{ "10", 0, 10, 10, NULL },
		{ "11", 0, 10, 0, "too large" },
		{ "-1", 0, 10, 0, "too small" },
		{ "", 0, 10, 0, "invalid" },
		{ "12abc", 0, 100, 0, "invalid" },
		{ " 5", 0, 10, 5, NULL },	/* strtoll skips leading space */
		{ "99999999999999999999", 0, 10, 0, "too large" },
	};
	static const char *const good[] = { "a", "key-1", "A.b_c", "x123" };
	static const char *const bad[] = { "", ".", "..", "a/b", "a b",
	    "ü", "a\n" };
	size_t		 i;
	const char	*es;
	long long	 v;

	plan_lazy();
	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		v = parse_int(ints[i].s, ints[i].min, ints[i].max, &es);
		is_int(ints[i].want, v, "parse_int(\"%s\") value", ints[i].s);
		is_string(ints[i].err, es, "parse_int(\"%s\") error",
		    ints[i].s);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(valid_ident(good[i], 64), "valid_ident accepts \"%s\"",
		    good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(!valid_ident(bad[i], 64), "valid_ident rejects \"%s\"",
		    bad[i]);
	ok(!valid_ident("abcdef", 5), "valid_ident enforces its length");
	ok(now_ms() > 1700000000000LL, "now_ms is epoch milliseconds");
	return 0;
}
