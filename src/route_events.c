/* route_events.c - GET /v1/events: the revocation log (store.h) in pages of
 * JSON, for the edges and SIEMs that poll it, or with Accept:
 * text/event-stream as Server-Sent Events (event_stream.h). A feed key
 * (REVOKD_FEED_KEYS_FILE) reads it and nothing else; an admin key reads it
 * too. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/event.h"
#include "revokd/event_stream.h"
#include "revokd/keyring.h"
#include "revokd/routes.h"

#define LIMIT_DEFAULT 100
#define LIMIT_MAX 1000
#define WAIT_MAX_S 30

/* Returns 0 when the caller holds a feed or admin key, named in who, else
 * replies and returns -1; failures count against the address as the admin
 * API's do. */
static int authorize(struct request *req, struct reply *rep, char *who, size_t size)
{
    const char *key;
    size_t len;
    char name[ADMIN_NAME_MAX + 1];
    bool admin = false;

    if (route_admin_throttled(req, rep) < 0)
        return -1;
    bool bearer = request_bearer(req, &key, &len) == 0;
    enum keyring_admin a = keyring_feed_check(req->app->keys, bearer ? key : "", bearer ? len : 0, name, &admin);
    if (a == KEYRING_ADMIN_NONE) {
        reply_error(rep, 403, "feed_disabled",
                    "no feed or admin keys are configured (REVOKD_FEED_KEYS_FILE, REVOKD_ADMIN_KEYS_FILE)");
        return -1;
    }
    if (a != KEYRING_ADMIN_OK) {
        route_admin_failed(req, rep);
        reply_error(rep, 401, "unauthorized", "a feed or admin key is required (Authorization: Bearer)");
        snprintf(rep->www_authenticate, sizeof(rep->www_authenticate), "Bearer realm=\"revokd-events\"");
        return -1;
    }
    req->admin = admin;
    reply_log(rep, admin ? "admin_key" : "feed_key", name); /* the key's name, never the key */
    snprintf(who, size, "%s:%s", admin ? "admin" : "feed", name);
    return 0;
}

/* 1 to 20 decimal digits as a uint64_t into *out; returns the digits read,
 * 0 when none or too many. */
static size_t digits(const char *s, uint64_t *out)
{
    size_t n = strspn(s, "0123456789");
    char *end;

    if (n == 0 || n > 20)
        return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end != s + n)
        return 0;
    *out = v;
    return n;
}

/* An entry id, "<ms>-<seq>", or "0" for the start, written canonically into
 * out ("0-0" for the start). Returns 0, or -1 when it is neither, or the
 * very last id there can be (nothing follows it). */
static int parse_after(const char *in, char out[STORE_EVENT_ID_MAX])
{
    uint64_t ms = 0, seq = 0;
    size_t n;

    if (strcmp(in, "0") != 0) {
        if ((n = digits(in, &ms)) == 0 || in[n] != '-' || digits(in + n + 1, &seq) == 0 ||
            in[n + 1 + strspn(in + n + 1, "0123456789")] != '\0')
            return -1;
        if (ms == UINT64_MAX && seq == UINT64_MAX)
            return -1;
    }
    snprintf(out, STORE_EVENT_ID_MAX, "%" PRIu64 "-%" PRIu64, ms, seq);
    return 0;
}

/* Query parameter name as an integer in min..max, def when absent.
 * Returns 0, or -1 when present but not such an integer. */
static int query_int(const struct request *req, const char *name, int min, int max, int def, int *out)
{
    char text[16];
    uint64_t v = 0;
    int rc = request_query(req, name, text, sizeof(text));

    *out = def;
    if (rc == 0)
        return 0;
    if (rc < 0 || digits(text, &v) != strlen(text) || v < (uint64_t)min || v > (uint64_t)max)
        return -1;
    *out = (int)v;
    return 0;
}

static enum request_step events_read(struct request *req, struct reply *rep, const struct store_result *res)
{
    if (res->rc < 0) {
        reply_store_failed(rep, res);
        return REQUEST_DONE;
    }
    reply_begin(rep, 200);
    reply_array(rep, "events");
    for (size_t i = 0; i < res->n_events; i++) {
        char *json = event_json(&res->events[i]);
        int rc = json != NULL ? reply_array_raw(rep, "events", json) : -1;
        free(json);
        /* A page must hold every entry it read, or a reader would skip one. */
        if (rc < 0) {
            reply_error(rep, 500, "internal_error", "out of memory");
            return REQUEST_DONE;
        }
    }
    /* Where the next page starts: after the last entry read, else where
     * this one did. */
    reply_string(rep, "next", res->n_events > 0 ? res->events[res->n_events - 1].id : req->param);
    return REQUEST_DONE;
}

/* Server-Sent Events (event_stream.h) after req->param. */
static enum request_step events_stream(struct request *req, struct reply *rep, const char *who)
{
    const char *why = "this node keeps no revocation log: ask the central service";
    struct event_consumer *c =
        req->app->events != NULL ? event_stream_open(req->app->events, req->param, who, &why) : NULL;

    if (c == NULL) {
        reply_error(rep, 503, req->app->events != NULL ? "too_many_consumers" : "store_unavailable", why);
        return REQUEST_DONE;
    }
    reply_stream(rep, c);
    return REQUEST_DONE;
}

/* Whether the client asks for text/event-stream (an EventSource sends
 * exactly that; a list naming it counts too). */
static bool wants_stream(const char *accept)
{
    return accept != NULL && strstr(accept, "text/event-stream") != NULL;
}

enum request_step route_events(struct request *req, struct reply *rep)
{
    char after[STORE_EVENT_ID_MAX + 1], who[ADMIN_NAME_MAX + 8];
    int limit, wait;
    bool stream = wants_stream(req->accept);

    if (authorize(req, rep, who, sizeof(who)) < 0)
        return REQUEST_DONE;
    /* A reconnecting EventSource sends the last id it got as Last-Event-ID,
     * with the URL it first used: the header wins over ?after. */
    int rc = request_query(req, "after", after, sizeof(after));
    const char *from = stream && req->last_event_id != NULL ? req->last_event_id : rc == 1 ? after : "0";
    if (rc < 0 || parse_after(from, req->param) < 0 ||
        query_int(req, "limit", 1, LIMIT_MAX, LIMIT_DEFAULT, &limit) < 0 ||
        query_int(req, "wait", 0, WAIT_MAX_S, 0, &wait) < 0) {
        reply_error(rep, 400, "invalid_request",
                    "after and Last-Event-ID must be an event id (\"<ms>-<seq>\", or 0 for the start), limit 1 "
                    "to 1000 and wait 0 to 30 seconds, each given once");
        return REQUEST_DONE;
    }
    if (stream)
        return events_stream(req, rep, who);
    /* req->param keeps the canonical after for the answer's next. */
    struct store_call call = {.op = STORE_READ_LOG, .after = req->param, .limit = limit,
                              .wait_ms = (int64_t)wait * 1000};
    return request_wait_store(req, &call, events_read);
}
