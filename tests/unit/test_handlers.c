/* test_handlers.c - the handler chains, from the router to the reply,
 * against the in-memory store (store_memory.h) and a real signature pool,
 * on a loop driven here: check, lookup, revoke, revoke-all, the admin's
 * revocations and readiness, with every failure answer (503
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
    char secret[PATH_MAX + 32], admins[PATH_MAX + 32], err[2048] = "";
    char *argv[] = {"revokd", "--jwt-hmac-secret-file", secret, "--admin-keys-file", admins,
                    "--issuer", ISS, "--leeway", "30", "--max-token-lifetime", "3600", NULL};

    if (unit_tmpdir_create(fx.dir, sizeof(fx.dir)) != 0)
        return -1;
    unit_path_in(secret, sizeof(secret), fx.dir, "hs256.secret");
    unit_write_file(secret, SECRET, strlen(SECRET));
    unit_path_in(admins, sizeof(admins), fx.dir, "admin-keys");
    unit_write_file(admins, ADMIN_KEY "\n", strlen(ADMIN_KEY) + 1);
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
    static const char *const files[] = {"hs256.secret", "admin-keys"};

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
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
