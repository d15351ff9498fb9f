#!/usr/bin/env python3
"""slowloris.py: does a probe get through while N connections trickle a
request body (one byte every 2 s), through each shipped web-server config?

    make && python3 tests/bench/slowloris.py        # as root; ~4 minutes

One source address (127.0.0.1), N=1500 (CONNS), no reconnects.  Probes
GET /health (5 s timeout) from another address (127.0.0.2) at a few
moments and counts the trickling connections the server has closed.
Arguments pick fronts: lighttpd nginx proxy fcgid (default: all).  Prints one line per front; numbers go
to the notes, nothing is asserted.
"""
import os
import resource
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import webfront as W  # noqa: E402
import http.client as httpclient  # noqa: E402
from qrtest import BIN, Mock  # noqa: E402
from test_webservers import App, Serve  # noqa: E402

N = int(os.environ.get("CONNS", "1500"))
PROBES = (5, 15, 30, 45)
HEAD = (b"POST %s/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")


def attack(front):
    socks, refused = [], 0
    for _ in range(N):
        s = socket.socket()
        s.settimeout(0.2)
        try:
            s.connect(("127.0.0.1", front.port))
            s.sendall(HEAD % front.base.encode())
            s.setblocking(False)
            socks.append(s)
        except OSError:
            refused += 1
            s.close()
    t0 = time.time()
    results, nextp = [], 0
    while nextp < len(PROBES):
        for s in socks:
            if s.fileno() < 0:
                continue
            try:
                s.send(b"x")
            except OSError:
                s.close()
        if time.time() - t0 >= PROBES[nextp]:
            p0 = time.time()
            try:
                c = httpclient.HTTPConnection(
                    "127.0.0.1", front.port, timeout=5,
                    source_address=("127.0.0.2", 0))
                c.request("GET", front.base + "/health")
                r = c.getresponse()
                r.read()
                c.close()
                res = f"{r.status} in {time.time() - p0:.2f}s"
            except OSError as e:
                res = f"failed ({type(e).__name__})"
            alive = sum(1 for s in socks if s.fileno() >= 0)
            results.append(f"t={PROBES[nextp]}s: probe {res}, "
                           f"{alive} trickling open")
            nextp += 1
        time.sleep(2)
    for s in socks:
        s.close()
    return refused, results


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, N + 512),
                                                max(hard, N + 512)))
    which = sys.argv[1:] or ("lighttpd", "nginx", "proxy", "fcgid")
    mock = Mock()
    for kind in which:
        sv = None
        if kind == "lighttpd":
            app = App(mock, tag="sl")
            f = W.lighttpd(BIN, "/", "enable",
                           env={"QWENRELAY_CONFIG": app.config_path})
        elif kind in ("nginx", "proxy"):
            sv = Serve(App(mock, tag="sl"))
            f = (W.nginx if kind == "nginx" else W.apache_proxy)(sv.sock)
        else:
            app = App(mock, owner="www-data", tag="sl")
            f = W.apache_fcgid_vhost(BIN, app.config_path)
        name = f.name
        refused, results = attack(f)
        print(f"{name}: {N} trickling connections ({refused} not "
              f"accepted within 0.2 s)", flush=True)
        for line in results:
            print("   " + line, flush=True)
        f.stop()
        if sv:
            sv.stop()


if __name__ == "__main__":
    main()
