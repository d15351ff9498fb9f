/*
 * test_relay.c: the relay's decision table (relay_decide), answer
 * classification (billing, quota, rate, auth, ...), the usage-chunk
 * filter, the qwen-oauth body adjustments, base URLs from resource_url,
 * the http-only-on-loopback rule, and Retry-After parsing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cfg.h"
#include "provider.h"
#include "relay.h"
#include "tap.h"
#include "upstream.h"
#include "xmalloc.h"

static const char *
adjusted(const char *in, int stream)
{
	static char	 buf[4096];
	json_object	*o = json_tokener_parse(in);

	relay_adjust_qwen(o, stream);
	snprintf(buf, sizeof(buf), "%s", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return buf;
}

/* Defaults: threshold 5 s, max wait 30 s, backoff 1..32 s, quota 1800 s, retries 2. */
static void
decide_table(void)
{
	struct cfg		 c;
	char			 err[256];
	size_t			 i;
/* In the table retry_after_ms 0 stands for "no Retry-After" (-1). */
#define S(...)	((struct relay_state){ __VA_ARGS__ })
	static const struct {
		struct relay_state	 s;
		int			 switch_first;
		enum relay_action	 act;
		int64_t			 ms;	/* wait_ms or park_ms */
		const char		*reason;
		enum relay_fail		 fail;
		const char		*what;
	} t[] = {
		{ S(.cls = RC_OK), 1, ACT_DELIVER, 0, NULL, 0, "2xx delivers" },
		{ S(.cls = RC_CLIENT), 1, ACT_RELAY_ERROR, 0, NULL, 0,
		    "a bad request is relayed as is" },
		{ S(.cls = RC_GONE), 1, ACT_STOP, 0, NULL, 0, "client gone" },
		{ S(.cls = RC_MALFORMED), 1, ACT_FAIL, 0, NULL, FAIL_MALFORMED,
		    "a malformed 2xx: 502, no other account tried" },
		{ S(.cls = RC_RATE, .retry_after_ms = 2000), 1, ACT_WAIT_RETRY,
		    2000, NULL, 0, "429 Retry-After 2 s: wait on the same" },
		{ S(.cls = RC_RATE, .retry_after_ms = 2000, .same_retries = 1), 1,
		    ACT_PARK_NEXT, 2000, "rate_limit", 0,
		    "second short 429: park and move on" },
		{ S(.cls = RC_RATE, .retry_after_ms = 60000), 1, ACT_PARK_NEXT,
		    60000, "rate_limit", 0, "429 Retry-After 60 s: park" },
		{ S(.cls = RC_RATE, .hits = 4), 1, ACT_PARK_NEXT, 16000,
		    "rate_limit", 0, "429 without Retry-After: backoff by hits" },
		{ S(.cls = RC_RATE, .hits = 0), 1, ACT_WAIT_RETRY, 1000, NULL, 0,
		    "first 429, backoff 1 s is under the threshold" },
		{ S(.cls = RC_RATE, .hits = 4), 0, ACT_WAIT_RETRY, 16000, NULL, 0,
		    "switch_on_first_rate_limit off: one backoff wait" },
		{ S(.cls = RC_QUOTA), 1, ACT_PARK_NEXT, 1800000, "quota", 0,
		    "quota: park for quota_cooldown_seconds" },
		{ S(.cls = RC_QUOTA), 0, ACT_PARK_NEXT, 1800000, "quota", 0,
		    "quota never backoff-waits" },
		{ S(.cls = RC_QUOTA, .retry_after_ms = 3000), 1, ACT_WAIT_RETRY,
		    3000, NULL, 0, "quota with a short Retry-After waits" },
		{ S(.cls = RC_BILLING), 1, ACT_PARK_NEXT, 1800000, "billing", 0,
		    "billing: park like quota, move on" },
		{ S(.cls = RC_BILLING, .retry_after_ms = 1000), 1, ACT_PARK_NEXT,
		    1000, "billing", 0, "billing never waits on the same account" },
		{ S(.cls = RC_BILLING), 0, ACT_PARK_NEXT, 1800000, "billing", 0,
		    "billing parks with switch_on_first_rate_limit off" },
		{ S(.cls = RC_AUTH, .can_refresh = 1), 1, ACT_REFRESH_RETRY, 0,
		    NULL, 0, "401 on OAuth: refresh and retry" },
		{ S(.cls = RC_AUTH, .can_refresh = 1, .refreshed = 1), 1,
		    ACT_PARK_NEXT, 60000, "auth", 0, "401 after refresh: park" },
		{ S(.cls = RC_AUTH), 1, ACT_PARK_NEXT, 60000, "auth", 0,
		    "401 on an API key: park" },
		{ S(.cls = RC_FAULT, .faults = 1), 1, ACT_NEXT, 0, NULL, 0,
		    "5xx: next account" },
		{ S(.cls = RC_FAULT, .faults = 3), 1, ACT_RELAY_ERROR, 0, NULL, 0,
		    "5xx after upstream_retries: relay it" },
		{ S(.cls = RC_TIMEOUT, .faults = 1), 1, ACT_NEXT, 0, NULL, 0,
		    "timeout: next account" },
		{ S(.cls = RC_TIMEOUT, .faults = 1, .data_sent = 1), 1, ACT_FAIL,
		    0, NULL, FAIL_TIMEOUT, "timeout mid-answer: 504" },
		{ S(.cls = RC_UNREACHABLE, .faults = 3), 1, ACT_FAIL, 0, NULL,
		    FAIL_UNREACHABLE, "unreachable after retries: 502" },
		{ S(.cls = RC_NO_TOKEN), 1, ACT_NEXT, 0, NULL, 0,
		    "refresh failed: next account" },
		{ S(.cls = RC_NO_ACCOUNT), 1, ACT_FAIL, 0, NULL, FAIL_NO_ACCOUNTS,
		    "empty pool" },
		{ S(.cls = RC_NO_ACCOUNT, .total = 2), 1, ACT_FAIL, 0, NULL,
		    FAIL_NOT_SERVED, "no account serves the model" },
		{ S(.cls = RC_NO_ACCOUNT, .total = 2, .serving = 2, .limited = 2,
		    .reset_in_ms = 4000), 1, ACT_WAIT_SELECT, 4050, NULL, 0,
		    "all parked, reset in 4 s: wait" },
		{ S(.cls = RC_NO_ACCOUNT, .total = 2, .serving = 2, .limited = 1,
		    .skipped = 1, .reset_in_ms = 4000), 1, ACT_WAIT_SELECT, 4050,
		    NULL, 0, "one parked, one tried: wait" },
		{ S(.cls = RC_NO_ACCOUNT, .total = 2, .serving = 2, .limited = 2,
		    .reset_in_ms = 4000, .waited_ms = 28000), 1, ACT_FAIL, 0, NULL,
		    FAIL_LIMITED, "the wait would pass max_rate_limit_wait: 429" },
		{ S(.cls = RC_NO_ACCOUNT, .total = 2, .serving = 2, .limited = 2,
		    .reset_in_ms = 1800000), 1, ACT_FAIL, 0, NULL, FAIL_LIMITED,
		    "all parked for quota: 429" },
		{ S(.cls = RC_NO_ACCOUNT, .total = 2, .serving = 2, .limited = 1,
		    .skipped = 1, .had_error = 1, .reset_in_ms = 1000), 1, ACT_FAIL,
		    0, NULL, FAIL_UNUSABLE, "an account failed otherwise: 503" },
		{ S(.cls = RC_NO_ACCOUNT, .total = 2, .serving = 2, .skipped = 2),
		    1, ACT_FAIL, 0, NULL, FAIL_UNUSABLE, "all tried: 503" },
	};
#undef S
	struct relay_step	 st;
	struct relay_state	 in;

	unsetenv("QWENRELAY_CONFIG");
	if (cfg_load(&c, "/nonexistent", err, sizeof(err)) != 0)
		bail("cfg: %s", err);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		c.switch_on_first_rate_limit = t[i].switch_first;
		in = t[i].s;
		if (in.retry_after_ms == 0)
			in.retry_after_ms = -1;
		st = relay_decide(&c, &in);
		ok(st.act == t[i].act &&
		    (st.act != ACT_WAIT_RETRY && st.act != ACT_WAIT_SELECT ?
		    1 : st.wait_ms == t[i].ms) &&
		    (st.act != ACT_PARK_NEXT || (st.park_ms == t[i].ms &&
		    strcmp(st.reason, t[i].reason) == 0)) &&
		    (st.act != ACT_FAIL || st.fail == t[i].fail),
		    "decide: %s", t[i].what);
		if (st.act != t[i].act)
			diag("act %d, wanted %d", st.act, t[i].act);
	}
	cfg_free(&c);
}

static void
drop_table(void)
{
	static const char usage_only[] = "data: {\"id\":\"c\",\"choices\":[],"
	    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n";
	static const char delta[] = "data: {\"id\":\"c\",\"choices\":[{"
	    "\"delta\":{\"content\":\"hi\"}}]}\n\n";
	static const char both[] = "data: {\"choices\":[{\"delta\":{}}],"
	    "\"usage\":{\"prompt_tokens\":3}}\n\n";
	static const struct {
		const char		*ev;
		struct client_wants	 w;
		int			 drop;
		const char		*what;
	} t[] = {
		{ usage_only, { 1, 0 }, 1, "usage-only chunk, not asked: dropped" },
		{ usage_only, { 1, 1 }, 0, "usage-only chunk, asked: relayed" },
		{ delta, { 1, 0 }, 0, "a delta is always relayed" },
		{ both, { 1, 0 }, 0, "choices with usage: relayed" },
		{ "data: [DONE]\n\n", { 1, 0 }, 0, "[DONE] relayed" },
		{ ": ping\n\n", { 1, 0 }, 0, "a comment is relayed" },
		{ "event: x\ndata: {\"choices\":[],\"usage\":{}}\n\n",
		    { 1, 0 }, 1, "usage-only after an event: line" },
	};
	size_t	i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_int(t[i].drop, relay_drop_event(t[i].ev, strlen(t[i].ev),
		    &t[i].w), "drop: %s", t[i].what);
}

int
main(void)
{
	static const struct { long st; const char *body; enum relay_class c;
	    const char *what; } cls[] = {
		{ 200, "{}", RC_OK, "200" },
		{ 429, "{\"error\":{\"code\":\"insufficient_quota\",\"message\":"
		    "\"Free allocated quota exceeded.\",\"type\":"
		    "\"insufficient_quota\"}}", RC_QUOTA, "429 insufficient_quota" },
		{ 403, "{\"error\":{\"code\":\"insufficient_quota\"}}", RC_QUOTA,
		    "403 insufficient_quota is quota (CLIProxyAPI)" },
		{ 403, "{\"error\":{\"code\":\"quota_exceeded\"}}", RC_QUOTA,
		    "403 quota_exceeded" },
		{ 429, "{\"error\":{\"message\":\"Free allocated quota "
		    "exceeded.\"}}", RC_QUOTA, "quota by message text" },
		{ 429, "{\"error\":{\"message\":\"Requests throttling "
		    "triggered\"}}", RC_RATE, "429 throttling" },
		{ 429, "not json", RC_RATE, "429 with a non-JSON body" },
		{ 401, "{\"error\":{\"code\":\"invalid_api_key\"}}", RC_AUTH,
		    "401" },
		{ 403, "{\"error\":{\"message\":\"forbidden\"}}", RC_AUTH,
		    "403 without quota words is auth" },
		{ 500, "", RC_FAULT, "500" },
		{ 503, NULL, RC_FAULT, "503 no body" },
		{ 400, "{\"error\":{}}", RC_CLIENT, "400" },
		{ 404, "{}", RC_CLIENT, "404" },
		/* billing: out of credit, arrears (sources in provider.c) */
		{ 402, "{\"error\":{\"message\":\"Insufficient credits. Add "
		    "more using https://openrouter.ai/settings/credits\",\"code\""
		    ":402}}", RC_BILLING, "OpenRouter 402 Insufficient credits" },
		{ 402, NULL, RC_BILLING, "402 without a body" },
		{ 402, "{\"error\":{\"message\":\"Insufficient Balance\","
		    "\"type\":\"unknown_error\"}}", RC_BILLING,
		    "DeepSeek 402 Insufficient Balance" },
		{ 400, "{\"error\":{\"code\":\"Arrearage\",\"param\":null,"
		    "\"message\":\"Access denied, please make sure your account "
		    "is in good standing.\",\"type\":\"Arrearage\"}}",
		    RC_BILLING, "DashScope 400 Arrearage" },
		{ 403, "{\"error\":{\"message\":\"Access denied, please make "
		    "sure your account is in good standing.\"}}", RC_BILLING,
		    "DashScope arrears message without the code" },
		{ 400, "{\"code\":\"Arrearage\",\"message\":\"Access denied\","
		    "\"request_id\":\"x\"}", RC_BILLING,
		    "DashScope native shape {code,message}" },
		{ 400, "{\"error\":{\"code\":\"billing_hard_limit_reached\","
		    "\"message\":\"Billing hard limit has been reached\"}}",
		    RC_BILLING, "OpenAI billing_hard_limit_reached" },
		{ 429, "{\"error\":{\"code\":\"billing_not_active\"}}",
		    RC_BILLING, "OpenAI billing_not_active" },
		{ 400, "{\"type\":\"error\",\"error\":{\"type\":"
		    "\"invalid_request_error\",\"message\":\"Your credit balance "
		    "is too low to access the Anthropic API.\"}}", RC_BILLING,
		    "Anthropic credit balance too low" },
		{ 429, "{\"error\":{\"message\":\"You exceeded your current "
		    "quota, please check your plan and billing details.\",\"type\""
		    ":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}",
		    RC_QUOTA, "OpenAI insufficient_quota stays quota" },
		{ 400, "{\"error\":{\"message\":\"credit card field is "
		    "invalid\"}}", RC_CLIENT, "a 400 that merely mentions credit" },
		{ 503, "{\"error\":{\"message\":\"Insufficient credits\"}}",
		    RC_FAULT, "a 5xx is a fault whatever it says" },
	};
	struct cfg		 cfg;
	struct upstream_call	 c;
	char			 err[256], *u;
	const char		*s;
	size_t			 i;

	plan_lazy();
	for (i = 0; i < sizeof(cls) / sizeof(cls[0]); i++)
		is_int(cls[i].c, provider_classify(cls[i].st, cls[i].body),
		    "classify %s", cls[i].what);
	for (i = 0; i < PROV__MAX; i++)
		ok(provider_get(i)->classify != NULL &&
		    provider_get(i)->add_headers != NULL &&
		    provider_get(i)->fetch_catalog != NULL &&
		    (provider_get(i)->refresh != NULL) == provider_get(i)->oauth &&
		    provider_get(i)->id == i, "provider %s: table complete",
		    provider_get(i)->name);

	ok(provider_is_embed_model(NULL, "Qwen/Qwen3-Embedding-8B") &&
	    provider_is_embed_model(provider_find("dashscope"),
	    "text-embedding-v4") &&
	    !provider_is_embed_model(NULL, "qwen/qwen3-coder"),
	    "embedding models by name, any case");
	decide_table();
	drop_table();

	s = adjusted("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
	    0);
	ok(strstr(s, "\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":"
	    "\"text\",\"text\":\"\",\"cache_control\":{\"type\":\"ephemeral\"}}]},"
	    "{\"role\":\"user\",\"content\":\"hi\"}]") != NULL,
	    "a system message with cache_control leads");
	ok(strstr(s, "stream_options") == NULL, "no stream_options when not "
	    "streaming");
	s = adjusted("{\"messages\":[{\"role\":\"system\",\"content\":\"be "
	    "brief\"},{\"role\":\"user\",\"content\":\"hi\"},{\"role\":"
	    "\"system\",\"content\":[{\"type\":\"text\",\"text\":\"more\"}]}],"
	    "\"stream\":true,\"max_tokens\":100000}", 1);
	ok(strstr(s, "\"text\":\"be brief\\n\\nmore\",\"cache_control\"") != NULL,
	    "client system texts merged into the leading one");
	ok(strstr(s, "{\"role\":\"user\",\"content\":\"hi\"}]") != NULL &&
	    strstr(s, "\"role\":\"system\",\"content\":[{\"type\":\"text\","
	    "\"text\":\"more\"") == NULL, "other system messages removed");
	ok(strstr(s, "\"stream_options\":{\"include_usage\":true}") != NULL,
	    "include_usage when streaming");
	ok(strstr(s, "\"max_tokens\":65536") != NULL, "max_tokens capped at "
	    "65536");
	s = adjusted("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
	    "\"max_tokens\":1000,\"temperature\":0.7,\"tools\":[{\"a\":1}]}", 0);
	ok(strstr(s, "\"max_tokens\":1000") != NULL &&
	    strstr(s, "\"temperature\":0.7") != NULL &&
	    strstr(s, "\"tools\":[{\"a\":1}]") != NULL,
	    "other fields untouched");

	unsetenv("QWENRELAY_CONFIG");
	if (cfg_load(&cfg, "/nonexistent", err, sizeof(err)) != 0)
		bail("cfg: %s", err);
	u = provider_base_url(&cfg, "qwen-oauth", "portal.qwen.ai");
	is_string("https://portal.qwen.ai/v1", u, "resource_url gets https "
	    "and /v1");
	free(u);
	u = provider_base_url(&cfg, "qwen-oauth", "https://x.example/v1/");
	is_string("https://x.example/v1", u, "no second /v1, slash trimmed");
	free(u);
	u = provider_base_url(&cfg, "qwen-oauth", NULL);
	is_string("https://portal.qwen.ai/v1", u, "default resource_url");
	free(u);
	u = provider_base_url(&cfg, "qwen-oauth", "http://127.0.0.1:9/");
	is_string("http://127.0.0.1:9/v1", u, "explicit scheme kept");
	free(u);
	u = provider_base_url(&cfg, "qwen-coding-plan", NULL);
	is_string("https://coding-intl.dashscope.aliyuncs.com/v1", u,
	    "coding plan preset");
	free(u);
	u = provider_base_url(&cfg, "openai-compatible", NULL);
	ok(u == NULL, "openai-compatible needs a base URL");

	ok(provider_url_allowed(&cfg, "https://a.example/v1", err, sizeof(err)),
	    "https allowed");
	ok(provider_url_allowed(&cfg, "http://127.0.0.1:8000/v1", err,
	    sizeof(err)), "http to 127.0.0.1 allowed");
	ok(provider_url_allowed(&cfg, "http://127.9.9.9/v1", err, sizeof(err)),
	    "http to 127/8 allowed");
	ok(provider_url_allowed(&cfg, "http://localhost:1/v1", err,
	    sizeof(err)), "http to localhost allowed");
	ok(provider_url_allowed(&cfg, "http://[::1]:8/v1", err, sizeof(err)),
	    "http to ::1 allowed");
	ok(!provider_url_allowed(&cfg, "http://10.0.0.1/v1", err, sizeof(err)),
	    "http to 10/8 refused");
	ok(!provider_url_allowed(&cfg, "http://127.0.0.1.evil.example/v1", err,
	    sizeof(err)), "http to 127.0.0.1.evil.example refused");
	ok(!provider_url_allowed(&cfg, "ftp://127.0.0.1/", err, sizeof(err)),
	    "ftp refused");
	cfg.allow_insecure_upstream = true;
	ok(provider_url_allowed(&cfg, "http://10.0.0.1/v1", err, sizeof(err)),
	    "allow_insecure_upstream allows plain http");
	cfg_free(&cfg);

	memset(&c, 0, sizeof(c));
	strcpy(c.retry_after, "2");
	is_int(2000, upstream_retry_after_ms(&c, 0), "Retry-After seconds");
	strcpy(c.retry_after, "Thu, 01 Jan 1970 00:01:40 GMT");
	is_int(40000, upstream_retry_after_ms(&c, 60000), "Retry-After date");
	strcpy(c.retry_after, "soon");
	is_int(-1, upstream_retry_after_ms(&c, 0), "unreadable Retry-After");
	strcpy(c.retry_after_ms, "1500");
	is_int(1500, upstream_retry_after_ms(&c, 0), "retry-after-ms first");
	return 0;
}
