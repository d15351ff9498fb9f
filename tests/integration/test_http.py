"""test_http.py: the foundation through a real lighttpd.

Health, auth (Bearer, x-api-key), 401/403/404/405, CORS preflight, 413,
keys CLI, config check, prefix mounting, the serve pool (respawn, drain),
503 when the store cannot be opened, auth_disabled.
"""
import os
import re
import signal
import time

from qrtest import (Gateway, http, is_openai_error, main_guard, BIN)
import subprocess


def test(t):
    gw = Gateway(config={"max_body_bytes": 4096,
                         "cors_allowed_origins": ["http://ui.example"]})

    r = gw.req("GET", "/health")
    t.eq(200, r.status, "GET /health is 200 without a key")
    j = r.json() or {}
    t.ok(j.get("status") == "ok" and "version" in j and
         "uptime_seconds" in j, "health body has status, version, uptime")
    t.eq("application/json", r.headers.get("content-type"),
         "health is JSON")
    t.eq("nosniff", r.headers.get("x-content-type-options"),
         "nosniff on every response")
    t.eq(200, gw.req("GET", "/v1/health").status, "GET /v1/health is 200")

    r = gw.req("GET", "/v1/models")
    t.ok(r.status == 401 and is_openai_error(r),
         "/v1/models without a key: 401 OpenAI error", r.text)

    # keys CLI
    kr = gw.cli("keys", "add", "alice")
    key = kr.stdout.strip()
    t.ok(kr.returncode == 0 and re.fullmatch(r"qr-[A-Za-z0-9_-]{43}", key),
         "keys add prints one qr- key on stdout", kr.stdout + kr.stderr)
    t.ok("only this once" in kr.stderr, "keys add says the key is shown once")
    admin = gw.add_key("ops", admin=True)
    t.eq(1, gw.cli("keys", "add", "alice").returncode,
         "duplicate key name refused")
    t.eq(2, gw.cli("keys", "add").returncode, "keys add without NAME: usage")
    t.eq(1, gw.cli("keys", "add", "bad/name").returncode,
         "invalid key name refused")

    r = gw.req("GET", "/v1/models", key=key)
    t.ok(r.status in (200, 404) and r.status != 401,
         "a key from 'keys add' reaches the route", r.status)
    r = gw.req("GET", "/v1/models", headers={"x-api-key": key})
    t.ok(r.status != 401, "x-api-key header works too")
    r = gw.req("GET", "/v1/models", key=key + "x")
    t.ok(r.status == 401 and is_openai_error(r), "wrong key: 401")
    r = gw.req("GET", "/v1/models", headers={"Authorization": "Basic " + key})
    t.eq(401, r.status, "non-Bearer Authorization is refused")

    r = gw.req("GET", "/v1/does-not-exist", key=key)
    t.ok(r.status == 404 and is_openai_error(r), "unknown /v1 path: 404 JSON")
    r = gw.req("GET", "/nothing")
    t.ok(r.status == 404 and is_openai_error(r), "unknown path: 404 JSON")
    r = gw.req("POST", "/health")
    t.ok(r.status == 405 and "GET" in r.headers.get("allow", ""),
         "wrong method: 405 with Allow", r.headers)
    t.ok(is_openai_error(r), "405 body is an OpenAI error")

    r = gw.req("GET", "/health/deep", key=key)
    t.ok(r.status == 403 and is_openai_error(r), "deep health: 403 for a "
         "non-admin key")
    r = gw.req("GET", "/v1/health/deep", key=admin)
    j = r.json() or {}
    t.ok(r.status == 200 and j.get("store", {}).get("client_keys") == 2 and
         j.get("worker", {}).get("pid"), "deep health with admin key", r.text)
    r = gw.req("GET", "/admin/anything", key=key)
    t.eq(403, r.status, "/admin/* needs an admin key")

    # CORS
    r = gw.req("OPTIONS", "/v1/chat/completions",
               headers={"Origin": "http://ui.example",
                        "Access-Control-Request-Method": "POST"})
    t.ok(r.status == 204 and r.headers.get("access-control-allow-origin") ==
         "http://ui.example", "preflight from an allowed origin", r.headers)
    r = gw.req("OPTIONS", "/v1/chat/completions",
               headers={"Origin": "http://evil.example"})
    t.ok("access-control-allow-origin" not in r.headers,
         "no CORS grant for other origins")

    # Body limit: 413 before routing, whatever the route.
    r = gw.req("POST", "/v1/chat/completions", key=key, body="x" * 5000,
               headers={"Content-Type": "application/json"})
    t.ok(r.status == 413 and is_openai_error(r), "body over max_body_bytes: "
         "413", r.status)
    r = gw.req("POST", "/nothing", body="x" * 5000)
    t.eq(413, r.status, "413 comes before routing")

    # keys list / revoke
    kl = gw.cli("keys", "list")
    t.ok(kl.returncode == 0 and "alice" in kl.stdout and key not in kl.stdout,
         "keys list shows names, never keys")
    kj = gw.cli("keys", "list", "--json")
    t.ok('"last_used_at"' in kj.stdout and '"admin"' in kj.stdout,
         "keys list --json")
    t.eq(0, gw.cli("keys", "revoke", "alice").returncode, "keys revoke")
    t.eq(401, gw.req("GET", "/v1/models", key=key).status,
         "a revoked key is refused")
    t.eq(1, gw.cli("keys", "revoke", "alice").returncode,
         "revoking twice fails")
    t.ok(key not in gw.logs() and admin not in gw.logs(),
         "no key appears in any log")

    # CLI usage and config check
    t.eq(2, gw.cli("frobnicate").returncode, "unknown subcommand: exit 2")
    t.eq(2, gw.cli("serve", "--bogus").returncode, "bad flag: exit 2")
    c = gw.cli("config", "check")
    t.ok(c.returncode == 0 and '"max_body_bytes": 4096' in c.stdout,
         "config check prints the effective config", c.stdout[-300:])
    c = gw.cli("config", "check", env={"QWENRELAY_MAX_ACOUNTS": "3"})
    t.ok(c.returncode == 1 and "QWENRELAY_MAX_ACOUNTS" in c.stderr,
         "config check names an unknown key", c.stderr)
    c = gw.cli("config", "check", env={"QWENRELAY_WORKERS": "zero"})
    t.ok(c.returncode == 1 and "workers" in c.stderr, "bad value named")
    c = gw.cli("config", "check", env={
        "QWENRELAY_QWEN_OAUTH_BASE_URL": "https://u:secret@h.example/x"})
    t.ok(c.returncode == 0 and "secret" not in c.stdout,
         "config check masks credentials in URLs")
    v = gw.cli("version")
    t.ok(v.returncode == 0 and v.stdout.startswith("qwenrelay "), "version")
    p = subprocess.run([BIN], stdin=subprocess.DEVNULL, capture_output=True)
    t.eq(2, p.returncode, "no socket on stdin: usage, exit 2")

    st = os.stat(gw.state_dir)
    t.eq(0o700, st.st_mode & 0o777, "state_dir is 0700")
    t.eq(0o600, os.stat(os.path.join(gw.state_dir, "data.mdb")).st_mode & 0o777,
         "data.mdb is 0600")
    gw.stop()

    # Mounted under a prefix.
    pg = Gateway(prefix="/qwenrelay/")
    t.eq(200, pg.req("GET", "/qwenrelay/health").status,
         "mounted at /qwenrelay/: /qwenrelay/health is 200")
    k2 = pg.add_key("k2")
    r = pg.req("GET", "/qwenrelay/v1/nothing", key=k2)
    t.ok(r.status == 404 and is_openai_error(r),
         "prefix-mounted /v1 path routes with auth")
    pg.stop()

    # Store cannot be opened: 503 from /health, with the reason.
    bad = Gateway(env={"QWENRELAY_STATE_DIR": "/proc/qwenrelay-nope"})
    r = bad.req("GET", "/health")
    t.ok(r.status == 503 and (r.json() or {}).get("status") == "error",
         "health is 503 when the store cannot be opened", r.text)
    bad.stop()

    # auth_disabled: no key needed, and a warning in the log.
    od = Gateway(config={"auth_disabled": True})
    r = od.req("GET", "/v1/nothing")
    t.eq(404, r.status, "auth_disabled: /v1 reachable without a key")
    time.sleep(0.2)
    t.ok("auth_disabled" in od.logs(), "auth_disabled logs a warning")
    od.stop()

    # client_rate_limit_rpm: the 4th request in a minute is 429, any worker.
    rl = Gateway(config={"client_rate_limit_rpm": 3}, workers=3)
    rk = rl.add_key("limited")
    other = rl.add_key("other")
    codes = [rl.req("GET", "/v1/nothing", key=rk).status for _ in range(4)]
    last = rl.req("GET", "/v1/nothing", key=rk)
    t.ok(codes[:3] == [404] * 3 and codes[3] == 429 and
         last.headers.get("retry-after", "").isdigit() and
         is_openai_error(last), "client_rate_limit_rpm: 429 past the limit",
         codes)
    t.eq(404, rl.req("GET", "/v1/nothing", key=other).status,
         "another key has its own window")
    rl.stop()

    # serve: a prefork pool behind lighttpd.
    sv = Gateway(serve=True, workers=3)
    t.eq(200, sv.req("GET", "/health").status, "serve pool answers /health")
    time.sleep(0.3)
    pids = sv.worker_pids()
    t.eq(5, len(pids), "serve runs a master, a keeper and 3 workers")
    workers = [p for p in pids if p != sv.pool.pid]
    if workers:
        os.kill(workers[0], signal.SIGKILL)
        end = time.time() + 5
        while time.time() < end:
            now = [p for p in sv.worker_pids() if p != sv.pool.pid]
            if len(now) == 4 and workers[0] not in now:
                break
            time.sleep(0.1)
        t.ok(len(now) == 4 and workers[0] not in now,
             "a killed worker is respawned")
    t.eq(200, sv.req("GET", "/health").status, "pool still answers")
    sv.pool.send_signal(signal.SIGTERM)
    try:
        rc = sv.pool.wait(10)
    except subprocess.TimeoutExpired:
        rc = None
    t.eq(0, rc, "SIGTERM drains the pool and exits 0")
    time.sleep(0.2)
    t.eq([], sv.worker_pids(), "no worker outlives the master")
    sv.stop()


main_guard(test)
