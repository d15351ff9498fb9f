/*
 * fuzz_oauth.c: the OAuth answer parsers (device code, device-code token
 * poll, refresh) on any status and body: what a hostile or broken
 * token endpoint can send.
 *
 * Input: byte 0 picks the parser, bytes 1-2 the HTTP status, the rest is
 * the body.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oauth.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oauth_device	 d;
	struct oauth_tokens	 t;
	char			*body, err[256];
	long			 status;
	enum oauth_result	 res;

	if (size < 3)
		return 0;
	status = 100 + (((long)data[1] << 8 | data[2]) % 500);
	body = malloc(size - 3 + 1);
	if (body == NULL)
		return 0;
	memcpy(body, data + 3, size - 3);
	body[size - 3] = '\0';
	memset(&d, 0, sizeof(d));
	memset(&t, 0, sizeof(t));
	err[0] = '\0';
	switch (data[0] % 3) {
	case 0:
		res = oauth_parse_device(status, body, &d, err, sizeof(err));
		if (res == OAUTH_OK && (d.device_code == NULL ||
		    d.user_code == NULL))
			abort();
		oauth_device_free(&d);
		break;
	default:
		res = oauth_parse_token(status, body, data[0] % 3 == 2, &t,
		    err, sizeof(err));
		if (res == OAUTH_OK && (t.access_token == NULL ||
		    t.expires_in <= 0))
			abort();
		oauth_tokens_free(&t);
		break;
	}
	if (res != OAUTH_OK && res != OAUTH_PENDING && err[0] == '\0')
		abort();	/* every failure has a sentence */
	free(body);
	return 0;
}
