/*
 * responses.c: POST /v1/responses, the OpenAI Responses API, served by
 * the chat-completions pool through the translator in app/xlate_responses.c.
 * Answers are kept for responses_ttl_seconds (unless store: false) so that
 * previous_response_id can continue them (app/resphist.c).
 */
#include "config.h"

#include "edge.h"
#include "handlers.h"
#include "req.h"

int
handle_responses(struct req *r)
{
	return edge_serve(r, XLATE_RESPONSES);
}
