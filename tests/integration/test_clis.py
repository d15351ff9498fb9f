"""test_clis.py: Claude Code and Codex CLI, from npm, through qwenrelay.

Installs @anthropic-ai/claude-code and @openai/codex from the npm registry
once into a cache directory ($QR_CLI_CACHE, default
$QR_BUILDDIR/tests/integration/cli-cache; reused while both are there),
then runs each CLI non-interactively against a gateway whose upstream is
the mock, offline: a clean environment with HOME in a temp dir, telemetry,
update checks and nonessential traffic off, and HTTPS_PROXY/HTTP_PROXY
pointing at a closed local port so nothing can leave the machine (loopback
is exempt through NO_PROXY).

Each CLI completes one prompt with one tool round trip: the mock answers
the first request with a call to the CLI's own shell tool (Claude Code's
Bash, Codex's exec_command) running `echo MARKER`; the CLI runs it and sends
the output back; the mock's final answer quotes the tool result, which the
CLI prints.  A CLI whose package cannot run here (no native binary for
this platform) is a SKIP that says what it needs; a failed npm install is
a failure.
"""
import json
import os
import secrets
import shutil
import subprocess
import tempfile

from qrtest import BUILDDIR, Gateway, Mock, free_port, main_guard

CACHE = os.environ.get("QR_CLI_CACHE") or os.path.join(
    BUILDDIR, "tests", "integration", "cli-cache")
PACKAGES = ("@anthropic-ai/claude-code", "@openai/codex")
BINS = {"claude": os.path.join(CACHE, "node_modules", ".bin", "claude"),
        "codex": os.path.join(CACHE, "node_modules", ".bin", "codex")}


def installed():
    return all(os.path.exists(b) for b in BINS.values())


def install(t):
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            t.ok(False, f"{tool} is installed", "apt-get install nodejs npm")
            return False
    if not installed():
        os.makedirs(CACHE, exist_ok=True)
        with open(os.path.join(CACHE, "package.json"), "w") as f:
            json.dump({"name": "qwenrelay-cli-test", "private": True}, f)
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund",
                            "--prefix", CACHE, *PACKAGES],
                           capture_output=True, text=True, timeout=900)
        if not t.ok(r.returncode == 0, "npm install " + " ".join(PACKAGES),
                    (r.stdout + r.stderr)[-3000:]):
            return False
    return t.ok(installed(), f"both CLIs installed in {CACHE}")


def offline_env(home, extra):
    """A clean environment: no proxy way out, no telemetry, HOME apart."""
    closed = f"http://127.0.0.1:{free_port()}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
           "TMPDIR": home, "LANG": "C.UTF-8", "TERM": "dumb",
           "HTTPS_PROXY": closed, "HTTP_PROXY": closed,
           "https_proxy": closed, "http_proxy": closed,
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    env.update(extra)
    return env


def runs_here(t, name):
    """Does the CLI start at all (a native binary for this platform)?"""
    home = tempfile.mkdtemp(prefix="qrcli.")
    try:
        r = subprocess.run([BINS[name], "--version"], env=offline_env(
            home, {"CODEX_HOME": home}), capture_output=True, text=True,
            timeout=120)
    except OSError as e:
        r = None
        why = str(e)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if r is not None and r.returncode == 0:
        t.diag(f"{name} --version: {r.stdout.strip()}")
        return True
    if r is not None:
        why = (r.stdout + r.stderr).strip()[-300:]
    t.ok(True, f"{name} # SKIP the npm package does not run on this "
         f"platform (it needs its native binary package for this OS/CPU): "
         f"{why}")
    return False


def upstream_calls(mock):
    return [r["body"] for r in mock.call(
        "GET", "/_mock/requests?path=/v1/chat/completions")
        if isinstance(r.get("body"), dict)]


def tool_round_trip(bodies, marker):
    """A request that carries the tool's output back after the call."""
    for b in bodies:
        msgs = b.get("messages", [])
        if any(m.get("role") == "tool" and marker in json.dumps(
                m.get("content")) for m in msgs) and any(
                m.get("tool_calls") for m in msgs):
            return True
    return False


def claude(t, gw, key, mock):
    marker = "qr-claude-" + secrets.token_hex(4)
    mock.call("POST", "/_mock/reset")
    mock.call("POST", "/_mock/apikeys", {"key": gw.acct})
    mock.call("POST", "/_mock/config", {
        "tool_args_chunk": 4, "tool_args": {"Bash": {
            "command": f"echo {marker}", "description": "Print a marker"}}})
    home = tempfile.mkdtemp(prefix="qrclaude.")
    work = os.path.join(home, "work")
    os.makedirs(work)
    env = offline_env(home, {
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{gw.port}",
        "ANTHROPIC_AUTH_TOKEN": key,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1", "DISABLE_BUG_COMMAND": "1"})
    try:
        r = subprocess.run([BINS["claude"], "-p", "please call tool to print "
                            "a marker", "--allowedTools", "Bash(echo:*)",
                            "--output-format", "json"], env=env, cwd=work,
                           capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {}
    t.ok(r.returncode == 0 and out.get("is_error") is False,
         "claude -p: finished without an error",
         (r.stdout + r.stderr)[-2000:])
    t.ok(f"tool result: {marker}" in str(out.get("result")),
         "claude -p: ran Bash (echo) and answered with its output",
         str(out.get("result"))[-500:])
    bodies = upstream_calls(mock)
    t.ok(tool_round_trip(bodies, marker) and all(
        b.get("model") == "qwen3-coder-plus" for b in bodies),
         "claude -p: tool_use/tool_result went through the pool "
         "(alias claude-* -> qwen3-coder-plus)",
         json.dumps([b.get("model") for b in bodies]))


def codex(t, gw, key, mock):
    marker = "qr-codex-" + secrets.token_hex(4)
    mock.call("POST", "/_mock/reset")
    mock.call("POST", "/_mock/apikeys", {"key": gw.acct})
    # exec_command is Codex 0.1xx's shell tool; shell / shell_command are
    # what earlier releases offered.
    mock.call("POST", "/_mock/config", {"tool_args_chunk": 4, "tool_args": {
        "exec_command": {"cmd": f"echo {marker}"},
        "shell_command": {"command": f"echo {marker}"},
        "shell": {"command": ["echo", marker]}}})
    home = tempfile.mkdtemp(prefix="qrcodex.")
    work = os.path.join(home, "work")
    os.makedirs(work)
    with open(os.path.join(home, "config.toml"), "w") as f:
        f.write(f"""model = "qwen3-coder-plus"
model_provider = "qwenrelay"

[model_providers.qwenrelay]
name = "qwenrelay"
base_url = "http://127.0.0.1:{gw.port}/v1"
env_key = "QWENRELAY_API_KEY"
wire_api = "responses"
""")
    env = offline_env(home, {"CODEX_HOME": home, "QWENRELAY_API_KEY": key})
    try:
        r = subprocess.run([BINS["codex"], "exec", "--skip-git-repo-check",
                            "--sandbox", "danger-full-access",
                            "please call tool to print a marker"],
                           env=env, cwd=work, capture_output=True, text=True,
                           timeout=300, stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    t.ok(r.returncode == 0, "codex exec: finished without an error",
         (r.stdout + r.stderr)[-2000:])
    t.ok("tool result:" in r.stdout and marker in r.stdout,
         "codex exec: ran its shell tool (echo) and printed the answer "
         "quoting its output", (r.stdout + r.stderr)[-1500:])
    t.ok(tool_round_trip(upstream_calls(mock), marker),
         "codex exec: function_call/function_call_output went through the "
         "pool")


def test(t):
    if not install(t):
        return
    mock = Mock()
    gw = Gateway(config={"model_aliases": {"claude-*": "qwen3-coder-plus"}})
    gw.acct = "sk-cli-" + secrets.token_hex(8)
    key = gw.add_key("cli")
    r = gw.add_mock_account(mock, gw.acct, "cli",
                            "coder-model,qwen3-coder-plus")
    if not t.ok(r.returncode == 0, "account on the mock", r.stderr):
        return
    if runs_here(t, "claude"):
        claude(t, gw, key, mock)
    if runs_here(t, "codex"):
        codex(t, gw, key, mock)
    t.ok(key not in gw.logs() and gw.acct not in gw.logs(),
         "no key appears in any log")


main_guard(test)
