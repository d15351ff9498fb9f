#!/usr/bin/env python3
"""protocols.py: the latency the protocol translators add.

One wrk run per row against one qwenrelay (lighttpd, WORKERS FastCGI
workers) whose upstream is the mock: the same small question as chat
completions, as Anthropic Messages and as a Responses API request, plain
and streamed (wrk times the whole stream), on one connection (-t1 -c1:
no queueing, so p50 is the cost of one request) and on CONNS connections.
Prints a table and the added p50 of each protocol over chat completions.
Not part of make check; results go in notes.

Environment: DURATION (10s), CONNS (8), WORKERS (2), QR_BUILDDIR.
"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from qrtest import Gateway, Mock  # noqa: E402

DURATION = os.environ.get("DURATION", "10s")
CONNS = os.environ.get("CONNS", "8")
WORKERS = int(os.environ.get("WORKERS", "2"))
Q = "hello bench"
ROWS = [
    ("chat", "/v1/chat/completions",
     {"model": "coder-model", "messages": [{"role": "user", "content": Q}]}),
    ("messages", "/v1/messages",
     {"model": "coder-model", "max_tokens": 64,
      "messages": [{"role": "user", "content": Q}]}),
    ("responses", "/v1/responses", {"model": "coder-model", "input": Q}),
]


def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]


def wrk(gw, key, path, body, conns, threads):
    env = dict(os.environ, BENCH_PATH=path, BENCH_BODY=json.dumps(body),
               BENCH_CLIENT_KEY=key)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(conns), "-d",
                          DURATION, "--latency", "-s",
                          os.path.join(HERE, "proto.lua"),
                          f"http://127.0.0.1:{gw.port}"], env=env,
                         capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = ms(re.search(r"50%\s+(\S+)", out).group(1))
    p99 = ms(re.search(r"99%\s+(\S+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p50, p99, int(bad.group(1)) if bad else 0


def main():
    mock = Mock()
    gw = Gateway(config={"request_log": False, "log_level": "warn"},
                 workers=WORKERS)
    key = gw.add_key("bench")
    acct = "sk-bench-proto"
    mock.call("POST", "/_mock/apikeys", {"key": acct})
    gw.cli("accounts", "add", "--provider", "openai-compatible", "--label",
           "bench", "--base-url", mock.url + "/v1", "--models",
           "coder-model", input=acct + "\n")
    print(f"wrk {DURATION} per row, {WORKERS} workers, upstream: the mock")
    print(f"{'row':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"
          f"{'+p50 vs chat':>14}")
    for stream in (False, True):
        for conns, threads in ((1, 1), (int(CONNS), 2)):
            base = None
            for name, path, body in ROWS:
                b = dict(body, stream=True) if stream else body
                rps, p50, p99, bad = wrk(gw, key, path, b, conns, threads)
                base = p50 if base is None else base
                label = f"{name}{' stream' if stream else ''} c{conns}"
                print(f"{label:<22}{rps:>9.0f}{p50:>9.2f}{p99:>9.2f}{bad:>9}"
                      f"{p50 - base:>+14.2f}", flush=True)
    gw.stop()
    mock.stop()


if __name__ == "__main__":
    main()
