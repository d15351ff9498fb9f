#!/usr/bin/env python3
"""test_cli_help.py: asking any command for help works and says it all.

`qwenrelay X --help` (or -h) prints the usage on stdout and exits 0, for
every subcommand, before the config is read (so help works with a broken
config); the usage names every flag the README documents.  A bad flag to
`serve` is named in the error.
"""
import os
import shutil
import subprocess
import tempfile

from qrtest import BIN, _cleanups, main_guard


def run(args, env):
    return subprocess.run([BIN] + args, capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=30)


def test(t):
    d = tempfile.mkdtemp(prefix="qrhelp.")
    _cleanups.append(lambda: shutil.rmtree(d, ignore_errors=True))
    bad = os.path.join(d, "broken.json")
    with open(bad, "w") as f:
        f.write("{ not json")
    env = dict(os.environ, QWENRELAY_CONFIG=bad)
    for args in (["--help"], ["-h"], ["help"], ["keys", "--help"],
                 ["keys", "add", "--help"], ["accounts", "--help"],
                 ["accounts", "add", "--help"], ["accounts", "login", "-h"],
                 ["serve", "--help"], ["refresh", "--help"],
                 ["config", "--help"]):
        r = run(args, env)
        t.ok(r.returncode == 0 and r.stdout.startswith("usage: qwenrelay")
             and r.stderr == "", f"qwenrelay {' '.join(args)}: usage on "
             "stdout, exit 0", f"rc {r.returncode}\nstdout {r.stdout[:200]}"
             f"\nstderr {r.stderr[:300]}")
    u = run(["--help"], env).stdout
    for flag in ("--rpm", "--tpm", "refresh-models", "--api-key-env",
                 "openai-compatible", "config check", "man 8 qwenrelay"):
        t.ok(flag in u, f"the usage names {flag}", u)
    good = os.path.join(d, "good.json")
    with open(good, "w") as f:
        f.write('{"state_dir": "%s", "run_as_root": true}' % d)
    r = run(["serve", "--bogus"], dict(env, QWENRELAY_CONFIG=good))
    t.ok(r.returncode == 2 and "--bogus" in r.stderr,
         "serve --bogus: exit 2 and the error names --bogus", r.stderr)
    t.eq(2, run(["nonsense"], env).returncode, "an unknown command: exit 2")
    genv = dict(env, QWENRELAY_CONFIG=good)
    for args, bad in ((["keys", "list", "--jsn"], "--jsn"),
                      (["keys", "add", "x", "--rpn", "5"], "--rpn"),
                      (["accounts", "list", "--bogus"], "--bogus"),
                      (["accounts", "add", "--lable", "x"], "--lable"),
                      (["accounts", "add", "--provider"], "--provider")):
        r = run(args, genv)
        t.ok(r.returncode == 2 and f"argument {bad}" in r.stderr,
             f"qwenrelay {' '.join(args)}: exit 2, the error names {bad}",
             r.stderr)


main_guard(test)
