/*
 * resp.c: every response opens here (kcgi-framework's http_open): status,
 * content type, nosniff, frame DENY, CORS.  JSON is built with json-c only.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "req.h"
#include "store.h"
#include "xlate.h"
#include "xmalloc.h"

const char *
resp_status_text(int s)
{
	switch (s) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

/* The Origin, if the config allows it ("*" allows any). */
static const char *
cors_origin(const struct req *r)
{
	char *const	*l = r->srv->cfg->cors_allowed_origins;
	size_t		 i;

	if (r->origin == NULL || l == NULL)
		return NULL;
	for (i = 0; l[i] != NULL; i++) {
		if (strcmp(l[i], "*") == 0)
			return "*";
		if (strcmp(l[i], r->origin) == 0)
			return r->origin;
	}
	return NULL;
}

int
sink_send(const struct sink *s, int *broken, const void *p, size_t n)
{
	if (*broken)
		return -1;
	if (n > 0 && s->write(s->ctx, p, n) != 0) {
		*broken = 1;
		return -1;
	}
	return 0;
}

static int
sink_write(struct req *r, const void *p, size_t n)
{
	return sink_send(&r->sink, &r->broken, p, n);
}

int
resp_open(struct req *r, int status, const char *ctype, const char *extra)
{
	char		 head[1024];
	const char	*origin = cors_origin(r);
	int		 n;

	if (r->opened)
		return -1;
	n = snprintf(head, sizeof(head),
	    "Status: %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "X-Frame-Options: DENY\r\n"
	    "%s%s%s%s",
	    status, resp_status_text(status),
	    ctype != NULL ? ctype : "application/json",
	    origin != NULL ? "Access-Control-Allow-Origin: " : "",
	    origin != NULL ? origin : "",
	    origin != NULL ? "\r\nVary: Origin\r\n" : "",
	    extra != NULL ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(head) - 2)
		return -1;
	head[n++] = '\r';
	head[n++] = '\n';
	r->opened = 1;
	r->status = status;
	return sink_write(r, head, (size_t)n);
}

int
resp_write(struct req *r, const void *p, size_t n)
{
	/* HEAD: the GET's headers (Content-Length included), no body. */
	if (r->method != M_HEAD && sink_write(r, p, n) != 0)
		return -1;
	r->sent += n;
	return 0;
}

int
resp_puts(struct req *r, const char *s)
{
	return resp_write(r, s, strlen(s));
}

int
resp_flush(struct req *r)
{
	if (r->broken)
		return -1;
	if (r->sink.flush != NULL && r->sink.flush(r->sink.ctx) != 0) {
		r->broken = 1;
		return -1;
	}
	return 0;
}

int
resp_body(struct req *r, int status, const char *ctype, const char *extra,
    const char *body, size_t len, int newline)
{
	char	hdr[640];
	int	n;

	n = snprintf(hdr, sizeof(hdr), "%sContent-Length: %lu\r\n",
	    extra != NULL ? extra : "", (unsigned long)len + (newline != 0));
	if (n < 0 || (size_t)n >= sizeof(hdr) ||
	    resp_open(r, status, ctype, hdr) != 0)
		return -1;
	if (resp_write(r, body, len) != 0 ||
	    (newline && resp_write(r, "\n", 1) != 0))
		return -1;
	return 0;
}

int
resp_json_h(struct req *r, int status, json_object *obj, const char *extra)
{
	const char	*s;
	size_t		 n;

	s = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	return resp_body(r, status, NULL, extra, s, n, 1);
}

int
resp_json(struct req *r, int status, json_object *obj)
{
	return resp_json_h(r, status, obj, NULL);
}

static int
verror(struct req *r, int status, const char *extra, const char *type,
    const char *code, const char *fmt, va_list ap)
{
	json_object	*root, *e;
	char		 msg[1024];
	int		 rc;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (r->err_shape == RESP_SHAPE_ANTHROPIC) {
		root = xmsg_error_body(status, msg);
		goto send;
	}
	e = json_object_new_object();
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(e, "type", json_object_new_string(type));
	json_object_object_add(e, "param", NULL);
	json_object_object_add(e, "code",
	    code != NULL ? json_object_new_string(code) : NULL);
	root = json_object_new_object();
	json_object_object_add(root, "error", e);
send:
	if (r->opened) {
		/* Too late for a status: the best we can say is a last event. */
		rc = resp_puts(r, "data: ");
		if (rc == 0)
			rc = resp_puts(r, json_object_to_json_string_ext(root,
			    JSON_C_TO_STRING_PLAIN));
		if (rc == 0)
			rc = resp_puts(r, "\n\n");
	} else
		rc = resp_json_h(r, status, root, extra);
	json_object_put(root);
	return rc;
}

int
resp_error(struct req *r, int status, const char *type, const char *code,
    const char *fmt, ...)
{
	va_list	ap;
	int	rc;

	va_start(ap, fmt);
	rc = verror(r, status, NULL, type, code, fmt, ap);
	va_end(ap);
	return rc;
}

int
resp_error_h(struct req *r, int status, const char *extra, const char *type,
    const char *code, const char *fmt, ...)
{
	va_list	ap;
	int	rc;

	va_start(ap, fmt);
	rc = verror(r, status, extra, type, code, fmt, ap);
	va_end(ap);
	return rc;
}

void
req_free(struct req *r)
{
	if (r == NULL)
		return;
	if (r->body != NULL) {
		/* Bodies may carry API keys (admin account add): wipe. */
		xwipe(r->body, r->body_len);
		free(r->body);
	}
	json_object_put(r->json);
	client_key_free(r->client);
	r->body = NULL;
	r->json = NULL;
	r->client = NULL;
}
