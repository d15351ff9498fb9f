#!/usr/bin/env python3
"""webservers.py: the same non-streaming chat through each web server
(wrk, one run each), and what a shared-hosting user loses to mod_fcgid's
defaults they cannot change from .htaccess.

    make && python3 tests/bench/webservers.py      # as root; ~3 minutes

Every front is the shipped deploy/ file, started by
tests/integration/webfront.py on loopback with the mock Qwen upstream, as
in tests/integration/test_webservers.py; everything stops at exit.
Knobs: DURATION (10s), CONNS (8), THREADS (2), WORKERS (4).
"""
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import webfront as W  # noqa: E402
from qrtest import BIN, Mock, http  # noqa: E402
from test_webservers import App, Serve, stream  # noqa: E402

DURATION = os.environ.get("DURATION", "10s")
CONNS = os.environ.get("CONNS", "8")
THREADS = os.environ.get("THREADS", "2")
WORKERS = int(os.environ.get("WORKERS", "4"))
LUA = os.path.join(HERE, "chat.lua")


def wrk(front, key):
    path = front.base + "/v1/chat/completions"
    env = dict(os.environ, BENCH_CLIENT_KEY=key, BENCH_PATH=path)
    # Warm up: spawn-on-demand servers start their workers here.
    for _ in range(WORKERS * 2):
        http(front.port, "POST", path, {"model": "coder-model", "messages": [
            {"role": "user", "content": "warm"}]},
            {"Authorization": "Bearer " + key})
    out = subprocess.run(
        ["wrk", "-t", THREADS, "-c", CONNS, "-d", DURATION, "-s", LUA,
         f"http://127.0.0.1:{front.port}{path}"], env=env,
        capture_output=True, text=True, timeout=300).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    lat = re.search(r"Latency\s+(\S+)", out)
    return (float(rps.group(1)) if rps else 0.0,
            int(non2xx.group(1)) if non2xx else 0, lat.group(1) if lat else "?")


def main():
    mock = Mock()
    rows = []

    def run(name, front, key):
        rps, bad, lat = wrk(front, key)
        rows.append((name, rps, bad, lat))
        print(f"{name:48s} {rps:9.1f} req/s  mean latency {lat:>8s}"
              f"  non-2xx {bad}", flush=True)

    app = App(mock, tag="bl")
    app.write_config(request_log=False, log_level="warn")
    f = W.lighttpd(BIN, "/", "enable", workers=WORKERS,
                   env={"QWENRELAY_CONFIG": app.config_path})
    run("lighttpd (spawns workers)", f, app.client)
    f.stop()

    app = App(mock, tag="bn")
    app.write_config(request_log=False, log_level="warn")
    sv = Serve(app, workers=WORKERS)
    f = W.nginx(sv.sock)
    run("nginx + qwenrelay serve", f, app.client)
    f.stop()
    sv.stop()

    app = App(mock, tag="bp")
    app.write_config(request_log=False, log_level="warn")
    sv = Serve(app, workers=WORKERS)
    f = W.apache_proxy(sv.sock)
    run("apache event + mod_proxy_fcgi + serve", f, app.client)
    f.stop()
    sv.stop()

    app = App(mock, owner="www-data", tag="bf")
    app.write_config(request_log=False, log_level="warn")
    f = W.apache_fcgid_vhost(BIN, app.config_path, workers=WORKERS)
    run("apache + mod_fcgid vhost", f, app.client)
    f.stop()

    app = App(mock, owner="www-data", tag="bh")
    app.write_config(request_log=False, log_level="warn",
                     max_body_bytes=1 << 20)
    with open(app.config_path) as fh:
        conf = fh.read()
    for label, host in (("host defaults", ""),
                        ("FcgidOutputBufferSize 0",
                         "FcgidOutputBufferSize 0\n")):
        f = W.apache_htaccess(BIN, {"qwenrelay.json": conf}, host_conf=host)
        run(f"apache + mod_fcgid + .htaccess ({label})", f, app.client)
        # Streaming: 10 chunks 300 ms apart upstream.
        t0 = time.time()
        st, first, ended, events = stream(f, app.client, mock)
        print(f"  stream, {label}: first content event "
              f"{first - t0:.2f} s after the request, "
              f"{first - ended:+.2f} s from the upstream's last chunk "
              f"({len(events)} events, status {st})", flush=True)
        # A long chat: 200 KiB of messages (max_body_bytes is 1 MiB).
        body = {"model": "coder-model", "messages": [
            {"role": "user", "content": "x" * (200 << 10)}]}
        r = http(f.port, "POST", f.base + "/v1/chat/completions", body,
                 {"Authorization": "Bearer " + app.client})
        print(f"  200 KiB chat, {label}: {r.status} "
              f"{r.text[:90]!r}", flush=True)
        f.stop()

    print("\nfront | requests/s | mean latency | non-2xx")
    for name, rps, bad, lat in rows:
        print(f"{name} | {rps:.1f} | {lat} | {bad}")


if __name__ == "__main__":
    main()
