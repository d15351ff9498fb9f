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

int
handle_admin_page(struct req *r)
{
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
