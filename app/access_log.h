/*
 * access_log.h: one JSON object per line per request, to the file named by
 * the access_log config key (off when unset).
 *
 * Fields: time (UTC, ms), key (the key's name or null), method, route (the
 * route pattern, not the raw path), model, account, status,
 * upstream_status, latency_ms, input_tokens, output_tokens, attempts.
 * Never a key, a token or anything of a prompt.
 *
 * Each line goes out in ONE write(2) on an O_APPEND descriptor, so lines
 * from any number of processes and threads never interleave.  A reopen
 * (SIGHUP, after logrotate moved the file) replaces the descriptor in
 * place with dup2(), so a thread writing at that moment writes whole
 * lines to the old file or the new one, never to a closed descriptor.
 */
#ifndef QR_ACCESS_LOG_H
#define QR_ACCESS_LOG_H

struct server;
struct req;

/*
 * Open (or reopen) srv->cfg->access_log into srv->alog_fd.  0, or -1 with
 * the reason logged (the old descriptor, if any, stays in use).
 */
int	access_log_open(struct server *);

/*
 * Write r's line.  gen is the SIGHUP count the caller has seen; when it
 * differs from the one the log was opened at, the file is reopened first.
 */
void	access_log_write(const struct req *, int gen);

/* The line for r, NUL-terminated with its "\n" (caller frees); for tests. */
char	*access_log_line(const struct req *, int64_t now_ms, size_t *len);

#endif
