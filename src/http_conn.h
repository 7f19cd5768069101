/* http_conn.h - the client connections as the HTTP front tracks them beside
 * libmicrohttpd, for what libmicrohttpd 0.9.75 does not bound. Private to
 * the HTTP front (http_server.c).
 *
 * - The time a request may take to arrive: libmicrohttpd's idle timeout
 *   restarts with every byte, so a client trickling a byte a second would
 *   hold a connection forever. A request is RECEIVING from its first byte
 *   (the first one from the connection's opening) until it is whole, then
 *   HANDLED until its answer is sent, then the connection is IDLE until the
 *   next request's first byte, which libmicrohttpd does not report: a sweep
 *   every SWEEP_MS sees it in the socket's count of bytes received
 *   (TCP_INFO), and shuts down a connection whose request is not whole
 *   REVOKD_REQUEST_TIMEOUT after its first byte.
 * - The connections, in all and of one client address, counted across every
 *   worker (addr_limit.h): a place is reserved when libmicrohttpd asks
 *   whether to accept, so that workers accepting at once cannot go past
 *   either limit, and the connection takes the reservation over.
 * - The close after an answer sent before the body was read, which
 *   lingers, as nginx's does: otherwise the unread bytes make the kernel
 *   reset the connection before the client reads the answer. */
#ifndef REVOKD_HTTP_CONN_H
#define REVOKD_HTTP_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

struct loop;

/* The limits, shared by every worker's connections. */
struct http_conn_limits {
    atomic_uint open;               /* connections, lingering ones included */
    unsigned max_open;              /* REVOKD_MAX_CONNECTIONS */
    struct addr_limit *per_address; /* REVOKD_MAX_CONNECTIONS_PER_ADDRESS */
};

/* A worker's connections, and its own. */
struct http_conns;
struct http_conn;

/* A worker's set on loop; request_timeout in seconds. NULL when out of
 * memory. */
struct http_conns *http_conn_set_new(struct loop *loop, struct http_conn_limits *limits, int request_timeout);
/* Ends the lingering closes and frees cs; every connection must be closed. */
void http_conn_set_free(struct http_conns *cs);

/* Asked before a connection from addr is accepted: reserves its place in
 * both counts, or refuses it (counted, and logged at most once a second). */
bool http_conn_admit(struct http_conns *cs, const struct sockaddr *addr, socklen_t len);
/* After a round of accepts: a reservation nobody took (the accept failed
 * after the admission) is given back. */
void http_conn_settle(struct http_conns *cs);

/* The connection accepted last, on socket fd, takes its reservation over.
 * NULL when out of memory (its place is given back at its close). */
struct http_conn *http_conn_open(struct http_conns *cs, int fd);
/* libmicrohttpd is about to close the connection (c may be NULL): it goes,
 * lingering when http_conn_linger() was called. */
void http_conn_close(struct http_conns *cs, struct http_conn *c);

/* The request's request line arrived; the request is whole; its exchange
 * is over. */
void http_conn_request_begins(struct http_conn *c);

/* The client's address. */
const struct sockaddr_storage *http_conn_peer(const struct http_conn *c);
void http_conn_request_whole(struct http_conn *c);
void http_conn_request_done(struct http_conn *c);

/* The answer goes out before the body was read: the close will linger. */
void http_conn_linger(struct http_conn *c);

#endif
