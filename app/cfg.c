/*
 * cfg.c: typed configuration keys, in the manner of lighttpd's
 * config_plugin_keys_t: one table says each key's name, type, bounds and
 * default; loading, environment overrides and printing all walk it.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cfg.h"
#include "util.h"
#include "xmalloc.h"

enum cfg_type {
	CT_BOOL,
	CT_INT,
	CT_STR,
	CT_ENUM,
	CT_STRLIST,
	CT_ALIASES,
	CT_URL
};

struct cfg_key {
	const char	*name;
	enum cfg_type	 type;
	size_t		 off;
	long long	 min, max;	/* CT_INT bounds */
	const char	*def;		/* default, as text */
	const char	*choices;	/* CT_ENUM: "a|b|c" */
};

#define K(n, t, mn, mx, d, ch) \
	{ #n, t, offsetof(struct cfg, n), mn, mx, d, ch }
#define KI(n, mn, mx, d)	K(n, CT_INT, mn, mx, d, NULL)
#define KB(n, d)		K(n, CT_BOOL, 0, 0, d, NULL)
#define KS(n, d)		K(n, CT_STR, 0, 0, d, NULL)
#define DAY			86400LL

static const struct cfg_key cfg_keys[] = {
	KS(state_dir, "/var/lib/qwenrelay"),
	KS(listen, "127.0.0.1:9000"),
	KI(workers, 1, 256, "8"),
	KI(max_requests, 0, 1LL << 40, "0"),
	KI(threads, 1, 4096, "128"),
	K(pm, CT_ENUM, 0, 0, "static", "static|dynamic"),
	KI(pm_min_spare_workers, 1, 256, "1"),
	KI(pm_max_spare_workers, 1, 256, "2"),
	KI(shutdown_grace_seconds, 0, DAY, "30"),
	KS(user, ""),
	KS(listen_group, ""),
	KB(run_as_root, "false"),
	K(log_level, CT_ENUM, 0, 0, "info", "error|warn|info|debug"),
	KS(log_file, "stderr"),
	KB(request_log, "true"),
	KS(access_log, ""),
	KB(auth_disabled, "false"),
	K(cors_allowed_origins, CT_STRLIST, 0, 0, "", NULL),
	KI(max_body_bytes, 1024, 1LL << 31, "33554432"),
	KB(metrics_public, "false"),
	KI(store_map_size_mb, 8, 1 << 20, "256"),
	KI(max_accounts, 1, 1000, "10"),
	K(qwen_oauth_base_url, CT_URL, 0, 0, "https://chat.qwen.ai", NULL),
	KS(qwen_default_resource_url, "portal.qwen.ai"),
	KB(allow_insecure_upstream, "false"),
	K(model_aliases, CT_ALIASES, 0, 0, "{}", NULL),
	K(account_selection_strategy, CT_ENUM, 0, 0, "sticky",
	    "sticky|round-robin|least-used|hybrid"),
	KI(hybrid_rotate_requests, 1, 1000000, "50"),
	KB(switch_on_first_rate_limit, "true"),
	KI(retry_same_account_threshold_seconds, 0, 3600, "5"),
	KI(max_rate_limit_wait_seconds, 0, 3600, "30"),
	KI(exponential_backoff_base_ms, 1, 3600000, "1000"),
	KI(exponential_backoff_max_ms, 1, 86400000, "32000"),
	KI(quota_cooldown_seconds, 1, 7 * DAY, "1800"),
	KI(upstream_retries, 0, 10, "2"),
	KB(proactive_token_refresh, "true"),
	KI(proactive_refresh_buffer_seconds, 0, DAY, "1800"),
	KI(proactive_refresh_check_interval_seconds, 1, DAY, "300"),
	KI(token_refresh_retry_attempts, 1, 20, "3"),
	KI(token_refresh_retry_delay_ms, 0, 600000, "2000"),
	KI(upstream_connect_timeout_ms, 100, 600000, "10000"),
	KI(upstream_idle_timeout_seconds, 1, DAY, "120"),
	KI(upstream_total_timeout_seconds, 1, DAY, "600"),
	KI(sse_keepalive_seconds, 1, 3600, "15"),
	KI(client_rate_limit_rpm, 0, 1000000, "0"),
	KI(responses_ttl_seconds, 0, 30 * DAY, "3600"),
};
#define NKEYS	(sizeof(cfg_keys) / sizeof(cfg_keys[0]))

static void
errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
strlist_free(char **l)
{
	size_t	i;

	if (l == NULL)
		return;
	for (i = 0; l[i] != NULL; i++)
		free(l[i]);
	free(l);
}

static void
aliases_free(struct cfg_alias *a)
{
	size_t	i;

	if (a == NULL)
		return;
	for (i = 0; a[i].from != NULL; i++) {
		free(a[i].from);
		free(a[i].to);
	}
	free(a);
}

static int
enum_ok(const char *choices, const char *v)
{
	size_t		 n = strlen(v);
	const char	*p = choices;

	while (p != NULL) {
		if (strncmp(p, v, n) == 0 && (p[n] == '|' || p[n] == '\0'))
			return 1;
		if ((p = strchr(p, '|')) != NULL)
			p++;
	}
	return 0;
}

/* Split "a,b,c" (spaces trimmed, empties dropped) into a list. */
static char **
strlist_from_csv(const char *s)
{
	char	**l;
	size_t	  n = 0, cap = 4;
	const char *p = s, *e;

	l = xcalloc(cap + 1, sizeof(*l));
	while (*p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		for (e = p; *e != '\0' && *e != ','; e++)
			;
		size_t len = (size_t)(e - p);
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (n == cap) {
			cap *= 2;
			l = xrealloc(l, (cap + 1) * sizeof(*l));
		}
		l[n++] = xstrndup(p, len);
		l[n] = NULL;
		p = e;
	}
	return l;
}

static int
aliases_from_json(json_object *o, struct cfg_alias **out)
{
	struct cfg_alias	*a;
	size_t			 n = 0;

	if (!json_object_is_type(o, json_type_object))
		return -1;
	a = xcalloc((size_t)json_object_object_length(o) + 1, sizeof(*a));
	json_object_object_foreach(o, k, v) {
		if (!json_object_is_type(v, json_type_string) || *k == '\0' ||
		    json_object_get_string_len(v) == 0) {
			aliases_free(a);
			return -1;
		}
		a[n].from = xstrdup(k);
		a[n].to = xstrdup(json_object_get_string(v));
		n++;
		if (strchr(k, '*') == NULL)
			continue;
		if (strchr(k, '*') != k + strlen(k) - 1) {
			aliases_free(a);
			return -1;	/* one '*', at the end */
		}
		a[n - 1].prefix = strlen(k) - 1;
	}
	*out = a;
	return 0;
}

/* Set key from a text value (default or environment). */
static int
set_text(struct cfg *c, const struct cfg_key *k, const char *v,
    char *err, size_t errlen)
{
	char		*base = (char *)c + k->off;
	const char	*es;
	long long	 n;

	switch (k->type) {
	case CT_BOOL:
		if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
		    strcmp(v, "yes") == 0)
			*(bool *)base = true;
		else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 ||
		    strcmp(v, "no") == 0)
			*(bool *)base = false;
		else {
			errf(err, errlen, "%s: expected true or false, got "
			    "\"%.40s\"", k->name, v);
			return -1;
		}
		return 0;
	case CT_INT:
		n = parse_int(v, k->min, k->max, &es);
		if (es != NULL) {
			errf(err, errlen, "%s: %s (expected an integer from "
			    "%lld to %lld, got \"%.40s\")", k->name, es,
			    k->min, k->max, v);
			return -1;
		}
		*(long long *)base = n;
		return 0;
	case CT_ENUM:
		if (!enum_ok(k->choices, v)) {
			errf(err, errlen, "%s: must be one of %s, got "
			    "\"%.40s\"", k->name, k->choices, v);
			return -1;
		}
		/* FALLTHROUGH */
	case CT_STR:
		free(*(char **)base);
		*(char **)base = xstrdup(v);
		return 0;
	case CT_URL:
		if (strncmp(v, "https://", 8) != 0 &&
		    strncmp(v, "http://", 7) != 0) {
			errf(err, errlen, "%s: must be an http(s):// URL, got "
			    "\"%.60s\"", k->name, v);
			return -1;
		}
		free(*(char **)base);
		*(char **)base = xstrdup(v);
		return 0;
	case CT_STRLIST:
		strlist_free(*(char ***)base);
		*(char ***)base = strlist_from_csv(v);
		return 0;
	case CT_ALIASES: {
		json_object		*o = json_tokener_parse(v);
		struct cfg_alias	*a;
		int			 rc = aliases_from_json(o, &a);

		json_object_put(o);
		if (rc != 0) {
			errf(err, errlen, "%s: expected a JSON object of "
			    "model name to model name (a name may end in one "
			    "'*' to match a prefix)", k->name);
			return -1;
		}
		aliases_free(*(struct cfg_alias **)base);
		*(struct cfg_alias **)base = a;
		return 0;
	}
	}
	return -1;
}

/* Set key from a JSON value in the file. */
static int
set_json(struct cfg *c, const struct cfg_key *k, json_object *v,
    char *err, size_t errlen)
{
	char	buf[32];
	char	*base = (char *)c + k->off;

	switch (k->type) {
	case CT_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			goto type;
		*(bool *)base = json_object_get_boolean(v);
		return 0;
	case CT_INT:
		if (!json_object_is_type(v, json_type_int))
			goto type;
		snprintf(buf, sizeof(buf), "%lld",
		    (long long)json_object_get_int64(v));
		return set_text(c, k, buf, err, errlen);
	case CT_STR:
	case CT_ENUM:
	case CT_URL:
		if (!json_object_is_type(v, json_type_string))
			goto type;
		return set_text(c, k, json_object_get_string(v), err, errlen);
	case CT_STRLIST: {
		char	**l;
		size_t	  i, n;

		if (!json_object_is_type(v, json_type_array))
			goto type;
		n = json_object_array_length(v);
		l = xcalloc(n + 1, sizeof(*l));
		for (i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(v, i);
			if (!json_object_is_type(e, json_type_string)) {
				strlist_free(l);
				goto type;
			}
			l[i] = xstrdup(json_object_get_string(e));
		}
		strlist_free(*(char ***)base);
		*(char ***)base = l;
		return 0;
	}
	case CT_ALIASES: {
		struct cfg_alias *a;

		if (aliases_from_json(v, &a) != 0)
			goto type;
		aliases_free(*(struct cfg_alias **)base);
		*(struct cfg_alias **)base = a;
		return 0;
	}
	}
type:
	errf(err, errlen, "%s: wrong type (expected %s)", k->name,
	    k->type == CT_BOOL ? "true or false" :
	    k->type == CT_INT ? "an integer" :
	    k->type == CT_STRLIST ? "an array of strings" :
	    k->type == CT_ALIASES ? "an object of model names; a name may "
	    "end in one '*' to match a prefix" : "a string");
	return -1;
}

static const struct cfg_key *
key_find(const char *name)
{
	size_t	i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(cfg_keys[i].name, name) == 0)
			return &cfg_keys[i];
	return NULL;
}

static int
load_file(struct cfg *c, const char *path, char *err, size_t errlen)
{
	json_object		*root;
	const struct cfg_key	*k;
	FILE			*f;
	char			*buf;
	size_t			 n;
	enum json_tokener_error	 jerr;
	json_tokener		*tok;

	if ((f = fopen(path, "re")) == NULL) {
		if (errno == ENOENT)
			return 0;
		errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	buf = xmalloc(1 << 20);
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	buf[n] = '\0';
	tok = json_tokener_new_ex(16);
	root = json_tokener_parse_ex(tok, buf, (int)n + 1);
	jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	free(buf);
	if (root == NULL || jerr != json_tokener_success) {
		errf(err, errlen, "%s: not valid JSON (%s)", path,
		    json_tokener_error_desc(jerr));
		json_object_put(root);
		return -1;
	}
	if (!json_object_is_type(root, json_type_object)) {
		errf(err, errlen, "%s: expected a JSON object", path);
		json_object_put(root);
		return -1;
	}
	c->path = xstrdup(path);
	json_object_object_foreach(root, key, val) {
		if ((k = key_find(key)) == NULL) {
			errf(err, errlen, "%s: unknown key (in %s)", key, path);
			json_object_put(root);
			return -1;
		}
		if (set_json(c, k, val, err, errlen) != 0) {
			json_object_put(root);
			return -1;
		}
	}
	json_object_put(root);
	return 0;
}

const char *
cfg_default_path(char *buf, size_t bufsz)
{
	const char	*env = getenv("QWENRELAY_CONFIG");
	char		*slash;
	ssize_t		 n;

	if (env != NULL && *env != '\0') {
		snprintf(buf, bufsz, "%s", env);
		return buf;
	}
	/* Beside the binary, wherever it was copied (and however named). */
	n = readlink("/proc/self/exe", buf, bufsz);
	if (n > 0 && (size_t)n < bufsz) {
		buf[n] = '\0';
		if ((slash = strrchr(buf, '/')) != NULL &&
		    (size_t)(slash - buf) + 1 + sizeof(CFG_BESIDE_NAME) <=
		    bufsz) {
			memcpy(slash + 1, CFG_BESIDE_NAME,
			    sizeof(CFG_BESIDE_NAME));
			if (access(buf, F_OK) == 0)
				return buf;
		}
	}
	snprintf(buf, bufsz, "%s", CFG_DEFAULT_PATH);
	return buf;
}

void
cfg_state_hint(const struct cfg *c, int rc, char *err, size_t errlen)
{
	struct passwd	 pwbuf, *pw = NULL;
	char		 file[1024], pwmem[1024];
	size_t		 n = strlen(err);
	uid_t		 uid = geteuid();

	if (rc != -EACCES && rc != -EPERM && rc != -EROFS)
		return;
	if (c->path != NULL)
		snprintf(file, sizeof(file), "%s", c->path);
	else
		cfg_default_path(file, sizeof(file));
	if (getpwuid_r(uid, &pwbuf, pwmem, sizeof(pwmem), &pw) != 0)
		pw = NULL;
	snprintf(err + n, errlen > n ? errlen - n : 0, "; set state_dir in "
	    "%s%s (or QWENRELAY_STATE_DIR) to a directory user %s (uid %ld) "
	    "can write", file, c->path != NULL ? "" : " (create the file)",
	    pw != NULL ? pw->pw_name : "?", (long)uid);
}

int
cfg_load(struct cfg *c, const char *path, char *err, size_t errlen)
{
	extern char	**environ;
	char		  envname[128], **e, pathbuf[4096];
	size_t		  i, j;
	const char	 *v;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NKEYS; i++)
		if (set_text(c, &cfg_keys[i], cfg_keys[i].def, err, errlen))
			return -1;
	if (path == NULL)
		path = cfg_default_path(pathbuf, sizeof(pathbuf));
	if (load_file(c, path, err, errlen) != 0)
		return -1;

	/* Environment: QWENRELAY_<KEY> wins; an unknown one is a typo. */
	for (e = environ; *e != NULL; e++) {
		if (strncmp(*e, "QWENRELAY_", 10) != 0)
			continue;
		const char *eq = strchr(*e, '=');
		size_t len = (size_t)(eq - *e) - 10;
		if (eq == NULL || len >= sizeof(envname))
			continue;
		for (j = 0; j < len; j++)
			envname[j] = (char)tolower((unsigned char)(*e)[10 + j]);
		envname[len] = '\0';
		if (strcmp(envname, "config") == 0)
			continue;
		const struct cfg_key *k = key_find(envname);
		if (k == NULL) {
			errf(err, errlen, "QWENRELAY_%.*s: unknown setting "
			    "(environment)", (int)len, *e + 10);
			return -1;
		}
		v = eq + 1;
		if (set_text(c, k, v, err, errlen) != 0)
			return -1;
	}
	c->strategy = strcmp(c->account_selection_strategy, "round-robin") == 0 ?
	    STRAT_ROUND_ROBIN :
	    strcmp(c->account_selection_strategy, "least-used") == 0 ?
	    STRAT_LEAST_USED :
	    strcmp(c->account_selection_strategy, "hybrid") == 0 ?
	    STRAT_HYBRID : STRAT_STICKY;
	if (c->exponential_backoff_base_ms > c->exponential_backoff_max_ms) {
		errf(err, errlen, "exponential_backoff_base_ms: larger than "
		    "exponential_backoff_max_ms");
		return -1;
	}
	if (*c->state_dir == '\0') {
		errf(err, errlen, "state_dir: must not be empty");
		return -1;
	}
	return 0;
}

/* The user:password@ part of a URL is printed as "***@". */
static json_object *
masked_url(const char *u)
{
	const char	*s = strstr(u, "://"), *at, *slash;

	if (s == NULL)
		return json_object_new_string(u);
	s += 3;
	at = strchr(s, '@');
	slash = strchr(s, '/');
	if (at == NULL || (slash != NULL && slash < at))
		return json_object_new_string(u);
	char *m = xasprintf("%.*s***%s", (int)(s - u), u, at);
	json_object *o = json_object_new_string(m);
	free(m);
	return o;
}

void
cfg_print(const struct cfg *c, FILE *f)
{
	json_object	*root = json_object_new_object(), *v = NULL;
	size_t		 i, j;

	for (i = 0; i < NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		const char *base = (const char *)c + k->off;

		switch (k->type) {
		case CT_BOOL:
			v = json_object_new_boolean(*(const bool *)base);
			break;
		case CT_INT:
			v = json_object_new_int64(*(const long long *)base);
			break;
		case CT_STR:
		case CT_ENUM:
			v = json_object_new_string(*(char *const *)base);
			break;
		case CT_URL:
			v = masked_url(*(char *const *)base);
			break;
		case CT_STRLIST: {
			char *const *l = *(char **const *)base;
			v = json_object_new_array();
			for (j = 0; l != NULL && l[j] != NULL; j++)
				json_object_array_add(v,
				    json_object_new_string(l[j]));
			break;
		}
		case CT_ALIASES: {
			const struct cfg_alias *a =
			    *(struct cfg_alias *const *)base;
			v = json_object_new_object();
			for (j = 0; a != NULL && a[j].from != NULL; j++)
				json_object_object_add(v, a[j].from,
				    json_object_new_string(a[j].to));
			break;
		}
		}
		json_object_object_add(root, k->name, v);
	}
	fprintf(f, "%s\n", json_object_to_json_string_ext(root,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

void
cfg_free(struct cfg *c)
{
	size_t	i;

	for (i = 0; i < NKEYS; i++) {
		char *base = (char *)c + cfg_keys[i].off;
		switch (cfg_keys[i].type) {
		case CT_STR:
		case CT_ENUM:
		case CT_URL:
			free(*(char **)base);
			break;
		case CT_STRLIST:
			strlist_free(*(char ***)base);
			break;
		case CT_ALIASES:
			aliases_free(*(struct cfg_alias **)base);
			break;
		default:
			break;
		}
	}
	free(c->path);
	memset(c, 0, sizeof(*c));
}

const char *
cfg_alias(const struct cfg *c, const char *model)
{
	const struct cfg_alias	*a = c->model_aliases, *best = NULL;
	size_t			 i;

	for (i = 0; a != NULL && a[i].from != NULL; i++) {
		if (a[i].prefix == 0) {
			if (strcmp(a[i].from, model) == 0)
				return a[i].to;
		} else if (strncmp(a[i].from, model, a[i].prefix) == 0 &&
		    (best == NULL || a[i].prefix > best->prefix))
			best = &a[i];
	}
	return best != NULL ? best->to : model;
}
