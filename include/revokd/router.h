/* router.h - requests and replies as handlers see them, and the route table.
 *
 * Handlers never see libmicrohttpd: http_server.c turns a connection into a
 * struct request, router_dispatch() picks the handler from the one route
 * table, and the handler fills a struct reply that http_server.c sends. */
#ifndef REVOKD_ROUTER_H
#define REVOKD_ROUTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "revokd/app.h"
#include "revokd/work.h"

struct reply;

/* Longest decoded path parameter ({sub}). */
#define ROUTE_PARAM_MAX 1024

struct request {
    const char *method;
    const char *path;          /* as received, percent-encoded, without the query */
    const char *authorization; /* NULL when absent; valid while the request waits */
    const char *content_type;  /* NULL when absent */
    const char *body;          /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    cJSON *json;               /* the body parsed by reply_parse_body(), or NULL */
    const char *query;         /* the query as received, without '?'; NULL when none */
    char param[ROUTE_PARAM_MAX + 1]; /* decoded {sub} of the matched route */
    int route;                       /* index of the matched route, -1 before or without one */
    struct app *app;
    int64_t now; /* unix seconds when the request arrived */
    struct store_conn *store; /* the worker's connection to the store */
    struct work_inbox *inbox; /* where the worker's work from the pool comes back */
    bool admin;               /* the caller showed an admin key */
    /* A handler that calls the store sets then, the continuation that
     * finishes the reply, and passes request_store_done with the request as
     * the call's done. The reply is sent once then returns without setting
     * then again (it may chain another store call). */
    void (*then)(struct request *req, struct reply *rep, const struct store_result *res);
    struct reply *reply;      /* the reply then() fills */
    struct jwt_claims claims; /* the token's claims, kept for then() */
    /* check_verify()'s state while a pool thread verifies the token; the
     * request waits while verify.then is set, as it does for then. */
    struct {
        struct work work;
        const char *token; /* in the request's head or body: kept while it waits */
        size_t len;
        bool times;     /* judge exp and nbf too */
        bool cacheable; /* key is set */
        unsigned char key[TOKEN_CACHE_KEY_SIZE];
        int rc;
        void (*then)(struct request *req, struct reply *rep, int rc);
    } verify;
    /* The client went away while the request waited: continuations are
     * skipped (the request's path and query are gone with its connection)
     * and the request is released once nothing waits. */
    bool gone;
    void *exchange;           /* http_server.c's own state */
};

struct reply {
    int status;
    cJSON *body;                 /* owned; sent as the JSON body */
    char *text;                  /* owned; when set, sent instead of body as content_type */
    const char *content_type;
    const char *allow;           /* 405: the Allow header */
    char www_authenticate[192];  /* 401: the WWW-Authenticate header, or "" */
    cJSON *log;                  /* owned; extra fields for the request log line */
};

typedef void (*route_handler)(struct request *req, struct reply *rep);

/* The store_done of every handler's store call (arg: the request): runs
 * req->then and, when the reply is complete, sends it. http_server.c. */
void request_store_done(void *req, const struct store_result *res);
/* After a continuation ran: sends the reply unless the request waits again
 * (then or verify.then set). http_server.c. */
void request_continued(struct request *req);

/* Routes req: 404 for an unknown path, 405 with Allow for a known path and
 * another method, 415 for a body that is not JSON, else the route's handler.
 * rep must be zeroed. */
void router_dispatch(struct request *req, struct reply *rep);

/* Prints "METHOD /path" per route, the table's order. */
void router_print_routes(FILE *out);

/* The route table's size, and route i as "METHOD /path" (metrics labels). */
size_t router_route_count(void);
const char *router_route_label(size_t i);

/* The routes' handlers, one file per group. */
void route_check_get(struct request *req, struct reply *rep);
void route_check_post(struct request *req, struct reply *rep);
void route_revoke(struct request *req, struct reply *rep);
void route_revoke_all(struct request *req, struct reply *rep);
void route_admin_revoke(struct request *req, struct reply *rep);
void route_admin_revoke_all(struct request *req, struct reply *rep);
void route_health_live(struct request *req, struct reply *rep);
void route_health_ready(struct request *req, struct reply *rep);
void route_metrics(struct request *req, struct reply *rep);

/* Shared by the holder's and the admin's revoke routes (route_revoke.c).
 * revoke_jti_and_reply stores jti until exp + leeway (nothing when that is
 * past) and answers; revoke_all_and_reply moves sub's cutoff to now. */
void revoke_jti_and_reply(struct request *req, struct reply *rep, const char *iss, const char *jti,
                          int64_t exp, const char *reason);
void revoke_all_and_reply(struct request *req, struct reply *rep, const char *iss, const char *sub);

#endif
