/*
 * fcgi_envdump.c: a FastCGI responder that answers every request with the
 * parameters the web server sent, one NAME=value a line (text/plain).
 * tests/tools/capture_env.py runs it behind each shipped web-server
 * config to capture the variable sets that tests/test_route.c holds.
 * Never deploy it: it echoes the Authorization header back.
 */
#include <stdlib.h>

#include <fcgiapp.h>

int
main(void)
{
	FCGX_Request	 r;
	char		**e;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&r, 0, 0) != 0)
		return EXIT_FAILURE;
	while (FCGX_Accept_r(&r) >= 0) {
		FCGX_FPrintF(r.out, "Status: 200\r\n"
		    "Content-Type: text/plain\r\n\r\n");
		for (e = r.envp; *e != NULL; e++)
			FCGX_FPrintF(r.out, "%s\n", *e);
		FCGX_Finish_r(&r);
	}
	return EXIT_SUCCESS;
}
