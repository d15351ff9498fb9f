/*
 * hello_fcgi.c: the floor for GET /health.
 *
 * A bare libfcgi responder with nothing in it: accept a request on the
 * listening socket the web server hands over on fd 0, answer a fixed JSON
 * body, repeat.  tests/bench/run.sh serves it behind the same lighttpd
 * config as qwenrelay, so the gap between the two is what qwenrelay's own
 * work (routing, config, store, logging) costs per request.
 *
 * Content-Length is sent because qwenrelay sends it: without it lighttpd
 * answers with chunked encoding, which costs more than this program does.
 */
#include "config.h"

#include <stdlib.h>

#include <fcgiapp.h>

static const char reply[] =
    "Status: 200\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 15\r\n"
    "\r\n"
    "{\"status\":\"ok\"}";

int
main(void)
{
	FCGX_Request	r;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&r, 0, 0) != 0)
		return EXIT_FAILURE;
	while (FCGX_Accept_r(&r) >= 0) {
		FCGX_PutStr(reply, (int)sizeof(reply) - 1, r.out);
		FCGX_Finish_r(&r);
	}
	return EXIT_SUCCESS;
}
