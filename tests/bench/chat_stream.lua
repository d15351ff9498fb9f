-- chat_stream.lua: wrk script for tests/bench/run.sh: one small streaming
-- (SSE) chat completion per request; wrk times the whole stream, first byte
-- to "data: [DONE]".  The client key comes from $BENCH_CLIENT_KEY.
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_CLIENT_KEY") or "")
wrk.body = '{"model":"coder-model","stream":true,' ..
    '"messages":[{"role":"user","content":"hello bench stream"}]}'
