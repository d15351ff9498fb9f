/*
 * upcheck.h: everything an upstream sends is input.  The checks and clamps
 * the relay applies at the boundary, before a number is counted, a wait
 * is taken or a 2xx body is passed on.  Pure functions, fuzzed
 * (tests/fuzz/fuzz_upstream.c) and tested from tables (tests/test_upcheck.c).
 */
#ifndef QR_UPCHECK_H
#define QR_UPCHECK_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

/* Token counts above this are not believed (JSON numbers stay exact). */
#define UPCHECK_TOKENS_MAX	((INT64_C(1) << 53) - 1)
/* No upstream parks an account for longer than a day. */
#define UPCHECK_RETRY_MAX_MS	(INT64_C(86400) * 1000)

enum upcheck_kind {
	UPCHECK_CHAT,		/* chat.completion object */
	UPCHECK_EMBED		/* embeddings list object */
};

/*
 * A token count from an upstream JSON value: an integer (or an integral
 * double) in [0, UPCHECK_TOKENS_MAX] is returned as is; anything else
 * (negative, too large, fractional, NaN, a string, an object) gives 0
 * and sets *bad (when bad is not NULL).  v may be NULL (absent: 0, not bad).
 */
int64_t	upcheck_tokens(struct json_object *v, int *bad);

/*
 * Read "usage" {prompt_tokens, completion_tokens} of a parsed answer or
 * SSE event o into *prompt and *completion through upcheck_tokens.  Only
 * fields present are written.  Returns 1 when something was unbelievable
 * (the caller logs it once), else 0.
 */
int	upcheck_usage(struct json_object *o, int64_t *prompt,
	    int64_t *completion);

/*
 * A Retry-After the upstream asked for, in ms (negative: none), clamped
 * to [0, UPCHECK_RETRY_MAX_MS]; negative stays -1.
 */
int64_t	upcheck_retry_after(int64_t ms);

/*
 * Is this 2xx, non-streamed body the JSON the protocol promises?  chat: an
 * object whose "choices" is an array, "id" absent or a string or integer,
 * "usage" absent, null or an object; embed: an object whose "data" is an
 * array.  len bytes at body (NUL-terminated or not; at most len read).
 * Returns 0, or -1 with a short reason (no body content) in why.
 */
int	upcheck_body(enum upcheck_kind, const char *body, size_t len,
	    char *why, size_t whylen);

/*
 * Can these first bytes of a 2xx answer to a streaming request be the
 * start of an event stream (text/event-stream: an optional BOM, then a
 * field such as "data:", a comment ":" or a blank line)?  A JSON object
 * or an HTML page is not.  Returns 0 when they can, -1 when not (why
 * filled).  n == 0 proves nothing: 0.
 */
int	upcheck_sse_start(const char *p, size_t n, char *why, size_t whylen);

/*
 * The Content-Type to pass on with a validated JSON body: ct when it is
 * application/json (any parameters) in printable ASCII, else NULL (the
 * caller's default, application/json).  Never a header with CR or LF.
 */
const char *upcheck_content_type(const char *ct);

#endif
