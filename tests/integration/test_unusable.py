"""test_unusable.py: a known model whose accounts are all unusable.

The only account for coder-model needs a new login, or is disabled: a
chat (and an embedding) is 503 no_usable_account naming the cause and
the command that fixes it, not 404 "model not served".  A model no
account serves stays 404.
"""
import json
import os

from qrtest import Gateway, Mock, http, is_openai_error, main_guard


def test(t):
    mock = Mock()
    gw = Gateway(env={"QWENRELAY_QWEN_OAUTH_BASE_URL": mock.url,
                      "QWENRELAY_TOKEN_REFRESH_RETRY_DELAY_MS": "100"})
    key = gw.add_key("c")
    a = mock.call("POST", "/_mock/accounts", {"lifetime": -10})
    p = os.path.join(gw.dir, "creds.json")
    with open(p, "w") as f:
        json.dump({"access_token": a["access_token"],
                   "refresh_token": a["refresh_token"],
                   "token_type": "Bearer", "resource_url": a["resource_url"],
                   "expiry_date": a["expiry_date"]}, f)
    gw.cli("accounts", "import", p)
    aid = json.loads(gw.cli("accounts", "list", "--json").stdout)[0]["id"]

    def chat(model="coder-model"):
        return gw.req("POST", "/v1/chat/completions", key=key, body={
            "model": model, "messages": [{"role": "user", "content": "hi"}]})

    r = gw.cli("accounts", "disable", aid)
    t.ok(r.returncode == 0, "accounts disable", r.stdout + r.stderr)
    r = chat()
    j = r.json() or {}
    msg = (j.get("error") or {}).get("message", "")
    t.ok(r.status == 503 and is_openai_error(r) and
         j["error"]["code"] == "no_usable_account",
         "all accounts disabled: 503 no_usable_account, not 404", r.text)
    t.ok("disabled" in msg and "accounts enable" in msg,
         "the message names the cause and the fix", msg)
    r = chat("no-such-model")
    t.eq(404, r.status, "a model no account serves is still 404")
    gw.cli("accounts", "enable", aid)

    # rotate the refresh token away behind the gateway's back
    http(mock.port, "POST", "/api/v1/oauth2/token",
         "grant_type=refresh_token&client_id=f0304373b74a44d2b584a3fb70ca9e56"
         "&refresh_token=" + a["refresh_token"],
         {"Content-Type": "application/x-www-form-urlencoded"})
    r = chat()
    t.eq(503, r.status, "the refresh is rejected: 503")
    r = chat()
    j = r.json() or {}
    msg = (j.get("error") or {}).get("message", "")
    t.ok(r.status == 503 and j.get("error", {}).get("code") ==
         "no_usable_account" and "needs a new login" in msg and
         "qwenrelay accounts login" in msg,
         "needs_login: 503 naming 'qwenrelay accounts login'", r.text)
    r = gw.req("POST", "/v1/embeddings", key=key, body={
        "model": "coder-model", "input": "x"})
    t.ok(r.status == 503, "the same for an embedding request", r.text)
    gw.stop()


main_guard(test)
