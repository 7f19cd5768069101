/* auth_limit.h - failed authentication, limited per client address.
 *
 * Each address has a bucket of `burst` attempts that refills at
 * `per_minute`; a failed admin key or client secret takes one. While an
 * address's bucket is empty its calls that authenticate are answered 429
 * with Retry-After, without looking at the credentials, so guessing keys
 * costs a burst and then a few tries a minute. Other addresses are never
 * slowed, and an address that never fails is never limited. The table is
 * fixed in size (memory stays bounded under a flood of addresses): when it
 * is full, the address closest to a full bucket gives up its place. */
#ifndef REVOKD_AUTH_LIMIT_H
#define REVOKD_AUTH_LIMIT_H

#include <stdint.h>
#include <sys/socket.h>

struct auth_limit;

/* NULL when out of memory. */
struct auth_limit *auth_limit_new(int burst, int per_minute);
void auth_limit_free(struct auth_limit *l);

/* 0 when addr may authenticate at now_ms, else the seconds until it may. */
int auth_limit_check(struct auth_limit *l, const struct sockaddr *addr, int64_t now_ms);

/* One failed authentication from addr at now_ms. */
void auth_limit_failed(struct auth_limit *l, const struct sockaddr *addr, int64_t now_ms);

#endif
