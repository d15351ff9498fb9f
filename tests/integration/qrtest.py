"""qrtest.py: the integration-test harness (Python 3 standard library only).

Starts real pieces on 127.0.0.1 only: a lighttpd on a free port using
deploy/lighttpd/qwenrelay.conf.in with the built binary as its FastCGI
workers (or a `qwenrelay serve` pool), and the mock Qwen server.  Each
Gateway has its own temporary state directory; everything is stopped and
removed at exit.  Output is TAP, read by automake's tap-driver.sh.
"""
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import http.client as httpclient

BUILDDIR = os.environ.get("QR_BUILDDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
SRCDIR = os.environ.get("QR_SRCDIR") or BUILDDIR
BIN = os.path.join(BUILDDIR, "app", "qwenrelay")
LIGHTTPD = shutil.which("lighttpd") or "/usr/sbin/lighttpd"


class TAP:
    def __init__(self):
        self.n = 0
        self.failed = 0
        atexit.register(self.done)

    def ok(self, cond, desc, detail=None):
        self.n += 1
        print(("ok" if cond else "not ok"), self.n, "-", desc, flush=True)
        if not cond:
            self.failed += 1
            if detail is not None:
                for line in str(detail).splitlines()[:20]:
                    print("#  ", line)
        return cond

    def eq(self, want, got, desc):
        return self.ok(want == got, desc, f"wanted: {want!r}\ngot:    {got!r}")

    def diag(self, msg):
        for line in str(msg).splitlines():
            print("#", line, flush=True)

    def done(self):
        print(f"1..{self.n}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")


def http(port, method, path, body=None, headers=None, timeout=30):
    """One request on a fresh connection; never raises on HTTP errors."""
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return Response(r.status, r.getheaders(), data)


def is_openai_error(resp):
    j = resp.json()
    return (isinstance(j, dict) and isinstance(j.get("error"), dict)
            and isinstance(j["error"].get("message"), str)
            and "type" in j["error"] and "code" in j["error"])


_cleanups = []


def _cleanup_all():
    for fn in reversed(_cleanups):
        try:
            fn()
        except Exception:
            pass


atexit.register(_cleanup_all)


def _sigterm(signum, frame):
    sys.exit(1)


signal.signal(signal.SIGTERM, _sigterm)


class Gateway:
    """A qwenrelay behind a real lighttpd, state in a fresh temp dir."""

    def __init__(self, config=None, workers=2, prefix="/", serve=False,
                 env=None, state_dir=None, fix_root="enable"):
        self.dir = tempfile.mkdtemp(prefix="qrit.")
        _cleanups.append(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        self.run_dir = os.path.join(self.dir, "run")
        os.makedirs(os.path.join(self.run_dir, "www"))
        self.state_dir = state_dir or os.path.join(self.dir, "state")
        self.log = os.path.join(self.dir, "qwenrelay.log")
        self.config_path = os.path.join(self.dir, "qwenrelay.json")
        # Tests run as root; serve refuses that unless told (privdrop.c).
        cfg = {"log_file": self.log, "log_level": "debug",
               "run_as_root": True}
        cfg.update(config or {})
        with open(self.config_path, "w") as f:
            json.dump(cfg, f)
        self.env = dict(os.environ)
        self.env.update({"QWENRELAY_CONFIG": self.config_path,
                         "QWENRELAY_STATE_DIR": self.state_dir})
        for k in list(self.env):
            if k.startswith("QWENRELAY_") and k not in (
                    "QWENRELAY_CONFIG", "QWENRELAY_STATE_DIR"):
                del self.env[k]
        self.env.update(env or {})
        self.port = free_port()
        self.workers = workers
        self.pool = None
        if serve:
            self.pool_port = free_port()
            self.pool = subprocess.Popen(
                [BIN, "serve", "--listen", f"127.0.0.1:{self.pool_port}",
                 "--workers", str(workers)], env=self.env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _cleanups.append(self._stop_pool)
            wait_port(self.pool_port)
            backend = (f'"host" => "127.0.0.1", "port" => {self.pool_port},')
        else:
            envs = ", ".join(f'"{k}" => "{v}"' for k, v in sorted(
                self.env.items()) if k.startswith("QWENRELAY_"))
            backend = (f'"bin-path" => "{BIN}", '
                       f'"socket" => "{self.run_dir}/qwenrelay.sock", '
                       f'"max-procs" => {workers}, '
                       f'"bin-environment" => ({envs}),')
        with open(os.path.join(SRCDIR, "deploy", "lighttpd",
                               "qwenrelay.conf.in")) as f:
            conf = f.read()
        for k, v in {"BIND": "127.0.0.1", "PORT": str(self.port),
                     "RUN_DIR": self.run_dir, "PREFIX": prefix,
                     "FIX_ROOT": fix_root,
                     "BACKEND": backend}.items():
            conf = conf.replace(f"@{k}@", v)
        self.conf = os.path.join(self.run_dir, "lighttpd.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen([LIGHTTPD, "-D", "-f", self.conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        _cleanups.append(self.stop)
        if not wait_port(self.port):
            raise RuntimeError("lighttpd did not start: " +
                               self.proc.stderr.read().decode())

    def _stop_pool(self):
        if self.pool and self.pool.poll() is None:
            self.pool.terminate()
            try:
                self.pool.wait(10)
            except subprocess.TimeoutExpired:
                self.pool.kill()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def cli(self, *args, input=None, env=None):
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run([BIN, *args], env=e, input=input,
                              capture_output=True, text=True, timeout=120)

    def add_key(self, name, admin=False):
        r = self.cli("keys", "add", name, *(["--admin"] if admin else []))
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        return r.stdout.strip()

    def req(self, method, path, key=None, body=None, headers=None, **kw):
        h = dict(headers or {})
        if key:
            h["Authorization"] = "Bearer " + key
        return http(self.port, method, path, body, h, **kw)

    def logs(self):
        out = ""
        for p in (self.log, os.path.join(self.run_dir, "lighttpd-error.log")):
            try:
                with open(p, errors="replace") as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def worker_pids(self):
        """Pids of qwenrelay processes using this gateway's config."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
                with open(f"/proc/{d}/environ", "rb") as f:
                    env = f.read()
            except OSError:
                continue
            if cmd and cmd[0] == BIN.encode() and \
                    self.config_path.encode() in env:
                pids.append(int(d))
        return pids


class Mock:
    """The mock Qwen server (tests/mock/mock_qwen.py) on a free port."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="qrmock.")
        _cleanups.append(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        pf = os.path.join(self.dir, "port")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(SRCDIR, "tests", "mock",
                                          "mock_qwen.py"),
             "--port", "0", "--portfile", pf],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _cleanups.append(self.stop)
        end = time.time() + 30
        while not os.path.exists(pf) and time.time() < end:
            time.sleep(0.05)
        with open(pf) as f:
            self.port = int(f.read().strip())
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)

    def call(self, method, path, body=None):
        r = http(self.port, method, path, body)
        return r.json()


def main_guard(fn):
    """Run a test body; an exception is a failed test, not a crash."""
    tap = TAP()
    try:
        fn(tap)
    except Exception as e:  # pragma: no cover - reported as a failure
        import traceback
        tap.ok(False, f"test raised {type(e).__name__}: {e}",
               traceback.format_exc())
    return tap
