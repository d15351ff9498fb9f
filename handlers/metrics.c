/*
 * metrics.c: GET /metrics, the Prometheus text exposition (format 0.0.4).
 * Admin key, or open when metrics_public is set (route.c decides).
 */
#include "config.h"

#include <stdlib.h>

#include "handlers.h"
#include "metrics.h"
#include "req.h"

int
handle_metrics(struct req *r)
{
	char	*text;
	size_t	 len;
	int	 rc;

	if ((rc = metrics_render(r->srv, &text, &len)) != 0) {
		resp_error(r, 503, "server_error", "store_unavailable",
		    "The metrics cannot be read from the state store; see the "
		    "server log.");
		return 0;
	}
	resp_body(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    "Cache-Control: no-store\r\n", text, len, 0);
	free(text);
	return 0;
}
