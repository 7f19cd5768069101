/* test_handlers.c - the handler chains, from the router to the reply,
 * against the in-memory store (store_memory.h) and a real signature pool,
 * on a loop driven here: check, lookup, revoke, revoke-all, the admin's
 * and the OAuth clients' revocations, the revocation log they write and
 * its reading (GET /v1/events), and readiness, with every failure answer (503
 * store_unavailable, 503 not_replicated, 503 overloaded, a late answer, a
 * lost connection, lost data) and a client that goes away while its
 * request waits.
 *
 * A small transport stands in for http_server.c: it dispatches a request,
 * runs the loop until the reply is ready, and counts request.h's callbacks.
 * Tokens are HS256, signed here with OpenSSL's HMAC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "revokd/keyring.h"
#include "revokd/config.h"
#include "revokd/loop.h"
#include "revokd/request.h"
#include "revokd/store_memory.h"
#include "revokd/token_cache.h"
#include "revokd/work.h"

#include "unit_util.h"

#define ISS "https://issuer.handlers.test"
#define SECRET "a-secret-of-at-least-thirty-two-bytes!!"
#define ADMIN_KEY "admin-key-handlers-0123456789"
#define ADMIN_NAME "ops"
#define FEED_KEY "feed-key-handlers-0123456789"
#define FEED_NAME "edge-1"
/* An OAuth client that may revoke any token and subjects:
 * Basic base64("web:web-secret-handlers-0123"). */
#define CLIENT_LINE "web:web-secret-handlers-0123:revoke_any,global_revocation\n"
#define CLIENT_BASIC "Basic d2ViOndlYi1zZWNyZXQtaGFuZGxlcnMtMDEyMw=="
#define ROUNDS 200 /* loop rounds a reply may take, 10 ms each at most */

static struct {
    char dir[PATH_MAX];
    struct config cfg;
    struct app app;
    struct loop *loop;
    struct store_conn *conn;
    struct work_inbox *inbox;
    unsigned replied, released;
} fx;

/* ---- the transport's stand-in ------------------------------------------- */

static void on_replied(struct request *req)
{
    (void)req;
    fx.replied++;
}

static void on_released(struct request *req)
{
    fx.released++;
    free(req);
}

static const struct request_transport transport = {.replied = on_replied, .release = on_released};

/* What a request came to. */
struct answer {
    int status;
    cJSON *body;
    enum request_step first; /* what dispatch returned */
};

static struct request *start(const char *method, const char *path, const char *query,
                             const char *authorization, const char *body)
{
    struct request *req = calloc(1, sizeof(*req));
    assert_non_null(req);
    request_init(req, &transport);
    req->method = method;
    req->path = path;
    req->query = query;
    req->authorization = authorization;
    req->content_type = body != NULL ? "application/json" : NULL;
    req->body = body != NULL ? body : "";
    req->body_len = strlen(req->body);
    req->app = &fx.app;
    req->now = (int64_t)time(NULL);
    req->store = fx.conn;
    req->inbox = fx.inbox;
    return req;
}

/* Runs the loop until req is replied (or ROUNDS pass). */
static void settle(struct request *req)
{
    for (int i = 0; i < ROUNDS && req->state == REQUEST_WAITING; i++)
        loop_poll(fx.loop, 10);
}

/* The reply of req, which the transport then lets go. */
static struct answer finish(struct request *req)
{
    struct answer a = {0};
    assert_int_equal(req->state, REQUEST_REPLIED);
    a.status = req->reply.status;
    char *text = reply_render(&req->reply);
    if (text != NULL) {
        a.body = cJSON_Parse(text);
        free(text);
    }
    request_finish(req);
    return a;
}

static struct answer call(const char *method, const char *path, const char *query,
                          const char *authorization, const char *body)
{
    unsigned replied = fx.replied;
    struct request *req = start(method, path, query, authorization, body);
    enum request_step step = request_dispatch(req);

    /* Never answered inside the call: a request that waits is WAITING when
     * dispatch returns, and replied() comes only from the loop. */
    assert_int_equal(fx.replied, replied);
    assert_int_equal(req->state, step == REQUEST_DONE ? REQUEST_REPLIED : REQUEST_WAITING);
    settle(req);
    assert_int_equal(fx.replied, replied + (step == REQUEST_WAIT));
    struct answer a = finish(req);
    a.first = step;
    return a;
}

static const char *str(const struct answer *a, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(a->body, name);
    return cJSON_IsString(m) ? m->valuestring : NULL;
}

static void expect(struct answer a, int status, const char *member, const char *value)
{
    if (a.status != status)
        print_error("status %d, want %d; body %s\n", a.status, status, cJSON_PrintUnformatted(a.body));
    assert_int_equal(a.status, status);
    if (member != NULL) {
        assert_non_null(str(&a, member));
        assert_string_equal(str(&a, member), value);
    }
    cJSON_Delete(a.body);
}

/* ---- tokens ------------------------------------------------------------- */

/* "Bearer <HS256 token>" of sub and jti, issued now, in buf. */
static const char *bearer(char *buf, size_t size, const char *sub, const char *jti)
{
    char payload[512];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    int64_t now = (int64_t)time(NULL);

    snprintf(payload, sizeof(payload),
             "{\"iss\":\"" ISS "\",\"sub\":\"%s\",\"jti\":\"%s\",\"iat\":%lld,\"exp\":%lld}", sub, jti,
             (long long)now, (long long)now + 600);
    char *h = unit_b64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27);
    char *p = unit_b64url(payload, strlen(payload));
    char input[1024];
    snprintf(input, sizeof(input), "%s.%s", h, p);
    assert_non_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)input,
                         strlen(input), mac, &maclen));
    char *s = unit_b64url(mac, maclen);
    snprintf(buf, size, "Bearer %s.%s", input, s);
    free(h);
    free(p);
    free(s);
    return buf;
}

/* {"token": "<the token of a bearer() value>"} in buf. */
static const char *token_body(char *buf, size_t size, const char *bearer_value)
{
    snprintf(buf, size, "{\"token\":\"%s\"}", bearer_value + 7);
    return buf;
}

/* ---- fixture ------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    char secret[PATH_MAX + 32], admins[PATH_MAX + 32], clients[PATH_MAX + 32], feeds[PATH_MAX + 32];
    char err[2048] = "";
    char *argv[] = {"revokd", "--jwt-hmac-secret-file", secret, "--admin-keys-file", admins,
                    "--clients-file", clients, "--feed-keys-file", feeds, "--issuer", ISS, "--leeway", "30",
                    "--max-token-lifetime", "3600", NULL};

    if (unit_tmpdir_create(fx.dir, sizeof(fx.dir)) != 0)
        return -1;
    unit_path_in(secret, sizeof(secret), fx.dir, "hs256.secret");
    unit_write_file(secret, SECRET, strlen(SECRET));
    unit_path_in(admins, sizeof(admins), fx.dir, "admin-keys");
    unit_write_file(admins, ADMIN_NAME ":" ADMIN_KEY "\n", strlen(ADMIN_NAME ":" ADMIN_KEY "\n"));
    unit_path_in(clients, sizeof(clients), fx.dir, "clients");
    unit_write_file(clients, CLIENT_LINE, strlen(CLIENT_LINE));
    unit_path_in(feeds, sizeof(feeds), fx.dir, "feed-keys");
    unit_write_file(feeds, FEED_NAME ":" FEED_KEY "\n", strlen(FEED_NAME ":" FEED_KEY "\n"));
    if (config_load(&fx.cfg, (int)(sizeof(argv) / sizeof(argv[0])) - 1, argv, err, sizeof(err)) != 0)
        return -1;
    fx.app.cfg = &fx.cfg;
    fx.app.cache = token_cache_new(100, ISS);
    if (fx.app.cache == NULL || (fx.app.keys = keyring_new(&fx.cfg, fx.app.cache, err, sizeof(err))) == NULL)
        return -1;
    fx.app.pool = work_pool_new(1);
    fx.loop = loop_new();
    if (fx.app.pool == NULL || fx.loop == NULL || (fx.inbox = work_inbox_new(fx.loop, fx.app.pool)) == NULL)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    static const char *const files[] = {"hs256.secret", "admin-keys", "clients", "feed-keys"};

    work_inbox_drain(fx.inbox);
    work_inbox_free(fx.inbox);
    work_pool_free(fx.app.pool);
    loop_free(fx.loop);
    keyring_free(fx.app.keys);
    token_cache_free(fx.app.cache);
    config_free(&fx.cfg);
    unit_tmpdir_remove(fx.dir, files, sizeof(files) / sizeof(files[0]));
    return 0;
}

/* Each test has a store of its own. */
static int fresh_store(void **state)
{
    (void)state;
    fx.app.store = store_memory_new();
    fx.conn = store_conn_new(fx.app.store, fx.loop);
    fx.replied = fx.released = 0;
    return fx.conn != NULL ? 0 : -1;
}

static int free_store(void **state)
{
    (void)state;
    store_conn_free(fx.conn);
    store_free(fx.app.store);
    return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_check_active_then_revoked(void **state)
{
    (void)state;
    char auth[1024], body[1100];

    bearer(auth, sizeof(auth), "alice", "jti-1");
    struct answer a = call("GET", "/v1/check", NULL, auth, NULL);
    assert_int_equal(a.first, REQUEST_WAIT); /* the signature pool, then the store */
    expect(a, 200, "jti", "jti-1");
    expect(call("POST", "/v1/revoke", NULL, NULL, token_body(body, sizeof(body), auth)), 200, "jti", "jti-1");
    a = call("GET", "/v1/check", NULL, auth, NULL);
    expect(a, 401, "reason", "revoked");
    expect(call("POST", "/v1/check", NULL, NULL, body), 401, "reason", "revoked");
    assert_int_equal(fx.released, 4);
}

static void test_check_fails_closed(void **state)
{
    (void)state;
    char auth[1024];

    bearer(auth, sizeof(auth), "bob", "jti-2");
    store_memory_set_mode(fx.app.store, STORE_MEMORY_FAIL);
    expect(call("GET", "/v1/check", NULL, auth, NULL), 503, "error", "store_unavailable");
    expect(call("GET", "/v1/check", "jti=jti-2", NULL, NULL), 503, "error", "store_unavailable");
    store_memory_set_mode(fx.app.store, STORE_MEMORY_ANSWER);
    expect(call("GET", "/v1/check", NULL, auth, NULL), 200, "jti", "jti-2");
}

/* A store call refused for overload (a full Redis link) is answered 503
 * overloaded by every chain that needs the store; readiness is not refused. */
static void test_overloaded(void **state)
{
    (void)state;
    char auth[1024], body[1100];

    bearer(auth, sizeof(auth), "olga", "jti-o");
    store_memory_set_mode(fx.app.store, STORE_MEMORY_OVERLOADED);
    expect(call("GET", "/v1/check", NULL, auth, NULL), 503, "error", "overloaded");
    expect(call("GET", "/v1/check", "jti=jti-o", NULL, NULL), 503, "error", "overloaded");
    expect(call("POST", "/v1/revoke", NULL, NULL, token_body(body, sizeof(body), auth)), 503, "error",
           "overloaded");
    expect(call("POST", "/v1/admin/subjects/olga/revoke-all", NULL, "Bearer " ADMIN_KEY, "{\"iss\":null}"),
           503, "error", "overloaded");
    expect(call("GET", "/readyz", NULL, NULL, NULL), 200, "status", "ready");
    store_memory_set_mode(fx.app.store, STORE_MEMORY_ANSWER);
    expect(call("GET", "/v1/check", NULL, auth, NULL), 200, "jti", "jti-o");
}

static void test_late_answer(void **state)
{
    (void)state;
    char auth[1024];

    bearer(auth, sizeof(auth), "carol", "jti-3");
    expect(call("GET", "/v1/check", NULL, auth, NULL), 200, NULL, NULL); /* verified, cached */
    store_memory_set_mode(fx.app.store, STORE_MEMORY_HOLD);
    struct request *req = start("GET", "/v1/check", NULL, auth, NULL);
    assert_int_equal(request_dispatch(req), REQUEST_WAIT);
    for (int i = 0; i < 5; i++)
        loop_poll(fx.loop, 1);
    assert_int_equal(req->state, REQUEST_WAITING);
    assert_int_equal(fx.replied, 1);
    store_memory_release(fx.app.store);
    settle(req);
    assert_int_equal(fx.replied, 2);
    expect(finish(req), 200, "jti", "jti-3");
}

static void test_lost_connection(void **state)
{
    (void)state;
    char auth[1024], body[1100];

    bearer(auth, sizeof(auth), "dave", "jti-4");
    store_memory_set_mode(fx.app.store, STORE_MEMORY_HOLD);
    struct request *check = start("GET", "/v1/check", "jti=jti-4", NULL, NULL);
    struct request *revoke = start("POST", "/v1/revoke", NULL, NULL, token_body(body, sizeof(body), auth));
    assert_int_equal(request_dispatch(check), REQUEST_WAIT);
    assert_int_equal(request_dispatch(revoke), REQUEST_WAIT);
    settle(revoke); /* the signature check, then the revoke waits for the store */
    assert_int_equal(revoke->state, REQUEST_WAITING);
    store_memory_drop(fx.app.store);
    settle(check);
    settle(revoke);
    expect(finish(check), 503, "error", "store_unavailable");
    expect(finish(revoke), 503, "error", "store_unavailable");
}

/* The client goes away while its request waits: the transport lets go at
 * once, the call that holds the request answers later, its continuation is
 * skipped, and the request is released exactly once. */
static void test_client_gone_while_waiting(void **state)
{
    (void)state;
    char auth[1024];

    bearer(auth, sizeof(auth), "erin", "jti-5");
    store_memory_set_mode(fx.app.store, STORE_MEMORY_HOLD);
    struct request *req = start("GET", "/v1/check", NULL, auth, NULL);
    assert_int_equal(request_dispatch(req), REQUEST_WAIT);
    settle(req);
    for (int i = 0; i < 5; i++)
        loop_poll(fx.loop, 1);
    assert_int_equal(req->state, REQUEST_WAITING);
    request_finish(req);
    assert_int_equal(fx.released, 0);
    store_memory_release(fx.app.store);
    for (int i = 0; i < 5; i++)
        loop_poll(fx.loop, 1);
    assert_int_equal(fx.released, 1);
    assert_int_equal(fx.replied, 0);

    /* Gone while its signature is checked, too. */
    bearer(auth, sizeof(auth), "erin", "jti-6");
    req = start("GET", "/v1/check", NULL, auth, NULL);
    assert_int_equal(request_dispatch(req), REQUEST_WAIT);
    request_finish(req);
    work_inbox_drain(fx.inbox);
    assert_int_equal(fx.released, 2);
    assert_int_equal(fx.replied, 0);
    store_memory_set_mode(fx.app.store, STORE_MEMORY_ANSWER);
}

static void test_lookup(void **state)
{
    (void)state;
    char body[128];

    expect(call("GET", "/v1/check", "jti=j-7", NULL, NULL), 200, "jti", "j-7");
    snprintf(body, sizeof(body), "{\"jti\":\"j-7\",\"exp\":%lld}", (long long)time(NULL) + 60);
    expect(call("POST", "/v1/admin/revoke", NULL, "Bearer " ADMIN_KEY, body), 200, "jti", "j-7");
    expect(call("GET", "/v1/check", "jti=j-7", NULL, NULL), 401, "reason", "revoked");
    /* Another issuer's namespace holds no such record. */
    expect(call("GET", "/v1/check", "jti=j-7&iss=other", NULL, NULL), 200, "jti", "j-7");
    /* Refused before the store is asked. */
    unsigned calls = store_memory_calls(fx.app.store);
    expect(call("GET", "/v1/check", "sub=frank", NULL, NULL), 400, "error", "invalid_request");
    assert_int_equal(store_memory_calls(fx.app.store), calls);
}

static void test_revoke_not_replicated(void **state)
{
    (void)state;
    char auth[1024], body[1100];

    bearer(auth, sizeof(auth), "grace", "jti-8");
    store_memory_set_mode(fx.app.store, STORE_MEMORY_NOREPLICAS);
    expect(call("POST", "/v1/revoke", NULL, NULL, token_body(body, sizeof(body), auth)), 503, "error",
           "not_replicated");
    expect(call("POST", "/v1/admin/subjects/grace/revoke-all", NULL, "Bearer " ADMIN_KEY, NULL), 503,
           "error", "not_replicated");
    /* Checks still answer. */
    expect(call("GET", "/v1/check", NULL, auth, NULL), 200, "jti", "jti-8");
}

static void test_revoke_all(void **state)
{
    (void)state;
    char auth[1024], other[1024];

    bearer(auth, sizeof(auth), "heidi", "jti-9");
    bearer(other, sizeof(other), "heidi", "jti-10");
    struct answer a = call("POST", "/v1/revoke-all", NULL, auth, NULL);
    assert_int_equal(a.status, 200);
    assert_string_equal(str(&a, "sub"), "heidi");
    assert_string_equal(str(&a, "iss"), ISS);
    cJSON_Delete(a.body);
    expect(call("GET", "/v1/check", NULL, other, NULL), 401, "reason", "revoked");
    /* A revoked token cannot do it again. */
    expect(call("POST", "/v1/revoke-all", NULL, auth, NULL), 401, "reason", "revoked");
    expect(call("POST", "/v1/admin/subjects/ivan/revoke-all", NULL, "Bearer " ADMIN_KEY, "{\"iss\":null}"),
           200, "sub", "ivan");
}

static void test_admin_needs_a_key(void **state)
{
    (void)state;
    unsigned calls = store_memory_calls(fx.app.store);

    expect(call("POST", "/v1/admin/revoke", NULL, "Bearer wrong-key-0123456789", "{\"jti\":\"x\",\"exp\":1}"),
           401, "error", "unauthorized");
    expect(call("POST", "/v1/admin/subjects/x/revoke-all", NULL, NULL, NULL), 401, "error", "unauthorized");
    assert_int_equal(store_memory_calls(fx.app.store), calls);
}

static void test_readiness(void **state)
{
    (void)state;

    struct answer a = call("GET", "/readyz", NULL, NULL, NULL);
    assert_int_equal(a.status, 200);
    const cJSON *store = cJSON_GetObjectItemCaseSensitive(a.body, "store");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(store, "accepts_revocations")));
    cJSON_Delete(a.body);
    store_memory_set_mode(fx.app.store, STORE_MEMORY_NOREPLICAS);
    a = call("GET", "/readyz", NULL, NULL, NULL);
    assert_int_equal(a.status, 200);
    store = cJSON_GetObjectItemCaseSensitive(a.body, "store");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(store, "accepts_revocations")));
    cJSON_Delete(a.body);
    store_memory_set_mode(fx.app.store, STORE_MEMORY_FAIL);
    expect(call("GET", "/readyz", NULL, NULL, NULL), 503, "error", "store_unavailable");
    store_memory_set_mode(fx.app.store, STORE_MEMORY_ANSWER);
    store_memory_flush(fx.app.store);
    expect(call("GET", "/readyz", NULL, NULL, NULL), 503, "error", "store_data_lost");
    assert_true(store_data_lost(fx.app.store));
    expect(call("GET", "/healthz", NULL, NULL, NULL), 200, "status", "ok");
}

/* ---- the revocation log ------------------------------------------------- */

/* The log as it is: up to 32 entries into ev; how many. */
static size_t logged(struct store_event *ev)
{
    return store_memory_log(fx.app.store, ev, 32);
}

static void expect_entry(const struct store_event *e, enum store_event_kind kind, const char *value,
                         const char *reason, const char *by)
{
    int64_t now_ms = (int64_t)time(NULL) * 1000;

    assert_int_equal(e->kind, kind);
    assert_string_equal(e->iss, ISS);
    assert_string_equal(kind == STORE_EVENT_JTI ? e->jti : e->sub, value);
    assert_null(kind == STORE_EVENT_JTI ? e->sub : e->jti);
    if (reason != NULL)
        assert_string_equal(e->reason, reason);
    else
        assert_null(e->reason);
    assert_string_equal(e->by, by);
    assert_true(e->at > now_ms - 10000 && e->at <= now_ms + 1000);
    assert_non_null(strchr(e->id, '-'));
}

/* POST with a form body (OAuth). */
static struct answer call_form(const char *path, const char *authorization, const char *form)
{
    struct request *req = start("POST", path, NULL, authorization, form);
    req->content_type = "application/x-www-form-urlencoded";
    request_dispatch(req);
    settle(req);
    return finish(req);
}

/* Every kind of revocation appends one entry with its fields, by whoever
 * made it; a retry that changes no record appends nothing. */
static void test_log_each_kind_once(void **state)
{
    (void)state;
    struct store_event ev[32];
    char auth[1024], body[1100], form[1100];
    int64_t now = (int64_t)time(NULL);

    /* The holder's revocation of a token: its jti until exp + leeway. */
    bearer(auth, sizeof(auth), "lena", "jti-log-1");
    expect(call("POST", "/v1/revoke", NULL, NULL, token_body(body, sizeof(body), auth)), 200, "jti", "jti-log-1");
    assert_int_equal(logged(ev), 1);
    expect_entry(&ev[0], STORE_EVENT_JTI, "jti-log-1", NULL, "holder");
    assert_true(ev[0].exp >= now + 600 + 30 && ev[0].exp <= now + 600 + 30 + 2);
    expect(call("POST", "/v1/revoke", NULL, NULL, body), 200, "jti", "jti-log-1");
    assert_int_equal(logged(ev), 1);

    /* An admin's, with a reason; again with the same exp: nothing; with an
     * earlier one: nothing (the record is never shortened); a later one
     * extends the record and is logged. */
    snprintf(body, sizeof(body), "{\"jti\":\"jti-log-2\",\"exp\":%lld,\"reason\":\"lost\"}", (long long)now + 100);
    expect(call("POST", "/v1/admin/revoke", NULL, "Bearer " ADMIN_KEY, body), 200, "jti", "jti-log-2");
    expect(call("POST", "/v1/admin/revoke", NULL, "Bearer " ADMIN_KEY, body), 200, "jti", "jti-log-2");
    snprintf(body, sizeof(body), "{\"jti\":\"jti-log-2\",\"exp\":%lld}", (long long)now + 50);
    expect(call("POST", "/v1/admin/revoke", NULL, "Bearer " ADMIN_KEY, body), 200, "jti", "jti-log-2");
    assert_int_equal(logged(ev), 2);
    expect_entry(&ev[1], STORE_EVENT_JTI, "jti-log-2", "lost", "admin:" ADMIN_NAME);
    assert_int_equal(ev[1].exp, now + 100 + 30);
    snprintf(body, sizeof(body), "{\"jti\":\"jti-log-2\",\"exp\":%lld}", (long long)now + 200);
    expect(call("POST", "/v1/admin/revoke", NULL, "Bearer " ADMIN_KEY, body), 200, "jti", "jti-log-2");
    assert_int_equal(logged(ev), 3);
    expect_entry(&ev[2], STORE_EVENT_JTI, "jti-log-2", NULL, "admin:" ADMIN_NAME);
    assert_int_equal(ev[2].exp, now + 200 + 30);

    /* An OAuth client's (RFC 7009). */
    bearer(auth, sizeof(auth), "lena", "jti-log-3");
    snprintf(form, sizeof(form), "token=%s", auth + 7);
    expect(call_form("/oauth2/revoke", CLIENT_BASIC, form), 200, NULL, NULL);
    assert_int_equal(logged(ev), 4);
    expect_entry(&ev[3], STORE_EVENT_JTI, "jti-log-3", NULL, "client:web");

    /* Revoke-all: the holder's, an admin's with a reason, and global
     * revocation by a client and by an admin key. The cutoff is now +
     * leeway: a second call in the same second changes nothing. */
    bearer(auth, sizeof(auth), "mona", "jti-log-4");
    struct answer a = call("POST", "/v1/revoke-all", NULL, auth, NULL);
    assert_int_equal(a.status, 200);
    int64_t cutoff = (int64_t)cJSON_GetObjectItemCaseSensitive(a.body, "cutoff")->valuedouble;
    int64_t expires_at = (int64_t)cJSON_GetObjectItemCaseSensitive(a.body, "expires_at")->valuedouble;
    cJSON_Delete(a.body);
    assert_int_equal(logged(ev), 5);
    expect_entry(&ev[4], STORE_EVENT_SUBJECT, "mona", NULL, "holder");
    assert_int_equal(ev[4].cutoff, cutoff);
    assert_int_equal(ev[4].exp, expires_at);
    size_t n = 5;
    for (int i = 0; i < 2; i++) {
        a = call("POST", "/v1/admin/subjects/nina/revoke-all", NULL, "Bearer " ADMIN_KEY, "{\"reason\":\"left\"}");
        assert_int_equal(a.status, 200);
        int64_t got = (int64_t)cJSON_GetObjectItemCaseSensitive(a.body, "cutoff")->valuedouble;
        cJSON_Delete(a.body);
        if (i == 0 || got != cutoff)
            n++;
        assert_int_equal(logged(ev), n);
        expect_entry(&ev[n - 1], STORE_EVENT_SUBJECT, "nina", "left", "admin:" ADMIN_NAME);
        assert_int_equal(ev[n - 1].cutoff, got);
        cutoff = got;
    }
    expect(call("POST", "/global-token-revocation", NULL, CLIENT_BASIC,
                "{\"sub_id\":{\"format\":\"opaque\",\"id\":\"otto\"}}"), 204, NULL, NULL);
    assert_int_equal(logged(ev), n + 1);
    expect_entry(&ev[n], STORE_EVENT_SUBJECT, "otto", NULL, "client:web");
    expect(call("POST", "/global-token-revocation", NULL, "Bearer " ADMIN_KEY,
                "{\"sub_id\":{\"format\":\"iss_sub\",\"iss\":\"" ISS "\",\"sub\":\"pia\"}}"), 204, NULL, NULL);
    assert_int_equal(logged(ev), n + 2);
    expect_entry(&ev[n + 1], STORE_EVENT_SUBJECT, "pia", NULL, "admin:" ADMIN_NAME);

    /* The ids grow. */
    for (size_t i = 1; i < n + 2; i++) {
        unsigned long long ms0, seq0, ms1, seq1;
        assert_int_equal(sscanf(ev[i - 1].id, "%llu-%llu", &ms0, &seq0), 2);
        assert_int_equal(sscanf(ev[i].id, "%llu-%llu", &ms1, &seq1), 2);
        assert_true(ms1 > ms0 || (ms1 == ms0 && seq1 > seq0));
    }
}

/* What is not stored is not logged: an expired token, a refused write, a
 * store that fails. */
static void test_log_only_what_is_stored(void **state)
{
    (void)state;
    struct store_event ev[32];
    char auth[1024], body[1100];

    snprintf(body, sizeof(body), "{\"jti\":\"jti-old\",\"exp\":%lld}", (long long)time(NULL) - 1000);
    expect(call("POST", "/v1/admin/revoke", NULL, "Bearer " ADMIN_KEY, body), 200, "jti", "jti-old");
    bearer(auth, sizeof(auth), "quinn", "jti-log-5");
    store_memory_set_mode(fx.app.store, STORE_MEMORY_NOREPLICAS);
    expect(call("POST", "/v1/revoke", NULL, NULL, token_body(body, sizeof(body), auth)), 503, "error",
           "not_replicated");
    store_memory_set_mode(fx.app.store, STORE_MEMORY_FAIL);
    expect(call("POST", "/v1/admin/subjects/quinn/revoke-all", NULL, "Bearer " ADMIN_KEY, NULL), 503, "error",
           "store_unavailable");
    store_memory_set_mode(fx.app.store, STORE_MEMORY_ANSWER);
    assert_int_equal(logged(ev), 0);
}

/* ---- GET /v1/events ------------------------------------------------------ */

/* The events of a page, checked for its shape: an array, and next a string. */
static const cJSON *page_events(const struct answer *a, const char **next)
{
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(a->body, "events");
    assert_true(cJSON_IsArray(events));
    *next = str(a, "next");
    assert_non_null(*next);
    return events;
}

static const char *member(const cJSON *o, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(m) ? m->valuestring : NULL;
}

static void test_events_pages(void **state)
{
    (void)state;
    char body[256], query[128], next[STORE_EVENT_ID_MAX];
    const char *n;
    int64_t t = (int64_t)time(NULL);

    /* Nothing yet: an empty page that says to start again from the start. */
    struct answer a = call("GET", "/v1/events", NULL, "Bearer " FEED_KEY, NULL);
    assert_int_equal(a.status, 200);
    assert_int_equal(cJSON_GetArraySize(page_events(&a, &n)), 0);
    assert_string_equal(n, "0-0");
    cJSON_Delete(a.body);

    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof(body), "{\"jti\":\"ev-%d\",\"exp\":%lld%s}", i, (long long)t + 100,
                 i == 1 ? ",\"reason\":\"lost\"" : "");
        expect(call("POST", "/v1/admin/revoke", NULL, "Bearer " ADMIN_KEY, body), 200, NULL, NULL);
    }
    expect(call("POST", "/v1/admin/subjects/sam/revoke-all", NULL, "Bearer " ADMIN_KEY, "{\"iss\":null}"), 200,
           NULL, NULL);

    /* Everything, with an admin key: each entry as event_json writes it. */
    a = call("GET", "/v1/events", "after=0", "Bearer " ADMIN_KEY, NULL);
    assert_int_equal(a.status, 200);
    const cJSON *events = page_events(&a, &n);
    assert_int_equal(cJSON_GetArraySize(events), 4);
    const cJSON *e = cJSON_GetArrayItem(events, 1);
    assert_string_equal(member(e, "kind"), "jti");
    assert_string_equal(member(e, "jti"), "ev-1");
    assert_string_equal(member(e, "iss"), ISS);
    assert_string_equal(member(e, "reason"), "lost");
    assert_string_equal(member(e, "by"), "admin:" ADMIN_NAME);
    assert_int_equal((int64_t)cJSON_GetObjectItemCaseSensitive(e, "exp")->valuedouble, t + 100 + 30);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, "at")));
    assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(events, 0), "reason"));
    e = cJSON_GetArrayItem(events, 3);
    assert_string_equal(member(e, "kind"), "subject");
    assert_string_equal(member(e, "sub"), "sam");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(e, "iss")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, "cutoff")));
    assert_null(cJSON_GetObjectItemCaseSensitive(e, "jti"));
    assert_string_equal(n, member(e, "id"));
    cJSON_Delete(a.body);

    /* Page by page with a feed key, one at a time. */
    snprintf(next, sizeof(next), "0");
    for (int i = 0; i < 5; i++) {
        snprintf(query, sizeof(query), "after=%s&limit=1", next);
        a = call("GET", "/v1/events", query, "Bearer " FEED_KEY, NULL);
        assert_int_equal(a.status, 200);
        events = page_events(&a, &n);
        assert_int_equal(cJSON_GetArraySize(events), i < 4 ? 1 : 0);
        if (i < 4)
            assert_string_equal(member(cJSON_GetArrayItem(events, 0), "id"), n);
        else
            assert_string_equal(n, next); /* nothing new: start again from the same place */
        snprintf(next, sizeof(next), "%s", n);
        cJSON_Delete(a.body);
    }
}

static void test_events_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "after=", "after=x", "after=1", "after=1-", "after=-1", "after=1-2-3", "after=+1-2", "after=1-%202",
        "after=123456789012345678901-0", "after=18446744073709551615-18446744073709551615", "after=0&after=0",
        "limit=0", "limit=1001", "limit=-1", "limit=1e3", "limit=", "wait=31", "wait=-1", "wait=1.5",
        "wait=99999999999999999999",
    };
    unsigned calls = store_memory_calls(fx.app.store);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct answer a = call("GET", "/v1/events", bad[i], "Bearer " FEED_KEY, NULL);
        if (a.status != 400)
            print_error("%s: %d\n", bad[i], a.status);
        expect(a, 400, "error", "invalid_request");
    }
    expect(call("GET", "/v1/events", NULL, NULL, NULL), 401, "error", "unauthorized");
    expect(call("GET", "/v1/events", NULL, "Bearer wrong-key-0123456789", NULL), 401, "error", "unauthorized");
    /* A feed key reads the feed and nothing else. */
    expect(call("POST", "/v1/admin/revoke", NULL, "Bearer " FEED_KEY, "{\"jti\":\"x\",\"exp\":1}"), 401, "error",
           "unauthorized");
    expect(call("POST", "/v1/admin/reload", NULL, "Bearer " FEED_KEY, NULL), 401, "error", "unauthorized");
    expect(call_form("/oauth2/introspect", "Bearer " FEED_KEY, "token=a.b.c"), 401, "error", "invalid_client");
    assert_int_equal(store_memory_calls(fx.app.store), calls);
    /* Accepted: the bounds, and "0-0" for the start. */
    expect(call("GET", "/v1/events", "after=0-0&limit=1000&wait=0", "Bearer " FEED_KEY, NULL), 200, "next", "0-0");
    expect(call("GET", "/v1/events", "limit=1", "Bearer " FEED_KEY, NULL), 200, "next", "0-0");
    store_memory_set_mode(fx.app.store, STORE_MEMORY_FAIL);
    expect(call("GET", "/v1/events", NULL, "Bearer " FEED_KEY, NULL), 503, "error", "store_unavailable");
    store_memory_set_mode(fx.app.store, STORE_MEMORY_ANSWER);
}

/* wait: with nothing after `after`, the request waits, and is answered by
 * the first revocation made meanwhile, or empty once the wait is over. */
static void test_events_wait(void **state)
{
    (void)state;
    char body[128];

    struct request *req = start("GET", "/v1/events", "wait=5", NULL, NULL);
    req->authorization = "Bearer " FEED_KEY;
    assert_int_equal(request_dispatch(req), REQUEST_WAIT);
    for (int i = 0; i < 20; i++)
        loop_poll(fx.loop, 10);
    assert_int_equal(req->state, REQUEST_WAITING);
    snprintf(body, sizeof(body), "{\"jti\":\"ev-wait\",\"exp\":%lld}", (long long)time(NULL) + 60);
    expect(call("POST", "/v1/admin/revoke", NULL, "Bearer " ADMIN_KEY, body), 200, NULL, NULL);
    settle(req);
    struct answer a = finish(req);
    assert_int_equal(a.status, 200);
    const char *next;
    const cJSON *events = page_events(&a, &next);
    assert_int_equal(cJSON_GetArraySize(events), 1);
    assert_string_equal(member(cJSON_GetArrayItem(events, 0), "jti"), "ev-wait");
    char query[96];
    snprintf(query, sizeof(query), "after=%s&wait=1", next);
    cJSON_Delete(a.body);

    /* Nothing comes: an empty page after about a second. */
    int64_t began = loop_now_ms();
    req = start("GET", "/v1/events", query, "Bearer " FEED_KEY, NULL);
    assert_int_equal(request_dispatch(req), REQUEST_WAIT);
    settle(req);
    assert_true(loop_now_ms() - began >= 1000);
    a = finish(req);
    assert_int_equal(a.status, 200);
    assert_int_equal(cJSON_GetArraySize(page_events(&a, &next)), 0);
    cJSON_Delete(a.body);

    /* The client goes away while it waits: released once, when the wait
     * ends, never replied. */
    unsigned replied = fx.replied, released = fx.released;
    req = start("GET", "/v1/events", query, "Bearer " FEED_KEY, NULL);
    assert_int_equal(request_dispatch(req), REQUEST_WAIT);
    loop_poll(fx.loop, 10);
    request_finish(req);
    assert_int_equal(fx.released, released);
    for (int i = 0; i < 150 && fx.released == released; i++)
        loop_poll(fx.loop, 10);
    assert_int_equal(fx.released, released + 1);
    assert_int_equal(fx.replied, replied);
}

/* On an edge the router hands every revocation route to route_edge.c,
 * whose request waits for the store to forward it (STORE_FORWARD). The
 * memory store forwards nothing, so each answers 503 central_unavailable and
 * nothing is stored; checks and readiness are answered as ever. */
static void test_edge_forwards_revocations(void **state)
{
    (void)state;
    char auth[1024], body[1100];

    bearer(auth, sizeof(auth), "erin", "jti-e");
    fx.app.edge = true;
    expect(call("POST", "/v1/revoke", NULL, NULL, token_body(body, sizeof(body), auth)), 503, "error",
           "central_unavailable");
    expect(call("POST", "/v1/revoke-all", NULL, auth, NULL), 503, "error", "central_unavailable");
    expect(call("POST", "/v1/admin/revoke", NULL, "Bearer " ADMIN_KEY, "{\"jti\":\"jti-e\",\"exp\":1}"), 503,
           "error", "central_unavailable");
    expect(call("POST", "/v1/admin/subjects/erin/revoke-all", NULL, "Bearer " ADMIN_KEY, NULL), 503, "error",
           "central_unavailable");
    expect(call("POST", "/global-token-revocation", NULL, "Bearer " ADMIN_KEY,
                "{\"sub_id\":{\"format\":\"opaque\",\"id\":\"erin\"}}"),
           503, "error", "central_unavailable");
    /* A body of the wrong type is refused here, before central is asked. */
    expect(call("POST", "/oauth2/revoke", NULL, NULL, "{}"), 415, "error", "unsupported_media_type");
    expect(call("GET", "/v1/check", NULL, auth, NULL), 200, "jti", "jti-e");
    expect(call("GET", "/readyz", NULL, NULL, NULL), 200, "mode", "central");
    fx.app.edge = false;
}

#define T(f) cmocka_unit_test_setup_teardown(f, fresh_store, free_store)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_check_active_then_revoked),
        T(test_check_fails_closed),
        T(test_overloaded),
        T(test_late_answer),
        T(test_lost_connection),
        T(test_client_gone_while_waiting),
        T(test_lookup),
        T(test_revoke_not_replicated),
        T(test_revoke_all),
        T(test_admin_needs_a_key),
        T(test_readiness),
        T(test_log_each_kind_once),
        T(test_log_only_what_is_stored),
        T(test_events_pages),
        T(test_events_refusals),
        T(test_events_wait),
        T(test_edge_forwards_revocations),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
