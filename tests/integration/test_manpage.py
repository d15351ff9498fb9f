"""test_manpage.py: qwenrelay(8) lists every config key the binary knows
(from `qwenrelay config check`), and every subcommand of its usage."""
import json
import os
import re
import subprocess

from qrtest import BIN, SRCDIR, main_guard


def test(t):
    with open(os.path.join(SRCDIR, "man", "qwenrelay.8")) as f:
        man = f.read()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("QWENRELAY_")}
    env["QWENRELAY_CONFIG"] = "/nonexistent/qwenrelay.json"
    r = subprocess.run([BIN, "config", "check"], env=env,
                       capture_output=True, text=True, timeout=30)
    keys = sorted(json.loads(r.stdout))
    documented = set(re.findall(r"^\.It Ic (\w+)", man, re.M))
    missing = [k for k in keys if k not in documented]
    t.ok(len(keys) > 20 and not missing,
         f"qwenrelay(8) documents all {len(keys)} config keys",
         f"add to man/qwenrelay.8 (CONFIGURATION): {missing}")
    u = subprocess.run([BIN, "help"], capture_output=True, text=True,
                       timeout=30)
    subs = sorted(set(re.findall(r"qwenrelay (\w+)", u.stderr + u.stdout)))
    missing = [s for s in subs if f".Cm {s}" not in man]
    t.ok(len(subs) >= 5 and not missing,
         f"qwenrelay(8) documents the subcommands {subs}",
         f"missing: {missing}")


if __name__ == "__main__":
    main_guard(test)
