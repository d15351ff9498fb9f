/*
 * xlate_responses.c: OpenAI Responses API <-> chat completions.
 *
 * Sources for every shape here:
 *   request (input items, instructions, tools, tool_choice,
 *   max_output_tokens, reasoning, text.format) and the response object:
 *     https://platform.openai.com/docs/api-reference/responses/create
 *   streaming events (each with type and sequence_number): response.created,
 *   response.in_progress, response.output_item.added,
 *   response.content_part.added, response.output_text.delta / .done,
 *   response.content_part.done, response.function_call_arguments.delta /
 *   .done, response.reasoning_text.delta / .done, response.output_item.done,
 *   response.completed / .incomplete / .failed:
 *     https://platform.openai.com/docs/api-reference/responses-streaming
 *   migrating from chat completions (items <-> messages, function_call /
 *   function_call_output <-> tool_calls / role "tool"):
 *     https://platform.openai.com/docs/guides/migrate-to-responses
 * The openai-node SDK (src/lib/responses/ResponseStream.ts) builds its
 * snapshot from output_item.added + deltas and checks that every delta
 * names an item it has seen; Codex CLI (codex-rs/core/src/client.rs)
 * reads output_item.done items and response.completed's id and usage.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upcheck.h"
#include "xlate.h"
#include "xmalloc.h"

#define MAX_TOOLS	128

/* ---- request ---- */

static json_object *
chat_msg(const char *role, json_object *content)
{
	json_object	*m = json_object_new_object();

	xl_add_str(m, "role", role);
	json_object_object_add(m, "content", content);
	return m;
}

static json_object *
text_part(const char *t)
{
	json_object	*p = json_object_new_object();

	xl_add_str(p, "type", "text");
	xl_add_str(p, "text", t);
	return p;
}

/*
 * A message item's content -> chat content: a string stays; parts become
 * chat parts, collapsed to one string when they are all text.  *why is
 * set for a part the pool cannot take.
 */
static json_object *
content_of(json_object *c, const char **why)
{
	json_object	*parts, *p, *u;
	struct xbuf	 b = { NULL, 0, 0 };
	size_t		 i, n;
	int		 all_text = 1;

	if (json_object_is_type(c, json_type_string))
		return json_object_get(c);
	if (!json_object_is_type(c, json_type_array)) {
		*why = "a message's 'content' must be a string or an array of "
		    "parts.";
		return NULL;
	}
	parts = json_object_new_array();
	n = json_object_array_length(c);
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(c, i);
		const char *ty = xl_str(e, "type");
		if (ty == NULL)
			continue;
		if ((strcmp(ty, "input_text") == 0 ||
		    strcmp(ty, "output_text") == 0 ||
		    strcmp(ty, "text") == 0) && xl_str(e, "text") != NULL)
			json_object_array_add(parts, text_part(xl_str(e, "text")));
		else if (strcmp(ty, "refusal") == 0 &&
		    xl_str(e, "refusal") != NULL)
			json_object_array_add(parts,
			    text_part(xl_str(e, "refusal")));
		else if (strcmp(ty, "input_image") == 0) {
			if (xl_str(e, "image_url") == NULL) {
				*why = "input_image needs 'image_url' (a URL or "
				    "a data: URL); file_id is not supported.";
				json_object_put(parts);
				return NULL;
			}
			u = json_object_new_object();
			xl_add_str(u, "url", xl_str(e, "image_url"));
			if (xl_str(e, "detail") != NULL)
				xl_add_str(u, "detail", xl_str(e, "detail"));
			p = json_object_new_object();
			xl_add_str(p, "type", "image_url");
			json_object_object_add(p, "image_url", u);
			json_object_array_add(parts, p);
			all_text = 0;
		} else if (strcmp(ty, "input_file") == 0) {
			*why = "input_file parts are not supported; send the "
			    "file's text as input_text.";
			json_object_put(parts);
			return NULL;
		}
	}
	if (!all_text)
		return parts;
	n = json_object_array_length(parts);
	for (i = 0; i < n; i++)
		xbuf_puts(&b, xl_str(json_object_array_get_idx(parts, i),
		    "text"));
	json_object_put(parts);
	p = json_object_new_string(b.p != NULL ? b.p : "");
	xbuf_free(&b);
	return p;
}

/* The text of a function_call_output's output (a string or parts). */
static json_object *
output_text_of(json_object *o)
{
	const char	*why = NULL;
	json_object	*c;

	if (o == NULL)
		return json_object_new_string("");
	if (json_object_is_type(o, json_type_string))
		return json_object_get(o);
	c = content_of(o, &why);
	if (c == NULL || !json_object_is_type(c, json_type_string)) {
		json_object_put(c);
		return json_object_new_string(json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PLAIN));
	}
	return c;
}

/* A function_call item joins the assistant message just before it. */
static void
add_call(json_object *msgs, json_object *item)
{
	json_object	*last = NULL, *calls, *c, *f;
	size_t		 n = json_object_array_length(msgs);
	const char	*role;

	if (n > 0)
		last = json_object_array_get_idx(msgs, n - 1);
	role = xl_str(last, "role");
	if (role == NULL || strcmp(role, "assistant") != 0) {
		last = chat_msg("assistant", NULL);
		json_object_array_add(msgs, last);
	}
	if ((calls = xl_get(last, "tool_calls", json_type_array)) == NULL) {
		calls = json_object_new_array();
		json_object_object_add(last, "tool_calls", calls);
	}
	f = json_object_new_object();
	xl_add_str(f, "name", xl_str(item, "name"));
	xl_add_str(f, "arguments", xl_str(item, "arguments") ?
	    xl_str(item, "arguments") : "{}");
	c = json_object_new_object();
	xl_add_str(c, "id", xl_str(item, "call_id"));
	xl_add_str(c, "type", "function");
	json_object_object_add(c, "function", f);
	json_object_array_add(calls, c);
}

static const char *
add_item(json_object *msgs, json_object *item)
{
	const char	*ty = xl_str(item, "type"), *role, *why = NULL;
	json_object	*c = NULL, *m;

	if (ty == NULL && xl_str(item, "role") != NULL)
		ty = "message";
	if (ty == NULL)
		return "each input item needs a 'type'.";
	if (strcmp(ty, "message") == 0) {
		role = xl_str(item, "role");
		if (role == NULL || (strcmp(role, "user") != 0 &&
		    strcmp(role, "assistant") != 0 &&
		    strcmp(role, "system") != 0 &&
		    strcmp(role, "developer") != 0))
			return "a message's 'role' must be user, assistant, "
			    "system or developer.";
		json_object_object_get_ex(item, "content", &c);
		if ((c = content_of(c, &why)) == NULL)
			return why;
		m = chat_msg(strcmp(role, "developer") == 0 ? "system" : role,
		    c);
		json_object_array_add(msgs, m);
		return NULL;
	}
	if (strcmp(ty, "function_call") == 0) {
		if (xl_str(item, "call_id") == NULL ||
		    xl_str(item, "name") == NULL)
			return "a function_call item needs 'call_id' and "
			    "'name'.";
		add_call(msgs, item);
		return NULL;
	}
	if (strcmp(ty, "function_call_output") == 0) {
		if (xl_str(item, "call_id") == NULL)
			return "a function_call_output item needs 'call_id'.";
		json_object_object_get_ex(item, "output", &c);
		m = chat_msg("tool", output_text_of(c));
		xl_add_str(m, "tool_call_id", xl_str(item, "call_id"));
		json_object_array_add(msgs, m);
		return NULL;
	}
	if (strcmp(ty, "reasoning") == 0)
		return NULL;	/* the upstream keeps no reasoning state */
	if (strcmp(ty, "item_reference") == 0)
		return "item_reference needs stored responses, which qwenrelay "
		    "does not keep; send the items themselves.";
	return NULL;		/* hosted-tool items: nothing to replay */
}

static json_object *
tools_of(json_object *tools)
{
	json_object	*out = json_object_new_array(), *t, *f, *v;
	size_t		 i, n = json_object_array_length(tools);

	for (i = 0; i < n; i++) {
		t = json_object_array_get_idx(tools, i);
		/* Hosted tools (web_search, file_search, ...) need OpenAI. */
		if (xl_str(t, "type") == NULL ||
		    strcmp(xl_str(t, "type"), "function") != 0 ||
		    xl_str(t, "name") == NULL)
			continue;
		f = json_object_new_object();
		xl_add_str(f, "name", xl_str(t, "name"));
		if (xl_str(t, "description") != NULL)
			xl_add_str(f, "description", xl_str(t, "description"));
		if ((v = xl_get(t, "parameters", json_type_object)) != NULL)
			json_object_object_add(f, "parameters",
			    json_object_get(v));
		if ((v = xl_get(t, "strict", json_type_boolean)) != NULL)
			json_object_object_add(f, "strict", json_object_get(v));
		v = json_object_new_object();
		xl_add_str(v, "type", "function");
		json_object_object_add(v, "function", f);
		json_object_array_add(out, v);
	}
	return out;
}

static json_object *
tool_choice_of(json_object *tc)
{
	json_object	*o, *f;

	if (json_object_is_type(tc, json_type_string))
		return json_object_get(tc);
	if (xl_str(tc, "type") != NULL &&
	    strcmp(xl_str(tc, "type"), "function") == 0 &&
	    xl_str(tc, "name") != NULL) {
		f = json_object_new_object();
		xl_add_str(f, "name", xl_str(tc, "name"));
		o = json_object_new_object();
		xl_add_str(o, "type", "function");
		json_object_object_add(o, "function", f);
		return o;
	}
	return json_object_new_string("auto");
}

/* text.format -> response_format. */
static json_object *
format_of(json_object *fmt)
{
	const char	*ty = xl_str(fmt, "type");
	json_object	*o, *js, *v;

	if (ty == NULL || strcmp(ty, "text") == 0)
		return NULL;
	o = json_object_new_object();
	xl_add_str(o, "type", ty);
	if (strcmp(ty, "json_schema") == 0) {
		js = json_object_new_object();
		xl_add_str(js, "name", xl_str(fmt, "name") ? xl_str(fmt, "name") :
		    "response");
		if ((v = xl_get(fmt, "schema", json_type_object)) != NULL)
			json_object_object_add(js, "schema", json_object_get(v));
		if ((v = xl_get(fmt, "strict", json_type_boolean)) != NULL)
			json_object_object_add(js, "strict", json_object_get(v));
		json_object_object_add(o, "json_schema", js);
	}
	return o;
}

static void
copy_num(json_object *out, const char *to, json_object *in, const char *from)
{
	json_object	*v;

	if ((v = xl_get(in, from, json_type_double)) != NULL ||
	    (v = xl_get(in, from, json_type_int)) != NULL)
		json_object_object_add(out, to, json_object_get(v));
}

static json_object *
rsp_request(json_object *in, json_object *history, char *err, size_t errsz)
{
	json_object	*out, *msgs, *input, *v, *m;
	const char	*why = NULL;
	size_t		 i, n;

	if (xl_str(in, "model") == NULL || *xl_str(in, "model") == '\0') {
		snprintf(err, errsz, "'model' must be a non-empty string (see "
		    "GET /v1/models).");
		return NULL;
	}
	if (xl_str(in, "previous_response_id") != NULL && history == NULL) {
		snprintf(err, errsz, "previous_response_id is not supported "
		    "here: no stored conversation was given. Send the whole "
		    "conversation in 'input'.");
		return NULL;
	}
	if (!json_object_object_get_ex(in, "input", &input) ||
	    (!json_object_is_type(input, json_type_string) &&
	    !json_object_is_type(input, json_type_array)) ||
	    (json_object_is_type(input, json_type_array) &&
	    json_object_array_length(input) == 0)) {
		snprintf(err, errsz, "'input' must be a string or a non-empty "
		    "array of items.");
		return NULL;
	}
	out = json_object_new_object();
	xl_add_str(out, "model", xl_str(in, "model"));
	msgs = json_object_new_array();
	json_object_object_add(out, "messages", msgs);
	if (xl_str(in, "instructions") != NULL &&
	    *xl_str(in, "instructions") != '\0')
		json_object_array_add(msgs, chat_msg("system",
		    json_object_new_string(xl_str(in, "instructions"))));
	n = history != NULL ? json_object_array_length(history) : 0;
	for (i = 0; i < n; i++)
		json_object_array_add(msgs, json_object_get(
		    json_object_array_get_idx(history, i)));
	if (json_object_is_type(input, json_type_string))
		json_object_array_add(msgs, chat_msg("user",
		    json_object_get(input)));
	else {
		n = json_object_array_length(input);
		for (i = 0; i < n && why == NULL; i++)
			why = add_item(msgs, json_object_array_get_idx(input,
			    i));
		if (why != NULL) {
			snprintf(err, errsz, "input[%zu]: %s", i - 1, why);
			json_object_put(out);
			return NULL;
		}
	}
	if (json_object_array_length(msgs) == 0) {
		snprintf(err, errsz, "'input' holds no message to answer.");
		json_object_put(out);
		return NULL;
	}
	if ((m = xl_get(in, "tools", json_type_array)) != NULL) {
		v = tools_of(m);
		if (json_object_array_length(v) > 0)
			json_object_object_add(out, "tools", v);
		else
			json_object_put(v);
	}
	if (json_object_object_get_ex(in, "tool_choice", &m) && m != NULL &&
	    json_object_object_get_ex(out, "tools", NULL))
		json_object_object_add(out, "tool_choice", tool_choice_of(m));
	if ((m = xl_get(in, "parallel_tool_calls", json_type_boolean)) != NULL &&
	    json_object_object_get_ex(out, "tools", NULL))
		json_object_object_add(out, "parallel_tool_calls",
		    json_object_get(m));
	if ((m = xl_get(in, "max_output_tokens", json_type_int)) != NULL)
		json_object_object_add(out, "max_tokens", json_object_get(m));
	copy_num(out, "temperature", in, "temperature");
	copy_num(out, "top_p", in, "top_p");
	if ((m = xl_get(in, "reasoning", json_type_object)) != NULL &&
	    xl_str(m, "effort") != NULL)
		xl_add_str(out, "reasoning_effort", xl_str(m, "effort"));
	if ((m = xl_get(in, "text", json_type_object)) != NULL &&
	    (v = format_of(xl_get(m, "format", json_type_object))) != NULL)
		json_object_object_add(out, "response_format", v);
	if (xl_str(in, "user") != NULL)
		xl_add_str(out, "user", xl_str(in, "user"));
	if ((m = xl_get(in, "stream", json_type_boolean)) != NULL &&
	    json_object_get_boolean(m)) {
		json_object_object_add(out, "stream",
		    json_object_new_boolean(1));
		v = json_object_new_object();
		json_object_object_add(v, "include_usage",
		    json_object_new_boolean(1));
		json_object_object_add(out, "stream_options", v);
	}
	return out;
}

/* ---- the response object ---- */

struct usage {
	int64_t	in;
	int64_t	out;
	int64_t	cached;
	int64_t	reasoning;
	int	seen;
};

static void
usage_read(struct usage *u, json_object *o)
{
	json_object	*v, *d;

	if (o == NULL)
		return;
	u->seen = 1;
	if ((v = xl_get(o, "prompt_tokens", json_type_int)) != NULL)
		u->in = upcheck_tokens(v, NULL);
	if ((v = xl_get(o, "completion_tokens", json_type_int)) != NULL)
		u->out = upcheck_tokens(v, NULL);
	if ((d = xl_get(o, "prompt_tokens_details", json_type_object)) != NULL &&
	    (v = xl_get(d, "cached_tokens", json_type_int)) != NULL)
		u->cached = upcheck_tokens(v, NULL);
	if ((d = xl_get(o, "completion_tokens_details", json_type_object))
	    != NULL && (v = xl_get(d, "reasoning_tokens", json_type_int)) != NULL)
		u->reasoning = upcheck_tokens(v, NULL);
}

static json_object *
usage_obj(const struct usage *u)
{
	json_object	*o, *d;

	if (!u->seen)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "input_tokens", json_object_new_int64(u->in));
	d = json_object_new_object();
	json_object_object_add(d, "cached_tokens",
	    json_object_new_int64(u->cached));
	json_object_object_add(o, "input_tokens_details", d);
	json_object_object_add(o, "output_tokens",
	    json_object_new_int64(u->out));
	d = json_object_new_object();
	json_object_object_add(d, "reasoning_tokens",
	    json_object_new_int64(u->reasoning));
	json_object_object_add(o, "output_tokens_details", d);
	json_object_object_add(o, "total_tokens",
	    json_object_new_int64(u->in + u->out));
	return o;
}

/* Echo a request field (or its default) into the response object. */
static void
echo(json_object *o, json_object *req, const char *key, json_object *dflt)
{
	json_object	*v;

	if (req != NULL && json_object_object_get_ex(req, key, &v) &&
	    v != NULL) {
		json_object_put(dflt);
		json_object_object_add(o, key, json_object_get(v));
	} else
		json_object_object_add(o, key, dflt);
}

/*
 * The response object: status in_progress | completed | incomplete |
 * failed; output is taken (a new reference is added), usage may be NULL.
 */
static json_object *
response_obj(const char *id, const char *model, int64_t created,
    json_object *req, const char *status, const char *incomplete,
    json_object *output, json_object *usage, json_object *error)
{
	json_object	*o, *v, *f;
	struct xbuf	 text = { NULL, 0, 0 };
	size_t		 i, j, n, m;

	o = json_object_new_object();
	xl_add_str(o, "id", id);
	xl_add_str(o, "object", "response");
	json_object_object_add(o, "created_at", json_object_new_int64(created));
	xl_add_str(o, "status", status);
	json_object_object_add(o, "background", json_object_new_boolean(0));
	json_object_object_add(o, "error", error);
	if (incomplete != NULL) {
		v = json_object_new_object();
		xl_add_str(v, "reason", incomplete);
		json_object_object_add(o, "incomplete_details", v);
	} else
		json_object_object_add(o, "incomplete_details", NULL);
	echo(o, req, "instructions", NULL);
	echo(o, req, "max_output_tokens", NULL);
	xl_add_str(o, "model", model);
	json_object_object_add(o, "output", json_object_get(output));
	echo(o, req, "parallel_tool_calls", json_object_new_boolean(1));
	echo(o, req, "previous_response_id", NULL);
	v = json_object_new_object();
	json_object_object_add(v, "effort", NULL);
	json_object_object_add(v, "summary", NULL);
	echo(o, req, "reasoning", v);
	echo(o, req, "store", json_object_new_boolean(1));
	echo(o, req, "temperature", json_object_new_double(1.0));
	v = json_object_new_object();
	f = json_object_new_object();
	xl_add_str(f, "type", "text");
	json_object_object_add(v, "format", f);
	echo(o, req, "text", v);
	echo(o, req, "tool_choice", json_object_new_string("auto"));
	echo(o, req, "tools", json_object_new_array());
	echo(o, req, "top_p", json_object_new_double(1.0));
	xl_add_str(o, "truncation", "disabled");
	json_object_object_add(o, "usage", usage);
	echo(o, req, "metadata", json_object_new_object());
	/* output_text: the SDK derives it too; plain HTTP clients read it. */
	n = json_object_array_length(output);
	for (i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(output, i), *c;
		if (strcmp(xl_str(it, "type"), "message") != 0 ||
		    (c = xl_get(it, "content", json_type_array)) == NULL)
			continue;
		m = json_object_array_length(c);
		for (j = 0; j < m; j++) {
			const char *t = xl_str(json_object_array_get_idx(c, j),
			    "text");
			if (t != NULL)
				xbuf_puts(&text, t);
		}
	}
	xl_add_str(o, "output_text", text.p != NULL ? text.p : "");
	xbuf_free(&text);
	return o;
}

static json_object *
message_item(const char *id, const char *status, const char *text)
{
	json_object	*it, *c, *p;

	it = json_object_new_object();
	xl_add_str(it, "id", id);
	xl_add_str(it, "type", "message");
	xl_add_str(it, "status", status);
	xl_add_str(it, "role", "assistant");
	c = json_object_new_array();
	if (text != NULL) {
		p = json_object_new_object();
		xl_add_str(p, "type", "output_text");
		xl_add_str(p, "text", text);
		json_object_object_add(p, "annotations",
		    json_object_new_array());
		json_object_array_add(c, p);
	}
	json_object_object_add(it, "content", c);
	return it;
}

static json_object *
reasoning_item(const char *id, const char *text)
{
	json_object	*it, *c, *p;

	it = json_object_new_object();
	xl_add_str(it, "id", id);
	xl_add_str(it, "type", "reasoning");
	json_object_object_add(it, "summary", json_object_new_array());
	c = json_object_new_array();
	if (text != NULL) {
		p = json_object_new_object();
		xl_add_str(p, "type", "reasoning_text");
		xl_add_str(p, "text", text);
		json_object_array_add(c, p);
	}
	json_object_object_add(it, "content", c);
	return it;
}

static json_object *
call_item(const char *id, const char *status, const char *call_id,
    const char *name, const char *args)
{
	json_object	*it = json_object_new_object();

	xl_add_str(it, "id", id);
	xl_add_str(it, "type", "function_call");
	xl_add_str(it, "status", status);
	xl_add_str(it, "call_id", call_id);
	xl_add_str(it, "name", name);
	xl_add_str(it, "arguments", args);
	return it;
}

/* finish_reason length: incomplete, max_output_tokens (else NULL). */
static const char *
incomplete_of(const char *finish)
{
	if (finish == NULL)
		return NULL;
	if (strcmp(finish, "length") == 0)
		return "max_output_tokens";
	if (strcmp(finish, "content_filter") == 0)
		return "content_filter";
	return NULL;
}

static json_object *
rsp_answer(const struct xlate_ctx *x, json_object *chat)
{
	json_object	*choices, *choice, *msg, *calls, *output, *o;
	struct usage	 u;
	const char	*t, *inc;
	char		 id[160];
	size_t		 i, n;

	memset(&u, 0, sizeof(u));
	choices = xl_get(chat, "choices", json_type_array);
	choice = choices != NULL && json_object_array_length(choices) > 0 ?
	    json_object_array_get_idx(choices, 0) : NULL;
	msg = xl_get(choice, "message", json_type_object);
	output = json_object_new_array();
	if ((t = xl_str(msg, "reasoning_content")) != NULL && *t != '\0') {
		snprintf(id, sizeof(id), "rs_%s_0", x->id + 5);
		json_object_array_add(output, reasoning_item(id, t));
	}
	if ((t = xl_str(msg, "content")) != NULL && *t != '\0') {
		snprintf(id, sizeof(id), "msg_%s_%zu", x->id + 5,
		    json_object_array_length(output));
		json_object_array_add(output, message_item(id, "completed", t));
	}
	if ((calls = xl_get(msg, "tool_calls", json_type_array)) != NULL) {
		n = json_object_array_length(calls);
		for (i = 0; i < n; i++) {
			json_object *c = json_object_array_get_idx(calls, i);
			json_object *f = xl_get(c, "function", json_type_object);
			char cid[192];
			snprintf(id, sizeof(id), "fc_%s_%zu", x->id + 5,
			    json_object_array_length(output));
			snprintf(cid, sizeof(cid), "%s", xl_str(c, "id") ?
			    xl_str(c, "id") : id);
			json_object_array_add(output, call_item(id, "completed",
			    cid, xl_str(f, "name") ? xl_str(f, "name") : "",
			    xl_str(f, "arguments") ? xl_str(f, "arguments") :
			    "{}"));
		}
	}
	usage_read(&u, xl_get(chat, "usage", json_type_object));
	inc = incomplete_of(xl_str(choice, "finish_reason"));
	o = response_obj(x->id, x->model, x->created, x->req,
	    inc != NULL ? "incomplete" : "completed", inc, output,
	    usage_obj(&u), NULL);
	json_object_put(output);
	return o;
}

/* ---- streaming ---- */

struct rsp_tool {
	int		 out_index;	/* -1: not started */
	char		 item_id[160];
	char		*call_id;
	char		*name;
	struct xbuf	 args;
	int		 done;
};

struct rsp_stream {
	char		*id;
	char		*model;
	json_object	*req;
	int64_t		 created;
	int		 started;
	int		 ended;
	int		 failed;
	int64_t		 seq;
	json_object	*output;	/* finished items, in output_index order */
	int		 nout;		/* output indexes handed out */
	/* the open message or reasoning item */
	int		 msg_index;	/* -1: none open */
	char		 msg_id[160];
	struct xbuf	 text;
	int		 rs_index;
	char		 rs_id[160];
	struct xbuf	 rtext;
	struct rsp_tool	 tools[MAX_TOOLS];
	int		 ntools;	/* highest tool index + 1 */
	int		 last_tool;	/* xl_tool_slot's state */
	char		 last_id[192];
	const char	*finish;
	struct usage	 u;
	json_object	*items[MAX_TOOLS + 2];	/* done items by output index */
};

static void *
rsp_stream_new(const struct xlate_ctx *x)
{
	struct rsp_stream	*s = xcalloc(1, sizeof(*s));
	int			 i;

	s->id = xstrdup(x->id);
	s->model = xstrdup(x->model);
	s->req = json_object_get(x->req);
	s->created = x->created;
	s->msg_index = -1;
	s->rs_index = -1;
	s->last_tool = -1;
	for (i = 0; i < MAX_TOOLS; i++)
		s->tools[i].out_index = -1;
	return s;
}

static void
rsp_stream_free(void *p)
{
	struct rsp_stream	*s = p;
	int			 i;

	if (s == NULL)
		return;
	for (i = 0; i < MAX_TOOLS; i++) {
		free(s->tools[i].call_id);
		free(s->tools[i].name);
		xbuf_free(&s->tools[i].args);
	}
	for (i = 0; i < MAX_TOOLS + 2; i++)
		json_object_put(s->items[i]);
	xbuf_free(&s->text);
	xbuf_free(&s->rtext);
	free(s->id);
	free(s->model);
	json_object_put(s->req);
	free(s);
}

static json_object *
rev(struct rsp_stream *s, const char *type)
{
	json_object	*o = json_object_new_object();

	xl_add_str(o, "type", type);
	json_object_object_add(o, "sequence_number",
	    json_object_new_int64(s->seq++));
	return o;
}

static void
remit(struct xbuf *out, json_object *o)
{
	xbuf_sse(out, xl_str(o, "type"), o);
	json_object_put(o);
}

static void
add_int(json_object *o, const char *key, int64_t v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
}

/* The items finished so far, in output order. */
static json_object *
done_items(struct rsp_stream *s)
{
	json_object	*a = json_object_new_array();
	int		 i;

	for (i = 0; i < s->nout && i < MAX_TOOLS + 2; i++)
		if (s->items[i] != NULL)
			json_object_array_add(a, json_object_get(s->items[i]));
	return a;
}

static void
snapshot_event(struct rsp_stream *s, const char *type, const char *status,
    const char *incomplete, json_object *error, struct xbuf *out)
{
	json_object	*o, *items = done_items(s);

	o = rev(s, type);
	json_object_object_add(o, "response", response_obj(s->id, s->model,
	    s->created, s->req, status, incomplete, items, strcmp(status,
	    "in_progress") == 0 ? NULL : usage_obj(&s->u), error));
	json_object_put(items);
	remit(out, o);
}

static void
rsp_stream_open(void *p, struct xbuf *out)
{
	struct rsp_stream	*s = p;

	if (s->started)
		return;
	s->started = 1;
	snapshot_event(s, "response.created", "in_progress", NULL, NULL, out);
	snapshot_event(s, "response.in_progress", "in_progress", NULL, NULL,
	    out);
}

static int
new_index(struct rsp_stream *s)
{
	return s->nout++;
}

static void
item_added(struct rsp_stream *s, int index, json_object *item,
    struct xbuf *out)
{
	json_object	*o = rev(s, "response.output_item.added");

	add_int(o, "output_index", index);
	json_object_object_add(o, "item", item);
	remit(out, o);
}

static void
item_done(struct rsp_stream *s, int index, json_object *item,
    struct xbuf *out)
{
	json_object	*o = rev(s, "response.output_item.done");

	add_int(o, "output_index", index);
	json_object_object_add(o, "item", json_object_get(item));
	remit(out, o);
	if (index < MAX_TOOLS + 2) {
		json_object_put(s->items[index]);
		s->items[index] = item;
	} else
		json_object_put(item);
}

static json_object *
text_part_obj(const char *type, const char *text)
{
	json_object	*p = json_object_new_object();

	xl_add_str(p, "type", type);
	xl_add_str(p, "text", text);
	if (strcmp(type, "output_text") == 0)
		json_object_object_add(p, "annotations",
		    json_object_new_array());
	return p;
}

static void
close_reasoning(struct rsp_stream *s, struct xbuf *out)
{
	json_object	*o;
	const char	*t = s->rtext.p != NULL ? s->rtext.p : "";

	if (s->rs_index < 0)
		return;
	o = rev(s, "response.reasoning_text.done");
	xl_add_str(o, "item_id", s->rs_id);
	add_int(o, "output_index", s->rs_index);
	add_int(o, "content_index", 0);
	xl_add_str(o, "text", t);
	remit(out, o);
	item_done(s, s->rs_index, reasoning_item(s->rs_id, t), out);
	s->rs_index = -1;
	xbuf_reset(&s->rtext);
}

static void
close_message(struct rsp_stream *s, struct xbuf *out)
{
	json_object	*o;
	const char	*t = s->text.p != NULL ? s->text.p : "";

	if (s->msg_index < 0)
		return;
	o = rev(s, "response.output_text.done");
	xl_add_str(o, "item_id", s->msg_id);
	add_int(o, "output_index", s->msg_index);
	add_int(o, "content_index", 0);
	xl_add_str(o, "text", t);
	json_object_object_add(o, "logprobs", json_object_new_array());
	remit(out, o);
	o = rev(s, "response.content_part.done");
	xl_add_str(o, "item_id", s->msg_id);
	add_int(o, "output_index", s->msg_index);
	add_int(o, "content_index", 0);
	json_object_object_add(o, "part", text_part_obj("output_text", t));
	remit(out, o);
	item_done(s, s->msg_index, message_item(s->msg_id, "completed", t),
	    out);
	s->msg_index = -1;
	xbuf_reset(&s->text);
}

static void
close_tool(struct rsp_stream *s, struct rsp_tool *t, struct xbuf *out)
{
	json_object	*o;
	const char	*a = t->args.p != NULL ? t->args.p : "";

	if (t->out_index < 0 || t->done)
		return;
	t->done = 1;
	o = rev(s, "response.function_call_arguments.done");
	xl_add_str(o, "item_id", t->item_id);
	add_int(o, "output_index", t->out_index);
	xl_add_str(o, "name", t->name);
	xl_add_str(o, "arguments", a);
	remit(out, o);
	item_done(s, t->out_index, call_item(t->item_id, "completed",
	    t->call_id, t->name, a), out);
}

static void
stream_text(struct rsp_stream *s, const char *t, struct xbuf *out)
{
	json_object	*o;

	close_reasoning(s, out);
	if (s->msg_index < 0) {
		s->msg_index = new_index(s);
		snprintf(s->msg_id, sizeof(s->msg_id), "msg_%s_%d", s->id + 5,
		    s->msg_index);
		item_added(s, s->msg_index, message_item(s->msg_id,
		    "in_progress", NULL), out);
		o = rev(s, "response.content_part.added");
		xl_add_str(o, "item_id", s->msg_id);
		add_int(o, "output_index", s->msg_index);
		add_int(o, "content_index", 0);
		json_object_object_add(o, "part",
		    text_part_obj("output_text", ""));
		remit(out, o);
	}
	xbuf_puts(&s->text, t);
	o = rev(s, "response.output_text.delta");
	xl_add_str(o, "item_id", s->msg_id);
	add_int(o, "output_index", s->msg_index);
	add_int(o, "content_index", 0);
	xl_add_str(o, "delta", t);
	json_object_object_add(o, "logprobs", json_object_new_array());
	remit(out, o);
}

static void
stream_reasoning(struct rsp_stream *s, const char *t, struct xbuf *out)
{
	json_object	*o;

	if (s->rs_index < 0) {
		s->rs_index = new_index(s);
		snprintf(s->rs_id, sizeof(s->rs_id), "rs_%s_%d", s->id + 5,
		    s->rs_index);
		item_added(s, s->rs_index, reasoning_item(s->rs_id, NULL), out);
	}
	xbuf_puts(&s->rtext, t);
	o = rev(s, "response.reasoning_text.delta");
	xl_add_str(o, "item_id", s->rs_id);
	add_int(o, "output_index", s->rs_index);
	add_int(o, "content_index", 0);
	xl_add_str(o, "delta", t);
	remit(out, o);
}

static void
stream_tool(struct rsp_stream *s, json_object *tc, struct xbuf *out)
{
	json_object	*f = xl_get(tc, "function", json_type_object), *o;
	struct rsp_tool	*t;
	int		 idx;
	const char	*args;

	if ((idx = xl_tool_slot(tc, &s->last_tool, s->last_id,
	    sizeof(s->last_id), MAX_TOOLS)) < 0)
		return;
	t = &s->tools[idx];
	if (t->done)
		return;
	if (t->out_index < 0) {
		close_reasoning(s, out);
		close_message(s, out);
		t->out_index = new_index(s);
		snprintf(t->item_id, sizeof(t->item_id), "fc_%s_%d", s->id + 5,
		    t->out_index);
		t->call_id = xstrdup(xl_str(tc, "id") ? xl_str(tc, "id") :
		    t->item_id);
		t->name = xstrdup(xl_str(f, "name") ? xl_str(f, "name") : "");
		if (idx + 1 > s->ntools)
			s->ntools = (int)idx + 1;
		item_added(s, t->out_index, call_item(t->item_id,
		    "in_progress", t->call_id, t->name, ""), out);
	}
	if ((args = xl_str(f, "arguments")) != NULL && *args != '\0') {
		xbuf_puts(&t->args, args);
		o = rev(s, "response.function_call_arguments.delta");
		xl_add_str(o, "item_id", t->item_id);
		add_int(o, "output_index", t->out_index);
		xl_add_str(o, "delta", args);
		remit(out, o);
	}
}

static void
rsp_stream_chunk(void *p, json_object *chunk, struct xbuf *out)
{
	struct rsp_stream	*s = p;
	json_object		*choices, *choice, *d, *calls;
	const char		*t;
	size_t			 i, n;

	if (s->ended)
		return;
	rsp_stream_open(s, out);
	usage_read(&s->u, xl_get(chunk, "usage", json_type_object));
	choices = xl_get(chunk, "choices", json_type_array);
	if (choices == NULL || json_object_array_length(choices) == 0)
		return;
	choice = json_object_array_get_idx(choices, 0);
	d = xl_get(choice, "delta", json_type_object);
	if ((t = xl_str(d, "reasoning_content")) != NULL && *t != '\0')
		stream_reasoning(s, t, out);
	if ((t = xl_str(d, "content")) != NULL && *t != '\0')
		stream_text(s, t, out);
	if ((calls = xl_get(d, "tool_calls", json_type_array)) != NULL) {
		n = json_object_array_length(calls);
		for (i = 0; i < n; i++)
			stream_tool(s, json_object_array_get_idx(calls, i), out);
	}
	if ((t = xl_str(choice, "finish_reason")) != NULL)
		s->finish = incomplete_of(t) != NULL ? incomplete_of(t) : "";
}

static void
close_all(struct rsp_stream *s, struct xbuf *out)
{
	int	i;

	close_reasoning(s, out);
	close_message(s, out);
	for (i = 0; i < s->ntools; i++)
		close_tool(s, &s->tools[i], out);
}

static void
rsp_stream_ping(void *p, struct xbuf *out)
{
	struct rsp_stream	*s = p;

	(void)out;
	(void)s;
	/* An SSE comment keeps proxies awake; clients ignore it. */
	xbuf_puts(out, ": ping\n\n");
}

static void
rsp_stream_error(void *p, const char *msg, const char *type, struct xbuf *out)
{
	struct rsp_stream	*s = p;
	json_object		*e;

	if (s->ended)
		return;
	rsp_stream_open(s, out);
	close_all(s, out);
	s->ended = 1;
	s->failed = 1;
	e = json_object_new_object();
	xl_add_str(e, "code", type != NULL ? type : "server_error");
	xl_add_str(e, "message", msg);
	snapshot_event(s, "response.failed", "failed", NULL, e, out);
}

static void
rsp_stream_end(void *p, struct xbuf *out)
{
	struct rsp_stream	*s = p;
	const char		*inc;

	if (s->ended)
		return;
	rsp_stream_open(s, out);
	close_all(s, out);
	s->ended = 1;
	inc = s->finish != NULL && *s->finish != '\0' ? s->finish : NULL;
	snapshot_event(s, inc != NULL ? "response.incomplete" :
	    "response.completed", inc != NULL ? "incomplete" : "completed",
	    inc, NULL, out);
}

static json_object *
rsp_stream_output(void *p)
{
	struct rsp_stream	*s = p;

	if (!s->ended || s->failed)
		return NULL;
	return done_items(s);
}

json_object *
xrsp_turn_messages(json_object *req, json_object *output)
{
	json_object	*msgs = json_object_new_array(), *input;
	size_t		 i, n;

	if (json_object_object_get_ex(req, "input", &input) &&
	    json_object_is_type(input, json_type_string))
		json_object_array_add(msgs, chat_msg("user",
		    json_object_get(input)));
	else if (json_object_is_type(input, json_type_array)) {
		n = json_object_array_length(input);
		for (i = 0; i < n; i++)
			add_item(msgs, json_object_array_get_idx(input, i));
	}
	n = output != NULL ? json_object_array_length(output) : 0;
	for (i = 0; i < n; i++)
		add_item(msgs, json_object_array_get_idx(output, i));
	return msgs;
}

const struct xlate_proto xlate_responses = {
	.name = "responses",
	.request = rsp_request,
	.answer = rsp_answer,
	.error = NULL,		/* the relay's errors are OpenAI-shaped already */
	.stream_new = rsp_stream_new,
	.stream_open = rsp_stream_open,
	.stream_chunk = rsp_stream_chunk,
	.stream_ping = rsp_stream_ping,
	.stream_error = rsp_stream_error,
	.stream_end = rsp_stream_end,
	.stream_free = rsp_stream_free,
	.stream_output = rsp_stream_output,
};
