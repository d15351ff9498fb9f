/*
 * conn.c: notice that the web server dropped a request (see conn.h).
 *
 * poll(2) with a zero timeout says whether anything happened on the
 * socket; recv(2) with MSG_PEEK tells EOF (0 bytes) from data, and the
 * data from FastCGI record headers, leaving it all queued for libfcgi.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stddef.h>

#include "conn.h"

#define FCGI_HEADER_LEN		8	/* FastCGI 1.0, section 3.3 */
#define FCGI_ABORT_REQUEST	2

int
conn_gone(int fd)
{
	struct pollfd	 pfd;
	unsigned char	 buf[512];
	ssize_t		 n;
	size_t		 off, len;

	if (fd < 0)
		return 0;
	pfd.fd = fd;
	pfd.events = POLLIN | POLLRDHUP;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) <= 0)
		return 0;
	if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))
		return 1;
	n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		return 1;		/* orderly shutdown: EOF */
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR ? 0 : 1;
	/*
	 * Data: the end-of-stdin record, or an abort.  Walk the records in
	 * what is queued; a partial one at the end tells nothing yet.
	 */
	for (off = 0; off + FCGI_HEADER_LEN <= (size_t)n; off += len) {
		if (buf[off + 1] == FCGI_ABORT_REQUEST)
			return 1;
		len = FCGI_HEADER_LEN + ((size_t)buf[off + 4] << 8 |
		    buf[off + 5]) + buf[off + 6];
	}
	/* Half-closed with stdin's end still queued: gone too. */
	return (pfd.revents & POLLRDHUP) != 0;
}
