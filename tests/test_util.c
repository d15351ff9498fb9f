/* test_util.c: bounded parsing and identifier checks, by tables. */
#include "config.h"

#include <string.h>

#include "jscan.h"
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
	/* jscan_ints: the usage object of a chat answer, and its edges. */
	static const struct { const char *s; int want; int64_t a, b;
	    const char *what; } js[] = {
		{ "{\"prompt_tokens\":19,\"completion_tokens\":3}", 3, 19, 3,
		    "both" },
		{ " {\"prompt_tokens\": 7 , \"total_tokens\":9}", 1, 7, -1,
		    "one, white space" },
		{ "{\"x\":{\"prompt_tokens\":5},\"completion_tokens\":2}", 2,
		    -1, 2, "nested member skipped" },
		{ "{\"prompt_tokens_details\":{\"cached_tokens\":4},"
		    "\"prompt_tokens\":11}", 1, 11, -1, "details object skipped" },
		{ "{\"s\":\"\\\"prompt_tokens\\\":1,\",\"prompt_tokens\":2}", 1,
		    2, -1, "escaped quotes in a string" },
		{ "{\"prompt_tokens\":1,\"prompt_tokens\":4}", 1, 4, -1,
		    "last duplicate wins" },
		{ "{\"prompt_tokens\":12.9,\"completion_tokens\":-3e0}", 3, 12,
		    -3, "fraction cut, exponent" },
		{ "{\"prompt_tokens\":\"8\",\"completion_tokens\":true}", 3, 8,
		    1, "string and true, as json-c's get_int64" },
		{ "{\"prompt_tokens\":null,\"completion_tokens\":[1]}", 3, 0, 0,
		    "null and array count 0" },
		{ "{\"prompt_tokens\":99999999999999999999}", 1, INT64_MAX, -1,
		    "saturates" },
		{ "{}", 0, -1, -1, "empty" },
		{ "{\"prompt_tokens\":1}, \"tail\": 2}", 1, 1, -1,
		    "stops at the closing brace" },
		{ "{\"prompt_tokens\":1", -1, -1, -1, "unclosed" },
		{ "{\"prompt_tokens\":}", -1, -1, -1, "no value" },
		{ "{\"prompt_tokens\" 1}", -1, -1, -1, "no colon" },
		{ "[1,2]", -1, -1, -1, "not an object" },
		{ "{\"a\":\"x}", -1, -1, -1, "unclosed string" },
	};
	static const char *const jn[] = { "prompt_tokens",
	    "completion_tokens" };
	int64_t		 jv[2];
	int		 got;
	size_t		 i;
	const char	*es;
	long long	 v;

	plan_lazy();
	for (i = 0; i < sizeof(js) / sizeof(js[0]); i++) {
		jv[0] = jv[1] = -1;
		got = jscan_ints(js[i].s, strlen(js[i].s), jn, jv, 2);
		is_int(js[i].want, got, "jscan_ints %s: members found",
		    js[i].what);
		ok(jv[0] == js[i].a && jv[1] == js[i].b,
		    "jscan_ints %s: values %lld %lld", js[i].what,
		    (long long)jv[0], (long long)jv[1]);
	}
	got = jscan_ints("{\"prompt_tokens\":5}", 10, jn, jv, 2);
	is_int(-1, got, "jscan_ints stops at len");
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
