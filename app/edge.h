/*
 * edge.h: serve a request in another protocol through the chat-completions
 * relay.  The client's body is translated (app/xlate_*.c), the relay runs
 * as for /v1/chat/completions (same selection, rotation, refresh, limits,
 * usage accounting), and the bytes it writes (CGI status and headers, then
 * a JSON body or SSE events) pass through a filter on the request's sink
 * that turns them into the client's protocol: each SSE event translated and
 * flushed as it arrives, a JSON answer translated once complete, an error in
 * the protocol's error shape.
 */
#ifndef QR_EDGE_H
#define QR_EDGE_H

#include <stddef.h>

#include "xlate.h"

struct req;

/*
 * Answer r (r->json is the validated client body) in protocol k.  A body
 * the translator refuses is a 400 in the protocol's shape.  r->json is
 * left as it was.  Always answers; returns 0.
 */
int	edge_serve(struct req *r, enum xlate_kind k);

/*
 * The filter alone, for tests: bytes as the relay writes them through a
 * struct sink go in, the protocol's bytes come out of down.  edge_filter_new
 * takes a borrowed ctx (its strings are copied); feed with edge_filter_write
 * (0, or -1 when down failed); edge_filter_end finishes the answer, frees,
 * and returns the answer's "output" array when it succeeded and the
 * protocol has one (a new reference; NULL otherwise).
 */
struct edge_filter;
struct sink;
struct edge_filter *edge_filter_new(const struct xlate_proto *,
	    const struct xlate_ctx *, const struct sink *down);
int	edge_filter_write(void *f, const void *, size_t);
int	edge_filter_flush(void *f);
struct json_object *edge_filter_end(struct edge_filter *);

#endif
