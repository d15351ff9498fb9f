"""test_protocol_sdks.py: the official npm SDKs of the other protocols as
clients: `openai` (v6) responses.create / responses.stream and
`@anthropic-ai/sdk` (v1) messages.create / messages.stream /
messages.countTokens, against a gateway whose upstream is the mock.

Installs both SDKs from the npm registry once into a cache directory
($QR_PROTO_SDK_CACHE, default $QR_BUILDDIR/tests/integration/proto-sdk-cache;
reused while it holds both), copies tests/integration/proto_sdk/protocols.mjs
next to them and runs it with node.  protocols.mjs prints TAP; each of its
lines is passed on here.  A failed npm install is a failure, not a skip.
"""
import os
import shutil
import subprocess

from qrtest import BUILDDIR, SRCDIR, Gateway, Mock, main_guard, \
    npm_version

SDK_DIR = os.environ.get("QR_PROTO_SDK_CACHE") or os.path.join(
    BUILDDIR, "tests", "integration", "proto-sdk-cache")
SDK_SRC = os.path.join(SRCDIR, "tests", "integration", "proto_sdk")
PACKAGES = {"openai": "6.", "@anthropic-ai/sdk": "1."}


def version(pkg):
    return npm_version(SDK_DIR, pkg)


def install(t):
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            t.ok(False, f"{tool} is installed", "apt-get install nodejs npm "
                 "(deploy/deps.sh does)")
            return False
    if not all(version(p).startswith(v) for p, v in PACKAGES.items()):
        os.makedirs(SDK_DIR, exist_ok=True)
        shutil.copy(os.path.join(SDK_SRC, "package.json"), SDK_DIR)
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund",
                            "--prefix", SDK_DIR, "openai@6",
                            "@anthropic-ai/sdk@1"],
                           capture_output=True, text=True, timeout=600)
        if not t.ok(r.returncode == 0, "npm install openai@6 "
                    "@anthropic-ai/sdk@1", (r.stdout + r.stderr)[-3000:]):
            return False
    for p, v in PACKAGES.items():
        if not t.ok(version(p).startswith(v), f"{p} {v}x installed "
                    f"({version(p) or 'none'}) in {SDK_DIR}"):
            return False
    shutil.copy(os.path.join(SDK_SRC, "protocols.mjs"), SDK_DIR)
    return True


def test(t):
    if not install(t):
        return
    mock = Mock()
    acct = "sk-psdk-" + os.urandom(6).hex()
    gw = Gateway(config={"model_aliases": {"claude-*": "qwen3-coder-plus"}})
    key = gw.add_key("sdk")
    r = gw.add_mock_account(mock, acct, "sdk", "coder-model,qwen3-coder-plus")
    if not t.ok(r.returncode == 0, "account on the mock", r.stderr):
        return
    env = dict(os.environ)
    env.update({"GW_URL": f"http://127.0.0.1:{gw.port}", "API_KEY": key,
                "MOCK_URL": mock.url})
    r = subprocess.run(["node", os.path.join(SDK_DIR, "protocols.mjs")],
                       env=env, capture_output=True, text=True, timeout=600)
    t.relay("protocols.mjs", r.stdout, r.stderr)
    t.ok(key not in gw.logs() and acct not in gw.logs(),
         "no key appears in any log")


main_guard(test)
