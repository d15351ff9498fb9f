/*
 * conn.h: has the client, or the web server, given up on a request?
 *
 * A worker waiting on an upstream writes nothing to the client, so a
 * failed write cannot tell it the client left.  Two other signs can:
 *
 * - The FastCGI connection.  nginx (and lighttpd once it sees a TCP
 *   reset) closes it when its client goes away; a server that keeps the
 *   connection may send FCGI_ABORT_REQUEST (FastCGI 1.0, section 5.4).
 *   Both show on the socket without reading anything libfcgi would miss.
 * - The client's own TCP connection, when the web server runs on this
 *   host.  A client that closes sends a FIN; lighttpd then cannot tell a
 *   close from a half-close and keeps the request (connections.c: "does
 *   not distinguish between client shutdown(fd, SHUT_WR) and client
 *   close(fd)") until it next writes, which for a request waiting on a
 *   hung upstream is never.  The kernel knows: the web server's socket
 *   for REMOTE_ADDR:REMOTE_PORT -> SERVER_ADDR:SERVER_PORT is in
 *   CLOSE_WAIT.  One exact sock_diag (netlink) lookup asks it.  HTTP
 *   clients do not half-close, so CLOSE_WAIT means gone.  A socket not
 *   found (remote web server, proxy) proves nothing and is ignored.
 */
#ifndef QR_CONN_H
#define QR_CONN_H

#include <stdint.h>

struct conn_watch {
	int		fd;		/* the FastCGI connection, or -1 */
	int		family;		/* AF_INET / AF_INET6, 0: no TCP check */
	unsigned char	laddr[16];	/* the web server's side */
	unsigned char	raddr[16];	/* the client's side */
	uint16_t	lport, rport;	/* host order */
};

/*
 * Fill w for fd and the FastCGI parameters SERVER_ADDR, SERVER_PORT,
 * REMOTE_ADDR, REMOTE_PORT (any may be NULL: that check is skipped).
 */
void	conn_watch_init(struct conn_watch *w, int fd, const char *server_addr,
	    const char *server_port, const char *remote_addr,
	    const char *remote_port);

/*
 * Look, without blocking and without consuming anything.  Returns 1 when
 * the FastCGI peer closed the connection (EOF, hang-up, reset) or sent
 * FCGI_ABORT_REQUEST, or when the client's TCP connection on this host is
 * in CLOSE_WAIT; else 0 (also when nothing can be known).
 */
int	conn_gone(const struct conn_watch *w);

/* The FastCGI half alone: conn_gone for a watch with only fd set. */
int	conn_fd_gone(int fd);

#endif
