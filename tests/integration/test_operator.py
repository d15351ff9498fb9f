#!/usr/bin/env python3
"""test_operator.py: what the operator steers and sees, end to end.

Real lighttpd + the built binary (3 workers) + the mock Qwen server:
keys over the admin API (create shown once, list without secrets, revoke
at once on every worker, client keys refused), per-key limits (rpm and tpm
over a sliding minute shared by the workers, model lists, /v1/models per
key), GET /metrics (auth, `promtool check metrics`, the families, counters
kept across worker restarts, metrics_public), the JSON access log (fields,
no interleaving under concurrent writers, reopen on SIGHUP), and a canary:
no key or token in /metrics, the access log, the page or any admin answer.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import qrtest
from qrtest import Gateway, Mock, is_openai_error, main_guard

MODEL = "coder-model"
OTHER = "qwen3-coder-plus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def chat(gw, key, model=MODEL, text="hello there friend"):
    return gw.req("POST", "/v1/chat/completions", key=key, body={
        "model": model, "messages": [{"role": "user", "content": text}]})


def metric(text, name, **labels):
    """The value of one sample, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(4))
    return None


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return []


def test(t):
    answers = []        # every admin answer, page and scrape: canary input
    mock = Mock()

    # The gateway, with an access log in a directory of its own.
    adir = tempfile.mkdtemp(prefix="qralog.")
    qrtest._cleanups.append(lambda: shutil.rmtree(adir, ignore_errors=True))
    alog = os.path.join(adir, "access.jsonl")
    gw = Gateway(config={"access_log": alog,
                         "qwen_oauth_base_url": mock.url}, workers=3)
    admin = gw.add_key("ops", admin=True)
    client = gw.add_key("client")
    secrets = [admin, client]
    for i in range(2):
        k = f"sk-canary-acct{i}-{gw.port}"
        r = gw.add_mock_account(mock, k, f"a{i}", f"{MODEL},{OTHER}")
        t.ok(r.returncode == 0, f"account a{i} added", r.stderr)
        secrets.append(k)
    # A Qwen OAuth account too, so its tokens are canaries.
    creds, r = gw.import_mock_account(mock, 7200, "oauth_creds.json")
    t.ok(r.returncode == 0, "qwen-oauth account imported", r.stderr)
    secrets += [creds["access_token"], creds["refresh_token"]]

    # ---- keys over the admin API ----------------------------------------
    r = gw.req("GET", "/admin/api/keys")
    t.eq(401, r.status, "GET /admin/api/keys without a key: 401")
    r = gw.req("GET", "/admin/api/keys", key=client)
    t.ok(r.status == 403 and is_openai_error(r),
         "GET /admin/api/keys with a client key: 403", r.text)
    r = gw.req("POST", "/admin/api/keys", key=client, body={"name": "x"})
    t.eq(403, r.status, "POST /admin/api/keys with a client key: 403")
    r = gw.req("POST", "/admin/api/keys", key=admin, body={"name": "api1"})
    answers.append(r.text)
    j = r.json() or {}
    newkey = j.get("key", "")
    t.ok(r.status == 201 and j.get("name") == "api1" and
         re.fullmatch(r"qr-[A-Za-z0-9_-]{43}", newkey or "") is not None,
         "POST /admin/api/keys: 201 {name, key}", r.text)
    t.eq("no-store", r.headers.get("cache-control"), "the new key: no-store")
    answers[-1] = answers[-1].replace(newkey, "")  # shown once, on purpose
    secrets.append(newkey)
    t.eq(200, chat(gw, newkey).status, "the new key works at once")
    r = gw.req("GET", "/admin/api/keys", key=admin)
    answers.append(r.text)
    names = [k.get("name") for k in (r.json() or [])]
    t.ok(r.status == 200 and {"ops", "client", "api1"} <= set(names) and
         all("key" not in k and "hash" not in k for k in r.json()),
         "GET /admin/api/keys lists names, never a key", r.text)
    api1 = [k for k in r.json() if k["name"] == "api1"][0]
    t.ok(api1.get("requests", 0) >= 1, "the list counts the key's requests",
         api1)
    for body, what in ((["x"], "not an object"), ({"name": "a b"}, "bad name"),
                       ({"name": "z", "rpm": 0}, "rpm 0"),
                       ({"name": "z", "tpm": "5"}, "tpm as a string"),
                       ({"name": "z", "models": "a,b"}, "models not an array"),
                       ({"name": "z", "models": []}, "models empty"),
                       ({"name": "z", "admin": "yes"}, "admin not a bool")):
        r = gw.req("POST", "/admin/api/keys", key=admin, body=body)
        t.ok(r.status == 400 and is_openai_error(r),
             f"POST /admin/api/keys {what}: 400", r.text)
    r = gw.req("POST", "/admin/api/keys", key=admin, body={"name": "api1"})
    t.ok(r.status == 409 and is_openai_error(r), "a taken name: 409", r.text)
    r = gw.req("DELETE", "/admin/api/keys/api1", key=client)
    t.eq(403, r.status, "DELETE with a client key: 403")
    r = gw.req("DELETE", "/admin/api/keys/api1", key=admin)
    answers.append(r.text)
    t.eq(200, r.status, "DELETE /admin/api/keys/api1")
    codes = {chat(gw, newkey).status for _ in range(6)}
    t.eq({401}, codes, "a revoked key is refused at once by every worker")
    r = gw.req("DELETE", "/admin/api/keys/api1", key=admin)
    t.eq(404, r.status, "revoking it again: 404")
    r = gw.req("DELETE", "/admin/api/keys/..", key=admin)
    t.ok(r.status in (400, 404), "a bad name in the path is refused", r.text)

    # ---- per-key limits -------------------------------------------------
    r = gw.cli("keys", "add", "lim", "--rpm", "2")
    t.ok(r.returncode == 0, "keys add lim --rpm 2", r.stderr)
    lim = r.stdout.strip()
    secrets.append(lim)
    codes = [chat(gw, lim).status for _ in range(2)]
    r = chat(gw, lim)
    j = r.json() or {}
    t.ok(codes == [200, 200] and r.status == 429 and
         j.get("error", {}).get("code") == "rate_limit_exceeded" and
         r.headers.get("retry-after", "").isdigit() and
         1 <= int(r.headers["retry-after"]) <= 60,
         "rpm 2: the 3rd request in the minute is 429 rate_limit_exceeded "
         "with Retry-After, across workers", (codes, r.status, r.text))
    t.eq(200, chat(gw, client).status, "another key is unaffected")
    r = gw.req("POST", "/admin/api/keys", key=admin,
               body={"name": "tk", "tpm": 5})
    tk = (r.json() or {}).get("key", "")
    secrets.append(tk)
    t.eq(201, r.status, "POST /admin/api/keys with tpm")
    first = chat(gw, tk)
    # The worker counts the tokens just after the answer went out.
    time.sleep(0.5)
    r = chat(gw, tk)
    t.ok(first.status == 200 and r.status == 429 and
         (r.json() or {}).get("error", {}).get("code") ==
         "rate_limit_exceeded" and r.headers.get("retry-after", "").isdigit(),
         "tpm 5: past the tokens of the minute, 429", (first.status, r.text))
    r = gw.cli("keys", "add", "mk", "--models", OTHER)
    mk = r.stdout.strip()
    secrets.append(mk)
    r = chat(gw, mk, MODEL)
    t.ok(r.status == 403 and (r.json() or {}).get("error", {}).get("code") ==
         "model_not_allowed", "a model outside --models: 403 "
         "model_not_allowed", r.text)
    t.eq(200, chat(gw, mk, OTHER).status, "a listed model: 200")
    r = gw.req("GET", "/v1/models", key=mk)
    ids = [m["id"] for m in (r.json() or {}).get("data", [])]
    t.eq([OTHER], ids, "/v1/models for that key lists only what it may use")
    t.eq(404, gw.req("GET", "/v1/models/" + MODEL, key=mk).status,
         "/v1/models/{id} outside the list: 404")
    r = gw.req("GET", "/v1/models", key=client)
    ids = [m["id"] for m in (r.json() or {}).get("data", [])]
    t.ok(MODEL in ids and OTHER in ids, "other keys see every model", ids)
    for bad in (["--rpm", "0"], ["--tpm", "x"], ["--models", "a,,b"],
                ["--models", "a\tb"]):
        r = gw.cli("keys", "add", "bad", *bad)
        t.ok(r.returncode == 2 and "qwenrelay:" in r.stderr,
             f"keys add {' '.join(bad)}: refused with a reason", r.stderr)
    r = gw.cli("keys", "list", "--json")
    lst = {k["name"]: k for k in json.loads(r.stdout or "[]")}
    t.ok(lst.get("lim", {}).get("rpm") == 2 and
         lst.get("tk", {}).get("tpm") == 5 and
         lst.get("mk", {}).get("models") == [OTHER],
         "keys list --json shows the limits", r.stdout)

    # A quota answer on one account: a rotation by reason "quota".
    mock.call("POST", "/_mock/fail", {"path": "/v1/chat/completions",
                                      "status": 429, "count": 1})
    r = chat(gw, client)
    t.eq(200, r.status, "a quota answer rotates to another account")

    # ---- /metrics --------------------------------------------------------
    t.eq(401, gw.req("GET", "/metrics").status, "/metrics without a key: 401")
    t.eq(403, gw.req("GET", "/metrics", key=client).status,
         "/metrics with a client key: 403")
    r = gw.req("GET", "/metrics", key=admin)
    answers.append(r.text)
    t.ok(r.status == 200 and r.headers.get("content-type", "").startswith(
        "text/plain; version=0.0.4"), "/metrics with the admin key: 200 "
        "text/plain 0.0.4", r.headers)
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=r.text,
                       capture_output=True, text=True, timeout=60)
    t.ok(p.returncode == 0, "promtool check metrics accepts it",
         p.stdout + p.stderr + "\n" + r.text[:1500])
    m = r.text
    n200 = metric(m, "qwenrelay_http_requests_total",
                  route="/v1/chat/completions", code="200")
    t.ok(n200 is not None and n200 >= 6, "http_requests_total by route and "
         "code", n200)
    t.ok((metric(m, "qwenrelay_http_requests_total",
                 route="/v1/chat/completions", code="429") or 0) >= 2,
         "429s are counted under their code")
    t.ok((metric(m, "qwenrelay_key_requests_total", key="client") or 0) >= 2,
         "key_requests_total{key}")
    t.ok((metric(m, "qwenrelay_tokens_total", direction="input") or 0) > 0 and
         (metric(m, "qwenrelay_tokens_total", direction="output") or 0) > 0,
         "tokens_total{direction}")
    t.ok((metric(m, "qwenrelay_upstream_request_duration_seconds_count",
                 provider="openai-compatible") or 0) >= 6 and
         metric(m, "qwenrelay_upstream_request_duration_seconds_bucket",
                provider="openai-compatible", le="+Inf") is not None,
         "upstream duration histogram by provider")
    t.ok((metric(m, "qwenrelay_rotations_total", reason="quota") or 0) >= 1,
         "rotations_total{reason=quota}")
    t.ok(metric(m, "qwenrelay_refreshes_total", result="ok") is not None,
         "refreshes_total{result}")
    st = [l for l in m.splitlines()
          if l.startswith("qwenrelay_account_status{") and l.endswith(" 1")]
    t.ok(len(st) == 3 and any('provider="qwen-oauth"' in l for l in st),
         "account_status: one current status per account", st)
    t.ok(re.search(r'^qwenrelay_account_token_expiry_seconds\{account="[^"]+"\}'
                   r' \d+$', m, re.M) is not None,
         "account_token_expiry_seconds for the OAuth account")
    t.ok(metric(m, "qwenrelay_requests_in_flight") is not None and
         metric(m, "qwenrelay_requests_capacity") is not None,
         "requests in flight and capacity")
    # Counters live in the stats env: a killed worker loses nothing.
    before = metric(m, "qwenrelay_http_requests_total",
                    route="/v1/chat/completions", code="200")
    for pid in gw.worker_pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(1.0)
    r = None
    for _ in range(50):
        r = gw.req("GET", "/metrics", key=admin)
        if r.status == 200:
            break
        time.sleep(0.2)
    after = metric(r.text, "qwenrelay_http_requests_total",
                   route="/v1/chat/completions", code="200")
    t.ok(after is not None and before is not None and after >= before,
         "counters survive worker restarts", (before, after))

    # ---- access log -----------------------------------------------------
    lines = read_lines(alog)
    recs = []
    for l in lines:
        try:
            recs.append(json.loads(l))
        except ValueError:
            recs.append(None)
    t.ok(lines and all(isinstance(x, dict) for x in recs),
         "access log: one JSON object per line", lines[:5])
    fields = {"time", "key", "method", "route", "model", "account", "status",
              "upstream_status", "latency_ms", "input_tokens",
              "output_tokens", "attempts"}
    t.ok(all(fields <= set(x) for x in recs if x),
         "every line has every field", recs[:2])
    ok200 = [x for x in recs if x and x["route"] == "/v1/chat/completions"
             and x["status"] == 200]
    t.ok(ok200 and all(x["model"] and x["account"] and
                       x["upstream_status"] == 200 and x["attempts"] >= 1 and
                       x["input_tokens"] > 0 and x["key"] for x in ok200),
         "a relayed request logs model, account, upstream status, tokens, "
         "attempts", ok200[:2])
    t.ok(any(x and x["attempts"] == 2 for x in ok200),
         "the rotated request logs 2 attempts")
    t.ok(any(x and x["status"] == 429 and x["key"] == "lim" for x in recs),
         "refused requests are logged too")
    # Concurrent writers: every line stays whole.
    n0 = len(lines)

    def burst():
        for _ in range(10):
            gw.req("GET", "/v1/models", key=client)
    ths = [threading.Thread(target=burst) for _ in range(6)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    time.sleep(0.3)
    lines = read_lines(alog)
    good = 0
    for l in lines[n0:]:
        try:
            good += isinstance(json.loads(l), dict)
        except ValueError:
            pass
    t.ok(len(lines) - n0 >= 60 and good == len(lines) - n0,
         "60 concurrent requests on 3 workers: whole lines only",
         (len(lines) - n0, good))
    # logrotate: move the file, SIGHUP the workers, a new file starts.
    os.rename(alog, alog + ".1")
    pids = gw.worker_pids()
    for pid in pids:
        os.kill(pid, signal.SIGHUP)
    time.sleep(0.5)
    for _ in range(6):
        gw.req("GET", "/health")
    time.sleep(0.3)
    new = read_lines(alog)
    t.ok(len(new) >= 6 and all(json.loads(l) for l in new),
         "after SIGHUP the workers write to the new file", (pids, new[:3]))
    t.ok(all(p in gw.worker_pids() for p in pids),
         "SIGHUP does not end a worker")

    # ---- metrics_public ---------------------------------------------------
    pub = Gateway(config={"metrics_public": True})
    r = pub.req("GET", "/metrics")
    t.ok(r.status == 200 and "qwenrelay_http_requests_total" in r.text,
         "metrics_public: /metrics without a key", r.status)
    pub.stop()

    # A device login's answers: no device code in them.
    r = gw.req("POST", "/admin/api/logins", key=admin, body={"label": "c"})
    answers.append(r.text)
    lid = (r.json() or {}).get("login_id", "")
    answers.append(gw.req("GET", "/admin/api/logins/" + lid, key=admin).text)
    devs = [d["device_code"] for d in mock.call("GET", "/_mock/devices")
            if d.get("device_code")]
    t.ok(r.status in (200, 201) and len(devs) == 1,
         "a device login started (its device code is a canary too)", r.text)
    secrets += devs

    # ---- the page and every answer: the canary ---------------------------
    for path in ("/admin", "/admin/app.js", "/admin/app.css"):
        answers.append(gw.req("GET", path).text)
    for path in ("/admin/api/accounts", "/admin/api/keys", "/metrics",
                 "/health/deep"):
        answers.append(gw.req("GET", path, key=admin).text)
    blob = "\n".join(answers) + "\n".join(read_lines(alog)) + \
        "\n".join(read_lines(alog + ".1"))
    leaked = [s[:12] for s in secrets if s and s in blob]
    t.ok(not leaked and len(secrets) >= 11,
         "no key or token in /metrics, the access log, the page or any "
         "admin answer", leaked)
    gw.stop()


if __name__ == "__main__":
    main_guard(test)
