/* revoke.h - storing a revocation and answering for it, shared by the
 * holder's routes (route_revoke.c) and the admin's (route_admin.c). */
#ifndef REVOKD_REVOKE_H
#define REVOKD_REVOKE_H

#include <stdint.h>

#include "revokd/request.h"

/* Revokes jti in namespace iss ("" for the tokens without iss) until
 * exp + leeway, as long as a check could still accept the token, and
 * answers; nothing is stored when that time has passed. reason (may be
 * NULL) is kept as the record's value. A change is logged (store.h) as done
 * by req->by, which the route set. */
enum request_step revoke_jti(struct request *req, struct reply *rep, const char *iss, const char *jti,
                             int64_t exp, const char *reason);

/* Moves sub's revoke-all cutoff in namespace iss to now + leeway and
 * answers; a change is logged with reason (may be NULL) as done by
 * req->by. */
enum request_step revoke_all(struct request *req, struct reply *rep, const char *iss, const char *sub,
                             const char *reason);

#endif
