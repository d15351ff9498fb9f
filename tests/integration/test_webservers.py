"""test_webservers.py: the same checks through every supported web server,
each started from Debian's package with the shipped deploy/ file
(webfront.py), on free loopback ports, configs in temp dirs:

  lighttpd "/" and "/qwenrelay/" mounts, fix-root-scriptname on and off
  nginx + qwenrelay serve (dropping root for www-data)
  Apache event MPM + mod_proxy_fcgi + qwenrelay serve
  Apache + mod_fcgid virtual host (workers spawned by Apache, www-data)
  Apache + mod_fcgid + deploy/apache/htaccess in ~alice/public_html/relay
    (the shared-hosting case: binary as qwenrelay.fcgi, qwenrelay.json
    beside it, no server setting for the app)

The checks: /health; 401 OpenAI error without a key; the client key
reaches the app; /health/deep and /metrics with the admin key; chat, not
streamed;
a stream whose first content event reaches the client well before the
upstream sends its last; 413 over max_body_bytes; for the htaccess case,
qwenrelay.json (and the rest of the directory) not served.

Set QR_WEBSERVERS=lighttpd,nginx,... to run some only.
"""
import json
import os
import shutil
import socket
import subprocess
import time

import http.client as httpclient
from urllib.parse import urljoin

from qrtest import (BIN, Mock, _cleanups, http, is_openai_error, main_guard,
                    wait_port)
import webfront as W
from test_concurrency import Hung

MODEL = "coder-model"
SLASHED = "Qwen/Qwen3-Coder"	# a model id with a "/", sent as %2F
MAX_BODY = 65536


class App:
    """A qwenrelay config, state dir, keys and one API-key account at the
    mock.  owner: give the whole directory to that user afterwards (the
    worker will run as it)."""

    def __init__(self, mock, owner=None, tag="app"):
        self.dir = W.tmpdir(f"qrweb.{tag}.")
        self.state = os.path.join(self.dir, "state")
        self.log = os.path.join(self.dir, "qwenrelay.log")
        self.config = {"state_dir": self.state, "log_file": self.log,
                       "log_level": "info", "max_body_bytes": MAX_BODY}
        self.config_path = os.path.join(self.dir, "qwenrelay.json")
        self.write_config()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("QWENRELAY_")}
        self.env["QWENRELAY_CONFIG"] = self.config_path
        self.client = self.cli("keys", "add", "client")
        self.admin = self.cli("keys", "add", "ops", "--admin")
        key = f"sk-web-{tag}-{os.getpid()}"
        mock.call("POST", "/_mock/apikeys", {"key": key})
        self.cli("accounts", "add", "--provider", "openai-compatible",
                 "--label", "mock", "--base-url", mock.url + "/v1",
                 "--models", f"{MODEL},{SLASHED}", input=key + "\n")
        if owner:
            for root, dirs, files in os.walk(self.dir):
                for n in dirs + files:
                    shutil.chown(os.path.join(root, n), owner, owner)
            shutil.chown(self.dir, owner, owner)

    def write_config(self, **extra):
        self.config.update(extra)
        with open(self.config_path, "w") as f:
            json.dump(self.config, f)
        os.chmod(self.config_path, 0o644)

    def cli(self, *args, input=None):
        r = subprocess.run([BIN, *args], env=self.env, input=input,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"qwenrelay {' '.join(args)}: {r.stderr}")
        return r.stdout.strip()

    def logs(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""


class Serve:
    """qwenrelay serve on a unix socket, started as root with user
    www-data: the socket and state go to www-data before it serves."""

    def __init__(self, app, workers=2):
        self.sock = os.path.join(app.dir, "qwenrelay.sock")
        app.write_config(user="www-data", listen_group="www-data")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", self.sock, "--workers", str(workers)],
            env=app.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _cleanups.append(self.stop)
        end = time.time() + 20
        while not os.path.exists(self.sock) and time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("serve exited: " +
                                   self.proc.stderr.read().decode())
            time.sleep(0.05)
        time.sleep(0.3)  # the privilege drop follows the bind

    def worker_users(self):
        users = set()
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/status") as f:
                    st = f.read()
            except OSError:
                continue
            if f"PPid:\t{self.proc.pid}\n" in st or d == str(self.proc.pid):
                uid = [ln for ln in st.splitlines()
                       if ln.startswith("Uid:")][0].split()[1]
                users.add(int(uid))
        return users

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(35)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def uids_running(path):
    """The uids of the processes running the program at path."""
    uids = set()
    for d in os.listdir("/proc"):
        try:
            if d.isdigit() and os.readlink(f"/proc/{d}/exe") == path:
                uids.add(os.stat(f"/proc/{d}").st_uid)
        except OSError:
            pass
    return uids


def stream(front, key, mock):
    """A paced stream; returns (status, client time of the first content
    event, upstream time of its last chunk, events)."""
    mock.call("POST", "/_mock/config", {"stream_chunk_delay_ms": 300,
                                        "stream_words": 10})
    before = len(mock.call("GET", "/_mock/streams"))
    conn = httpclient.HTTPConnection("127.0.0.1", front.port, timeout=60)
    body = json.dumps({"model": MODEL, "stream": True, "messages": [
        {"role": "user", "content": "count to ten"}]})
    conn.request("POST", front.base + "/v1/chat/completions", body=body,
                 headers={"Authorization": "Bearer " + key,
                          "Content-Type": "application/json"})
    r = conn.getresponse()
    first, events = None, []
    while True:
        line = r.readline()
        if not line:
            break
        line = line.decode(errors="replace").strip()
        if not line.startswith("data: "):
            continue
        events.append(line[6:])
        if first is None and line[6:] != "[DONE]":
            try:
                d = json.loads(line[6:])["choices"][0]["delta"]
                if d.get("content"):
                    first = time.time()
            except (ValueError, KeyError, IndexError):
                pass
        if line[6:] == "[DONE]":
            break
    conn.close()
    mock.call("POST", "/_mock/config", {"stream_chunk_delay_ms": 0,
                                        "stream_words": None})
    # The mock notes the end after its last write: under load the client
    # can see [DONE] first, so wait for the note (a bound, not a timing).
    end = time.time() + 10
    while True:
        streams = mock.call("GET", "/_mock/streams")[before:]
        ended = streams[-1]["ended"] if streams else None
        if ended is not None or time.time() > end:
            break
        time.sleep(0.1)
    return r.status, first, ended, events


def check(t, front, app, mock, htaccess=False):
    """The same checks through any front."""
    n = front.name
    base = front.base

    def req(method, path, key=None, body=None, headers=None):
        h = dict(headers or {})
        if key:
            h["Authorization"] = "Bearer " + key
        return http(front.port, method, base + path, body, h, timeout=60)

    r = req("GET", "/health")
    t.ok(r.status == 200 and (r.json() or {}).get("status") == "ok",
         f"{n}: GET /health", f"{r.status} {r.text[:300]}\n{front.logs()}"
         f"\n{app.logs()}")
    r = req("GET", "/v1/models")
    t.ok(r.status == 401 and is_openai_error(r),
         f"{n}: no key: 401 OpenAI error", f"{r.status} {r.text[:300]}")
    r = req("GET", "/v1/models", key=app.client)
    ids = [m.get("id") for m in (r.json() or {}).get("data", [])]
    t.ok(r.status == 200 and MODEL in ids,
         f"{n}: the client key reaches the app (GET /v1/models)",
         f"{r.status} {r.text[:300]}")
    if not htaccess:
        # Not through .htaccess: Apache refuses %2F unless the server
        # config says AllowEncodedSlashes (README, troubleshooting).
        r = req("GET", "/v1/models/" + SLASHED.replace("/", "%2F"),
                key=app.client)
        t.ok(r.status == 200 and (r.json() or {}).get("id") == SLASHED,
             f"{n}: GET /v1/models/{{id}} with a %2F in the id",
             f"{r.status} {r.text[:300]}")
    r = req("GET", "/health/deep", key=app.admin)
    t.ok(r.status == 200 and "store" in (r.json() or {}),
         f"{n}: /health/deep with the admin key", f"{r.status} {r.text[:300]}")
    r = req("GET", "/metrics", key=app.admin)
    t.ok(r.status == 200 and "# TYPE" in r.text,
         f"{n}: /metrics with the admin key", f"{r.status} {r.text[:300]}")
    # /admin/ (trailing slash) must land on a page whose script loads.
    r = req("GET", "/admin/")
    page = urljoin(base + "/admin/", r.headers.get("location", ""))
    t.ok(r.status == 301 and page == base + "/admin",
         f"{n}: /admin/ redirects to {base}/admin",
         f"{r.status} {r.headers.get('location')!r} -> {page}")
    r = http(front.port, "GET", urljoin(page, "admin/app.js"))
    t.ok(r.status == 200 and "javascript" in r.headers.get(
         "content-type", ""), f"{n}: the page's script loads from there",
         f"{r.status} {r.text[:200]}")
    r = req("POST", "/v1/chat/completions", key=app.client, body={
        "model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    j = r.json() or {}
    content = (j.get("choices") or [{}])[0].get("message", {}).get("content")
    t.ok(r.status == 200 and content, f"{n}: chat, not streamed",
         f"{r.status} {r.text[:300]}\n{app.logs()}")

    status, first, ended, events = stream(front, app.client, mock)
    t.ok(status == 200 and events and events[-1] == "[DONE]" and
         first is not None and ended is not None and first + 1.0 < ended,
         f"{n}: the first streamed event arrives before the upstream's "
         f"last chunk", f"status {status}, first event at {first}, "
         f"upstream ended at {ended}, {len(events)} events")

    big = {"model": MODEL, "messages": [
        {"role": "user", "content": "x" * (MAX_BODY + 16384)}]}
    r = req("POST", "/v1/chat/completions", key=app.client, body=big)
    t.ok(r.status == 413 and is_openai_error(r),
         f"{n}: 413 OpenAI error over max_body_bytes",
         f"{r.status} {r.text[:300]}")

    if getattr(front, "app", None):
        t.eq({33}, uids_running(front.app),
             f"{n}: the workers Apache spawned run as www-data")

    if htaccess:
        for path in ("/qwenrelay.json", "/.htaccess", "/",
                     "/qwenrelay.fcgi"):
            r = req("GET", path)
            t.ok(r.status in (403, 404) and "state_dir" not in r.text,
                 f"{n}: {path} is not served ({r.status})",
                 f"{r.status} {r.text[:300]}")



def client_leaves(t, front, app):
    """A client that leaves while its call hangs at the upstream frees it
    within seconds (the worker's watch), streaming or not, behind this
    server.  The request carries Host with the port, as every HTTP
    client sends it on a non-default port."""
    hung = Hung()
    app.cli("accounts", "add", "--provider", "openai-compatible",
            "--label", "hung", "--base-url",
            f"http://127.0.0.1:{hung.port}/v1", "--models", "hung-model",
            input="sk-hung\n")
    for stream in (False, True):
        body = json.dumps({"model": "hung-model", "stream": stream,
                           "messages": [{"role": "user",
                                         "content": "hi"}]}).encode()
        s = socket.create_connection(("127.0.0.1", front.port), timeout=30)
        s.sendall((f"POST /v1/chat/completions HTTP/1.1\r\n"
                   f"Host: 127.0.0.1:{front.port}\r\n"
                   f"Authorization: Bearer {app.client}\r\n"
                   f"Content-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        opened = hung.wait_open(1, 20)
        s.close()
        end = time.monotonic() + 5
        while hung.open_count() and time.monotonic() < end:
            time.sleep(0.05)
        kind = "streaming" if stream else "non-streaming"
        t.ok(opened == 1 and hung.open_count() == 0,
             f"{front.name}: a {kind} client that leaves frees its hung "
             f"upstream call within 5 s")

def server_errors(t, front, sv=None, too_large=413):
    """The web server's own errors on the app's paths are OpenAI JSON:
    a body over its limit (1 MiB here; mod_fcgid answers 500 for that),
    and the app down (sv stopped)."""
    n = front.name
    what = f"{n}: its own {too_large} (body over its limit) is OpenAI JSON"
    try:
        r = http(front.port, "POST", front.base + "/v1/chat/completions",
                 b"{" + b" " * (1 << 20) + b"}",
                 {"Content-Type": "application/json"}, timeout=60)
        t.ok(r.status == too_large and is_openai_error(r), what,
             f"{r.status} {r.headers.get('content-type')} {r.text[:200]}")
    except OSError as e:
        t.ok(False, what, repr(e))
    if sv is None:
        return
    sv.stop()
    r = http(front.port, "GET", front.base + "/v1/models", timeout=60)
    t.ok(r.status in (502, 503) and is_openai_error(r),
         f"{n}: app down: {r.status} is OpenAI JSON",
         f"{r.status} {r.headers.get('content-type')} {r.text[:200]}")


def test(t):
    only = os.environ.get("QR_WEBSERVERS", "lighttpd,nginx,proxy,fcgid,"
                          "htaccess").split(",")
    mock = Mock()

    if "lighttpd" in only:
        for prefix in ("/", "/qwenrelay/"):
            for fix in ("enable", "disable"):
                app = App(mock, tag="l")
                front = W.lighttpd(BIN, prefix, fix,
                                   env={"QWENRELAY_CONFIG": app.config_path})
                check(t, front, app, mock)
                front.stop()

    if "nginx" in only:
        app = App(mock, tag="n")
        sv = Serve(app)
        t.eq({33}, sv.worker_users(),
             "serve started as root runs master and workers as www-data")
        front = W.nginx(sv.sock, body_max="1m")
        check(t, front, app, mock)
        client_leaves(t, front, app)
        server_errors(t, front, sv)
        front.stop()
        sv.stop()

    if "proxy" in only:
        app = App(mock, tag="p")
        sv = Serve(app)
        front = W.apache_proxy(sv.sock, body_max=1 << 20)
        check(t, front, app, mock)
        client_leaves(t, front, app)
        server_errors(t, front, sv)
        front.stop()
        sv.stop()

    if "fcgid" in only:
        app = App(mock, owner="www-data", tag="f")
        front = W.apache_fcgid_vhost(BIN, app.config_path, body_max=1 << 20)
        check(t, front, app, mock)
        client_leaves(t, front, app)
        server_errors(t, front, too_large=500)
        front.stop()

    if "htaccess" in only:
        # Set up the state as the hosting user would (the CLI run over
        # SSH, or the first request), then move the config beside the
        # binary: no server setting points the app at it.
        app = App(mock, owner="www-data", tag="h")
        with open(app.config_path) as f:
            conf = f.read()
        os.unlink(app.config_path)
        # The host has set FcgidOutputBufferSize 0 (server level; no
        # .htaccess can): README asks hosts for it.
        front = W.apache_htaccess(BIN, {"qwenrelay.json": conf},
                                  host_conf="FcgidOutputBufferSize 0\n")
        app.config_path = os.path.join(front.dir, "qwenrelay.json")
        check(t, front, app, mock, htaccess=True)
        front.stop()

        # A host that keeps mod_fcgid's defaults: streams still arrive
        # whole and well-formed, only all at once (64 KiB buffer); the
        # cost is measured in tests/bench/webservers.py.
        front = W.apache_htaccess(BIN, {"qwenrelay.json": conf})
        status, first, ended, events = stream(front, app.client, mock)
        t.ok(status == 200 and len(events) > 2 and events[-1] == "[DONE]",
             f"{front.name}, host defaults: the stream arrives complete",
             f"{status} {events[-3:]}")
        t.diag(f"host defaults: first event {first - ended:+.2f} s after "
               f"the upstream's last chunk" if first and ended else
               "host defaults: no timing")
        front.stop()

        # A state_dir the hosting user cannot create: /health says which
        # file to fix and for which user (the user may have no error log).
        locked = W.tmpdir("qrweb.locked.")
        bad = json.dumps({"state_dir": os.path.join(locked, "state")})
        front = W.apache_htaccess(BIN, {"qwenrelay.json": bad})
        r = http(front.port, "GET", front.base + "/health", timeout=60)
        msg = ((r.json() or {}).get("message") or "")
        want = os.path.join(front.dir, "qwenrelay.json")
        t.ok(r.status == 503 and "cannot create state dir" in msg and
             f"set state_dir in {want}" in msg and "www-data" in msg,
             f"{front.name}: a state_dir www-data cannot create: /health "
             f"names the file to fix", f"{r.status} {r.text[:400]}")
        front.stop()


if __name__ == "__main__":
    main_guard(test)
