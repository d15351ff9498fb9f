/*
 * upcheck.c: validating and clamping what an upstream sends, at the
 * boundary (see upcheck.h).  A hostile or broken provider answered
 * "usage":{"prompt_tokens":-9223372036854775808,"completion_tokens":1e308}
 * and drove an account's counters negative; a 200 with an HTML page was
 * passed on as the answer.  Nothing here trusts a byte.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "upcheck.h"

int64_t
upcheck_tokens(json_object *v, int *bad)
{
	double	d;
	int64_t	n;

	if (v == NULL)
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		/* json-c clamps out-of-range integers to INT64_MIN/MAX. */
		n = json_object_get_int64(v);
		if (n >= 0 && n <= UPCHECK_TOKENS_MAX)
			return n;
	} else if (json_object_is_type(v, json_type_double)) {
		d = json_object_get_double(v);
		if (isfinite(d) && d >= 0 && d <= (double)UPCHECK_TOKENS_MAX &&
		    floor(d) == d)
			return (int64_t)d;
	}
	if (bad != NULL)
		*bad = 1;
	return 0;
}

int
upcheck_usage(json_object *o, int64_t *prompt, int64_t *completion)
{
	json_object	*u, *v;
	int		 bad = 0;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "usage", &u) || u == NULL)
		return 0;
	if (!json_object_is_type(u, json_type_object))
		return 1;
	if (json_object_object_get_ex(u, "prompt_tokens", &v))
		*prompt = upcheck_tokens(v, &bad);
	if (json_object_object_get_ex(u, "completion_tokens", &v))
		*completion = upcheck_tokens(v, &bad);
	return bad;
}

int64_t
upcheck_retry_after(int64_t ms)
{
	if (ms < 0)
		return -1;
	return ms > UPCHECK_RETRY_MAX_MS ? UPCHECK_RETRY_MAX_MS : ms;
}

static int
only_space(const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return 0;
	return 1;
}

static int
is_array_member(json_object *o, const char *k)
{
	json_object	*v;

	return json_object_object_get_ex(o, k, &v) &&
	    json_object_is_type(v, json_type_array);
}

int
upcheck_body(enum upcheck_kind kind, const char *body, size_t len,
    char *why, size_t whylen)
{
	json_tokener	*tok;
	json_object	*o, *v;
	const char	*err = NULL;

	if (body == NULL || len == 0) {
		snprintf(why, whylen, "an empty body");
		return -1;
	}
	if (len > INT32_MAX) {
		snprintf(why, whylen, "a body too large to parse");
		return -1;
	}
	if ((tok = json_tokener_new_ex(64)) == NULL) {
		snprintf(why, whylen, "no memory to parse the body");
		return -1;
	}
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success)
		err = "a body that is not JSON";
	else if (!only_space(body + json_tokener_get_parse_end(tok),
	    len - json_tokener_get_parse_end(tok)))
		err = "JSON followed by other bytes";
	json_tokener_free(tok);
	if (err == NULL && !json_object_is_type(o, json_type_object))
		err = "JSON that is not an object";
	else if (err == NULL && kind == UPCHECK_CHAT) {
		if (!is_array_member(o, "choices"))
			err = "a chat answer without a \"choices\" array";
		else if (json_object_object_get_ex(o, "id", &v) && v != NULL &&
		    !json_object_is_type(v, json_type_string) &&
		    !json_object_is_type(v, json_type_int))
			err = "a chat answer whose \"id\" is not a string";
		else if (json_object_object_get_ex(o, "usage", &v) &&
		    v != NULL && !json_object_is_type(v, json_type_object))
			err = "a chat answer whose \"usage\" is not an object";
	} else if (err == NULL && kind == UPCHECK_EMBED &&
	    !is_array_member(o, "data"))
		err = "an embeddings answer without a \"data\" array";
	json_object_put(o);
	if (err != NULL) {
		snprintf(why, whylen, "%s", err);
		return -1;
	}
	return 0;
}

const char *
upcheck_content_type(const char *ct)
{
	const char	*p;

	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' '))
		return NULL;
	for (p = ct; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return NULL;
	return ct;
}

int
upcheck_sse_start(const char *p, size_t n, char *why, size_t whylen)
{
	static const char	*const fields[] = { "data", "event", "id",
	    "retry" };
	size_t			 i, k, len;

	if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
		p += 3;
		n -= 3;
	}
	if (n == 0 || p[0] == ':' || p[0] == '\n' || p[0] == '\r')
		return 0;
	/* A field name, as far as these bytes go, then ':' or the end. */
	for (k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
		len = strlen(fields[k]);
		for (i = 0; i < n && i < len && p[i] == fields[k][i]; i++)
			;
		if (i == n || (i == len && (p[i] == ':' || p[i] == '\n' ||
		    p[i] == '\r')))
			return 0;
	}
	snprintf(why, whylen, "a body that is not an event stream (it "
	    "starts with %s)", p[0] == '{' || p[0] == '[' ? "JSON" :
	    p[0] == '<' ? "markup" : "other bytes");
	return -1;
}
