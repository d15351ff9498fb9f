/*
 * embeddings.c: POST /v1/embeddings, to accounts whose models include the
 * requested embedding model.
 */
#include "config.h"

#include <json-c/json.h>

#include "accounts.h"
#include "cfg.h"
#include "handlers.h"
#include "relay.h"
#include "req.h"

int
handle_embeddings(struct req *r)
{
	json_object	*m, *in;

	if (!json_object_object_get_ex(r->json, "model", &m) ||
	    !json_object_is_type(m, json_type_string) ||
	    !model_id_valid(json_object_get_string(m),
	    (size_t)json_object_get_string_len(m))) {
		resp_error(r, 400, "invalid_request_error", "invalid_model",
		    "'model' must be a non-empty string (at most 200 bytes, no "
		    "control characters) naming an embedding model.");
		return 0;
	}
	if (!json_object_object_get_ex(r->json, "input", &in) ||
	    !(json_object_is_type(in, json_type_string) ||
	    json_object_is_type(in, json_type_array))) {
		resp_error(r, 400, "invalid_request_error", "invalid_input",
		    "'input' must be a string or an array.");
		return 0;
	}
	return relay_request(r, RELAY_EMBED,
	    cfg_alias(r->srv->cfg, json_object_get_string(m)));
}
