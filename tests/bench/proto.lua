-- proto.lua: wrk script for tests/bench/protocols.py: one POST per request,
-- path and body from $BENCH_PATH and $BENCH_BODY, the client key from
-- $BENCH_CLIENT_KEY.
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_CLIENT_KEY") or "")
wrk.body = os.getenv("BENCH_BODY")
