/* test_cfg.c: defaults, file, environment overrides, errors naming keys. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "tap.h"

static const char *
write_file(const char *name, const char *text)
{
	static char	 path[512];
	FILE		*f;

	snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), name);
	if ((f = fopen(path, "w")) == NULL)
		bail("cannot write %s", path);
	fputs(text, f);
	fclose(f);
	return path;
}

static int
load_err(const char *path, char *err, size_t n)
{
	struct cfg	c;
	int		rc = cfg_load(&c, path, err, n);

	cfg_free(&c);
	return rc;
}

int
main(void)
{
	struct cfg	 c;
	char		 err[512];
	const char	*p;

	plan_lazy();
	unsetenv("QWENRELAY_CONFIG");
	is_int(0, cfg_load(&c, "/nonexistent/qwenrelay.json", err,
	    sizeof(err)), "a missing file means defaults");
	is_int(10, c.max_accounts, "max_accounts defaults to 10");
	is_int(33554432, c.max_body_bytes, "max_body_bytes defaults to 32 MiB");
	is_string("sticky", c.account_selection_strategy, "strategy default");
	is_string("https://chat.qwen.ai", c.qwen_oauth_base_url,
	    "oauth base default");
	is_int(1800, c.proactive_refresh_buffer_seconds, "refresh buffer");
	ok(c.switch_on_first_rate_limit && c.request_log && !c.auth_disabled,
	    "boolean defaults");
	cfg_free(&c);

	p = write_file("a.json", "{\"max_accounts\": 3, \"account_selection_"
	    "strategy\": \"round-robin\", \"cors_allowed_origins\": "
	    "[\"http://x\"], \"model_aliases\": {\"gpt-4o\": \"coder-model\"}}");
	is_int(0, cfg_load(&c, p, err, sizeof(err)), "file loads");
	is_int(3, c.max_accounts, "file value wins over default");
	is_string("round-robin", c.account_selection_strategy, "enum from file");
	is_string("http://x", c.cors_allowed_origins[0], "list from file");
	is_string("coder-model", cfg_alias(&c, "gpt-4o"), "alias applies");
	is_string("other", cfg_alias(&c, "other"), "no alias: same name");
	cfg_free(&c);


	setenv("QWENRELAY_MAX_ACCOUNTS", "5", 1);
	setenv("QWENRELAY_CORS_ALLOWED_ORIGINS", "http://a, http://b", 1);
	is_int(0, cfg_load(&c, p, err, sizeof(err)), "env loads");
	is_int(5, c.max_accounts, "environment wins over file");
	ok(c.cors_allowed_origins[1] != NULL &&
	    strcmp(c.cors_allowed_origins[1], "http://b") == 0,
	    "comma list from environment");
	cfg_free(&c);
	unsetenv("QWENRELAY_CORS_ALLOWED_ORIGINS");

	setenv("QWENRELAY_MAX_ACCOUNTS", "0", 1);
	ok(load_err(p, err, sizeof(err)) == -1 &&
	    strstr(err, "max_accounts") != NULL, "bad env value names key: %s",
	    err);
	unsetenv("QWENRELAY_MAX_ACCOUNTS");
	setenv("QWENRELAY_MAX_ACCOUNT", "3", 1);
	ok(load_err(p, err, sizeof(err)) == -1 &&
	    strstr(err, "QWENRELAY_MAX_ACCOUNT") != NULL,
	    "unknown env setting is named: %s", err);
	unsetenv("QWENRELAY_MAX_ACCOUNT");

	p = write_file("b.json", "{\"max_acounts\": 3}");
	ok(load_err(p, err, sizeof(err)) == -1 &&
	    strstr(err, "max_acounts: unknown key") != NULL,
	    "typo in the file is named: %s", err);
	p = write_file("c.json", "{\"workers\": \"8\"}");
	ok(load_err(p, err, sizeof(err)) == -1 &&
	    strstr(err, "workers: wrong type") != NULL, "wrong type: %s", err);
	p = write_file("d.json", "{\"log_level\": \"loud\"}");
	ok(load_err(p, err, sizeof(err)) == -1 &&
	    strstr(err, "log_level") != NULL, "bad enum: %s", err);
	p = write_file("e.json", "{\"workers\": 8,");
	ok(load_err(p, err, sizeof(err)) == -1 &&
	    strstr(err, "not valid JSON") != NULL, "malformed JSON: %s", err);
	p = write_file("f.json", "{\"qwen_oauth_base_url\": \"ftp://x\"}");
	ok(load_err(p, err, sizeof(err)) == -1 &&
	    strstr(err, "qwen_oauth_base_url") != NULL, "bad URL: %s", err);
	p = write_file("g.json", "{\"exponential_backoff_base_ms\": 5000, "
	    "\"exponential_backoff_max_ms\": 1000}");
	ok(load_err(p, err, sizeof(err)) == -1 &&
	    strstr(err, "exponential_backoff") != NULL, "inconsistent bounds");
	{
		static const struct { const char *in, *out; } al[] = {
			{ "claude-sonnet-4-5", "qwen3-coder-plus" },
			{ "claude-3-5-haiku-latest", "qwen3-coder-flash" },
			{ "claude-opus", "coder-model" },	/* exact wins */
			{ "claude-", "qwen3-coder-plus" },	/* empty tail */
			{ "claud", "claud" },			/* no match */
			{ "gpt-5", "qwen3-coder-plus" },
			{ "gpt-5-codex", "coder-model" },	/* longest */
			{ "o3", "o3" },
		};
		size_t i;
		const char *q;

		q = write_file("al.json", "{\"model_aliases\": {"
		    "\"claude-*\": \"qwen3-coder-plus\", "
		    "\"claude-3-5-haiku*\": \"qwen3-coder-flash\", "
		    "\"claude-opus\": \"coder-model\", "
		    "\"gpt-5*\": \"qwen3-coder-plus\", "
		    "\"gpt-5-codex*\": \"coder-model\"}}");
		is_int(0, cfg_load(&c, q, err, sizeof(err)), "prefix aliases load");
		for (i = 0; i < sizeof(al) / sizeof(al[0]); i++)
			is_string(al[i].out, cfg_alias(&c, al[i].in),
			    "alias %s -> %s", al[i].in, al[i].out);
		cfg_free(&c);
		q = write_file("al2.json", "{\"model_aliases\": "
		    "{\"cl*ude\": \"x\"}}");
		ok(cfg_load(&c, q, err, sizeof(err)) != 0 &&
		    strstr(err, "'*'") != NULL, "a '*' not at the end is refused: "
		    "%s", err);
		cfg_free(&c);
	}
	return 0;
}
