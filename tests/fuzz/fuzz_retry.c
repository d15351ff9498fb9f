/*
 * fuzz_retry.c: Retry-After / retry-after-ms header values (seconds or an
 * HTTP date) as the upstream client reads them, the clamp applied at the
 * boundary, parse_int, and the date printer.
 *
 * Input: up to the first '\n' is Retry-After, the rest retry-after-ms
 * (each cut to the header buffer sizes, as on_header does).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upcheck.h"
#include "upstream.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct upstream_call	 c;
	const char		*nl, *es;
	size_t			 a, b;
	int64_t			 now = INT64_C(1767225600000), ms;
	char			 when[64];
	long long		 v;

	memset(&c, 0, sizeof(c));
	nl = memchr(data, '\n', size);
	a = nl != NULL ? (size_t)(nl - (const char *)data) : size;
	b = nl != NULL ? size - a - 1 : 0;
	if (a >= sizeof(c.retry_after))
		a = sizeof(c.retry_after) - 1;
	memcpy(c.retry_after, data, a);
	if (b >= sizeof(c.retry_after_ms))
		b = sizeof(c.retry_after_ms) - 1;
	if (nl != NULL)
		memcpy(c.retry_after_ms, nl + 1, b);
	ms = upstream_retry_after_ms(&c, now);
	if (ms < -1)
		abort();
	ms = upcheck_retry_after(ms);
	if (ms < -1 || ms > UPCHECK_RETRY_MAX_MS)
		abort();
	v = parse_int(c.retry_after, -1000, 1000, &es);
	if (es == NULL && (v < -1000 || v > 1000))
		abort();
	fmt_utc(now + (ms > 0 ? ms : 0), when, sizeof(when));
	fmt_utc(v * 1000, when, sizeof(when));
	return 0;
}
