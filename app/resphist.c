/*
 * resphist.c: Responses API turns kept for previous_response_id (see
 * resphist.h).  A record is {"v":1,"client","prev","messages":[...]}; the
 * store adds the expiry.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "req.h"
#include "resphist.h"
#include "store.h"
#include "util.h"
#include "xlate.h"
#include "xmalloc.h"

#define CHAIN_MAX	4096	/* turns followed back, at most */

json_object *
resphist_load(struct server *srv, const char *client, const char *id,
    char *err, size_t errsz)
{
	json_object	*all, *o, *msgs;
	json_object	*turns[64], **tv = turns;
	char		*text, cur[128];
	const char	*owner, *prev;
	size_t		 nt = 0, cap = 64, i, j;
	int		 rc;

	if (srv->cfg->responses_ttl_seconds == 0) {
		snprintf(err, errsz, "previous_response_id needs stored "
		    "responses, and this gateway keeps none "
		    "(responses_ttl_seconds is 0). Send the whole conversation "
		    "in 'input'.");
		return NULL;
	}
	if (srv->st == NULL) {
		snprintf(err, errsz, "The state store is not available; send "
		    "the whole conversation in 'input'.");
		return NULL;
	}
	snprintf(cur, sizeof(cur), "%s", id);
	for (;;) {
		text = NULL;
		rc = store_response_get(srv->st, cur, now_ms(), &text);
		o = rc == 0 ? json_tokener_parse(text) : NULL;
		free(text);
		owner = xl_str(o, "client");
		if (o == NULL || (client != NULL && (owner == NULL ||
		    strcmp(owner, client) != 0))) {
			json_object_put(o);
			if (rc != 0 && rc != -ENOENT)
				snprintf(err, errsz, "Cannot read stored "
				    "responses: %s. Send the whole "
				    "conversation in 'input'.",
				    store_strerror(rc));
			else
				snprintf(err, errsz, "Response '%.100s' is not "
				    "stored here: unknown, made with store: "
				    "false, or older than %lld s "
				    "(responses_ttl_seconds). Send the whole "
				    "conversation in 'input'.", cur,
				    srv->cfg->responses_ttl_seconds);
			goto fail;
		}
		if (nt == cap) {
			json_object **n = xcalloc(cap * 2, sizeof(*n));
			memcpy(n, tv, nt * sizeof(*n));
			if (tv != turns)
				free(tv);
			tv = n;
			cap *= 2;
		}
		tv[nt++] = o;
		prev = xl_str(o, "prev");
		if (prev == NULL)
			break;
		if (nt >= CHAIN_MAX) {
			snprintf(err, errsz, "The conversation behind "
			    "previous_response_id is longer than %d turns; "
			    "send it whole in 'input'.", CHAIN_MAX);
			goto fail;
		}
		snprintf(cur, sizeof(cur), "%s", prev);
	}
	all = json_object_new_array();
	for (i = nt; i-- > 0;) {
		msgs = xl_get(tv[i], "messages", json_type_array);
		for (j = 0; msgs != NULL && j < json_object_array_length(msgs);
		    j++)
			json_object_array_add(all, json_object_get(
			    json_object_array_get_idx(msgs, j)));
	}
	for (i = 0; i < nt; i++)
		json_object_put(tv[i]);
	if (tv != turns)
		free(tv);
	return all;
fail:
	for (i = 0; i < nt; i++)
		json_object_put(tv[i]);
	if (tv != turns)
		free(tv);
	return NULL;
}

void
resphist_save(struct server *srv, const char *client, const char *id,
    const char *prev, json_object *messages)
{
	json_object	*o;
	int64_t		 now = now_ms(), exp;
	int		 rc;

	if (srv->cfg->responses_ttl_seconds == 0 || srv->st == NULL)
		return;
	exp = now + srv->cfg->responses_ttl_seconds * 1000;
	o = json_object_new_object();
	json_object_object_add(o, "v", json_object_new_int(1));
	xl_add_str(o, "client", client);
	xl_add_str(o, "prev", prev);
	json_object_object_add(o, "messages", json_object_get(messages));
	const char *text = json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	rc = store_response_put(srv->st, id, text, exp);
	if (rc == -ENOSPC) {
		/* Full: drop what expired, then try once more. */
		store_response_purge(srv->st, now);
		rc = store_response_put(srv->st, id, text, exp);
	}
	if (rc != 0)
		log_warn("response %s not kept for previous_response_id: %s",
		    id, store_strerror(rc));
	json_object_put(o);
}
