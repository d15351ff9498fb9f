#!/usr/bin/env python3
"""capture_env.py: what each web server sends a FastCGI app, captured.

Builds tests/tools/fcgi_envdump.c (cc -lfcgi), runs it behind every web
server with the shipped deploy/ configs (tests/integration/webfront.py)
and prints, per request, the variables that path derivation looks at.
tests/test_route.c holds the result.  Run as root (Apache's mod_fcgid
workers run as www-data), from the source tree:

    python3 tests/tools/capture_env.py [lighttpd|nginx|proxy|vhost|htaccess]...
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import webfront as W  # noqa: E402
from qrtest import http  # noqa: E402

KEYS = ("REQUEST_URI", "SCRIPT_NAME", "PATH_INFO", "DOCUMENT_URI",
        "SCRIPT_FILENAME", "REDIRECT_URL", "QUERY_STRING",
        "HTTP_AUTHORIZATION", "REDIRECT_HTTP_AUTHORIZATION")
PATHS = ("/v1/models?x=1", "/health", "/health/deep", "/v1/chat/completions",
         "/v1/models/Qwen%2FQwen3-Coder", "/v1/models/a/b", "/nothing/here")


def dump(front, paths=PATHS):
    for p in paths:
        r = http(front.port, "GET", front.base + p,
                 headers={"Authorization": "Bearer qr-capture"})
        print(f"== {front.name}: GET {front.base + p} -> {r.status}")
        if r.headers.get("content-type", "").startswith("text/plain"):
            env = dict(line.split("=", 1) for line in r.text.splitlines()
                       if "=" in line)
            for k in KEYS:
                print(f"   {k}={env[k]!r}" if k in env else f"   {k} unset")
    sys.stdout.flush()


def main(which):
    d = tempfile.mkdtemp(prefix="qrcap.")
    os.chmod(d, 0o755)
    app = os.path.join(d, "envdump")
    subprocess.run(["cc", "-o", app, os.path.join(HERE, "fcgi_envdump.c"),
                    "-lfcgi"], check=True)
    if "lighttpd" in which:
        for prefix in ("/", "/qwenrelay/"):
            for fix in ("enable", "disable"):
                f = W.lighttpd(app, prefix, fix)
                dump(f)
                f.stop()
    if "nginx" in which:
        s = W.FcgiSocket([app])
        f = W.nginx(s.path)
        dump(f)
        f.stop()
        s.stop()
    if "proxy" in which:
        s = W.FcgiSocket([app])
        f = W.apache_proxy(s.path)
        dump(f)
        f.stop()
        s.stop()
    if "vhost" in which:
        f = W.apache_fcgid_vhost(app, "/nonexistent.json")
        dump(f)
        f.stop()
    if "htaccess" in which:
        for where in ("userdir", "subdir"):
            f = W.apache_htaccess(app, {}, where=where)
            dump(f)
            f.stop()
        # A hand-written rule that drops the path.
        f = W.apache_htaccess(app, {}, where="subdir", htaccess=(
            "Options +ExecCGI\nAddHandler fcgid-script .fcgi\nRewriteEngine On\n"
            "RewriteRule !^qwenrelay\\.fcgi qwenrelay.fcgi [L]\n"))
        dump(f, ("/v1/models?x=1",))
        f.stop()
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main(sys.argv[1:] or ("lighttpd", "nginx", "proxy", "vhost", "htaccess"))
