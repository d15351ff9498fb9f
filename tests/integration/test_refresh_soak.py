"""test_refresh_soak.py: refresh under load with random worker kills.

Three qwen-oauth accounts whose access tokens live 2 s (so they rotate
every second or so), proactive_refresh_buffer_seconds 0, six clients
chatting through lighttpd with four workers, and a killer that sends
SIGKILL to a random worker every 0.3-1.2 s.  The mock answers each
refresh after 40 ms, which makes the window in which a kill loses a
rotated token (provider has the request, gateway has not committed)
wide enough to be hit.  At the end `qwenrelay refresh --all` flushes out
any latent loss.

Reported: seconds, chats, kills, refreshes, rotated tokens lost, and for
each loss where it came from: a kill inside the window (expected, stated
as needs_login "refresh interrupted"), or unexplained (a bug: the test
fails).  Nothing else may be lost: accounts without a loss stay active,
the client key works.

CI runs it for QR_SOAK_SECONDS (default 12); for a long soak:
    QR_SOAK_SECONDS=600 python3 tests/integration/test_refresh_soak.py
"""
import json
import os
import random
import signal
import threading
import time

from qrtest import Gateway, Mock, main_guard

SECONDS = float(os.environ.get("QR_SOAK_SECONDS", "12"))
LIFETIME = 2
DELAY_MS = 40



def served_workers(gw):
    """The workers lighttpd spawned (parent: lighttpd), never a CLI process
    of the test or a sanitizer's helper task, which share the command."""
    out = []
    for pid in gw.worker_pids():
        try:
            with open(f"/proc/{pid}/status") as f:
                ppid = [int(x.split()[1]) for x in f if x.startswith("PPid:")]
        except OSError:
            continue
        if ppid and ppid[0] == gw.proc.pid:
            out.append(pid)
    return out

def test(t):
    mock = Mock()
    mock.call("POST", "/_mock/config", {"token_lifetime": LIFETIME,
                                        "refresh_delay_ms": DELAY_MS})
    gw = Gateway(workers=4, config={"proactive_refresh_buffer_seconds": 0,
                                    "account_selection_strategy":
                                    "round-robin"},
                 env={"QWENRELAY_QWEN_OAUTH_BASE_URL": mock.url,
                      "QWENRELAY_TOKEN_REFRESH_RETRY_DELAY_MS": "100"})
    key = gw.add_key("c")
    for i in range(3):
        a = mock.call("POST", "/_mock/accounts", {"lifetime": LIFETIME})
        p = os.path.join(gw.dir, "creds.json")
        with open(p, "w") as f:
            json.dump({"access_token": a["access_token"],
                       "refresh_token": a["refresh_token"],
                       "token_type": "Bearer",
                       "resource_url": a["resource_url"],
                       "expiry_date": a["expiry_date"]}, f)
        r = gw.cli("accounts", "import", p)
        if r.returncode != 0:
            raise RuntimeError(r.stdout + r.stderr)

    stop = time.time() + SECONDS
    lock = threading.Lock()
    statuses = {}
    kills = []

    def client():
        while time.time() < stop:
            try:
                st = gw.req("POST", "/v1/chat/completions", key=key,
                            body={"model": "coder-model", "messages": [
                                {"role": "user", "content": "hi"}]},
                            timeout=60).status
            except OSError:
                st = "reset"
            with lock:
                statuses[st] = statuses.get(st, 0) + 1
            time.sleep(0.01)

    def killer():
        rnd = random.Random(os.getpid())
        while True:
            time.sleep(rnd.uniform(0.3, 1.2))
            if time.time() >= stop:
                return
            pids = served_workers(gw)
            if pids:
                pid = rnd.choice(pids)
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills.append((time.time(), pid))
                except OSError:
                    pass

    th = [threading.Thread(target=client) for _ in range(6)]
    th.append(threading.Thread(target=killer))
    for x in th:
        x.start()
    for x in th:
        x.join()
    # Flush latent losses: every account refreshes once more.
    mock.call("POST", "/_mock/config", {"refresh_delay_ms": 0})
    time.sleep(0.5)
    gw.cli("refresh", "--all")
    log = mock.call("GET", "/_mock/refresh_log")
    accts = json.loads(gw.cli("accounts", "list", "--json").stdout or "[]")

    # A rotated token is lost when the token it replaced is later sent
    # again and rejected: the gateway never stored the successor.
    issued_by = {}
    for e in log:
        if e["status"] == 200:
            issued_by.setdefault(e["sent"], e)
    losses = []
    for e in log:
        if e["status"] == 200 or e["account"] is None:
            continue
        src = issued_by.get(e["sent"])
        if src is None:
            continue
        lo, hi = src["started"] - 0.05, src["time"] + 2.0
        k = [(kt, pid) for kt, pid in kills if lo <= kt <= hi]
        losses.append((src, e, k))
    refreshes = sum(1 for e in log if e["status"] == 200)
    chats = sum(statuses.values())
    explained = [x for x in losses if x[2]]
    unexplained = [x for x in losses if not x[2]]
    t.diag(f"soak: {SECONDS:.0f}s, {chats} chats {statuses}, "
           f"{len(kills)} kills, {refreshes} refreshes, {len(losses)} "
           f"rotated tokens lost ({len(explained)} by a kill inside the "
           f"window, {len(unexplained)} unexplained)")
    for src, e, k in losses:
        where = (f"kill of pid {k[0][1]} {1000 * (k[0][0] - src['started']):.0f}"
                 f" ms after the provider got the request (answered after "
                 f"{1000 * (src['time'] - src['started']):.0f} ms)"
                 if k else "no kill nearby")
        t.diag(f"  lost ...{src['issued']} (account {src['account']}): "
               f"{where}")
    t.ok(refreshes >= SECONDS / LIFETIME, f"tokens rotated under load "
         f"({refreshes} refreshes)")
    t.eq([], [(s["issued"], e["time"]) for s, e, _ in unexplained],
         "no rotated token lost without a kill inside the window")
    bad = [a for a in accts if a["status"] != "active" and not (
        a.get("status_reason") or "").startswith("refresh interrupted")]
    t.eq([], bad, "an account is active, or needs_login because a refresh "
         "was interrupted")
    t.ok(sum(a["status"] == "needs_login" for a in accts) <= len(losses),
         "no account lost without a lost token behind it", accts)
    t.eq(3, len(accts), "no account lost")
    if any(a["status"] == "active" for a in accts):
        r = gw.req("POST", "/v1/chat/completions", key=key, body={
            "model": "coder-model",
            "messages": [{"role": "user", "content": "hi"}]})
        t.eq(200, r.status, "the pool still serves")
    gw.stop()


main_guard(test)
