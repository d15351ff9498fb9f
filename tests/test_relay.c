/*
 * test_relay.c: answer classification, the qwen-oauth body adjustments,
 * base URLs from resource_url, the http-only-on-loopback rule, and
 * Retry-After parsing.
 */
#include "config.h"

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
	};
	struct cfg		 cfg;
	struct upstream_call	 c;
	char			 err[256], *u;
	const char		*s;
	size_t			 i;

	plan_lazy();
	for (i = 0; i < sizeof(cls) / sizeof(cls[0]); i++)
		is_int(cls[i].c, relay_classify(cls[i].st, cls[i].body),
		    "classify %s", cls[i].what);

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
