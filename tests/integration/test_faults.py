"""test_faults.py: kill -9 in the middle of things, through lighttpd.

1. A worker killed mid-stream: only the requests that process was serving
   fail (in lighttpd's one-request-per-process mode: its own stream); the
   other streams finish with [DONE] and the pool serves again.
2. A write storm (concurrent `keys add`, chats counting usage) with SIGKILL
   to random CLI processes and workers: afterwards the store opens, every
   key whose `keys add` printed it is there and works, both envs read to
   the end, and once a process has opened the store no stale reader is
   left (what `mdb_stat -r` shows; tests/mdb_check reads it without
   lmdb-utils).
"""
import json
import os
import random
import signal
import subprocess
import threading
import time

from qrtest import BIN, BUILDDIR, Gateway, Mock, http, main_guard

MDB_CHECK = os.path.join(BUILDDIR, "tests", "mdb_check")



def served_workers(gw):
    """The workers lighttpd spawned (parent: lighttpd), never a CLI process
    of the test or a sanitizer's helper task, which share the command."""
    out = []
    for pid in gw.worker_pids():
        try:
            with open(f"/proc/{pid}/status") as f:
                ppid = [int(x.split()[1]) for x in f if x.startswith("PPid:")]
        except OSError:
            continue
        if ppid and ppid[0] == gw.proc.pid:
            out.append(pid)
    return out

def setup(mock, workers):
    mock.call("POST", "/_mock/reset")
    gw = Gateway(workers=workers,
                 env={"QWENRELAY_QWEN_OAUTH_BASE_URL": mock.url})
    key = gw.add_key("c")
    a = mock.call("POST", "/_mock/accounts", {"lifetime": 3600})
    p = os.path.join(gw.dir, "creds.json")
    with open(p, "w") as f:
        json.dump({"access_token": a["access_token"],
                   "refresh_token": a["refresh_token"],
                   "token_type": "Bearer", "resource_url": a["resource_url"],
                   "expiry_date": a["expiry_date"]}, f)
    gw.cli("accounts", "import", p)
    return gw, key


def pid_of_port(port, pids):
    """The pid among pids owning the 127.0.0.1 TCP socket with this local
    port, or None."""
    inodes = set()
    for tab in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(tab) as f:
                next(f)
                for line in f:
                    col = line.split()
                    if int(col[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(col[9])
        except OSError:
            pass
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return pid
        except OSError:
            continue
    return None


def mid_stream(t, mock):
    gw, key = setup(mock, workers=3)
    mock.call("POST", "/_mock/config", {"stream_words": 40,
                                        "stream_chunk_delay_ms": 100})
    out = {}

    def stream(tag):
        try:
            r = gw.req("POST", "/v1/chat/completions", key=key, body={
                "model": "coder-model", "stream": True,
                "messages": [{"role": "user", "content": tag}]}, timeout=60)
            out[tag] = (r.status, r.text)
        except Exception as e:  # the connection may just drop
            out[tag] = (None, repr(e))
    tags = ["s0", "s1", "s2"]
    th = [threading.Thread(target=stream, args=(x,)) for x in tags]
    for x in th:
        x.start()
    ports = {}
    end = time.time() + 20
    while time.time() < end and len(ports) < 3:
        for rq in mock.call("GET", "/_mock/requests?path=/v1/chat/completions"):
            msgs = (rq.get("body") or {}).get("messages") or []
            if msgs and msgs[-1].get("content") in tags:
                ports[msgs[-1]["content"]] = rq["peer_port"]
        time.sleep(0.1)
    time.sleep(0.5)     # every stream has chunks on the way
    workers = served_workers(gw)
    pids = {tag: pid_of_port(port, workers) for tag, port in ports.items()}
    victim = pids.get("s0")
    t.ok(victim is not None, "found the worker serving stream s0", pids)
    if victim is not None:
        os.kill(victim, signal.SIGKILL)
    for x in th:
        x.join()
    st, text = out.get("s0", (None, ""))
    t.ok("data: [DONE]" not in text, "the killed worker's stream did not "
         "complete", (st, text[-200:]))
    others = [tag for tag in tags[1:] if pids.get(tag) != victim]
    t.ok(others and all(out.get(tag, (0, ""))[0] == 200 and
                        "data: [DONE]" in out[tag][1] for tag in others),
         f"the streams of other workers ({', '.join(others)}) completed",
         {k: (v[0], v[1][-120:]) for k, v in out.items()})
    mock.call("POST", "/_mock/config", {"stream_words": None,
                                        "stream_chunk_delay_ms": 0})
    r = None
    for _ in range(20):     # lighttpd respawns the worker
        r = gw.req("POST", "/v1/chat/completions", key=key, body={
            "model": "coder-model",
            "messages": [{"role": "user", "content": "after"}]})
        if r.status == 200:
            break
        time.sleep(0.25)
    t.eq(200, r.status, "the pool serves again")
    gw.stop()


def mdb_check(gw):
    dirs = [gw.state_dir, os.path.join(gw.state_dir, "stats")]
    r = subprocess.run([MDB_CHECK, *dirs], capture_output=True, text=True,
                       timeout=60)
    stale = 0
    for line in r.stdout.splitlines():
        if line.endswith(" stale"):
            stale += int(line.rsplit(",", 1)[1].split()[0])
    return r.returncode, stale, r.stdout.strip()


def write_storm(t, mock):
    gw, key = setup(mock, workers=3)
    stop = time.time() + 8
    rnd = random.Random(os.getpid())
    printed = {}
    killed = {"cli": 0, "worker": 0}
    lock = threading.Lock()

    def chats():
        while time.time() < stop:
            try:
                gw.req("POST", "/v1/chat/completions", key=key, body={
                    "model": "coder-model",
                    "messages": [{"role": "user", "content": "x"}]},
                    timeout=30)
            except OSError:
                pass

    def adders(n0):
        n = n0
        while time.time() < stop:
            name = f"k{n}"
            n += 100
            p = subprocess.Popen([BIN, "keys", "add", name], env=gw.env,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
            if rnd.random() < 0.4:
                time.sleep(rnd.uniform(0, 0.03))
                p.send_signal(signal.SIGKILL)
                with lock:
                    killed["cli"] += 1
            out, _ = p.communicate()
            if p.returncode == 0 and out.strip().startswith("qr-"):
                with lock:
                    printed[name] = out.strip()

    def killer():
        while time.time() < stop:
            time.sleep(rnd.uniform(0.3, 0.8))
            pids = served_workers(gw)
            if pids:
                try:
                    os.kill(rnd.choice(pids), signal.SIGKILL)
                    killed["worker"] += 1
                except OSError:
                    pass

    th = [threading.Thread(target=chats) for _ in range(3)]
    th += [threading.Thread(target=adders, args=(i,)) for i in range(4)]
    th.append(threading.Thread(target=killer))
    for x in th:
        x.start()
    for x in th:
        x.join()
    rc0, stale0, out0 = mdb_check(gw)
    t.diag(f"write storm: {len(printed)} keys added, {killed['cli']} CLI "
           f"and {killed['worker']} worker kills; right after: {out0}")
    r = gw.cli("keys", "list", "--json")
    t.eq(0, r.returncode, "the store opens after the storm")
    try:
        names = {k["name"] for k in json.loads(r.stdout)}
    except (ValueError, KeyError, TypeError):
        names = set(line.split()[0] for line in r.stdout.splitlines()
                    if line.strip())
    lost = sorted(set(printed) - names)
    t.ok(printed and not lost, f"every key 'keys add' printed is stored "
         f"({len(printed)} keys)", lost)
    sample = list(printed.items())[:5]
    ok = all(gw.req("GET", "/v1/models", key=v).status == 200
             for _, v in sample)
    t.ok(ok, "and works for /v1/models")
    rc, stale, out = mdb_check(gw)
    t.ok(rc == 0, "both envs read to the end", out)
    t.eq(0, stale, "no stale reader once a process opened the store "
         "(mdb_stat -r clean)")
    t.eq(200, gw.req("POST", "/v1/chat/completions", key=key, body={
        "model": "coder-model",
        "messages": [{"role": "user", "content": "x"}]}).status,
        "the gateway still serves")
    gw.stop()


def test(t):
    mock = Mock()
    mid_stream(t, mock)
    write_storm(t, mock)


main_guard(test)
