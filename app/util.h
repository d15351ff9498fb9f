/*
 * util.h: small bounded parsers and checks used at the boundaries.
 */
#ifndef QR_UTIL_H
#define QR_UTIL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse a whole decimal integer within [min, max], strtonum(3) style.
 * On error returns 0 and sets *errstr to "invalid", "too small" or
 * "too large"; on success *errstr is NULL.
 */
long long	parse_int(const char *, long long, long long, const char **);

/* Non-empty, not "." or "..", at most max bytes of [A-Za-z0-9._-]. */
int		valid_ident(const char *, size_t max);

/* Wall clock in milliseconds since the epoch; monotonic clock in ms. */
int64_t		now_ms(void);
int64_t		mono_ms(void);

/* ms since the epoch as 2026-01-02T03:04:05Z, or "never" for 0. */
void		fmt_utc(int64_t ms, char *buf, size_t sz);

/* mkdir -p with the given mode for every directory it creates. */
int		mkdir_p(const char *, unsigned int mode);

#endif
