"""webfront.py: real web servers in front of a FastCGI app, from the
shipped deploy/ files (each @NAME@ substituted), on free loopback ports.

Each front writes its whole config into its own temporary directory, runs
the server in the foreground, and stops it (and whatever it spawned) at
exit.  No system file is read for writing or touched: pid files, logs,
sockets, temp and runtime dirs all live in the temp dir.

    lighttpd(app, prefix="/", fix_root="enable")  lighttpd spawns the app
    nginx(sock)                                   nginx -> qwenrelay serve
    apache_proxy(sock)                            event MPM + mod_proxy_fcgi
    apache_fcgid_vhost(app, config)               mod_fcgid, Apache spawns
    apache_htaccess(app, files)                   mod_fcgid + .htaccess in
                                                  ~alice/public_html/relay

app is the FastCGI program to run; sock is a unix socket something listens
on.  Each returns a Front with .port, .base (URL prefix of the API, no
trailing slash), .logs() and .stop().
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

from qrtest import SRCDIR, _cleanups, free_port, wait_port

MODULES = "/usr/lib/apache2/modules"
APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LIGHTTPD = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
ERRORS_DIR = os.path.join(SRCDIR, "deploy", "errors")


def deploy_file(rel, values):
    """A shipped deploy/ file with each @NAME@ replaced; refuses leftovers."""
    with open(os.path.join(SRCDIR, "deploy", rel)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    body = "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith("#"))
    if "@" in body.replace("@qr_", ""):
        left = [w for w in body.split() if w.count("@") >= 2]
        raise RuntimeError(f"{rel}: unsubstituted {left}")
    return text


def tmpdir(prefix, mode=0o755):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, mode)
    _cleanups.append(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


class Front:
    def __init__(self, name, port, base, proc, logfiles, stop_extra=None):
        self.name = name
        self.port = port
        self.base = base
        self.proc = proc
        self.logfiles = logfiles
        self.stop_extra = stop_extra
        _cleanups.append(self.stop)

    def logs(self):
        out = ""
        for p in self.logfiles:
            try:
                with open(p, errors="replace") as f:
                    out += f"--- {p}\n" + f.read()[-4000:]
            except OSError:
                pass
        return out

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.stop_extra is not None:
            self.stop_extra()
            self.stop_extra = None


def _start(name, argv, port, base, logfiles, env=None, stop_extra=None):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    front = Front(name, port, base, proc, logfiles, stop_extra)
    if not wait_port(port, 20):
        err = proc.stderr.read().decode(errors="replace") \
            if proc.poll() is not None else ""
        front.stop()
        raise RuntimeError(f"{name} did not start: {err}\n{front.logs()}")
    return front


def lighttpd(app, prefix="/", fix_root="enable", env=None, workers=2):
    d = tmpdir("qrweb.l.")
    os.makedirs(os.path.join(d, "www"))
    port = free_port()
    envs = ", ".join(f'"{k}" => "{v}"' for k, v in sorted((env or {}).items()))
    backend = (f'"bin-path" => "{app}", "socket" => "{d}/app.sock", '
               f'"max-procs" => {workers}, "bin-environment" => ({envs}),')
    conf = deploy_file("lighttpd/qwenrelay.conf.in", {
        "BIND": "127.0.0.1", "PORT": port, "RUN_DIR": d, "PREFIX": prefix,
        "FIX_ROOT": fix_root, "BACKEND": backend})
    path = os.path.join(d, "lighttpd.conf")
    with open(path, "w") as f:
        f.write(conf)
    return _start(f"lighttpd {prefix} fix-root-scriptname={fix_root}",
                  [LIGHTTPD, "-D", "-f", path], port, prefix.rstrip("/"),
                  [os.path.join(d, "lighttpd-error.log")])


def nginx(sock, body_max="32m"):
    d = tmpdir("qrweb.n.")
    port = free_port()
    site = deploy_file("nginx/qwenrelay.conf", {
        "LISTEN": f"127.0.0.1:{port}", "BACKEND": f"unix:{sock}",
        "BODY_MAX": body_max, "ERRORS_DIR": ERRORS_DIR})
    with open(os.path.join(d, "qwenrelay.conf"), "w") as f:
        f.write(site)
    # "include fastcgi_params" is relative to the main config's directory.
    shutil.copy("/etc/nginx/fastcgi_params", d)
    temps = "\n".join(f"    {k}_temp_path {d}/{k};" for k in (
        "client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = f"""
daemon off;
user www-data;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 768; }}
http {{
    include /etc/nginx/mime.types;
    access_log {d}/access.log;
{temps}
    include {d}/qwenrelay.conf;
}}
"""
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return _start("nginx + serve", [NGINX, "-p", d, "-e", f"{d}/error.log",
                                    "-c", path], port, "",
                  [os.path.join(d, "error.log")])


def _apache_conf(d, port, modules, extra):
    loads = "\n".join(f"LoadModule {m}_module {MODULES}/mod_{m}.so"
                      for m in modules)
    return f"""
ServerRoot "{d}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{d}/apache.pid"
DefaultRuntimeDir "{d}/run"
ErrorLog "{d}/error.log"
LogLevel warn
User www-data
Group www-data
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
{loads}
TypesConfig /etc/mime.types
StartServers 1
ServerLimit 2
ThreadsPerChild 25
MaxRequestWorkers 50
Mutex file:{d}/run default
DocumentRoot "{d}/www"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<FilesMatch "^\\.ht">
    Require all denied
</FilesMatch>
{extra}
"""


BASE_MODULES = ("authz_core", "authz_host", "alias", "mime", "dir", "env",
                "setenvif", "reqtimeout")


def _apache(name, d, port, base, modules, extra, stop_extra=None):
    os.makedirs(os.path.join(d, "run"), exist_ok=True)
    os.makedirs(os.path.join(d, "www"), exist_ok=True)
    path = os.path.join(d, "apache2.conf")
    with open(path, "w") as f:
        f.write(_apache_conf(d, port, BASE_MODULES + modules, extra))
    # Debian's apache2 needs no APACHE_* variables when the config names
    # every path itself; -DFOREGROUND keeps the parent attached.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"}
    return _start(name, [APACHE, "-f", path, "-DFOREGROUND"], port, base,
                  [os.path.join(d, "error.log")], env=env,
                  stop_extra=stop_extra)


def apache_proxy(sock, body_max=33554432):
    d = tmpdir("qrweb.ap.")
    port = free_port()
    site = deploy_file("apache/proxy-fcgi.conf", {
        "PORT": port, "BACKEND": f"unix:{sock}|fcgi://localhost",
        "BODY_MAX": body_max, "ERRORS_DIR": ERRORS_DIR})
    return _apache("apache event + mod_proxy_fcgi + serve", d, port, "",
                   ("proxy", "proxy_fcgi"), site)


def _fcgid_server(d):
    """Server-level mod_fcgid settings a host sets once (paths only)."""
    os.makedirs(os.path.join(d, "fcgid"), exist_ok=True)
    shutil.chown(os.path.join(d, "fcgid"), "www-data", "www-data")
    return f"""
FcgidIPCDir "{d}/fcgid"
FcgidProcessTableFile "{d}/fcgid/shm"
"""


def apache_fcgid_vhost(app, config, workers=2, body_max=33554432):
    """app is copied as APP_DIR/qwenrelay.fcgi; config is its path."""
    d = tmpdir("qrweb.af.")
    port = free_port()
    app_dir = os.path.join(d, "app")
    os.makedirs(app_dir)
    shutil.copy(app, os.path.join(app_dir, "qwenrelay.fcgi"))
    os.chmod(os.path.join(app_dir, "qwenrelay.fcgi"), 0o755)
    site = deploy_file("apache/fcgid-vhost.conf", {
        "PORT": port, "APP_DIR": app_dir, "CONFIG": config,
        "WORKERS": workers, "BODY_MAX": body_max, "ERRORS_DIR": ERRORS_DIR})
    f = _apache("apache + mod_fcgid vhost", d, port, "", ("fcgid",),
                _fcgid_server(d) + site)
    f.app = os.path.join(app_dir, "qwenrelay.fcgi")
    return f


def apache_htaccess(app, files, host_conf="", where="userdir",
                    htaccess=None):
    """A shared host: AllowOverride All, mod_fcgid with the host's
    defaults (plus host_conf).  The user's directory (where="userdir":
    ~alice/public_html/relay through mod_userdir; "subdir": /sub/dir under
    the document root) gets app as qwenrelay.fcgi, deploy/apache/htaccess
    (or the text htaccess) as .htaccess, and files ({name: text}), all
    owned by www-data.  Returns the Front; .dir is that directory."""
    d = tmpdir("qrweb.ah.")
    port = free_port()
    if where == "userdir":
        top = os.path.join(d, "home")
        relay = os.path.join(top, "alice", "public_html", "relay")
        base = "/~alice/relay"
        host = f"""
UserDir "{d}/home/*/public_html"
<Directory "{d}/home/*/public_html">
    AllowOverride All
    Options SymLinksIfOwnerMatch
    Require all granted
</Directory>
"""
    else:
        top = os.path.join(d, "www", "sub")
        relay = os.path.join(top, "dir")
        base = "/sub/dir"
        host = f"""
<Directory "{d}/www">
    AllowOverride All
    Options SymLinksIfOwnerMatch
    Require all granted
</Directory>
"""
    os.makedirs(relay)
    p = relay
    while p != d:
        os.chmod(p, 0o755)
        p = os.path.dirname(p)
    shutil.copy(app, os.path.join(relay, "qwenrelay.fcgi"))
    os.chmod(os.path.join(relay, "qwenrelay.fcgi"), 0o755)
    if htaccess is None:
        shutil.copy(os.path.join(SRCDIR, "deploy", "apache", "htaccess"),
                    os.path.join(relay, ".htaccess"))
    else:
        with open(os.path.join(relay, ".htaccess"), "w") as f:
            f.write(htaccess)
    for name, text in files.items():
        with open(os.path.join(relay, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(relay, name), 0o644)
    # The worker runs as the web server's user (no suexec here), which
    # owns the user's files.
    shutil.chown(top, "www-data", "www-data")
    for root, dirs, fs in os.walk(top):
        for n in dirs + fs:
            shutil.chown(os.path.join(root, n), "www-data", "www-data")
    extra = _fcgid_server(d) + "\nAddHandler fcgid-script .fcgi\n" + host + \
        host_conf
    mods = ("fcgid", "rewrite") + (("userdir",) if where == "userdir" else ())
    f = _apache(f"apache + mod_fcgid + .htaccess in {base}", d, port, base,
                mods, extra)
    f.dir = relay
    f.app = os.path.join(relay, "qwenrelay.fcgi")
    return f


class FcgiSocket:
    """Run a FastCGI program the way `spawn-fcgi` would: listening unix
    socket on its fd 0.  For capturing what a server sends (tools)."""

    def __init__(self, argv, env=None):
        import socket
        d = tmpdir("qrweb.s.")
        self.path = os.path.join(d, "app.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(self.path)
        os.chmod(self.path, 0o666)
        s.listen(64)
        self.proc = subprocess.Popen(argv, stdin=s.fileno(), env=env,
                                     stdout=subprocess.DEVNULL,
                                     start_new_session=True)
        s.close()
        _cleanups.append(self.stop)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
