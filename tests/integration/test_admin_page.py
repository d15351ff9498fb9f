#!/usr/bin/env python3
"""test_admin_page.py: the admin page in Debian's headless Chromium.

playwright-core from the npm registry (cached in $QR_BROWSER_CACHE, default
$QR_BUILDDIR/tests/integration/browser-cache) drives /usr/bin/chromium
against a real lighttpd + qwenrelay + the mock Qwen server: sign in with
the admin key, run a device login to success, create a key (shown once,
copied) and revoke it, disable an account, check the headers (CSP,
nosniff), the phone layout, and keep screenshots as artifacts in
$QR_BUILDDIR/tests/integration/artifacts/.  A failed install is a failure.
"""
import os
import shutil
import subprocess
import tempfile

import qrtest
from qrtest import BUILDDIR, SRCDIR, Gateway, Mock, main_guard

CACHE = os.environ.get("QR_BROWSER_CACHE") or os.path.join(
    BUILDDIR, "tests", "integration", "browser-cache")
SRC = os.path.join(SRCDIR, "tests", "integration", "browser")
SHOTS = os.path.join(BUILDDIR, "tests", "integration", "artifacts")
CHROMIUM = os.environ.get("QR_CHROMIUM") or shutil.which("chromium") or \
    "/usr/bin/chromium"


def installed():
    return qrtest.npm_version(CACHE, "playwright-core")


def install(t):
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            t.ok(False, f"{tool} is installed", "deploy/deps.sh installs it")
            return False
    if not t.ok(os.path.exists(CHROMIUM), f"chromium at {CHROMIUM}",
                "apt-get install chromium (deploy/deps.sh does)"):
        return False
    if not installed():
        os.makedirs(CACHE, exist_ok=True)
        shutil.copy(os.path.join(SRC, "package.json"), CACHE)
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund",
                            "--prefix", CACHE], capture_output=True,
                           text=True, timeout=600,
                           env=dict(os.environ,
                                    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1"))
        if not t.ok(r.returncode == 0, "npm install playwright-core",
                    (r.stdout + r.stderr)[-3000:]):
            return False
    t.ok(bool(installed()), f"playwright-core {installed()} in {CACHE}")
    shutil.copy(os.path.join(SRC, "admin_page.mjs"), CACHE)
    return bool(installed())


def test(t):
    if not install(t):
        return
    mock = Mock()
    mock.call("POST", "/_mock/config", {"device_interval": 1})
    gw = Gateway(config={"qwen_oauth_base_url": mock.url}, workers=2)
    admin = gw.add_key("ops", admin=True)
    client = gw.add_key("laptop")
    gw.cli("keys", "add", "ci-bot", "--rpm", "60", "--models",
           "qwen3-coder-plus")
    keys = []
    for i, label in enumerate(("coding-plan-a", "coding-plan-b")):
        k = f"sk-page-{i}-{gw.port}"
        r = gw.add_mock_account(mock, k, label,
                                "coder-model,qwen3-coder-plus")
        t.ok(r.returncode == 0, f"account {label} added", r.stderr)
        keys.append(k)
    # Some traffic, and one account parked by a rate limit for the page.
    body = {"model": "coder-model", "messages": [
        {"role": "user", "content": "hello from the admin page test"}]}
    for _ in range(3):
        gw.req("POST", "/v1/chat/completions", key=client, body=body)
    mock.call("POST", "/_mock/fail", {
        "path": "/v1/chat/completions", "status": 429, "count": 1,
        "headers": {"Retry-After": "900"},
        "body": {"error": {"message": "Rate limit reached", "type":
                           "rate_limit_error", "code": "rate_limit_exceeded"}}})
    r = gw.req("POST", "/v1/chat/completions", key=client, body=body)
    t.eq(200, r.status, "a rate-limited account is parked, the next answers")

    os.makedirs(SHOTS, exist_ok=True)
    udd = tempfile.mkdtemp(prefix="qrchrome.")
    qrtest._cleanups.append(lambda: shutil.rmtree(udd, ignore_errors=True))
    env = dict(os.environ, BASE=f"http://127.0.0.1:{gw.port}",
               ADMIN_KEY=admin, MOCK=mock.url, SHOT_DIR=SHOTS,
               USER_DATA_DIR=udd, CHROMIUM=CHROMIUM)
    try:
        p = subprocess.run(["node", os.path.join(CACHE, "admin_page.mjs")],
                           env=env, capture_output=True, text=True,
                           timeout=420)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, err, rc = (e.stdout or b"").decode() if isinstance(
            e.stdout, bytes) else (e.stdout or ""), "timed out", -1
    seen = 0
    for line in out.splitlines():
        if line.startswith("ok ") or line.startswith("not ok "):
            seen += 1
            t.ok(line.startswith("ok "), "chromium: " +
                 (line.split(" - ", 1)[1] if " - " in line else line))
        elif line.startswith("#"):
            print(line, flush=True)
    t.ok(rc == 0 and seen >= 20, f"the browser run finished ({seen} checks)",
         (out[-1500:] + "\n" + err[-1500:]))
    for name in ("admin-overview.png", "admin-desktop.png",
                 "admin-phone.png"):
        path = os.path.join(SHOTS, name)
        t.ok(os.path.exists(path) and os.path.getsize(path) > 5000,
             f"screenshot kept: {path}")
    # The page, as served, holds no key or token.
    page = "".join(gw.req("GET", p).text for p in
                   ("/admin", "/admin/app.js", "/admin/app.css"))
    t.ok(not any(s in page for s in keys + [admin, client]),
         "no key in the page")
    gw.stop()


if __name__ == "__main__":
    main_guard(test)
