/*
 * provider_qwen.c: what the qwen-oauth provider does to a request, per
 * qwen-protocol.md section 6 (what qwen-code sends, and what the portal
 * insists on).
 *
 * Each adjustment touches only what the portal needs, and never a choice
 * the client made explicitly without saying so here:
 *   - messages must start with a system message whose content is an array
 *     carrying cache_control (the portal answered 400 otherwise, section
 *     6 "Portal strictness").  Every client system text is merged into
 *     that one, in order, as CLIProxyAPI does: Qwen's chat template
 *     refuses a system message that is not first, so a later system
 *     message cannot stay where the client put it.  The merge changes
 *     where such text sits, never what it says.
 *   - streaming: stream_options.include_usage is forced on so the gateway
 *     can count tokens; the relay drops the usage-only chunk again unless
 *     the client asked for it (struct client_wants).
 *   - max_tokens / max_completion_tokens above the model's output limit
 *     (65,536, section 5) are capped: the portal would refuse them, and
 *     qwen-code caps the same way.  A smaller value is left alone.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "provider.h"
#include "xmalloc.h"

#define QWEN_OUTPUT_LIMIT	65536
#define QWEN_USER_AGENT		"QwenCode/0.15.10 (linux; x64)"

static int
is_system(json_object *m)
{
	json_object	*role;

	return json_object_object_get_ex(m, "role", &role) &&
	    json_object_is_type(role, json_type_string) &&
	    strcmp(json_object_get_string(role), "system") == 0;
}

/* The text of a message content: a string, or its text parts joined. */
static char *
text_of(json_object *content)
{
	size_t		 i, n;
	json_object	*part, *t;
	char		*acc = NULL, *next;

	if (content != NULL && json_object_is_type(content, json_type_string))
		return xstrdup(json_object_get_string(content));
	if (content == NULL || !json_object_is_type(content, json_type_array))
		return xstrdup("");
	n = json_object_array_length(content);
	for (i = 0; i < n; i++) {
		part = json_object_array_get_idx(content, i);
		if (!json_object_object_get_ex(part, "text", &t) ||
		    !json_object_is_type(t, json_type_string))
			continue;
		next = xasprintf("%s%s%s", acc ? acc : "", acc ? "\n" : "",
		    json_object_get_string(t));
		free(acc);
		acc = next;
	}
	return acc != NULL ? acc : xstrdup("");
}

static void
lead_system(json_object *body)
{
	json_object	*msgs, *nm, *m, *content, *sys, *part, *arr, *v;
	size_t		 i, n;
	char		*merged = NULL, *t, *next;

	if (!json_object_object_get_ex(body, "messages", &msgs) ||
	    !json_object_is_type(msgs, json_type_array))
		return;
	n = json_object_array_length(msgs);
	for (i = 0; i < n; i++) {
		m = json_object_array_get_idx(msgs, i);
		if (!is_system(m))
			continue;
		content = NULL;
		json_object_object_get_ex(m, "content", &content);
		t = text_of(content);
		next = xasprintf("%s%s%s", merged ? merged : "",
		    merged && *t ? "\n\n" : "", t);
		free(t);
		free(merged);
		merged = next;
	}
	part = json_object_new_object();
	json_object_object_add(part, "type", json_object_new_string("text"));
	json_object_object_add(part, "text",
	    json_object_new_string(merged != NULL ? merged : ""));
	v = json_object_new_object();
	json_object_object_add(v, "type", json_object_new_string("ephemeral"));
	json_object_object_add(part, "cache_control", v);
	arr = json_object_new_array();
	json_object_array_add(arr, part);
	sys = json_object_new_object();
	json_object_object_add(sys, "role", json_object_new_string("system"));
	json_object_object_add(sys, "content", arr);
	nm = json_object_new_array();
	json_object_array_add(nm, sys);
	for (i = 0; i < n; i++) {
		m = json_object_array_get_idx(msgs, i);
		if (!is_system(m))
			json_object_array_add(nm, json_object_get(m));
	}
	json_object_object_add(body, "messages", nm);
	free(merged);
}

void
qwen_adjust_body(json_object *body, enum provider_call call,
    const struct client_wants *w)
{
	static const char *const caps[] = {
		"max_tokens", "max_completion_tokens"
	};
	json_object	*so, *v;
	size_t		 i;

	if (call != PCALL_CHAT)
		return;
	lead_system(body);
	if (w->stream) {
		if (!json_object_object_get_ex(body, "stream_options", &so) ||
		    !json_object_is_type(so, json_type_object)) {
			so = json_object_new_object();
			json_object_object_add(body, "stream_options", so);
		}
		json_object_object_add(so, "include_usage",
		    json_object_new_boolean(1));
	}
	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (json_object_object_get_ex(body, caps[i], &v) &&
		    json_object_is_type(v, json_type_int) &&
		    json_object_get_int64(v) > QWEN_OUTPUT_LIMIT)
			json_object_object_add(body, caps[i],
			    json_object_new_int(QWEN_OUTPUT_LIMIT));
}

size_t
qwen_add_headers(const char **h, size_t n, size_t max)
{
	static const char *const mine[] = {
		"User-Agent: " QWEN_USER_AGENT,
		"X-DashScope-UserAgent: " QWEN_USER_AGENT,
		"X-DashScope-CacheControl: enable",
		"X-DashScope-AuthType: qwen-oauth",
	};
	size_t	i;

	for (i = 0; i < sizeof(mine) / sizeof(mine[0]) && n < max; i++)
		h[n++] = mine[i];
	return n;
}
