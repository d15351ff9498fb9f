#!/usr/bin/env python3
"""deploy_up_check.py: issue 12's done-when, measured on the real deploy/up.

Not a test (prints numbers; the machine decides the timings).  Runs
`deploy/up` (QR_NO_BUILD=1: the binary already built; QR_VAR: a temporary
state directory; a free PORT) with its defaults, adds a client key and two
API-key accounts (the mock, with 8 payloads 500 ms apart; and a hung
upstream that never answers), then:

  1. N (256) concurrent streams: how many complete, first content
     p50 / p99 / max, when the last one ended, RSS of lighttpd + workers;
  2. 24 requests hung at the upstream (12 streaming) whose clients leave:
     how long /health and a fresh chat take meanwhile, and when the hung
     upstream saw its 24 connections closed;

and stops it with `deploy/up --stop`.

    tests/bench/deploy_up_check.py [N]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import streams  # noqa: E402
from qrtest import BIN, SRCDIR, Mock, free_port, http  # noqa: E402
from test_concurrency import Hung, raw_request  # noqa: E402


class Up:
    """Just what streams.run needs of a gateway."""

    def __init__(self, port, lpid):
        self.port = port
        self.proc = type("P", (), {"pid": lpid})()

    def worker_pids(self):
        out = subprocess.run(["ps", "-o", "pid=", "--ppid",
                              str(self.proc.pid)], capture_output=True,
                             text=True).stdout
        return [int(p) for p in out.split()]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    mock = Mock()
    hung = Hung()
    mock.call("POST", "/_mock/config", {"stream_chunk_delay_ms": 500,
                                         "stream_words": 5})
    var = tempfile.mkdtemp(prefix="qrup.")
    port = free_port()
    env = dict(os.environ, QR_VAR=var, PORT=str(port), QR_NO_BUILD="1")
    up = os.path.join(SRCDIR, "deploy", "up")
    try:
        r = subprocess.run([up], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("deploy/up failed: " + r.stdout + r.stderr)
        cenv = dict(os.environ, QWENRELAY_CONFIG=var + "/qwenrelay.json")
        key = subprocess.run([BIN, "keys", "add", "bench"], env=cenv,
                             capture_output=True, text=True).stdout.strip()
        mock.call("POST", "/_mock/apikeys", {"key": "sk-upcheck"})
        for label, url, model, secret in (
                ("mock", mock.url + "/v1", "coder-model", "sk-upcheck"),
                ("hung", f"http://127.0.0.1:{hung.port}/v1", "hung-model",
                 "sk-hung")):
            r = subprocess.run([BIN, "accounts", "add", "--provider",
                                "openai-compatible", "--label", label,
                                "--base-url", url, "--models", model],
                               env=cenv, input=secret + "\n",
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit("accounts add: " + r.stderr)
        with open(var + "/run/lighttpd.pid") as f:
            g = Up(port, int(f.read()))
        print(f"# deploy/up defaults: {len(g.worker_pids())} workers; "
              f"load {os.getloadavg()[0]:.2f}")
        streams.run(g, key, 4, 500)
        s = streams.run(g, key, n, 500)
        print(f"{n} streams: {s['ok']} complete, errors {s['errors'] or 0}; "
              f"first content p50 {s['first'][0]:.0f} ms, p99 "
              f"{s['first'][1]:.0f} ms, max {s['first'][2]:.0f} ms; last "
              f"done {s['done']:.1f} s; RSS {s['rss_mb']} MB")
        mock.call("POST", "/_mock/config", {"stream_chunk_delay_ms": 0,
                                             "stream_words": None})
        socks = [raw_request(port, key, "hung-model", i % 2 == 0)
                 for i in range(24)]
        print(f"hung at the upstream: {hung.wait_open(24, 20)}")
        t = time.monotonic()
        st = http(port, "GET", "/health").status
        print(f"/health meanwhile: {st} in "
              f"{(time.monotonic() - t) * 1000:.0f} ms")
        t = time.monotonic()
        st = http(port, "POST", "/v1/chat/completions",
                  {"model": "coder-model", "messages": [
                      {"role": "user", "content": "x"}]},
                  {"Authorization": "Bearer " + key}).status
        print(f"a fresh chat meanwhile: {st} in "
              f"{(time.monotonic() - t) * 1000:.0f} ms")
        left = time.monotonic()
        for so in socks:
            so.close()
        while hung.open_count() and time.monotonic() - left < 15:
            time.sleep(0.02)
        closes = [cl - left for _, cl in hung.conns if cl is not None]
        print(f"the upstream saw {len(closes)} of 24 closed, the last "
              f"{max(closes or [0]):.2f} s after the clients left")
    finally:
        subprocess.run([up, "--stop"], env=env, capture_output=True)
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
