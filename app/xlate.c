/*
 * xlate.c: what the protocol translators share: a byte buffer, SSE event
 * framing, small json-c accessors, and the table of protocols.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "xlate.h"
#include "xmalloc.h"

void
xbuf_add(struct xbuf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
xbuf_puts(struct xbuf *b, const char *s)
{
	xbuf_add(b, s, strlen(s));
}

void
xbuf_reset(struct xbuf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

void
xbuf_free(struct xbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void
xbuf_sse(struct xbuf *b, const char *name, json_object *data)
{
	size_t		 n;
	const char	*s;

	if (name != NULL) {
		xbuf_puts(b, "event: ");
		xbuf_puts(b, name);
		xbuf_puts(b, "\n");
	}
	s = json_object_to_json_string_length(data, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	xbuf_puts(b, "data: ");
	xbuf_add(b, s, n);
	xbuf_puts(b, "\n\n");
}

const char *
xl_str(json_object *o, const char *key)
{
	json_object	*v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

json_object *
xl_get(json_object *o, const char *key, json_type t)
{
	json_object	*v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, t))
		return NULL;
	return v;
}

void
xl_add_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v != NULL ?
	    json_object_new_string(v) : NULL);
}

json_object *
xl_chat_msg(const char *role, json_object *content)
{
	json_object	*m = json_object_new_object();

	xl_add_str(m, "role", role);
	json_object_object_add(m, "content", content);
	return m;
}

json_object *
xl_text_part(const char *t)
{
	json_object	*p = json_object_new_object();

	xl_add_str(p, "type", "text");
	xl_add_str(p, "text", t);
	return p;
}

json_object *
xl_image_part(const char *url, const char *detail)
{
	json_object	*p, *u = json_object_new_object();

	xl_add_str(u, "url", url);
	if (detail != NULL)
		xl_add_str(u, "detail", detail);
	p = json_object_new_object();
	xl_add_str(p, "type", "image_url");
	json_object_object_add(p, "image_url", u);
	return p;
}

json_object *
xl_function(json_object *f)
{
	json_object	*o = json_object_new_object();

	xl_add_str(o, "type", "function");
	json_object_object_add(o, "function", f);
	return o;
}

json_object *
xl_tool_call(const char *id, const char *name, const char *args)
{
	json_object	*c, *f = json_object_new_object();

	xl_add_str(f, "name", name);
	xl_add_str(f, "arguments", args);
	c = json_object_new_object();
	xl_add_str(c, "id", id);
	xl_add_str(c, "type", "function");
	json_object_object_add(c, "function", f);
	return c;
}

void
xl_add_stream(json_object *out)
{
	json_object	*v = json_object_new_object();

	json_object_object_add(out, "stream", json_object_new_boolean(1));
	json_object_object_add(v, "include_usage", json_object_new_boolean(1));
	json_object_object_add(out, "stream_options", v);
}

json_object *
xl_first_choice(json_object *chat)
{
	json_object	*choices = xl_get(chat, "choices", json_type_array);

	if (choices == NULL || json_object_array_length(choices) == 0)
		return NULL;
	return json_object_array_get_idx(choices, 0);
}

void
xl_emit(struct xbuf *out, json_object *o)
{
	xbuf_sse(out, xl_str(o, "type"), o);
	json_object_put(o);
}

int
xl_tool_slot(json_object *tc, int *last, char *last_id, size_t idsz, int max)
{
	json_object	*v;
	const char	*id = xl_str(tc, "id");
	int64_t		 slot;

	if ((v = xl_get(tc, "index", json_type_int)) != NULL)
		slot = json_object_get_int64(v);
	else if (*last < 0)
		slot = 0;
	else if (id != NULL && *id != '\0' && strcmp(id, last_id) != 0)
		slot = (int64_t)*last + 1;
	else
		slot = *last;
	if (slot < 0 || slot >= max)
		return -1;
	if (id != NULL && *id != '\0') {
		*last = (int)slot;
		snprintf(last_id, idsz, "%s", id);
	}
	return (int)slot;
}

const struct xlate_proto *
xlate_proto(enum xlate_kind k)
{
	static const struct xlate_proto *const table[XLATE__MAX] = {
		[XLATE_RESPONSES] = &xlate_responses,
		[XLATE_MESSAGES] = &xlate_messages,
	};

	return (unsigned)k < XLATE__MAX ? table[k] : NULL;
}
