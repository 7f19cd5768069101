/* request.c - a request's lifecycle (request.h): its state, its two ways
 * of waiting, who holds it; and what handlers read of it (the bearer token,
 * the JSON body's members). */
#include "revokd/request.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "revokd/router.h"
#include "revokd/url.h"
#include "revokd/utf8.h"

/* The legal changes of state, [from][to]. */
static const bool legal[][REQUEST_FINISHED + 1] = {
    [REQUEST_RECEIVED] = {[REQUEST_DISPATCHED] = true, [REQUEST_REPLIED] = true, [REQUEST_FINISHED] = true},
    [REQUEST_DISPATCHED] = {[REQUEST_WAITING] = true, [REQUEST_REPLIED] = true},
    [REQUEST_WAITING] = {[REQUEST_RUNNING] = true, [REQUEST_FINISHED] = true},
    [REQUEST_RUNNING] = {[REQUEST_WAITING] = true, [REQUEST_REPLIED] = true},
    [REQUEST_REPLIED] = {[REQUEST_FINISHED] = true},
    [REQUEST_FINISHED] = {0},
};

static void set_state(struct request *req, enum request_state to)
{
    assert(legal[req->state][to]);
    req->state = to;
}

/* Drops one reference; the last one releases the request to its transport. */
static void drop(struct request *req)
{
    assert(req->refs > 0);
    if (--req->refs > 0)
        return;
    if (req->state != REQUEST_FINISHED)
        set_state(req, REQUEST_FINISHED);
    cJSON_Delete(req->json);
    req->json = NULL;
    reply_clear(&req->reply);
    req->transport->release(req);
}

void request_init(struct request *req, const struct request_transport *t)
{
    memset(&req->route, 0, sizeof(*req) - offsetof(struct request, route));
    req->route = -1;
    req->state = REQUEST_RECEIVED;
    req->refs = 1; /* the transport's */
    req->transport = t;
}

enum request_step request_dispatch(struct request *req)
{
    set_state(req, REQUEST_DISPATCHED);
    enum request_step step = router_dispatch(req, &req->reply);
    if (step == REQUEST_DONE)
        set_state(req, REQUEST_REPLIED);
    else
        assert(req->state == REQUEST_WAITING);
    return step;
}

void request_refused(struct request *req)
{
    set_state(req, REQUEST_REPLIED);
}

void request_finish(struct request *req)
{
    /* A waiting request stays WAITING: its call holds it, and skips the
     * continuation when it finds itself the last holder. */
    if (req->state != REQUEST_WAITING)
        set_state(req, REQUEST_FINISHED);
    drop(req);
}

/* A continuation returned step: the request waits again, or its reply is
 * ready for the transport. */
static void continued(struct request *req, enum request_step step)
{
    if (step == REQUEST_DONE) {
        set_state(req, REQUEST_REPLIED);
        req->transport->replied(req);
    } else {
        assert(req->state == REQUEST_WAITING);
    }
}

/* Whether the continuation is still wanted: not when the call's reference
 * is the last one, which means the client went away meanwhile. */
static bool resume(struct request *req)
{
    if (req->refs == 1)
        return false;
    set_state(req, REQUEST_RUNNING);
    return true;
}

static void store_answered(void *arg, const struct store_result *res)
{
    struct request *req = arg;
    request_store_then then = req->on_store;

    assert(req->state == REQUEST_WAITING);
    req->on_store = NULL;
    if (resume(req))
        continued(req, then(req, &req->reply, res));
    drop(req); /* the call's */
}

static void wait_begins(struct request *req)
{
    set_state(req, REQUEST_WAITING);
    req->refs++; /* the call's, until it answers */
}

enum request_step request_wait_store(struct request *req, const struct store_call *call,
                                     request_store_then then)
{
    wait_begins(req);
    req->on_store = then;
    store_call(req->store, call, store_answered, req);
    return REQUEST_WAIT;
}

static void work_done(struct work *w)
{
    struct request *req = (struct request *)((char *)w - offsetof(struct request, verify.work));
    request_work_then then = req->on_work;

    assert(req->state == REQUEST_WAITING);
    req->on_work = NULL;
    if (resume(req))
        continued(req, then(req, &req->reply));
    drop(req); /* the call's */
}

enum request_step request_wait_work(struct request *req, struct work *w, request_work_then then)
{
    assert(w == &req->verify.work);
    wait_begins(req);
    req->on_work = then;
    w->done = work_done;
    work_submit(req->inbox, w);
    return REQUEST_WAIT;
}

/* ---- what handlers read ---- */

int request_bearer(const struct request *req, const char **token, size_t *len)
{
    const char *h = req->authorization;

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return -1;
    h += 7;
    h += strspn(h, " \t");
    size_t n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (n == 0)
        return -1;
    *token = h;
    *len = n;
    return 0;
}

int request_body(struct request *req, struct reply *rep, bool allow_empty)
{
    const char *end = NULL;
    cJSON *json;

    if (req->body_len == 0 && allow_empty)
        return 0;
    /* The body is NUL-terminated by the transport; an embedded NUL would end
     * parsing early, so insist that the parse consumed every byte. */
    json = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0);
    while (json != NULL && end < req->body + req->body_len &&
           (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (!cJSON_IsObject(json) || end != req->body + req->body_len ||
        strcasestr(req->body, "\\u0000") != NULL || !utf8_valid(req->body, req->body_len)) {
        cJSON_Delete(json);
        reply_error(rep, 400, "invalid_request",
                    "the body must be a JSON object in UTF-8 (and contain no \\u0000)");
        return -1;
    }
    cJSON_Delete(req->json);
    req->json = json;
    return 1;
}

int request_body_string(const struct request *req, const char *name, size_t max, const char **out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(req->json, name);
    if (m == NULL)
        return 0;
    if (!cJSON_IsString(m) || m->valuestring[0] == '\0' || strlen(m->valuestring) > max)
        return -1;
    *out = m->valuestring;
    return 1;
}

int request_body_id(const struct request *req, const char *name, const char **out)
{
    int rc = request_body_string(req, name, JWT_STR_MAX, out);
    return rc == 1 && !utf8_is_text(*out, strlen(*out)) ? -1 : rc;
}

int request_body_member_string(const struct request *req, const char *object, const char *name, const char **out)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(req->json, object);
    const cJSON *m = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;

    if (m == NULL)
        return 0;
    if (!cJSON_IsString(m) || m->valuestring[0] == '\0' || strlen(m->valuestring) > JWT_STR_MAX ||
        !utf8_is_text(m->valuestring, strlen(m->valuestring)))
        return -1;
    *out = m->valuestring;
    return 1;
}

bool request_body_null(const struct request *req, const char *name)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(req->json, name));
}

int request_body_number(const struct request *req, const char *name, double *out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(req->json, name);
    if (m == NULL)
        return 0;
    if (!cJSON_IsNumber(m))
        return -1;
    *out = m->valuedouble;
    return 1;
}

int request_query(const struct request *req, const char *name, char *out, size_t size)
{
    const char *raw;
    size_t len;
    int n = url_query_find(req->query, name, &raw, &len);

    if (n == 0)
        return 0;
    long dlen = n == 1 ? url_decode(raw, len, out, size) : -1;
    return dlen > 0 && utf8_is_text(out, (size_t)dlen) ? 1 : -1;
}

int request_form(struct request *req, struct reply *rep)
{
    const char *p = req->body, *end = req->body + req->body_len;

    cJSON_Delete(req->json);
    if ((req->json = cJSON_CreateObject()) == NULL)
        goto bad;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        size_t nlen = (size_t)((eq != NULL ? eq : stop) - p), vlen = eq != NULL ? (size_t)(stop - eq - 1) : 0;
        char *name = malloc(nlen + 1), *value = malloc(vlen + 1);
        /* Decoding only shrinks, so len + 1 bytes are enough. */
        bool ok = name != NULL && value != NULL && url_decode_form(p, nlen, name, nlen + 1) > 0 &&
                  (vlen == 0 ? (value[0] = '\0', true) : url_decode_form(eq + 1, vlen, value, vlen + 1) > 0) &&
                  utf8_valid(value, strlen(value)) &&
                  cJSON_GetObjectItemCaseSensitive(req->json, name) == NULL &&
                  cJSON_AddStringToObject(req->json, name, value) != NULL;
        free(name);
        free(value);
        if (!ok && !(nlen == 0 && vlen == 0 && eq == NULL)) /* "a=1&&b=2": an empty pair is nothing */
            goto bad;
        p = stop + 1;
    }
    return 1;
bad:
    reply_error(rep, 400, "invalid_request",
                "the body must be application/x-www-form-urlencoded UTF-8, each name once");
    return -1;
}
