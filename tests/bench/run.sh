#!/usr/bin/env bash
# tests/bench/run.sh: measure qwenrelay against bare-libfcgi floors.
#
# Starts, all on 127.0.0.1 with free ports, the mock Qwen server and three
# lighttpd instances from deploy/lighttpd/qwenrelay.conf.in: qwenrelay
# (WORKERS workers), hello_fcgi (the floor for /health) and floor_relay (the
# floor for chat: libfcgi + one persistent libcurl handle).  Runs wrk on
# each pair, prints requests/s, p50, p99 and the ratio qwenrelay/floor, and
# writes the table to tests/bench/out/results.txt.  Also records the RSS of
# an idle qwenrelay worker and the binary's size.  Chat is measured only
# once the gateway has a chat route and `qwenrelay accounts add` works;
# until then it says so and skips.  Everything started here is stopped at
# exit.  See tests/bench/README.md.
#
# The chat_ngx rows use nginx as the upstream instead of the Python mock:
# nginx answers POST /v1/chat/completions with a canned chat completion
# (keepalive on), so the upstream is not the bottleneck (the single-process
# mock is, at CONNS connections: qwenrelay's threads give it CONNS
# concurrent upstream connections, the one-request-per-process floor only
# WORKERS).  Both targets relay to the same nginx.
#
# Environment: DURATION (10s), CONNS (16), THREADS (2), WORKERS (4),
# WARMUP (2s), REPEAT (3 alternated runs per target; the table shows the
# median), WORKLOADS (which pairs), REQUEST_LOG (false), QR_BUILDDIR (the
# build tree, default: this source tree), QR_BENCH_CONFIG (the gateway's
# JSON config, default {}).
set -eu

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILDDIR=${QR_BUILDDIR:-$SRCDIR}
BIN=$BUILDDIR/app/qwenrelay
HELLO=$BUILDDIR/tests/bench/hello_fcgi
FLOOR=$BUILDDIR/tests/bench/floor_relay
DURATION=${DURATION:-10s}
REPEAT=${REPEAT:-3}
CONNS=${CONNS:-16}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-4}
WARMUP=${WARMUP:-2s}
# Which pairs to run (names as in the table), e.g. "chat chat_c1".
WORKLOADS=${WORKLOADS:-health health_c1 chat chat_c1 chat_ngx chat_ngx_c1 chat_stream}
# qwenrelay's request log: off by default here, as the floors log nothing;
# REQUEST_LOG=true measures the default configuration.
REQUEST_LOG=${REQUEST_LOG:-false}
OUT=$BUILDDIR/tests/bench/out
LIGHTTPD=$(command -v lighttpd || echo /usr/sbin/lighttpd)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

# ------------------------------------------------------------ prerequisites
[ -x "$BIN" ] || die "$BIN not built: run make first"
if [ ! -x "$HELLO" ] || [ ! -x "$FLOOR" ]; then
	say "building the floors: make bench"
	make -C "$BUILDDIR" bench >/dev/null || die "make bench failed"
fi
[ -x "$LIGHTTPD" ] || die "lighttpd not found (apt-get install lighttpd)"
if ! command -v wrk >/dev/null; then
	say "wrk not found: apt-get install -y wrk"
	apt-get install -y wrk >/dev/null || die "cannot install wrk"
fi
command -v curl >/dev/null || die "curl not found (apt-get install curl)"

# ------------------------------------------------------------ cleanup
TMP=$(mktemp -d /tmp/qrbench.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null || true
	done
	for p in $PIDS; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
	local i
	for i in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# Only our variables reach the workers (lighttpd passes its environment on).
for v in $(env | sed -n 's/^\(QWENRELAY_[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
# QR_BENCH_CONFIG: the gateway's config file (JSON), e.g. to measure with
# '{"access_log":"/tmp/x.jsonl"}'; default {}.
printf '%s\n' "${QR_BENCH_CONFIG:-"{}"}" >"$TMP/qwenrelay.json"
export QWENRELAY_CONFIG=$TMP/qwenrelay.json
export QWENRELAY_STATE_DIR=$TMP/state
export QWENRELAY_LOG_FILE=$TMP/qwenrelay.log
export QWENRELAY_REQUEST_LOG=$REQUEST_LOG
# The upstream key of the bench account: in the environment before the
# workers start, whether the gateway reads it at add time or at run time.
BENCH_KEY=sk-bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
export BENCH_KEY

# ------------------------------------------------------------ mock
python3 "$SRCDIR/tests/mock/mock_qwen.py" --port 0 \
	--portfile "$TMP/mock.port" >/dev/null 2>&1 &
PIDS="$PIDS $!"
for i in $(seq 100); do
	[ -s "$TMP/mock.port" ] && break
	sleep 0.1
done
[ -s "$TMP/mock.port" ] || die "mock did not start"
MOCKPORT=$(cat "$TMP/mock.port")
MOCK=http://127.0.0.1:$MOCKPORT
curl -sf -o /dev/null -X POST "$MOCK/_mock/apikeys" \
	-H 'Content-Type: application/json' -d "{\"key\":\"$BENCH_KEY\"}" ||
	die "cannot register the bench key at the mock"

# ------------------------------------------------------------ nginx upstream
# A canned answer shaped like the mock's (id, choices, usage), for the
# chat_ngx rows.  One nginx worker: it needs a few microseconds a request.
NGXPORT=
case " $WORKLOADS " in *" chat_ngx"*)
	[ -x "$NGINX" ] || die "nginx not found (apt-get install nginx) for chat_ngx"
	NGXPORT=$(free_port)
	mkdir -p "$TMP/nginx"
	cat >"$TMP/nginx/nginx.conf" <<NGX
daemon off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $TMP/nginx/body;
	proxy_temp_path $TMP/nginx/proxy;
	fastcgi_temp_path $TMP/nginx/fastcgi;
	uwsgi_temp_path $TMP/nginx/uwsgi;
	scgi_temp_path $TMP/nginx/scgi;
	keepalive_timeout 60s;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$NGXPORT;
		location = /v1/chat/completions {
			default_type application/json;
			return 200 '{"id":"chatcmpl-0123456789abcdef01234567","object":"chat.completion","created":1764400000,"model":"ngx-model","choices":[{"index":0,"message":{"role":"assistant","content":"echo: hello bench"},"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":3,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":0}}}';
		}
	}
}
NGX
	"$NGINX" -e "$TMP/nginx/error.log" -p "$TMP/nginx" \
		-c "$TMP/nginx/nginx.conf" >"$TMP/nginx/stdout" 2>&1 &
	PIDS="$PIDS $!"
	wait_port "$NGXPORT" || die "nginx did not start: $(cat "$TMP/nginx/error.log" "$TMP/nginx/stdout" 2>/dev/null)"
	;;
esac

# ------------------------------------------------------------ lighttpd
# start_lighttpd NAME BACKEND: a lighttpd from the deploy template; sets
# PORT_<NAME> and LPID_<NAME>.
start_lighttpd() {
	local name=$1 backend=$2 run=$TMP/$1 port
	port=$(free_port)
	mkdir -p "$run/www"
	python3 - "$SRCDIR/deploy/lighttpd/qwenrelay.conf.in" \
		"$run/lighttpd.conf" "$port" "$run" "$backend" <<'PY'
import sys
src, dst, port, run, backend = sys.argv[1:]
conf = open(src).read()
for k, v in {"BIND": "127.0.0.1", "PORT": port, "RUN_DIR": run,
             "PREFIX": "/", "FIX_ROOT": "enable", "BACKEND": backend}.items():
    conf = conf.replace("@%s@" % k, v)
open(dst, "w").write(conf)
PY
	"$LIGHTTPD" -D -f "$run/lighttpd.conf" >"$run/stdout" 2>&1 &
	PIDS="$PIDS $!"
	eval "PORT_$name=$port LPID_$name=$!"
	wait_port "$port" || die "lighttpd ($name) did not start: $(cat "$run"/*.log "$run/stdout" 2>/dev/null)"
}

qr_env="\"QWENRELAY_CONFIG\" => \"$QWENRELAY_CONFIG\", \"QWENRELAY_STATE_DIR\" => \"$QWENRELAY_STATE_DIR\", \"QWENRELAY_LOG_FILE\" => \"$QWENRELAY_LOG_FILE\", \"QWENRELAY_REQUEST_LOG\" => \"$REQUEST_LOG\""
start_lighttpd qr "\"bin-path\" => \"$BIN\", \"socket\" => \"$TMP/qr/fcgi.sock\", \"max-procs\" => $WORKERS, \"bin-environment\" => ($qr_env),"
start_lighttpd hello "\"bin-path\" => \"$HELLO\", \"socket\" => \"$TMP/hello/fcgi.sock\", \"max-procs\" => $WORKERS,"
start_lighttpd floor "\"bin-path\" => \"$FLOOR\", \"socket\" => \"$TMP/floor/fcgi.sock\", \"max-procs\" => $WORKERS, \"bin-environment\" => (\"FLOOR_UPSTREAM\" => \"$MOCK/v1/chat/completions\", \"FLOOR_TOKEN\" => \"$BENCH_KEY\"),"

[ -z "$NGXPORT" ] ||
	start_lighttpd floorngx "\"bin-path\" => \"$FLOOR\", \"socket\" => \"$TMP/floorngx/fcgi.sock\", \"max-procs\" => $WORKERS, \"bin-environment\" => (\"FLOOR_UPSTREAM\" => \"http://127.0.0.1:$NGXPORT/v1/chat/completions\", \"FLOOR_TOKEN\" => \"$BENCH_KEY\"),"

BENCH_CLIENT_KEY=$("$BIN" keys add bench 2>/dev/null) || die "keys add failed"
export BENCH_CLIENT_KEY

# ------------------------------------------------------------ measuring
RESULTS=$TMP/results.tsv
: >"$RESULTS"

# to_ms VALUE: wrk's "1.23ms" / "456.00us" / "1.20s" in milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0
		else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
		printf "%.3f", n }'
}

# bench WORKLOAD TARGET URL RUN [LUA]: one wrk run (after a warm-up on
# the first RUN), one line in $RESULTS.  A WORKLOAD ending in _c1 runs on
# one connection: no queueing and no CPU contention, so its latency is the
# per-request cost itself.
bench() {
	local workload=$1 target=$2 url=$3 run=$4 lua=${5:-} out rps p50 p99 bad
	local c=$CONNS t=$THREADS
	case $workload in *_c1) c=1 t=1 ;; esac
	local args=(--latency -t"$t" -c"$c")
	[ -n "$lua" ] && args+=(-s "$SRCDIR/tests/bench/$lua")
	say "wrk $workload on $target ($DURATION, $c connections, run $run of $REPEAT)"
	[ "$run" != 1 ] || wrk "${args[@]}" -d"$WARMUP" "$url" >/dev/null 2>&1 || true
	out=$(wrk "${args[@]}" -d"$DURATION" "$url" 2>&1) ||
		die "wrk failed: $out"
	printf '%s\n' "$out" >"$OUT/wrk-$workload-$target-$run.txt"
	rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ { print $2 }')
	p50=$(to_ms "$(printf '%s\n' "$out" | awk '$1 == "50%" { print $2 }')")
	p99=$(to_ms "$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }')")
	bad=$(printf '%s\n' "$out" | awk '/Non-2xx/ { print $NF }')
	bad=${bad:-0}
	[ "$bad" = 0 ] || say "  warning: $bad non-2xx answers from $target"
	if printf '%s\n' "$out" | grep -q 'Socket errors'; then
		say "  warning: $(printf '%s\n' "$out" | grep 'Socket errors')"
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$target" "$rps" "$p50" \
		"$p99" "$bad" >>"$RESULTS"
}

# pair WORKLOAD QR_URL FLOOR FLOOR_URL [LUA]: qwenrelay and its floor,
# alternated REPEAT times so that a burst of outside load hits both.
pair() {
	local i
	case " $WORKLOADS " in *" $1 "*) ;; *) return 0 ;; esac
	for i in $(seq "$REPEAT"); do
		bench "$1" qwenrelay "$2" "$i" "${5:-}"
		bench "$1" "$3" "$4" "$i" "${5:-}"
	done
}

# post_status URL BODY: HTTP status of one chat POST with the client key.
post_status() {
	curl -s -o "$TMP/probe.out" -w '%{http_code}' -X POST "$1" \
		-H "Authorization: Bearer $BENCH_CLIENT_KEY" \
		-H 'Content-Type: application/json' -d "$2" || echo 000
}

# rss_of BIN LIGHTTPD_PID: VmRSS of one worker lighttpd spawned, and its
# RssAnon: what each further worker adds (the rest is mostly shared
# library pages).
rss_of() {
	local exe=$1 parent=$2 d
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d/exe" 2>/dev/null)" = "$exe" ] || continue
		awk '/^PPid:/ { p = $2 } END { exit p != '"$parent"' }' \
			"$d/status" 2>/dev/null || continue
		awk '/^VmRSS:/ { rss = $2 } /^RssAnon:/ { anon = $2 }
		    END { printf "%s kB (private %s kB)", rss, anon }' "$d/status"
		return 0
	done
	echo "?"
}

mkdir -p "$OUT"
rm -f "$OUT"/wrk-*.txt
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
NOTES=""
note() { say "$*"; NOTES="$NOTES$*
"; }

pair health "http://127.0.0.1:$PORT_qr/health" \
	hello_fcgi "http://127.0.0.1:$PORT_hello/health"
pair health_c1 "http://127.0.0.1:$PORT_qr/health" \
	hello_fcgi "http://127.0.0.1:$PORT_hello/health"
sleep 1
RSS_QR=$(rss_of "$(readlink -f "$BIN")" "$LPID_qr")
RSS_HELLO=$(rss_of "$(readlink -f "$HELLO")" "$LPID_hello")
RSS_FLOOR=$(rss_of "$(readlink -f "$FLOOR")" "$LPID_floor")

CHAT='{"model":"coder-model","messages":[{"role":"user","content":"hello bench"}]}'
CHAT_STREAM='{"model":"coder-model","stream":true,"messages":[{"role":"user","content":"hello bench"}]}'

# The floor relay must work whatever the gateway can do yet.
st=$(post_status "http://127.0.0.1:$PORT_floor/v1/chat/completions" "$CHAT")
[ "$st" = 200 ] || note "floor_relay: non-streaming chat answered $st: $(head -c 300 "$TMP/probe.out")"
st=$(post_status "http://127.0.0.1:$PORT_floor/v1/chat/completions" "$CHAT_STREAM")
grep -q 'data: \[DONE\]' "$TMP/probe.out" ||
	note "floor_relay: streaming chat answered $st without [DONE]"

chat=yes
st=$(post_status "http://127.0.0.1:$PORT_qr/v1/chat/completions" "$CHAT")
if [ "$st" = 404 ]; then
	note "chat route not available yet, skipped"
	chat=no
fi
if [ $chat = yes ]; then
	if ! add=$("$BIN" accounts add --provider openai-compatible \
	    --label bench --base-url "$MOCK/v1" --models coder-model \
	    --api-key-env BENCH_KEY 2>&1); then
		note "qwenrelay accounts add failed (not implemented yet?), chat skipped: $(printf '%s' "$add" | head -n 3)"
		chat=no
	fi
fi
if [ $chat = yes ] && [ -n "$NGXPORT" ]; then
	# Its own upstream key: an account is known by its key.
	BENCH_NGX_KEY=$BENCH_KEY-ngx
	export BENCH_NGX_KEY
	"$BIN" accounts add --provider openai-compatible --label bench-ngx \
	    --base-url "http://127.0.0.1:$NGXPORT/v1" --models ngx-model \
	    --api-key-env BENCH_NGX_KEY >/dev/null 2>&1 ||
		die "qwenrelay accounts add (nginx upstream) failed"
	CHAT_NGX='{"model":"ngx-model","messages":[{"role":"user","content":"hello bench"}]}'
	for port in "$PORT_qr" "$PORT_floorngx"; do
		st=$(post_status "http://127.0.0.1:$port/v1/chat/completions" "$CHAT_NGX")
		[ "$st" = 200 ] || die "chat via nginx on port $port answered $st: $(head -c 300 "$TMP/probe.out"); accounts: $("$BIN" accounts list 2>&1)"
	done
fi
if [ $chat = yes ]; then
	st=$(post_status "http://127.0.0.1:$PORT_qr/v1/chat/completions" "$CHAT")
	if [ "$st" != 200 ]; then
		note "chat through qwenrelay answered $st, chat skipped: $(head -c 300 "$TMP/probe.out")"
		chat=no
	fi
fi
if [ $chat = yes ]; then
	pair chat "http://127.0.0.1:$PORT_qr" \
		floor_relay "http://127.0.0.1:$PORT_floor" chat.lua
	pair chat_c1 "http://127.0.0.1:$PORT_qr" \
		floor_relay "http://127.0.0.1:$PORT_floor" chat.lua
	pair chat_ngx "http://127.0.0.1:$PORT_qr" \
		floor_relay "http://127.0.0.1:${PORT_floorngx:-0}" chat_ngx.lua
	pair chat_ngx_c1 "http://127.0.0.1:$PORT_qr" \
		floor_relay "http://127.0.0.1:${PORT_floorngx:-0}" chat_ngx.lua
	pair chat_stream "http://127.0.0.1:$PORT_qr" \
		floor_relay "http://127.0.0.1:$PORT_floor" chat_stream.lua
fi

# ------------------------------------------------------------ report
SIZE_FILE=$(stat -c %s "$BIN")
SIZE_TEXT=$(size "$BIN" 2>/dev/null | awk 'NR == 2 { print "text " $1 ", data " $2 ", bss " $3 }')
{
	echo "qwenrelay bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$SRCDIR" rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running skews the numbers)"
	echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency (_c1: -t1 -c1), median of $REPEAT alternated runs; $WORKERS FastCGI workers per lighttpd; $(nproc) CPUs, shared by wrk, lighttpd, workers and the mock"
	echo
	python3 - "$RESULTS" <<'PY'
# Median per (workload, target) over the runs; rows come in pairs,
# qwenrelay first, then its floor.
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    w, t, *vals = line.rstrip("\n").split("\t")
    rows.setdefault((w, t), []).append([float(v or 0) for v in vals])
print("%-12s %-12s %11s %10s %10s %7s" % ("workload", "target", "req/s",
                                           "p50 ms", "p99 ms", "non2xx"))
keys = list(rows)
for qr, floor in zip(keys[0::2], keys[1::2]):
    med = {}
    for k in (qr, floor):
        runs = rows[k]
        med[k] = [statistics.median(r[c] for r in runs) for c in range(3)]
        print("%-12s %-12s %11.1f %10.3f %10.3f %7d" % (
            k[0], k[1], *med[k], sum(r[3] for r in runs)))
    print("%-12s %-12s %11.2f %10.2f %10.2f" % (qr[0], "ratio", *[
        a / b if b else 0 for a, b in zip(med[qr], med[floor])]))
PY
	echo "(ratio = qwenrelay / floor: req/s below 1 and latency above 1 are the gateway's cost)"
	echo
	echo "idle worker RSS: qwenrelay $RSS_QR; hello_fcgi $RSS_HELLO; floor_relay $RSS_FLOOR"
	echo "app/qwenrelay: $SIZE_FILE bytes on disk; $SIZE_TEXT"
	[ -z "$NOTES" ] || printf '\n%s' "$NOTES"
} | tee "$OUT/results.txt"
