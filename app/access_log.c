/*
 * access_log.c: the JSON-lines access log (access_log.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "access_log.h"
#include "cfg.h"
#include "log.h"
#include "req.h"
#include "route.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

int
access_log_open(struct server *srv)
{
	const char	*path = srv->cfg->access_log;
	int		 fd;

	if (path == NULL || *path == '\0')
		return 0;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1) {
		log_err("access_log %s: %s", path, strerror(errno));
		return -1;
	}
	if (srv->alog_fd <= 0) {
		srv->alog_fd = fd;
		return 0;
	}
	/* Same number, new file: a concurrent write goes to one or the other. */
	if (dup2(fd, srv->alog_fd) == -1) {
		log_err("access_log %s: dup2: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static json_object *
str_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? json_object_new_string(s) : NULL;
}

char *
access_log_line(const struct req *r, int64_t now, size_t *len)
{
	json_object	*o = json_object_new_object();
	struct tm	 tm;
	time_t		 secs = (time_t)(now / 1000);
	char		 ts[40], *line;
	const char	*s;
	size_t		 n;

	gmtime_r(&secs, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(now % 1000));
	json_object_object_add(o, "time", json_object_new_string(ts));
	json_object_object_add(o, "key", r->client != NULL ?
	    json_object_new_string(r->client->name) : NULL);
	json_object_object_add(o, "method", json_object_new_string(
	    r->method_name != NULL ? r->method_name : "-"));
	json_object_object_add(o, "route",
	    json_object_new_string(route_name(r->route)));
	json_object_object_add(o, "model", str_or_null(r->out.model));
	json_object_object_add(o, "account", str_or_null(r->out.account));
	json_object_object_add(o, "status", json_object_new_int(r->status));
	json_object_object_add(o, "upstream_status", r->out.attempts > 0 ?
	    json_object_new_int(r->out.upstream_status) : NULL);
	json_object_object_add(o, "latency_ms",
	    json_object_new_int64(mono_ms() - r->t0));
	json_object_object_add(o, "input_tokens",
	    json_object_new_int64(r->out.tokens_in));
	json_object_object_add(o, "output_tokens",
	    json_object_new_int64(r->out.tokens_out));
	json_object_object_add(o, "attempts",
	    json_object_new_int(r->out.attempts));
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	line = xmalloc(n + 2);
	memcpy(line, s, n);
	line[n++] = '\n';
	line[n] = '\0';
	json_object_put(o);
	*len = n;
	return line;
}

void
access_log_write(const struct req *r, int gen)
{
	struct server	*srv = r->srv;
	char		*line;
	size_t		 n;

	if (srv->alog_gen != gen) {
		srv->alog_gen = gen;
		access_log_open(srv);
	}
	if (srv->alog_fd <= 0)
		return;
	line = access_log_line(r, now_ms(), &n);
	/* One write(2): the whole line or nothing interleaved with others. */
	if (write(srv->alog_fd, line, n) != (ssize_t)n)
		log_debug("access_log: short write: %s", strerror(errno));
	free(line);
}
