/* routes.h - the handlers the route table (router.c) names, one group per
 * route_*.c file. Each answers at once or waits (request.h). */
#ifndef REVOKD_ROUTES_H
#define REVOKD_ROUTES_H

#include "revokd/request.h"

/* route_check.c: GET and POST /v1/check. */
enum request_step route_check_get(struct request *req, struct reply *rep);
enum request_step route_check_post(struct request *req, struct reply *rep);

/* route_revoke.c: the holder's POST /v1/revoke and /v1/revoke-all. */
enum request_step route_revoke(struct request *req, struct reply *rep);
enum request_step route_revoke_all(struct request *req, struct reply *rep);

/* route_admin.c: POST /v1/admin/revoke, /v1/admin/subjects/{sub}/revoke-all
 * and /v1/admin/reload. */
enum request_step route_admin_revoke(struct request *req, struct reply *rep);
enum request_step route_admin_revoke_all(struct request *req, struct reply *rep);
enum request_step route_admin_reload(struct request *req, struct reply *rep);

/* For every call that authenticates (admin keys, OAuth clients): -1 after
 * answering 429 with Retry-After when the caller's address has failed too
 * often lately (auth_limit.h), else 0; and the count of a failure. */
int route_admin_throttled(struct request *req, struct reply *rep);
void route_admin_failed(struct request *req, struct reply *rep);

/* route_oauth.c: RFC 7009 revocation, RFC 7662 introspection, and global
 * token revocation (draft-parecki-oauth-global-token-revocation). */
enum request_step route_oauth_revoke(struct request *req, struct reply *rep);
enum request_step route_oauth_introspect(struct request *req, struct reply *rep);
enum request_step route_oauth_global_revocation(struct request *req, struct reply *rep);

/* route_events.c: GET /v1/events, the revocation log in pages, for pollers. */
enum request_step route_events(struct request *req, struct reply *rep);

/* route_authz.c: /v1/authz and below, any method: forward-auth for gateways. */
enum request_step route_authz(struct request *req, struct reply *rep);

/* route_edge.c: on an edge (REVOKD_MODE=edge), each revocation route:
 * forwarded to the central service, whose answer is relayed. */
enum request_step route_edge_forward(struct request *req, struct reply *rep);

/* route_health.c: GET /healthz and /readyz. */
enum request_step route_health_live(struct request *req, struct reply *rep);
enum request_step route_health_ready(struct request *req, struct reply *rep);

/* route_metrics.c: GET /metrics. */
enum request_step route_metrics(struct request *req, struct reply *rep);

#endif
