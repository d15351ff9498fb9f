/*
 * test_route_match.c: route_match() from a table: fixed paths, "*" ids
 * (one segment of our own id characters) and "**" model ids (the rest of
 * the path, '/' and other characters included, percent-decoded).
 */
#include "config.h"

#include <string.h>

#include "route.h"
#include "tap.h"

int
main(void)
{
	static const struct {
		const char	*pat, *path;
		int		 match;
		const char	*param;
		const char	*what;
	} t[] = {
		{ "/v1/models", "/v1/models", 1, NULL, "fixed" },
		{ "/v1/models", "/v1/model", 0, NULL, "fixed, other path" },
		{ "/admin/api/accounts/*", "/admin/api/accounts/k1234abcd", 1,
		    "k1234abcd", "one segment id" },
		{ "/admin/api/accounts/*", "/admin/api/accounts/a/b", 0, NULL,
		    "a slash is not an account id" },
		{ "/admin/api/accounts/*", "/admin/api/accounts/a%2Fb", 0, NULL,
		    "nor an escape" },
		{ "/v1/models/**", "/v1/models/coder-model", 1, "coder-model",
		    "model id" },
		{ "/v1/models/**", "/v1/models/qwen/qwen3-coder", 1,
		    "qwen/qwen3-coder", "OpenRouter id with a slash" },
		{ "/v1/models/**", "/v1/models/qwen%2Fqwen3-coder", 1,
		    "qwen/qwen3-coder", "the same, percent-encoded" },
		{ "/v1/models/**", "/v1/models/qwen%2fqwen3-coder", 1,
		    "qwen/qwen3-coder", "lower-case escape" },
		{ "/v1/models/**", "/v1/models/accounts/fireworks/models/qwen3",
		    1, "accounts/fireworks/models/qwen3", "several slashes" },
		{ "/v1/models/**", "/v1/models/meta-llama/llama-3.1-8b:free", 1,
		    "meta-llama/llama-3.1-8b:free", "a :variant suffix" },
		{ "/v1/models/**", "/v1/models/Qwen%2FQwen2.5-Coder%3AQ4_K_M", 1,
		    "Qwen/Qwen2.5-Coder:Q4_K_M", "escaped slash and colon" },
		{ "/v1/models/**", "/v1/models/gpt-4o+search@2025", 1,
		    "gpt-4o+search@2025", "+ and @ stay as they are" },
		{ "/v1/models/**", "/v1/models/caf%C3%A9", 1, "caf\xc3\xa9",
		    "UTF-8, escaped" },
		{ "/v1/models/**", "/v1/models/a%20b", 1, "a b", "a space" },
		{ "/v1/models/**", "/v1/models/", 0, NULL, "empty id" },
		{ "/v1/models/**", "/v1/models", 0, NULL, "no id" },
		{ "/v1/models/**", "/v1/models/a%2", 0, NULL, "short escape" },
		{ "/v1/models/**", "/v1/models/a%zz", 0, NULL, "bad escape" },
		{ "/v1/models/**", "/v1/models/a%00b", 0, NULL, "escaped NUL" },
		{ "/v1/models/**", "/v1/models/a%0Ab", 0, NULL, "escaped newline" },
		{ "/v1/models/**", "/v1/modelsx/a", 0, NULL, "other prefix" },
	};
	char	param[256], big[400];
	size_t	i;
	int	m;

	plan_lazy();
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(param, 0, sizeof(param));
		m = route_match(t[i].pat, t[i].path, param, sizeof(param));
		ok(m == t[i].match && (t[i].param == NULL ||
		    strcmp(param, t[i].param) == 0), "match: %s", t[i].what);
	}
	memset(big, 'x', sizeof(big));
	memcpy(big, "/v1/models/", 11);
	big[11 + 255] = '\0';
	ok(route_match("/v1/models/**", big, param, sizeof(param)) &&
	    strlen(param) == 255, "a 255-byte id fits");
	big[11 + 255] = 'x';
	big[11 + 256] = '\0';
	ok(!route_match("/v1/models/**", big, param, sizeof(param)),
	    "a 256-byte id does not");
	return 0;
}
