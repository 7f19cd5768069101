/* reply.h - the shapes of revokd's answers, built in one place so every
 * error body is {"error", "error_description"} and every token failure
 * carries the same fields and WWW-Authenticate header. */
#ifndef REVOKD_REPLY_H
#define REVOKD_REPLY_H

#include <stddef.h>

#include "revokd/jwt.h"
#include "revokd/router.h"

/* Why a lookup or an admin revocation that names no issuer is refused when
 * REVOKD_ISSUER is unset: it would reach only the tokens without iss, which
 * most providers never issue, and report success for a revocation that
 * revokes nothing. */
#define ISSUER_REQUIRED                                                                          \
    "iss is required since REVOKD_ISSUER is not set: give the token's issuer (empty or null "      \
    "for tokens without iss)"

/* Sets status and body (takes ownership of body). */
void reply_json(struct reply *rep, int status, cJSON *body);

/* {"error": code, "error_description": description}. */
void reply_error(struct reply *rep, int status, const char *code, const char *description);

/* 401 {"active": false, "reason", "error": "invalid_token", "error_description"}
 * with WWW-Authenticate; jti and sub are added for reason revoked (c may be
 * NULL). reason is a negative or positive JWT_* value. */
void reply_token_failure(struct reply *rep, int reason, const struct jwt_claims *c);

/* 503 for a store error code (-STORE_*). */
void reply_store_error(struct reply *rep, int code);

/* The same for a store call that failed (res->rc < 0), its error logged. */
void reply_store_failed(struct reply *rep, const struct store_result *res);

/* Adds a string field to the request's log line. */
void reply_log(struct reply *rep, const char *name, const char *value);

/* Parses the body as a JSON object. Returns it, owned by the request
 * (req->json, freed with it, so strings in it may be kept while the request
 * waits), or NULL after replying 400. An empty body gives NULL without a
 * reply when allow_empty is set. */
cJSON *reply_parse_body(struct request *req, struct reply *rep, int allow_empty);

/* The token of "Authorization: Bearer <token>" (scheme case-insensitive).
 * Returns 0 with *token and *len set, or -1 when absent or another scheme. */
int request_bearer(const struct request *req, const char **token, size_t *len);

/* A string member of obj: 1 when present and a string of 1..max bytes (*out
 * set), 0 when absent, -1 when present but not such a string. */
int json_string(const cJSON *obj, const char *name, size_t max, const char **out);

/* json_string() for an identifier (jti, sub, iss): 1..JWT_STR_MAX bytes of
 * text without control characters (utf8.h). */
int json_id(const cJSON *obj, const char *name, const char **out);

/* Adds an integer member, printed exactly: cJSON would format it as a
 * double (sprintf, then sscanf to check), the costliest part of a check's
 * reply. */
void json_add_int(cJSON *obj, const char *name, int64_t value);

#endif
