/* route_authz.c - /v1/authz and any path below it, any method: forward-auth
 * for gateways (nginx auth_request, Caddy forward_auth, Traefik ForwardAuth,
 * Envoy ext_authz). The bearer token is judged as /v1/check judges it; the
 * answer is 200 with the identity in X-Auth-* headers for the gateway to
 * pass upstream, 401 or 403 with an RFC 6750 WWW-Authenticate, or 503 when
 * the answer is unknown, never any other status: nginx turns anything else
 * into a 500, and Envoy lets only a 200 through. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "revokd/check.h"
#include "revokd/metrics.h"
#include "revokd/routes.h"

/* Longest scope= or aud= a gateway may ask for. */
#define ASKED_MAX 256

/* The scope and audience the gateway's configured URL asks for: 0, or -1
 * after replying 403 when the URL is malformed (a configuration mistake is
 * denied, not let through, and not a 400 the gateway would turn into a
 * 500). */
static int asked(struct request *req, struct reply *rep, char *scope, char *aud)
{
    scope[0] = aud[0] = '\0';
    if (request_query(req, "scope", scope, ASKED_MAX + 1) < 0 || request_query(req, "aud", aud, ASKED_MAX + 1) < 0 ||
        strpbrk(scope, "\"\\") != NULL) {
        reply_error(rep, 403, "invalid_request",
                    "the gateway's authz URL is malformed: scope and aud are 1 to 256 bytes of text, "
                    "each given once (scope without quotes or backslashes)");
        return -1;
    }
    return 0;
}

/* Every space-separated scope in want is in the token's scope. */
static bool has_scopes(const struct jwt_claims *c, const char *want)
{
    for (const char *p = want; *p != '\0';) {
        size_t len = strcspn(p, " ");
        if (len > 0 && !jwt_scope_has(c, p, len))
            return false;
        p += len + (p[len] == ' ');
    }
    return true;
}

static void identity_headers(struct reply *rep, const struct jwt_claims *c)
{
    char exp[24];

    if (c->has_sub)
        reply_header(rep, "X-Auth-Subject", c->sub);
    reply_header(rep, "X-Auth-Token-Id", c->jti);
    if (c->has_iss)
        reply_header(rep, "X-Auth-Issuer", c->iss);
    snprintf(exp, sizeof(exp), "%" PRId64, c->exp);
    reply_header(rep, "X-Auth-Expires", exp);
    if (c->scope[0] != '\0')
        reply_header(rep, "X-Auth-Scope", c->scope);
    if (c->client_id[0] != '\0')
        reply_header(rep, "X-Auth-Client-Id", c->client_id);
}

static enum request_step checked(struct request *req, struct reply *rep, const struct store_result *res)
{
    const struct jwt_claims *c = &req->claims;
    int rc = check_result(rep, res, c);

    metrics_check(rc);
    if (rc == 0) {
        check_reply_active(rep, c);
        identity_headers(rep, c);
    }
    return REQUEST_DONE;
}

static enum request_step verified(struct request *req, struct reply *rep, int rc)
{
    const struct jwt_claims *c = &req->claims;
    char scope[ASKED_MAX + 1], aud[ASKED_MAX + 1];

    if (check_verified(rep, rc, c) < 0)
        return REQUEST_DONE;
    if (asked(req, rep, scope, aud) < 0) /* it passed before the token was read */
        return REQUEST_DONE;
    if (!has_scopes(c, scope) || (aud[0] != '\0' && !jwt_audience_has(c, aud))) {
        reply_error(rep, 403, "insufficient_scope",
                    "the token lacks a scope or audience this resource requires");
        snprintf(rep->www_authenticate, sizeof(rep->www_authenticate), "Bearer error=\"insufficient_scope\"%s%s%s",
                 scope[0] != '\0' ? ", scope=\"" : "", scope, scope[0] != '\0' ? "\"" : "");
        reply_log(rep, "reason", "insufficient_scope");
        return REQUEST_DONE;
    }
    return check_revoked(req, checked);
}

enum request_step route_authz(struct request *req, struct reply *rep)
{
    char scope[ASKED_MAX + 1], aud[ASKED_MAX + 1];
    const char *token;
    size_t len;

    if (asked(req, rep, scope, aud) < 0)
        return REQUEST_DONE;
    if (request_bearer(req, &token, &len) < 0) {
        metrics_check(-JWT_missing_token);
        reply_token_failure(rep, -JWT_missing_token, NULL);
        /* RFC 6750 3.1: no error code when the request had no credentials. */
        snprintf(rep->www_authenticate, sizeof(rep->www_authenticate), "Bearer");
        return REQUEST_DONE;
    }
    return check_verify(req, token, len, true, verified);
}
