/*
 * xlate_messages.c: Anthropic Messages <-> chat completions.
 *
 * Sources for every shape here:
 *   request and answer:  https://docs.anthropic.com/en/api/messages
 *   streaming events:    https://docs.anthropic.com/en/docs/build-with-claude/streaming
 *     message_start, content_block_start, ping, content_block_delta
 *     (text_delta, input_json_delta, thinking_delta), content_block_stop,
 *     message_delta (stop_reason, usage), message_stop; error events as
 *     "event: error" with the error body
 *   errors:              https://docs.anthropic.com/en/api/errors
 *   token counting:      https://docs.anthropic.com/en/api/messages-count-tokens
 * and for the chat side the OpenAI chat completions reference (messages,
 * tool_calls, stream chunks, stream_options.include_usage).  Peer gateways
 * (LiteLLM's anthropic adapter, CLIProxyAPI's claude translator) map the
 * same fields the same way: tool_result blocks become role "tool" messages
 * placed before the user's other content, tool_use becomes tool_calls with
 * the input serialised as the arguments string.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upcheck.h"
#include "xlate.h"
#include "xmalloc.h"

#define MAX_TOOLS	128

/* ---- errors ---- */

const char *
xmsg_error_type(int status)
{
	switch (status) {
	case 400:
	case 405:
	case 415:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 413:
		return "request_too_large";
	case 429:
		return "rate_limit_error";
	case 503:
	case 529:
		return "overloaded_error";
	default:
		return status >= 500 ? "api_error" : "invalid_request_error";
	}
}

json_object *
xmsg_error_body(int status, const char *msg)
{
	json_object	*o, *e;

	e = json_object_new_object();
	xl_add_str(e, "type", xmsg_error_type(status));
	xl_add_str(e, "message", msg != NULL ? msg : "");
	o = json_object_new_object();
	xl_add_str(o, "type", "error");
	json_object_object_add(o, "error", e);
	return o;
}

static json_object *
msg_error(int *status, const char *msg, const char *type)
{
	(void)type;
	return xmsg_error_body(*status, msg);
}

/* ---- request ---- */

/* The text blocks of an Anthropic content value, joined by "\n". */
static char *
blocks_text(json_object *content)
{
	struct xbuf	 b = { NULL, 0, 0 };
	size_t		 i, n;
	const char	*t;

	if (json_object_is_type(content, json_type_string))
		return xstrdup(json_object_get_string(content));
	if (!json_object_is_type(content, json_type_array))
		return xstrdup("");
	n = json_object_array_length(content);
	for (i = 0; i < n; i++) {
		json_object *blk = json_object_array_get_idx(content, i);
		const char *ty = xl_str(blk, "type");
		if (ty == NULL || strcmp(ty, "text") != 0 ||
		    (t = xl_str(blk, "text")) == NULL)
			continue;
		if (b.len > 0)
			xbuf_puts(&b, "\n");
		xbuf_puts(&b, t);
	}
	if (b.p == NULL)
		return xstrdup("");
	return b.p;
}

/* An image block -> a chat image_url part, or NULL. */
static json_object *
image_part(json_object *blk)
{
	json_object	*src = xl_get(blk, "source", json_type_object), *p, *u;
	const char	*ty = xl_str(src, "type");
	char		*url;

	if (ty == NULL)
		return NULL;
	if (strcmp(ty, "base64") == 0 && xl_str(src, "data") != NULL)
		url = xasprintf("data:%s;base64,%s",
		    xl_str(src, "media_type") ? xl_str(src, "media_type") :
		    "image/png", xl_str(src, "data"));
	else if (strcmp(ty, "url") == 0 && xl_str(src, "url") != NULL)
		url = xstrdup(xl_str(src, "url"));
	else
		return NULL;
	u = json_object_new_object();
	xl_add_str(u, "url", url);
	free(url);
	p = json_object_new_object();
	xl_add_str(p, "type", "image_url");
	json_object_object_add(p, "image_url", u);
	return p;
}

static json_object *
chat_msg(const char *role, json_object *content)
{
	json_object	*m = json_object_new_object();

	xl_add_str(m, "role", role);
	json_object_object_add(m, "content", content);
	return m;
}

/* Parts that are all text collapse to one string (every upstream takes it). */
static json_object *
parts_content(json_object *parts)
{
	size_t		 i, n = json_object_array_length(parts);
	struct xbuf	 b = { NULL, 0, 0 };
	json_object	*s;

	for (i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(parts, i);
		if (strcmp(xl_str(p, "type"), "text") != 0)
			return json_object_get(parts);
	}
	for (i = 0; i < n; i++) {
		if (i > 0)
			xbuf_puts(&b, "\n");
		xbuf_puts(&b, xl_str(json_object_array_get_idx(parts, i),
		    "text"));
	}
	s = json_object_new_string(b.p != NULL ? b.p : "");
	xbuf_free(&b);
	return s;
}

static const char *
user_message(json_object *msgs, json_object *content)
{
	json_object	*parts, *p;
	size_t		 i, j, n;

	if (json_object_is_type(content, json_type_string)) {
		json_object_array_add(msgs, chat_msg("user",
		    json_object_get(content)));
		return NULL;
	}
	parts = json_object_new_array();
	n = json_object_array_length(content);
	for (i = 0; i < n; i++) {
		json_object *blk = json_object_array_get_idx(content, i);
		const char *ty = xl_str(blk, "type");
		if (ty == NULL) {
			json_object_put(parts);
			return "every content block needs a 'type'.";
		}
		if (strcmp(ty, "text") == 0 && xl_str(blk, "text") != NULL) {
			p = json_object_new_object();
			xl_add_str(p, "type", "text");
			xl_add_str(p, "text", xl_str(blk, "text"));
			json_object_array_add(parts, p);
		} else if (strcmp(ty, "image") == 0) {
			if ((p = image_part(blk)) == NULL) {
				json_object_put(parts);
				return "an image block needs a base64 or url "
				    "'source'.";
			}
			json_object_array_add(parts, p);
		} else if (strcmp(ty, "tool_result") == 0) {
			/* Tool answers go first, right after the tool calls. */
			const char *tid = xl_str(blk, "tool_use_id");
			json_object *c = NULL, *tm;
			char *text;
			if (tid == NULL) {
				json_object_put(parts);
				return "a tool_result block needs 'tool_use_id'.";
			}
			json_object_object_get_ex(blk, "content", &c);
			text = blocks_text(c);
			tm = chat_msg("tool", json_object_new_string(text));
			free(text);
			xl_add_str(tm, "tool_call_id", tid);
			json_object_array_add(msgs, tm);
			/*
			 * A chat tool message holds text only: images a tool
			 * returned (Claude Code's Read of a picture) go to
			 * the user message that follows.
			 */
			for (j = 0; json_object_is_type(c, json_type_array) &&
			    j < json_object_array_length(c); j++) {
				json_object *ib = json_object_array_get_idx(c, j);
				if (xl_str(ib, "type") != NULL &&
				    strcmp(xl_str(ib, "type"), "image") == 0 &&
				    (p = image_part(ib)) != NULL)
					json_object_array_add(parts, p);
			}
		}
		else if (strcmp(ty, "document") == 0) {
			/* Plain-text documents become text. */
			json_object *src = xl_get(blk, "source",
			    json_type_object), *c = NULL;
			char *text = NULL;
			const char *st = xl_str(src, "type");
			if (st != NULL && strcmp(st, "text") == 0 &&
			    xl_str(src, "data") != NULL)
				text = xstrdup(xl_str(src, "data"));
			else if (st != NULL && strcmp(st, "content") == 0 &&
			    json_object_object_get_ex(src, "content", &c))
				text = blocks_text(c);
			/*
			 * A PDF (or a file id) the upstream cannot take: a
			 * note in its place, so the model knows and an agent's
			 * conversation, which keeps the block, goes on.
			 */
			if (text == NULL)
				text = xasprintf("[document omitted: %s cannot "
				    "be read by this model; ask for its text]",
				    xl_str(src, "media_type") != NULL ?
				    xl_str(src, "media_type") : "this kind");
			p = json_object_new_object();
			xl_add_str(p, "type", "text");
			xl_add_str(p, "text", text);
			free(text);
			json_object_array_add(parts, p);
		}
		/* search_result, thinking, redacted_thinking: not for chat. */
	}
	if (json_object_array_length(parts) > 0)
		json_object_array_add(msgs, chat_msg("user",
		    parts_content(parts)));
	json_object_put(parts);
	return NULL;
}

static const char *
assistant_message(json_object *msgs, json_object *content)
{
	json_object	*calls, *m, *c, *f, *in;
	struct xbuf	 text = { NULL, 0, 0 };
	size_t		 i, n;

	if (json_object_is_type(content, json_type_string)) {
		json_object_array_add(msgs, chat_msg("assistant",
		    json_object_get(content)));
		return NULL;
	}
	calls = json_object_new_array();
	n = json_object_array_length(content);
	for (i = 0; i < n; i++) {
		json_object *blk = json_object_array_get_idx(content, i);
		const char *ty = xl_str(blk, "type");
		if (ty == NULL)
			continue;
		if (strcmp(ty, "text") == 0 && xl_str(blk, "text") != NULL)
			xbuf_puts(&text, xl_str(blk, "text"));
		else if (strcmp(ty, "tool_use") == 0) {
			if (xl_str(blk, "id") == NULL ||
			    xl_str(blk, "name") == NULL) {
				json_object_put(calls);
				xbuf_free(&text);
				return "a tool_use block needs 'id' and 'name'.";
			}
			f = json_object_new_object();
			xl_add_str(f, "name", xl_str(blk, "name"));
			in = NULL;
			json_object_object_get_ex(blk, "input", &in);
			xl_add_str(f, "arguments", in != NULL ?
			    json_object_to_json_string_ext(in,
			    JSON_C_TO_STRING_PLAIN |
			    JSON_C_TO_STRING_NOSLASHESCAPE) : "{}");
			c = json_object_new_object();
			xl_add_str(c, "id", xl_str(blk, "id"));
			xl_add_str(c, "type", "function");
			json_object_object_add(c, "function", f);
			json_object_array_add(calls, c);
		}
	}
	m = chat_msg("assistant", text.len > 0 ?
	    json_object_new_string(text.p) : NULL);
	if (json_object_array_length(calls) > 0)
		json_object_object_add(m, "tool_calls", calls);
	else {
		json_object_put(calls);
		if (text.len == 0)
			json_object_object_add(m, "content",
			    json_object_new_string(""));
	}
	json_object_array_add(msgs, m);
	xbuf_free(&text);
	return NULL;
}

static json_object *
tools_of(json_object *tools)
{
	json_object	*out = json_object_new_array(), *t, *f, *v;
	size_t		 i, n = json_object_array_length(tools);

	for (i = 0; i < n; i++) {
		t = json_object_array_get_idx(tools, i);
		/* Server tools (web_search_*, bash_*) have no input_schema. */
		if (xl_str(t, "name") == NULL ||
		    (v = xl_get(t, "input_schema", json_type_object)) == NULL)
			continue;
		f = json_object_new_object();
		xl_add_str(f, "name", xl_str(t, "name"));
		if (xl_str(t, "description") != NULL)
			xl_add_str(f, "description", xl_str(t, "description"));
		json_object_object_add(f, "parameters", json_object_get(v));
		v = json_object_new_object();
		xl_add_str(v, "type", "function");
		json_object_object_add(v, "function", f);
		json_object_array_add(out, v);
	}
	return out;
}

/* Anthropic tool_choice {type: auto|any|tool|none} -> chat tool_choice. */
static json_object *
tool_choice_of(json_object *tc, int *no_parallel)
{
	const char	*ty = xl_str(tc, "type");
	json_object	*o, *f, *v;

	if ((v = xl_get(tc, "disable_parallel_tool_use", json_type_boolean))
	    != NULL)
		*no_parallel = json_object_get_boolean(v);
	if (ty == NULL || strcmp(ty, "auto") == 0)
		return json_object_new_string("auto");
	if (strcmp(ty, "any") == 0)
		return json_object_new_string("required");
	if (strcmp(ty, "none") == 0)
		return json_object_new_string("none");
	if (strcmp(ty, "tool") == 0 && xl_str(tc, "name") != NULL) {
		f = json_object_new_object();
		xl_add_str(f, "name", xl_str(tc, "name"));
		o = json_object_new_object();
		xl_add_str(o, "type", "function");
		json_object_object_add(o, "function", f);
		return o;
	}
	return json_object_new_string("auto");
}

static json_object *
msg_request(json_object *in, json_object *history, char *err, size_t errsz)
{
	json_object	*out, *msgs, *v, *m;
	const char	*why = NULL, *role;
	char		*sys;
	size_t		 i, n;
	int		 no_parallel = 0;

	(void)history;		/* Messages has no stored conversations */
	if (xl_str(in, "model") == NULL || *xl_str(in, "model") == '\0') {
		snprintf(err, errsz, "'model' must be a non-empty string.");
		return NULL;
	}
	if ((v = xl_get(in, "messages", json_type_array)) == NULL ||
	    json_object_array_length(v) == 0) {
		snprintf(err, errsz, "'messages' must be a non-empty array.");
		return NULL;
	}
	if ((m = xl_get(in, "max_tokens", json_type_int)) != NULL &&
	    json_object_get_int64(m) < 1) {
		snprintf(err, errsz, "'max_tokens' must be at least 1.");
		return NULL;
	}
	out = json_object_new_object();
	xl_add_str(out, "model", xl_str(in, "model"));
	msgs = json_object_new_array();
	json_object_object_add(out, "messages", msgs);
	if (json_object_object_get_ex(in, "system", &m) && m != NULL) {
		sys = blocks_text(m);
		if (*sys != '\0')
			json_object_array_add(msgs, chat_msg("system",
			    json_object_new_string(sys)));
		free(sys);
	}
	n = json_object_array_length(v);
	for (i = 0; i < n && why == NULL; i++) {
		json_object *c = NULL;
		m = json_object_array_get_idx(v, i);
		role = xl_str(m, "role");
		if (!json_object_object_get_ex(m, "content", &c) ||
		    (!json_object_is_type(c, json_type_string) &&
		    !json_object_is_type(c, json_type_array)))
			why = "each message needs 'content' (a string or an "
			    "array of blocks).";
		else if (role != NULL && strcmp(role, "user") == 0)
			why = user_message(msgs, c);
		else if (role != NULL && strcmp(role, "assistant") == 0)
			why = assistant_message(msgs, c);
		else if (role != NULL && strcmp(role, "system") == 0) {
			/*
			 * Claude Code's mid-conversation-system beta
			 * (anthropic-beta mid-conversation-system-2026-04-07)
			 * sends system messages between turns.
			 */
			sys = blocks_text(c);
			json_object_array_add(msgs, chat_msg("system",
			    json_object_new_string(sys)));
			free(sys);
		} else
			why = "a message's 'role' must be \"user\", "
			    "\"assistant\" or \"system\".";
	}
	if (why != NULL) {
		snprintf(err, errsz, "messages[%zu]: %s", i - 1, why);
		json_object_put(out);
		return NULL;
	}
	if ((m = xl_get(in, "max_tokens", json_type_int)) != NULL)
		json_object_object_add(out, "max_tokens", json_object_get(m));
	if ((m = xl_get(in, "stop_sequences", json_type_array)) != NULL &&
	    json_object_array_length(m) > 0)
		json_object_object_add(out, "stop", json_object_get(m));
	if ((m = xl_get(in, "temperature", json_type_double)) != NULL ||
	    (m = xl_get(in, "temperature", json_type_int)) != NULL)
		json_object_object_add(out, "temperature", json_object_get(m));
	if ((m = xl_get(in, "top_p", json_type_double)) != NULL ||
	    (m = xl_get(in, "top_p", json_type_int)) != NULL)
		json_object_object_add(out, "top_p", json_object_get(m));
	if ((m = xl_get(in, "top_k", json_type_int)) != NULL)
		json_object_object_add(out, "top_k", json_object_get(m));
	if ((m = xl_get(in, "tools", json_type_array)) != NULL &&
	    json_object_array_length(m) > 0) {
		json_object *t = tools_of(m);
		if (json_object_array_length(t) > 0)
			json_object_object_add(out, "tools", t);
		else
			json_object_put(t);
	}
	if ((m = xl_get(in, "tool_choice", json_type_object)) != NULL &&
	    json_object_object_get_ex(out, "tools", NULL)) {
		json_object_object_add(out, "tool_choice",
		    tool_choice_of(m, &no_parallel));
		if (no_parallel)
			json_object_object_add(out, "parallel_tool_calls",
			    json_object_new_boolean(0));
	}
	/*
	 * Reasoning: DashScope's enable_thinking / thinking_budget, and only
	 * when streaming: DashScope refuses enable_thinking on a plain call
	 * ("parameter.enable_thinking must be set to false for non-streaming
	 * calls"), so a plain call answers without thinking rather than fail.
	 */
	if ((m = xl_get(in, "thinking", json_type_object)) != NULL &&
	    xl_str(m, "type") != NULL &&
	    strcmp(xl_str(m, "type"), "enabled") == 0 &&
	    (v = xl_get(in, "stream", json_type_boolean)) != NULL &&
	    json_object_get_boolean(v)) {
		json_object_object_add(out, "enable_thinking",
		    json_object_new_boolean(1));
		if ((v = xl_get(m, "budget_tokens", json_type_int)) != NULL)
			json_object_object_add(out, "thinking_budget",
			    json_object_get(v));
	}
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

int64_t
xmsg_count_tokens(json_object *in, char *err, size_t errsz)
{
	json_object	*chat, *v;
	size_t		 n = 0;

	if ((chat = msg_request(in, NULL, err, errsz)) == NULL)
		return -1;
	if (json_object_object_get_ex(chat, "messages", &v))
		n += strlen(json_object_to_json_string_ext(v,
		    JSON_C_TO_STRING_PLAIN));
	if (json_object_object_get_ex(chat, "tools", &v))
		n += strlen(json_object_to_json_string_ext(v,
		    JSON_C_TO_STRING_PLAIN));
	json_object_put(chat);
	return (int64_t)(n / 4 + 1);
}

/* ---- answer ---- */

/*
 * chat finish_reason -> stop_reason: stop -> end_turn (stop_sequence when
 * the upstream names the matched stop string, as vLLM's stop_reason does),
 * length -> max_tokens, tool_calls -> tool_use.
 */
static const char *
stop_reason_of(json_object *choice, json_object *req, const char **seq)
{
	const char	*f = xl_str(choice, "finish_reason");
	const char	*s = xl_str(choice, "stop_reason");
	json_object	*stops = xl_get(req, "stop_sequences", json_type_array);
	size_t		 i, n;

	*seq = NULL;
	if (f == NULL)
		return NULL;
	if (strcmp(f, "length") == 0)
		return "max_tokens";
	if (strcmp(f, "tool_calls") == 0 || strcmp(f, "function_call") == 0)
		return "tool_use";
	if (s != NULL && stops != NULL) {
		n = json_object_array_length(stops);
		for (i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(stops, i);
			if (json_object_is_type(e, json_type_string) &&
			    strcmp(json_object_get_string(e), s) == 0) {
				*seq = json_object_get_string(e);
				return "stop_sequence";
			}
		}
	}
	return "end_turn";
}

static json_object *
usage_of(json_object *u, int64_t *in_out, int64_t *out_out)
{
	json_object	*o = json_object_new_object(), *v, *d;
	int64_t		 in = 0, outk = 0, cached = 0;

	if ((v = xl_get(u, "prompt_tokens", json_type_int)) != NULL)
		in = upcheck_tokens(v, NULL);
	if ((v = xl_get(u, "completion_tokens", json_type_int)) != NULL)
		outk = upcheck_tokens(v, NULL);
	if ((d = xl_get(u, "prompt_tokens_details", json_type_object)) != NULL &&
	    (v = xl_get(d, "cached_tokens", json_type_int)) != NULL)
		cached = upcheck_tokens(v, NULL);
	if (cached > in)
		cached = in;
	/* Anthropic counts cache reads apart from input_tokens. */
	json_object_object_add(o, "input_tokens",
	    json_object_new_int64(in - cached));
	json_object_object_add(o, "cache_creation_input_tokens",
	    json_object_new_int64(0));
	json_object_object_add(o, "cache_read_input_tokens",
	    json_object_new_int64(cached));
	json_object_object_add(o, "output_tokens", json_object_new_int64(outk));
	if (in_out != NULL)
		*in_out = in;
	if (out_out != NULL)
		*out_out = outk;
	return o;
}

/* A tool call's arguments string -> the tool_use input object. */
static json_object *
input_of(const char *args)
{
	json_object	*o;

	if (args == NULL || *args == '\0')
		return json_object_new_object();
	o = json_tokener_parse(args);
	if (o != NULL && json_object_is_type(o, json_type_object))
		return o;
	json_object_put(o);
	/* Not an object: keep what the model said rather than drop it. */
	o = json_object_new_object();
	xl_add_str(o, "_raw_arguments", args);
	return o;
}

static json_object *
msg_answer(const struct xlate_ctx *x, json_object *chat)
{
	json_object	*o, *content, *choices, *choice, *msg, *calls, *b;
	const char	*t, *stop, *seq;
	size_t		 i, n;

	choices = xl_get(chat, "choices", json_type_array);
	choice = choices != NULL && json_object_array_length(choices) > 0 ?
	    json_object_array_get_idx(choices, 0) : NULL;
	msg = xl_get(choice, "message", json_type_object);
	content = json_object_new_array();
	if ((t = xl_str(msg, "reasoning_content")) != NULL && *t != '\0') {
		b = json_object_new_object();
		xl_add_str(b, "type", "thinking");
		xl_add_str(b, "thinking", t);
		xl_add_str(b, "signature", "");
		json_object_array_add(content, b);
	}
	if ((t = xl_str(msg, "content")) != NULL && *t != '\0') {
		b = json_object_new_object();
		xl_add_str(b, "type", "text");
		xl_add_str(b, "text", t);
		json_object_array_add(content, b);
	}
	if ((calls = xl_get(msg, "tool_calls", json_type_array)) != NULL) {
		n = json_object_array_length(calls);
		for (i = 0; i < n; i++) {
			json_object *c = json_object_array_get_idx(calls, i);
			json_object *f = xl_get(c, "function", json_type_object);
			char id[96];
			if (xl_str(c, "id") != NULL)
				snprintf(id, sizeof(id), "%s", xl_str(c, "id"));
			else
				snprintf(id, sizeof(id), "toolu_%s_%zu", x->id, i);
			b = json_object_new_object();
			xl_add_str(b, "type", "tool_use");
			xl_add_str(b, "id", id);
			xl_add_str(b, "name", xl_str(f, "name") ?
			    xl_str(f, "name") : "");
			json_object_object_add(b, "input",
			    input_of(xl_str(f, "arguments")));
			json_object_array_add(content, b);
		}
	}
	stop = stop_reason_of(choice, x->req, &seq);
	o = json_object_new_object();
	xl_add_str(o, "id", x->id);
	xl_add_str(o, "type", "message");
	xl_add_str(o, "role", "assistant");
	xl_add_str(o, "model", x->model);
	json_object_object_add(o, "content", content);
	xl_add_str(o, "stop_reason", stop != NULL ? stop : "end_turn");
	xl_add_str(o, "stop_sequence", seq);
	json_object_object_add(o, "usage",
	    usage_of(xl_get(chat, "usage", json_type_object), NULL, NULL));
	return o;
}

/* ---- streaming ---- */

enum blk { B_NONE, B_TEXT, B_THINK, B_TOOL };

struct msg_stream {
	char		*id;
	char		*model;
	json_object	*req;
	int		 started;
	int		 ended;
	enum blk	 kind;		/* the open block */
	int		 block;		/* its index */
	int		 nblocks;
	int		 tool_block[MAX_TOOLS];	/* chat tool index -> block */
	int		 last_tool;	/* xl_tool_slot's state */
	char		 last_id[96];
	const char	*stop;		/* points into static strings or req */
	const char	*seq;
	int64_t		 in_tok;
	int64_t		 out_tok;
	int64_t		 cached;
	int64_t		 estimate;	/* input tokens for message_start */
};

static void *
msg_stream_new(const struct xlate_ctx *x)
{
	struct msg_stream	*s = xcalloc(1, sizeof(*s));
	int			 i;

	s->id = xstrdup(x->id);
	s->model = xstrdup(x->model);
	s->req = json_object_get(x->req);
	s->estimate = x->input_estimate;
	s->last_tool = -1;
	for (i = 0; i < MAX_TOOLS; i++)
		s->tool_block[i] = -1;
	return s;
}

static void
msg_stream_free(void *p)
{
	struct msg_stream	*s = p;

	if (s == NULL)
		return;
	free(s->id);
	free(s->model);
	json_object_put(s->req);
	free(s);
}

static json_object *
ev(const char *type)
{
	json_object	*o = json_object_new_object();

	xl_add_str(o, "type", type);
	return o;
}

static void
emit(struct xbuf *out, json_object *o)
{
	xbuf_sse(out, xl_str(o, "type"), o);
	json_object_put(o);
}

static void
msg_stream_open(void *p, struct xbuf *out)
{
	struct msg_stream	*s = p;
	json_object		*o, *m, *u;

	if (s->started)
		return;
	s->started = 1;
	m = json_object_new_object();
	xl_add_str(m, "id", s->id);
	xl_add_str(m, "type", "message");
	xl_add_str(m, "role", "assistant");
	xl_add_str(m, "model", s->model);
	json_object_object_add(m, "content", json_object_new_array());
	json_object_object_add(m, "stop_reason", NULL);
	json_object_object_add(m, "stop_sequence", NULL);
	u = json_object_new_object();
	/*
	 * The upstream counts at the end (message_delta carries its count);
	 * until then an estimate, so a client's context gauge is not empty.
	 */
	json_object_object_add(u, "input_tokens",
	    json_object_new_int64(s->estimate));
	json_object_object_add(u, "output_tokens", json_object_new_int(0));
	json_object_object_add(m, "usage", u);
	o = ev("message_start");
	json_object_object_add(o, "message", m);
	emit(out, o);
}

static void
close_block(struct msg_stream *s, struct xbuf *out)
{
	json_object	*o;

	if (s->kind == B_NONE)
		return;
	o = ev("content_block_stop");
	json_object_object_add(o, "index", json_object_new_int(s->block));
	emit(out, o);
	s->kind = B_NONE;
}

static void
open_block(struct msg_stream *s, enum blk k, json_object *cb,
    struct xbuf *out)
{
	json_object	*o;

	close_block(s, out);
	s->kind = k;
	s->block = s->nblocks++;
	o = ev("content_block_start");
	json_object_object_add(o, "index", json_object_new_int(s->block));
	json_object_object_add(o, "content_block", cb);
	emit(out, o);
}

static void
delta(struct xbuf *out, int index, const char *dtype, const char *key,
    const char *val)
{
	json_object	*o, *d;

	d = ev(dtype);
	xl_add_str(d, key, val);
	o = ev("content_block_delta");
	json_object_object_add(o, "index", json_object_new_int(index));
	json_object_object_add(o, "delta", d);
	emit(out, o);
}

static void
stream_tool(struct msg_stream *s, json_object *tc, struct xbuf *out)
{
	json_object	*f = xl_get(tc, "function", json_type_object), *cb;
	int		 idx;
	const char	*args;
	char		 id[96];

	if ((idx = xl_tool_slot(tc, &s->last_tool, s->last_id,
	    sizeof(s->last_id), MAX_TOOLS)) < 0)
		return;
	if (s->tool_block[idx] < 0) {
		if (xl_str(tc, "id") != NULL)
			snprintf(id, sizeof(id), "%s", xl_str(tc, "id"));
		else
			snprintf(id, sizeof(id), "toolu_%s_%lld", s->id,
			    (long long)idx);
		cb = ev("tool_use");
		xl_add_str(cb, "id", id);
		xl_add_str(cb, "name", xl_str(f, "name") ? xl_str(f, "name") :
		    "");
		json_object_object_add(cb, "input", json_object_new_object());
		open_block(s, B_TOOL, cb, out);
		s->tool_block[idx] = s->block;
	}
	/*
	 * Arguments of an earlier call arriving after a later one started
	 * still name that call's block: the SDKs accumulate by index.
	 */
	if ((args = xl_str(f, "arguments")) != NULL && *args != '\0')
		delta(out, s->tool_block[idx], "input_json_delta",
		    "partial_json", args);
}

static void
msg_stream_chunk(void *p, json_object *chunk, struct xbuf *out)
{
	struct msg_stream	*s = p;
	json_object		*choices, *choice, *d, *u, *calls, *v;
	const char		*t, *stop, *seq;
	size_t			 i, n;

	if (s->ended)
		return;
	msg_stream_open(s, out);
	if ((u = xl_get(chunk, "usage", json_type_object)) != NULL) {
		if ((v = xl_get(u, "prompt_tokens", json_type_int)) != NULL)
			s->in_tok = upcheck_tokens(v, NULL);
		if ((v = xl_get(u, "completion_tokens", json_type_int)) != NULL)
			s->out_tok = upcheck_tokens(v, NULL);
		if ((d = xl_get(u, "prompt_tokens_details", json_type_object))
		    != NULL && (v = xl_get(d, "cached_tokens", json_type_int))
		    != NULL)
			s->cached = upcheck_tokens(v, NULL);
	}
	choices = xl_get(chunk, "choices", json_type_array);
	if (choices == NULL || json_object_array_length(choices) == 0)
		return;
	choice = json_object_array_get_idx(choices, 0);
	d = xl_get(choice, "delta", json_type_object);
	if ((t = xl_str(d, "reasoning_content")) != NULL && *t != '\0') {
		if (s->kind != B_THINK) {
			json_object *cb = ev("thinking");
			xl_add_str(cb, "thinking", "");
			open_block(s, B_THINK, cb, out);
		}
		delta(out, s->block, "thinking_delta", "thinking", t);
	}
	if ((t = xl_str(d, "content")) != NULL && *t != '\0') {
		if (s->kind != B_TEXT) {
			json_object *cb = ev("text");
			xl_add_str(cb, "text", "");
			open_block(s, B_TEXT, cb, out);
		}
		delta(out, s->block, "text_delta", "text", t);
	}
	if ((calls = xl_get(d, "tool_calls", json_type_array)) != NULL) {
		n = json_object_array_length(calls);
		for (i = 0; i < n; i++)
			stream_tool(s, json_object_array_get_idx(calls, i), out);
	}
	if ((stop = stop_reason_of(choice, s->req, &seq)) != NULL) {
		s->stop = stop;
		s->seq = seq;
		close_block(s, out);
	}
}

static void
msg_stream_ping(void *p, struct xbuf *out)
{
	struct msg_stream	*s = p;

	if (s->ended)
		return;
	msg_stream_open(s, out);
	emit(out, ev("ping"));
}

static void
msg_stream_error(void *p, const char *msg, const char *type, struct xbuf *out)
{
	struct msg_stream	*s = p;
	json_object		*o, *e;

	(void)type;
	if (s->ended)
		return;
	msg_stream_open(s, out);
	s->ended = 1;
	e = json_object_new_object();
	xl_add_str(e, "type", "api_error");
	xl_add_str(e, "message", msg);
	o = ev("error");
	json_object_object_add(o, "error", e);
	emit(out, o);
}

static void
msg_stream_end(void *p, struct xbuf *out)
{
	struct msg_stream	*s = p;
	json_object		*o, *d, *u;
	int64_t			 cached = s->cached < s->in_tok ? s->cached :
				    s->in_tok;

	if (s->ended)
		return;
	msg_stream_open(s, out);
	close_block(s, out);
	s->ended = 1;
	d = json_object_new_object();
	xl_add_str(d, "stop_reason", s->stop != NULL ? s->stop : "end_turn");
	xl_add_str(d, "stop_sequence", s->seq);
	u = json_object_new_object();
	json_object_object_add(u, "input_tokens",
	    json_object_new_int64(s->in_tok - cached));
	json_object_object_add(u, "cache_read_input_tokens",
	    json_object_new_int64(cached));
	json_object_object_add(u, "output_tokens",
	    json_object_new_int64(s->out_tok));
	o = ev("message_delta");
	json_object_object_add(o, "delta", d);
	json_object_object_add(o, "usage", u);
	emit(out, o);
	emit(out, ev("message_stop"));
}

const struct xlate_proto xlate_messages = {
	.name = "messages",
	.request = msg_request,
	.answer = msg_answer,
	.error = msg_error,
	.stream_new = msg_stream_new,
	.stream_open = msg_stream_open,
	.stream_chunk = msg_stream_chunk,
	.stream_ping = msg_stream_ping,
	.stream_error = msg_stream_error,
	.stream_end = msg_stream_end,
	.stream_free = msg_stream_free,
	.stream_output = NULL,
};
