#!/usr/bin/env python3
"""Self-check of tests/mock/mock_qwen.py: starts it on a free port and drives every feature.

Prints TAP. Standard library only. Run: python3 tests/mock/test_mock_selfcheck.py
"""

import base64
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
MOCK = os.path.join(HERE, "mock_qwen.py")
CLIENT_ID = "f0304373b74a44d2b584a3fb70ca9e56"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

results = []


def check(desc, cond, diag=None):
    results.append((bool(cond), desc, diag))


class Mock:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="mockqwen.")
        portfile = os.path.join(self.tmp, "port")
        # The mock never holds our stdout: a leftover mock must not keep
        # the TAP pipe open and hang `make check`.
        self.proc = subprocess.Popen([sys.executable, MOCK, "--port", "0", "--portfile",
                                      portfile, "--log", os.path.join(self.tmp, "log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not os.path.exists(portfile):
            if time.time() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                self.proc.wait()
                raise SystemExit("Bail out! mock did not start")
            time.sleep(0.05)
        with open(portfile) as f:
            self.port = int(f.read())
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def request(self, method, path, body=None, headers=None, form=False):
        """Returns (status, headers dict lowercased, parsed JSON or text)."""
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            if form:
                data = body.encode() if isinstance(body, str) else \
                    urllib.parse.urlencode(body).encode()
                hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
            else:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=data, headers=hdrs)
        resp = self.conn.getresponse()
        raw = resp.read()
        rh = {k.lower(): v for k, v in resp.getheaders()}
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return resp.status, rh, parsed

    def ctl(self, path, obj=None):
        if obj is None:
            return self.request("GET", path)[2]
        return self.request("POST", path, obj)[2]

    def api(self, method, path, token, body=None):
        return self.request(method, path, body, {"Authorization": "Bearer " + token})


def pkce():
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def device_code(m, encoding="%20"):
    verifier, challenge = pkce()
    body = ("client_id=%s&scope=openid%sprofile%semail%smodel.completion&code_challenge=%s"
            "&code_challenge_method=S256" % (CLIENT_ID, encoding, encoding, encoding, challenge))
    st, _, js = m.request("POST", "/api/v1/oauth2/device/code", body, form=True,
                          headers={"Accept": "application/json"})
    return st, js, verifier


def poll(m, dc, verifier):
    return m.request("POST", "/api/v1/oauth2/token",
                     {"grant_type": DEVICE_GRANT, "client_id": CLIENT_ID,
                      "device_code": dc, "code_verifier": verifier}, form=True)


def refresh(m, rt):
    return m.request("POST", "/api/v1/oauth2/token",
                     {"grant_type": "refresh_token", "refresh_token": rt,
                      "client_id": CLIENT_ID}, form=True)


def sse_events(text):
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def test_oauth(m):
    st, js, _ = device_code(m, "%20")
    check("device/code accepts %20 spaces", st == 200 and "device_code" in js, js)
    check("device/code reply shape", js.get("verification_uri") ==
          "http://127.0.0.1:%d/authorize" % m.port and js.get("expires_in") == 600
          and "interval" not in js and js["verification_uri_complete"].endswith(
              "?user_code=%s&client=qwen-code" % js["user_code"])
          and len(js["user_code"]) == 9, js)
    st, js, verifier = device_code(m, "+")
    check("device/code accepts + spaces", st == 200 and "device_code" in js, js)
    st, _, bad = m.request("POST", "/api/v1/oauth2/device/code",
                           {"client_id": "nope", "scope": "model.completion",
                            "code_challenge": "x" * 43, "code_challenge_method": "S256"},
                           form=True)
    check("device/code rejects bad client_id", st == 400 and bad.get("error") ==
          "invalid_request", bad)

    dc, uc = js["device_code"], js["user_code"]
    st, _, r = poll(m, dc, verifier)
    check("poll before approval: 400 authorization_pending",
          st == 400 and r.get("error") == "authorization_pending", r)
    check("GET /authorize is a page and does not approve",
          m.request("GET", "/authorize?user_code=" + uc)[0] == 200 and
          poll(m, dc, verifier)[2].get("error") == "authorization_pending")
    m.ctl("/_mock/approve", {"user_code": uc})
    st, _, r = poll(m, dc, pkce()[0])
    check("PKCE mismatch rejected", st == 400 and r.get("error") == "invalid_grant" and
          r.get("error_description") == "PKCE verification failed", r)
    st, _, tok = poll(m, dc, verifier)
    check("approved poll issues tokens", st == 200 and tok["access_token"].startswith("mqa_")
          and tok["refresh_token"].startswith("mqr_") and tok["token_type"] == "Bearer"
          and tok["expires_in"] == 3600 and tok["resource_url"] ==
          "http://127.0.0.1:%d" % m.port and "model.completion" in tok.get("scope", ""), tok)
    st, _, r = poll(m, dc, verifier)
    check("device code is single use", st == 400 and r.get("error") == "invalid_grant", r)
    devs = m.ctl("/_mock/devices?user_code=" + uc)
    check("poll timestamps recorded", len(devs) == 1 and len(devs[0]["polls"]) == 5, devs)

    for status in (400, 429):
        m.ctl("/_mock/config", {"slow_down": {"count": 1, "status": status}})
        st2, js2, v2 = device_code(m)
        st, _, r = poll(m, js2["device_code"], v2)
        st_next, _, r_next = poll(m, js2["device_code"], v2)
        check("slow_down injected with HTTP %d, then normal" % status,
              st == status and r.get("error") == "slow_down" and
              r_next.get("error") == "authorization_pending", (st, r, r_next))

    m.ctl("/_mock/config", {"device_interval": 5, "device_expires_in": 300})
    _, js3, v3 = device_code(m)
    check("interval sent when configured", js3.get("interval") == 5 and
          js3.get("expires_in") == 300, js3)
    m.ctl("/_mock/deny", {"user_code": js3["user_code"]})
    st, _, r = poll(m, js3["device_code"], v3)
    check("denied -> 400 access_denied", st == 400 and r.get("error") == "access_denied", r)
    _, js4, v4 = device_code(m)
    m.ctl("/_mock/expire", {"user_code": js4["user_code"]})
    st, _, r = poll(m, js4["device_code"], v4)
    check("expired -> 400 expired_token", st == 400 and r.get("error") == "expired_token", r)
    st, _, r = m.request("POST", "/api/v1/oauth2/token", {"grant_type": "password"}, form=True)
    check("unsupported grant", st == 400 and r.get("error") == "unsupported_grant_type", r)

    st, _, r1 = refresh(m, tok["refresh_token"])
    check("refresh rotates both tokens", st == 200 and
          r1["access_token"] != tok["access_token"] and r1["refresh_token"] != tok["refresh_token"]
          and r1["token_type"] == "Bearer" and "resource_url" in r1, r1)
    st, _, r = refresh(m, tok["refresh_token"])
    check("old refresh token -> 400 invalid_request", st == 400 and
          r == {"error": "invalid_request",
                "error_description": "Invalid refresh token or client_id"}, r)
    check("old access token still valid after refresh",
          m.api("GET", "/v1/models", tok["access_token"])[0] == 200)
    m.ctl("/_mock/config", {"refresh_fail": {"count": 1, "status": 500}})
    st, _, r = refresh(m, r1["refresh_token"])
    st2, _, r2 = refresh(m, r1["refresh_token"])
    check("refresh_fail injects one 500, then refresh works",
          st == 500 and st2 == 200 and r2["access_token"].startswith("mqa_"), (st, r, st2, r2))
    calls = m.ctl("/_mock/calls")
    check("call counters", calls["device_code"] == 7 and calls["token_refresh"] == 4 and
          calls["token_device"] == 11, calls)


def test_api(m):
    acct = m.ctl("/_mock/accounts", {"lifetime": 3600})
    tok = acct["access_token"]
    check("accounts issue tokens", tok.startswith("mqa_") and acct["expiry_date"] >
          time.time() * 1000, acct)
    msgs = [{"role": "system", "content": [{"type": "text", "text": "",
                                            "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": "hello there world"}]
    st, _, r = m.api("POST", "/v1/chat/completions", tok, {"model": "coder-model",
                                                           "messages": msgs})
    check("chat non-stream echo", st == 200 and r["object"] == "chat.completion" and
          r["model"] == "coder-model" and
          r["choices"][0]["message"] == {"role": "assistant", "content": "echo: hello there world"}
          and r["choices"][0]["finish_reason"] == "stop" and
          r["usage"]["completion_tokens"] == 4 and r["usage"]["prompt_tokens"] == 5 and
          r["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}, r)
    st, _, r = m.api("POST", "/v1/chat/completions", tok, "not json")
    check("chat bad body -> 400 invalid_parameter_error", st == 400 and
          r["error"]["code"] == "invalid_parameter_error" and "request_id" in r, r)

    st, h, text = m.api("POST", "/v1/chat/completions", tok,
                        {"model": "coder-model", "messages": msgs, "stream": True,
                         "stream_options": {"include_usage": True}})
    ev = sse_events(text)
    chunks = [json.loads(e) for e in ev[:-1]]
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks
                      if c["choices"])
    check("chat stream: SSE, role first, content, finish, usage, [DONE]",
          st == 200 and h["content-type"].startswith("text/event-stream") and
          ev[-1] == "[DONE]" and chunks[0]["choices"][0]["delta"] == {"role": "assistant"} and
          content == "echo: hello there world" and chunks[-1]["choices"] == [] and
          chunks[-1]["usage"]["total_tokens"] == 9 and
          chunks[-2]["choices"][0]["finish_reason"] == "stop", text)
    st, _, text = m.api("POST", "/v1/chat/completions", tok,
                        {"model": "coder-model", "messages": msgs, "stream": True})
    check("chat stream without include_usage has no usage chunk",
          all(json.loads(e)["choices"] for e in sse_events(text)[:-1]), text)

    tools = [{"type": "function", "function": {"name": "get_x", "parameters": {}}}]
    tmsgs = [{"role": "user", "content": "please call tool now"}]
    st, _, r = m.api("POST", "/v1/chat/completions", tok, {"model": "m", "messages": tmsgs,
                                                           "tools": tools})
    tc = r["choices"][0]["message"].get("tool_calls") or [{}]
    check("tool call non-stream", r["choices"][0]["finish_reason"] == "tool_calls" and
          r["choices"][0]["message"]["content"] is None and
          tc[0].get("function") == {"name": "get_x", "arguments": "{\"x\":1}"} and
          tc[0]["id"].startswith("call_"), r)
    st, _, text = m.api("POST", "/v1/chat/completions", tok,
                        {"model": "m", "messages": tmsgs, "tools": tools, "stream": True})
    chunks = [json.loads(e) for e in sse_events(text)[:-1]]
    check("tool call stream", chunks[1]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
          and chunks[-1]["choices"][0]["finish_reason"] == "tool_calls", text)
    tmsgs2 = tmsgs + [{"role": "assistant", "content": None, "tool_calls": tc},
                      {"role": "tool", "tool_call_id": tc[0]["id"], "content": "42"}]
    r = m.api("POST", "/v1/chat/completions", tok, {"model": "m", "messages": tmsgs2,
                                                    "tools": tools})[2]
    check("tool result echo", r["choices"][0]["message"]["content"] == "tool result: 42", r)

    st, _, r = m.api("POST", "/v1/embeddings", tok, {"model": "e", "input": ["a", "b"]})
    check("embeddings", st == 200 and r["object"] == "list" and len(r["data"]) == 2 and
          len(r["data"][1]["embedding"]) == 8 and r["data"][1]["index"] == 1 and
          r["usage"]["total_tokens"] == 2, r)
    st, _, r = m.api("GET", "/v1/models", tok)
    check("models", st == 200 and [d["id"] for d in r["data"]] ==
          ["coder-model", "qwen3-coder-plus", "qwen3-coder-flash"] and
          r["data"][0]["owned_by"] == "qwen", r)

    st, _, r = m.api("GET", "/v1/models", "mqa_bogus")
    check("401 for bad token, section 7 shape", st == 401 and r["error"] == {
        "code": "invalid_api_key", "message": "invalid access token or token expired",
        "param": None, "type": "invalid_request_error"} and len(r["request_id"]) == 36, r)
    dead = m.ctl("/_mock/accounts", {"lifetime": 0})
    check("lifetime 0 account is expired",
          m.api("GET", "/v1/models", dead["access_token"])[0] == 401)
    m.ctl("/_mock/expire_access", {"access_token": tok})
    check("expire_access", m.api("GET", "/v1/models", tok)[0] == 401)
    m.ctl("/_mock/apikeys", {"key": "sk-test-1"})
    check("api key accepted", m.api("GET", "/v1/models", "sk-test-1")[0] == 200)

    tok = m.ctl("/_mock/accounts", {"lifetime": 3600})["access_token"]
    m.ctl("/_mock/fail", {"path": "/v1/chat/completions", "status": 429,
                          "headers": {"Retry-After": "2"}, "count": 2})
    m.ctl("/_mock/fail", {"token": "sk-test-1", "status": 500})
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    a = m.api("POST", "/v1/chat/completions", tok, body)
    b = m.api("POST", "/v1/chat/completions", tok, body)
    c = m.api("POST", "/v1/chat/completions", tok, body)
    check("fail rule: 429 quota with Retry-After, count 2", a[0] == 429 and b[0] == 429 and
          c[0] == 200 and a[1].get("retry-after") == "2" and
          a[2]["error"]["code"] == "insufficient_quota" and
          a[2]["error"]["message"] == "Free allocated quota exceeded.", (a, b, c))
    check("fail rule by token", m.api("GET", "/v1/models", tok)[0] == 200 and
          m.api("GET", "/v1/models", "sk-test-1")[0] == 500 and
          m.api("GET", "/v1/models", "sk-test-1")[0] == 200)
    m.ctl("/_mock/fail", {"status": 503, "count": -1})
    m.ctl("/_mock/fail/clear", {})
    check("fail/clear", m.api("GET", "/v1/models", tok)[0] == 200)

    reqs = m.ctl("/_mock/requests?path=/v1/chat/completions")
    check("requests recorded with headers, body, token",
          len(reqs) == 10 and reqs[-1]["token"] == tok and
          reqs[-1]["headers"]["authorization"] == "Bearer " + tok and
          reqs[-1]["body"]["messages"][0]["content"] == "x", reqs[-1:])
    forms = m.ctl("/_mock/requests?path=/api/v1/oauth2/token")
    check("form bodies recorded as dicts", forms and forms[0]["body"]["client_id"] == CLIENT_ID,
          forms[:1])
    st, _, r = m.request("GET", "/nope")
    check("unknown path 404", st == 404 and r["error"]["code"] == "not_found", r)


def test_streams(m):
    tok = m.ctl("/_mock/accounts", {"lifetime": 3600})["access_token"]
    m.ctl("/_mock/config", {"stream_chunk_delay_ms": 200, "stream_words": 100})
    body = json.dumps({"model": "m", "stream": True,
                       "messages": [{"role": "user", "content": "go"}]}).encode()
    s = socket.create_connection(("127.0.0.1", m.port), timeout=5)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
              tok.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: " +
              str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while b"data: " not in got:
        got += s.recv(4096)
    s.close()
    t0 = time.time()
    rec = None
    while time.time() - t0 < 2.0:
        streams = m.ctl("/_mock/streams")
        rec = streams[-1] if streams else None
        if rec and rec["aborted"]:
            break
        time.sleep(0.05)
    check("aborted stream recorded within 2 s", rec and rec["aborted"] and rec["ended"] and
          rec["chunks_sent"] < 20 and rec["token_tail"] == tok[-6:], rec)
    m.ctl("/_mock/config", {"stream_chunk_delay_ms": 0, "stream_words": 5})
    st, _, text = m.api("POST", "/v1/chat/completions", tok, json.loads(body))
    streams = m.ctl("/_mock/streams")
    words = "".join(json.loads(e)["choices"][0]["delta"].get("content", "")
                    for e in sse_events(text)[:-1])
    check("completed stream recorded", streams[-1]["aborted"] is False and
          streams[-1]["ended"] and streams[-1]["chunks_sent"] == 8 and
          words == "w1 w2 w3 w4 w5", (streams[-1], text))

    m.ctl("/_mock/reset", {})
    cfg = m.ctl("/_mock/config")
    check("reset restores config and clears state", cfg["stream_words"] is None and
          cfg["resource_url"] == "http://127.0.0.1:%d" % m.port and
          m.ctl("/_mock/streams") == [] and m.api("GET", "/v1/models", tok)[0] == 401 and
          m.ctl("/_mock/calls")["models"] == 1)
    st, _, r = m.request("POST", "/_mock/config", {"bogus_key": 1})
    check("unknown config key rejected", st == 400, r)


def main():
    m = Mock()
    try:
        for fn in (test_oauth, test_api, test_streams):
            try:
                fn(m)
            except Exception as exc:  # report, do not hide the remaining TAP lines
                import traceback
                check("%s raised no exception" % fn.__name__, False,
                      "".join(traceback.format_exception(exc)))
        m.proc.send_signal(signal.SIGTERM)
        try:
            rc = m.proc.wait(5)
        except subprocess.TimeoutExpired:
            rc = None
        check("exits cleanly on SIGTERM", rc == 0, rc)
    finally:
        if m.proc.poll() is None:
            m.proc.kill()
            m.proc.wait()
        shutil.rmtree(m.tmp, ignore_errors=True)
    print("1..%d" % len(results))
    for i, (ok, desc, diag) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, desc))
        if not ok and diag is not None:
            for line in str(diag).splitlines():
                print("# " + line)
    return 0 if all(r[0] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
