/*
 * relay.h: send a client's OpenAI request to an account of the pool and
 * relay the answer, rotating on rate limits, quota and upstream faults.
 */
#ifndef QR_RELAY_H
#define QR_RELAY_H

struct req;

enum relay_kind {
	RELAY_CHAT,		/* POST {base}/chat/completions */
	RELAY_EMBED		/* POST {base}/embeddings */
};

/*
 * r->json is the validated client body; model is the name after aliases.
 * Always answers the client; returns 0.
 */
int	relay_request(struct req *r, enum relay_kind, const char *model);

/*
 * Provider body adjustments, exposed for tests: for qwen-oauth, the
 * system message in array form with cache_control (client system text
 * merged into it), stream_options.include_usage when streaming, max_tokens
 * capped at the model's output limit.  Modifies body in place.
 */
void	relay_adjust_qwen(struct json_object *body, int stream);

/* What an upstream error answer means for rotation. */
enum relay_class {
	RC_OK,
	RC_RATE,		/* throttled: short wait or another account */
	RC_QUOTA,		/* quota spent: park the account */
	RC_AUTH,		/* token rejected: refresh once */
	RC_FAULT,		/* 5xx: try another account */
	RC_CLIENT		/* the request itself is wrong: relay as is */
};
enum relay_class relay_classify(long status, const char *body);

#endif
