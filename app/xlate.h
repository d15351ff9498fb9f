/*
 * xlate.h: translators between chat completions (the pool's inner
 * language) and the protocols clients speak at the edge: the OpenAI
 * Responses API (xlate_responses.c) and Anthropic Messages
 * (xlate_messages.c).  Pure functions, no I/O: JSON in, JSON or SSE text
 * out.  app/edge.c feeds them the bytes the relay writes.
 *
 * Ownership: a function returning json_object * hands the caller one
 * reference; json_object * arguments are borrowed.  Text goes into a
 * struct xbuf the caller owns (xbuf_free).
 */
#ifndef QR_XLATE_H
#define QR_XLATE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* A growable byte buffer, always NUL-terminated once anything was added. */
struct xbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

void	xbuf_add(struct xbuf *, const void *, size_t);
void	xbuf_puts(struct xbuf *, const char *);
void	xbuf_reset(struct xbuf *);
void	xbuf_free(struct xbuf *);
/* Append "event: NAME\ndata: JSON\n\n" (NAME NULL: no event line). */
void	xbuf_sse(struct xbuf *, const char *name, json_object *data);

/* What a translation knows besides the bodies. */
struct xlate_ctx {
	const char	*id;		/* resp_... / msg_..., made by the caller */
	const char	*model;		/* the model name the client asked for */
	int64_t		 created;	/* epoch seconds */
	json_object	*req;		/* the client's original request body */
	int64_t		 input_estimate;	/* tokens, until the upstream counts */
};

/*
 * One protocol, as a table of functions (resolved once, by enum xlate_proto).
 *
 * request: client body -> new chat-completions body (model left as the
 *   client sent it), or NULL with a one-line reason in err (a 400).
 *   history is NULL or the chat messages of an earlier conversation
 *   (Responses' previous_response_id), placed before the input.
 * answer: a chat-completions answer -> the protocol's answer.
 * error: an error answer the relay wrote (OpenAI-shaped body, or any
 *   text) -> the protocol's error body; *status may be changed.
 * stream_*: one state per streamed answer.  open: the upstream answered
 *   200 (events that start the stream); chunk: one chat.completion.chunk;
 *   ping: the upstream is silent; error: the stream fails (err is the
 *   OpenAI error object, borrowed); end: [DONE] or the upstream closed
 *   (idempotent: the first call closes the stream, later calls add nothing).
 *   Each appends complete SSE events to out.
 * stream_output: after end, what the answer's "output" holds (a new
 *   reference), or NULL if it failed; NULL op for a protocol that keeps
 *   nothing.
 */
struct xlate_proto {
	const char	*name;
	json_object	*(*request)(json_object *in, json_object *history,
			    char *err, size_t errsz);
	json_object	*(*answer)(const struct xlate_ctx *, json_object *chat);
	json_object	*(*error)(int *status, const char *msg, const char *type);
	void		*(*stream_new)(const struct xlate_ctx *);
	void		 (*stream_open)(void *, struct xbuf *);
	void		 (*stream_chunk)(void *, json_object *chunk, struct xbuf *);
	void		 (*stream_ping)(void *, struct xbuf *);
	void		 (*stream_error)(void *, const char *msg, const char *type,
			    struct xbuf *);
	void		 (*stream_end)(void *, struct xbuf *);
	void		 (*stream_free)(void *);
	json_object	*(*stream_output)(void *);
};

enum xlate_kind {
	XLATE_RESPONSES,	/* POST /v1/responses */
	XLATE_MESSAGES,		/* POST /v1/messages */
	XLATE__MAX
};

const struct xlate_proto *xlate_proto(enum xlate_kind);

/* The tables themselves (xlate_responses.c, xlate_messages.c). */
extern const struct xlate_proto xlate_responses;
extern const struct xlate_proto xlate_messages;

/*
 * Anthropic's error type for an HTTP status
 * (https://docs.anthropic.com/en/api/errors): 400 invalid_request_error,
 * 401 authentication_error, 403 permission_error, 404 not_found_error,
 * 413 request_too_large, 429 rate_limit_error, 503/529 overloaded_error,
 * other 5xx api_error.
 */
const char	*xmsg_error_type(int status);
/* {"type":"error","error":{"type":T,"message":M}} for a status. */
json_object	*xmsg_error_body(int status, const char *msg);

/*
 * /v1/messages/count_tokens: an estimate of the input tokens of a Messages
 * request (about four bytes of text per token, as qwen's tokenizer averages
 * on English and code).  Returns -1 if the body is not a valid request.
 */
int64_t		 xmsg_count_tokens(json_object *in, char *err, size_t errsz);

/*
 * One Responses turn as chat messages, to keep for previous_response_id:
 * the request's input items (not its instructions, which do not carry
 * over) then the output items of its answer (borrowed).  A new array.
 */
json_object	*xrsp_turn_messages(json_object *req, json_object *output);

/* ---- helpers shared by the translators ---- */

/*
 * The slot (0..max-1) of one streamed tool-call delta: its "index" when
 * present.  Without one (providers that send each call whole, index-less),
 * a delta whose id differs from the last call's starts the next slot, and
 * one without an id continues the last call.  *last and last_id (idsz
 * bytes) are the caller's state, -1 and "" at first; updated here.
 * Returns -1 when the slot is out of range.
 */
int		 xl_tool_slot(json_object *tc, int *last, char *last_id,
		    size_t idsz, int max);

/* The string member key of o, or NULL. */
const char	*xl_str(json_object *o, const char *key);
/* Member key of o if it has the type, else NULL. */
json_object	*xl_get(json_object *o, const char *key, json_type);
/* Add key: a new string (NULL adds JSON null). */
void		 xl_add_str(json_object *o, const char *key, const char *v);

/*
 * Chat-completions pieces both translators build (shapes from
 * https://platform.openai.com/docs/api-reference/chat/create).  Each
 * returns a new object; a json_object * argument is taken over (its
 * reference goes into the result).
 */
/* {"role":role,"content":content} (content NULL: JSON null). */
json_object	*xl_chat_msg(const char *role, json_object *content);
/* {"type":"text","text":t}. */
json_object	*xl_text_part(const char *t);
/* {"type":"image_url","image_url":{"url":url[,"detail":detail]}};
 * detail NULL leaves it out. */
json_object	*xl_image_part(const char *url, const char *detail);
/* {"type":"function","function":f}: a tool, or a named tool_choice. */
json_object	*xl_function(json_object *f);
/* A tool call {"id":id,"type":"function","function":{"name":name,
 * "arguments":args}} (args: a JSON text). */
json_object	*xl_tool_call(const char *id, const char *name,
		    const char *args);
/* Ask out (a chat request) to stream, with usage in the last chunk. */
void		 xl_add_stream(json_object *out);
/* choices[0] of a chat answer or chunk (borrowed), or NULL if none. */
json_object	*xl_first_choice(json_object *chat);
/* Append o as one SSE event named by its "type", then release o. */
void		 xl_emit(struct xbuf *out, json_object *o);

#endif
