/* route_edge.c - an edge's revocation endpoints (REVOKD_MODE=edge): the
 * router sends each revocation route here, and the request goes as it came
 * (method, path, query, Content-Type, Authorization, body) to the central
 * service, which judges and stores it; its status, body, Retry-After and
 * WWW-Authenticate are relayed. The edge keeps no admin keys or clients of
 * central's: central decides who may revoke.
 *
 * The request waits like any store call: the edge's store carries it
 * (STORE_FORWARD) and answers a success only once the edge has read the
 * revocation back from central's feed, so a check on this edge right after
 * the answer sees it revoked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/routes.h"

/* Whether a relayed 401 says a credential (an admin key, a client) was
 * wrong: counted against the caller's address here too, so that an edge
 * refuses a guesser (429) before central does, which would count every
 * failure forwarded through this edge against the edge's own address. */
static bool bad_credential(const struct store_forwarded *f)
{
    return f->status == 401 && f->error_code != NULL &&
           (strcmp(f->error_code, "unauthorized") == 0 || strcmp(f->error_code, "invalid_client") == 0);
}

static enum request_step relayed(struct request *req, struct reply *rep, const struct store_result *res)
{
    const struct store_forwarded *f = &res->forwarded;

    if (res->rc == -STORE_EOVERLOADED) {
        reply_store_failed(rep, res);
        return REQUEST_DONE;
    }
    if (res->rc < 0) {
        reply_log(rep, "central_error", res->error);
        reply_error(rep, 503, "central_unavailable",
                    "the central revocation service did not answer: nothing is known to have been revoked; retry "
                    "(revocation is idempotent)");
        return REQUEST_DONE;
    }
    if (bad_credential(f))
        route_admin_failed(req, rep);
    if (res->error != NULL)
        reply_log(rep, "edge_sync", res->error); /* accepted, not read back in time */
    char *body = f->len > 0 ? malloc(f->len + 1) : NULL;
    if (f->len > 0 && body == NULL) {
        reply_error(rep, 503, "central_unavailable", "out of memory for central's answer");
        return REQUEST_DONE;
    }
    if (body != NULL) {
        memcpy(body, f->body, f->len + 1);
        reply_text(rep, f->status, body, "application/json");
    } else {
        reply_empty(rep, f->status);
    }
    if (f->retry_after != NULL)
        reply_header(rep, "Retry-After", f->retry_after);
    if (f->www_authenticate != NULL)
        snprintf(rep->www_authenticate, sizeof(rep->www_authenticate), "%s", f->www_authenticate);
    return REQUEST_DONE;
}

enum request_step route_edge_forward(struct request *req, struct reply *rep)
{
    /* An address refused for failed credentials is refused here too; the
     * holder's own revocations take no credential but the token. */
    bool credentialed = strcmp(req->path, "/v1/revoke") != 0 && strcmp(req->path, "/v1/revoke-all") != 0;
    if (credentialed && route_admin_throttled(req, rep) < 0)
        return REQUEST_DONE;
    struct store_forward f = {
        .method = req->method,
        .path = req->path,
        .query = req->query,
        .content_type = req->content_type,
        .authorization = req->authorization,
        .request_id = req->request_id,
        .body = req->body,
        .body_len = req->body_len,
    };
    reply_log(rep, "forwarded", "central");
    return request_wait_store(req, &(struct store_call){.op = STORE_FORWARD, .forward = &f}, relayed);
}
