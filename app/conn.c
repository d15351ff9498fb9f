/*
 * conn.c: notice that a request's client or web server gave up (conn.h).
 *
 * The FastCGI connection: poll(2) with a zero timeout says whether
 * anything happened; recv(2) with MSG_PEEK tells EOF (0 bytes) from data,
 * and the data from FastCGI record headers, leaving it all queued.
 *
 * The client's TCP connection: an exact SOCK_DIAG_BY_FAMILY request
 * (linux/inet_diag.h, as ss(8) uses) for the web server's socket by its
 * four-tuple; unprivileged, one netlink round trip, no table scan.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "util.h"

#define FCGI_HEADER_LEN		8	/* FastCGI 1.0, section 3.3 */
#define FCGI_ABORT_REQUEST	2
#define TCP_STATE_CLOSE_WAIT	8	/* include/net/tcp_states.h */

int
conn_fd_gone(int fd)
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
	/* Closed with stdin's end still queued: gone too. */
	return (pfd.revents & POLLRDHUP) != 0;
}

static int
port_parse(const char *s, uint16_t *out)
{
	const char	*es;
	long long	 v;

	if (s == NULL)
		return -1;
	v = parse_int(s, 1, 65535, &es);
	if (es != NULL)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

void
conn_watch_init(struct conn_watch *w, int fd, const char *saddr,
    const char *sport, const char *raddr, const char *rport)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	if (saddr == NULL || raddr == NULL ||
	    port_parse(sport, &w->lport) != 0 ||
	    port_parse(rport, &w->rport) != 0)
		return;
	if (inet_pton(AF_INET, saddr, w->laddr) == 1 &&
	    inet_pton(AF_INET, raddr, w->raddr) == 1)
		w->family = AF_INET;
	else if (inet_pton(AF_INET6, saddr, w->laddr) == 1 &&
	    inet_pton(AF_INET6, raddr, w->raddr) == 1)
		w->family = AF_INET6;
}

/* The state of the web server's TCP socket for w, or -1 if not known. */
static int
tcp_state(const struct conn_watch *w)
{
	struct {
		struct nlmsghdr		nh;
		struct inet_diag_req_v2	req;
	} q;
	union {
		struct nlmsghdr	nh;
		char		buf[1024];
	} a;
	struct sockaddr_nl	 sa;
	struct inet_diag_msg	*m;
	struct timeval		 tv = { 0, 200 * 1000 };
	ssize_t			 n;
	int			 s, st = -1;

	if ((s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
	    NETLINK_SOCK_DIAG)) == -1)
		return -1;
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&q, 0, sizeof(q));
	q.nh.nlmsg_len = sizeof(q);
	q.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nh.nlmsg_flags = NLM_F_REQUEST;	/* exact lookup, no dump */
	q.req.sdiag_family = (unsigned char)w->family;
	q.req.sdiag_protocol = IPPROTO_TCP;
	q.req.idiag_states = ~0u;
	q.req.id.idiag_sport = htons(w->lport);
	q.req.id.idiag_dport = htons(w->rport);
	memcpy(q.req.id.idiag_src, w->laddr, w->family == AF_INET ? 4 : 16);
	memcpy(q.req.id.idiag_dst, w->raddr, w->family == AF_INET ? 4 : 16);
	q.req.id.idiag_cookie[0] = q.req.id.idiag_cookie[1] =
	    INET_DIAG_NOCOOKIE;
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	if (sendto(s, &q, sizeof(q), 0, (struct sockaddr *)&sa,
	    sizeof(sa)) != (ssize_t)sizeof(q))
		goto out;
	n = recv(s, &a, sizeof(a), 0);
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(*m)) ||
	    !NLMSG_OK(&a.nh, (size_t)n) ||
	    a.nh.nlmsg_type != SOCK_DIAG_BY_FAMILY)
		goto out;	/* NLMSG_ERROR: no such socket here */
	m = NLMSG_DATA(&a.nh);
	st = m->idiag_state;
out:
	close(s);
	return st;
}

int
conn_gone(const struct conn_watch *w)
{
	if (conn_fd_gone(w->fd))
		return 1;
	return w->family != 0 && tcp_state(w) == TCP_STATE_CLOSE_WAIT;
}
