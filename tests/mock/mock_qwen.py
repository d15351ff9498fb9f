#!/usr/bin/env python3
"""mock_qwen.py: a mock of Qwen's OAuth device flow and OpenAI-compatible API.

Used by qwenrelay's integration tests. Python 3 standard library only. It follows
/work/shared/qwen-protocol.md (sections 1, 2, 3, 5, 6, 7, 9); everything under /_mock/ is
the test-control API and is not part of the real protocol.

Usage:
    python3 tests/mock/mock_qwen.py --port 0 --portfile PATH [--host 127.0.0.1] [--log PATH]

With --port 0 a free port is bound; once listening, the port number (digits + newline) is
written atomically to --portfile. SIGTERM/SIGINT exit cleanly. All state is in memory.

Protocol endpoints
------------------
POST /api/v1/oauth2/device/code    form: client_id, scope, code_challenge, code_challenge_method
POST /api/v1/oauth2/token          form: grant_type=urn:ietf:params:oauth:grant-type:device_code
                                         (client_id, device_code, code_verifier)
                                   or grant_type=refresh_token (refresh_token, client_id)
GET  /authorize?user_code=X        tiny HTML page; does NOT approve anything
POST /v1/chat/completions          Bearer auth; echo model (see below), SSE when "stream":true
POST /v1/embeddings                Bearer auth; 8 deterministic floats per input
GET  /v1/models                    Bearer auth; config "models"

Device-code polls are answered in this order: slow_down injection (if armed), 400
invalid_request (bad client_id / missing field), 400 invalid_grant (unknown or already used
device_code), 400 expired_token, 400 invalid_grant "PKCE verification failed", 400
access_denied, 400 authorization_pending, else 200 with tokens (the code is then consumed).
Refresh: 200 with new access + (rotated) refresh token, or 400 {"error":"invalid_request",
"error_description":"Invalid refresh token or client_id"}.

Chat replies (system messages aside: "last" means the last other message):
text is "echo: <last user message text>"; if the last message has role "tool",
"tool result: <its content>"; if config stream_words=N, "w1 w2 ... wN". When the request has
"tools" and the last message is a user message containing "call tool", the reply is a tool
call to the first tool with arguments '{"x":1}' and finish_reason "tool_calls" (config
tool_args picks another tool by name and its arguments, for real CLIs' tools; config
tool_args_chunk=N streams the arguments N characters per chunk, as real upstreams split them).
Usage: prompt_tokens = (chars of all message text)//4 + 1, completion_tokens = words of reply.

Control API (all JSON; replies are JSON unless noted)
------------------------------------------------------
POST /_mock/approve      {"user_code": "ABCD-1234"}   pending device code -> approved
        (approve/deny/expire answer 200 {"ok":true}, 404 unknown code, 409 not pending)
POST /_mock/deny         {"user_code": ...}           -> denied (poll answers access_denied)
POST /_mock/expire       {"user_code": ...}           device code expires now (expired_token)
GET  /_mock/devices[?user_code=X]   -> [{"user_code","device_code","state","created",
                                        "expires_at","polls":[epoch seconds, ...]}]
        state is one of pending|approved|denied|consumed.
POST /_mock/accounts     {"lifetime": seconds (<=0 = already expired), "label": optional}
        -> {"access_token","refresh_token","token_type","expires_in","resource_url",
            "expiry_date": epoch ms}
POST /_mock/apikeys      {"key": "sk-..."}            accepted as Bearer on /v1/*
POST /_mock/expire_access {"access_token": ...}       that access token expires now
POST /_mock/fail         {"path": "/v1/chat/completions" (default: any /v1 path),
                          "token": access token or API key (default: any),
                          "status": 429, "body": {...} or "raw text" (default by status),
                          "headers": {"Retry-After": "2"}, "count": 1 (-1 = forever),
                          "delay_ms": 0}
        Rules apply after authentication, first matching rule in order added; each use
        decrements count. Default bodies: 429/403 insufficient_quota "Free allocated quota
        exceeded.", 401 invalid_api_key, 402 OpenRouter's {"error":{"code":402,"message":
        "Insufficient credits. ..."}}, 500 internal_error.
POST /_mock/fail/clear   remove all fail rules      (GET /_mock/fail lists them)
GET  /_mock/streams      -> [{"id","token_tail","started","ended"|null,"aborted","chunks_sent",
                             "peer_port"}]
        aborted = a write to the client socket failed (client went away mid-stream).
GET  /_mock/requests[?path=/v1/chat/completions]   last 1000 requests to /v1/* and /api/*:
        [{"method","path","query","headers":{lowercased: value},"body": JSON | form dict |
          raw string | null,"token": bearer or null,"time": epoch seconds,
          "peer_port": the client's TCP port (which process sent it)}]
GET  /_mock/calls        -> {"device_code","token_device","token_refresh","chat",
                             "embeddings","models"} (every call counts, failed ones too)
GET  /_mock/refresh_log  -> [{"started","time","status","account","sent","issued"}] one per
        refresh grant answered (started: received, time: answered); sent/issued are the last 8 characters of the refresh token sent
        and of the one issued (null unless 200); account is null for an unknown token.
GET  /_mock/config       -> current config
POST /_mock/config       merge keys (unknown keys -> 400):
        device_expires_in 600     device_interval null (omitted from device/code reply)
        token_lifetime 3600       resource_url "http://127.0.0.1:PORT"
        rotate_refresh true       revoke_old_access false
        slow_down null | {"count": N, "status": 400|429 (default 429)}   next N device polls
        refresh_fail null | {"count": N, "status": S (default 500), "body": {...} (default
                  {"error":"server_error",...})}   next N refresh calls
        (both are consumed shot by shot and reset to null once used up)
        refresh_delay_ms 0        stream_chunk_delay_ms 0
        stream_words null | N     models ["coder-model","qwen3-coder-plus","qwen3-coder-flash"]
        tool_args null | {"ToolName": {arguments object}, ...}: a "call tool" request calls the
                  first tool of the request whose name is a key here, with those arguments
        tool_args_chunk null | N  stream tool arguments N characters per chunk
        usage_override null | any JSON: sent as "usage" in chat answers and the usage
                  chunk instead of the real counts (a hostile upstream's numbers)
POST /_mock/reset        clear all state; config back to defaults (port kept)

Tokens: access tokens start with "mqa_", refresh tokens with "mqr_". Unknown paths answer
404 {"error":{"message":"not found","type":"invalid_request_error","code":"not_found",
"param":null}}.
"""

import argparse
import base64
import collections
import hashlib
import http.server
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import urllib.parse
import uuid

CLIENT_ID = "f0304373b74a44d2b584a3fb70ca9e56"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
MODELS_CREATED = 1735689600
CONFIG_KEYS = ("device_expires_in", "device_interval", "token_lifetime", "resource_url",
               "rotate_refresh", "revoke_old_access", "slow_down", "refresh_fail",
               "refresh_delay_ms", "stream_chunk_delay_ms", "stream_words", "models",
               "tool_args", "tool_args_chunk", "usage_override")


def default_config(host, port):
    return {
        "device_expires_in": 600,
        "device_interval": None,
        "token_lifetime": 3600,
        "resource_url": "http://%s:%d" % (host, port),
        "rotate_refresh": True,
        "revoke_old_access": False,
        "slow_down": None,
        "refresh_fail": None,
        "refresh_delay_ms": 0,
        "stream_chunk_delay_ms": 0,
        "stream_words": None,
        "models": ["coder-model", "qwen3-coder-plus", "qwen3-coder-flash"],
        "tool_args": None,
        "tool_args_chunk": None,
        "usage_override": None,
    }


def b64url_nopad(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier):
    return b64url_nopad(hashlib.sha256(verifier.encode("ascii", "replace")).digest())


def request_id():
    return str(uuid.uuid4())


def api_error(code, message, etype="invalid_request_error"):
    """Error body in the portal's shape (protocol section 7)."""
    return {"error": {"code": code, "message": message, "param": None, "type": etype},
            "request_id": request_id()}


def invalid_key_body():
    return api_error("invalid_api_key", "invalid access token or token expired")


def quota_body():
    return api_error("insufficient_quota", "Free allocated quota exceeded.",
                     "insufficient_quota")


def credits_body():
    """OpenRouter's out-of-credit answer (HTTP 402; code is the number)."""
    return {"error": {"code": 402, "message": "Insufficient credits. Add more using "
                      "https://openrouter.ai/settings/credits"}}


def default_fail_body(status):
    if status == 402:
        return credits_body()
    if status in (429, 403):
        return quota_body()
    if status == 401:
        return invalid_key_body()
    if status == 500:
        return {"error": {"message": "internal error", "type": "server_error",
                          "code": "internal_error", "param": None}}
    return api_error("injected_error", "injected failure (HTTP %d)" % status, "server_error")


def oauth_body(error, description):
    return {"error": error, "error_description": description}


NOT_FOUND = {"error": {"message": "not found", "type": "invalid_request_error",
                       "code": "not_found", "param": None}}


def message_text(content):
    """Plain text of an OpenAI message content (string or list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
        return "".join(parts)
    return ""


def fake_embedding(text):
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [round(b / 127.5 - 1.0, 6) for b in digest[:8]]


class MockState:
    """All mutable state of the mock; every access holds self.lock."""

    def __init__(self, host, port):
        self.lock = threading.Lock()
        self.host = host
        self.port = port
        self.reset()

    def reset(self):
        self.config = default_config(self.host, self.port)
        self.devices = {}          # device_code -> dict
        self.user_codes = {}       # user_code -> device_code
        self.accounts = {}         # account id -> {"label", "refresh_token", "access": [..]}
        self.access = {}           # access token -> {"account", "expires_at"}
        self.refresh = {}          # current refresh token -> account id
        self.refresh_account = {}  # every refresh token issued -> account id
        self.apikeys = set()
        self.fail_rules = []
        self.streams = []
        self.requests = collections.deque(maxlen=1000)
        self.calls = {k: 0 for k in ("device_code", "token_device", "token_refresh",
                                     "chat", "embeddings", "models")}
        self.next_account = 1
        self.next_call = 1
        self.refresh_log = []      # one entry per refresh grant answered

    # Caller holds the lock for everything below.
    def new_account(self, lifetime, label=None):
        aid = self.next_account
        self.next_account += 1
        acct = {"label": label, "refresh_token": None, "access": []}
        self.accounts[aid] = acct
        rt = self.issue_refresh(aid)
        at = self.issue_access(aid, lifetime)
        return aid, at, rt

    def issue_access(self, aid, lifetime):
        token = "mqa_" + secrets.token_urlsafe(32)
        self.access[token] = {"account": aid, "expires_at": time.time() + lifetime}
        self.accounts[aid]["access"].append(token)
        return token

    def issue_refresh(self, aid):
        acct = self.accounts[aid]
        if acct["refresh_token"] is not None:
            self.refresh.pop(acct["refresh_token"], None)
        token = "mqr_" + secrets.token_urlsafe(32)
        acct["refresh_token"] = token
        self.refresh[token] = aid
        self.refresh_account[token] = aid
        return token

    def token_valid(self, token):
        if token is None:
            return False
        if token in self.apikeys:
            return True
        info = self.access.get(token)
        return info is not None and time.time() < info["expires_at"]

    def take_fail_rule(self, path, token):
        for rule in self.fail_rules:
            if rule["path"] is not None and rule["path"] != path:
                continue
            if rule["token"] is not None and rule["token"] != token:
                continue
            if rule["count"] > 0:
                rule["count"] -= 1
                if rule["count"] == 0:
                    self.fail_rules.remove(rule)
            return dict(rule)
        return None

    def take_injection(self, key):
        """Use one shot of config[key] = {"count": N, ...}; return a copy or None."""
        inj = self.config.get(key)
        if not isinstance(inj, dict) or int(inj.get("count", 0)) <= 0:
            return None
        inj["count"] = int(inj["count"]) - 1
        used = dict(inj)
        if inj["count"] <= 0:
            self.config[key] = None
        return used


class ClientGone(Exception):
    """The client closed the connection while we were streaming."""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body
    # waits for the client's delayed ACK (~40 ms per keep-alive request).
    disable_nagle_algorithm = True

    def version_string(self):
        return "mock-qwen/1.0"

    # ------------------------------------------------------------ plumbing
    def log_message(self, fmt, *args):
        self.server.log("%s - %s" % (self.address_string(), fmt % args))

    @property
    def state(self):
        return self.server.state

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_json(self, status, obj, headers=None):
        if isinstance(obj, str):
            data, ctype = obj.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(obj).encode("utf-8"), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(data)

    def send_html(self, status, text):
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def bearer(self):
        auth = self.headers.get("Authorization", "")
        parts = auth.split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "bearer":
            return parts[1].strip()
        return None

    def parse_json(self):
        try:
            return json.loads(self.body.decode("utf-8")) if self.body else None
        except (ValueError, UnicodeDecodeError):
            return None

    def parse_form(self):
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            return {}
        return {k: v[0] for k, v in urllib.parse.parse_qs(text, keep_blank_values=True).items()}

    def record(self):
        if not (self.path_only.startswith("/v1/") or self.path_only.startswith("/api/")):
            return
        body = None
        if self.body:
            ctype = self.headers.get("Content-Type", "")
            body = self.parse_json()
            if body is None and ("form" in ctype or self.path_only.startswith("/api/")):
                body = self.parse_form() or None
            if body is None:
                body = self.body.decode("utf-8", "replace")
        headers = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = headers[key] + ", " + value if key in headers else value
        entry = {"method": self.command, "path": self.path_only, "query": self.query,
                 "headers": headers, "body": body, "token": self.bearer(),
                 "time": time.time(), "peer_port": self.client_address[1]}
        with self.state.lock:
            self.state.requests.append(entry)

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        self.path_only = url.path
        self.query = url.query
        self.body = self.read_body()
        self.record()
        routes = {
            ("POST", "/api/v1/oauth2/device/code"): self.do_device_code,
            ("POST", "/api/v1/oauth2/token"): self.do_token,
            ("GET", "/authorize"): self.do_authorize,
            ("POST", "/_mock/approve"): lambda: self.mock_device_state("approved"),
            ("POST", "/_mock/deny"): lambda: self.mock_device_state("denied"),
            ("POST", "/_mock/expire"): lambda: self.mock_device_state("expired"),
            ("GET", "/_mock/devices"): self.mock_devices,
            ("POST", "/_mock/accounts"): self.mock_accounts,
            ("POST", "/_mock/apikeys"): self.mock_apikeys,
            ("POST", "/_mock/expire_access"): self.mock_expire_access,
            ("POST", "/_mock/fail"): self.mock_fail,
            ("GET", "/_mock/fail"): self.mock_fail_list,
            ("POST", "/_mock/fail/clear"): self.mock_fail_clear,
            ("GET", "/_mock/streams"): self.mock_streams,
            ("GET", "/_mock/requests"): self.mock_requests,
            ("GET", "/_mock/calls"): self.mock_calls,
            ("GET", "/_mock/refresh_log"): self.mock_refresh_log,
            ("GET", "/_mock/config"): self.mock_config_get,
            ("POST", "/_mock/config"): self.mock_config_set,
            ("POST", "/_mock/reset"): self.mock_reset,
        }
        fn = routes.get((self.command, self.path_only))
        if fn is not None:
            return fn()
        if self.path_only.startswith("/v1/"):
            return self.do_api()
        return self.send_json(404, NOT_FOUND)

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    # ------------------------------------------------------------ OAuth (sections 1-3)
    def oauth_error(self, status, error, description):
        self.send_json(status, oauth_body(error, description))

    def do_device_code(self):
        with self.state.lock:
            self.state.calls["device_code"] += 1
        form = self.parse_form()
        if form.get("client_id") != CLIENT_ID:
            return self.oauth_error(400, "invalid_request", "unknown client_id")
        if "model.completion" not in form.get("scope", "").split():
            return self.oauth_error(400, "invalid_request", "scope must include model.completion")
        if not CHALLENGE_RE.match(form.get("code_challenge", "")):
            return self.oauth_error(400, "invalid_request", "code_challenge missing or malformed")
        if form.get("code_challenge_method") != "S256":
            return self.oauth_error(400, "invalid_request", "code_challenge_method must be S256")
        base = "http://%s:%d" % (self.state.host, self.state.port)
        with self.state.lock:
            while True:
                user_code = "%s-%04d" % ("".join(secrets.choice("BCDFGHJKLMNPQRSTVWXZ")
                                                 for _ in range(4)), secrets.randbelow(10000))
                if user_code not in self.state.user_codes:
                    break
            device_code = secrets.token_urlsafe(32)
            expires_in = self.state.config["device_expires_in"]
            now = time.time()
            self.state.devices[device_code] = {
                "device_code": device_code, "user_code": user_code, "state": "pending",
                "challenge": form["code_challenge"], "scope": form.get("scope", ""),
                "created": now, "expires_at": now + expires_in, "polls": []}
            self.state.user_codes[user_code] = device_code
            interval = self.state.config["device_interval"]
        reply = {"device_code": device_code, "user_code": user_code,
                 "verification_uri": base + "/authorize",
                 "verification_uri_complete": "%s/authorize?user_code=%s&client=qwen-code"
                                              % (base, user_code),
                 "expires_in": expires_in}
        if interval is not None:
            reply["interval"] = interval
        self.send_json(200, reply)

    def do_token(self):
        form = self.parse_form()
        grant = form.get("grant_type")
        if grant == DEVICE_GRANT:
            return self.token_device(form)
        if grant == "refresh_token":
            return self.token_refresh(form)
        return self.oauth_error(400, "unsupported_grant_type",
                                "grant_type %r is not supported" % grant)

    def token_device(self, form):
        status, body = self.device_grant(form)
        self.send_json(status, body)

    def device_grant(self, form):
        """Device-code grant; returns (status, body). Order of checks: slow_down injection,
        malformed request, unknown/used code, expiry, PKCE, then the approval state."""
        st = self.state
        with st.lock:
            st.calls["token_device"] += 1
            dev = st.devices.get(form.get("device_code", ""))
            if dev is not None:
                dev["polls"].append(time.time())
            slow = st.take_injection("slow_down")
            if slow is not None:
                return int(slow.get("status", 429)), {
                    "error": "slow_down", "error_description": "polling too frequently, slow down"}
            if form.get("client_id") != CLIENT_ID or not form.get("device_code") \
                    or not form.get("code_verifier"):
                return 400, oauth_body("invalid_request", "client_id, device_code and "
                                       "code_verifier are required")
            if dev is None or dev["state"] == "consumed":
                return 400, oauth_body("invalid_grant", "unknown or already used device_code")
            if time.time() > dev["expires_at"]:
                return 400, oauth_body("expired_token", "device code expired")
            if pkce_challenge(form["code_verifier"]) != dev["challenge"]:
                return 400, oauth_body("invalid_grant", "PKCE verification failed")
            if dev["state"] == "denied":
                return 400, oauth_body("access_denied", "the user denied the request")
            if dev["state"] == "pending":
                return 400, oauth_body("authorization_pending",
                                       "the user has not yet approved the request")
            lifetime = st.config["token_lifetime"]
            _, at, rt = st.new_account(lifetime, label=dev["user_code"])
            dev["state"] = "consumed"
            return 200, {"access_token": at, "refresh_token": rt, "token_type": "Bearer",
                         "expires_in": lifetime, "resource_url": st.config["resource_url"],
                         "scope": dev["scope"]}

    def token_refresh(self, form):
        st = self.state
        started = time.time()
        with st.lock:
            st.calls["token_refresh"] += 1
            delay = st.config["refresh_delay_ms"] or 0
        if delay > 0:
            time.sleep(delay / 1000.0)  # outside the lock, so concurrent refreshes can race
        status, body = self.refresh_grant(form)
        with st.lock:
            st.refresh_log.append({
                "started": started, "time": time.time(), "status": status,
                "account": st.refresh_account.get(form.get("refresh_token", "")),
                "sent": form.get("refresh_token", "")[-8:],
                "issued": (body.get("refresh_token") or "")[-8:] if status == 200 else None})
        self.send_json(status, body)

    def refresh_grant(self, form):
        """Refresh grant; returns (status, body). Rotates the refresh token by default."""
        st = self.state
        with st.lock:
            fail = st.take_injection("refresh_fail")
            if fail is not None:
                return int(fail.get("status", 500)), fail.get("body") or oauth_body(
                    "server_error", "injected refresh failure")
            aid = st.refresh.get(form.get("refresh_token", ""))
            if aid is None or form.get("client_id") != CLIENT_ID:
                return 400, oauth_body("invalid_request", "Invalid refresh token or client_id")
            if st.config["revoke_old_access"]:
                for old in st.accounts[aid]["access"]:
                    if old in st.access:
                        st.access[old]["expires_at"] = 0
            lifetime = st.config["token_lifetime"]
            at = st.issue_access(aid, lifetime)
            if st.config["rotate_refresh"]:
                rt = st.issue_refresh(aid)
            else:
                rt = st.accounts[aid]["refresh_token"]
            return 200, {"access_token": at, "token_type": "Bearer", "expires_in": lifetime,
                         "refresh_token": rt, "resource_url": st.config["resource_url"]}

    def do_authorize(self):
        qs = urllib.parse.parse_qs(self.query)
        code = qs.get("user_code", [""])[0]
        safe = "".join(c for c in code if c.isalnum() or c == "-")
        self.send_html(200, "<!doctype html><title>Qwen mock authorize</title>"
                            "<p>Authorize device <b>%s</b>? Approval happens through "
                            "POST /_mock/approve.</p>\n" % safe)

    # ------------------------------------------------------------ API (sections 5-7)
    def do_api(self):
        path = self.path_only
        handlers = {("POST", "/v1/chat/completions"): ("chat", self.api_chat),
                    ("POST", "/v1/embeddings"): ("embeddings", self.api_embeddings),
                    ("GET", "/v1/models"): ("models", self.api_models)}
        entry = handlers.get((self.command, path))
        token = self.bearer()
        with self.state.lock:
            if entry is not None:
                self.state.calls[entry[0]] += 1
            valid = self.state.token_valid(token)
            rule = self.state.take_fail_rule(path, token) if valid else None
        if not valid:
            return self.send_json(401, invalid_key_body())
        if rule is not None:
            if rule.get("delay_ms"):
                time.sleep(rule["delay_ms"] / 1000.0)
            status = int(rule["status"])
            body = rule["body"] if rule.get("body") is not None else default_fail_body(status)
            return self.send_json(status, body, rule.get("headers"))
        if entry is None:
            return self.send_json(404, NOT_FOUND)
        return entry[1](token)

    def bad_request(self):
        self.send_json(400, api_error("invalid_parameter_error", "bad request"))

    def api_models(self, token):
        with self.state.lock:
            models = list(self.state.config["models"])
        self.send_json(200, {"object": "list", "data": [
            {"id": m, "object": "model", "created": MODELS_CREATED, "owned_by": "qwen"}
            for m in models]})

    def api_embeddings(self, token):
        req = self.parse_json()
        if not isinstance(req, dict) or "input" not in req:
            return self.bad_request()
        inputs = req["input"]
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return self.bad_request()
        texts = [i if isinstance(i, str) else json.dumps(i) for i in inputs]
        tokens = sum(len(t) // 4 + 1 for t in texts)
        self.send_json(200, {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": fake_embedding(t)}
                     for i, t in enumerate(texts)],
            "model": req.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def chat_reply(self, req):
        """Decide the reply: returns (text or None, tool_call or None, usage)."""
        messages = req["messages"]
        # The last turn that is not a system message (Claude Code puts
        # system messages between turns).
        turns = [m for m in messages if isinstance(m, dict) and m.get("role") != "system"]
        last = turns[-1] if turns else {}
        prompt_chars = sum(len(message_text(m.get("content"))) for m in messages
                           if isinstance(m, dict))
        tools = req.get("tools")
        text, tool_call = None, None
        if tools and isinstance(tools, list) and last.get("role") == "user" \
                and "call tool" in message_text(last.get("content")):
            fn = tools[0].get("function", {}) if isinstance(tools[0], dict) else {}
            args = "{\"x\":1}"
            with self.state.lock:
                n = self.state.next_call
                self.state.next_call += 1
                scripted = self.state.config["tool_args"]
            for t in tools if isinstance(scripted, dict) else []:
                f = t.get("function", {}) if isinstance(t, dict) else {}
                if f.get("name") in scripted:
                    fn, args = f, json.dumps(scripted[f["name"]])
                    break
            tool_call = {"id": "call_%d" % n, "type": "function",
                         "function": {"name": fn.get("name", ""), "arguments": args}}
            completion = 1
        else:
            with self.state.lock:
                words = self.state.config["stream_words"]
            if words is not None:
                text = " ".join("w%d" % i for i in range(1, int(words) + 1))
            elif last.get("role") == "tool":
                text = "tool result: " + message_text(last.get("content"))
            else:
                user = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
                text = "echo: " + (message_text(user[-1].get("content")) if user else "")
            completion = len(text.split())
        prompt = prompt_chars // 4 + 1
        usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                 "total_tokens": prompt + completion,
                 "prompt_tokens_details": {"cached_tokens": 0}}
        with self.state.lock:
            hostile = self.state.config.get("usage_override")
        if hostile is not None:
            usage = hostile     # a hostile upstream's numbers, as given
        return text, tool_call, usage

    def api_chat(self, token):
        req = self.parse_json()
        if not isinstance(req, dict) or not isinstance(req.get("messages"), list) \
                or not req["messages"]:
            return self.bad_request()
        text, tool_call, usage = self.chat_reply(req)
        cid = "chatcmpl-" + secrets.token_hex(12)
        created = int(time.time())
        model = req.get("model")
        if req.get("stream") is True:
            opts = req.get("stream_options")
            include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
            return self.stream_chat(token, cid, created, model, text, tool_call,
                                    usage if include_usage else None)
        if tool_call is not None:
            message = {"role": "assistant", "content": None, "tool_calls": [tool_call]}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": text}
            finish = "stop"
        self.send_json(200, {"id": cid, "object": "chat.completion", "created": created,
                             "model": model,
                             "choices": [{"index": 0, "message": message,
                                          "finish_reason": finish}],
                             "usage": usage})

    # ------------------------------------------------------------ SSE streaming
    def write_chunk(self, data):
        try:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            raise ClientGone()

    def stream_chat(self, token, cid, created, model, text, tool_call, usage):
        def chunk(delta, finish=None):
            return {"id": cid, "object": "chat.completion.chunk", "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        events = [chunk({"role": "assistant"})]
        with self.state.lock:
            split = self.state.config["tool_args_chunk"]
        if tool_call is not None and split:
            # The way real upstreams stream a call: id and name first, then
            # the arguments in pieces that carry only the index.
            fn, args, split = tool_call["function"], tool_call["function"]["arguments"], int(split)
            events.append(chunk({"tool_calls": [{"index": 0, "id": tool_call["id"],
                                                 "type": "function",
                                                 "function": {"name": fn["name"],
                                                              "arguments": ""}}]}))
            for i in range(0, len(args), split):
                events.append(chunk({"tool_calls": [{"index": 0, "function": {
                    "arguments": args[i:i + split]}}]}))
            events.append(chunk({}, "tool_calls"))
        elif tool_call is not None:
            events.append(chunk({"tool_calls": [dict(tool_call, index=0)]}))
            events.append(chunk({}, "tool_calls"))
        else:
            words = text.split(" ")
            for i, w in enumerate(words):
                events.append(chunk({"content": w + (" " if i < len(words) - 1 else "")}))
            events.append(chunk({}, "stop"))
        if usage is not None:
            events.append({"id": cid, "object": "chat.completion.chunk", "created": created,
                           "model": model, "choices": [], "usage": usage})
        payloads = [b"data: " + json.dumps(e).encode("utf-8") + b"\n\n" for e in events]
        payloads.append(b"data: [DONE]\n\n")

        with self.state.lock:
            rec = {"id": len(self.state.streams) + 1,
                   "token_tail": (token or "")[-6:], "started": time.time(),
                   "ended": None, "aborted": False, "chunks_sent": 0,
                   "peer_port": self.client_address[1]}
            self.state.streams.append(rec)
            delay = (self.state.config["stream_chunk_delay_ms"] or 0) / 1000.0
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i, payload in enumerate(payloads):
                if i > 0 and delay > 0:
                    time.sleep(delay)
                self.write_chunk(payload)
                with self.state.lock:
                    rec["chunks_sent"] += 1
            self.write_chunk(b"")  # terminating zero-length chunk
        except (ClientGone, BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
            with self.state.lock:
                rec["aborted"] = True
                rec["ended"] = time.time()
            return
        with self.state.lock:
            rec["ended"] = time.time()

    # ------------------------------------------------------------ control API
    def control_json(self):
        obj = self.parse_json()
        return obj if isinstance(obj, dict) else {}

    def mock_device_state(self, new_state):
        code = self.control_json().get("user_code")
        status, body = 200, {"ok": True}
        with self.state.lock:
            dev = self.state.devices.get(self.state.user_codes.get(code, ""))
            if dev is None:
                status, body = 404, {"error": "unknown user_code"}
            elif new_state == "expired":
                dev["expires_at"] = time.time() - 1
            elif dev["state"] == "pending":
                dev["state"] = new_state
            else:
                status, body = 409, {"error": "device code is " + dev["state"]}
        self.send_json(status, body)

    def mock_devices(self):
        code = urllib.parse.parse_qs(self.query).get("user_code", [None])[0]
        with self.state.lock:
            out = [{k: d[k] for k in ("user_code", "device_code", "state", "created",
                                      "expires_at")} | {"polls": list(d["polls"])}
                   for d in self.state.devices.values()
                   if code is None or d["user_code"] == code]
        self.send_json(200, out)

    def mock_accounts(self):
        req = self.control_json()
        with self.state.lock:
            lifetime = req.get("lifetime", self.state.config["token_lifetime"])
            _, at, rt = self.state.new_account(lifetime, req.get("label"))
            reply = {"access_token": at, "refresh_token": rt, "token_type": "Bearer",
                     "expires_in": lifetime, "resource_url": self.state.config["resource_url"],
                     "expiry_date": int(self.state.access[at]["expires_at"] * 1000)}
        self.send_json(200, reply)

    def mock_apikeys(self):
        key = self.control_json().get("key")
        if not isinstance(key, str) or not key:
            return self.send_json(400, {"error": "key required"})
        with self.state.lock:
            self.state.apikeys.add(key)
        self.send_json(200, {"ok": True})

    def mock_expire_access(self):
        token = self.control_json().get("access_token")
        with self.state.lock:
            info = self.state.access.get(token)
            if info is not None:
                info["expires_at"] = time.time() - 1
        if info is None:
            return self.send_json(404, {"error": "unknown access_token"})
        self.send_json(200, {"ok": True})

    def mock_fail(self):
        req = self.control_json()
        try:
            rule = {"path": req.get("path"), "token": req.get("token"),
                    "status": int(req.get("status", 429)), "body": req.get("body"),
                    "headers": dict(req.get("headers") or {}),
                    "count": int(req.get("count", 1)), "delay_ms": int(req.get("delay_ms", 0))}
        except (TypeError, ValueError):
            return self.send_json(400, {"error": "bad fail rule"})
        if rule["count"] == 0 or rule["count"] < -1:
            return self.send_json(400, {"error": "count must be >= 1 or -1"})
        with self.state.lock:
            self.state.fail_rules.append(rule)
        self.send_json(200, {"ok": True})

    def mock_fail_list(self):
        with self.state.lock:
            out = json.loads(json.dumps(self.state.fail_rules))
        self.send_json(200, out)

    def mock_fail_clear(self):
        with self.state.lock:
            self.state.fail_rules.clear()
        self.send_json(200, {"ok": True})

    def mock_streams(self):
        with self.state.lock:
            out = [dict(s) for s in self.state.streams]
        self.send_json(200, out)

    def mock_requests(self):
        path = urllib.parse.parse_qs(self.query).get("path", [None])[0]
        with self.state.lock:
            out = [r for r in self.state.requests if path is None or r["path"] == path]
            data = json.loads(json.dumps(out))
        self.send_json(200, data)

    def mock_calls(self):
        with self.state.lock:
            out = dict(self.state.calls)
        self.send_json(200, out)

    def mock_refresh_log(self):
        with self.state.lock:
            out = list(self.state.refresh_log)
        self.send_json(200, out)

    def mock_config_get(self):
        with self.state.lock:
            out = json.loads(json.dumps(self.state.config))
        self.send_json(200, out)

    def mock_config_set(self):
        req = self.parse_json()
        if not isinstance(req, dict):
            return self.send_json(400, {"error": "config must be a JSON object"})
        unknown = [k for k in req if k not in CONFIG_KEYS]
        if unknown:
            return self.send_json(400, {"error": "unknown config keys: " + ", ".join(unknown)})
        with self.state.lock:
            self.state.config.update(req)
            out = json.loads(json.dumps(self.state.config))
        self.send_json(200, out)

    def mock_reset(self):
        with self.state.lock:
            self.state.reset()
        self.send_json(200, {"ok": True})


class MockServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Hundreds of gateway threads connect at once under load tests; the
    # socketserver default backlog of 5 drops SYNs (a 1 s retry each).
    request_queue_size = 1024

    def __init__(self, addr, logfile):
        super().__init__(addr, Handler)
        self.logfile = logfile
        self.log_lock = threading.Lock()
        self.state = MockState(addr[0], self.server_address[1])

    def log(self, line):
        if self.logfile is None:
            return
        with self.log_lock:
            self.logfile.write("%.3f %s\n" % (time.time(), line))
            self.logfile.flush()

    def handle_error(self, request, client_address):
        import traceback
        self.log("error with %s:\n%s" % (client_address, traceback.format_exc()))


def write_portfile(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Mock Qwen OAuth + OpenAI-compatible API")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--portfile")
    ap.add_argument("--log")
    args = ap.parse_args(argv)

    logfile = open(args.log, "a", buffering=1) if args.log else None
    server = MockServer((args.host, args.port), logfile)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    port = server.server_address[1]
    server.log("listening on %s:%d" % (args.host, port))
    if args.portfile:
        write_portfile(args.portfile, port)
    while not stop.wait(0.2):
        pass
    server.shutdown()
    server.server_close()
    server.log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
