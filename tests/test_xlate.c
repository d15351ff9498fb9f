/*
 * test_xlate.c: the Responses API and Anthropic Messages translators, from
 * recorded request/answer pairs: requests into chat completions, chat
 * answers back, and recorded chat-completions SSE streams (fed through the
 * edge filter a few bytes at a time, with a tool call's arguments split
 * across many chunks and usage in the last chunk) into each protocol's
 * event sequence.  Expected JSON is matched as a subset of what came out
 * (every expected key present with the expected value, arrays in full).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "edge.h"
#include "req.h"
#include "tap.h"
#include "xlate.h"
#include "xmalloc.h"

/* Is want a subset of got (objects by key, arrays element by element)? */
static int
subset(json_object *want, json_object *got)
{
	size_t	i, n;

	if (want == NULL)
		return got == NULL;
	if (got == NULL)
		return 0;
	if (json_object_is_type(want, json_type_object)) {
		if (!json_object_is_type(got, json_type_object))
			return 0;
		json_object_object_foreach(want, k, v) {
			json_object *g = NULL;
			if (!json_object_object_get_ex(got, k, &g))
				return 0;
			if (!subset(v, g))
				return 0;
		}
		return 1;
	}
	if (json_object_is_type(want, json_type_array)) {
		if (!json_object_is_type(got, json_type_array) ||
		    json_object_array_length(want) !=
		    json_object_array_length(got))
			return 0;
		n = json_object_array_length(want);
		for (i = 0; i < n; i++)
			if (!subset(json_object_array_get_idx(want, i),
			    json_object_array_get_idx(got, i)))
				return 0;
		return 1;
	}
	return json_object_equal(want, got);
}

static int
json_matches(const char *want_s, json_object *got, const char *what)
{
	json_object	*want = json_tokener_parse(want_s);
	int		 r;

	if (want == NULL)
		bail("bad expected JSON in %s", what);
	r = ok(subset(want, got), "%s", what);
	if (!r)
		diag("want %s\n got %s", want_s, got ? json_object_to_json_string(
		    got) : "(null)");
	json_object_put(want);
	return r;
}

/* ---- requests ---- */

static const struct {
	enum xlate_kind	 k;
	const char	*what;
	const char	*in;
	const char	*want;		/* NULL: refused */
	const char	*err;		/* part of the reason when refused */
	const char	*absent;	/* a key the chat body must not have */
} reqs[] = {
	{ XLATE_MESSAGES, "messages: system blocks, text, stop, tools, choice",
	  "{\"model\":\"claude-sonnet-4\",\"max_tokens\":1024,"
	  "\"system\":[{\"type\":\"text\",\"text\":\"You are Claude Code.\","
	  "\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":\"text\","
	  "\"text\":\"Be brief.\"}],"
	  "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
	  "\"text\":\"list files\"}]}],\"stop_sequences\":[\"END\"],"
	  "\"temperature\":0.5,\"tools\":[{\"name\":\"Bash\",\"description\":"
	  "\"Run a command\",\"input_schema\":{\"type\":\"object\","
	  "\"properties\":{\"command\":{\"type\":\"string\"}}}},"
	  "{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}],"
	  "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true},"
	  "\"metadata\":{\"user_id\":\"u\"},\"stream\":true}",
	  "{\"model\":\"claude-sonnet-4\",\"messages\":[{\"role\":\"system\","
	  "\"content\":\"You are Claude Code.\\nBe brief.\"},{\"role\":\"user\","
	  "\"content\":\"list files\"}],\"max_tokens\":1024,\"stop\":[\"END\"],"
	  "\"temperature\":0.5,\"tools\":[{\"type\":\"function\",\"function\":"
	  "{\"name\":\"Bash\",\"description\":\"Run a command\",\"parameters\":"
	  "{\"type\":\"object\",\"properties\":{\"command\":{\"type\":"
	  "\"string\"}}}}}],\"tool_choice\":\"required\","
	  "\"parallel_tool_calls\":false,\"stream\":true,"
	  "\"stream_options\":{\"include_usage\":true}}", NULL, NULL },
	{ XLATE_MESSAGES, "messages: tool_use and tool_result round trip, images (one "
	  "a tool returned)",
	  "{\"model\":\"m\",\"max_tokens\":10,\"messages\":["
	  "{\"role\":\"user\",\"content\":\"run ls\"},"
	  "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
	  "\"Running.\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":"
	  "\"Bash\",\"input\":{\"command\":\"ls\"}}]},"
	  "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
	  "\"tool_use_id\":\"toolu_1\",\"content\":[{\"type\":\"text\","
	  "\"text\":\"a.c\"},{\"type\":\"image\",\"source\":{\"type\":"
	  "\"url\",\"url\":\"https://x/shot.png\"}}]},{\"type\":\"text\","
	  "\"text\":\"and?\"},"
	  "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":"
	  "\"image/png\",\"data\":\"iVBO\"}}]}],"
	  "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048},"
	  "\"stream\":true}",
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"run ls\"},"
	  "{\"role\":\"assistant\",\"content\":\"Running.\",\"tool_calls\":["
	  "{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":"
	  "\"Bash\",\"arguments\":\"{\\\"command\\\":\\\"ls\\\"}\"}}]},"
	  "{\"role\":\"tool\",\"content\":\"a.c\",\"tool_call_id\":\"toolu_1\"},"
	  "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
	  "\"image_url\":{\"url\":\"https://x/shot.png\"}},{\"type\":"
	  "\"text\",\"text\":\"and?\"},"
	  "{\"type\":\"image_url\",\"image_url\":{\"url\":"
	  "\"data:image/png;base64,iVBO\"}}]}],"
	  "\"enable_thinking\":true,\"thinking_budget\":2048}", NULL, NULL },
	{ XLATE_MESSAGES, "messages: a system message between turns (Claude "
	  "Code's mid-conversation-system beta), adaptive thinking ignored",
	  "{\"model\":\"m\",\"max_tokens\":10,\"thinking\":{\"type\":"
	  "\"adaptive\"},\"output_config\":{\"effort\":\"high\"},"
	  "\"context_management\":{},\"messages\":[{\"role\":\"user\","
	  "\"content\":\"a\"},{\"role\":\"system\",\"content\":[{\"type\":"
	  "\"text\",\"text\":\"agents\"}]}]}",
	  "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
	  "\"a\"},{\"role\":\"system\",\"content\":\"agents\"}],"
	  "\"max_tokens\":10}", NULL, "enable_thinking" },
	{ XLATE_MESSAGES, "messages: thinking on a plain call is not asked "
	  "for (DashScope refuses it without streaming)",
	  "{\"model\":\"m\",\"max_tokens\":10,\"thinking\":{\"type\":"
	  "\"enabled\",\"budget_tokens\":1024},\"messages\":[{\"role\":"
	  "\"user\",\"content\":\"a\"}]}", "{\"model\":\"m\"}", NULL,
	  "enable_thinking" },
	{ XLATE_MESSAGES, "messages: a text document is text",
	  "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":"
	  "\"user\",\"content\":[{\"type\":\"document\",\"source\":{"
	  "\"type\":\"text\",\"media_type\":\"text/plain\",\"data\":"
	  "\"notes\"}},{\"type\":\"text\",\"text\":\"sum up\"}]}]}",
	  "{\"messages\":[{\"role\":\"user\",\"content\":"
	  "\"notes\\nsum up\"}]}", NULL, NULL },
	{ XLATE_MESSAGES, "messages: a PDF document becomes a note saying so",
	  "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":"
	  "\"user\",\"content\":[{\"type\":\"document\",\"source\":{"
	  "\"type\":\"base64\",\"media_type\":\"application/pdf\","
	  "\"data\":\"JVBE\"}}]}]}", "{\"messages\":[{\"role\":\"user\","
	  "\"content\":\"[document omitted: application/pdf cannot be read by "
	  "this model; ask for its text]\"}]}", NULL, NULL },
	{ XLATE_MESSAGES, "messages: an unknown role is refused",
	  "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":"
	  "\"tool\",\"content\":\"x\"}]}", NULL, "'role'", NULL },
	{ XLATE_MESSAGES, "messages: no messages is refused",
	  "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[]}", NULL,
	  "'messages'", NULL },
	{ XLATE_RESPONSES, "responses: string input, instructions, options",
	  "{\"model\":\"gpt-5-codex\",\"instructions\":\"Be a coder.\","
	  "\"input\":\"hello\",\"max_output_tokens\":300,\"temperature\":0.2,"
	  "\"reasoning\":{\"effort\":\"high\",\"summary\":\"auto\"},"
	  "\"store\":false,\"text\":{\"format\":{\"type\":\"json_schema\","
	  "\"name\":\"out\",\"schema\":{\"type\":\"object\"},\"strict\":true}}}",
	  "{\"model\":\"gpt-5-codex\",\"messages\":[{\"role\":\"system\","
	  "\"content\":\"Be a coder.\"},{\"role\":\"user\",\"content\":"
	  "\"hello\"}],\"max_tokens\":300,\"temperature\":0.2,"
	  "\"reasoning_effort\":\"high\",\"response_format\":{\"type\":"
	  "\"json_schema\",\"json_schema\":{\"name\":\"out\",\"schema\":"
	  "{\"type\":\"object\"},\"strict\":true}}}", NULL, "stream" },
	{ XLATE_RESPONSES, "responses: items with a function call round trip",
	  "{\"model\":\"m\",\"stream\":true,\"tools\":[{\"type\":\"function\","
	  "\"name\":\"shell\",\"description\":\"Runs a command\","
	  "\"parameters\":{\"type\":\"object\"},\"strict\":false},"
	  "{\"type\":\"web_search\"}],\"tool_choice\":\"auto\","
	  "\"parallel_tool_calls\":false,\"input\":["
	  "{\"type\":\"message\",\"role\":\"developer\",\"content\":"
	  "[{\"type\":\"input_text\",\"text\":\"rules\"}]},"
	  "{\"type\":\"message\",\"role\":\"user\",\"content\":["
	  "{\"type\":\"input_text\",\"text\":\"run \"},{\"type\":\"input_text\","
	  "\"text\":\"echo\"}]},"
	  "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]},"
	  "{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":"
	  "\"shell\",\"arguments\":\"{\\\"command\\\":[\\\"echo\\\"]}\"},"
	  "{\"type\":\"function_call_output\",\"call_id\":\"call_1\","
	  "\"output\":\"hi\\n\"},"
	  "{\"role\":\"user\",\"content\":[{\"type\":\"input_image\","
	  "\"image_url\":\"https://x/y.png\",\"detail\":\"auto\"}]}]}",
	  "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":"
	  "\"rules\"},{\"role\":\"user\",\"content\":\"run echo\"},"
	  "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
	  "\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"shell\","
	  "\"arguments\":\"{\\\"command\\\":[\\\"echo\\\"]}\"}}]},"
	  "{\"role\":\"tool\",\"content\":\"hi\\n\",\"tool_call_id\":\"call_1\"},"
	  "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
	  "\"image_url\":{\"url\":\"https://x/y.png\",\"detail\":\"auto\"}}]}],"
	  "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"shell\","
	  "\"description\":\"Runs a command\",\"parameters\":{\"type\":"
	  "\"object\"},\"strict\":false}}],\"tool_choice\":\"auto\","
	  "\"parallel_tool_calls\":false,\"stream\":true,\"stream_options\":"
	  "{\"include_usage\":true}}", NULL, NULL },
	{ XLATE_RESPONSES, "responses: previous_response_id is a clear 400",
	  "{\"model\":\"m\",\"input\":\"x\",\"previous_response_id\":\"resp_1\"}",
	  NULL, "Send the whole conversation", NULL },
	{ XLATE_RESPONSES, "responses: missing input is refused",
	  "{\"model\":\"m\"}", NULL, "'input'", NULL },
	{ XLATE_RESPONSES, "responses: input_file is refused",
	  "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
	  "\"input_file\",\"file_id\":\"f\"}]}]}", NULL, "input_file", NULL },
};

static void
test_requests(void)
{
	size_t		 i;
	char		 err[512];
	json_object	*in, *out;

	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		in = json_tokener_parse(reqs[i].in);
		if (in == NULL)
			bail("bad input JSON: %s", reqs[i].what);
		err[0] = '\0';
		out = xlate_proto(reqs[i].k)->request(in, NULL, err,
		    sizeof(err));
		if (reqs[i].want != NULL) {
			if (!json_matches(reqs[i].want, out, reqs[i].what))
				diag("err: %s", err);
			if (reqs[i].absent != NULL)
				ok(!json_object_object_get_ex(out,
				    reqs[i].absent, NULL), "%s: no %s",
				    reqs[i].what, reqs[i].absent);
		} else {
			ok(out == NULL && strstr(err, reqs[i].err) != NULL,
			    "%s (%s)", reqs[i].what, err);
		}
		json_object_put(out);
		json_object_put(in);
	}
}

/* ---- answers ---- */

static const char chat_text[] =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,"
    "\"model\":\"qwen3-coder-plus\",\"choices\":[{\"index\":0,\"message\":"
    "{\"role\":\"assistant\",\"content\":\"Hello.\"},\"finish_reason\":"
    "\"stop\"}],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":2,"
    "\"total_tokens\":22,\"prompt_tokens_details\":{\"cached_tokens\":8}}}";

static const char chat_tool[] =
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion\",\"created\":1,"
    "\"model\":\"qwen3-coder-plus\",\"choices\":[{\"index\":0,\"message\":"
    "{\"role\":\"assistant\",\"content\":\"Let me look.\",\"tool_calls\":"
    "[{\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":"
    "\"Bash\",\"arguments\":\"{\\\"command\\\":\\\"ls\\\"}\"}}]},"
    "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":30,"
    "\"completion_tokens\":9,\"total_tokens\":39}}";

static const char chat_length[] =
    "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"Trunc\"},\"finish_reason\":\"length\"}],"
    "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}";

static void
test_answers(void)
{
	static const struct {
		enum xlate_kind	 k;
		const char	*chat;
		const char	*want;
		const char	*what;
	} t[] = {
		{ XLATE_MESSAGES, chat_text,
		  "{\"id\":\"msg_abc\",\"type\":\"message\",\"role\":\"assistant\","
		  "\"model\":\"claude-x\",\"content\":[{\"type\":\"text\",\"text\":"
		  "\"Hello.\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
		  "\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":8,"
		  "\"output_tokens\":2}}", "messages: text answer and usage" },
		{ XLATE_MESSAGES, chat_tool,
		  "{\"content\":[{\"type\":\"text\",\"text\":\"Let me look.\"},"
		  "{\"type\":\"tool_use\",\"id\":\"call_9\",\"name\":\"Bash\","
		  "\"input\":{\"command\":\"ls\"}}],\"stop_reason\":\"tool_use\","
		  "\"usage\":{\"input_tokens\":30,\"output_tokens\":9}}",
		  "messages: tool_use with parsed input" },
		{ XLATE_MESSAGES, chat_length,
		  "{\"stop_reason\":\"max_tokens\"}", "messages: length -> max_tokens" },
		{ XLATE_RESPONSES, chat_text,
		  "{\"id\":\"resp_abc\",\"object\":\"response\",\"status\":"
		  "\"completed\",\"model\":\"claude-x\",\"output\":[{\"type\":"
		  "\"message\",\"role\":\"assistant\",\"status\":\"completed\","
		  "\"content\":[{\"type\":\"output_text\",\"text\":\"Hello.\","
		  "\"annotations\":[]}]}],\"output_text\":\"Hello.\",\"usage\":"
		  "{\"input_tokens\":20,\"input_tokens_details\":{\"cached_tokens\":"
		  "8},\"output_tokens\":2,\"total_tokens\":22}}",
		  "responses: text answer and usage" },
		{ XLATE_RESPONSES, chat_tool,
		  "{\"status\":\"completed\",\"output\":[{\"type\":\"message\"},"
		  "{\"type\":\"function_call\",\"call_id\":\"call_9\",\"name\":"
		  "\"Bash\",\"arguments\":\"{\\\"command\\\":\\\"ls\\\"}\","
		  "\"status\":\"completed\"}],\"usage\":{\"total_tokens\":39}}",
		  "responses: function_call item" },
		{ XLATE_RESPONSES, chat_length,
		  "{\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":"
		  "\"max_output_tokens\"}}", "responses: length -> incomplete" },
	};
	struct xlate_ctx	 x;
	json_object		*chat, *out;
	size_t			 i;

	x.model = "claude-x";
	x.created = 1700000000;
	x.req = NULL;
	x.input_estimate = 0;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		x.id = t[i].k == XLATE_MESSAGES ? "msg_abc" : "resp_abc";
		chat = json_tokener_parse(t[i].chat);
		out = xlate_proto(t[i].k)->answer(&x, chat);
		json_matches(t[i].want, out, t[i].what);
		json_object_put(out);
		json_object_put(chat);
	}
}

/* ---- streams through the edge filter ---- */

static int
mem_write(void *ctx, const void *p, size_t n)
{
	xbuf_add(ctx, p, n);
	return 0;
}

static int
mem_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

/* The relay's bytes: CGI head + a recorded upstream stream. */
static const char sse_head[] =
    "Status: 200 OK\r\nContent-Type: text/event-stream\r\n"
    "X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\n\r\n";

#define CHUNK(d, f) "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\"," \
    "\"model\":\"qwen3-coder-plus\",\"choices\":[{\"index\":0,\"delta\":" d \
    ",\"finish_reason\":" f "}]}\n\n"

/* Text, then one tool call whose arguments come in five pieces. */
static const char stream_tool[] =
    CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
    CHUNK("{\"content\":\"Let me \"}", "null")
    ": ping\n\n"
    CHUNK("{\"content\":\"check.\"}", "null")
    CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_7\",\"type\":"
	"\"function\",\"function\":{\"name\":\"Bash\",\"arguments\":\"\"}}]}",
	"null")
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
	"\"{\\\"com\"}}]}", "null")
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
	"\"mand\\\":\"}}]}", "null")
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
	"\" \\\"echo\"}}]}", "null")
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
	"\" hi\\\"\"}}]}", "null")
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
	"\"}\"}}]}", "null")
    CHUNK("{}", "\"tool_calls\"")
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":40,"
    "\"completion_tokens\":12,\"total_tokens\":52}}\n\n"
    "data: [DONE]\n\n";

/* Feed the relay's bytes in pieces of step bytes; return the output. */
static char *
run_filter(enum xlate_kind k, const char *head, const char *body, size_t step)
{
	struct xbuf		 out = { NULL, 0, 0 };
	struct sink		 down = { mem_write, mem_flush, &out };
	struct xlate_ctx	 x;
	struct edge_filter	*f;
	size_t			 i, n;
	char			*all;

	x.id = k == XLATE_MESSAGES ? "msg_abc" : "resp_abc";
	x.model = "claude-x";
	x.created = 1700000000;
	x.req = NULL;
	x.input_estimate = 33;
	f = edge_filter_new(xlate_proto(k), &x, &down);
	all = xasprintf("%s%s", head, body);
	n = strlen(all);
	for (i = 0; i < n; i += step)
		edge_filter_write(f, all + i, n - i < step ? n - i : step);
	edge_filter_flush(f);
	json_object_put(edge_filter_end(f));
	free(all);
	return out.p != NULL ? out.p : xstrdup("");
}

/* The "data:" JSON of each event after the header block, as an array. */
static json_object *
events_of(const char *s)
{
	json_object	*a = json_object_new_array();
	const char	*p = strstr(s, "\r\n\r\n");

	p = p != NULL ? p + 4 : s;
	while ((p = strstr(p, "data: ")) != NULL) {
		const char *e = strchr(p, '\n');
		char *d = xstrndup(p + 6, (size_t)(e - p - 6));
		json_object *o = json_tokener_parse(d);
		json_object_array_add(a, o != NULL ? o :
		    json_object_new_string(d));
		free(d);
		p = e;
	}
	return a;
}

static void
test_streams(void)
{
	static const char want_msg[] = "["
	    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_abc\","
	    "\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],"
	    "\"usage\":{\"input_tokens\":33,\"output_tokens\":0}}},"
	    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
	    "{\"type\":\"text\",\"text\":\"\"}},"
	    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
	    "\"text_delta\",\"text\":\"Let me \"}},"
	    "{\"type\":\"ping\"},"
	    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
	    "\"text_delta\",\"text\":\"check.\"}},"
	    "{\"type\":\"content_block_stop\",\"index\":0},"
	    "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
	    "{\"type\":\"tool_use\",\"id\":\"call_7\",\"name\":\"Bash\","
	    "\"input\":{}}},"
	    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
	    "\"input_json_delta\",\"partial_json\":\"{\\\"com\"}},"
	    "{\"delta\":{\"partial_json\":\"mand\\\":\"}},"
	    "{\"delta\":{\"partial_json\":\" \\\"echo\"}},"
	    "{\"delta\":{\"partial_json\":\" hi\\\"\"}},"
	    "{\"delta\":{\"partial_json\":\"}\"}},"
	    "{\"type\":\"content_block_stop\",\"index\":1},"
	    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},"
	    "\"usage\":{\"input_tokens\":40,\"output_tokens\":12}},"
	    "{\"type\":\"message_stop\"}]";
	static const char want_rsp[] = "["
	    "{\"type\":\"response.created\",\"sequence_number\":0,\"response\":"
	    "{\"id\":\"resp_abc\",\"status\":\"in_progress\",\"output\":[]}},"
	    "{\"type\":\"response.in_progress\",\"sequence_number\":1},"
	    "{\"type\":\"response.output_item.added\",\"output_index\":0,"
	    "\"item\":{\"type\":\"message\",\"id\":\"msg_abc_0\",\"status\":"
	    "\"in_progress\"}},"
	    "{\"type\":\"response.content_part.added\",\"item_id\":\"msg_abc_0\","
	    "\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\"}},"
	    "{\"type\":\"response.output_text.delta\",\"delta\":\"Let me \"},"
	    "\": ping\","	/* placeholder, removed below */
	    "{\"type\":\"response.output_text.delta\",\"delta\":\"check.\"},"
	    "{\"type\":\"response.output_text.done\",\"text\":\"Let me check.\"},"
	    "{\"type\":\"response.content_part.done\",\"part\":{\"text\":"
	    "\"Let me check.\"}},"
	    "{\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":"
	    "{\"type\":\"message\",\"status\":\"completed\",\"content\":[{\"type\":"
	    "\"output_text\",\"text\":\"Let me check.\"}]}},"
	    "{\"type\":\"response.output_item.added\",\"output_index\":1,\"item\":"
	    "{\"type\":\"function_call\",\"id\":\"fc_abc_1\",\"call_id\":"
	    "\"call_7\",\"name\":\"Bash\",\"arguments\":\"\"}},"
	    "{\"type\":\"response.function_call_arguments.delta\",\"item_id\":"
	    "\"fc_abc_1\",\"output_index\":1,\"delta\":\"{\\\"com\"},"
	    "{\"delta\":\"mand\\\":\"},{\"delta\":\" \\\"echo\"},"
	    "{\"delta\":\" hi\\\"\"},{\"delta\":\"}\"},"
	    "{\"type\":\"response.function_call_arguments.done\",\"arguments\":"
	    "\"{\\\"command\\\": \\\"echo hi\\\"}\"},"
	    "{\"type\":\"response.output_item.done\",\"output_index\":1,"
	    "\"item\":{\"type\":\"function_call\",\"status\":\"completed\","
	    "\"call_id\":\"call_7\",\"arguments\":"
	    "\"{\\\"command\\\": \\\"echo hi\\\"}\"}},"
	    "{\"type\":\"response.completed\",\"response\":{\"status\":"
	    "\"completed\",\"output\":[{\"type\":\"message\"},{\"type\":"
	    "\"function_call\"}],\"usage\":{\"input_tokens\":40,"
	    "\"output_tokens\":12,\"total_tokens\":52}}}]";
	static const size_t steps[] = { 1, 7, 4096 };
	char		*out, *w;
	json_object	*ev;
	size_t		 i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		out = run_filter(XLATE_MESSAGES, sse_head, stream_tool,
		    steps[i]);
		ok(strncmp(out, "Status: 200 OK\r\nContent-Type: "
		    "text/event-stream\r\n", 48) == 0 &&
		    strstr(out, "Cache-Control: no-cache\r\n") != NULL,
		    "messages stream (%zu-byte writes): SSE head, relay's "
		    "lines kept", steps[i]);
		ok(strstr(out, "event: message_start\ndata: ") != NULL &&
		    strstr(out, "event: content_block_delta\n") != NULL,
		    "messages stream: named events");
		ev = events_of(out);
		json_matches(want_msg, ev, "messages stream: event sequence, "
		    "tool arguments in 5 pieces, usage from the last chunk");
		json_object_put(ev);
		free(out);

		out = run_filter(XLATE_RESPONSES, sse_head, stream_tool,
		    steps[i]);
		ev = events_of(out);
		w = xstrdup(want_rsp);
		/* Responses keeps the ping as a comment: not an event. */
		char *ph = strstr(w, "\": ping\",");
		memmove(ph, ph + 9, strlen(ph + 9) + 1);
		json_matches(w, ev, "responses stream: event sequence, "
		    "arguments in 5 pieces, usage in response.completed");
		ok(strstr(out, "\n: ping\n\n") != NULL,
		    "responses stream: keep-alive comment passed on");
		free(w);
		json_object_put(ev);
		free(out);
	}

	/* Index-less providers: each call whole in one chunk, two calls. */
	{
		static const char noindex[] =
		    CHUNK("{\"tool_calls\":[{\"id\":\"a1\",\"type\":"
			"\"function\",\"function\":{\"name\":\"f\","
			"\"arguments\":\"{\\\"n\\\":1}\"}}]}", "null")
		    CHUNK("{\"tool_calls\":[{\"id\":\"b2\",\"type\":"
			"\"function\",\"function\":{\"name\":\"g\","
			"\"arguments\":\"{\\\"n\\\":\"}}]}", "null")
		    CHUNK("{\"tool_calls\":[{\"function\":{\"arguments\":"
			"\"2}\"}}]}", "\"tool_calls\"")
		    "data: [DONE]\n\n";

		out = run_filter(XLATE_MESSAGES, sse_head, noindex, 9);
		ev = events_of(out);
		json_matches("[{\"type\":\"message_start\"},"
		    "{\"index\":0,\"content_block\":{\"id\":\"a1\",\"name\":"
		    "\"f\"}},{\"index\":0,\"delta\":{\"partial_json\":"
		    "\"{\\\"n\\\":1}\"}},{\"type\":\"content_block_stop\"},"
		    "{\"index\":1,\"content_block\":{\"id\":\"b2\",\"name\":"
		    "\"g\"}},{\"index\":1,\"delta\":{\"partial_json\":"
		    "\"{\\\"n\\\":\"}},{\"index\":1,\"delta\":{\"partial_json\":"
		    "\"2}\"}},{\"type\":\"content_block_stop\"},"
		    "{\"type\":\"message_delta\"},{\"type\":\"message_stop\"}]",
		    ev, "messages stream: index-less calls told apart by id");
		json_object_put(ev);
		free(out);
		out = run_filter(XLATE_RESPONSES, sse_head, noindex, 9);
		ok(strstr(out, "\"call_id\":\"a1\",\"name\":\"f\","
		    "\"arguments\":\"{\\\"n\\\":1}\"") != NULL &&
		    strstr(out, "\"call_id\":\"b2\",\"name\":\"g\","
		    "\"arguments\":\"{\\\"n\\\":2}\"") != NULL,
		    "responses stream: index-less calls told apart by id");
		free(out);
	}

	/* An upstream that stops without [DONE] still closes the stream. */
	out = run_filter(XLATE_MESSAGES, sse_head,
	    CHUNK("{\"content\":\"cut\"}", "null"), 5);
	ok(strstr(out, "event: content_block_stop") != NULL &&
	    strstr(out, "event: message_stop") != NULL,
	    "messages stream: closed at the end without [DONE]");
	free(out);

	/* An error the relay writes mid-stream. */
	out = run_filter(XLATE_MESSAGES, sse_head,
	    CHUNK("{\"content\":\"a\"}", "null")
	    "data: {\"error\":{\"message\":\"the provider timed out mid-answer."
	    "\",\"type\":\"upstream_error\",\"code\":\"upstream_timeout\"}}\n\n",
	    64);
	ok(strstr(out, "event: error\ndata: {\"type\":\"error\",\"error\":"
	    "{\"type\":\"api_error\",\"message\":\"the provider timed out") !=
	    NULL && strstr(out, "message_stop") == NULL,
	    "messages stream: mid-stream error is an Anthropic error event");
	free(out);
	out = run_filter(XLATE_RESPONSES, sse_head,
	    "data: {\"error\":{\"message\":\"gone\",\"type\":\"upstream_error\","
	    "\"code\":\"upstream_timeout\"}}\n\n", 64);
	ok(strstr(out, "event: response.failed") != NULL &&
	    strstr(out, "\"error\":{\"code\":\"upstream_timeout\",\"message\":"
	    "\"gone\"}") != NULL, "responses stream: error is response.failed");
	free(out);
}

static void
test_bodies(void)
{
	char		*out;
	json_object	*o;

	out = run_filter(XLATE_MESSAGES, "Status: 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: 999\r\n\r\n", chat_text, 3);
	ok(strstr(out, "Status: 200 OK\r\nContent-Type: application/json\r\n")
	    == out && strstr(out, "Content-Length: 999") == NULL,
	    "messages body: new head, new length");
	o = json_tokener_parse(strstr(out, "\r\n\r\n") + 4);
	json_matches("{\"type\":\"message\",\"content\":[{\"text\":\"Hello.\"}]}",
	    o, "messages body: translated whole");
	json_object_put(o);
	free(out);

	out = run_filter(XLATE_MESSAGES, "Status: 429 Too Many Requests\r\n"
	    "Content-Type: application/json\r\nRetry-After: 7\r\n"
	    "Content-Length: 10\r\n\r\n", "{\"error\":{\"message\":\"Every "
	    "account is limited.\",\"type\":\"rate_limit_exceeded\",\"code\":"
	    "\"rate_limit_exceeded\",\"param\":null}}\n", 1000);
	ok(strstr(out, "Status: 429 ") == out &&
	    strstr(out, "Retry-After: 7\r\n") != NULL,
	    "messages error: status and Retry-After kept");
	o = json_tokener_parse(strstr(out, "\r\n\r\n") + 4);
	json_matches("{\"type\":\"error\",\"error\":{\"type\":"
	    "\"rate_limit_error\",\"message\":\"Every account is limited.\"}}",
	    o, "messages error: Anthropic shape");
	json_object_put(o);
	free(out);

	out = run_filter(XLATE_RESPONSES, "Status: 404 Not Found\r\n"
	    "Content-Type: application/json\r\n\r\n", "{\"error\":{\"message\":"
	    "\"no\",\"type\":\"invalid_request_error\"}}", 1000);
	ok(strstr(out, "{\"error\":{\"message\":\"no\"") != NULL,
	    "responses error: the OpenAI shape passes on");
	free(out);

	out = run_filter(XLATE_MESSAGES, "Status: 200 OK\r\nContent-Type: "
	    "application/json\r\n\r\n", "not json", 1000);
	ok(strstr(out, "Status: 502 ") == out &&
	    strstr(out, "\"api_error\"") != NULL,
	    "messages body: a 200 that is not JSON is a 502 api_error");
	free(out);

	out = run_filter(XLATE_RESPONSES, "Status: 200 OK\r\nContent-Ty", "",
	    1000);
	ok(strstr(out, "Status: 502 ") == out && strstr(out, "{\"error\":"
	    "{\"message\":") != NULL, "a head that never ends is a 502, "
	    "OpenAI-shaped for responses");
	free(out);
	out = run_filter(XLATE_MESSAGES, "Status: 500 Internal Server Error\r\n"
	    "Content-Type: text/plain\r\n\r\n", "boom", 1000);
	ok(strstr(out, "Status: 500 ") == out && strstr(out, "\"api_error\"")
	    != NULL, "messages: a non-JSON error body is an api_error");
	free(out);
}

/* previous_response_id: a stored conversation goes before the input. */
static void
test_history(void)
{
	json_object	*req, *hist, *out, *turn, *output;
	char		 err[256];
	const char	*want;

	req = json_tokener_parse("{\"model\":\"m\",\"instructions\":\"I\","
	    "\"previous_response_id\":\"resp_1\",\"input\":[{\"type\":"
	    "\"function_call_output\",\"call_id\":\"c1\",\"output\":\"42\"}]}");
	hist = json_tokener_parse("[{\"role\":\"user\",\"content\":\"q\"},"
	    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{"
	    "\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"f\",\"arguments\":\"{}\"}}]}]");
	out = xlate_proto(XLATE_RESPONSES)->request(req, hist, err,
	    sizeof(err));
	json_matches("{\"messages\":[{\"role\":\"system\",\"content\":\"I\"},"
	    "{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
	    "\"tool_calls\":[{\"id\":\"c1\"}]},{\"role\":\"tool\","
	    "\"content\":\"42\",\"tool_call_id\":\"c1\"}]}", out,
	    "responses: history between instructions and input");
	json_object_put(out);

	/* The turn kept: input items and output, not the instructions. */
	output = json_tokener_parse("[{\"type\":\"reasoning\",\"summary\":[]},"
	    "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{"
	    "\"type\":\"output_text\",\"text\":\"It is \"},{\"type\":"
	    "\"output_text\",\"text\":\"42.\"}]},{\"type\":\"function_call\","
	    "\"call_id\":\"c2\",\"name\":\"g\",\"arguments\":\"{}\"}]");
	turn = xrsp_turn_messages(req, output);
	want = "[{\"role\":\"tool\",\"content\":\"42\",\"tool_call_id\":"
	    "\"c1\"},{\"role\":\"assistant\",\"content\":\"It is 42.\","
	    "\"tool_calls\":[{\"id\":\"c2\",\"type\":\"function\","
	    "\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}]";
	json_matches(want, turn, "responses: a turn as chat messages (input, "
	    "then output; a call joins the text before it)");
	json_object_put(turn);
	json_object_put(output);
	json_object_put(hist);
	json_object_put(req);
}

static void
test_errors_and_counts(void)
{
	static const struct { int st; const char *type; } m[] = {
		{ 400, "invalid_request_error" }, { 401, "authentication_error" },
		{ 403, "permission_error" }, { 404, "not_found_error" },
		{ 413, "request_too_large" }, { 429, "rate_limit_error" },
		{ 500, "api_error" }, { 502, "api_error" },
		{ 503, "overloaded_error" }, { 529, "overloaded_error" },
	};
	size_t		 i;
	char		 err[256];
	json_object	*in;
	int64_t		 n;

	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		is_string(xmsg_error_type(m[i].st), m[i].type,
		    "anthropic error type for %d", m[i].st);
	in = json_tokener_parse("{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"0123456789012345678901234567890123456789\"}]}");
	n = xmsg_count_tokens(in, err, sizeof(err));
	ok(n >= 10 && n <= 40, "count_tokens estimate for 40 chars: %lld",
	    (long long)n);
	json_object_put(in);
	in = json_tokener_parse("{\"model\":\"m\"}");
	ok(xmsg_count_tokens(in, err, sizeof(err)) == -1 &&
	    strstr(err, "messages") != NULL, "count_tokens: bad body refused");
	json_object_put(in);
}

/* A small deterministic generator (xorshift), state passed by the caller. */
static uint32_t
rnd(uint32_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 17;
	*st ^= *st << 5;
	return *st;
}

/* Every "data: " line of a translated stream is one JSON value. */
static int
data_lines_json(const char *s)
{
	const char	*p = s;

	while ((p = strstr(p, "\ndata: ")) != NULL) {
		const char *e = strchr(p + 7, '\n');
		char *d = xstrndup(p + 7, e != NULL ? (size_t)(e - p - 7) :
		    strlen(p + 7));
		json_object *o = json_tokener_parse(d);
		free(d);
		if (o == NULL)
			return 0;
		json_object_put(o);
		p += 7;
	}
	return 1;
}

/*
 * Mutated recorded streams (bytes flipped, dropped, cut short) in random
 * pieces, and mutated requests: no crash, and what comes out is still
 * well-formed (a status line; each event's data one JSON value).
 */
static void
test_mutations(void)
{
	static const enum xlate_kind kinds[] = { XLATE_MESSAGES,
	    XLATE_RESPONSES };
	uint32_t	 st = 0x9e3779b9u;
	size_t		 len = strlen(stream_tool), i, n, k, bad = 0, reqs_ok = 0;
	char		*buf, *out, err[512];
	int		 it;

	for (it = 0; it < 600; it++) {
		enum xlate_kind kind = kinds[it % 2];
		buf = xstrdup(stream_tool);
		n = len;
		for (k = rnd(&st) % 8; k > 0; k--) {
			i = rnd(&st) % n;
			switch (rnd(&st) % 3) {
			case 0:
				buf[i] = (char)(rnd(&st) % 96 + 32);
				break;
			case 1:
				memmove(buf + i, buf + i + 1, n - i);
				n--;
				break;
			default:
				buf[i] = "{}[]\":,\n"[rnd(&st) % 8];
				break;
			}
		}
		if (rnd(&st) % 4 == 0)
			buf[n = rnd(&st) % n] = '\0';
		out = run_filter(kind, sse_head, buf, 1 + rnd(&st) % 64);
		if (strncmp(out, "Status: 200 OK\r\n", 16) != 0 ||
		    !data_lines_json(out))
			bad++;
		free(out);
		free(buf);
	}
	is_int(0, (long long)bad, "600 mutated streams: well-formed output, "
	    "no crash");

	for (it = 0; it < (int)(sizeof(reqs) / sizeof(reqs[0])) * 40; it++) {
		size_t r = (size_t)it % (sizeof(reqs) / sizeof(reqs[0]));
		json_object *in, *o;
		buf = xstrdup(reqs[r].in);
		n = strlen(buf);
		for (k = 1 + rnd(&st) % 4; k > 0; k--) {
			i = rnd(&st) % n;
			buf[i] = "{}[]\":,0a"[rnd(&st) % 9];
		}
		if ((in = json_tokener_parse(buf)) != NULL &&
		    json_object_is_type(in, json_type_object)) {
			err[0] = '\0';
			o = xlate_proto(reqs[r].k)->request(in, NULL, err,
			    sizeof(err));
			if (o != NULL || err[0] != '\0')
				reqs_ok++;
			else
				diag("no body and no reason for: %s", buf);
			json_object_put(o);
		} else
			reqs_ok++;
		json_object_put(in);
		free(buf);
	}
	is_int((long long)(sizeof(reqs) / sizeof(reqs[0]) * 40),
	    (long long)reqs_ok, "mutated requests: a chat body or a reason, "
	    "never neither");
}

int
main(void)
{
	plan_lazy();
	test_requests();
	test_answers();
	test_streams();
	test_bodies();
	test_history();
	test_errors_and_counts();
	test_mutations();
	return 0;
}
