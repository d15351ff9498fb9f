/*
 * chat.c: POST /v1/chat/completions.
 *
 * Checks only what the gateway itself needs (model, messages, stream);
 * every other field (tools, response_format, images, fields we do not
 * know) goes to the provider untouched.
 */
#include "config.h"

#include <json-c/json.h>

#include "accounts.h"
#include "cfg.h"
#include "handlers.h"
#include "relay.h"
#include "req.h"


static const char *
chat_invalid(json_object *body)
{
	json_object	*m, *msgs, *s;

	if (!json_object_object_get_ex(body, "model", &m) ||
	    !json_object_is_type(m, json_type_string) ||
	    !model_id_valid(json_object_get_string(m),
	    (size_t)json_object_get_string_len(m)))
		return "'model' must be a non-empty string of at most 200 bytes "
		    "without control characters (see GET /v1/models).";
	if (!json_object_object_get_ex(body, "messages", &msgs) ||
	    !json_object_is_type(msgs, json_type_array) ||
	    json_object_array_length(msgs) == 0)
		return "'messages' must be a non-empty array.";
	if (json_object_object_get_ex(body, "stream", &s) &&
	    !json_object_is_type(s, json_type_boolean) &&
	    !json_object_is_type(s, json_type_null))
		return "'stream' must be true or false.";
	return NULL;
}

int
handle_chat(struct req *r)
{
	json_object	*m;
	const char	*why;

	if ((why = chat_invalid(r->json)) != NULL) {
		resp_error(r, 400, "invalid_request_error", "invalid_request",
		    "%s", why);
		return 0;
	}
	json_object_object_get_ex(r->json, "model", &m);
	return relay_request(r, RELAY_CHAT,
	    cfg_alias(r->srv->cfg, json_object_get_string(m)));
}
