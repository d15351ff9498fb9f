#!/usr/bin/env python3
"""callgrind.py: instructions per chat request, qwenrelay vs floor_relay.

Not a test: it prints numbers.  Wall-clock benchmarks on a shared 2-CPU
machine swing by 30%; instruction counts do not.  Runs one qwenrelay worker
and one floor_relay (tests/bench/floor_relay, `make bench`) under
`valgrind --tool=callgrind` behind lighttpd, sends N sequential
non-streaming chats to each through the mock, and prints instructions per
request for the whole worker loop, for curl_easy_perform, and the inclusive
cost of qwenrelay's own functions (the biggest first).

    tests/bench/callgrind.py [N] [ACCOUNTS]      default: 400 requests, 1 account

Needs valgrind (callgrind_annotate).  Takes a minute or two.  KEEP=1 keeps
the callgrind output files (their directory is printed) for
callgrind_annotate --tree=caller and the like.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import qrtest  # noqa: E402
from qrtest import Gateway, Mock  # noqa: E402

MODEL = "coder-model"


def wrapper(d, name, binary):
    """A script lighttpd can spawn that runs binary under callgrind."""
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --tool=callgrind "
                f"--callgrind-out-file={d}/{name}.out.%p {binary} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


def annotate(d, name):
    outs = [os.path.join(d, f) for f in os.listdir(d)
            if f.startswith(name + ".out.")]
    if not outs:
        return ""
    return subprocess.run(["callgrind_annotate", "--inclusive=yes",
                           max(outs, key=os.path.getsize)],
                          capture_output=True, text=True).stdout


def rows(text):
    for ln in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(\S+)", ln)
        if m:
            yield int(m.group(1).replace(",", "")), m.group(2)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    accounts = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    for tool in ("valgrind", "callgrind_annotate"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install valgrind")
    floor = os.path.join(qrtest.BUILDDIR, "tests", "bench", "floor_relay")
    if not os.access(floor, os.X_OK):
        sys.exit(f"{floor} not built: make bench")
    d = tempfile.mkdtemp(prefix="qrcg.")
    mock = Mock()
    keys = [f"sk-cg{i}" for i in range(accounts)]
    for k in keys:
        mock.call("POST", "/_mock/apikeys", {"key": k})
    os.environ["FLOOR_UPSTREAM"] = mock.url + "/v1/chat/completions"
    os.environ["FLOOR_TOKEN"] = keys[0]
    real = qrtest.BIN
    qrtest.BIN = wrapper(d, "qwenrelay", real)
    gw = Gateway(config={"request_log": False, "log_level": "warn",
                         "threads": 2}, workers=1)
    qrtest.BIN = wrapper(d, "floor", floor)
    fl = Gateway(workers=1)
    qrtest.BIN = real
    key = gw.add_key("bench")
    for i, k in enumerate(keys):
        r = gw.cli("accounts", "add", "--provider", "openai-compatible",
                   "--label", f"cg{i}", "--base-url", mock.url + "/v1",
                   "--models", MODEL, input=k + "\n")
        if r.returncode != 0:
            sys.exit("accounts add: " + r.stderr)
    body = {"model": MODEL, "messages": [{"role": "user",
                                          "content": "hello bench"}]}
    for g in (gw, fl):
        for _ in range(5):      # warm: connections, caches, one-time setup
            g.req("POST", "/v1/chat/completions", key=key, body=body)
    for g in (gw, fl):
        for _ in range(n):
            r = g.req("POST", "/v1/chat/completions", key=key, body=body)
            if r.status != 200:
                sys.exit(f"chat answered {r.status}: {r.text[:200]}")
    gw.stop()
    fl.stop()
    time.sleep(3)               # callgrind writes its files at exit
    total = n + 5
    qr = dict((f, c) for c, f in rows(annotate(d, "qwenrelay")))
    fr = dict((f, c) for c, f in rows(annotate(d, "floor")))

    def per(table, suffix):
        for f, c in table.items():
            if f.endswith(suffix):
                return c / total / 1000
        return float("nan")
    print(f"# {n} sequential chats (+5 warm-up), {accounts} account(s); "
          "thousands of instructions per request (k)")
    print(f"floor_relay   loop {per(fr, 'floor_relay.c:main'):7.1f} k   "
          f"curl_easy_perform {per(fr, ':curl_easy_perform'):6.1f} k")
    print(f"qwenrelay     loop {per(qr, 'worker.c:thread_main'):7.1f} k   "
          f"curl_easy_perform {per(qr, ':curl_easy_perform'):6.1f} k")
    print("qwenrelay's own functions, inclusive (one-time setup such as "
          "algs_fetch is spread over the run):")
    own = sorted(((c, f) for f, c in qr.items()
                  if re.search(r"/(app|store|handlers)/", f)), reverse=True)
    for c, f in own[:25]:
        print(f"  {c / total / 1000:7.1f} k  {f.split('/')[-1]}")
    if os.environ.get("KEEP"):
        print(f"callgrind files kept in {d} (KEEP set)")
    else:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
