"""test_chat.py: the OpenAI routes and rotation, through a real lighttpd
against the mock Qwen server, with API-key accounts (each its own key, so
the mock tells which account a request used).

Chat (plain, streaming, tools), models, embeddings, quota rotation with
marks shared across workers, Retry-After on the same account, all
accounts limited, the four strategies over 30 requests, upstream faults,
client hang-up mid-stream, bad input.
"""
import json
import socket
import time

from qrtest import Gateway, Mock, is_openai_error, main_guard

MODEL = "coder-model"


def pool(t, mock, n, config=None, workers=2, models="coder-model"):
    """A gateway with n API-key accounts k0..k(n-1); returns (gw, key, keys)."""
    mock.call("POST", "/_mock/reset")
    gw = Gateway(config=config, workers=workers)
    client = gw.add_key("client")
    keys = []
    for i in range(n):
        k = f"sk-acct{i}-{gw.port}"
        r = gw.add_mock_account(mock, k, f"a{i}", models)
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        keys.append(k)
    return gw, client, keys


def chat(gw, key, text="hello", stream=False, **extra):
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    body.update(extra)
    return gw.req("POST", "/v1/chat/completions", key=key, body=body)


def used_tokens(mock):
    return [r["token"] for r in mock.call(
        "GET", "/_mock/requests?path=/v1/chat/completions")]


def sse_events(text):
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def test(t):
    mock = Mock()

    # -- basic routes with one API-key account --------------------------
    gw, key, keys = pool(t, mock, 1, models="coder-model,text-embedding-v3")
    r = chat(gw, key, "hello there")
    j = r.json() or {}
    t.ok(r.status == 200 and j.get("choices", [{}])[0].get("message", {})
         .get("content") == "echo: hello there", "non-streaming chat", r.text)
    r = chat(gw, key, "one two three", stream=True)
    ev = sse_events(r.text)
    t.ok(r.status == 200 and r.headers.get("content-type", "").startswith(
        "text/event-stream") and ev and ev[-1] == "[DONE]",
        "streaming chat ends with [DONE]", r.text[-300:])
    t.eq("no-cache", r.headers.get("cache-control"), "SSE Cache-Control")
    t.eq("no", r.headers.get("x-accel-buffering"), "SSE X-Accel-Buffering")
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                   for e in ev[:-1] if json.loads(e).get("choices"))
    t.eq("echo: one two three", text, "streamed deltas reassemble")

    tools = [{"type": "function", "function": {
        "name": "get_x", "parameters": {"type": "object", "properties": {}}}}]
    r = chat(gw, key, "please call tool", tools=tools,
             response_format={"type": "text"}, x_unknown_field={"a": [1]})
    msg = ((r.json() or {}).get("choices") or [{}])[0].get("message", {})
    calls = msg.get("tool_calls") or []
    t.ok(r.status == 200 and calls and calls[0]["function"]["name"] ==
         "get_x", "tool call comes back", r.text)
    sent = mock.call("GET", "/_mock/requests?path=/v1/chat/completions")[-1]
    t.ok(sent["body"].get("tools") == tools and
         sent["body"].get("x_unknown_field") == {"a": [1]} and
         sent["body"].get("response_format") == {"type": "text"},
         "tools, response_format and unknown fields pass through untouched")
    r = gw.req("POST", "/v1/chat/completions", key=key, body={
        "model": MODEL, "tools": tools, "messages": [
            {"role": "user", "content": "please call tool"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": calls[0]["id"] if calls else "x",
             "content": "42"}]})
    t.ok(r.status == 200 and "tool result: 42" in r.text,
         "tool result round-trips", r.text)

    kl = json.loads(gw.cli("keys", "list", "--json").stdout)
    t.ok(kl[0]["prompt_tokens"] > 0 and kl[0]["completion_tokens"] >= 4,
         "per-key token usage, the streamed usage chunk included", kl)
    r = gw.req("GET", "/v1/models", key=key)
    ids = [m["id"] for m in (r.json() or {}).get("data", [])]
    t.ok(r.status == 200 and (r.json() or {}).get("object") == "list" and
         ids == ["coder-model", "text-embedding-v3"] and
         r.json()["data"][0]["owned_by"] == "openai-compatible",
         "/v1/models lists the union with owned_by", r.text)
    r = gw.req("GET", "/v1/models/coder-model", key=key)
    t.ok(r.status == 200 and (r.json() or {}).get("id") == "coder-model",
         "/v1/models/{id}")
    r = gw.req("GET", "/v1/models/nope", key=key)
    t.ok(r.status == 404 and is_openai_error(r), "unknown model id: 404")

    r = gw.req("POST", "/v1/embeddings", key=key,
               body={"model": "text-embedding-v3", "input": ["a", "b"]})
    j = r.json() or {}
    t.ok(r.status == 200 and len(j.get("data", [])) == 2, "embeddings",
         r.text[:200])
    r = gw.req("POST", "/v1/embeddings", key=key,
               body={"model": "no-such-embedder", "input": "a"})
    t.ok(r.status == 400 and is_openai_error(r) and
         "text-embedding-v3" in r.json()["error"]["message"] and
         "coder-model" not in r.json()["error"]["message"],
         "embeddings with a model no account serves: 400 naming the "
         "models that can embed", r.text)

    # bad input: clear 400s, nothing relayed
    before = len(used_tokens(mock))
    for body, what in (("{not json", "malformed JSON"),
                       ({"messages": []}, "no model"),
                       ({"model": MODEL}, "no messages"),
                       ({"model": MODEL, "messages": "x"}, "messages not array"),
                       ({"model": MODEL, "messages": [{"role": "user"}],
                         "stream": "yes"}, "stream not boolean"),
                       ("[1,2]", "not an object")):
        r = gw.req("POST", "/v1/chat/completions", key=key, body=body,
                   headers={"Content-Type": "application/json"})
        t.ok(r.status == 400 and is_openai_error(r), f"400 for {what}",
             r.text)
    t.eq(before, len(used_tokens(mock)), "bad input never reaches upstream")
    r = gw.req("POST", "/v1/chat/completions", key=key, body={
        "model": "unknown-model", "messages": [{"role": "user",
                                                "content": "x"}]})
    t.ok(r.status == 404 and "model_not_found" in r.text,
         "a model no account serves: 404 model_not_found", r.text)
    gw.stop()

    # -- quota on the first account: the client never notices ------------
    gw, key, keys = pool(t, mock, 3, workers=3)
    mock.call("POST", "/_mock/fail", {"token": keys[0], "status": 429,
                                      "count": -1})
    r = chat(gw, key)
    t.ok(r.status == 200, "first account out of quota: client gets 200",
         r.text)
    toks = used_tokens(mock)
    t.eq([keys[0], keys[1]], toks, "tried the first, served by the second")
    kl = json.loads(gw.cli("keys", "list", "--json").stdout)
    t.ok(kl[0]["requests"] == 1 and kl[0].get("errors", 0) == 0,
         "the client key counts one request, not the attempts", kl)
    for _ in range(9):
        chat(gw, key)
    toks = used_tokens(mock)
    t.eq(1, toks.count(keys[0]), "the first stays parked across workers "
         "(never asked again)")
    gw.stop()

    # -- Retry-After: 2 -> same account after the wait -------------------
    gw, key, keys = pool(t, mock, 2)
    mock.call("POST", "/_mock/fail", {"token": keys[0], "status": 429,
                                      "body": {"error": {
                                          "message": "Requests throttling "
                                          "triggered", "type": "throttling",
                                          "code": "throttling"}},
                                      "headers": {"Retry-After": "2"}})
    t0 = time.time()
    r = chat(gw, key)
    dt = time.time() - t0
    t.ok(r.status == 200 and used_tokens(mock) == [keys[0], keys[0]] and
         dt >= 1.9, "Retry-After: 2 waited out on the same account",
         f"{used_tokens(mock)} {dt:.2f}s")
    gw.stop()

    # -- every account limited: 429 with Retry-After ---------------------
    gw, key, keys = pool(t, mock, 2, config={"max_rate_limit_wait_seconds": 1})
    for k in keys:
        mock.call("POST", "/_mock/fail", {"token": k, "status": 429,
                                          "count": -1,
                                          "headers": {"Retry-After": "120"}})
    r = chat(gw, key)
    ra = r.headers.get("retry-after", "")
    t.ok(r.status == 429 and is_openai_error(r) and ra.isdigit() and
         100 <= int(ra) <= 120, "all limited: 429 with Retry-After",
         f"{r.status} {ra} {r.text}")
    t.ok("resets at" in (r.json() or {}).get("error", {}).get("message", ""),
         "the message names the earliest reset")
    n = len(used_tokens(mock))
    r = chat(gw, key, stream=True)
    t.ok(r.status == 429 and len(used_tokens(mock)) == n,
         "while parked, no upstream call is made", r.status)
    gw.stop()

    # -- all limited, reset within max_rate_limit_wait: wait then serve --
    gw, key, keys = pool(t, mock, 1, config={
        "max_rate_limit_wait_seconds": 10,
        "retry_same_account_threshold_seconds": 0})
    mock.call("POST", "/_mock/fail", {"token": keys[0], "status": 429,
                                      "headers": {"Retry-After": "2"}})
    t0 = time.time()
    r = chat(gw, key)
    t.ok(r.status == 200 and time.time() - t0 >= 1.9,
         "the only account parked 2 s: the request waits, then succeeds")
    lst = json.loads(gw.cli("accounts", "list", "--json").stdout)
    t.eq([], lst[0]["marks"], "a success clears the account's mark "
         "(the next backoff starts low)")
    gw.stop()

    # -- strategies over 30 requests -------------------------------------
    for strat, check in (
            ("sticky", lambda c: c == [30, 0, 0]),
            ("round-robin", lambda c: c == [10, 10, 10]),
            ("least-used", lambda c: c == [10, 10, 10]),
            ("hybrid", lambda c: c == [10, 10, 10])):
        gw, key, keys = pool(t, mock, 3, config={
            "account_selection_strategy": strat,
            "hybrid_rotate_requests": 10})
        for _ in range(30):
            chat(gw, key)
        toks = used_tokens(mock)
        counts = [toks.count(k) for k in keys]
        if strat == "hybrid":
            # runs of 10 on one account, then the next
            runs = [toks[i:i + 10] for i in range(0, 30, 10)]
            ok = all(len(set(run)) == 1 for run in runs) and check(counts)
        elif strat == "round-robin":
            ok = check(counts) and all(toks[i] != toks[i + 1]
                                       for i in range(29))
        else:
            ok = check(counts)
        t.ok(ok, f"strategy {strat} over 30 requests", counts)
        gw.stop()

    # sticky moves on when its account is limited, and stays there
    gw, key, keys = pool(t, mock, 3)
    chat(gw, key)
    mock.call("POST", "/_mock/fail", {"token": keys[0], "status": 429,
                                      "count": -1})
    for _ in range(5):
        chat(gw, key)
    toks = used_tokens(mock)
    t.eq([keys[0], keys[0]] + [keys[1]] * 5, toks,
         "sticky switches to the next account when limited")
    gw.stop()

    # -- upstream faults: next account, bounded by upstream_retries -------
    gw, key, keys = pool(t, mock, 3, config={"upstream_retries": 1})
    mock.call("POST", "/_mock/fail", {"status": 500, "count": 1})
    r = chat(gw, key)
    t.ok(r.status == 200 and len(used_tokens(mock)) == 2,
         "a 500 moves to the next account")
    mock.call("POST", "/_mock/fail/clear")
    mock.call("POST", "/_mock/fail", {"status": 503, "count": -1})
    n = len(used_tokens(mock))
    r = chat(gw, key)
    t.ok(r.status in (502, 503) and is_openai_error(r) and
         len(used_tokens(mock)) - n == 2,
         "persistent 5xx: gives up after upstream_retries", r.status)
    mock.call("POST", "/_mock/fail/clear")
    mock.call("POST", "/_mock/fail", {"status": 400, "body": {"error": {
        "message": "bad request", "type": "invalid_request_error",
        "code": "invalid_parameter_error", "param": None}}})
    n = len(used_tokens(mock))
    r = chat(gw, key)
    t.ok(r.status == 400 and "invalid_parameter_error" in r.text and
         len(used_tokens(mock)) - n == 1,
         "an upstream 400 is relayed as is, not retried", r.text)
    gw.stop()

    # unreachable upstream: 502 with what happened
    gw = Gateway(config={"upstream_retries": 0})
    key = gw.add_key("c")
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    gw.cli("accounts", "add", "--provider", "openai-compatible", "--base-url",
           f"http://127.0.0.1:{port}/v1", "--models", MODEL, input="sk-x\n")
    r = chat(gw, key)
    t.ok(r.status == 502 and is_openai_error(r) and "sk-x" not in r.text,
         "unreachable upstream: 502", r.text)
    gw.stop()

    # upstream slower than upstream_total_timeout_seconds: 504
    gw, key, keys = pool(t, mock, 1, config={
        "upstream_total_timeout_seconds": 1, "upstream_retries": 0})
    mock.call("POST", "/_mock/fail", {"status": 200, "delay_ms": 2500,
                                      "count": 1})
    r = chat(gw, key)
    t.ok(r.status == 504 and is_openai_error(r), "upstream timeout: 504",
         r.text)
    gw.stop()

    # a silent upstream mid-stream: ': ping' comments keep the client
    gw, key, keys = pool(t, mock, 1, config={"sse_keepalive_seconds": 1})
    mock.call("POST", "/_mock/config", {"stream_words": 2,
                                        "stream_chunk_delay_ms": 2300})
    r = chat(gw, key, stream=True)
    t.ok(r.status == 200 and ": ping" in r.text and
         r.text.rstrip().endswith("data: [DONE]"),
         "SSE ': ping' while the upstream is silent", r.text[-200:])
    mock.call("POST", "/_mock/config", {"stream_words": None,
                                        "stream_chunk_delay_ms": 0})
    gw.stop()

    # -- client hangs up mid-stream: upstream closed within 2 s ----------
    gw, key, keys = pool(t, mock, 1)
    mock.call("POST", "/_mock/config", {"stream_words": 400,
                                        "stream_chunk_delay_ms": 100})
    s = socket.create_connection(("127.0.0.1", gw.port))
    body = json.dumps({"model": MODEL, "stream": True, "messages": [
        {"role": "user", "content": "go"}]}).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer " + key.encode() +
              b"\r\nContent-Type: application/json\r\nContent-Length: " +
              str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while got.count(b"data: ") < 3:
        got += s.recv(4096)
    s.close()
    t_close = time.time()
    ended = None
    while time.time() - t_close < 5:
        st = mock.call("GET", "/_mock/streams")
        if st and st[-1].get("ended"):
            ended = st[-1]
            break
        time.sleep(0.1)
    t.ok(ended is not None and ended["aborted"] and
         ended["ended"] - t_close < 2.0 and ended["chunks_sent"] < 100,
         "client hang-up: the mock sees the upstream close within 2 s",
         ended)
    mock.call("POST", "/_mock/config", {"stream_words": None,
                                        "stream_chunk_delay_ms": 0})
    r = chat(gw, key)
    t.eq(200, r.status, "the worker is free for the next request")

    t.ok(key not in gw.logs() and keys[0] not in gw.logs(),
         "no client key or API key in the logs")
    gw.stop()


main_guard(test)
