/*
 * conn.h: has the web server given up on a request?
 *
 * A worker waiting on an upstream writes nothing to the client, so a
 * failed write cannot tell it the client left.  The web server can:
 * lighttpd and nginx close the FastCGI connection when their client goes
 * away, and a server that keeps the connection may send
 * FCGI_ABORT_REQUEST (FastCGI 1.0, section 5.4).  Both are visible on the
 * connection's socket without reading anything a later read would miss.
 */
#ifndef QR_CONN_H
#define QR_CONN_H

/*
 * Look at fd, the request's FastCGI connection, without blocking and
 * without consuming anything.  Returns 1 when the peer closed it (EOF,
 * hang-up, reset) or sent FCGI_ABORT_REQUEST in what is queued, else 0
 * (including when fd is negative or nothing can be known).
 */
int	conn_gone(int fd);

#endif
