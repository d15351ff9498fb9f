"""test_routing.py: routing and upstream behaviour that users of other
gateways reported (issue 8), through a real lighttpd against the mock:

- billing answers (402, DashScope Arrearage) park the account and the
  request moves on to the next one;
- the usage-only chunk the gateway asks a qwen-oauth upstream for reaches
  only clients that asked for it, and is still counted;
- each account's model catalog comes from its upstream's GET /models (at
  `accounts add`, `accounts refresh-models`, and by the keeper), is shown,
  listed in /v1/models and decides which accounts serve a model;
  --models overrides it; a failed fetch is reported, never fatal;
- model ids are opaque: ids with '/', ':', '@', '+', spaces or UTF-8,
  plain or percent-encoded, round-trip through GET /v1/models/{id}, chat
  and embeddings.
"""
import json
import time
import urllib.parse

from qrtest import Gateway, Mock, is_openai_error, main_guard

MODEL = "coder-model"


def pool(mock, n, config=None, models="coder-model"):
    """n openai-compatible API-key accounts k0..; returns (gw, key, keys)."""
    mock.call("POST", "/_mock/reset")
    gw = Gateway(config=config)
    client = gw.add_key("client")
    keys = []
    for i in range(n):
        k = f"sk-route{i}-{gw.port}"
        r = gw.add_mock_account(mock, k, f"a{i}", models)
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        keys.append(k)
    return gw, client, keys


def chat(gw, key, text="hello", model=MODEL, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return gw.req("POST", "/v1/chat/completions", key=key, body=body)


def used(mock):
    return [r["token"] for r in mock.call(
        "GET", "/_mock/requests?path=/v1/chat/completions")]


def marks(gw):
    lst = json.loads(gw.cli("accounts", "list", "--json").stdout)
    return {a["label"]: [m["reason"] for m in a["marks"]] for a in lst}


def sse_events(text):
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def billing(t, mock):
    arrearage = {"error": {"code": "Arrearage", "param": None, "type":
                           "Arrearage", "message": "Access denied, please "
                           "make sure your account is in good standing."},
                 "request_id": "x"}
    for what, rule in (
            ("402 Insufficient credits (OpenRouter)", {"status": 402}),
            ("400 Arrearage (DashScope / Model Studio)",
             {"status": 400, "body": arrearage})):
        gw, key, keys = pool(mock, 2)
        rule = dict(rule, token=keys[0], count=-1)
        mock.call("POST", "/_mock/fail", rule)
        r = chat(gw, key)
        t.ok(r.status == 200 and used(mock) == [keys[0], keys[1]],
             f"{what} on the first account: served by the second",
             f"{r.status} {r.text[:200]} {used(mock)}")
        t.eq(["billing"], marks(gw).get("a0"),
             f"{what}: the account is parked with reason billing")
        for _ in range(4):
            chat(gw, key, stream=True)
        t.eq(1, used(mock).count(keys[0]),
             f"{what}: the parked account is not asked again")
        gw.stop()

    # every account out of credit: a 429 that says so, no provider body
    gw, key, keys = pool(mock, 2)
    mock.call("POST", "/_mock/fail", {"status": 402, "count": -1})
    r = chat(gw, key)
    msg = ((r.json() or {}).get("error") or {}).get("message", "")
    t.ok(r.status == 429 and is_openai_error(r) and "credit" in msg and
         r.headers.get("retry-after", "").isdigit() and
         len(used(mock)) == 2,
         "all accounts out of credit: 429 naming credit, Retry-After",
         f"{r.status} {r.text}")
    gw.stop()


def qwen_setup(mock):
    mock.call("POST", "/_mock/reset")
    gw = Gateway(env={"QWENRELAY_QWEN_OAUTH_BASE_URL": mock.url})
    key = gw.add_key("c")
    _, r = gw.import_mock_account(mock)
    if r.returncode != 0:
        raise RuntimeError(r.stdout + r.stderr)
    return gw, key


def usage_chunks(t, mock):
    gw, key = qwen_setup(mock)
    for opts, want, what in (
            (None, False, "no stream_options"),
            ({"include_usage": False}, False, "include_usage false"),
            ({"include_usage": True}, True, "include_usage true")):
        extra = {"stream": True}
        if opts is not None:
            extra["stream_options"] = opts
        r = chat(gw, key, "one two three", **extra)
        sent = mock.call("GET", "/_mock/requests?path=/v1/chat/completions")[
            -1]["body"]
        evs = [json.loads(e) for e in sse_events(r.text) if e != "[DONE]"]
        usage_only = [e for e in evs if e.get("choices") == []]
        t.ok(sent.get("stream_options", {}).get("include_usage") is True,
             f"{what}: upstream asked for usage anyway")
        t.ok(r.status == 200 and r.text.rstrip().endswith("data: [DONE]") and
             all(e.get("choices") for e in evs) != want and
             bool(usage_only) == want,
             f"{what}: usage-only chunk relayed={want}", r.text[-400:])
        text = "".join(e["choices"][0]["delta"].get("content") or ""
                       for e in evs if e.get("choices"))
        t.eq("echo: one two three", text, f"{what}: the deltas all arrive")
    kl = json.loads(gw.cli("keys", "list", "--json").stdout)
    t.ok(kl[0]["completion_tokens"] >= 3 * 4,
         "usage still counted for the chunks the client did not get", kl)
    gw.stop()


def add(gw, mock, n, *extra):
    k = f"sk-cat{n}-{gw.port}"
    r = gw.add_mock_account(mock, k, f"c{n}", None, *extra)
    return r, r.stdout.strip(), k


def show(gw, acct):
    r = gw.cli("accounts", "show", acct)
    return json.loads(r.stdout) if r.returncode == 0 else {}


def model_ids(gw, key):
    r = gw.req("GET", "/v1/models", key=key)
    return [m["id"] for m in (r.json() or {}).get("data", [])]


CATALOG = ["odd-model", "qwen/qwen3-coder"]


def catalog(t, mock):
    mock.call("POST", "/_mock/reset")
    mock.call("POST", "/_mock/config", {"models": CATALOG})
    gw = Gateway(config={"proactive_refresh_check_interval_seconds": 1})
    key = gw.add_key("client")
    r, a0, k0 = add(gw, mock, 0)
    t.ok(r.returncode == 0 and "Catalog: 2 models" in r.stderr,
         "accounts add without --models fetches the catalog", r.stderr)
    j = show(gw, a0)
    t.ok(j.get("catalog") == CATALOG and j.get("models") == CATALOG and
         j.get("models_source") == "catalog" and j.get("catalog_at", 0) > 0,
         "accounts show: the catalog, and that it decides the models", j)
    t.eq(CATALOG, model_ids(gw, key), "/v1/models lists the catalog")
    r = gw.req("GET", "/v1/models/odd-model", key=key)
    t.ok(r.status == 200 and (r.json() or {}).get("id") == "odd-model",
         "GET /v1/models/odd-model", r.text)
    r = chat(gw, key, model="odd-model")
    t.ok(r.status == 200 and used(mock) == [k0], "chat with odd-model",
         r.text)
    r = chat(gw, key, model="coder-model")
    t.ok(r.status == 404 and "model_not_found" in r.text,
         "a model outside every catalog: 404, not sent upstream", r.text)

    # a catalog that cannot be fetched: reported, not fatal
    mock.call("POST", "/_mock/fail", {"path": "/v1/models", "status": 500,
                                      "count": 1})
    r, a1, k1 = add(gw, mock, 1)
    j = show(gw, a1)
    t.ok(r.returncode == 0 and a1.startswith("k") and
         "could not be fetched" in r.stderr and "refresh-models" in r.stderr
         and k1 not in r.stderr,
         "catalog fetch fails: the account is added, the failure said",
         r.stderr)
    t.ok(j.get("catalog") is None and j.get("catalog_error") and
         "500" in j["catalog_error"] and j.get("models_source") == "preset",
         "accounts show: catalog_error", j)
    r = gw.cli("accounts", "refresh-models", a1)
    t.ok(r.returncode == 0 and r.stdout.split() == CATALOG and
         show(gw, a1).get("catalog_error") is None,
         "accounts refresh-models fetches it again", r.stdout + r.stderr)
    mock.call("POST", "/_mock/fail", {"path": "/v1/models", "status": 500,
                                      "count": 1})
    r = gw.cli("accounts", "refresh-models", a1)
    t.ok(r.returncode == 1 and "could not be fetched" in r.stderr and
         show(gw, a1).get("catalog") == CATALOG,
         "a failed refresh-models says so and keeps the old catalog",
         r.stderr)
    # no keeper under lighttpd: `qwenrelay refresh` (cron) retries it
    mock.call("POST", "/_mock/fail", {"path": "/v1/models", "status": 500,
                                      "count": 1})
    r, a3, k3 = add(gw, mock, 3)
    time.sleep(1.2)
    r = gw.cli("refresh")
    t.ok(r.returncode == 0 and "model catalogs refreshed: " in r.stdout and
         show(gw, a3).get("catalog") == CATALOG,
         "qwenrelay refresh fetches a catalog that failed before",
         r.stdout + r.stderr)
    r = gw.cli("accounts", "refresh-models", "knope")
    t.ok(r.returncode == 1 and "no account" in r.stderr,
         "refresh-models of an unknown id", r.stderr)

    # --models still overrides the catalog
    calls = mock.call("GET", "/_mock/calls")["models"]
    r, a2, k2 = add(gw, mock, 2, "--models", "pinned-model")
    j = show(gw, a2)
    t.ok(r.returncode == 0 and j.get("models") == ["pinned-model"] and
         j.get("models_source") == "operator" and
         mock.call("GET", "/_mock/calls")["models"] == calls,
         "--models: no fetch, the operator's list", j)
    gw.cli("accounts", "refresh-models", a2)
    t.eq(["pinned-model"], show(gw, a2).get("models"),
         "--models wins over a fetched catalog")
    t.eq(CATALOG + ["pinned-model"], model_ids(gw, key),
         "/v1/models: the union")

    # the admin API's add fetches it too
    admin = gw.add_key("adm", admin=True)
    kw = f"sk-catweb-{gw.port}"
    mock.call("POST", "/_mock/apikeys", {"key": kw})
    r = gw.req("POST", "/admin/api/accounts", key=admin, body={
        "provider": "openai-compatible", "label": "web", "api_key": kw,
        "base_url": mock.url + "/v1"})
    j = r.json() or {}
    t.ok(r.status == 201 and j.get("catalog") == CATALOG and
         j.get("models_source") == "catalog",
         "POST /admin/api/accounts without models fetches the catalog",
         r.text)
    gw.stop()

    # the keeper fetches what failed at add, once the upstream answers
    mock.call("POST", "/_mock/reset")
    mock.call("POST", "/_mock/config", {"models": CATALOG})
    gw = Gateway(serve=True, config={
        "proactive_refresh_check_interval_seconds": 1})
    key = gw.add_key("client")
    mock.call("POST", "/_mock/fail", {"path": "/v1/models", "status": 503,
                                      "count": 1})
    r, a0, k0 = add(gw, mock, 0)
    got = None
    end = time.time() + 30
    while time.time() < end:
        got = show(gw, a0).get("catalog")
        if got:
            break
        time.sleep(0.5)
    t.eq(CATALOG, got, "the keeper fetches the catalog later")
    t.eq(CATALOG, model_ids(gw, key), "and /v1/models lists it")
    gw.stop()


IDS = ["qwen/qwen3-coder", "accounts/fireworks/models/qwen3-coder",
       "meta-llama/llama-3.1-8b-instruct:free", "Qwen/Qwen2.5-Coder:Q4_K_M",
       "gpt-4o+search@2025", "caf\u00e9 model", "Qwen/Qwen3-Embedding-8B"]


def model_ids_round_trip(t, mock):
    mock.call("POST", "/_mock/reset")
    mock.call("POST", "/_mock/config", {"models": IDS})
    gw = Gateway()
    key = gw.add_key("client")
    r, a0, k0 = add(gw, mock, 0)
    t.eq(IDS, model_ids(gw, key), "/v1/models lists the ids as they are")
    for mid in IDS:
        forms = {urllib.parse.quote(mid, safe="/:@+"): "as is",
                 urllib.parse.quote(mid, safe=""): "percent-encoded"}
        for path, how in forms.items():
            r = gw.req("GET", "/v1/models/" + path, key=key)
            t.ok(r.status == 200 and (r.json() or {}).get("id") == mid,
                 f"GET /v1/models/{{id}} {how}: {mid}", f"{r.status} "
                 f"{path} {r.text[:200]}")
        if "Embedding" in mid:
            r = gw.req("POST", "/v1/embeddings", key=key,
                       body={"model": mid, "input": "x"})
            path = "/v1/embeddings"
        else:
            r = chat(gw, key, model=mid)
            path = "/v1/chat/completions"
        sent = mock.call("GET", "/_mock/requests?path=" + path)[-1]["body"]
        t.ok(r.status == 200 and sent.get("model") == mid,
             f"{path.rsplit('/', 1)[-1]} with {mid}: sent unchanged",
             f"{r.status} {r.text[:200]}")
    r = gw.req("POST", "/v1/embeddings", key=key,
               body={"model": "no-such-embedder", "input": "x"})
    t.ok(r.status == 400 and "Qwen/Qwen3-Embedding-8B" in r.text and
         "qwen/qwen3-coder" not in r.text,
         "the embedding hint names Qwen/Qwen3-Embedding-8B (any case of "
         "'embed')", r.text)
    for bad, what in (("a\u0000b", "NUL"), ("a\nb", "newline"),
                      ("x" * 201, "201 bytes")):
        for path, body in (("/v1/chat/completions", {
                "model": bad, "messages": [{"role": "user", "content": "x"}]}),
                ("/v1/embeddings", {"model": bad, "input": "x"})):
            r = gw.req("POST", path, key=key, body=body)
            t.ok(r.status == 400 and is_openai_error(r),
                 f"{path}: a model id with a {what}: 400", r.text)
    r = gw.req("GET", "/v1/models/" + urllib.parse.quote("qwen/nope"),
               key=key)
    t.ok(r.status == 404 and "model_not_found" in r.text and
         "qwen/nope" in r.text, "an unknown id with a slash: 404 naming it",
         r.text)
    gw.stop()


def test(t):
    mock = Mock()
    model_ids_round_trip(t, mock)
    billing(t, mock)
    usage_chunks(t, mock)
    catalog(t, mock)


main_guard(test)
