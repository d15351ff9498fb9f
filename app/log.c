/*
 * log.c: timestamped, sanitised log lines.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level	 log_lvl = LOG_LVL_INFO;
static int		 log_fd = STDERR_FILENO;

static const char *const log_names[] = { "error", "warn", "info", "debug" };

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t	i;

	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (strcasecmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

int
log_open(const char *level, const char *file)
{
	int	fd;

	if (level != NULL && log_level_parse(level, &log_lvl) == -1)
		return -1;
	if (file == NULL || *file == '\0' || strcmp(file, "stderr") == 0)
		return 0;
	fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (log_fd != STDERR_FILENO) {
		/*
		 * Reopen in place: other threads may be writing to log_fd
		 * right now, and dup2 swaps the file under the same number
		 * atomically (SIGHUP after a log rotation).
		 */
		dup2(fd, log_fd);
		close(fd);
		return 0;
	}
	log_fd = fd;
	return 0;
}

void
log_close(void)
{
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
}

static void
log_emit(enum log_level lvl, const char *fmt, va_list ap)
{
	char		 line[2048];
	struct tm	 tm;
	time_t		 now;
	size_t		 n, i;
	int		 r, saved = errno;

	if (lvl > log_lvl)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
	r = snprintf(line + n, sizeof(line) - n, "qwenrelay[%ld] %s: ",
	    (long)getpid(), log_names[lvl]);
	if (r > 0)
		n += (size_t)r;
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r :
		    sizeof(line) - n - 2;
	/* Whatever came from outside: printable ASCII only. */
	for (i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
			line[i] = '?';
	line[n++] = '\n';
	(void)!write(log_fd, line, n);
	errno = saved;
}

#define LOG_FN(name, lvl)					\
void								\
name(const char *fmt, ...)					\
{								\
	va_list ap;						\
								\
	va_start(ap, fmt);					\
	log_emit(lvl, fmt, ap);					\
	va_end(ap);						\
}

LOG_FN(log_err, LOG_LVL_ERROR)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug, LOG_LVL_DEBUG)
