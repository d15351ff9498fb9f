/*
 * fuzz_counters.c: the counter records of the stats env ("1 a b c ..."),
 * as read back from disk: parse, format, parse again must agree.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t	f[8], g[8];
	char	buf[256];
	int	n;

	if (counters_parse(data, size, f, 8) != 0)
		return 0;
	if ((n = counters_format(buf, sizeof(buf), f, 8)) <= 0)
		abort();	/* any parsed record can be written back */
	if (counters_parse(buf, (size_t)n, g, 8) != 0 ||
	    memcmp(f, g, sizeof(f)) != 0)
		abort();	/* and reads back the same */
	return 0;
}
