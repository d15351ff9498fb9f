/*
 * test_conn.c: conn_gone, on real sockets.
 *
 * The FastCGI half over a socketpair: nothing queued, the end-of-stdin
 * record, FCGI_ABORT_REQUEST behind it, a closed peer.  The TCP half over
 * a loopback connection: the accepting side (the "web server") is looked
 * up by its four-tuple and seen in CLOSE_WAIT once the client closes.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "tap.h"

/* A FastCGI record header (FastCGI 1.0, section 3.3), no content. */
static void
record(int fd, unsigned char type)
{
	unsigned char h[8] = { 1, type, 0, 1, 0, 0, 0, 0 };

	if (write(fd, h, sizeof(h)) != (ssize_t)sizeof(h))
		bail("write: record");
}

static void
test_fcgi(void)
{
	int	sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		bail("socketpair");
	is_int(0, conn_fd_gone(-1), "no fd: not gone");
	is_int(0, conn_fd_gone(sv[0]), "nothing queued: not gone");
	record(sv[1], 5);	/* FCGI_STDIN, empty: the body's end */
	is_int(0, conn_fd_gone(sv[0]), "end-of-stdin queued: not gone");
	is_int(0, conn_fd_gone(sv[0]), "looking consumes nothing (again 0)");
	record(sv[1], 2);	/* FCGI_ABORT_REQUEST */
	is_int(1, conn_fd_gone(sv[0]), "FCGI_ABORT_REQUEST behind it: gone");
	close(sv[0]);
	close(sv[1]);

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		bail("socketpair");
	close(sv[1]);
	is_int(1, conn_fd_gone(sv[0]), "web server closed: gone");
	close(sv[0]);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		bail("socketpair");
	record(sv[1], 5);
	close(sv[1]);
	is_int(1, conn_fd_gone(sv[0]), "closed with stdin's end queued: gone");
	close(sv[0]);
}

static void
test_tcp(void)
{
	struct sockaddr_in	 a, s, c;
	struct conn_watch	 w;
	socklen_t		 len = sizeof(a);
	char			 sport[8], cport[8];
	int			 lfd, cfd, afd, nl;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd == -1 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    listen(lfd, 1) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&a, &len) == -1)
		bail("listen");
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (cfd == -1 || connect(cfd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    (afd = accept(lfd, NULL, NULL)) == -1)
		bail("connect");
	len = sizeof(s);
	getsockname(afd, (struct sockaddr *)&s, &len);
	len = sizeof(c);
	getpeername(afd, (struct sockaddr *)&c, &len);
	snprintf(sport, sizeof(sport), "%u", ntohs(s.sin_port));
	snprintf(cport, sizeof(cport), "%u", ntohs(c.sin_port));

	conn_watch_init(&w, -1, "127.0.0.1", sport, "127.0.0.1", cport);
	ok(w.family == AF_INET, "four-tuple parsed");
	is_int(0, conn_gone(&w), "client connected: not gone");
	close(cfd);
	usleep(50 * 1000);
	if ((nl = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG)) == -1)
		diag("no sock_diag netlink here (%s): the CLOSE_WAIT check "
		    "cannot work; skipped", strerror(errno));
	else {
		close(nl);
		is_int(1, conn_gone(&w), "client closed (server side in "
		    "CLOSE_WAIT): gone");
	}
	conn_watch_init(&w, -1, "127.0.0.1", sport, "127.0.0.1", "1");
	is_int(0, conn_gone(&w), "no such connection here: not known, not "
	    "gone");
	conn_watch_init(&w, -1, NULL, sport, "127.0.0.1", "x");
	ok(w.family == 0, "missing or bad parameters: no TCP check");
	conn_watch_init(&w, -1, "::1", "80", "not-an-address", "1234");
	ok(w.family == 0, "unparsable address: no TCP check");
	close(afd);
	close(lfd);
}

int
main(void)
{
	plan_lazy();
	test_fcgi();
	test_tcp();
	return 0;
}
