"""test_protocols.py: POST /v1/responses and POST /v1/messages over HTTP,
through a real lighttpd, against the mock Qwen server with one API-key
account: plain and streamed answers, a tool call round trip with the
arguments split over many upstream chunks, usage, errors in each
protocol's shape (auth included), count_tokens, previous_response_id,
model_aliases on every route, and a streamed first delta that reaches
the client while the upstream is still sending.
"""
import json
import socket
import time

from qrtest import Gateway, Mock, is_openai_error, main_guard

MODEL = "coder-model"
ALIASES = {"claude-*": "qwen3-coder-plus", "claude-3-5-haiku*": MODEL,
           "gpt-5-codex": MODEL, "gpt-5*": "qwen3-coder-plus"}
TOOL = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object",
                         "properties": {"command": {"type": "string"}},
                         "required": ["command"]}}


def events(text):
    """[(event name or None, data JSON)] of an SSE body."""
    out = []
    for block in text.split("\n\n"):
        name, data = None, None
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if data is not None:
            try:
                out.append((name, json.loads(data)))
            except ValueError:
                out.append((name, data))
    return out


def last_upstream(mock):
    return mock.call("GET", "/_mock/requests?path=/v1/chat/completions")[-1]


def first_event_while_streaming(gw, path, headers, body, want):
    """Read the SSE answer raw; when the first event of type want arrives,
    ask the mock whether the upstream stream is still going."""
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=60)
    req = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: "
           f"application/json\r\nContent-Length: {len(data)}\r\n" +
           "".join(f"{k}: {v}\r\n" for k, v in headers.items()) +
           "Connection: close\r\n\r\n").encode() + data
    s.sendall(req)
    buf = b""
    try:
        while want.encode() not in buf:
            chunk = s.recv(4096)
            if not chunk:
                return None, buf
            buf += chunk
        return True, buf
    finally:
        s.close()


def test(t):
    mock = Mock()
    mock.call("POST", "/_mock/reset")
    gw = Gateway(config={"model_aliases": ALIASES,
                         "sse_keepalive_seconds": 1})
    key = gw.add_key("client")
    acct = f"sk-proto-{gw.port}"
    r = gw.add_mock_account(mock, acct, "p0", "coder-model,qwen3-coder-plus,"
                            "text-embedding-v3")
    if not t.ok(r.returncode == 0, "account added", r.stderr):
        return
    bearer = {"Authorization": "Bearer " + key}
    xkey = {"x-api-key": key, "anthropic-version": "2023-06-01"}

    # -- /v1/messages --------------------------------------------------------
    body = {"model": "claude-sonnet-4-5", "max_tokens": 256,
            "system": [{"type": "text", "text": "Be brief.",
                        "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "hello there"}]}
    r = gw.req("POST", "/v1/messages", body=body, headers=xkey)
    j = r.json() or {}
    t.ok(r.status == 200 and j.get("type") == "message" and
         j.get("content") == [{"type": "text", "text": "echo: hello there"}]
         and j.get("stop_reason") == "end_turn" and
         j.get("model") == "claude-sonnet-4-5", "messages: plain answer "
         "(x-api-key)", r.text)
    t.ok(j.get("usage", {}).get("output_tokens") == 3 and
         j.get("usage", {}).get("input_tokens", 0) > 0, "messages: usage")
    up = last_upstream(mock)
    t.ok(up["body"].get("model") == "qwen3-coder-plus" and
         up["body"]["messages"][0] == {"role": "system",
                                       "content": "Be brief."},
         "messages: alias claude-* applied, system first upstream",
         json.dumps(up["body"]))
    r = gw.req("POST", "/v1/messages", body=body, headers=bearer)
    t.ok(r.status == 200, "messages: Authorization: Bearer accepted")

    r = gw.req("POST", "/v1/messages", body=body,
               headers={"x-api-key": "sk-wrong"})
    j = r.json() or {}
    t.ok(r.status == 401 and j.get("type") == "error" and
         j.get("error", {}).get("type") == "authentication_error",
         "messages: bad key -> 401 authentication_error", r.text)
    r = gw.req("POST", "/v1/messages", body=None, headers=xkey)
    j = r.json() or {}
    t.ok(r.status == 400 and j.get("error", {}).get("type") ==
         "invalid_request_error", "messages: no body -> Anthropic 400")
    r = gw.req("POST", "/v1/messages", headers=xkey,
               body={"model": "claude-x", "max_tokens": 5, "messages": [
                   {"role": "tool", "content": "x"}]})
    j = r.json() or {}
    t.ok(r.status == 400 and "role" in j.get("error", {}).get(
        "message", ""), "messages: unknown role refused, says which work",
        r.text)
    r = gw.req("POST", "/v1/messages", headers=xkey,
               body={"model": "unknown-model", "max_tokens": 5,
                     "messages": [{"role": "user", "content": "x"}]})
    j = r.json() or {}
    t.ok(r.status == 404 and j.get("error", {}).get("type") ==
         "not_found_error", "messages: unserved model -> not_found_error")
    r = gw.req("POST", "/v1/messages/count_tokens", headers=xkey,
               body={"model": "claude-x", "messages": [
                   {"role": "user", "content": "x" * 400}]})
    j = r.json() or {}
    t.ok(r.status == 200 and 90 <= j.get("input_tokens", 0) <= 200,
         "count_tokens: an estimate", r.text)

    # Tool round trip, streamed, arguments in 3-character pieces.
    mock.call("POST", "/_mock/config", {"tool_args_chunk": 3, "tool_args":
                                        {"Bash": {"command": "echo hi"}}})
    tb = {"model": "claude-haiku", "max_tokens": 100, "stream": True,
          "tools": [TOOL], "messages": [{"role": "user",
                                         "content": "please call tool"}]}
    r = gw.req("POST", "/v1/messages", body=tb, headers=xkey)
    ev = events(r.text)
    names = [e for e, _ in ev]
    t.ok(r.status == 200 and r.headers.get("content-type", "").startswith(
        "text/event-stream"), "messages stream: SSE")
    t.ok(names[0] == "message_start" and names[-1] == "message_stop" and
         "content_block_start" in names and "message_delta" in names,
         "messages stream: event order", str(names))
    start = [d for e, d in ev if e == "content_block_start"]
    parts = [d["delta"]["partial_json"] for e, d in ev
             if e == "content_block_delta" and
             d["delta"]["type"] == "input_json_delta"]
    md = [d for e, d in ev if e == "message_delta"]
    t.ok(start and start[0]["content_block"]["type"] == "tool_use" and
         start[0]["content_block"]["name"] == "Bash", "messages stream: "
         "tool_use block")
    t.ok(len(parts) > 3 and json.loads("".join(parts)) ==
         {"command": "echo hi"}, f"messages stream: input_json_delta in "
         f"{len(parts)} pieces joins to the input")
    t.ok(md and md[0]["delta"]["stop_reason"] == "tool_use" and
         md[0]["usage"]["output_tokens"] >= 1,
         "messages stream: stop_reason tool_use, usage", json.dumps(md))
    call_id = start[0]["content_block"]["id"] if start else "x"
    tb["messages"] += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": call_id,
                                           "name": "Bash",
                                           "input": {"command": "echo hi"}}]},
        {"role": "user", "content": [{"type": "tool_result",
                                      "tool_use_id": call_id,
                                      "content": "hi"}]}]
    tb["stream"] = False
    r = gw.req("POST", "/v1/messages", body=tb, headers=xkey)
    j = r.json() or {}
    t.ok(r.status == 200 and j.get("content", [{}])[0].get("text") ==
         "tool result: hi", "messages: tool_result answered", r.text)
    up = last_upstream(mock)["body"]["messages"]
    t.ok(up[-1] == {"role": "tool", "content": "hi", "tool_call_id": call_id}
         and up[-2]["tool_calls"][0]["function"]["name"] == "Bash",
         "messages: tool_use/tool_result became tool_calls/role tool",
         json.dumps(up))

    # -- /v1/responses -------------------------------------------------------
    r = gw.req("POST", "/v1/responses", key=key,
               body={"model": "gpt-5-codex", "input": "hello you",
                     "instructions": "Be brief.", "store": False})
    j = r.json() or {}
    t.ok(r.status == 200 and j.get("object") == "response" and
         j.get("status") == "completed" and
         j.get("output_text") == "echo: hello you" and
         j.get("output", [{}])[0].get("type") == "message",
         "responses: plain answer", r.text)
    u = j.get("usage") or {}
    t.ok(u.get("total_tokens") == u.get("input_tokens", 0) +
         u.get("output_tokens", -1) and u.get("output_tokens") == 3,
         "responses: usage")
    up = last_upstream(mock)["body"]
    t.ok(up["model"] == MODEL and up["messages"][0]["role"] == "system",
         "responses: exact alias, instructions as system",
         json.dumps(up))
    r = gw.req("POST", "/v1/responses", key=key,
               body={"model": "gpt-5-codex", "input": "x",
                     "previous_response_id": "resp_123"})
    t.ok(r.status == 400 and is_openai_error(r) and "whole conversation"
         in r.text, "responses: previous_response_id -> clear 400")
    # previous_response_id: turns kept (responses_ttl_seconds), chained.
    tools = [{"type": "function", "name": "lookup",
              "parameters": {"type": "object"}}]
    mock.call("POST", "/_mock/config", {"tool_args": None})
    r1 = gw.req("POST", "/v1/responses", key=key, body={
        "model": MODEL, "input": "call tool first", "tools": tools}).json()
    call = [o for o in r1.get("output", []) if o["type"] == "function_call"]
    r2 = gw.req("POST", "/v1/responses", key=key, body={
        "model": MODEL, "tools": tools, "previous_response_id": r1["id"],
        "input": [{"type": "function_call_output",
                   "call_id": call[0]["call_id"] if call else "x",
                   "output": "found"}]})
    j2 = r2.json() or {}
    up = last_upstream(mock)["body"]["messages"]
    t.ok(r2.status == 200 and j2.get("output_text") == "tool result: found"
         and j2.get("previous_response_id") == r1.get("id") and
         [m["role"] for m in up] == ["user", "assistant", "tool"] and
         up[0]["content"] == "call tool first",
         "responses: previous_response_id replays the stored turn",
         r2.text + json.dumps(up))
    r3 = gw.req("POST", "/v1/responses", key=key, body={
        "model": MODEL, "previous_response_id": j2.get("id"),
        "instructions": "New rules.", "input": "and then?", "stream": True})
    done = [d for _, d in events(r3.text)
            if d.get("type") == "response.completed"]
    up = last_upstream(mock)["body"]["messages"]
    t.ok(done and [m["role"] for m in up] == [
        "system", "user", "assistant", "tool", "assistant", "user"] and
         up[0]["content"] == "New rules." and
         up[4]["content"] == "tool result: found",
         "responses stream: a chain of two turns, instructions not carried",
         json.dumps(up))
    r4 = gw.req("POST", "/v1/responses", key=key, body={
        "model": MODEL, "previous_response_id": done[0]["response"]["id"]
        if done else "x", "input": "third", "store": False})
    j4 = r4.json() or {}
    t.ok(r4.status == 200 and len(last_upstream(mock)["body"]["messages"])
         == 7, "responses: a streamed answer was kept too")
    r5 = gw.req("POST", "/v1/responses", key=key, body={
        "model": MODEL, "previous_response_id": j4.get("id", "x"),
        "input": "x"})
    t.ok(r5.status == 400 and "store: false" in r5.text,
         "responses: store false keeps nothing; the 400 says why", r5.text)
    other = gw.add_key("other")
    r6 = gw.req("POST", "/v1/responses", key=other, body={
        "model": MODEL, "previous_response_id": r1.get("id"), "input": "x"})
    t.ok(r6.status == 400 and is_openai_error(r6),
         "responses: another key cannot continue this key's conversation")

    r = gw.req("POST", "/v1/responses", key="sk-wrong",
               body={"model": MODEL, "input": "x"})
    t.ok(r.status == 401 and is_openai_error(r),
         "responses: bad key -> OpenAI 401")
    rb = {"model": "gpt-5", "stream": True, "input": [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "call tool now"}]}],
        "tools": [{"type": "function", "name": "shell",
                   "parameters": {"type": "object"}}]}
    mock.call("POST", "/_mock/config", {"tool_args": {"shell": {
        "command": ["echo", "hi"]}}})
    r = gw.req("POST", "/v1/responses", key=key, body=rb)
    ev = events(r.text)
    types = [d.get("type") for _, d in ev]
    t.ok(types[:2] == ["response.created", "response.in_progress"] and
         types[-1] == "response.completed", "responses stream: framing",
         str(types))
    seqs = [d.get("sequence_number") for _, d in ev]
    t.ok(seqs == list(range(len(seqs))), "responses stream: sequence numbers")
    args = "".join(d["delta"] for _, d in ev if d.get("type") ==
                   "response.function_call_arguments.delta")
    done = [d["item"] for _, d in ev if d.get("type") ==
            "response.output_item.done"]
    t.ok(json.loads(args or "null") == {"command": ["echo", "hi"]} and
         done and done[-1]["type"] == "function_call" and
         done[-1]["name"] == "shell", "responses stream: function call "
         "arguments from many deltas", json.dumps(done))
    comp = ev[-1][1].get("response", {})
    t.ok(comp.get("usage", {}).get("total_tokens", 0) > 0 and
         comp.get("output", [{}])[-1].get("call_id") == done[-1].get(
             "call_id"), "responses stream: completed carries output, usage")
    rb["input"] += [done[-1] if done else {},
                    {"type": "function_call_output",
                     "call_id": done[-1]["call_id"] if done else "x",
                     "output": "hi\n"}]
    rb["stream"] = False
    r = gw.req("POST", "/v1/responses", key=key, body=rb)
    j = r.json() or {}
    t.ok(r.status == 200 and j.get("output_text") == "tool result: hi\n",
         "responses: function_call_output answered", r.text)

    # -- aliases on the other routes --------------------------------------
    r = gw.req("POST", "/v1/chat/completions", key=key, body={
        "model": "claude-opus-4", "messages": [{"role": "user",
                                                "content": "a"}]})
    t.ok(r.status == 200 and last_upstream(mock)["body"]["model"] ==
         "qwen3-coder-plus", "chat: prefix alias applied")
    r = gw.req("GET", "/v1/models/claude-3-5-haiku-latest", key=key)
    j = r.json() or {}
    t.ok(r.status == 200 and j.get("id") == "claude-3-5-haiku-latest",
         "models/{id}: a name a prefix alias maps answers", r.text)
    r = gw.req("GET", "/v1/models", key=key)
    ids = [m["id"] for m in (r.json() or {}).get("data", [])]
    t.ok("gpt-5-codex" in ids and "claude-*" not in ids,
         "models: exact aliases listed, patterns not", str(ids))

    # -- the first delta arrives while the upstream still streams ---------
    mock.call("POST", "/_mock/config", {"tool_args": None,
                                        "tool_args_chunk": None,
                                        "stream_words": 20,
                                        "stream_chunk_delay_ms": 150})
    for path, hdrs, body, want in (
            ("/v1/messages", xkey, {"model": "claude-x", "max_tokens": 50,
                                    "stream": True, "messages": [
                                        {"role": "user", "content": "go"}]},
             "text_delta"),
            ("/v1/responses", bearer, {"model": MODEL, "stream": True,
                                       "input": "go"},
             "response.output_text.delta")):
        got, raw = first_event_while_streaming(gw, path, hdrs, body, want)
        streams = mock.call("GET", "/_mock/streams")
        t.ok(got and streams and streams[-1]["ended"] is None and
             streams[-1]["chunks_sent"] < 20, f"{path}: first delta reached "
             "the client before the upstream's last chunk",
             json.dumps(streams[-1:]) + raw.decode(errors="replace")[-300:])
        # Let the upstream finish (it sees the client gone or completes).
        end = time.time() + 30
        while time.time() < end and mock.call(
                "GET", "/_mock/streams")[-1]["ended"] is None:
            time.sleep(0.2)
    # A silent upstream: Anthropic ping events (Responses: SSE comments).
    mock.call("POST", "/_mock/config", {"stream_words": 1,
                                        "stream_chunk_delay_ms": 1500})
    r = gw.req("POST", "/v1/messages", headers=xkey, timeout=60, body={
        "model": "claude-x", "max_tokens": 9, "stream": True,
        "messages": [{"role": "user", "content": "slow"}]})
    ev = events(r.text)
    names = [e for e, _ in ev]
    t.ok("ping" in names and names[0] == "message_start" and
         names[-1] == "message_stop" and
         all(d == {"type": "ping"} for e, d in ev if e == "ping"),
         "messages stream: ping events while the upstream is silent",
         str(names))
    r = gw.req("POST", "/v1/responses", key=key, timeout=60, body={
        "model": MODEL, "stream": True, "input": "slow"})
    t.ok(": ping\n\n" in r.text and
         events(r.text)[-1][1].get("type") == "response.completed",
         "responses stream: keep-alive comments while the upstream is "
         "silent")
    mock.call("POST", "/_mock/config", {"stream_words": None,
                                        "stream_chunk_delay_ms": 0})
    # Last: the account stays parked after this.
    mock.call("POST", "/_mock/fail", {"status": 429, "count": 1,
                                       "headers": {"Retry-After": "3600"}})
    r = gw.req("POST", "/v1/messages", headers=xkey, body={
        "model": "claude-x", "max_tokens": 9,
        "messages": [{"role": "user", "content": "x"}]})
    j = r.json() or {}
    t.ok(r.status == 429 and j.get("error", {}).get("type") ==
         "rate_limit_error" and r.headers.get("retry-after"),
         "messages: pool limited -> 429 rate_limit_error with Retry-After",
         r.text)
    mock.call("POST", "/_mock/fail/clear")

    t.ok("sk-proto" not in gw.logs(), "no account key in the logs")


main_guard(test)
