/* test_router.c - url_decode() and router_dispatch() for every answer the
 * router gives without Redis: 404, 405 with Allow, 415, bad path escapes, and
 * the routes that answer before they would touch the store. The app is
 * zeroed but for a keyring without admin keys: a handler that reached for
 * the config or the store would crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/config.h"
#include "revokd/keyring.h"
#include "revokd/router.h"
#include "revokd/url.h"

#include "unit_util.h"

/* ---- url_decode --------------------------------------------------------- */

static long decode(const char *in, char *out, size_t size)
{
    return url_decode(in, strlen(in), out, size);
}

static void test_url_decode_valid(void **state)
{
    (void)state;
    char out[64];

    assert_int_equal(decode("abc", out, sizeof(out)), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(decode("", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(decode("a%20b", out, sizeof(out)), 3);
    assert_string_equal(out, "a b");
    assert_int_equal(decode("%2F%2f", out, sizeof(out)), 2);
    assert_string_equal(out, "//");
    assert_int_equal(decode("%41%42C", out, sizeof(out)), 3);
    assert_string_equal(out, "ABC");
    assert_int_equal(decode("%e2%82%AC", out, sizeof(out)), 3);
    assert_string_equal(out, "\xe2\x82\xac");
    assert_int_equal(decode("%25", out, sizeof(out)), 1);
    assert_string_equal(out, "%");
    assert_int_equal(decode("%01%ff", out, sizeof(out)), 2);
    assert_memory_equal(out, "\x01\xff", 3);
    /* '+' is a plus in a path, not a space. */
    assert_int_equal(decode("a+b", out, sizeof(out)), 3);
    assert_string_equal(out, "a+b");
    /* Only len bytes are read. */
    assert_int_equal(url_decode("abcdef", 2, out, sizeof(out)), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(url_decode("a%41%", 4, out, sizeof(out)), 2);
    assert_string_equal(out, "aA");
}

static void test_url_decode_refuses_nul(void **state)
{
    (void)state;
    char out[64];

    assert_int_equal(decode("%00", out, sizeof(out)), -1);
    assert_int_equal(decode("admin%00x", out, sizeof(out)), -1);
    assert_int_equal(decode("%000", out, sizeof(out)), -1);
    /* %10, %01 and %80 are bytes like any other. */
    assert_int_equal(decode("%10%80", out, sizeof(out)), 2);
}

static void test_url_decode_bad_hex(void **state)
{
    (void)state;
    char out[64];

    assert_int_equal(decode("%g0", out, sizeof(out)), -1);
    assert_int_equal(decode("%0g", out, sizeof(out)), -1);
    assert_int_equal(decode("%%41", out, sizeof(out)), -1);
    assert_int_equal(decode("%-1", out, sizeof(out)), -1);
    assert_int_equal(decode("% 1", out, sizeof(out)), -1);
    assert_int_equal(decode("%:0", out, sizeof(out)), -1);
    assert_int_equal(decode("%G0", out, sizeof(out)), -1);
}

static void test_url_decode_truncated(void **state)
{
    (void)state;
    char out[64];

    assert_int_equal(decode("%", out, sizeof(out)), -1);
    assert_int_equal(decode("%4", out, sizeof(out)), -1);
    assert_int_equal(decode("abc%", out, sizeof(out)), -1);
    assert_int_equal(decode("abc%4", out, sizeof(out)), -1);
    /* The escape is cut by len, not by the NUL. */
    assert_int_equal(url_decode("ab%41", 4, out, sizeof(out)), -1);
    /* A raw NUL is refused like %00, in both decodings: a C string would end there. */
    assert_int_equal(url_decode("a\0b", 3, out, sizeof(out)), -1);
    assert_int_equal(url_decode_form("a\0b", 3, out, sizeof(out)), -1);
    assert_int_equal(url_decode_form("a+b%2B", 6, out, sizeof(out)), 4);
    assert_string_equal(out, "a b+");
    assert_int_equal(url_decode("ab%41", 5, out, sizeof(out)), 3);
}

/* The raw value of name in query, or "(absent)" / "(repeated)". */
static const char *find(const char *query, const char *name)
{
    static char out[64];
    const char *v = NULL;
    size_t len = 0;
    int n = url_query_find(query, name, &v, &len);

    if (n != 1)
        return n == 0 ? "(absent)" : "(repeated)";
    assert_true(len < sizeof(out));
    memcpy(out, v, len);
    out[len] = '\0';
    return out;
}

static void test_url_query_find(void **state)
{
    (void)state;
    assert_string_equal(find(NULL, "jti"), "(absent)");
    assert_string_equal(find("", "jti"), "(absent)");
    assert_string_equal(find("jti=a", "jti"), "a");
    assert_string_equal(find("sub=b&jti=a+b&iat=1", "jti"), "a+b"); /* '+' is kept */
    assert_string_equal(find("sub=b&jti=a+b&iat=1", "iat"), "1");
    assert_string_equal(find("jti=", "jti"), "");
    assert_string_equal(find("jti", "jti"), "");
    assert_string_equal(find("jti=a=b", "jti"), "a=b");
    assert_string_equal(find("jtix=a&xjti=b&jt=c", "jti"), "(absent)");
    assert_string_equal(find("&&jti=a&", "jti"), "a");
    assert_string_equal(find("jti=a&jti=a", "jti"), "(repeated)");
    assert_string_equal(find("jti=a&jti", "jti"), "(repeated)");
}

static void test_url_decode_overflow(void **state)
{
    (void)state;
    char out[8];

    memset(out, 'X', sizeof(out));
    /* size counts the NUL: 3 characters fit in 4 bytes, 4 do not. */
    assert_int_equal(decode("abc", out, 4), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(out[4], 'X');
    assert_int_equal(decode("abcd", out, 4), -1);
    assert_int_equal(out[4], 'X');
    /* Decoded length is what counts. */
    assert_int_equal(decode("%41%42%43", out, 4), 3);
    assert_string_equal(out, "ABC");
    assert_int_equal(decode("%41%42%43%44", out, 4), -1);
    assert_int_equal(decode("", out, 1), 0);
    assert_int_equal(decode("a", out, 1), -1);
    assert_int_equal(out[4], 'X');
}

/* ---- router_dispatch ---------------------------------------------------- */

static struct app app;
static struct request req;
static struct reply rep;
static struct {
    char dir[PATH_MAX];
    struct config cfg;
    struct keyring *keys;
} fx;

static int group_setup(void **state)
{
    (void)state;
    char secret[PATH_MAX + 32], err[2048];
    char *argv[] = {"revokd", "--jwt-hmac-secret-file", secret, NULL};

    if (unit_tmpdir_create(fx.dir, sizeof(fx.dir)) != 0)
        return -1;
    unit_path_in(secret, sizeof(secret), fx.dir, "hs256.secret");
    unit_write_file(secret, "0123456789abcdef0123456789abcdef", 32);
    if (config_load(&fx.cfg, 3, argv, err, sizeof(err)) != 0 ||
        (fx.keys = keyring_new(&fx.cfg, NULL, err, sizeof(err))) == NULL)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    static const char *const files[] = {"hs256.secret"};

    keyring_free(fx.keys);
    config_free(&fx.cfg);
    unit_tmpdir_remove(fx.dir, files, 1);
    return 0;
}

static int zero(void **state)
{
    (void)state;
    memset(&app, 0, sizeof(app));
    app.keys = fx.keys;
    memset(&req, 0, sizeof(req));
    memset(&rep, 0, sizeof(rep));
    req.app = &app;
    req.query = NULL;
    req.body = "";
    req.now = 1700000000;
    return 0;
}

static int free_reply(void **state)
{
    (void)state;
    cJSON_Delete(rep.body);
    cJSON_Delete(rep.log);
    memset(&rep, 0, sizeof(rep));
    return 0;
}

static void dispatch(const char *method, const char *path)
{
    free_reply(NULL);
    req.method = method;
    req.path = path;
    router_dispatch(&req, &rep);
}

static const char *body_str(const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(rep.body, name);
    return cJSON_IsString(m) ? m->valuestring : NULL;
}

static void expect_error(int status, const char *code)
{
    assert_int_equal(rep.status, status);
    assert_non_null(rep.body);
    assert_non_null(body_str("error"));
    assert_string_equal(body_str("error"), code);
    assert_non_null(body_str("error_description"));
}

static void test_unknown_path_404(void **state)
{
    (void)state;
    static const char *const paths[] = {"/nope", "/", "", "/v1/check/", "/V1/CHECK", "/v1",
                                        "/v1/check/x", "/healthz/", "//healthz",
                                        "/v1/admin/subjects/u/revoke", "/v1/admin/subjects//revoke-all",
                                        "/v1/admin/subjects/a/b/revoke-all"};

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        dispatch("GET", paths[i]);
        expect_error(404, "not_found");
        assert_string_equal(body_str("error_description"), "no such endpoint");
        assert_null(rep.allow);
        assert_int_equal(cJSON_GetArraySize(rep.body), 2);
    }
    dispatch("POST", "/v1/nope");
    expect_error(404, "not_found");
}

static void test_wrong_method_405(void **state)
{
    (void)state;
    dispatch("PUT", "/v1/check");
    expect_error(405, "method_not_allowed");
    assert_non_null(rep.allow);
    assert_string_equal(rep.allow, "GET, POST");
    dispatch("DELETE", "/v1/check");
    assert_int_equal(rep.status, 405);
    assert_string_equal(rep.allow, "GET, POST");
    dispatch("get", "/v1/check"); /* methods are case-sensitive */
    assert_int_equal(rep.status, 405);

    dispatch("GET", "/v1/revoke");
    expect_error(405, "method_not_allowed");
    assert_string_equal(rep.allow, "POST");
    dispatch("GET", "/v1/revoke-all");
    assert_string_equal(rep.allow, "POST");
    dispatch("POST", "/healthz");
    expect_error(405, "method_not_allowed");
    assert_string_equal(rep.allow, "GET");
    dispatch("HEAD", "/readyz");
    assert_string_equal(rep.allow, "GET");
    dispatch("GET", "/v1/admin/subjects/user-1/revoke-all");
    expect_error(405, "method_not_allowed");
    assert_string_equal(rep.allow, "POST");
}

static void test_body_not_json_415(void **state)
{
    (void)state;
    static const char *const types[] = {"text/plain", "application/x-www-form-urlencoded",
                                        "application/jsonp", "application/json-seq", "json", ""};

    req.body = "token=abc";
    req.body_len = strlen(req.body);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        req.content_type = types[i];
        dispatch("POST", "/v1/check");
        expect_error(415, "unsupported_media_type");
        assert_null(rep.allow);
    }
    req.content_type = NULL;
    dispatch("POST", "/v1/check");
    expect_error(415, "unsupported_media_type");
    req.content_type = "text/plain";
    dispatch("POST", "/v1/revoke");
    expect_error(415, "unsupported_media_type");
    dispatch("POST", "/v1/admin/revoke");
    expect_error(415, "unsupported_media_type");
    /* The method is checked before the body. */
    dispatch("PUT", "/v1/check");
    assert_int_equal(rep.status, 405);
}

static void test_healthz(void **state)
{
    (void)state;
    dispatch("GET", "/healthz");
    assert_int_equal(rep.status, 200);
    assert_non_null(body_str("status"));
    assert_string_equal(body_str("status"), "ok");
    assert_int_equal(cJSON_GetArraySize(rep.body), 1);
    assert_null(rep.allow);
    assert_string_equal(rep.www_authenticate, "");

    /* A JSON body is let through, with parameters and in any case. */
    req.body = "{}";
    req.body_len = 2;
    req.content_type = "application/json; charset=utf-8";
    dispatch("GET", "/healthz");
    assert_int_equal(rep.status, 200);
    req.content_type = "APPLICATION/JSON";
    dispatch("GET", "/healthz");
    assert_int_equal(rep.status, 200);
    /* A GET body is never read, so its type does not matter. */
    req.content_type = "text/plain";
    dispatch("GET", "/healthz");
    assert_int_equal(rep.status, 200);
    /* A POST body must be JSON. */
    dispatch("POST", "/v1/check");
    expect_error(415, "unsupported_media_type");
}

static void test_readyz_shutting_down(void **state)
{
    (void)state;
    atomic_store(&app.shutting_down, true);
    dispatch("GET", "/readyz");
    expect_error(503, "shutting_down");
    assert_string_equal(body_str("status"), "not_ready");
}

static void test_admin_disabled_without_keys(void **state)
{
    (void)state;
    req.authorization = "Bearer some-admin-key-0123456789";
    dispatch("POST", "/v1/admin/revoke");
    expect_error(403, "admin_disabled");
    dispatch("POST", "/v1/admin/subjects/user-1/revoke-all");
    expect_error(403, "admin_disabled");
    assert_string_equal(req.param, "user-1");
    /* The subject is percent-decoded, '/' included. */
    dispatch("POST", "/v1/admin/subjects/team%2Fuser%201/revoke-all");
    expect_error(403, "admin_disabled");
    assert_string_equal(req.param, "team/user 1");
    /* The feed, with neither feed nor admin keys. */
    dispatch("GET", "/v1/events");
    expect_error(403, "feed_disabled");
}

static void test_bad_path_escape_400(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/v1/admin/subjects/%00/revoke-all",
        "/v1/admin/subjects/a%00b/revoke-all",
        "/v1/admin/subjects/%zz/revoke-all",
        "/v1/admin/subjects/%4/revoke-all",
        "/v1/admin/subjects/abc%/revoke-all",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        dispatch("POST", paths[i]);
        expect_error(400, "invalid_request");
        /* The method is judged first: GET is not allowed on this path. */
        dispatch("GET", paths[i]);
        expect_error(405, "method_not_allowed");
    }
}

static void test_check_without_token_401(void **state)
{
    (void)state;
    static const char *const auth[] = {NULL, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer    ",
                                       "Token abc"};

    for (size_t i = 0; i < sizeof(auth) / sizeof(auth[0]); i++) {
        req.authorization = auth[i];
        dispatch("GET", "/v1/check");
        assert_int_equal(rep.status, 401);
        assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(rep.body, "active")));
        assert_string_equal(body_str("reason"), "missing_token");
        assert_string_equal(body_str("error"), "invalid_token");
        assert_string_equal(body_str("error_description"), "no bearer token was presented");
        assert_string_equal(rep.www_authenticate,
                            "Bearer error=\"invalid_token\", "
                            "error_description=\"no bearer token was presented\"");
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(rep.log, "reason");
        assert_true(cJSON_IsString(reason));
        assert_string_equal(reason->valuestring, "missing_token");
    }
    dispatch("POST", "/v1/revoke-all");
    assert_int_equal(rep.status, 401);
    assert_string_equal(body_str("reason"), "missing_token");
}

static void test_check_post_bad_body_400(void **state)
{
    (void)state;
    static const char *const bodies[] = {"not json", "[]", "\"token\"", "{\"token\":\"a\"} x",
                                         "{\"token\":\"a\\u0000b\"}", "{"};

    req.content_type = "application/json";
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        req.body = bodies[i];
        req.body_len = strlen(bodies[i]);
        dispatch("POST", "/v1/check");
        expect_error(400, "invalid_request");
    }
    /* An empty body is not a JSON object either. */
    req.body = "";
    req.body_len = 0;
    req.content_type = NULL;
    dispatch("POST", "/v1/check");
    expect_error(400, "invalid_request");
}

static void test_check_lookup_invalid_400(void **state)
{
    (void)state;

    req.query = "jti=a&sub=b";
    dispatch("GET", "/v1/check");
    expect_error(400, "invalid_request");
    assert_string_equal(body_str("error_description"), "iat is required with sub");

    /* A bad escape, an empty value, a repeated name. */
    static const char *const invalid[] = {"jti=a%00", "sub=&iat=1", "sub&iat=1", "jti=a&jti=b",
                                          "sub=a&iat=1&sub=b", "jti=a&iat=1&iat=2", "jti=%zz"};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        req.query = invalid[i];
        dispatch("GET", "/v1/check");
        expect_error(400, "invalid_request");
    }

    req.query = "jti=a&sub=b&iat=-1";
    dispatch("GET", "/v1/check");
    expect_error(400, "invalid_request");
    assert_string_equal(body_str("error_description"), "iat must be a non-negative integer");
    req.query = "sub=b&iat=soon";
    dispatch("GET", "/v1/check");
    expect_error(400, "invalid_request");
}

/* /v1/authz takes any method, any path below it (Envoy appends the original
 * path to its prefix), and ignores the body whatever its type; without a
 * token it answers 401 with a bare "Bearer" challenge (RFC 6750 3.1). */
static void test_authz_any_method_and_path(void **state)
{
    (void)state;
    static const char *const paths[] = {"/v1/authz", "/v1/authz/", "/v1/authz/orders", "/v1/authz/orders/42/items"};
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"};

    req.body = "not json";
    req.body_len = strlen(req.body);
    req.content_type = "text/plain";
    for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++)
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
            dispatch(methods[m], paths[p]);
            assert_int_equal(rep.status, 401);
            assert_string_equal(rep.www_authenticate, "Bearer");
        }
    dispatch("GET", "/v1/authz/"); /* Envoy's check of "/" */
    assert_int_equal(rep.status, 401);
    dispatch("GET", "/v1/authzz");
    assert_int_equal(rep.status, 404);
}

static void test_print_routes(void **state)
{
    (void)state;
    char *text = unit_capture(router_print_routes);

    assert_string_equal(text, "GET /v1/check\n"
                              "POST /v1/check\n"
                              "POST /v1/revoke\n"
                              "POST /v1/revoke-all\n"
                              "POST /v1/admin/revoke\n"
                              "POST /v1/admin/subjects/{sub}/revoke-all\n"
                              "POST /v1/admin/reload\n"
                              "POST /oauth2/revoke\n"
                              "POST /oauth2/introspect\n"
                              "POST /global-token-revocation\n"
                              "GET /v1/events\n"
                              "* /v1/authz\n"
                              "* /v1/authz/{path}\n"
                              "GET /healthz\n"
                              "GET /readyz\n"
                              "GET /metrics\n");
    free(text);
}

#define T(f) cmocka_unit_test_setup_teardown(f, zero, free_reply)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_decode_valid),
        cmocka_unit_test(test_url_decode_refuses_nul),
        cmocka_unit_test(test_url_decode_bad_hex),
        cmocka_unit_test(test_url_decode_truncated),
        cmocka_unit_test(test_url_query_find),
        cmocka_unit_test(test_url_decode_overflow),
        T(test_unknown_path_404),
        T(test_wrong_method_405),
        T(test_body_not_json_415),
        T(test_healthz),
        T(test_readyz_shutting_down),
        T(test_admin_disabled_without_keys),
        T(test_bad_path_escape_400),
        T(test_check_without_token_401),
        T(test_check_post_bad_body_400),
        T(test_check_lookup_invalid_400),
        T(test_authz_any_method_and_path),
        T(test_print_routes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
