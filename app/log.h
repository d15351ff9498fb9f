/*
 * log.h: one logger for the whole program.
 *
 * Lines go to stderr (the web server's error log) or to log_file.  Bytes
 * that are not printable are replaced by '?', so nothing a client sends can
 * forge a log line.  Never pass a token, key or verifier to these.
 */
#ifndef QR_LOG_H
#define QR_LOG_H

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG
};

/* Returns 0, or -1 if the level name is unknown or the file can't be opened. */
int	log_open(const char *level, const char *file);
void	log_close(void);
int	log_level_parse(const char *, enum log_level *);

void	log_err(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
