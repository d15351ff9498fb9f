/*
 * provider.c: the preset table and URL rules.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "provider.h"
#include "xmalloc.h"

static const char *const qwen_oauth_models[] = {
	"coder-model", "qwen3-coder-plus", "qwen3-coder-flash", NULL
};
static const char *const coding_plan_models[] = {
	"qwen3-coder-plus", "qwen3-coder-next", "qwen3.5-plus", "qwen3-max",
	NULL
};
static const char *const dashscope_models[] = {
	"qwen3-coder-plus", "qwen3-coder-flash", "qwen-plus", "qwen-max",
	"text-embedding-v3", "text-embedding-v4", NULL
};
static const char *const dashscope_embed[] = {
	"text-embedding-v3", "text-embedding-v4", NULL
};
static const char *const openrouter_models[] = {
	"qwen/qwen3-coder", NULL
};
static const char *const no_models[] = { NULL };

static const struct provider providers[] = {
	{ "qwen-oauth", 1, NULL, qwen_oauth_models, no_models },
	{ "qwen-coding-plan", 0, "https://coding-intl.dashscope.aliyuncs.com/v1",
	    coding_plan_models, no_models },
	{ "qwen-coding-plan-cn", 0, "https://coding.dashscope.aliyuncs.com/v1",
	    coding_plan_models, no_models },
	{ "dashscope", 0, "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
	    dashscope_models, dashscope_embed },
	{ "openrouter", 0, "https://openrouter.ai/api/v1", openrouter_models,
	    no_models },
	{ "openai-compatible", 0, NULL, no_models, no_models },
};

const struct provider *
provider_find(const char *name)
{
	size_t	i;

	for (i = 0; name != NULL && i < sizeof(providers) / sizeof(providers[0]);
	    i++)
		if (strcmp(providers[i].name, name) == 0)
			return &providers[i];
	return NULL;
}

const char *
provider_names(void)
{
	return "qwen-oauth, qwen-coding-plan, qwen-coding-plan-cn, dashscope, "
	    "openrouter, openai-compatible";
}

char *
provider_base_url(const struct cfg *c, const char *provider, const char *acct)
{
	const struct provider	*p = provider_find(provider);
	const char		*u;
	size_t			 n;

	if (p != NULL && p->oauth) {
		u = acct != NULL && *acct != '\0' ? acct :
		    c->qwen_default_resource_url;
		n = strlen(u);
		while (n > 0 && u[n - 1] == '/')
			n--;
		int has_scheme = strstr(u, "://") != NULL;
		int has_v1 = n >= 3 && strncmp(u + n - 3, "/v1", 3) == 0;
		return xasprintf("%s%.*s%s", has_scheme ? "" : "https://",
		    (int)n, u, has_v1 ? "" : "/v1");
	}
	u = acct != NULL && *acct != '\0' ? acct : p != NULL ? p->base_url : NULL;
	if (u == NULL)
		return NULL;
	n = strlen(u);
	while (n > 0 && u[n - 1] == '/')
		n--;
	return xstrndup(u, n);
}

int
provider_url_allowed(const struct cfg *c, const char *url, char *err,
    size_t errlen)
{
	const char	*h, *e;
	char		 host[256];
	size_t		 n;

	if (strncasecmp(url, "https://", 8) == 0)
		return 1;
	if (strncasecmp(url, "http://", 7) != 0) {
		snprintf(err, errlen, "upstream URL must start with https:// "
		    "(got \"%.80s\")", url);
		return 0;
	}
	if (c->allow_insecure_upstream)
		return 1;
	h = url + 7;
	if (*h == '[') {
		e = strchr(h, ']');
		if (e == NULL)
			goto bad;
		h++;
	} else
		e = h + strcspn(h, ":/?#");
	n = (size_t)(e - h);
	if (n == 0 || n >= sizeof(host))
		goto bad;
	memcpy(host, h, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "::1") == 0)
		return 1;
	if (strncmp(host, "127.", 4) == 0) {
		unsigned int a, b, c2, d;
		char tail;
		if (sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c2, &d, &tail) == 4 &&
		    a == 127 && b < 256 && c2 < 256 && d < 256)
			return 1;
	}
bad:
	snprintf(err, errlen, "plain http:// is allowed only for loopback "
	    "upstreams (127.0.0.0/8, ::1, localhost); use https:// or set "
	    "allow_insecure_upstream");
	return 0;
}

int
provider_is_embed_model(const struct provider *p, const char *model)
{
	size_t	i;

	for (i = 0; p != NULL && p->embed_models[i] != NULL; i++)
		if (strcmp(p->embed_models[i], model) == 0)
			return 1;
	return strstr(model, "embed") != NULL;
}
