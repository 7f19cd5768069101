/* route_oauth.c - the OAuth endpoints: POST /oauth2/revoke (RFC 7009),
 * POST /oauth2/introspect (RFC 7662) and POST /global-token-revocation
 * (draft-parecki-oauth-global-token-revocation-06).
 *
 * Clients authenticate as RFC 6749 2.3.1 says: HTTP Basic with the id and
 * secret form-urlencoded before base64 (client_secret_basic), or client_id
 * and client_secret in the form (client_secret_post), never both; errors
 * have RFC 6749 5.2's form, {"error", "error_description"}. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "revokd/check.h"
#include "revokd/clients.h"
#include "revokd/keyring.h"
#include "revokd/metrics.h"
#include "revokd/revoke.h"
#include "revokd/routes.h"
#include "revokd/url.h"

/* Longest client secret read from a request. */
#define SECRET_MAX 1024

static void reply_invalid_client(struct reply *rep, const char *why)
{
    reply_error(rep, 401, "invalid_client", why);
    snprintf(rep->www_authenticate, sizeof(rep->www_authenticate), "Basic realm=\"revokd\"");
}

/* "Basic <base64(urlencode(id):urlencode(secret))>" into id and secret.
 * Returns 0, or -1 when it cannot be read. */
static int basic_credentials(const char *auth, char *id, char *secret)
{
    unsigned char raw[(SECRET_MAX + CLIENT_ID_MAX) * 3 + 8];
    const char *b64 = auth + 6;
    size_t len;

    b64 += strspn(b64, " ");
    len = strcspn(b64, " ");
    if (len == 0 || len % 4 != 0 || len / 4 * 3 >= sizeof(raw) || b64[len + strspn(b64 + len, " ")] != '\0')
        return -1;
    int n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return -1;
    n -= (b64[len - 1] == '=') + (b64[len - 2] == '='); /* EVP_DecodeBlock keeps the padding's zeros */
    const unsigned char *colon = memchr(raw, ':', (size_t)n);
    if (colon == NULL)
        return -1;
    size_t idlen = (size_t)(colon - raw), slen = (size_t)n - idlen - 1;
    return url_decode_form((const char *)raw, idlen, id, CLIENT_ID_MAX + 1) > 0 &&
                   url_decode_form((const char *)colon + 1, slen, secret, SECRET_MAX + 1) > 0
               ? 0
               : -1;
}

/* Who calls: an OAuth client (req->client, its id in req->param) or, when
 * admin_ok, an admin key (req->admin). Returns 0, or -1 after replying. The
 * form is read already. */
static int authenticate(struct request *req, struct reply *rep, bool admin_ok)
{
    const char *auth = req->authorization, *form_id = NULL, *form_secret = NULL;
    char id[CLIENT_ID_MAX + 1], secret[SECRET_MAX + 1];
    bool basic = auth != NULL && strncasecmp(auth, "Basic ", 6) == 0;
    int has_id = request_body_string(req, "client_id", CLIENT_ID_MAX, &form_id);
    int has_secret = request_body_string(req, "client_secret", SECRET_MAX, &form_secret);
    bool in_form = has_id != 0 || has_secret != 0;
    const char *key;
    size_t keylen;
    char name[ADMIN_NAME_MAX + 1];

    if (route_admin_throttled(req, rep) < 0)
        return -1;
    if (in_form && auth != NULL) {
        reply_error(rep, 400, "invalid_request", "authenticate with one method: HTTP Basic or the form, not both");
        return -1;
    }
    if (admin_ok && request_bearer(req, &key, &keylen) == 0) {
        if (keyring_admin_check(req->app->keys, key, keylen, name) != KEYRING_ADMIN_OK) {
            route_admin_failed(req, rep);
            reply_invalid_client(rep, "the admin key is not valid");
            return -1;
        }
        req->admin = true;
        reply_log(rep, "admin_key", name);
        snprintf(req->by, sizeof(req->by), "admin:%s", name);
        return 0;
    }
    if (basic ? basic_credentials(auth, id, secret) < 0 : form_id == NULL || form_secret == NULL) {
        reply_invalid_client(rep, "client authentication is required: HTTP Basic (client_secret_basic) "
                                  "or client_id and client_secret in the form (client_secret_post)");
        return -1;
    }
    if (!basic) {
        snprintf(id, sizeof(id), "%s", form_id);
        snprintf(secret, sizeof(secret), "%s", form_secret);
    }
    req->client = keyring_client_check(req->app->keys, id, secret, strlen(secret));
    OPENSSL_cleanse(secret, sizeof(secret));
    if (req->client < 0) {
        route_admin_failed(req, rep);
        reply_invalid_client(rep, "unknown client or wrong secret");
        return -1;
    }
    snprintf(req->param, sizeof(req->param), "%s", id);
    snprintf(req->by, sizeof(req->by), "client:%s", id);
    reply_log(rep, "client_id", id);
    return 0;
}

/* The form's token, or NULL after replying 400. */
static const char *form_token(struct request *req, struct reply *rep)
{
    const char *token = NULL;

    if (request_body_string(req, "token", (size_t)req->app->cfg->max_body_bytes, &token) != 1)
        reply_error(rep, 400, "invalid_request", "the form needs a token");
    return token;
}

/* ---- RFC 7009 ---- */

static enum request_step revoke_verified(struct request *req, struct reply *rep, int rc)
{
    const struct jwt_claims *c = &req->claims;

    if (rc == -JWT_ENOKEYS) {
        reply_token_failure(rep, rc, c);
        return REQUEST_DONE;
    }
    /* RFC 7009 2.2: an invalid token is answered 200, as there is nothing
     * the client could do about it. */
    if (rc < 0) {
        reply_begin(rep, 200);
        reply_log(rep, "reason", jwt_reason_name(rc));
        return REQUEST_DONE;
    }
    /* 2.1: the token must have been issued to the client revoking it. */
    if (!req->admin && !(req->client & CLIENT_REVOKE_ANY) && strcmp(c->client_id, req->param) != 0) {
        reply_error(rep, 400, "unauthorized_client", "the token was not issued to this client");
        return REQUEST_DONE;
    }
    return revoke_jti(req, rep, check_namespace(c), c->jti, c->exp, NULL);
}

/* A compact JWS has three segments of base64url; anything else (an opaque
 * token) is a kind revokd cannot revoke. */
static bool jws_shaped(const char *token)
{
    size_t len = strlen(token), dots = 0;

    for (size_t i = 0; i < len; i++)
        if (token[i] == '.')
            dots++;
        else if (!(token[i] == '-' || token[i] == '_' || (token[i] >= '0' && token[i] <= '9') ||
                   ((token[i] | 0x20) >= 'a' && (token[i] | 0x20) <= 'z')))
            return false;
    return dots == 2;
}

enum request_step route_oauth_revoke(struct request *req, struct reply *rep)
{
    const char *token;

    if (request_form(req, rep) < 0 || authenticate(req, rep, false) < 0 || (token = form_token(req, rep)) == NULL)
        return REQUEST_DONE;
    /* token_type_hint is not needed: access and refresh tokens in JWT form
     * are revoked alike (RFC 7009 2.1 lets the server ignore it). */
    if (!jws_shaped(token)) {
        reply_error(rep, 400, "unsupported_token_type", "only JWTs (compact JWS) can be revoked here");
        return REQUEST_DONE;
    }
    /* An expired token verifies here and is answered without storing. */
    return check_verify(req, token, strlen(token), false, revoke_verified);
}

/* ---- RFC 7662 ---- */

static void reply_inactive(struct reply *rep)
{
    reply_begin(rep, 200);
    reply_bool(rep, "active", false);
}

static enum request_step introspected(struct request *req, struct reply *rep, const struct store_result *res)
{
    const struct jwt_claims *c = &req->claims;

    if (res->rc < 0) {
        metrics_check(-CHECK_ESTORE);
        reply_store_failed(rep, res);
        return REQUEST_DONE;
    }
    metrics_check(res->revoked ? -JWT_revoked : 0);
    if (res->revoked) {
        reply_inactive(rep);
        return REQUEST_DONE;
    }
    reply_begin(rep, 200);
    reply_bool(rep, "active", true);
    if (c->scope[0] != '\0')
        reply_string(rep, "scope", c->scope);
    if (c->client_id[0] != '\0')
        reply_string(rep, "client_id", c->client_id);
    reply_string(rep, "token_type", "Bearer");
    reply_int(rep, "exp", c->exp);
    reply_int(rep, "iat", c->iat);
    if (c->has_nbf)
        reply_int(rep, "nbf", c->nbf);
    if (c->has_sub)
        reply_string(rep, "sub", c->sub);
    if (c->aud[0] != '\0')
        reply_words(rep, "aud", c->aud, '\n');
    if (c->has_iss)
        reply_string(rep, "iss", c->iss);
    reply_string(rep, "jti", c->jti);
    return REQUEST_DONE;
}

static enum request_step introspect_verified(struct request *req, struct reply *rep, int rc)
{
    if (rc == -JWT_ENOKEYS) {
        reply_token_failure(rep, rc, &req->claims);
        return REQUEST_DONE;
    }
    /* RFC 7662 2.2: nothing but "active": false for a token that is not. */
    if (rc < 0) {
        metrics_check(rc);
        reply_log(rep, "reason", jwt_reason_name(rc));
        reply_inactive(rep);
        return REQUEST_DONE;
    }
    return check_revoked(req, introspected);
}

enum request_step route_oauth_introspect(struct request *req, struct reply *rep)
{
    const char *token;

    if (request_form(req, rep) < 0 || authenticate(req, rep, true) < 0 || (token = form_token(req, rep)) == NULL)
        return REQUEST_DONE;
    return check_verify(req, token, strlen(token), true, introspect_verified);
}

/* ---- global token revocation ---- */

enum request_step route_oauth_global_revocation(struct request *req, struct reply *rep)
{
    const char *format = NULL, *iss = NULL, *sub = NULL;

    if (request_body(req, rep, false) < 0 || authenticate(req, rep, true) < 0)
        return REQUEST_DONE;
    if (!req->admin && !(req->client & CLIENT_GLOBAL_REVOCATION)) {
        reply_error(rep, 403, "insufficient_permission", "this client may not revoke a subject's tokens");
        return REQUEST_DONE;
    }
    /* sub_id is an RFC 9493 subject identifier: iss_sub, or opaque (an id
     * of the default issuer, REVOKD_ISSUER). */
    if (request_body_member_string(req, "sub_id", "format", &format) != 1 ||
        (strcmp(format, "iss_sub") == 0
             ? request_body_member_string(req, "sub_id", "iss", &iss) != 1 ||
                   request_body_member_string(req, "sub_id", "sub", &sub) != 1
             : strcmp(format, "opaque") != 0 || request_body_member_string(req, "sub_id", "id", &sub) != 1)) {
        reply_error(rep, 400, "invalid_request",
                    "sub_id must be {\"format\": \"iss_sub\", \"iss\", \"sub\"} or {\"format\": \"opaque\", \"id\"}, "
                    "each 1 to 256 bytes of text");
        return REQUEST_DONE;
    }
    if (iss == NULL && req->app->cfg->issuer[0] == '\0') {
        reply_error(rep, 400, "invalid_request", "an opaque subject needs REVOKD_ISSUER; give iss_sub instead");
        return REQUEST_DONE;
    }
    req->no_content = true; /* 204, as the draft says */
    return revoke_all(req, rep, iss != NULL ? iss : req->app->cfg->issuer, sub, NULL);
}
