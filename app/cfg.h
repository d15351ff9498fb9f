/*
 * cfg.h: the configuration, loaded once at start from a typed key table.
 *
 * Sources, later wins: built-in defaults, the JSON file, then
 * QWENRELAY_<KEY> environment variables.  The file is $QWENRELAY_CONFIG,
 * else qwenrelay.json beside the executable (shared hosting: the binary
 * copied as qwenrelay.fcgi with its config next to it), else
 * /etc/qwenrelay/qwenrelay.json; a missing file means defaults.  An unknown
 * key or a bad value is an error that names the key.  The struct is read
 * only after cfg_load returns.
 */
#ifndef QR_CFG_H
#define QR_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CFG_DEFAULT_PATH	"/etc/qwenrelay/qwenrelay.json"
#define CFG_BESIDE_NAME		"qwenrelay.json"

/* account_selection_strategy, resolved once at load. */
enum select_strategy {
	STRAT_STICKY,
	STRAT_ROUND_ROBIN,
	STRAT_LEAST_USED,
	STRAT_HYBRID
};

/*
 * model_aliases, resolved at load: "from" is an exact client-facing name,
 * or a prefix pattern when it ends in '*' (then prefix is its length
 * without the '*').
 */
struct cfg_alias {
	char	*from;
	char	*to;
	size_t	 prefix;	/* 0: exact */
};

struct cfg {
	/* process and server */
	char		*state_dir;
	char		*listen;
	long long	 workers;
	long long	 max_requests;
	long long	 threads;	/* request slots per worker process */
	char		*pm;		/* serve: "static" | "dynamic" */
	long long	 pm_min_spare_workers;	/* dynamic: idle workers kept */
	long long	 pm_max_spare_workers;	/* dynamic: idle beyond: stop */
	long long	 shutdown_grace_seconds;	/* drain on SIGTERM */
	char		*user;		/* serve started as root drops to it */
	char		*listen_group;	/* group of serve's unix socket */
	bool		 run_as_root;	/* serve as root without "user" */
	char		*log_level;
	char		*log_file;
	bool		 request_log;
	char		*access_log;	/* JSON-lines access log path, "" = off */
	bool		 auth_disabled;
	char		**cors_allowed_origins;	/* NULL-terminated */
	long long	 max_body_bytes;
	bool		 metrics_public;
	long long	 store_map_size_mb;
	/* accounts */
	long long	 max_accounts;
	char		*qwen_oauth_base_url;
	char		*qwen_default_resource_url;
	bool		 allow_insecure_upstream;
	struct cfg_alias *model_aliases;	/* ends with from == NULL */
	/* rotation */
	char		*account_selection_strategy;
	enum select_strategy strategy;		/* the same, as an enum */
	long long	 hybrid_rotate_requests;
	bool		 switch_on_first_rate_limit;
	long long	 retry_same_account_threshold_seconds;
	long long	 max_rate_limit_wait_seconds;
	long long	 exponential_backoff_base_ms;
	long long	 exponential_backoff_max_ms;
	long long	 quota_cooldown_seconds;
	long long	 upstream_retries;
	/* refresh */
	bool		 proactive_token_refresh;
	long long	 proactive_refresh_buffer_seconds;
	long long	 proactive_refresh_check_interval_seconds;
	long long	 token_refresh_retry_attempts;
	long long	 token_refresh_retry_delay_ms;
	/* upstream */
	long long	 upstream_connect_timeout_ms;
	long long	 upstream_idle_timeout_seconds;
	long long	 upstream_total_timeout_seconds;
	long long	 sse_keepalive_seconds;
	/* clients */
	long long	 client_rate_limit_rpm;
	long long	 responses_ttl_seconds;	/* previous_response_id; 0: none */

	char		*path;		/* file it was loaded from, or NULL */
};

/*
 * Fill c from defaults, the file and the environment.  Returns 0, or -1
 * with "key: reason" in err.  On error c holds whatever was set so far and
 * must still be released with cfg_free().
 */
int	 cfg_load(struct cfg *c, const char *path, char *err, size_t errlen);
/*
 * The config file cfg_load reads when given no path: $QWENRELAY_CONFIG,
 * else CFG_BESIDE_NAME in the directory of /proc/self/exe when that file
 * exists, else CFG_DEFAULT_PATH.  Writes into buf, returns buf.
 */
const char *cfg_default_path(char *buf, size_t bufsz);
/*
 * Append to err (a store_open message for error rc, a negative errno)
 * what to do about an unusable state_dir: for -EACCES, -EPERM and
 * -EROFS, "; set state_dir in FILE to a directory user U (uid N) can
 * write".  Other errors are left as they are.
 */
void	 cfg_state_hint(const struct cfg *, int rc, char *err, size_t errlen);
/* Print the effective configuration as JSON, secrets masked. */
void	 cfg_print(const struct cfg *, FILE *);
void	 cfg_free(struct cfg *);
/*
 * The model a client's name maps to: an exact alias first, else the
 * longest matching prefix pattern ("claude-*"), else the name itself.
 * Returns a pointer into the config or model itself; never NULL for a
 * non-NULL model.
 */
const char *cfg_alias(const struct cfg *, const char *model);

#endif
