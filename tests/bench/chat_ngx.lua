-- chat_ngx.lua: chat.lua for the chat_ngx rows (model ngx-model, whose account
-- points at the nginx upstream run.sh starts): one small non-streaming chat
-- completion per request.  The client key comes from $BENCH_CLIENT_KEY (the
-- floor relay ignores it and sends its own token upstream).
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_CLIENT_KEY") or "")
wrk.body = '{"model":"ngx-model","messages":[{"role":"user","content":"hello bench"}]}'
