/*
 * fuzz_upstream.c: the boundary checks on what an upstream answers
 * (app/upcheck.c, the start of a stream too) and every provider's
 * classification of an answer (provider.h): any status, any body, any
 * Content-Type.
 *
 * Input: bytes 0-1 the status, then a Content-Type up to '\n', then the
 * body.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "provider.h"
#include "upcheck.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*nl;
	char		*ct, *body, why[128];
	size_t		 n, blen;
	int		 i;
	long		 status;
	int64_t		 p = 0, c = 0;
	json_object	*o;

	if (size < 2)
		return 0;
	status = ((long)data[0] << 8 | data[1]) % 1000;
	data += 2;
	size -= 2;
	nl = memchr(data, '\n', size);
	n = nl != NULL ? (size_t)(nl - (const char *)data) : 0;
	ct = malloc(n + 1);
	memcpy(ct, data, n);
	ct[n] = '\0';
	blen = nl != NULL ? size - n - 1 : size;
	body = malloc(blen + 1);
	memcpy(body, nl != NULL ? nl + 1 : (const char *)data, blen);
	body[blen] = '\0';

	for (i = 0; i < PROV__MAX; i++)
		if (provider_get((enum provider_id)i)->classify != NULL &&
		    (unsigned)provider_get((enum provider_id)i)->classify(status,
		    body) >= RC__MAX)
			abort();	/* every answer has a class */
	if (upcheck_body(UPCHECK_CHAT, body, blen, why, sizeof(why)) != 0 &&
	    why[0] == '\0')
		abort();
	(void)upcheck_body(UPCHECK_EMBED, body, blen, why, sizeof(why));
	if (upcheck_sse_start(body, blen, why, sizeof(why)) != 0 &&
	    why[0] == '\0')
		abort();
	if ((o = json_tokener_parse(body)) != NULL) {
		(void)upcheck_usage(o, &p, &c);
		if (p < 0 || p > UPCHECK_TOKENS_MAX || c < 0 ||
		    c > UPCHECK_TOKENS_MAX)
			abort();
		json_object_put(o);
	}
	if (upcheck_content_type(ct) != NULL &&
	    (strchr(ct, '\r') != NULL || strchr(ct, '\n') != NULL))
		abort();
	free(ct);
	free(body);
	return 0;
}
