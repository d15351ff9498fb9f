"""test_config_lookup.py: where the config comes from, and what a worker
that is not root is told when it cannot create its state dir.

The binary copied elsewhere (as shared hosting does, named qwenrelay.fcgi)
reads qwenrelay.json beside itself when QWENRELAY_CONFIG is unset;
QWENRELAY_CONFIG still wins.  Run as www-data, a state_dir it cannot
create gives "cannot create state dir X: ...; set state_dir in FILE".
"""
import json
import os
import shutil
import subprocess
import tempfile

from qrtest import BIN, _cleanups, main_guard


def run(argv, env, user=None):
    return subprocess.run(argv, env=env, capture_output=True, text=True,
                          timeout=60, user=user)


def test(t):
    d = tempfile.mkdtemp(prefix="qrcfg.")
    _cleanups.append(lambda: shutil.rmtree(d, ignore_errors=True))
    os.chmod(d, 0o755)
    app = os.path.join(d, "qwenrelay.fcgi")
    shutil.copy(BIN, app)
    os.chmod(app, 0o755)
    beside = os.path.join(d, "qwenrelay.json")
    with open(beside, "w") as f:
        json.dump({"state_dir": os.path.join(d, "state"),
                   "log_level": "warn"}, f)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("QWENRELAY_")}

    r = run([app, "config", "check"], env)
    t.ok(r.returncode == 0 and f"config ok ({beside})" in r.stderr,
         "without QWENRELAY_CONFIG the config beside the binary is read",
         r.stderr)
    t.eq("warn", (json.loads(r.stdout or "{}")).get("log_level"),
         "its values are in effect")

    other = os.path.join(d, "other.json")
    with open(other, "w") as f:
        json.dump({"log_level": "error"}, f)
    r = run([app, "config", "check"], dict(env, QWENRELAY_CONFIG=other))
    t.ok(f"config ok ({other})" in r.stderr and
         json.loads(r.stdout or "{}").get("log_level") == "error",
         "QWENRELAY_CONFIG wins over the file beside the binary", r.stderr)

    os.unlink(beside)
    r = run([app, "config", "check"], env)
    t.ok(beside not in r.stderr and r.returncode in (0, 1),
         "no file beside the binary: the next place is used", r.stderr)

    # A worker running as www-data with a state_dir under a root-owned
    # directory: the message names the dir, the cause and the fix.
    locked = os.path.join(d, "locked")
    os.mkdir(locked, 0o755)
    with open(beside, "w") as f:
        json.dump({"state_dir": os.path.join(locked, "state")}, f)
    os.chmod(beside, 0o644)
    r = run([app, "keys", "list"], env, user="www-data")
    t.ok(r.returncode != 0 and
         f"cannot create state dir {locked}/state: Permission denied" in
         r.stderr and f"set state_dir in {beside}" in r.stderr and
         "www-data" in r.stderr,
         "state dir not creatable as www-data: says what and where to fix",
         r.stderr)


if __name__ == "__main__":
    main_guard(test)
