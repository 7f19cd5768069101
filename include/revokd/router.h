/* router.h - the route table, the one list of revokd's endpoints.
 *
 * router_dispatch() picks a request's handler by method and path; a test
 * holds the table against openapi.yaml (revokd --routes). */
#ifndef REVOKD_ROUTER_H
#define REVOKD_ROUTER_H

#include <stddef.h>
#include <stdio.h>

#include "revokd/request.h"

/* Routes req: 404 for an unknown path or one req->listener does not serve
 * (the admin routes and /metrics are on REVOKD_ADMIN_LISTEN when it is
 * set, and only there), 405 with Allow for a known path and
 * another method, 415 for a body that is not JSON, else the route's handler,
 * whose step it returns. req->reply must be clear. */
enum request_step router_dispatch(struct request *req, struct reply *rep);

/* Prints "METHOD /path" per route, the table's order. */
void router_print_routes(FILE *out);

/* The route table's size, and route i as "METHOD /path" (metrics labels). */
size_t router_route_count(void);
const char *router_route_label(size_t i);

#endif
