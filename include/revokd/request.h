/* request.h - a request as handlers see it, and its lifecycle.
 *
 * The transport (http_server.c) receives a request, hands it to the router
 * and sends the reply; handlers never see the transport. A handler answers
 * at once (REQUEST_DONE, the reply filled) or waits (REQUEST_WAIT) through
 * one of exactly two calls: request_wait_store() for the store, or
 * request_wait_work() for a signature check on the pool. The continuation
 * it names runs on a later round of the loop, never inside the call, and
 * returns DONE or WAIT in turn. One state field says where the request is;
 * each change is asserted against the legal ones:
 *
 *   RECEIVED -> DISPATCHED -> REPLIED -> FINISHED
 *       |           |           ^
 *       |           v           |
 *       |        WAITING <-> RUNNING
 *       +-----> REPLIED (refused before any handler ran)
 *
 * WAITING -> FINISHED too, when the client went away while its request
 * waited: the continuation is then skipped. The request is freed when the
 * last party that can touch it lets go: the transport holds a reference
 * until its exchange with the client completes (request_finish), and the
 * call a request waits for holds one until it answers. */
#ifndef REVOKD_REQUEST_H
#define REVOKD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "revokd/app.h"
#include "revokd/reply.h"
#include "revokd/store.h"
#include "revokd/token_cache.h"
#include "revokd/work.h"

/* Longest decoded path parameter ({sub}). */
#define REQUEST_PARAM_MAX 1024

enum request_state {
    REQUEST_RECEIVED,   /* the transport is reading it */
    REQUEST_DISPATCHED, /* its handler runs */
    REQUEST_WAITING,    /* for the store or the pool */
    REQUEST_RUNNING,    /* a continuation runs */
    REQUEST_REPLIED,    /* the reply is complete, for the transport to send */
    REQUEST_FINISHED,   /* nothing more will happen to it */
};

/* The listener a request came in on. With REVOKD_ADMIN_LISTEN set, the
 * main one answers no admin route and the admin one only those (and
 * health); without it, the one listener answers every route. */
enum request_listener { REQUEST_LISTENER_ONLY, REQUEST_LISTENER_MAIN, REQUEST_LISTENER_ADMIN };

/* What a handler, or a continuation, returns. */
enum request_step { REQUEST_DONE, REQUEST_WAIT };

struct request;

/* What the transport provides: told when a reply completed after a wait
 * (replied), and when nobody holds the request any more (release, which
 * frees it). */
struct request_transport {
    void (*replied)(struct request *req);
    void (*release)(struct request *req);
};

typedef enum request_step (*request_store_then)(struct request *req, struct reply *rep,
                                                const struct store_result *res);
typedef enum request_step (*request_work_then)(struct request *req, struct reply *rep);

struct request {
    /* Set by the transport before dispatch; strings live as long as the
     * request. */
    const char *method;
    const char *path;          /* as received, percent-encoded, without the query */
    const char *query;         /* as received, without '?'; NULL when none */
    const char *authorization; /* NULL when absent */
    const char *content_type;  /* NULL when absent */
    const char *accept;        /* NULL when absent; like last_event_id, valid until the request waits */
    const char *last_event_id; /* NULL when absent */
    const char *request_id;    /* as the reply's X-Request-Id will carry it */
    struct sockaddr_storage peer; /* the client's address */
    const char *body;          /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    struct app *app;
    int64_t now;               /* unix seconds when the request arrived */
    struct store_conn *store;  /* the worker's connection to the store */
    struct work_inbox *inbox;  /* where the worker's work comes back from the pool */
    enum request_listener listener; /* which listener took it (router.c) */

    /* Set by the router and the handlers. */
    int route;                        /* index in the route table, -1 before or without one */
    char param[REQUEST_PARAM_MAX + 1]; /* decoded {sub} of the matched route */
    bool admin;                       /* the caller showed an admin key */
    int client;                       /* an authenticated OAuth client's permissions (clients.h); its id in param */
    char by[STORE_BY_MAX];            /* who revokes, for the log (store_event's by): set where the
                                         caller is known, "holder" by the holder's own routes */
    bool no_content;                  /* a revoke-all answers 204 without a body (global revocation) */
    struct jwt_claims claims;         /* the token's, or what a handler acts on */
    struct reply reply;

    /* check.c's, while a token is verified (check_verify). */
    struct {
        struct work work;
        const char *token;
        size_t len;
        bool times;     /* judge exp and nbf too */
        bool cacheable; /* key is set */
        unsigned char key[TOKEN_CACHE_KEY_SIZE];
        int rc;
        enum request_step (*then)(struct request *req, struct reply *rep, int rc);
    } verify;

    /* request.c's. */
    enum request_state state;
    unsigned refs;
    const struct request_transport *transport;
    request_store_then on_store;
    request_work_then on_work;
    struct cJSON *json; /* the parsed body, or NULL */
};

/* ---- the lifecycle: the transport's side ---- */

/* Starts a request (RECEIVED), held by the transport. The fields the
 * transport sets are its business; the rest is cleared. */
void request_init(struct request *req, const struct request_transport *t);

/* Runs the router and the handler (DISPATCHED). On REQUEST_DONE the reply
 * is complete (REPLIED); on REQUEST_WAIT the transport holds the request
 * until transport->replied(). */
enum request_step request_dispatch(struct request *req);

/* A reply made before any handler ran (RECEIVED -> REPLIED): the request
 * was refused by the transport. */
void request_refused(struct request *req);

/* The transport's exchange with the client is over (the reply was sent, or
 * the client went away): it lets go. A request still waiting is finished
 * when its call answers; any other is released now. */
void request_finish(struct request *req);

/* ---- waiting: the handlers' side ---- */

/* Makes call on the request's store connection; then(req, rep, result)
 * runs with the answer on a later round. Returns REQUEST_WAIT, for the
 * handler to return. */
enum request_step request_wait_store(struct request *req, const struct store_call *call,
                                     request_store_then then);

/* Submits w (w->run set; its done is request.c's) to the pool; then(req,
 * rep) runs on this thread once w ran. Returns REQUEST_WAIT. w must be
 * req->verify.work. */
enum request_step request_wait_work(struct request *req, struct work *w, request_work_then then);

/* ---- what handlers read ---- */

/* The token of "Authorization: Bearer <token>" (scheme case-insensitive,
 * blanks around the token dropped). Returns 0 with *token and *len set, or
 * -1 when absent or another scheme. */
int request_bearer(const struct request *req, const char **token, size_t *len);

/* Query parameter name, percent-decoded into out (size bytes). Returns 1
 * when present (out filled), 0 when absent, -1 when empty, repeated, too
 * long, badly encoded or not text (utf8.h). */
int request_query(const struct request *req, const char *name, char *out, size_t size);

/* Parses the body as a JSON object in UTF-8 and keeps it for the members
 * below (its strings live as long as the request). Returns 1, or 0 for an
 * empty body when allow_empty, or -1 after replying 400. */
int request_body(struct request *req, struct reply *rep, bool allow_empty);

/* Parses an application/x-www-form-urlencoded body (OAuth's, RFC 6749) into
 * the members below, each value a string ('+' a space, percent-decoded).
 * Returns 1 (an empty body gives no member), or -1 after replying 400 for
 * bad encoding, text that is not UTF-8, or a name given twice. */
int request_form(struct request *req, struct reply *rep);

/* A string member of the body: 1 when present and a string of 1..max bytes
 * (*out set), 0 when absent, -1 when present but not such a string. */
int request_body_string(const struct request *req, const char *name, size_t max, const char **out);

/* The same for an identifier (jti, sub, iss): 1..JWT_STR_MAX bytes of text
 * without control characters (utf8.h). */
int request_body_id(const struct request *req, const char *name, const char **out);

/* An identifier member of the body's object member object (as
 * request_body_id). */
int request_body_member_string(const struct request *req, const char *object, const char *name, const char **out);

/* Whether the body has member name, and it is null. */
bool request_body_null(const struct request *req, const char *name);

/* A number member: 1 with *out set when present and a number, 0 when
 * absent, -1 when present but not a number. */
int request_body_number(const struct request *req, const char *name, double *out);

#endif
