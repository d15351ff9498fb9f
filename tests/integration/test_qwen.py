"""test_qwen.py: qwen-oauth accounts on the wire, through lighttpd and the
mock: what arrives at the mock (headers and body adjustments of
qwen-protocol.md section 6), base URL from resource_url, refresh before
use, 401 -> one refresh -> success, 16 concurrent requests with an expired
token -> exactly one refresh, needs_login leaves rotation.
"""
import json
import os
import threading
import time

from qrtest import Gateway, Mock, is_openai_error, main_guard


def creds(mock, lifetime=3600):
    a = mock.call("POST", "/_mock/accounts", {"lifetime": lifetime})
    return a, {"access_token": a["access_token"],
               "refresh_token": a["refresh_token"], "token_type": "Bearer",
               "resource_url": a["resource_url"],
               "expiry_date": a["expiry_date"]}


def setup(t, mock, n=1, lifetime=3600, workers=2, config=None):
    mock.call("POST", "/_mock/reset")
    gw = Gateway(workers=workers, config=config,
                 env={"QWENRELAY_QWEN_OAUTH_BASE_URL": mock.url,
                      "QWENRELAY_TOKEN_REFRESH_RETRY_DELAY_MS": "100"})
    key = gw.add_key("c")
    accts = []
    for i in range(n):
        a, c = creds(mock, lifetime)
        p = os.path.join(gw.dir, f"creds{i}.json")
        with open(p, "w") as f:
            json.dump(c, f, indent=2)
        r = gw.cli("accounts", "import", p)
        if r.returncode != 0:
            raise RuntimeError("import failed: " + r.stdout + r.stderr)
        accts.append(a)
    return gw, key, accts


def chat(gw, key, stream=False, **extra):
    body = {"model": "coder-model", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"}]}
    if stream:
        body["stream"] = True
    body.update(extra)
    return gw.req("POST", "/v1/chat/completions", key=key, body=body)


def calls(mock):
    return mock.call("GET", "/_mock/calls")


def test(t):
    mock = Mock()
    gw, key, accts = setup(t, mock)
    r = chat(gw, key, max_tokens=200000)
    t.eq(200, r.status, "chat through a qwen-oauth account")
    sent = mock.call("GET", "/_mock/requests?path=/v1/chat/completions")[-1]
    h, b = sent["headers"], sent["body"]
    t.eq(accts[0]["access_token"], sent["token"], "the account's token")
    t.eq("qwen-oauth", h.get("x-dashscope-authtype"), "X-DashScope-AuthType")
    t.eq("enable", h.get("x-dashscope-cachecontrol"),
         "X-DashScope-CacheControl")
    t.ok(h.get("user-agent", "").startswith("QwenCode/") and
         h.get("x-dashscope-useragent") == h.get("user-agent"),
         "User-Agent and X-DashScope-UserAgent in qwen-code's form", h)
    m0 = b["messages"][0]
    t.ok(m0["role"] == "system" and isinstance(m0["content"], list) and
         m0["content"][-1].get("cache_control") == {"type": "ephemeral"} and
         m0["content"][-1]["text"] == "be brief" and
         [m["role"] for m in b["messages"]] == ["system", "user"],
         "system message in array form with cache_control, text merged",
         b["messages"])
    t.eq(65536, b.get("max_tokens"), "max_tokens capped at 65536")
    r = chat(gw, key, stream=True)
    b = mock.call("GET", "/_mock/requests?path=/v1/chat/completions")[-1][
        "body"]
    t.ok(r.status == 200 and b.get("stream_options") ==
         {"include_usage": True}, "stream_options.include_usage when "
         "streaming")
    t.ok("data: [DONE]" in r.text, "stream relayed")

    # 401 from the API: one refresh, one retry, success
    mock.call("POST", "/_mock/expire_access",
              {"access_token": accts[0]["access_token"]})
    before = calls(mock)["token_refresh"]
    r = chat(gw, key)
    t.ok(r.status == 200 and calls(mock)["token_refresh"] == before + 1,
         "401 -> one refresh -> success", r.text)
    gw.stop()

    # expired token: refreshed before use
    gw, key, accts = setup(t, mock, lifetime=-10)
    r = chat(gw, key)
    c = calls(mock)
    t.ok(r.status == 200 and c["token_refresh"] == 1 and c["chat"] == 1,
         "an expired token is refreshed before use (no failed call)", c)
    gw.stop()

    # 16 concurrent requests with an expired token: exactly one refresh
    gw, key, accts = setup(t, mock, lifetime=-10, workers=4)
    mock.call("POST", "/_mock/config", {"refresh_delay_ms": 800})
    results = []

    def one():
        results.append(chat(gw, key).status)
    th = [threading.Thread(target=one) for _ in range(16)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    c = calls(mock)
    t.ok(results == [200] * 16 and c["token_refresh"] == 1,
         "16 concurrent requests, expired token: one refresh, all 200",
         f"{results} {c}")
    toks = {r["token"] for r in mock.call(
        "GET", "/_mock/requests?path=/v1/chat/completions")}
    t.ok(len(toks) == 1 and accts[0]["access_token"] not in toks,
         "all 16 used the new token")
    mock.call("POST", "/_mock/config", {"refresh_delay_ms": 0})
    gw.stop()

    # a rejected refresh: needs_login, out of rotation, still listed
    gw, key, accts = setup(t, mock, n=2, lifetime=-10)
    # rotate account 0's refresh token away behind the gateway's back
    from qrtest import http
    http(mock.port, "POST", "/api/v1/oauth2/token",
         "grant_type=refresh_token&client_id=f0304373b74a44d2b584a3fb70ca9e56"
         "&refresh_token=" + accts[0]["refresh_token"],
         {"Content-Type": "application/x-www-form-urlencoded"})
    mock.call("POST", "/_mock/config", {})
    r = chat(gw, key)
    t.eq(200, r.status, "a needs_login account is skipped, the next serves")
    lst = json.loads(gw.cli("accounts", "list", "--json").stdout or "[]")
    st = sorted(a["status"] for a in lst)
    t.ok(st == ["active", "needs_login"], "the rejected account is "
         "needs_login and still listed", lst)
    out = gw.logs() + json.dumps(lst)
    t.ok(all(a["refresh_token"] not in out and a["access_token"] not in out
             for a in accts), "no token in logs or listings")
    gw.stop()


main_guard(test)
