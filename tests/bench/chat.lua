-- chat.lua: wrk script for tests/bench/run.sh: one small non-streaming chat
-- completion per request.  The client key comes from $BENCH_CLIENT_KEY (the
-- floor relay ignores it and sends its own token upstream).  $BENCH_PATH
-- overrides the path (a mount prefix: tests/bench/webservers.py).
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_CLIENT_KEY") or "")
wrk.body = '{"model":"coder-model","messages":[{"role":"user","content":"hello bench"}]}'
