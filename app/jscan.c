/*
 * jscan.c: integers out of a JSON object's top-level members (jscan.h).
 * A small scanner: strings (with escapes), nested objects and arrays are
 * skipped, nothing is allocated.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"

struct scan {
	const char	*p;
	const char	*e;
};

static void
ws(struct scan *s)
{
	while (s->p < s->e && (*s->p == ' ' || *s->p == '\t' ||
	    *s->p == '\r' || *s->p == '\n'))
		s->p++;
}

/* Past a string at s->p ('"'); *b, *n: its raw bytes.  -1 if unclosed. */
static int
str(struct scan *s, const char **b, size_t *n)
{
	const char	*q;

	if (s->p >= s->e || *s->p != '"')
		return -1;
	for (q = s->p + 1; q < s->e && *q != '"'; q++) {
		if ((unsigned char)*q < 0x20)
			return -1;
		if (*q == '\\' && ++q >= s->e)
			return -1;
	}
	if (q >= s->e)
		return -1;
	*b = s->p + 1;
	*n = (size_t)(q - *b);
	s->p = q + 1;
	return 0;
}

/* Past one value (any kind), nesting bounded.  -1 if malformed. */
static int
skip(struct scan *s, int depth)
{
	const char	*b;
	size_t		 n;
	char		 close;

	ws(s);
	if (s->p >= s->e || depth > 64)
		return -1;
	if (*s->p == '"')
		return str(s, &b, &n);
	if (*s->p == '{' || *s->p == '[') {
		close = *s->p == '{' ? '}' : ']';
		s->p++;
		ws(s);
		if (s->p < s->e && *s->p == close) {
			s->p++;
			return 0;
		}
		for (;;) {
			if (close == '}') {
				ws(s);
				if (str(s, &b, &n) != 0)
					return -1;
				ws(s);
				if (s->p >= s->e || *s->p++ != ':')
					return -1;
			}
			if (skip(s, depth + 1) != 0)
				return -1;
			ws(s);
			if (s->p >= s->e)
				return -1;
			if (*s->p == close) {
				s->p++;
				return 0;
			}
			if (*s->p++ != ',')
				return -1;
		}
	}
	/* number, true, false, null: a run of their characters */
	for (b = s->p; s->p < s->e && strchr("+-.0123456789eEtrufalsn",
	    *s->p) != NULL && *s->p != '\0'; s->p++)
		;
	return s->p > b ? 0 : -1;
}

/* The number at b..b+n as json_object_get_int64 would; -1 if none. */
static int
number(const char *b, size_t n, int64_t *v)
{
	char	 buf[64], *end;
	double	 d;

	if (n == 0 || n >= sizeof(buf) || (*b != '-' && (*b < '0' || *b > '9')))
		return -1;
	memcpy(buf, b, n);
	buf[n] = '\0';
	if (strcspn(buf, ".eE") == n) {
		*v = strtoll(buf, &end, 10);
		return *end == '\0' ? 0 : -1;
	}
	d = strtod(buf, &end);
	if (*end != '\0' || isnan(d))
		return -1;
	*v = d >= 9223372036854775807.0 ? INT64_MAX :
	    d <= -9223372036854775808.0 ? INT64_MIN : (int64_t)d;
	return 0;
}

/*
 * A member's value as json_object_get_int64 gives it: a number (cut
 * towards zero), a string's leading integer, true 1, anything else 0.
 */
static int64_t
value(const char *b, size_t n)
{
	char	 buf[64];
	int64_t	 v;

	if (n >= 2 && *b == '"') {
		if (n - 2 >= sizeof(buf))
			return 0;
		memcpy(buf, b + 1, n - 2);
		buf[n - 2] = '\0';
		return strtoll(buf, NULL, 10);
	}
	if (n == 4 && memcmp(b, "true", 4) == 0)
		return 1;
	return number(b, n, &v) == 0 ? v : 0;
}

int
jscan_ints(const char *p, size_t len, const char *const *names,
    int64_t *vals, size_t n)
{
	struct scan	 s = { p, p + len };
	const char	*k, *vb;
	size_t		 kn, i;
	int64_t		 got[31];
	int		 found = 0;

	if (n > 31)
		return -1;
	ws(&s);
	if (s.p >= s.e || *s.p++ != '{')
		return -1;
	ws(&s);
	if (s.p < s.e && *s.p == '}')
		return 0;
	for (;;) {
		ws(&s);
		if (str(&s, &k, &kn) != 0)
			return -1;
		ws(&s);
		if (s.p >= s.e || *s.p++ != ':')
			return -1;
		ws(&s);
		vb = s.p;
		if (skip(&s, 0) != 0)
			return -1;
		for (i = 0; i < n; i++)
			if (strlen(names[i]) == kn &&
			    memcmp(names[i], k, kn) == 0) {
				got[i] = value(vb, (size_t)(s.p - vb));
				found |= 1 << i;
			}
		ws(&s);
		if (s.p >= s.e)
			return -1;
		if (*s.p == '}')
			break;
		if (*s.p++ != ',')
			return -1;
	}
	for (i = 0; i < n; i++)
		if (found & (1 << i))
			vals[i] = got[i];
	return found;
}
