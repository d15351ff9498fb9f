/*
 * admin_logins.c: the OAuth device flow over HTTP (admin key), for hosts
 * without a shell.
 *
 *   POST /admin/api/logins        {"label":..}: start; answers the user code
 *   GET  /admin/api/logins/{id}   poll: pending|approved|expired|denied|error
 *
 * Any worker may answer a poll, so the login lives in the store, with the
 * device code and PKCE verifier sealed under the login id.  A poll asks
 * Qwen at most once per interval: the worker that moves next_poll_at
 * forward in a write transaction is the one that asks.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "accounts.h"
#include "cfg.h"
#include "crypto.h"
#include "handlers.h"
#include "log.h"
#include "oauth.h"
#include "req.h"
#include "route.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

#define LABEL_MAX	64

/* A JSON answer that names the worker pid (tests check the spread). */
static int
send_json(struct req *r, int status, json_object *o)
{
	char	hdr[96];

	snprintf(hdr, sizeof(hdr), "X-Qwenrelay-Worker: %ld\r\n"
	    "Cache-Control: no-store\r\n", (long)getpid());
	resp_json_h(r, status, o, hdr);
	return 0;
}

static const char *
jstr(json_object *o, const char *k)
{
	json_object	*v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int64_t
jint(json_object *o, const char *k)
{
	json_object	*v;

	if (!json_object_object_get_ex(o, k, &v))
		return 0;
	return json_object_get_int64(v);
}

static int
need_ready(struct req *r)
{
	if (r->srv->st == NULL) {
		resp_error(r, 503, "server_error", "store_unavailable",
		    "The state store cannot be opened; see the server log.");
		return -1;
	}
	if (!r->srv->have_key) {
		resp_error(r, 503, "server_error", "seal_key_unavailable",
		    "The sealing key cannot be loaded: %s", r->srv->key_err);
		return -1;
	}
	return 0;
}

static int
limit_reached(struct req *r)
{
	char	msg[512];
	size_t	n = 0;
	int	rc;

	if ((rc = store_account_count(r->srv->st, &n)) != 0)
		return rc;
	if ((long long)n < r->srv->cfg->max_accounts)
		return 0;
	account_limit_message(msg, sizeof(msg), n, r->srv->cfg->max_accounts);
	resp_error(r, 409, "invalid_request_error", "account_limit_reached",
	    "%s", msg);
	return 1;
}

int
handle_admin_logins(struct req *r)
{
	struct oauth_device	 d;
	json_object		*body = NULL, *rec, *o;
	unsigned char		 rnd[8];
	const char		*label = NULL, *why;
	char			*verifier, *challenge, *hex, *s1, *s2;
	char			 id[24], err[512];
	int64_t			 now = now_ms(), interval;
	int			 rc;

	if (need_ready(r) != 0)
		return 0;
	store_login_purge(r->srv->st, now);
	if (r->body_len > 0) {
		if ((body = parse_json_object(r->body, r->body_len,
		    &why)) == NULL) {
			resp_error(r, 400, "invalid_request_error",
			    "invalid_json", "The body is not valid JSON: %s.",
			    why);
			return 0;
		}
		if (json_object_object_get_ex(body, "label", &o) &&
		    !json_object_is_type(o, json_type_null)) {
			size_t i;
			label = jstr(body, "label");
			if (label == NULL || *label == '\0' ||
			    strlen(label) > LABEL_MAX || strlen(label) !=
			    (size_t)json_object_get_string_len(o))
				label = NULL;
			for (i = 0; label != NULL && label[i] != '\0'; i++)
				if ((unsigned char)label[i] < 0x20)
					label = NULL;
			if (label == NULL) {
				json_object_put(body);
				resp_error(r, 400, "invalid_request_error",
				    "invalid_request", "\"label\" must be a "
				    "string of 1 to 64 printable characters.");
				return 0;
			}
		}
	}
	/* Refuse the 11th before Qwen hears of it. */
	if ((rc = limit_reached(r)) != 0) {
		json_object_put(body);
		return rc < 0 ? rc : 0;
	}
	if ((verifier = oauth_pkce_verifier()) == NULL) {
		json_object_put(body);
		return -EIO;
	}
	challenge = oauth_pkce_challenge(verifier);
	if (oauth_device_start(r->srv->cfg, challenge, &d, err,
	    sizeof(err)) != OAUTH_OK) {
		free(challenge);
		xfree_secret(verifier);
		json_object_put(body);
		log_warn("login: device authorization failed: %s", err);
		resp_error(r, 502, "upstream_error", "oauth_unavailable",
		    "Cannot start the Qwen login: %s. Check "
		    "qwen_oauth_base_url and the network.", err);
		return 0;
	}
	free(challenge);
	if (crypto_random(rnd, sizeof(rnd)) != 0) {
		xfree_secret(verifier);
		oauth_device_free(&d);
		json_object_put(body);
		return -EIO;
	}
	hex = hex_encode(rnd, sizeof(rnd));
	snprintf(id, sizeof(id), "l%s", hex);
	free(hex);
	interval = (d.interval > 0 ? d.interval : OAUTH_DEFAULT_INTERVAL) *
	    1000;
	s1 = crypto_seal(r->srv->seal_key, id, d.device_code);
	s2 = crypto_seal(r->srv->seal_key, id, verifier);
	xfree_secret(verifier);
	if (s1 == NULL || s2 == NULL) {
		free(s1);
		free(s2);
		oauth_device_free(&d);
		json_object_put(body);
		return -EIO;
	}
	rec = json_object_new_object();
	json_object_object_add(rec, "id", json_object_new_string(id));
	json_object_object_add(rec, "label", label != NULL ?
	    json_object_new_string(label) : NULL);
	json_object_object_add(rec, "device_code", json_object_new_string(s1));
	json_object_object_add(rec, "verifier", json_object_new_string(s2));
	json_object_object_add(rec, "user_code",
	    json_object_new_string(d.user_code));
	json_object_object_add(rec, "expires_at",
	    json_object_new_int64(now + d.expires_in * 1000));
	json_object_object_add(rec, "interval_ms",
	    json_object_new_int64(interval));
	json_object_object_add(rec, "next_poll_at",
	    json_object_new_int64(now + interval));
	json_object_object_add(rec, "status",
	    json_object_new_string("pending"));
	free(s1);
	free(s2);
	rc = store_login_put(r->srv->st, id, json_object_to_json_string(rec));
	json_object_put(rec);
	json_object_put(body);
	if (rc != 0) {
		oauth_device_free(&d);
		return rc;
	}
	log_info("login %s: started (user code %s)", id, d.user_code);
	o = json_object_new_object();
	json_object_object_add(o, "login_id", json_object_new_string(id));
	json_object_object_add(o, "user_code",
	    json_object_new_string(d.user_code));
	json_object_object_add(o, "verification_uri",
	    json_object_new_string(d.verification_uri));
	json_object_object_add(o, "verification_uri_complete",
	    json_object_new_string(d.verification_uri_complete));
	json_object_object_add(o, "expires_in",
	    json_object_new_int64(d.expires_in));
	json_object_object_add(o, "interval",
	    json_object_new_int64(interval / 1000));
	oauth_device_free(&d);
	send_json(r, 200, o);
	json_object_put(o);
	return 0;
}

struct claim {
	int64_t		 now;
	int		 claimed;
	char		*device_code;	/* sealed */
	char		*verifier;	/* sealed */
	char		*label;
};

/* Take the right to poll now, if nobody polled within the interval. */
static int
claim_fn(json_object *o, void *arg)
{
	struct claim	*c = arg;
	const char	*st = jstr(o, "status"), *dc, *v, *l;

	if (st == NULL || strcmp(st, "pending") != 0 ||
	    jint(o, "next_poll_at") > c->now ||
	    jint(o, "expires_at") <= c->now)
		return 1;
	if ((dc = jstr(o, "device_code")) == NULL ||
	    (v = jstr(o, "verifier")) == NULL)
		return 1;
	c->device_code = xstrdup(dc);
	c->verifier = xstrdup(v);
	l = jstr(o, "label");
	c->label = l != NULL ? xstrdup(l) : NULL;
	json_object_object_add(o, "next_poll_at",
	    json_object_new_int64(c->now + jint(o, "interval_ms")));
	c->claimed = 1;
	return 0;
}

struct outcome {
	int64_t		 now;
	const char	*status;	/* NULL: still pending */
	const char	*account_id;
	const char	*message;
	int		 slow_down;
};

static int
outcome_fn(json_object *o, void *arg)
{
	struct outcome	*oc = arg;
	int64_t		 iv;

	if (oc->slow_down) {
		iv = jint(o, "interval_ms") * 3 / 2;
		if (iv > OAUTH_MAX_INTERVAL_MS)
			iv = OAUTH_MAX_INTERVAL_MS;
		json_object_object_add(o, "interval_ms",
		    json_object_new_int64(iv));
		json_object_object_add(o, "next_poll_at",
		    json_object_new_int64(oc->now + iv));
	}
	if (oc->status == NULL)
		return oc->slow_down ? 0 : 1;
	json_object_object_add(o, "status", json_object_new_string(oc->status));
	if (oc->account_id != NULL)
		json_object_object_add(o, "account_id",
		    json_object_new_string(oc->account_id));
	if (oc->message != NULL)
		json_object_object_add(o, "message",
		    json_object_new_string(oc->message));
	/* A finished login needs its secrets no more. */
	json_object_object_del(o, "device_code");
	json_object_object_del(o, "verifier");
	return 0;
}

/* Ask Qwen once; write what happened into the login. */
static void
poll_once(struct req *r, const char *id, struct claim *c)
{
	struct oauth_tokens	 t;
	struct account_new	 an;
	struct outcome		 oc;
	enum oauth_result	 res;
	char			*dc = NULL, *ver = NULL, err[512], msg[640];
	char			 acc[24], dup[24];
	size_t			 count = 0;
	int			 rc;

	memset(&oc, 0, sizeof(oc));
	oc.now = now_ms();
	if (crypto_open(r->srv->seal_key, id, c->device_code, &dc) != 0 ||
	    crypto_open(r->srv->seal_key, id, c->verifier, &ver) != 0) {
		oc.status = "error";
		oc.message = "the login cannot be opened with this seal.key; "
		    "start a new login";
		goto write;
	}
	res = oauth_device_poll(r->srv->cfg, dc, ver, &t, err, sizeof(err));
	switch (res) {
	case OAUTH_PENDING:
		break;
	case OAUTH_TRANSIENT:
		log_warn("login %s: poll failed: %s", id, err);
		break;
	case OAUTH_SLOW_DOWN:
		oc.slow_down = 1;
		break;
	case OAUTH_EXPIRED:
		oc.status = "expired";
		oc.message = err;
		break;
	case OAUTH_DENIED:
		oc.status = "denied";
		oc.message = err;
		break;
	case OAUTH_OK:
		if (t.refresh_token == NULL) {
			oc.status = "error";
			oc.message = "the token answer has no refresh_token";
			oauth_tokens_free(&t);
			break;
		}
		memset(&an, 0, sizeof(an));
		an.provider = "qwen-oauth";
		an.label = c->label;
		an.access = t.access_token;
		an.refresh = t.refresh_token;
		an.base_url = t.resource_url;
		an.expires_at = oc.now + t.expires_in * 1000;
		rc = account_create(r->srv->st, r->srv->cfg, r->srv->seal_key,
		    &an, acc, dup, &count);
		oauth_tokens_free(&t);
		if (rc == 0) {
			oc.status = "approved";
			oc.account_id = acc;
			log_info("login %s: approved, account %s", id, acc);
		} else if (rc == -EEXIST) {
			oc.status = "approved";
			oc.account_id = dup;
			oc.message = "this account was already present";
		} else if (rc == -EDQUOT) {
			account_limit_message(msg, sizeof(msg), count,
			    r->srv->cfg->max_accounts);
			oc.status = "error";
			oc.message = msg;
		} else {
			snprintf(msg, sizeof(msg), "cannot store the account: "
			    "%s", store_strerror(rc));
			oc.status = "error";
			oc.message = msg;
		}
		break;
	default:
		oc.status = "error";
		oc.message = err;
		break;
	}
write:
	xfree_secret(dc);
	xfree_secret(ver);
	if (oc.status != NULL || oc.slow_down)
		if ((rc = store_login_update(r->srv->st, id, outcome_fn,
		    &oc)) != 0)
			log_err("login %s: cannot record the outcome: %s", id,
			    store_strerror(rc));
}

static int
answer(struct req *r, json_object *rec, int polled)
{
	json_object	*o = json_object_new_object();
	const char	*s = jstr(rec, "status");
	int64_t		 left = (jint(rec, "expires_at") - now_ms()) / 1000;

	if (s == NULL)
		s = "error";
	json_object_object_add(o, "login_id",
	    json_object_new_string(jstr(rec, "id") ? jstr(rec, "id") : ""));
	json_object_object_add(o, "status", json_object_new_string(s));
	if (jstr(rec, "account_id") != NULL)
		json_object_object_add(o, "account_id",
		    json_object_new_string(jstr(rec, "account_id")));
	if (jstr(rec, "message") != NULL)
		json_object_object_add(o, "message",
		    json_object_new_string(jstr(rec, "message")));
	if (strcmp(s, "pending") == 0) {
		json_object_object_add(o, "expires_in",
		    json_object_new_int64(left > 0 ? left : 0));
		json_object_object_add(o, "interval", json_object_new_int64(
		    (jint(rec, "interval_ms") + 999) / 1000));
	}
	json_object_object_add(o, "polled", json_object_new_boolean(polled));
	send_json(r, 200, o);
	json_object_put(o);
	return 0;
}

static int
expire_fn(json_object *o, void *arg)
{
	const char	*st = jstr(o, "status");

	(void)arg;
	if (st == NULL || strcmp(st, "pending") != 0)
		return 1;
	json_object_object_add(o, "status", json_object_new_string("expired"));
	json_object_object_add(o, "message", json_object_new_string(
	    "the code expired before it was approved; start a new login"));
	json_object_object_del(o, "device_code");
	json_object_object_del(o, "verifier");
	return 0;
}

/* The login record r->param as a JSON object (caller puts), or -errno. */
static int
load_login(struct req *r, json_object **rec)
{
	const char	*why;
	char		*text;
	int		 rc;

	if ((rc = store_login_get(r->srv->st, r->param, &text)) != 0)
		return rc;
	*rec = parse_json_object(text, strlen(text), &why);
	free(text);
	return *rec == NULL ? -EINVAL : 0;
}

int
handle_admin_login(struct req *r)
{
	struct claim	 c;
	json_object	*rec;
	int		 rc;

	if (need_ready(r) != 0)
		return 0;
	memset(&c, 0, sizeof(c));
	c.now = now_ms();
	rc = store_login_update(r->srv->st, r->param, claim_fn, &c);
	if (rc == -ENOENT) {
		resp_error(r, 404, "invalid_request_error", "login_not_found",
		    "No login %s: it finished more than 10 minutes ago or "
		    "never existed. Start one with POST /admin/api/logins.",
		    r->param);
		return 0;
	}
	if (rc != 0)
		return rc;
	if (c.claimed)
		poll_once(r, r->param, &c);
	free(c.device_code);
	free(c.verifier);
	free(c.label);
	if ((rc = load_login(r, &rec)) != 0)
		return rc;
	if (jstr(rec, "status") != NULL &&
	    strcmp(jstr(rec, "status"), "pending") == 0 &&
	    jint(rec, "expires_at") <= now_ms()) {
		json_object_put(rec);
		store_login_update(r->srv->st, r->param, expire_fn, NULL);
		if ((rc = load_login(r, &rec)) != 0)
			return rc;
	}
	rc = answer(r, rec, c.claimed);
	json_object_put(rec);
	return rc;
}
