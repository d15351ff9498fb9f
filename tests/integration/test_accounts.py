#!/usr/bin/env python3
"""test_accounts.py: accounts, device logins and refresh, end to end.

Real lighttpd + the built binary + the mock Qwen server: CLI login (and
Ctrl-C), HTTP login polled across workers (pending, slow_down, approved,
denied, expired), the account limit before any network call, import and
its dedup (also of a stale copy after a refresh), refresh before use,
16 concurrent refreshers making one call, a killed refresher, needs_login,
the admin accounts API, and canaries: no token, device code or verifier
in any log or output.
"""
import json
import os
import re
import signal
import threading
import subprocess
import time
import urllib.parse

from qrtest import (Gateway, Mock, http, is_openai_error, main_guard, BIN)


def mint(mock, lifetime=3600):
    return mock.call("POST", "/_mock/accounts", {"lifetime": lifetime})


def write_creds(path, c):
    with open(path, "w") as f:
        json.dump({"access_token": c["access_token"],
                   "refresh_token": c["refresh_token"],
                   "token_type": "Bearer",
                   "resource_url": c["resource_url"],
                   "expiry_date": c["expiry_date"]}, f, indent=2)


def mock_refresh(mock, refresh_token):
    form = urllib.parse.urlencode({"grant_type": "refresh_token",
                                   "refresh_token": refresh_token,
                                   "client_id":
                                   "f0304373b74a44d2b584a3fb70ca9e56"})
    return http(mock.port, "POST", "/api/v1/oauth2/token", form,
                {"Content-Type": "application/x-www-form-urlencoded"})


def calls(mock):
    return mock.call("GET", "/_mock/calls")


def accounts(gw):
    r = gw.cli("accounts", "list", "--json")
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def poll_login(gw, admin, lid, until=None, timeout=15, pids=None):
    """Poll on fresh connections until the status is in until."""
    end = time.time() + timeout
    j = {}
    while time.time() < end:
        r = gw.req("GET", "/admin/api/logins/" + lid, key=admin)
        j = r.json() or {}
        if pids is not None and r.headers.get("x-qwenrelay-worker"):
            pids.add(r.headers["x-qwenrelay-worker"])
        if until is None or j.get("status") in until:
            return j
        time.sleep(0.2)
    return j


def test(t):
    outputs = []   # every CLI output and HTTP body, for the canary check
    mock = Mock()
    mock.call("POST", "/_mock/config", {"device_interval": 1})
    cfg = {"qwen_oauth_base_url": mock.url, "max_accounts": 10,
           "token_refresh_retry_delay_ms": 100}
    gw = Gateway(config=cfg, workers=3)
    admin = gw.add_key("ops", admin=True)

    # --- CLI login end to end (base URL from the environment) ---
    env = dict(gw.env)
    env["QWENRELAY_QWEN_OAUTH_BASE_URL"] = mock.url
    p = subprocess.Popen([BIN, "accounts", "login", "--label", "cli"],
                         env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    code = None
    head = ""
    for _ in range(5):
        line = p.stdout.readline()
        head += line
        m = re.search(r"User code: (\S+)", line)
        if m:
            code = m.group(1)
            break
    t.ok(code is not None and "user_code=" in head,
         "login prints the verification URL and the user code", head)
    time.sleep(1.2)
    r = mock.call("POST", "/_mock/approve", {"user_code": code})
    t.ok(r == {"ok": True}, "approved at the mock")
    out, err = p.communicate(timeout=30)
    outputs += [head, out, err]
    t.eq(0, p.returncode, "login exits 0")
    acc_id = out.strip().splitlines()[-1] if out.strip() else ""
    t.ok(re.fullmatch(r"q[0-9a-f]{8}", acc_id), "login prints the account id",
         out + err)
    t.ok("waiting for approval" in err and "left" in err,
         "countdown on stderr", err)
    lst = accounts(gw) or []
    mine = [a for a in lst if a["id"] == acc_id]
    t.ok(len(mine) == 1 and mine[0]["status"] == "active" and
         mine[0]["label"] == "cli" and mine[0]["provider"] == "qwen-oauth",
         "the account is listed active", lst)
    keys = {"id", "provider", "label", "status", "status_reason", "models",
            "expires_at", "last_used_at", "total_requests", "marks",
            "prompt_tokens", "completion_tokens", "errors"}
    t.ok(mine and keys <= set(mine[0]), "list --json has every field",
         mine and sorted(mine[0]))
    r = gw.cli("accounts", "list")
    outputs.append(r.stdout)
    t.ok(r.returncode == 0 and acc_id in r.stdout and "STATUS" in r.stdout,
         "accounts list prints a table")
    r = gw.cli("accounts", "show", acc_id)
    outputs.append(r.stdout)
    t.ok(r.returncode == 0 and json.loads(r.stdout)["id"] == acc_id,
         "accounts show ID prints its JSON")
    t.eq(1, gw.cli("accounts", "show", "qnope").returncode,
         "show of an unknown id: exit 1")

    # Ctrl-C cancels cleanly.
    p = subprocess.Popen([BIN, "accounts", "login"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    p.stdout.readline()
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    outputs += [out, err]
    t.ok(p.returncode == 130 and "cancelled" in err,
         "Ctrl-C: exit 130, 'cancelled'", (p.returncode, err))

    # --- HTTP login, polled by several workers ---
    r = gw.req("POST", "/admin/api/logins", key=admin, body={"label": "web"})
    j = r.json() or {}
    outputs.append(r.text)
    t.ok(r.status == 200 and {"login_id", "user_code", "verification_uri",
                              "verification_uri_complete", "expires_in",
                              "interval"} <= set(j),
         "POST /admin/api/logins starts a login", r.text)
    lid, ucode = j.get("login_id", ""), j.get("user_code", "")
    t.eq(1, j.get("interval"), "interval from the server is honoured")
    pids = set()
    answers = []
    t0 = time.time()

    def one_poll():
        r = gw.req("GET", "/admin/api/logins/" + lid, key=admin)
        answers.append((r.status, (r.json() or {}).get("status"),
                        r.headers.get("x-qwenrelay-worker")))
    # Rounds of 4 concurrent polls, each on a fresh connection: lighttpd
    # gives an idle worker the next request, so overlap spreads them.
    for _ in range(8):
        ths = [threading.Thread(target=one_poll) for _ in range(4)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        time.sleep(0.3)
    elapsed = time.time() - t0
    pids = {w for _, _, w in answers if w}
    t.ok(all(a[0] == 200 and a[1] == "pending" for a in answers),
         "every poll: pending", answers[:3])
    dev = mock.call("GET", "/_mock/devices?user_code=" + ucode)[0]
    t.ok(len(pids) > 1, "polls answered by more than one worker", pids)
    t.ok(1 <= len(dev["polls"]) <= elapsed / 1.0 + 1,
         "Qwen polled at most once per interval (%d polls in %.1fs)" %
         (len(dev["polls"]), elapsed))
    mock.call("POST", "/_mock/approve", {"user_code": ucode})
    j = poll_login(gw, admin, lid, ("approved", "error", "denied"))
    t.ok(j.get("status") == "approved" and
         re.fullmatch(r"q[0-9a-f]{8}", j.get("account_id", "")),
         "poll: approved with the account id", j)
    web_id = j.get("account_id")
    t.ok(any(a["id"] == web_id and a["label"] == "web"
             for a in accounts(gw) or []), "HTTP login's account is listed")
    j2 = poll_login(gw, admin, lid)
    t.ok(j2.get("status") == "approved", "a later poll still says approved")
    r = gw.req("GET", "/admin/api/logins/lnothere", key=admin)
    t.ok(r.status == 404 and is_openai_error(r), "unknown login: 404")

    # slow_down (under 400, then under 429) then pending.
    for st in (400, 429):
        mock.call("POST", "/_mock/config",
                  {"slow_down": {"count": 1, "status": st}})
        j = gw.req("POST", "/admin/api/logins", key=admin).json() or {}
        lid = j.get("login_id", "")
        end = time.time() + 6
        seen = []
        while time.time() < end:
            jj = (gw.req("GET", "/admin/api/logins/" + lid, key=admin).json()
                  or {})
            if jj.get("polled"):
                seen.append((jj.get("status"), jj.get("interval")))
            if len(seen) >= 2:
                break
            time.sleep(0.2)
        t.ok(len(seen) >= 2 and all(s == "pending" for s, _ in seen) and
             seen[0][1] == 2,
             "slow_down under %d: still pending, interval x1.5" % st, seen)
    # denied and expired
    j = gw.req("POST", "/admin/api/logins", key=admin).json() or {}
    mock.call("POST", "/_mock/deny", {"user_code": j.get("user_code")})
    jj = poll_login(gw, admin, j.get("login_id", ""), ("denied", "error",
                                                       "approved"))
    t.ok(jj.get("status") == "denied" and jj.get("message"),
         "poll: denied, with a message", jj)
    j = gw.req("POST", "/admin/api/logins", key=admin).json() or {}
    mock.call("POST", "/_mock/expire", {"user_code": j.get("user_code")})
    jj = poll_login(gw, admin, j.get("login_id", ""), ("expired", "error",
                                                       "approved"))
    t.ok(jj.get("status") == "expired", "poll: expired", jj)
    r = gw.req("POST", "/admin/api/logins", key=admin, body="{bad")
    t.ok(r.status == 400 and is_openai_error(r), "bad JSON: 400")
    r = gw.req("POST", "/admin/api/logins", key=admin, body={"label": 5})
    t.ok(r.status == 400 and is_openai_error(r), "bad label: 400")

    # --- import: real file format, twice, then a stale copy ---
    creds = mint(mock, lifetime=0)
    cpath = os.path.join(gw.dir, "oauth_creds.json")
    write_creds(cpath, creds)
    r = gw.cli("accounts", "import", cpath)
    outputs += [r.stdout, r.stderr]
    imp_id = r.stdout.strip()
    t.ok(r.returncode == 0 and re.fullmatch(r"q[0-9a-f]{8}", imp_id),
         "import adds the account", r.stderr)
    r = gw.cli("accounts", "import", cpath)
    outputs += [r.stdout, r.stderr]
    t.ok(r.returncode == 0 and "already present as " + imp_id in r.stderr,
         "importing the same file again: already present", r.stderr)
    # default path from QWEN_HOME
    qh = os.path.join(gw.dir, "qwenhome")
    os.makedirs(qh)
    write_creds(os.path.join(qh, "oauth_creds.json"), creds)
    r = gw.cli("accounts", "import", env={"QWEN_HOME": qh})
    t.ok(r.returncode == 0 and imp_id in r.stderr,
         "import reads $QWEN_HOME/oauth_creds.json", r.stderr)
    n_before = len(accounts(gw) or [])

    # Expired token refreshed by `qwenrelay refresh`.
    c0 = calls(mock)["token_refresh"]
    t1 = time.time()
    r = gw.cli("refresh")
    ms = (time.time() - t1) * 1000
    outputs += [r.stdout, r.stderr]
    t.ok(r.returncode == 0 and re.search(imp_id + r"\t.*\trefreshed\t",
                                         r.stdout),
         "refresh refreshes the expired account", r.stdout + r.stderr)
    t.eq(c0 + 1, calls(mock)["token_refresh"],
         "exactly one refresh call for the one account inside the buffer")
    t.diag("one `qwenrelay refresh` (process start, store, 1 HTTP refresh "
           "call to the mock): %.0f ms" % ms)
    a = [x for x in accounts(gw) if x["id"] == imp_id][0]
    t.ok(a["expires_at"] > time.time() * 1000 + 3000 * 1000,
         "new expiry stored")
    t.eq(400, mock_refresh(mock, creds["refresh_token"]).status,
         "the old refresh token is dead at the mock (rotated)")
    r = gw.cli("accounts", "import", cpath)
    t.ok(r.returncode == 0 and "already present as " + imp_id in r.stderr,
         "a stale copy after a refresh is recognised", r.stderr)
    t.eq(n_before, len(accounts(gw) or []), "imports added nothing")
    bad = os.path.join(gw.dir, "bad.json")
    with open(bad, "w") as f:
        f.write('{"access_token":"x","refresh_token":"","token_type":"B"}')
    r = gw.cli("accounts", "import", bad)
    t.ok(r.returncode == 1 and "expiry_date" in r.stderr,
         "an invalid creds file is refused with what it needs")

    # --- needs_login after a rejected refresh ---
    creds2 = mint(mock, lifetime=0)
    write_creds(cpath, creds2)
    nl_id = gw.cli("accounts", "import", cpath).stdout.strip()
    t.eq(200, mock_refresh(mock, creds2["refresh_token"]).status,
         "someone else refreshes that account outside the gateway")
    r = gw.cli("refresh")
    outputs += [r.stdout, r.stderr]
    t.ok(r.returncode == 1 and re.search(nl_id + r"\t.*\tneeds_login\t",
                                         r.stdout),
         "refresh: the account needs a new login, exit 1", r.stdout)
    a = [x for x in accounts(gw) or [] if x["id"] == nl_id]
    t.ok(a and a[0]["status"] == "needs_login" and
         "Invalid refresh token" in (a[0]["status_reason"] or ""),
         "needs_login with the reason, still listed", a)
    r = gw.req("GET", "/health/deep", key=admin)
    dj = (r.json() or {}).get("accounts", {})
    t.ok(dj.get("by_status", {}).get("needs_login") == 1 and
         any(x["id"] == nl_id and x["status"] == "needs_login" and
             x["status_reason"] for x in dj.get("list", [])),
         "/health/deep shows the needs_login account", dj)
    t.eq(1, gw.cli("accounts", "enable", nl_id).returncode,
         "enable of a needs_login account is refused")

    # --- admin accounts API ---
    r = gw.req("GET", "/admin/api/accounts", key=admin)
    t.ok(r.status == 200 and isinstance(r.json(), list) and
         len(r.json()) == len(accounts(gw)), "GET /admin/api/accounts")
    apikey = "sk-CANARYAPIKEY-0123456789"
    body = {"provider": "openai-compatible", "label": "local",
            "api_key": apikey, "base_url": mock.url + "/v1",
            "models": ["m1", "m2"]}
    r = gw.req("POST", "/admin/api/accounts", key=admin, body=body)
    outputs.append(r.text)
    kid = (r.json() or {}).get("id", "")
    t.ok(r.status == 201 and kid.startswith("k") and
         r.json()["models"] == ["m1", "m2"], "POST adds an API-key account",
         r.text)
    r = gw.req("POST", "/admin/api/accounts", key=admin, body=body)
    t.ok(r.status == 409 and is_openai_error(r) and kid in r.text,
         "the same key again: 409 naming the account")
    for b, what in (({"provider": "qwen-oauth", "api_key": "x"}, "oauth"),
                    ({"provider": "nope", "api_key": "x"}, "unknown"),
                    ({"provider": "openai-compatible", "api_key": "x"},
                     "no base_url"),
                    ({"provider": "openai-compatible", "api_key": "x",
                      "base_url": "http://example.com/v1"}, "insecure url"),
                    ({"provider": "dashscope"}, "no api_key"),
                    ({"provider": "dashscope", "api_key": "x",
                      "models": "m"}, "models not a list"),
                    ([1, 2], "not an object")):
        r = gw.req("POST", "/admin/api/accounts", key=admin, body=b)
        t.ok(r.status == 400 and is_openai_error(r),
             "POST %s: 400" % what, r.text)
    r = gw.req("PATCH", "/admin/api/accounts/" + kid, key=admin,
               body={"label": "renamed", "enabled": False})
    j = r.json() or {}
    t.ok(r.status == 200 and j.get("label") == "renamed" and
         j.get("status") == "disabled", "PATCH label and enabled=false", r.text)
    r = gw.req("PATCH", "/admin/api/accounts/" + kid, key=admin,
               body={"enabled": True})
    t.eq("active", (r.json() or {}).get("status"), "PATCH enabled=true")
    r = gw.req("PATCH", "/admin/api/accounts/" + kid, key=admin,
               body={"enabled": "yes"})
    t.eq(400, r.status, "PATCH with a bad type: 400")
    r = gw.req("GET", "/admin/api/accounts/" + kid, key=admin)
    t.ok(r.status == 200 and apikey not in r.text, "GET one, no key shown")
    t.eq(200, gw.req("DELETE", "/admin/api/accounts/" + kid,
                     key=admin).status, "DELETE")
    t.eq(404, gw.req("GET", "/admin/api/accounts/" + kid, key=admin).status,
         "deleted account: 404")
    t.eq(404, gw.req("DELETE", "/admin/api/accounts/" + kid,
                     key=admin).status, "DELETE twice: 404")
    # CLI disable/enable/remove
    t.eq(0, gw.cli("accounts", "disable", web_id).returncode, "disable")
    t.ok(any(a["id"] == web_id and a["status"] == "disabled"
             for a in accounts(gw)), "disabled is listed")
    t.eq(0, gw.cli("accounts", "enable", web_id).returncode, "enable")
    t.eq(0, gw.cli("accounts", "remove", web_id).returncode, "remove")
    t.eq(1, gw.cli("accounts", "remove", web_id).returncode,
         "remove twice: exit 1")

    # --- canaries: nothing secret in logs or outputs ---
    secrets = [creds["access_token"], creds["refresh_token"],
               creds2["access_token"], creds2["refresh_token"], apikey]
    for d in mock.call("GET", "/_mock/devices"):
        secrets.append(d["device_code"])
    for q in mock.call("GET", "/_mock/requests?path=/api/v1/oauth2/token"):
        b = q.get("body") or {}
        if isinstance(b, dict):
            for k in ("code_verifier", "device_code", "refresh_token"):
                if b.get(k):
                    secrets.append(b[k])
    secrets = [s for s in set(secrets) if s]
    logs = gw.logs()
    blob = logs + "\n".join(o or "" for o in outputs)
    leaked = [s[:8] + "..." for s in secrets if s in blob]
    t.ok(len(secrets) > 8 and not leaked,
         "no token, API key, device code or verifier in %d log bytes and "
         "the outputs (%d canaries)" % (len(blob), len(secrets)), leaked)
    with open(os.path.join(gw.state_dir, "data.mdb"), "rb") as f:
        mdb = f.read()
    leaked = [s[:8] for s in secrets if s.encode() in mdb]
    t.ok(not leaked, "no canary in data.mdb in clear", leaked)

    # --- the limit: refused before any network call ---
    mock.call("POST", "/_mock/reset")
    lim = Gateway(config={"qwen_oauth_base_url": mock.url,
                          "max_accounts": 2}, workers=1)
    ladmin = lim.add_key("ops", admin=True)
    for _ in range(2):
        write_creds(cpath, mint(mock))
        t.eq(0, lim.cli("accounts", "import", cpath).returncode,
             "import up to the limit")
    write_creds(cpath, mint(mock))
    r = lim.cli("accounts", "import", cpath)
    t.ok(r.returncode == 1 and "2 of 2" in r.stderr and
         "accounts remove" in r.stderr, "3rd import refused, says how to fix",
         r.stderr)
    dc = calls(mock)["device_code"]
    r = lim.cli("accounts", "login")
    t.ok(r.returncode == 1 and "accounts remove" in r.stderr,
         "CLI login refused at the limit", r.stderr)
    r = lim.req("POST", "/admin/api/logins", key=ladmin)
    t.ok(r.status == 409 and is_openai_error(r) and
         r.json()["error"]["code"] == "account_limit_reached" and
         "accounts remove" in r.text, "HTTP login: 409 account_limit_reached",
         r.text)
    r = lim.req("POST", "/admin/api/accounts", key=ladmin,
                body={"provider": "dashscope", "api_key": "sk-x"})
    t.ok(r.status == 409 and
         (r.json() or {}).get("error", {}).get("code") ==
         "account_limit_reached", "API-key account: 409 at the limit")
    t.eq(dc, calls(mock)["device_code"], "no network call was made")
    lim.stop()

    # --- 16 concurrent refreshers, one call ---
    mock.call("POST", "/_mock/reset")
    mock.call("POST", "/_mock/config", {"refresh_delay_ms": 500})
    cc = Gateway(config={"qwen_oauth_base_url": mock.url,
                         "token_refresh_retry_delay_ms": 100}, workers=1)
    c3 = mint(mock, lifetime=0)
    write_creds(cpath, c3)
    cid = cc.cli("accounts", "import", cpath).stdout.strip()
    procs = [subprocess.Popen([BIN, "refresh"], env=cc.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(16)]
    res = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in procs]
    t.ok(all(rc == 0 for rc, _, _ in res),
         "all 16 concurrent refreshes exit 0",
         [x for x in res if x[0] != 0][:2])
    t.eq(1, calls(mock)["token_refresh"],
         "16 concurrent refreshes made exactly one refresh call")
    t.ok(sum("refreshed" in o for _, o, _ in res) >= 1 and
         all(cid in o for _, o, _ in res), "all of them got the new token")
    t.eq(400, mock_refresh(mock, c3["refresh_token"]).status,
         "the old refresh token is rejected")
    r = cc.cli("refresh", "--all")
    t.ok(r.returncode == 0 and "refreshed" in r.stdout and
         calls(mock)["token_refresh"] == 3,
         "the new refresh token works (refresh --all)", r.stdout + r.stderr)

    # --- a refresher killed mid-way, and right after a refresh ---
    mock.call("POST", "/_mock/config",
              {"refresh_delay_ms": 1500,
               "refresh_fail": {"count": 1, "status": 500}})
    p = subprocess.Popen([BIN, "refresh", "--all"], env=cc.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    n0 = calls(mock)["token_refresh"]
    end = time.time() + 5
    while calls(mock)["token_refresh"] == n0 and time.time() < end:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    mock.call("POST", "/_mock/config", {"refresh_delay_ms": 0})
    time.sleep(1.6)   # let the mock consume the injected failure
    t1 = time.time()
    r = cc.cli("refresh", "--all")
    t.ok(r.returncode == 0 and "refreshed" in r.stdout and
         time.time() - t1 < 10,
         "the lease of a killed refresher is taken over at once",
         r.stdout + r.stderr)
    p = subprocess.Popen([BIN, "refresh", "--all"], env=cc.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    line = p.stdout.readline()
    p.send_signal(signal.SIGKILL)
    p.wait()
    t.ok("refreshed" in line, "a refresher printed its line, then was "
         "killed", line)
    r = cc.cli("refresh", "--all")
    t.ok(r.returncode == 0 and "refreshed" in r.stdout,
         "the rotated refresh token survived the kill", r.stdout + r.stderr)
    blob = cc.logs() + "".join(o + e for _, o, e in res)
    t.ok(c3["refresh_token"] not in blob and c3["access_token"] not in blob,
         "no token in the refreshers' logs or outputs")

    # --- transient refresh failures are retried with backoff ---
    mock.call("POST", "/_mock/config",
              {"refresh_fail": {"count": 2, "status": 503}})
    n0 = calls(mock)["token_refresh"]
    r = cc.cli("refresh", "--all")
    t.ok(r.returncode == 0 and "refreshed" in r.stdout and
         calls(mock)["token_refresh"] == n0 + 3,
         "two 503s, then success on the third attempt", r.stdout + r.stderr)
    mock.call("POST", "/_mock/config",
              {"refresh_fail": {"count": 3, "status": 500}})
    r = cc.cli("refresh", "--all")
    a = [x for x in accounts(cc) if x["id"] == cid]
    t.ok(r.returncode == 1 and "failed" in r.stdout and a and
         a[0]["status"] == "active" and a[0]["last_error"],
         "three 500s: exit 1, the account stays active with last_error",
         (r.stdout, a))

    # --- the serve pool's keeper refreshes proactively ---
    kp = Gateway(config={"qwen_oauth_base_url": mock.url,
                         "proactive_refresh_check_interval_seconds": 1},
                 serve=True, workers=1)
    write_creds(cpath, mint(mock, lifetime=60))
    kid = kp.cli("accounts", "import", cpath).stdout.strip()
    end = time.time() + 8
    a = {}
    while time.time() < end:
        a = ([x for x in accounts(kp) or [] if x["id"] == kid] or [{}])[0]
        if a.get("refreshed_at"):
            break
        time.sleep(0.2)
    t.ok(a.get("refreshed_at") and a.get("expires_at", 0) >
         time.time() * 1000 + 3000 * 1000,
         "the keeper refreshed a token inside the buffer", a)
    kp._stop_pool()
    kp.stop()

    # --- missing seal.key with accounts present ---
    os.unlink(os.path.join(cc.state_dir, "seal.key"))
    r = cc.cli("refresh")
    t.ok(r.returncode == 1 and "seal.key" in r.stderr and
         "restore" in r.stderr, "a missing seal.key is a clear error",
         r.stderr)
    kf = os.path.join(cc.state_dir, "seal.key")
    fd = os.open(kf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    r = cc.cli("accounts", "import", cpath)
    t.ok(r.returncode == 1 and "does not open" in r.stderr and
         "restore" in r.stderr, "a wrong seal.key is a clear error", r.stderr)
    a = [x for x in accounts(cc) or [] if x["id"] == cid]
    t.ok(a and a[0]["status"] == "active",
         "a wrong key never marks accounts needs_login")
    cc.stop()
    gw.stop()


main_guard(test)
