/*
 * resphist.h: Responses API turns kept for previous_response_id.
 *
 * Each stored response is one turn: the chat messages of its input items
 * and of its output, plus the id of the response it continued.  Loading a
 * previous_response_id walks that chain back and returns the whole
 * conversation as chat messages.  Turns expire after responses_ttl_seconds
 * (0: nothing is kept) and belong to the client key that made them.
 */
#ifndef QR_RESPHIST_H
#define QR_RESPHIST_H

#include <stddef.h>

#include <json-c/json.h>

struct server;

/*
 * The conversation up to and including response id, oldest message first:
 * a new array of chat messages.  NULL with a reason for the client in err
 * (unknown, expired, another key's, nothing kept, store error).  client is
 * the key's name, or NULL when auth is disabled.
 */
json_object	*resphist_load(struct server *, const char *client,
		    const char *id, char *err, size_t errsz);

/*
 * Keep one turn: messages (borrowed) continue prev (NULL: a first turn).
 * Best effort: a failure is logged, the answer already went out.
 */
void		 resphist_save(struct server *, const char *client,
		    const char *id, const char *prev, json_object *messages);

#endif
