#!/usr/bin/env python3
"""test_admin_slash.py: /admin/ (trailing slash) still gets a working page.

The page links its script and styles relative to /admin ("admin/app.js"),
so opened at /admin/ they resolved to /admin/admin/app.js and the page
came up bare.  /admin/ (and /prefix/admin/) is now a redirect to /admin,
by a relative Location, so it lands on the client's own host and prefix.
"""
import re
from urllib.parse import urljoin

from qrtest import Gateway, main_guard


def assets_load(t, gw, page_url, what):
    r = gw.req("GET", page_url)
    t.eq(200, r.status, f"{what}: {page_url} is the page")
    refs = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', r.text)
    t.ok(len(refs) == 2, f"{what}: the page links a script and styles",
         refs)
    for ref in refs:
        a = gw.req("GET", urljoin(page_url, ref))
        ctype = a.headers.get("content-type", "")
        t.ok(a.status == 200 and ("javascript" in ctype or "css" in ctype),
             f"{what}: {ref} from {page_url} loads",
             f"{urljoin(page_url, ref)} -> {a.status}")


def follow(t, gw, path, want, what):
    r = gw.req("GET", path)
    loc = r.headers.get("location", "")
    t.ok(r.status in (301, 308) and urljoin(path, loc) == want,
         f"{what}: GET {path} redirects to {want}",
         f"{r.status} Location: {loc!r}")
    return urljoin(path, loc)


def test(t):
    gw = Gateway()
    assets_load(t, gw, "/admin", "root")
    follow(t, gw, "/admin/", "/admin", "root")
    follow(t, gw, "/admin/?x=1", "/admin", "root, with a query")
    assets_load(t, gw, follow(t, gw, "/admin/", "/admin", "root again"),
                "root after the redirect")
    # Never off the client's host: "//evil.example/admin/" stays here.
    r = gw.req("GET", "//evil.example/admin/")
    loc = r.headers.get("location", "")
    t.ok(not loc.startswith("//") and "evil.example" not in
         urljoin("http://127.0.0.1" + "//evil.example/admin/", loc)
         .split("/")[2], "no open redirect through //host/admin/", loc)
    t.eq(200, gw.req("GET", "/admin/app.js").status,
         "/admin/app.js is not redirected")

    pgw = Gateway(prefix="/relay/")
    assets_load(t, pgw, follow(t, pgw, "/relay/admin/", "/relay/admin",
                               "prefix"), "prefix after the redirect")


main_guard(test)
