"""test_refresh.py: refresh under concurrency, through lighttpd and the mock.

Issue 11's recipe: access tokens that live 30 s, proactive_refresh_buffer_
seconds 0, imported credentials that expire in 1 s, 2 and then 8 concurrent
clients, 200 chats: no refresh is ever rejected (the refresh token sent is
the one read under the lease), the account stays active, and refreshes
follow the token's lifetime, not the request count.  Issue 8, item 3: a
proactive refresh (token valid for 300 s, inside the 1800 s buffer) that
fails with 500 never blocks the request: the old token serves it, once the
failure is logged the next request does not try again at once; a 401
makes the refresh blocking.
"""
import collections
import json
import os
import signal
import threading
import time

from qrtest import Gateway, Mock, main_guard


def setup(mock, lifetime, workers=2, config=None, mock_config=None):
    mock.call("POST", "/_mock/reset")
    if mock_config:
        mock.call("POST", "/_mock/config", mock_config)
    gw = Gateway(workers=workers, config=config,
                 env={"QWENRELAY_QWEN_OAUTH_BASE_URL": mock.url,
                      "QWENRELAY_TOKEN_REFRESH_RETRY_DELAY_MS": "100"})
    key = gw.add_key("c")
    a = mock.call("POST", "/_mock/accounts", {"lifetime": lifetime})
    p = os.path.join(gw.dir, "creds.json")
    with open(p, "w") as f:
        json.dump({"access_token": a["access_token"],
                   "refresh_token": a["refresh_token"],
                   "token_type": "Bearer", "resource_url": a["resource_url"],
                   "expiry_date": a["expiry_date"]}, f)
    r = gw.cli("accounts", "import", p)
    if r.returncode != 0:
        raise RuntimeError("import failed: " + r.stdout + r.stderr)
    return gw, key, a


def chat(gw, key):
    return gw.req("POST", "/v1/chat/completions", key=key, body={
        "model": "coder-model",
        "messages": [{"role": "user", "content": "hi"}]})


def storm(gw, key, clients, total, pace=0.0):
    """clients threads share total chats, each pausing pace seconds after
    each; returns (statuses, seconds)."""
    statuses = []
    lock = threading.Lock()
    left = [total]

    def one():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            st = chat(gw, key).status
            with lock:
                statuses.append(st)
            time.sleep(pace)
    t0 = time.time()
    th = [threading.Thread(target=one) for _ in range(clients)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    return statuses, time.time() - t0


def status_of(gw):
    lst = json.loads(gw.cli("accounts", "list", "--json").stdout or "[]")
    return lst[0]["status"] if lst else None


def recipe(t, mock, clients, lifetime, workers, pace=0.0):
    gw, key, _ = setup(mock, 1, workers=workers,
                       config={"proactive_refresh_buffer_seconds": 0},
                       mock_config={"token_lifetime": lifetime})
    time.sleep(1.2)     # the imported token has expired now
    statuses, secs = storm(gw, key, clients, 200, pace)
    log = mock.call("GET", "/_mock/refresh_log")
    ok = [e for e in log if e["status"] == 200]
    bad = [e for e in log if e["status"] != 200]
    # A token is refreshed in the second half of its life at the earliest:
    # at most about 2 per lifetime, plus the first one and contention.
    most = int(2 * secs / lifetime) + 3
    t.diag(f"{clients} clients, token lifetime {lifetime}s: 200 chats in "
           f"{secs:.1f}s, {len(ok)} refreshes, {len(bad)} rejected")
    t.eq({200: 200}, dict(collections.Counter(statuses)),
         f"{clients} clients: all 200 chats answered")
    t.eq([], bad, f"{clients} clients: no refresh rejected (stale token)")
    t.ok(1 <= len(ok) <= most, f"{clients} clients: {len(ok)} refreshes "
         f"for {secs:.1f}s at {lifetime}s per token (at most {most}), not "
         "one per request", log[:5])
    t.eq("active", status_of(gw), f"{clients} clients: account active")
    sent = [e["sent"] for e in ok]
    t.eq(len(sent), len(set(sent)), f"{clients} clients: every refresh "
         "token was sent once")
    gw.stop()


def proactive_outage(t, mock):
    # issue 8 item 3: valid for 300 s, inside the 1800 s buffer; the
    # token endpoint answers 500.
    gw, key, a = setup(mock, 300, mock_config={
        "refresh_fail": {"count": 1000, "status": 500}})
    t0 = time.time()
    r = chat(gw, key)
    secs = time.time() - t0
    sent = mock.call("GET", "/_mock/requests?path=/v1/chat/completions")
    t.eq(200, r.status, "proactive refresh failing with 500: the chat is "
         "served")
    t.ok(len(sent) == 1 and sent[-1]["token"] == a["access_token"],
         "with the still-valid token")
    calls = mock.call("GET", "/_mock/calls")["token_refresh"]
    t.eq(1, calls, "one refresh attempt, no retries while the token works")
    t.diag(f"chat with a failing proactive refresh: {secs:.2f}s")
    r = chat(gw, key)
    t.ok(r.status == 200 and mock.call("GET", "/_mock/calls")[
        "token_refresh"] == 1, "the next request does not retry at once "
         "(cooldown)")
    t.eq("active", status_of(gw), "the account stays active")
    t.ok("using the current token" in gw.logs(), "the failure is logged")
    # a 401 makes it blocking: the old token is dead, refresh must work
    mock.call("POST", "/_mock/expire_access",
              {"access_token": a["access_token"]})
    r = chat(gw, key)
    t.ok(r.status == 503 and mock.call("GET", "/_mock/calls")[
        "token_refresh"] > 1, "after a 401 the refresh blocks: 503 while "
         "the token endpoint fails", r.text)
    mock.call("POST", "/_mock/config", {"refresh_fail": None})
    r = chat(gw, key)
    t.eq(200, r.status, "once the token endpoint is back, served again")
    gw.stop()


def interrupted(t, mock):
    """A worker killed after sending the refresh token, before storing the
    rotated one: that account (only) needs a new login, and says why."""
    mock.call("POST", "/_mock/reset")
    gw = Gateway(workers=2, env={
        "QWENRELAY_QWEN_OAUTH_BASE_URL": mock.url,
        "QWENRELAY_TOKEN_REFRESH_RETRY_DELAY_MS": "100"})
    key = gw.add_key("c")
    ids = []
    for lifetime in (-10, 3600):        # the first is expired: refreshed
        a = mock.call("POST", "/_mock/accounts", {"lifetime": lifetime})
        p = os.path.join(gw.dir, "creds.json")
        with open(p, "w") as f:
            json.dump({"access_token": a["access_token"],
                       "refresh_token": a["refresh_token"],
                       "token_type": "Bearer",
                       "resource_url": a["resource_url"],
                       "expiry_date": a["expiry_date"]}, f)
        r = gw.cli("accounts", "import", p)
        ids.append(r.stdout)
    mock.call("POST", "/_mock/config", {"refresh_delay_ms": 1500})
    res = []
    th = threading.Thread(target=lambda: res.append(chat(gw, key)))
    th.start()
    end = time.time() + 10
    while not mock.call("GET", "/_mock/refresh_log") and \
            mock.call("GET", "/_mock/calls")["token_refresh"] == 0 and \
            time.time() < end:
        time.sleep(0.02)
    for pid in gw.worker_pids():        # the refresher among them
        os.kill(pid, signal.SIGKILL)
    th.join()
    end = time.time() + 10              # the mock rotates all the same
    while not mock.call("GET", "/_mock/refresh_log") and time.time() < end:
        time.sleep(0.05)
    mock.call("POST", "/_mock/config", {"refresh_delay_ms": 0})
    r = chat(gw, key)
    t.eq(200, r.status, "after the kill, the next request is served (by "
         "the other account)")
    lst = json.loads(gw.cli("accounts", "list", "--json").stdout or "[]")
    st = {a["status"]: a for a in lst}
    t.ok(sorted(st) == ["active", "needs_login"], "exactly the "
         "interrupted account needs a new login", lst)
    why = st.get("needs_login", {}).get("status_reason") or ""
    t.ok(why.startswith("refresh interrupted") and "accounts login" in why,
         "its reason says the refresh was interrupted, and what to do",
         why)
    t.ok("taking over from pid" in gw.logs(), "the takeover is logged")
    t.eq(200, chat(gw, key).status, "the key and the pool still work")
    gw.stop()


def test(t):
    mock = Mock()
    recipe(t, mock, clients=2, lifetime=30, workers=2)
    recipe(t, mock, clients=8, lifetime=30, workers=4)
    # 200 chats spread over ~8 s: a few lifetimes of a 3 s token
    recipe(t, mock, clients=8, lifetime=3, workers=4, pace=0.3)
    proactive_outage(t, mock)
    interrupted(t, mock)


main_guard(test)
