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

/* Would one more connection from addr stay within the limit? */
bool addr_limit_admits(struct addr_limit *l, const struct sockaddr *addr);

/* The connections counted for addr. */
unsigned addr_limit_count(struct addr_limit *l, const struct sockaddr *addr);

/* Counts a connection from addr in, or out again. Counting in beyond the
 * limit is possible (two workers admitting at once): the limit then holds
 * for the next ones. Returns -1 when the table is full, else 0. */
int addr_limit_add(struct addr_limit *l, const struct sockaddr *addr);
void addr_limit_remove(struct addr_limit *l, const struct sockaddr *addr);

#endif
