/*
 * edge.c: other protocols on the chat-completions relay (see edge.h).
 *
 * The filter reads what resp_open/resp_write put on the sink: a CGI header
 * block ("Status: 200 OK\r\n...\r\n\r\n"), then either SSE (a 2xx with
 * Content-Type text/event-stream: split into events, each translated and
 * written at once, so a streamed answer is never held back) or one body
 * (held until the relay is done, then translated whole: it is one JSON
 * object and needs all of it).  The relay's own header lines (CORS,
 * nosniff, Retry-After) pass on; Content-Type and Content-Length are made
 * anew for the translated body.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "crypto.h"
#include "edge.h"
#include "log.h"
#include "relay.h"
#include "req.h"
#include "resphist.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

#define HEAD_MAX	8192

enum edge_mode {
	E_HEAD,		/* reading the relay's header block */
	E_SSE,		/* translating events */
	E_BODY,		/* holding a body */
	E_BAD		/* the relay wrote something unreadable */
};

struct edge_filter {
	const struct xlate_proto *p;
	struct xlate_ctx	 x;
	struct sink		 down;
	void			*st;		/* stream state in E_SSE */
	enum edge_mode		 mode;
	int			 status;
	int			 sse;		/* Content-Type was SSE */
	struct xbuf		 head;		/* header block so far */
	struct xbuf		 fwd;		/* header lines passed on */
	struct xbuf		 body;
	struct xbuf		 line;		/* partial SSE line */
	struct xbuf		 data;		/* data: lines of this event */
	struct xbuf		 out;		/* translated, not yet written */
	int			 gone;		/* down failed */
	json_object		*output;	/* a success's "output", if any */
	int			*status_out;	/* the request log's status */
};

struct edge_filter *
edge_filter_new(const struct xlate_proto *p, const struct xlate_ctx *x,
    const struct sink *down)
{
	struct edge_filter	*f = xcalloc(1, sizeof(*f));

	f->p = p;
	f->x.id = xstrdup(x->id);
	f->x.model = xstrdup(x->model);
	f->x.created = x->created;
	f->x.req = json_object_get(x->req);
	f->x.input_estimate = x->input_estimate;
	f->down = *down;
	return f;
}

static int
down_write(struct edge_filter *f, const void *p, size_t n)
{
	return sink_send(&f->down, &f->gone, p, n);
}

static int
drain(struct edge_filter *f)
{
	int	rc = 0;

	if (f->out.len > 0)
		rc = down_write(f, f->out.p, f->out.len);
	xbuf_reset(&f->out);
	return rc;
}

/* Our header block: status, type, the relay's other lines, extra. */
static int
write_head(struct edge_filter *f, int status, const char *ctype,
    const char *extra)
{
	struct xbuf	h = { NULL, 0, 0 };
	char		line[160];
	int		rc;

	snprintf(line, sizeof(line), "Status: %d %s\r\nContent-Type: %s\r\n",
	    status, resp_status_text(status), ctype);
	if (f->status_out != NULL)
		*f->status_out = status;
	xbuf_puts(&h, line);
	if (f->fwd.len > 0)
		xbuf_add(&h, f->fwd.p, f->fwd.len);
	if (extra != NULL)
		xbuf_puts(&h, extra);
	xbuf_puts(&h, "\r\n");
	rc = down_write(f, h.p, h.len);
	xbuf_free(&h);
	return rc;
}

static int
hdr_is(const char *l, size_t n, const char *name)
{
	size_t	k = strlen(name);

	return n > k && strncasecmp(l, name, k) == 0 && l[k] == ':';
}

/* Parse the relay's header block; choose SSE or body. */
static void
parse_head(struct edge_filter *f)
{
	const char	*l = f->head.p, *e;
	size_t		 n;

	f->status = 502;
	while ((e = strstr(l, "\r\n")) != NULL && e != l) {
		n = (size_t)(e - l);
		if (hdr_is(l, n, "Status"))
			f->status = atoi(l + 7);
		else if (hdr_is(l, n, "Content-Type")) {
			if (memmem(l, n, "text/event-stream", 17) != NULL)
				f->sse = 1;
		} else if (!hdr_is(l, n, "Content-Length")) {
			xbuf_add(&f->fwd, l, n);
			xbuf_puts(&f->fwd, "\r\n");
		}
		l = e + 2;
	}
	if (f->sse && f->status >= 200 && f->status < 300) {
		f->mode = E_SSE;
		f->st = f->p->stream_new(&f->x);
		write_head(f, f->status, "text/event-stream", NULL);
		f->p->stream_open(f->st, &f->out);
		drain(f);
	} else
		f->mode = E_BODY;
}

/* The message and type of an OpenAI error object (or of any text). */
static void
error_fields(json_object *o, const char **msg, const char **type)
{
	json_object	*e = NULL;

	*msg = NULL;
	*type = NULL;
	if (o != NULL && json_object_object_get_ex(o, "error", &e)) {
		if (json_object_is_type(e, json_type_object)) {
			*msg = xl_str(e, "message");
			*type = xl_str(e, "code") != NULL ? xl_str(e, "code") :
			    xl_str(e, "type");
		} else if (json_object_is_type(e, json_type_string))
			*msg = json_object_get_string(e);
	}
	if (*msg == NULL)
		*msg = "The upstream answered with an error.";
}

/* One complete SSE event (its data lines joined). */
static void
sse_event(struct edge_filter *f)
{
	json_object	*o;
	const char	*msg, *type;

	if (f->data.len == 0)
		return;
	if (strcmp(f->data.p, "[DONE]") == 0) {
		f->p->stream_end(f->st, &f->out);
		xbuf_reset(&f->data);
		return;
	}
	o = json_tokener_parse(f->data.p);
	if (o != NULL && json_object_object_get_ex(o, "error", NULL) &&
	    !json_object_object_get_ex(o, "choices", NULL)) {
		error_fields(o, &msg, &type);
		f->p->stream_error(f->st, msg, type, &f->out);
	} else if (o != NULL && json_object_is_type(o, json_type_object))
		f->p->stream_chunk(f->st, o, &f->out);
	else
		log_debug("%s: an upstream event is not JSON; dropped",
		    f->p->name);
	json_object_put(o);
	xbuf_reset(&f->data);
}

static void
sse_line(struct edge_filter *f, const char *l, size_t n)
{
	if (n > 0 && l[n - 1] == '\r')
		n--;
	if (n == 0) {
		sse_event(f);
		return;
	}
	if (l[0] == ':') {
		/* The relay's keep-alive while the upstream is silent. */
		if (n >= 6 && memcmp(l, ": ping", 6) == 0)
			f->p->stream_ping(f->st, &f->out);
		return;
	}
	if (n >= 5 && memcmp(l, "data:", 5) == 0) {
		l += 5;
		n -= 5;
		if (n > 0 && *l == ' ') {
			l++;
			n--;
		}
		if (f->data.len > 0)
			xbuf_puts(&f->data, "\n");
		xbuf_add(&f->data, l, n);
	}
	/* event:, id:, retry: carry nothing chat completions use. */
}

static void
sse_bytes(struct edge_filter *f, const char *p, size_t n)
{
	const char	*nl;

	while (n > 0 && (nl = memchr(p, '\n', n)) != NULL) {
		size_t k = (size_t)(nl - p);
		if (f->line.len > 0) {
			xbuf_add(&f->line, p, k);
			sse_line(f, f->line.p, f->line.len);
			xbuf_reset(&f->line);
		} else
			sse_line(f, p, k);
		p += k + 1;
		n -= k + 1;
	}
	if (n > 0)
		xbuf_add(&f->line, p, n);
}

int
edge_filter_write(void *arg, const void *buf, size_t n)
{
	struct edge_filter	*f = arg;
	const char		*p = buf, *e;
	size_t			 k;

	if (f->gone)
		return -1;
	if (f->mode == E_HEAD) {
		xbuf_add(&f->head, p, n);
		if ((e = strstr(f->head.p, "\r\n\r\n")) == NULL) {
			if (f->head.len > HEAD_MAX)
				f->mode = E_BAD;
			return 0;
		}
		k = (size_t)(e + 4 - f->head.p);
		/* What followed the blank line is body. */
		p = f->head.p + k;
		n = f->head.len - k;
		f->head.p[k - 2] = '\0';
		parse_head(f);
		if (f->mode == E_SSE)
			sse_bytes(f, p, n);
		else
			xbuf_add(&f->body, p, n);
		return drain(f);
	}
	if (f->mode == E_SSE) {
		sse_bytes(f, p, n);
		return drain(f);
	}
	if (f->mode == E_BODY)
		xbuf_add(&f->body, p, n);
	return 0;
}

int
edge_filter_flush(void *arg)
{
	struct edge_filter	*f = arg;

	if (drain(f) != 0)
		return -1;
	if (f->down.flush != NULL && f->down.flush(f->down.ctx) != 0) {
		f->gone = 1;
		return -1;
	}
	return 0;
}

static void
write_json(struct edge_filter *f, int status, json_object *o)
{
	const char	*s;
	size_t		 n;
	char		 cl[64];

	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", n + 1);
	if (write_head(f, status, "application/json", cl) == 0 &&
	    down_write(f, s, n) == 0)
		down_write(f, "\n", 1);
}

/* {"error":{"message","type","code","param"}} for what has no body. */
static json_object *
openai_error(const char *msg, const char *type)
{
	json_object	*o = json_object_new_object(), *e;

	e = json_object_new_object();
	xl_add_str(e, "message", msg);
	xl_add_str(e, "type", "upstream_error");
	xl_add_str(e, "code", type);
	json_object_object_add(e, "param", NULL);
	json_object_object_add(o, "error", e);
	return o;
}

/* A held body: an answer to translate, or an error to reshape. */
static void
finish_body(struct edge_filter *f)
{
	json_object	*o = NULL, *t;
	const char	*msg, *type;
	int		 status = f->status;

	if (f->body.len > 0)
		o = json_tokener_parse(f->body.p);
	if (status >= 200 && status < 300) {
		if (o == NULL) {
			status = 502;
			msg = "The upstream's answer is not JSON.";
			type = "upstream_error";
			goto error;
		}
		t = f->p->answer(&f->x, o);
		f->output = json_object_get(xl_get(t, "output",
		    json_type_array));
		write_json(f, status, t);
		json_object_put(t);
		json_object_put(o);
		return;
	}
	if (f->p->error == NULL && o != NULL &&
	    json_object_object_get_ex(o, "error", NULL)) {
		/* The protocol's errors are OpenAI-shaped: pass on. */
		write_head(f, status, "application/json", NULL);
		down_write(f, f->body.p, f->body.len);
		json_object_put(o);
		return;
	}
	error_fields(o, &msg, &type);
	if (status < 400)
		status = 502;
error:
	t = f->p->error != NULL ? f->p->error(&status, msg, type) :
	    openai_error(msg, type);
	write_json(f, status, t);
	json_object_put(t);
	json_object_put(o);
}

json_object *
edge_filter_end(struct edge_filter *f)
{
	json_object	*output;

	if (f == NULL)
		return NULL;
	switch (f->mode) {
	case E_SSE:
		if (f->line.len > 0) {
			sse_line(f, f->line.p, f->line.len);
			xbuf_reset(&f->line);
		}
		sse_event(f);
		f->p->stream_end(f->st, &f->out);
		/*
		 * Hand the last bytes down without flushing: they leave with
		 * the end of the request, after the caller kept the turn.
		 * Flushed here, a client could read the whole answer and send
		 * previous_response_id before the turn is stored (another
		 * thread or worker serves it at once).
		 */
		drain(f);
		if (f->p->stream_output != NULL)
			f->output = f->p->stream_output(f->st);
		break;
	case E_BODY:
		finish_body(f);
		drain(f);	/* not flushed: see above */
		break;
	case E_HEAD:
	case E_BAD:
		/* A head that never ended (or too long): say so, not nothing. */
		if (f->head.len > 0) {
			log_warn("%s: the relay's answer had no readable head",
			    f->p->name);
			f->status = 502;
			f->mode = E_BODY;
			xbuf_reset(&f->body);
			finish_body(f);
			edge_filter_flush(f);
		}
		break;
	}
	if (f->st != NULL)
		f->p->stream_free(f->st);
	xbuf_free(&f->head);
	xbuf_free(&f->fwd);
	xbuf_free(&f->body);
	xbuf_free(&f->line);
	xbuf_free(&f->data);
	xbuf_free(&f->out);
	free((char *)(uintptr_t)f->x.id);
	free((char *)(uintptr_t)f->x.model);
	json_object_put(f->x.req);
	output = f->output;
	free(f);
	return output;
}

int
edge_serve(struct req *r, enum xlate_kind k)
{
	const struct xlate_proto *p = xlate_proto(k);
	struct edge_filter	*f;
	struct xlate_ctx	 x;
	struct sink		 saved = r->sink;
	json_object		*chat, *orig = r->json, *history = NULL;
	json_object		*output, *store;
	unsigned char		 rnd[12];
	char			 err[512], id[64], *hex;
	const char		*model, *prev;
	int			 shape = r->err_shape, random_ok;

	prev = k == XLATE_RESPONSES ? xl_str(r->json,
	    "previous_response_id") : NULL;
	if (prev != NULL && (history = resphist_load(r->srv, r->client ?
	    r->client->name : NULL, prev, err, sizeof(err))) == NULL) {
		resp_error(r, 400, "invalid_request_error",
		    "previous_response_not_found", "%s", err);
		return 0;
	}
	chat = p->request(r->json, history, err, sizeof(err));
	json_object_put(history);
	if (chat == NULL) {
		resp_error(r, 400, "invalid_request_error", "invalid_request",
		    "%s", err);
		return 0;
	}
	if ((random_ok = crypto_random(rnd, sizeof(rnd)) == 0) == 0)
		memset(rnd, 0, sizeof(rnd));	/* an id, but never kept */
	hex = hex_encode(rnd, sizeof(rnd));
	snprintf(id, sizeof(id), "%s_%s", k == XLATE_MESSAGES ? "msg" : "resp",
	    hex);
	free(hex);
	model = xl_str(r->json, "model");
	x.id = id;
	x.model = model;
	x.created = now_ms() / 1000;
	x.req = r->json;
	/* About four bytes a token; the upstream's count replaces it. */
	x.input_estimate = (int64_t)(r->body_len / 4);
	f = edge_filter_new(p, &x, &saved);
	f->status_out = &r->status;

	/* Inside, the relay speaks chat completions, errors included. */
	r->json = chat;
	r->err_shape = RESP_SHAPE_OPENAI;
	r->sink.write = edge_filter_write;
	r->sink.flush = edge_filter_flush;
	r->sink.ctx = f;
	relay_request(r, RELAY_CHAT, cfg_alias(r->srv->cfg, model));
	output = edge_filter_end(f);
	r->sink = saved;
	r->err_shape = shape;
	r->json = orig;
	json_object_put(chat);
	/* Keep the turn for previous_response_id unless told not to. */
	store = xl_get(r->json, "store", json_type_boolean);
	if (k == XLATE_RESPONSES && output != NULL && random_ok &&
	    (store == NULL || json_object_get_boolean(store))) {
		json_object *turn = xrsp_turn_messages(r->json, output);
		resphist_save(r->srv, r->client ? r->client->name : NULL, id,
		    prev, turn);
		json_object_put(turn);
	}
	json_object_put(output);
	return 0;
}
