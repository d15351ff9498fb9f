#!/usr/bin/env python3
"""streams.py: N concurrent chat streams through lighttpd + qwenrelay.

Not a test (it only reports numbers).  Starts the mock Qwen server with
paced chunks (CHUNKS payloads DELAY_MS apart) and a gateway configured like
deploy/up (lighttpd bin-path, WORKERS processes, the default threads per
worker), then for each N opens N streams at once and reports:

  first     added first-token delay: first SSE byte at the client minus the
            request start (the mock sends its first payload at once, so the
            upstream's own first-token delay is ~0), p50 / p99 / max
  chunk     added per-chunk delay: arrival of chunk i minus (first arrival +
            i x DELAY_MS), at the last chunk, p50 / p99 / max
  done      the last stream's end, from the start
  errors    streams that did not end with [DONE] (with the statuses seen)
  rss       total VmRSS of lighttpd + every qwenrelay process, after the run
  cpu/1k    CPU seconds (user+sys) of lighttpd + qwenrelay per 1000 chunks

    tests/bench/streams.py [N ...]        default: 16 64 256 1024

Environment: WORKERS (4), DELAY_MS (500), WORDS (5: role + 5 words + stop +
[DONE] = 8 payloads), QWENRELAY_THREADS (unset: the config default).
"""
import asyncio
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from qrtest import Gateway, Mock  # noqa: E402

MODEL = "coder-model"


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


async def one_stream(port, key, t0, out):
    body = json.dumps({"model": MODEL, "stream": True, "messages": [
        {"role": "user", "content": "bench"}]}).encode()
    req = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
           ).encode() + body
    rec = {"status": None, "chunks": [], "done": False, "end": None}
    out.append(rec)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(req)
        await writer.drain()
        line = await reader.readline()
        rec["status"] = int(line.split()[1]) if line else None
        buf = b""
        while True:
            data = await reader.read(65536)
            if not data:
                break
            now = time.monotonic()
            buf += data
            while b"\n" in buf:
                ln, buf = buf.split(b"\n", 1)
                if ln.startswith(b"data: "):
                    rec["chunks"].append(now - t0)
                    if ln.strip() == b"data: [DONE]":
                        rec["done"] = True
        writer.close()
    except OSError as e:
        rec["error"] = str(e)
    rec["end"] = time.monotonic() - t0


def cpu_of(pids):
    tot = 0.0
    tck = os.sysconf("SC_CLK_TCK")
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            tot += (int(parts[11]) + int(parts[12])) / tck
        except OSError:
            pass
    return tot


def rss_of(pids):
    tot = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for ln in f:
                    if ln.startswith("VmRSS:"):
                        tot += int(ln.split()[1])
        except OSError:
            pass
    return tot // 1024


def run(gw, key, n, delay):
    pids = gw.worker_pids() + [gw.proc.pid]
    c0 = cpu_of(pids)
    out = []
    t0 = time.monotonic()

    async def main():
        await asyncio.gather(*(one_stream(gw.port, key, t0, out)
                               for _ in range(n)))
    asyncio.run(main())
    pids = gw.worker_pids() + [gw.proc.pid]
    cpu = cpu_of(pids) - c0
    ok = [r for r in out if r["done"]]
    firsts = [r["chunks"][0] * 1000 for r in ok]
    lags = [(r["chunks"][-1] - r["chunks"][0] -
             (len(r["chunks"]) - 1) * delay / 1000.0) * 1000 for r in ok]
    nchunks = sum(len(r["chunks"]) for r in out)
    errs = {}
    for r in out:
        if not r["done"]:
            k = str(r["status"] or r.get("error", "no answer"))
            errs[k] = errs.get(k, 0) + 1
    return {
        "n": n, "ok": len(ok), "errors": errs,
        "first": (pct(firsts, 50), pct(firsts, 99), max(firsts or [0])),
        "chunk": (pct(lags, 50), pct(lags, 99), max(lags or [0])),
        "done": max(r["end"] for r in out),
        "rss_mb": rss_of(pids), "procs": len(pids),
        "cpu_per_1k": cpu / nchunks * 1000 if nchunks else float("nan"),
    }


def main():
    ns = [int(a) for a in sys.argv[1:]] or [16, 64, 256, 1024]
    workers = int(os.environ.get("WORKERS", "4"))
    delay = int(os.environ.get("DELAY_MS", "500"))
    words = int(os.environ.get("WORDS", "5"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    mock = Mock()
    mock.call("POST", "/_mock/config", {"stream_chunk_delay_ms": delay,
                                         "stream_words": words})
    cfg = {"log_level": "warn", "request_log": False}
    if os.environ.get("QWENRELAY_THREADS"):
        cfg["threads"] = int(os.environ["QWENRELAY_THREADS"])
    gw = Gateway(config=cfg, workers=workers)
    key = gw.add_key("bench")
    upkey = "sk-bench-streams"
    mock.call("POST", "/_mock/apikeys", {"key": upkey})
    r = gw.cli("accounts", "add", "--provider", "openai-compatible",
               "--label", "bench", "--base-url", mock.url + "/v1",
               "--models", MODEL, input=upkey + "\n")
    if r.returncode != 0:
        sys.exit("accounts add: " + r.stderr)
    run(gw, key, 4, delay)  # warm: processes, connections
    print(f"# {workers} workers, chunks {delay} ms apart, load "
          f"{os.getloadavg()[0]:.2f}")
    print("| streams | ok | first p50/p99/max ms | chunk lag p50/p99/max ms "
          "| last done s | errors | RSS MB (procs) | CPU s/1k chunks |")
    print("|---|---|---|---|---|---|---|---|")
    for n in ns:
        s = run(gw, key, n, delay)
        print(f"| {n} | {s['ok']} | {s['first'][0]:.0f} / {s['first'][1]:.0f}"
              f" / {s['first'][2]:.0f} | {s['chunk'][0]:.0f} / "
              f"{s['chunk'][1]:.0f} / {s['chunk'][2]:.0f} | {s['done']:.1f} | "
              f"{s['errors'] or 0} | {s['rss_mb']} ({s['procs']}) | "
              f"{s['cpu_per_1k']:.2f} |", flush=True)
        time.sleep(2)


if __name__ == "__main__":
    main()
