/*
 * app.js: the qwenrelay admin page.  Plain DOM, no framework, no outside
 * host: everything it calls is this server's /admin/api.  Text from the
 * server goes in with textContent only (never innerHTML), and the admin
 * key lives in sessionStorage: this tab only, gone when it closes.
 */
"use strict";

(function () {
  var STORE = "qwenrelay.admin_key";
  /* Under a mount prefix (/qwenrelay/admin) the API is under it too. */
  var ROOT = location.pathname.replace(/\/admin\/?$/, "");
  var key = sessionStorage.getItem(STORE) || "";
  var loginTimer = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") e.className = attrs[k];
      else if (k === "on") Object.keys(attrs.on).forEach(function (ev) {
        e.addEventListener(ev, attrs.on[ev]);
      });
      else e.setAttribute(k, attrs[k]);
    });
    (kids || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }

  function banner(msg, ok) {
    var b = $("banner");
    b.textContent = msg || "";
    b.className = ok ? "ok" : "";
    b.hidden = !msg;
  }

  function api(method, path, body) {
    var opts = { method: method, headers: { "Authorization": "Bearer " + key },
      cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(ROOT + path, opts).then(function (r) {
      return r.text().then(function (t) {
        var j = null;
        try { j = t ? JSON.parse(t) : null; } catch (e) { j = null; }
        if (r.status === 401 || r.status === 403) {
          if (path.indexOf("/admin/api/") === 0 && !(j && j.error &&
              j.error.code === "model_not_allowed")) {
            signOut(j && j.error ? j.error.message : "The key was refused.");
          }
        }
        return { status: r.status, json: j };
      });
    });
  }

  function errorText(res) {
    if (res.json && res.json.error && res.json.error.message)
      return res.json.error.message;
    return "The server answered " + res.status + ".";
  }

  /* ---- formatting ---- */

  function ago(ms) {
    if (!ms) return "never";
    var s = Math.round((Date.now() - ms) / 1000);
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }

  function dur(s) {
    var neg = s < 0;
    s = Math.abs(Math.round(s));
    var out;
    if (s < 60) out = s + " s";
    else if (s < 3600) out = Math.floor(s / 60) + " min";
    else if (s < 86400) out = Math.floor(s / 3600) + " h " +
      Math.floor((s % 3600) / 60) + " min";
    else out = Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
    return neg ? "expired " + out + " ago" : out;
  }

  function clock(ms) {
    var d = new Date(ms);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function num(n) { return (n || 0).toLocaleString(); }

  /* Two clicks: the first arms the button, the second acts. */
  function confirmButton(label, confirmLabel, cls, act) {
    var armed = false, b;
    b = el("button", { type: "button", cls: "small " + (cls || ""), text: label,
      on: { click: function () {
        if (!armed) {
          armed = true;
          b.textContent = confirmLabel;
          setTimeout(function () { armed = false; b.textContent = label; }, 4000);
          return;
        }
        b.disabled = true;
        act();
      } } });
    return b;
  }

  /* ---- accounts ---- */

  function accountRow(a) {
    var now = Date.now();
    var parked = (a.marks || []).filter(function (m) { return m.resets_at > now; });
    var status = a.status;
    if (status === "active" && parked.length) status = "limited";
    var statusCell = el("td", { "data-label": "Status" }, [
      el("span", { cls: "status " + status, text: status.replace("_", " ") }),
      a.status_reason ? el("span", { cls: "sub", text: a.status_reason }) : null]);
    var exp = a.expires_at ? dur((a.expires_at - now) / 1000) : "does not expire";
    var parkCell = el("td", { "data-label": "Parked" }, parked.length ?
      parked.map(function (m) {
        return el("span", { cls: "sub", text: m.model + " until " +
          clock(m.resets_at) + " (" + m.reason + ")" });
      }) : ["-"]);
    var enabled = a.status !== "disabled";
    var toggle = el("button", { type: "button", cls: "small",
      "data-action": enabled ? "disable" : "enable",
      text: enabled ? "Disable" : "Enable", on: { click: function () {
        toggle.disabled = true;
        api("PATCH", "/admin/api/accounts/" + encodeURIComponent(a.id),
          { enabled: !enabled }).then(function (r) {
          if (r.status !== 200) banner(errorText(r));
          else banner((enabled ? "Disabled " : "Enabled ") + a.id + ".", true);
          loadAccounts();
        });
      } } });
    var remove = confirmButton("Remove", "Really remove?", "danger", function () {
      api("DELETE", "/admin/api/accounts/" + encodeURIComponent(a.id)).then(
        function (r) {
          if (r.status !== 200 && r.status !== 204) banner(errorText(r));
          else banner("Removed " + a.id + ".", true);
          loadAccounts();
        });
    });
    return el("tr", { "data-account-id": a.id, "data-status": status }, [
      el("td", { "data-label": "Account" }, [a.label || a.id,
        el("span", { cls: "sub", text: a.id })]),
      el("td", { "data-label": "Provider", text: a.provider }),
      statusCell,
      el("td", { "data-label": "Expires in", text: exp }),
      parkCell,
      el("td", { "data-label": "Requests" }, [num(a.total_requests),
        el("span", { cls: "sub", text: "last " + ago(a.last_used_at) })]),
      el("td", { "data-label": "Tokens", text: num(a.prompt_tokens) + " / " +
        num(a.completion_tokens) }),
      el("td", { "data-label": "Last error" }, [a.last_error ?
        el("span", { cls: "err", text: a.last_error }) : "-"]),
      el("td", {}, [toggle, remove])
    ]);
  }

  function loadAccounts() {
    return api("GET", "/admin/api/accounts").then(function (r) {
      if (r.status !== 200 || !Array.isArray(r.json)) {
        if (key) banner(errorText(r));
        return;
      }
      var tb = $("accounts-table").tBodies[0];
      tb.textContent = "";
      r.json.forEach(function (a) { tb.appendChild(accountRow(a)); });
      $("accounts-empty").hidden = r.json.length > 0;
    });
  }

  /* ---- device login ---- */

  function stopLogin() {
    if (loginTimer) clearTimeout(loginTimer);
    loginTimer = null;
  }

  function pollLogin(id, every) {
    loginTimer = setTimeout(function () {
      api("GET", "/admin/api/logins/" + encodeURIComponent(id)).then(function (r) {
        var j = r.json || {};
        var st = $("device-status");
        if (r.status !== 200) {
          st.textContent = "Failed: " + errorText(r);
          $("device-start").disabled = false;
          return;
        }
        if (j.status === "pending") {
          st.textContent = "Waiting for approval... (checked " +
            new Date().toLocaleTimeString() + ")";
          pollLogin(id, (j.interval_ms || (j.interval || 5) * 1000));
          return;
        }
        $("device-start").disabled = false;
        if (j.status === "approved") {
          st.textContent = "Success: account " + (j.account_id || "") + " added.";
          st.className = "hint ok-text";
          banner("Qwen account " + (j.account_id || "") + " added.", true);
          loadAccounts();
        } else {
          st.textContent = "Login " + j.status + ": " + (j.message || "start again.");
        }
      });
    }, Math.max(1000, every || 5000));
  }

  function startLogin(ev) {
    ev.preventDefault();
    stopLogin();
    var label = $("device-label").value.trim();
    $("device-start").disabled = true;
    api("POST", "/admin/api/logins", label ? { label: label } : {}).then(function (r) {
      var j = r.json || {};
      if (r.status !== 200 && r.status !== 201) {
        $("device-start").disabled = false;
        banner(errorText(r));
        return;
      }
      var link = j.verification_uri_complete || j.verification_uri;
      var a = $("device-link");
      a.textContent = link;
      a.href = /^https?:\/\//.test(link) ? link : "#";
      $("device-code").textContent = j.user_code;
      $("device-status").className = "hint";
      $("device-status").textContent = "Waiting for approval...";
      $("device").hidden = false;
      pollLogin(j.login_id, (j.interval || 5) * 1000);
    });
  }

  function csv(s) {
    return s.split(",").map(function (x) { return x.trim(); })
      .filter(function (x) { return x; });
  }

  function addApiKeyAccount(ev) {
    ev.preventDefault();
    var body = { provider: $("ak-provider").value, api_key: $("ak-key").value };
    if ($("ak-label").value.trim()) body.label = $("ak-label").value.trim();
    if ($("ak-base").value.trim()) body.base_url = $("ak-base").value.trim();
    if (csv($("ak-models").value).length) body.models = csv($("ak-models").value);
    api("POST", "/admin/api/accounts", body).then(function (r) {
      if (r.status !== 201) { banner(errorText(r)); return; }
      $("ak-key").value = "";
      banner("Account " + (r.json && r.json.id) + " added.", true);
      loadAccounts();
    });
  }

  /* ---- keys ---- */

  function keyRow(k) {
    var lim = [];
    if (k.rpm) lim.push(k.rpm + " req/min");
    if (k.tpm) lim.push(k.tpm + " tok/min");
    if (k.models) lim.push("models: " + k.models.join(", "));
    var revoke = confirmButton("Revoke", "Really revoke?", "danger", function () {
      api("DELETE", "/admin/api/keys/" + encodeURIComponent(k.name)).then(
        function (r) {
          if (r.status !== 200) banner(errorText(r));
          else banner("Revoked key " + k.name + ".", true);
          loadKeys();
        });
    });
    return el("tr", { "data-key-name": k.name }, [
      el("td", { "data-label": "Name", text: k.name }),
      el("td", { "data-label": "Admin", text: k.admin ? "yes" : "no" }),
      el("td", { "data-label": "Limits", text: lim.length ? lim.join("; ") : "default" }),
      el("td", { "data-label": "Requests", text: num(k.requests) }),
      el("td", { "data-label": "Tokens", text: num(k.prompt_tokens) + " / " +
        num(k.completion_tokens) }),
      el("td", { "data-label": "Last used", text: ago(k.last_used_at) }),
      el("td", {}, [revoke])
    ]);
  }

  function loadKeys() {
    return api("GET", "/admin/api/keys").then(function (r) {
      if (r.status !== 200 || !Array.isArray(r.json)) return r;
      var tb = $("keys-table").tBodies[0];
      tb.textContent = "";
      r.json.forEach(function (k) { tb.appendChild(keyRow(k)); });
      return r;
    });
  }

  function createKey(ev) {
    ev.preventDefault();
    var body = { name: $("key-name").value.trim(), admin: $("key-admin").checked };
    if ($("key-rpm").value) body.rpm = parseInt($("key-rpm").value, 10);
    if ($("key-tpm").value) body.tpm = parseInt($("key-tpm").value, 10);
    if (csv($("key-models").value).length) body.models = csv($("key-models").value);
    api("POST", "/admin/api/keys", body).then(function (r) {
      if (r.status !== 201 || !r.json) { banner(errorText(r)); return; }
      $("newkey-name").textContent = r.json.name;
      $("newkey-value").value = r.json.key;
      $("newkey-copied").hidden = true;
      $("newkey").hidden = false;
      $("key-form").reset();
      banner("");
      loadKeys();
    });
  }

  function copyKey() {
    var v = $("newkey-value");
    function done() { $("newkey-copied").hidden = false; }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(v.value).then(done, function () {
        v.select(); document.execCommand("copy"); done();
      });
    } else {
      v.select();
      document.execCommand("copy");
      done();
    }
  }

  /* ---- session ---- */

  function signOut(msg) {
    stopLogin();
    key = "";
    sessionStorage.removeItem(STORE);
    $("app").hidden = true;
    $("signout").hidden = true;
    $("login").hidden = false;
    $("newkey").hidden = true;
    $("newkey-value").value = "";
    banner(msg || "");
  }

  function showApp() {
    $("login").hidden = true;
    $("app").hidden = false;
    $("signout").hidden = false;
    loadAccounts();
    loadKeys();
  }

  function signIn(ev) {
    ev.preventDefault();
    key = $("login-key").value.trim();
    loadKeys().then(function (r) {
      if (r.status === 200) {
        sessionStorage.setItem(STORE, key);
        $("login-key").value = "";
        banner("");
        showApp();
      } else if (r.status !== 401 && r.status !== 403) {
        banner(errorText(r));
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("login-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", function () { signOut(""); });
    $("refresh").addEventListener("click", function () {
      loadAccounts(); loadKeys();
    });
    $("device-form").addEventListener("submit", startLogin);
    $("apikey-form").addEventListener("submit", addApiKeyAccount);
    $("key-form").addEventListener("submit", createKey);
    $("newkey-copy").addEventListener("click", copyKey);
    if (key) showApp();
    setInterval(function () { if (key && !document.hidden) loadAccounts(); }, 30000);
  });
})();
