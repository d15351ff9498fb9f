/*
 * responses.c: POST /v1/responses, the OpenAI Responses API, served by
 * the chat-completions pool through the translator in app/xlate_responses.c
 * (stateless: previous_response_id is refused with a 400 that says to send
 * the whole input).
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
