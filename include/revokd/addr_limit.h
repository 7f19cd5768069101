/* addr_limit.h - connections per client address, counted across every
 * worker.
 *
 * The kernel spreads connections over the workers' listening sockets, so a
 * per-worker count (libmicrohttpd's own per-IP limit) would let one address
 * hold a worker's whole share. One table, behind one lock taken only when a
 * connection opens or closes, keeps the true count. */
#ifndef REVOKD_ADDR_LIMIT_H
#define REVOKD_ADDR_LIMIT_H

#include <stdbool.h>
#include <sys/socket.h>

struct addr_limit;

/* A table for at most capacity open connections, each address allowed max
 * of them. NULL when out of memory. */
struct addr_limit *addr_limit_new(unsigned capacity, unsigned max);
void addr_limit_free(struct addr_limit *l);

/* Counts one more connection from addr, unless addr already has max (or
 * the table is full, which cannot happen while connections stay within the
 * capacity). Returns whether it was counted. */
bool addr_limit_take(struct addr_limit *l, const struct sockaddr *addr);

/* Counts a connection from addr out again. */
void addr_limit_release(struct addr_limit *l, const struct sockaddr *addr);

/* The connections counted for addr. */
unsigned addr_limit_count(struct addr_limit *l, const struct sockaddr *addr);

#endif
