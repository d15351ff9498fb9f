"""test_pool.py: `qwenrelay serve`, the process manager.

Behind a real lighttpd, against the mock and a hung upstream (from
test_concurrency): /health/deep reports every worker from the shared
table; dynamic mode grows while workers are busy and shrinks when they
idle; a killed worker is replaced and fails only its own requests;
SIGHUP replaces the workers while a stream in flight runs to its end.
"""
import os
import re
import signal
import threading
import time

from qrtest import main_guard, Mock
from test_concurrency import (Hung, gateway, raw_request, start_streams,
                              stream_worker, wait_gone, HUNG, MODEL)


def pool_of(gw, admin):
    r = gw.req("GET", "/health/deep", key=admin, timeout=10)
    return (r.json() or {}).get("pool") or {}


def live(gw, admin, state="serving"):
    return sorted(w["pid"] for w in pool_of(gw, admin).get("workers", [])
                  if w.get("state") == state)


def wait_for(fn, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    return fn()


def test(t):
    mock = Mock()
    hung = Hung()

    # -- dynamic: grow on demand, shrink when idle --------------------------
    gw, key, admin = gateway(mock, hung, workers=3, serve=True, config={
        "pm": "dynamic", "pm_min_spare_workers": 1,
        "pm_max_spare_workers": 1, "threads": 4})
    p = pool_of(gw, admin)
    t.ok(len(p.get("workers", [])) >= 1 and "capacity" in p and
         "requests_in_flight" in p,
         "/health/deep under serve lists the pool's workers", p)
    t.eq(1, len(wait_for(lambda: live(gw, admin), 10)),
         "dynamic: one idle worker to start with")
    held = [raw_request(gw.port, key, HUNG, False)]
    hung.wait_open(1, 20)
    t.ok(len(wait_for(lambda: len(live(gw, admin)) >= 2 and
                      live(gw, admin), 10)) >= 2,
         "dynamic: a busy worker leaves no spare, so one more starts")
    p = pool_of(gw, admin)
    t.ok(p.get("requests_in_flight", 0) >= 1,
         "/health/deep counts the request in flight across the pool", p)
    for s in held:
        s.close()
    t.eq(1, len(wait_for(lambda: len(live(gw, admin)) == 1 and
                         live(gw, admin), 15)),
         "dynamic: idle beyond pm_max_spare_workers, it shrinks back")
    gw.stop()
    gw._stop_pool()

    # -- max_requests: a worker recycles itself, nobody notices ------------
    gw, key, admin = gateway(mock, hung, workers=1, serve=True,
                             config={"max_requests": 5})
    seen, codes = set(), []
    for _ in range(14):
        codes.append(gw.req("POST", "/v1/chat/completions", key=key, body={
            "model": MODEL, "messages": [{"role": "user", "content": "x"}]},
            timeout=30).status)
        seen.update(live(gw, admin))
        time.sleep(0.2)
    t.eq([200] * 14, codes, "max_requests 5: 14 requests in a row all served")
    t.ok(len(seen) >= 2, "and the worker was recycled", seen)
    gw.stop()
    gw._stop_pool()

    # -- user: started as root, nothing of the pool stays root -------------
    if os.geteuid() == 0:
        import pwd
        nobody = pwd.getpwnam("nobody").pw_uid
        gw, key, admin = gateway(mock, hung, workers=2, serve=True,
                                 config={"user": "nobody"})
        wait_for(lambda: len(gw.worker_pids()) >= 4, 10)

        def uids(pid):
            with open(f"/proc/{pid}/status") as f:
                for ln in f:
                    if ln.startswith("Uid:"):
                        return set(int(x) for x in ln.split()[1:])
            return set()
        got = {p: uids(p) for p in gw.worker_pids()}
        t.ok(len(got) >= 4 and all(u == {nobody} for u in got.values()),
             "user: master, keeper and workers all run as nobody "
             "(real, effective, saved, fs uid)", got)
        gw.stop()
        gw._stop_pool()

    # -- static: a killed worker is replaced; others' requests go on -------
    mock.call("POST", "/_mock/config", {"stream_chunk_delay_ms": 300,
                                         "stream_words": 8})
    gw, key, admin = gateway(mock, hung, workers=2, serve=True)
    pids = wait_for(lambda: len(live(gw, admin)) == 2 and live(gw, admin),
                    10)
    t.eq(2, len(pids or []), "static: two workers serving")
    n = 6
    out, th = start_streams(gw, key, n)
    time.sleep(1.0)
    per = {w["pid"]: w["requests_in_flight"]
           for w in pool_of(gw, admin).get("workers", [])}
    victim = max(per, key=per.get)
    os.kill(victim, signal.SIGKILL)
    for x in th:
        x.join(60)
    ok = sum(1 for o in out if o and o[1])
    t.ok(ok >= n - per[victim] and ok < n,
         "killing one worker fails only the streams it was serving",
         f"{ok} of {n} ended, the killed one had {per[victim]}: {per}")
    now = wait_for(lambda: len(live(gw, admin)) == 2 and
                   victim not in live(gw, admin) and live(gw, admin), 10)
    t.ok(now and victim not in now, "the killed worker is replaced", now)
    r = gw.req("POST", "/v1/chat/completions", key=key, body={
        "model": MODEL, "messages": [{"role": "user", "content": "x"}]})
    t.eq(200, r.status, "and the pool serves")

    # -- SIGHUP: new workers, the old ones finish their streams -------------
    before = live(gw, admin)
    out = [None]
    th = threading.Thread(target=stream_worker,
                          args=(gw, key, time.monotonic(), out, 0))
    th.start()
    time.sleep(0.8)
    gw.pool.send_signal(signal.SIGHUP)
    th.join(60)
    t.ok(out[0] is not None and out[0][1],
         "SIGHUP: a stream in flight runs to its end", out)
    after = wait_for(lambda: len(live(gw, admin)) == 2 and
                     not set(live(gw, admin)) & set(before) and
                     live(gw, admin), 15)
    t.ok(after and not set(after) & set(before),
         "SIGHUP: every worker replaced", f"{before} -> {after}")
    t.eq([], wait_gone(before, 15), "the old workers exited")
    t.ok("config reloaded" in gw.logs(), "the log says so")

    # -- a crash loop is respawned with a growing backoff ------------------
    seen = set(live(gw, admin))
    os.kill(min(seen), signal.SIGKILL)
    for _ in range(4):
        now = wait_for(lambda: set(live(gw, admin)) - seen, 15)
        if not now:
            break
        pid = min(now)
        seen.add(pid)
        os.kill(pid, signal.SIGKILL)     # young: still a crash loop

    waits = [int(m) for m in re.findall(r"respawning in (\d+) ms",
                                         gw.logs())]
    t.ok(len(waits) >= 4 and waits[-1] > waits[-4],
         "workers that keep dying young are respawned with a growing "
         "backoff", waits)
    t.ok(wait_for(lambda: len(live(gw, admin)) == 2, 15),
         "and the pool is whole again")
    mock.call("POST", "/_mock/config", {"stream_chunk_delay_ms": 0,
                                         "stream_words": None})


if __name__ == "__main__":
    main_guard(test)
