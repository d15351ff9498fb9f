/*
 * test_upcheck.c: the boundary checks on upstream answers, from tables:
 * token counts, usage objects, Retry-After clamps, 2xx body shapes,
 * Content-Type pass-through.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "tap.h"
#include "upcheck.h"

int
main(void)
{
	static const struct {
		const char	*json;
		int64_t		 want;
		int		 bad;
	} toks[] = {
		{ "0", 0, 0 }, { "7", 7, 0 }, { "5.0", 5, 0 },
		{ "9007199254740991", 9007199254740991LL, 0 },
		{ "9007199254740992", 0, 1 },
		{ "-1", 0, 1 }, { "-9223372036854775808", 0, 1 },
		{ "9223372036854775807", 0, 1 },
		{ "99999999999999999999999", 0, 1 },
		{ "1e308", 0, 1 }, { "2.5", 0, 1 }, { "-0.0", 0, 0 },
		{ "\"12\"", 0, 1 }, { "true", 0, 1 }, { "[1]", 0, 1 },
		{ "{}", 0, 1 },
	};
	static const struct {
		int		 kind;
		const char	*body;
		int		 ok;
	} bodies[] = {
		{ UPCHECK_CHAT, "{\"id\":\"c\",\"choices\":[],\"usage\":{}}", 1 },
		{ UPCHECK_CHAT, " {\"choices\":[]}\r\n", 1 },
		{ UPCHECK_CHAT, "{\"choices\":[],\"usage\":null,\"id\":5}", 1 },
		{ UPCHECK_CHAT, "{\"choices\":{}}", 0 },
		{ UPCHECK_CHAT, "{\"id\":[],\"choices\":[]}", 0 },
		{ UPCHECK_CHAT, "{\"choices\":[],\"usage\":1}", 0 },
		{ UPCHECK_CHAT, "{\"choices\":[]}x", 0 },
		{ UPCHECK_CHAT, "{\"choices\":[]}{}", 0 },
		{ UPCHECK_CHAT, "<html></html>", 0 },
		{ UPCHECK_CHAT, "[]", 0 },
		{ UPCHECK_CHAT, "", 0 },
		{ UPCHECK_CHAT, "{\"choices\":[", 0 },
		{ UPCHECK_EMBED, "{\"data\":[]}", 1 },
		{ UPCHECK_EMBED, "{\"choices\":[]}", 0 },
	};
	static const struct {
		const char	*ct;
		int		 pass;
	} cts[] = {
		{ "application/json", 1 },
		{ "application/json; charset=utf-8", 1 },
		{ "Application/JSON", 1 },
		{ "application/jsonp", 0 },
		{ "text/html", 0 },
		{ "application/json\rX-Evil: 1", 0 },
		{ "", 0 },
	};
	static const struct {
		const char	*p;
		int		 ok;
	} sse[] = {
		{ "data: {}\n\n", 1 }, { "d", 1 }, { "dat", 1 },
		{ ": ping\n\n", 1 }, { "\n", 1 }, { "\r\n", 1 },
		{ "event: x\n", 1 }, { "id: 1\n", 1 }, { "retry: 5\n", 1 },
		{ "\xef\xbb\xbf" "data: x\n", 1 }, { "data\n", 1 }, { "", 1 },
		{ "{\"choices\":[]}", 0 }, { "<html>", 0 }, { "[1]", 0 },
		{ "dx", 0 }, { "datum: 1", 0 }, { "HTTP/1.1 200", 0 },
	};
	size_t		 i;
	char		 why[128];
	json_object	*o;
	int64_t		 p, c;

	plan_lazy();
	for (i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {
		int bad = 0;
		o = json_tokener_parse(toks[i].json);
		is_int(toks[i].want, upcheck_tokens(o, &bad), "tokens %s",
		    toks[i].json);
		is_int(toks[i].bad, bad, "tokens %s: %s", toks[i].json,
		    toks[i].bad ? "not believed" : "believed");
		json_object_put(o);
	}
	is_int(0, upcheck_tokens(NULL, NULL), "absent: 0");

	o = json_tokener_parse("{\"usage\":{\"prompt_tokens\":3,"
	    "\"completion_tokens\":-4}}");
	p = c = 99;
	is_int(1, upcheck_usage(o, &p, &c), "usage with a negative: bad");
	ok(p == 3 && c == 0, "usage: 3 and 0 (%lld %lld)", (long long)p,
	    (long long)c);
	json_object_put(o);
	o = json_tokener_parse("{\"choices\":[]}");
	p = c = 99;
	ok(upcheck_usage(o, &p, &c) == 0 && p == 99 && c == 99,
	    "no usage: nothing written");
	json_object_put(o);

	is_int(-1, upcheck_retry_after(-1), "no Retry-After stays -1");
	is_int(0, upcheck_retry_after(0), "Retry-After 0");
	is_int(5000, upcheck_retry_after(5000), "Retry-After 5 s");
	is_int(UPCHECK_RETRY_MAX_MS, upcheck_retry_after(INT64_MAX),
	    "Retry-After capped at a day");

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		int rc = upcheck_body(bodies[i].kind, bodies[i].body,
		    strlen(bodies[i].body), why, sizeof(why));
		ok(bodies[i].ok ? rc == 0 : rc == -1, "%s body %zu: %s",
		    bodies[i].kind == UPCHECK_CHAT ? "chat" : "embed", i,
		    bodies[i].ok ? "ok" : why);
	}
	/* Not NUL-terminated: only len bytes are read. */
	ok(upcheck_body(UPCHECK_CHAT, "{\"choices\":[]}GARBAGE", 14, why,
	    sizeof(why)) == 0, "only len bytes are read");

	for (i = 0; i < sizeof(sse) / sizeof(sse[0]); i++)
		ok((upcheck_sse_start(sse[i].p, strlen(sse[i].p), why,
		    sizeof(why)) == 0) == sse[i].ok, "stream start %zu: %s", i,
		    sse[i].ok ? "can be SSE" : why);
	for (i = 0; i < sizeof(cts) / sizeof(cts[0]); i++)
		ok((upcheck_content_type(cts[i].ct) != NULL) == cts[i].pass,
		    "Content-Type %zu %s", i, cts[i].pass ?
		    "passed on" : "replaced");
	return 0;
}
