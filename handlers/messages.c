/*
 * messages.c: POST /v1/messages (Anthropic Messages, served by the
 * chat-completions pool through app/xlate_messages.c) and POST
 * /v1/messages/count_tokens (an estimate: the pool's upstreams have no
 * token-counting endpoint).  Errors are Anthropic-shaped (the route says
 * so), auth by x-api-key or Authorization: Bearer like every /v1 route.
 */
#include "config.h"

#include <json-c/json.h>

#include "edge.h"
#include "handlers.h"
#include "req.h"
#include "xlate.h"

int
handle_messages(struct req *r)
{
	return edge_serve(r, XLATE_MESSAGES);
}

int
handle_count_tokens(struct req *r)
{
	json_object	*o;
	char		 err[512];
	int64_t		 n;

	if ((n = xmsg_count_tokens(r->json, err, sizeof(err))) < 0) {
		resp_error(r, 400, "invalid_request_error", "invalid_request",
		    "%s", err);
		return 0;
	}
	o = json_object_new_object();
	json_object_object_add(o, "input_tokens", json_object_new_int64(n));
	resp_json(r, 200, o);
	json_object_put(o);
	return 0;
}
