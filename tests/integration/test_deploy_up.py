"""test_deploy_up.py: deploy/up runs again and again, and stops clean.

Runs the real deploy/up (QR_NO_BUILD=1: the binary this build made,
QR_VAR: a temporary state directory, PORT: a free port) twice, checks the
admin key is created once and kept, then deploy/up --stop, after which no
process of that setup (lighttpd or qwenrelay) is left.
"""
import os
import shutil
import subprocess
import tempfile
import time

from qrtest import BUILDDIR, SRCDIR, free_port, http, main_guard, _cleanups


def procs_of(var):
    """Pids whose environment names var (lighttpd and its workers)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{d}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if var.encode() in env and state != "Z":
            out.append(int(d))
    return out


def test(t):
    var = tempfile.mkdtemp(prefix="qrup.")
    port = free_port()
    env = dict(os.environ, QR_VAR=var, PORT=str(port), QR_NO_BUILD="1",
               QR_BUILDDIR=BUILDDIR)
    for k in list(env):
        if k.startswith("QWENRELAY_"):
            del env[k]
    up = os.path.join(SRCDIR, "deploy", "up")

    def run(*args):
        return subprocess.run([up, *args], env=env, capture_output=True,
                              text=True, timeout=120)

    def stop():
        run("--stop")
        shutil.rmtree(var, ignore_errors=True)
    _cleanups.append(stop)

    r = run()
    t.ok(r.returncode == 0 and "Admin key" in r.stdout,
         "deploy/up: serves and prints an admin key the first time",
         r.stdout + r.stderr)
    key = ""
    lines = r.stdout.splitlines()
    for i, ln in enumerate(lines):
        if ln.startswith("Admin key") and i + 1 < len(lines):
            key = lines[i + 1].strip()
    t.eq(200, http(port, "GET", "/health").status, "/health answers")
    r = run()
    t.ok(r.returncode == 0 and "Admin key" not in r.stdout and
         "exists already" in r.stdout,
         "deploy/up again: succeeds and keeps the admin key", r.stdout +
         r.stderr)
    resp = http(port, "GET", "/health/deep",
                headers={"Authorization": "Bearer " + key})
    t.eq(200, resp.status, "the first admin key still works after a rerun")
    pids = procs_of(var)
    t.ok(len(pids) >= 2, "lighttpd and its workers are running", pids)
    r = run("--stop")
    t.ok(r.returncode == 0 and "stopped" in r.stdout, "deploy/up --stop",
         r.stdout + r.stderr)
    end = time.time() + 20
    while time.time() < end and procs_of(var):
        time.sleep(0.1)
    t.eq([], procs_of(var), "after --stop no lighttpd or qwenrelay process "
         "is left")


if __name__ == "__main__":
    main_guard(test)
