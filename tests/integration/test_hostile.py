"""test_hostile.py: a deliberately hostile upstream, through lighttpd.

The mock answers with the numbers of issue 11 (usage -2^63 and 1e308), with
a 200 whose body is HTML, not JSON, or JSON of the wrong shape, with
Retry-After values that would park an account for centuries, and with a
redirect status carrying an error body.  The gateway counts nothing it
cannot believe, never passes a malformed 200 on (502, OpenAI error), parks
for at most a day, and never relays a non-error status as an error.
"""
import json
import os
import re
import time

from qrtest import Gateway, Mock, is_openai_error, main_guard

DAY = 86400


def setup(mock, n):
    mock.call("POST", "/_mock/reset")
    gw = Gateway(config={"account_selection_strategy": "sticky"},
                 env={"QWENRELAY_QWEN_OAUTH_BASE_URL": mock.url})
    key = gw.add_key("c")
    toks = []
    for i in range(n):
        a = mock.call("POST", "/_mock/accounts", {"lifetime": 3600})
        p = os.path.join(gw.dir, f"creds{i}.json")
        with open(p, "w") as f:
            json.dump({"access_token": a["access_token"],
                       "refresh_token": a["refresh_token"],
                       "token_type": "Bearer",
                       "resource_url": a["resource_url"],
                       "expiry_date": a["expiry_date"]}, f)
        gw.cli("accounts", "import", p)
        toks.append(a["access_token"])
    return gw, key, toks


def chat(gw, key, stream=False):
    body = {"model": "coder-model",
            "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body["stream"] = True
    return gw.req("POST", "/v1/chat/completions", key=key, body=body)


def accounts(gw):
    return json.loads(gw.cli("accounts", "list", "--json").stdout or "[]")


def fail(mock, status, body=None, headers=None, token=None, count=1):
    rule = {"path": "/v1/chat/completions", "status": status,
            "count": count}
    if body is not None:
        rule["body"] = body
    if headers:
        rule["headers"] = headers
    if token:
        rule["token"] = token
    mock.call("POST", "/_mock/fail", rule)


def test(t):
    mock = Mock()
    gw, key, toks = setup(mock, 1)

    # --- usage numbers that cannot be true ---
    mock.call("POST", "/_mock/config", {"usage_override": {
        "prompt_tokens": -9223372036854775808, "completion_tokens": 1e308}})
    r1, r2 = chat(gw, key), chat(gw, key, stream=True)
    mock.call("POST", "/_mock/config", {"usage_override": {
        "prompt_tokens": 2 ** 60, "completion_tokens": "12"}})
    r3 = chat(gw, key)
    mock.call("POST", "/_mock/config", {"usage_override": {
        "prompt_tokens": None, "completion_tokens": True}})
    r4 = chat(gw, key)
    mock.call("POST", "/_mock/config", {"usage_override": {
        "prompt_tokens": 7, "completion_tokens": 5.0}})
    r5 = chat(gw, key)
    mock.call("POST", "/_mock/config", {"usage_override": None})
    t.ok([r.status for r in (r1, r2, r3, r4, r5)] == [200] * 5,
         "answers with hostile usage are still relayed",
         [r.status for r in (r1, r2, r3, r4, r5)])
    a = accounts(gw)[0]
    t.eq((7, 5), (a["prompt_tokens"], a["completion_tokens"]),
         "only believable usage is counted (-2^63, 1e308, 2^60, \"12\", "
         "null, true count as 0)")
    t.ok("unbelievable usage" in gw.logs(), "and the upstream is logged")
    # the same through the edge translators, streamed and not
    mock.call("POST", "/_mock/config", {"usage_override": {
        "prompt_tokens": 9223372036854775807, "completion_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": -9223372036854775807}}})
    edge = [gw.req("POST", "/v1/responses", key=key, body={
                "model": "coder-model", "input": "hi", "stream": st})
            for st in (False, True)]
    edge += [gw.req("POST", "/v1/messages", key=key, body={
                "model": "coder-model", "max_tokens": 50, "stream": st,
                "messages": [{"role": "user", "content": "hi"}]})
             for st in (False, True)]
    nums = [int(x) for r in edge for x in re.findall(
        r'"(?:input|output|total|cache_read_input)_tokens": ?(-?[0-9]+)',
        r.text)]
    t.ok([r.status for r in edge] == [200] * 4 and nums and
         all(0 <= x < 2 ** 53 for x in nums),
         "Responses and Messages never show a token count below 0 or "
         "past 2^53 (an int64 sum overflowed here)",
         ([r.status for r in edge], nums))
    mock.call("POST", "/_mock/config", {"usage_override": None})

    # --- a 200 that is not what the protocol promises ---
    for body, what in (("<html><body>Welcome to the captive portal</body>"
                        "</html>", "HTML"),
                       ({"object": "chat.completion", "id": "x"},
                        "no choices"),
                       ({"id": {"a": 1}, "choices": []}, "an object id"),
                       ({"choices": [], "usage": "lots"}, "string usage"),
                       ('{"choices":[]} trailing', "JSON plus garbage"),
                       ([1, 2, 3], "an array")):
        fail(mock, 200, body)
        r = chat(gw, key)
        j = r.json() or {}
        t.ok(r.status == 502 and is_openai_error(r) and
             j["error"]["code"] == "upstream_malformed",
             f"200 with {what}: 502 upstream_malformed", r.text[:300])
    for body, what in (("<html>Welcome</html>", "HTML"),
                       ({"choices": []}, "a JSON object")):
        fail(mock, 200, body)
        r = chat(gw, key, stream=True)
        j = r.json() or {}
        t.ok(r.status == 502 and is_openai_error(r) and
             j["error"]["code"] == "upstream_malformed",
             f"a stream answered with {what}: 502 upstream_malformed, "
             "nothing passed on", r.text[:300])
    r = chat(gw, key, stream=True)
    t.ok(r.status == 200 and "data: [DONE]" in r.text,
         "a real stream still passes")
    r = gw.req("POST", "/v1/embeddings", key=key, body={
        "model": "coder-model", "input": "x"})
    t.eq(200, r.status, "a well-formed embeddings answer still passes")
    mock.call("POST", "/_mock/fail", {"path": "/v1/embeddings",
                                      "status": 200, "body": {"x": 1}})
    r = gw.req("POST", "/v1/embeddings", key=key, body={
        "model": "coder-model", "input": "x"})
    t.eq(502, r.status, "embeddings 200 without data: 502")

    # --- a redirect status with an error body is not passed on ---
    fail(mock, 302, {"error": {"message": "moved", "type": "x",
                               "code": "moved"}})
    r = chat(gw, key)
    t.ok(r.status == 502 and is_openai_error(r),
         "a 302 with an error body: 502, not 302", (r.status, r.text))
    t.eq(200, chat(gw, key).status, "then served normally")
    gw.stop()

    # --- Retry-After that would park an account for centuries ---
    for ra in ("99999999999", "Fri, 31 Dec 9999 23:59:59 GMT"):
        gw, key, toks = setup(mock, 2)
        fail(mock, 429, None, {"Retry-After": ra}, token=toks[0])
        t0 = time.time()
        r = chat(gw, key)
        t.eq(200, r.status, f"Retry-After {ra}: the next account serves")
        marks = [m for a in accounts(gw) for m in a.get("marks", [])]
        longest = max((m["resets_at"] / 1000 - t0 for m in marks),
                      default=0)
        t.ok(marks and 0 < longest <= DAY + 60,
             f"Retry-After {ra}: parked for at most a day "
             f"({longest:.0f}s)", marks)
        gw.stop()


main_guard(test)
