/*
 * admin_page.c: GET /admin, /admin/app.js, /admin/app.css: the operator's
 * page (handlers/admin/, compiled in).  No key is needed for the page:
 * it asks for the admin key and sends it with every API call.
 *
 * The Content-Security-Policy allows only this origin's script, style and
 * fetches, no inline script, no framing; the page works without any
 * outside host.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "admin_assets.h"
#include "handlers.h"
#include "req.h"

#define ADMIN_HEADERS \
	"Content-Security-Policy: default-src 'self'; script-src 'self'; " \
	"style-src 'self'; img-src 'self' data:; connect-src 'self'; " \
	"object-src 'none'; base-uri 'none'; form-action 'self'; " \
	"frame-ancestors 'none'\r\n" \
	"Referrer-Policy: no-referrer\r\n" \
	"Cache-Control: no-cache\r\n"

static int
asset(struct req *r, const char *ctype, const char *body, size_t len)
{
	resp_body(r, 200, ctype, ADMIN_HEADERS, body, len, 0);
	return 0;
}

/*
 * The page links its script and styles relative to ".../admin"
 * ("admin/app.js"); opened as ".../admin/" they would resolve under
 * ".../admin/admin/" and the page came up bare.  Answer such a URL (the
 * client's REQUEST_URI ending in "/admin" and k slashes) with a 301 to
 * "../" x k + "admin": a relative reference (RFC 9110 10.2.2, RFC 3986
 * 5.2) resolves to ".../admin" on the client's own host and mount prefix,
 * whatever the web server rewrote, and never to another host.
 * Returns 1 when it answered, 0 when the page should be served.
 */
static int
slash_redirect(struct req *r)
{
	static const char moved[] =
	    "The admin page is at .../admin (no trailing slash).";
	const char	*u = r->request_uri;
	char		 hdr[128];
	size_t		 n, k, off;

	if (u == NULL)
		return 0;
	n = strcspn(u, "?#");
	for (k = 0; n > 0 && u[n - 1] == '/'; k++)
		n--;
	if (k == 0 || k > 8 || n < 6 || strncmp(u + n - 6, "/admin", 6) != 0)
		return 0;
	off = (size_t)snprintf(hdr, sizeof(hdr), "Location: ");
	while (k-- > 0) {
		memcpy(hdr + off, "../", 3);
		off += 3;
	}
	snprintf(hdr + off, sizeof(hdr) - off, "admin\r\n");
	resp_body(r, 301, "text/plain; charset=utf-8", hdr, moved,
	    sizeof(moved) - 1, 1);
	return 1;
}

int
handle_admin_page(struct req *r)
{
	if (slash_redirect(r))
		return 0;
	return asset(r, "text/html; charset=utf-8", admin_index_html,
	    admin_index_html_len);
}

int
handle_admin_js(struct req *r)
{
	return asset(r, "text/javascript; charset=utf-8", admin_app_js,
	    admin_app_js_len);
}

int
handle_admin_css(struct req *r)
{
	return asset(r, "text/css; charset=utf-8", admin_app_css,
	    admin_app_css_len);
}
