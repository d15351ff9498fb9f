"""test_head.py: HEAD on every GET route answers the GET's headers (status,
Content-Type, Content-Length) with no body, through lighttpd; HEAD on a
route without GET stays 405 with Allow.
"""
import socket

from qrtest import Gateway, main_guard


def raw_head(port, path, key):
    """HEAD on a raw socket: what the server really sends after headers."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall((f"HEAD {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
               f"{key}\r\nConnection: close\r\n\r\n").encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode(), body


def test(t):
    gw = Gateway()
    key = gw.add_key("c")
    admin = gw.add_key("a", admin=True)
    for path, k in (("/health", None), ("/v1/models", key),
                    ("/health/deep", admin), ("/admin/api/accounts", admin)):
        g = gw.req("GET", path, key=k)
        h = gw.req("HEAD", path, key=k)
        t.ok(h.status == g.status == 200, f"HEAD {path}: {h.status} like "
             f"GET's {g.status}")
        t.ok(h.headers.get("content-type") == g.headers.get("content-type")
             and h.headers.get("content-length") ==
             g.headers.get("content-length"), f"HEAD {path}: the GET's "
             "Content-Type and Content-Length", (h.headers, g.headers))
        t.eq(b"", h.body, f"HEAD {path}: no body")
    head, body = raw_head(gw.port, "/v1/models", key)
    t.ok(head.startswith("HTTP/1.1 200") and body == b"",
         "on the wire: 200 and not one body byte", (head, body))
    r = gw.req("HEAD", "/v1/chat/completions", key=key)
    t.ok(r.status == 405 and "POST" in r.headers.get("allow", ""),
         "HEAD on a POST-only route: 405 with Allow", r.headers)
    r = gw.req("GET", "/v1/chat/completions", key=key)
    t.ok(r.status == 405 and "HEAD" not in r.headers.get("allow", ""),
         "and its Allow does not offer HEAD", r.headers)
    gw.stop()


main_guard(test)
