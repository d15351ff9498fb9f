"""test_openai_sdk.py: the official `openai` npm SDK (openai@6) as a client.

Installs the SDK from the npm registry once into a cache directory
($QR_SDK_CACHE, default $QR_BUILDDIR/tests/integration/sdk-cache; reused
while it holds openai 6.x), copies tests/integration/sdk/client.mjs next to
it and runs it with node against a gateway whose upstream is the mock.
client.mjs prints TAP; each of its lines is passed on here.

It runs what the gateway can do so far: the bad-key case always, models
when GET /v1/models answers, chat/stream/tools once POST
/v1/chat/completions is routed and `qwenrelay accounts add` works (an
openai-compatible account on the mock), embeddings once /v1/embeddings is
routed too.  What is not there yet is reported as a SKIP, with the reason.
A failed npm install is a failure, not a skip.
"""
import os
import secrets
import shutil
import subprocess

from qrtest import BUILDDIR, SRCDIR, Gateway, Mock, main_guard, \
    npm_version

SDK_DIR = os.environ.get("QR_SDK_CACHE") or os.path.join(
    BUILDDIR, "tests", "integration", "sdk-cache")
SDK_SRC = os.path.join(SRCDIR, "tests", "integration", "sdk")
MODEL = "coder-model"
EMBED_MODEL = "text-embedding-v3"
EMBED_DIM = 8  # the mock's embedding length


def sdk_version():
    return npm_version(SDK_DIR, "openai")


def install_sdk(t):
    """openai@6 in SDK_DIR, client.mjs beside it; False (reported) if not."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            t.ok(False, f"{tool} is installed", "apt-get install nodejs npm "
                 "(deploy/deps.sh does)")
            return False
    if not sdk_version().startswith("6."):
        os.makedirs(SDK_DIR, exist_ok=True)
        shutil.copy(os.path.join(SDK_SRC, "package.json"), SDK_DIR)
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund",
                            "--prefix", SDK_DIR, "openai@6"],
                           capture_output=True, text=True, timeout=600)
        if not t.ok(r.returncode == 0, "npm install openai@6",
                    (r.stdout + r.stderr)[-3000:]):
            return False
    version = sdk_version()
    if not t.ok(version.startswith("6."), f"openai SDK 6.x installed "
                f"({version or 'none'}) in {SDK_DIR}"):
        return False
    shutil.copy(os.path.join(SDK_SRC, "client.mjs"), SDK_DIR)
    return True


def run_client(t, gw, key, parts, extra_env=None):
    """Run client.mjs; re-emit its TAP lines as ours."""
    env = dict(os.environ)
    env.update({"BASE_URL": f"http://127.0.0.1:{gw.port}/v1",
                "API_KEY": key, "MODEL": MODEL, "PARTS": ",".join(parts)})
    env.pop("EMBED_MODEL", None)
    env.update(extra_env or {})
    r = subprocess.run(["node", os.path.join(SDK_DIR, "client.mjs")],
                       env=env, capture_output=True, text=True, timeout=300)
    t.relay("client.mjs", r.stdout, r.stderr)
    if r.returncode != 0 and r.stderr.strip():
        t.diag(r.stderr[-2000:])


def test(t):
    if not install_sdk(t):
        return
    # The account's upstream key is read from the environment (by name), so
    # it is in ours before lighttpd starts: the workers inherit it.
    sdk_key = "sk-sdk-" + secrets.token_hex(12)
    os.environ["SDK_KEY"] = sdk_key
    mock = Mock()
    mock.call("POST", "/_mock/apikeys", {"key": sdk_key})
    gw = Gateway(workers=2, env={"SDK_KEY": sdk_key})
    key = gw.add_key("sdk")

    parts, skipped = ["auth"], []
    add = gw.cli("accounts", "add", "--provider", "openai-compatible",
                 "--label", "sdk", "--base-url", mock.url + "/v1",
                 "--models", f"{MODEL},{EMBED_MODEL}",
                 "--api-key-env", "SDK_KEY")
    accounts = add.returncode == 0
    if not accounts:
        # Only "not implemented yet" is a reason to skip: once the
        # accounts CLI exists, a failing add is a failure.
        exists = gw.cli("accounts", "list").returncode == 0
        if exists:
            t.ok(False, "qwenrelay accounts add (openai-compatible, mock)",
                 add.stdout + add.stderr)
        else:
            t.diag("qwenrelay accounts is not available yet")

    r = gw.req("GET", "/v1/models", key=key)
    if r.status == 404:
        skipped.append(("models", "GET /v1/models is not routed yet"))
    else:
        parts.append("models")

    probe = gw.req("POST", "/v1/chat/completions", key=key,
                   body={"model": MODEL, "messages": [
                       {"role": "user", "content": "probe"}]})
    if probe.status == 404:
        why = "POST /v1/chat/completions is not routed yet"
    elif not accounts:
        why = "qwenrelay accounts add is not available yet"
    else:
        why = None
        parts += ["chat", "stream", "tools"]
    if why:
        skipped += [(p, why) for p in ("chat", "stream", "tools")]

    extra = {}
    emb = gw.req("POST", "/v1/embeddings", key=key,
                 body={"model": EMBED_MODEL, "input": "probe"})
    if emb.status == 404:
        skipped.append(("embed", "POST /v1/embeddings is not routed yet"))
    elif not accounts:
        skipped.append(("embed", "no account on the mock"))
    else:
        parts.append("embed")
        extra = {"EMBED_MODEL": EMBED_MODEL, "EMBED_DIM": str(EMBED_DIM)}

    for part, why in skipped:
        t.ok(True, f"sdk: {part} # SKIP {why}")
    run_client(t, gw, key, parts, extra)
    t.ok(key not in gw.logs() and sdk_key not in gw.logs(),
         "no key appears in any log")


if __name__ == "__main__":
    main_guard(test)
