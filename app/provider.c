/*
 * provider.c: the preset table, URL rules and the answer classifier.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "catalog.h"
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

static size_t
plain_headers(const char **h, size_t n, size_t max)
{
	if (n < max)
		h[n++] = "User-Agent: qwenrelay/" PACKAGE_VERSION;
	return n;
}

/* Indexed by enum provider_id. */
static const struct provider providers[PROV__MAX] = {
	[PROV_QWEN_OAUTH] = { PROV_QWEN_OAUTH, "qwen-oauth", 1, NULL,
	    qwen_oauth_models, no_models, qwen_adjust_body, qwen_add_headers,
	    provider_classify, oauth_refresh, catalog_fetch_openai },
	[PROV_CODING_PLAN] = { PROV_CODING_PLAN, "qwen-coding-plan", 0,
	    "https://coding-intl.dashscope.aliyuncs.com/v1", coding_plan_models,
	    no_models, NULL, plain_headers, provider_classify, NULL,
	    catalog_fetch_openai },
	[PROV_CODING_PLAN_CN] = { PROV_CODING_PLAN_CN, "qwen-coding-plan-cn", 0,
	    "https://coding.dashscope.aliyuncs.com/v1", coding_plan_models,
	    no_models, NULL, plain_headers, provider_classify, NULL,
	    catalog_fetch_openai },
	[PROV_DASHSCOPE] = { PROV_DASHSCOPE, "dashscope", 0,
	    "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
	    dashscope_models, dashscope_embed, NULL, plain_headers,
	    provider_classify, NULL, catalog_fetch_openai },
	[PROV_OPENROUTER] = { PROV_OPENROUTER, "openrouter", 0,
	    "https://openrouter.ai/api/v1", openrouter_models, no_models, NULL,
	    plain_headers, provider_classify, NULL, catalog_fetch_openai },
	[PROV_OPENAI_COMPAT] = { PROV_OPENAI_COMPAT, "openai-compatible", 0,
	    NULL, no_models, no_models, NULL, plain_headers,
	    provider_classify, NULL, catalog_fetch_openai },
};

const struct provider *
provider_find(const char *name)
{
	size_t	i;

	for (i = 0; name != NULL && i < PROV__MAX; i++)
		if (strcmp(providers[i].name, name) == 0)
			return &providers[i];
	return NULL;
}

const struct provider *
provider_get(enum provider_id id)
{
	return (unsigned)id < PROV__MAX ? &providers[id] : NULL;
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
	return strcasestr(model, "embed") != NULL;
}

/* ---- classification ---- */

static int
has_ci(const char *h, const char *n)
{
	return h != NULL && strcasestr(h, n) != NULL;
}

/*
 * Out-of-credit and arrears answers, by provider, and where each is
 * documented:
 *   any      HTTP 402 Payment Required.  OpenRouter: 402 {"error":{"code":
 *            402,"message":"Insufficient credits. ..."}} when the balance
 *            or the key's credit limit cannot cover the request
 *            (openrouter.ai/docs/api-reference/errors).  DeepSeek: 402
 *            "Insufficient Balance".
 *   DashScope / Model Studio (qwen-oauth's portal, Coding Plan, dashscope):
 *            code "Arrearage", message "Access denied, please make sure
 *            your account is in good standing." (HTTP 400)
 *            (help.aliyun.com/en/model-studio/error-code); Alibaba Cloud's
 *            public "Account.Arrearage" / "InArrearOrInsufficientBalance".
 *   OpenAI   code or type "billing_hard_limit_reached" ("Billing hard limit
 *            has been reached", HTTP 400), "billing_not_active" (HTTP 429)
 *            (platform.openai.com/docs/guides/error-codes).  Its 429
 *            "insufficient_quota" ("You exceeded your current quota,
 *            please check your plan and billing details") stays quota: it
 *            parks the same way.
 *   Anthropic-compatible upstreams: 400 "Your credit balance is too low
 *            to access the Anthropic API" (docs.anthropic.com/en/api/errors).
 */
static int
is_billing(long st, const char *code, const char *type, const char *msg)
{
	static const char *const codes[] = {
		"arrearage", "insufficient_balance", "inarrear",
		"billing_hard_limit_reached", "billing_not_active",
		"insufficient_credits", "payment_required",
	};
	static const char *const words[] = {
		"insufficient credits", "insufficient balance",
		"make sure your account is in good standing",
		"credit balance is too low", "billing hard limit",
		"account is in arrears", "overdue payment",
	};
	size_t	i;

	if (st == 402)
		return 1;
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (has_ci(code, codes[i]) || has_ci(type, codes[i]))
			return 1;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (has_ci(msg, words[i]))
			return 1;
	return 0;
}

enum relay_class
provider_classify(long st, const char *body)
{
	json_object	*o = NULL, *e, *v;
	const char	*code = NULL, *type = NULL, *msg = NULL;
	int		 quota;
	enum relay_class c;

	if (st >= 200 && st < 300)
		return RC_OK;
	if (body != NULL && (o = json_tokener_parse(body)) != NULL &&
	    json_object_is_type(o, json_type_object)) {
		if (json_object_object_get_ex(o, "error", &e) &&
		    json_object_is_type(e, json_type_object)) {
			if (json_object_object_get_ex(e, "code", &v))
				code = json_object_get_string(v);
			if (json_object_object_get_ex(e, "type", &v))
				type = json_object_get_string(v);
			if (json_object_object_get_ex(e, "message", &v))
				msg = json_object_get_string(v);
		} else if (json_object_object_get_ex(o, "error", &e))
			msg = json_object_get_string(e);
		else {
			/* DashScope's native shape: {"code","message"} */
			if (json_object_object_get_ex(o, "code", &v))
				code = json_object_get_string(v);
			if (json_object_object_get_ex(o, "message", &v))
				msg = json_object_get_string(v);
		}
	}
	quota = has_ci(code, "insufficient_quota") ||
	    has_ci(code, "quota_exceeded") ||
	    has_ci(type, "insufficient_quota") ||
	    has_ci(type, "quota_exceeded") ||
	    has_ci(msg, "quota exceeded") ||
	    has_ci(msg, "allocated quota");
	if (is_billing(st, code, type, msg) && st < 500)
		c = RC_BILLING;
	else if (st == 429)
		c = quota ? RC_QUOTA : RC_RATE;
	else if (st == 403)
		c = quota ? RC_QUOTA : RC_AUTH;
	else if (st == 401)
		c = RC_AUTH;
	else if (st >= 500 || st == 408)
		c = RC_FAULT;
	else
		c = RC_CLIENT;
	json_object_put(o);
	return c;
}
