/* test_issuers.c - the issuers read from the single-issuer settings and from
 * REVOKD_ISSUERS_FILE: what each becomes, and every mistake reported on a
 * line of its own. Files are written to a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/config.h"
#include "revokd/issuers.h"
#include "revokd/jwks.h"

#include "unit_util.h"

static struct {
    char dir[PATH_MAX];
    char secret[PATH_MAX + 32], file[PATH_MAX + 32];
    struct config cfg;
    struct issuers is;
    char err[4096];
} fx;

static const char *const files[] = {"hs.secret", "issuers.json"};

static int group_setup(void **state)
{
    (void)state;
    if (unit_tmpdir_create(fx.dir, sizeof(fx.dir)) != 0)
        return -1;
    unit_path_in(fx.secret, sizeof(fx.secret), fx.dir, "hs.secret");
    unit_write_file(fx.secret, "0123456789abcdef0123456789abcdef", 32);
    unit_path_in(fx.file, sizeof(fx.file), fx.dir, "issuers.json");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unit_tmpdir_remove(fx.dir, files, sizeof(files) / sizeof(files[0]));
    return 0;
}

static int clear(void **state)
{
    (void)state;
    issuers_free(&fx.is);
    config_free(&fx.cfg);
    fx.err[0] = '\0';
    return 0;
}

/* issuers_load() over the settings in a NULL-terminated flag list. */
static int load(const char *arg, ...)
{
    char *argv[24] = {"revokd"};
    char cerr[512];
    int argc = 1;
    va_list ap;

    va_start(ap, arg);
    for (const char *a = arg; a != NULL; a = va_arg(ap, const char *)) {
        assert_true(argc < 23);
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    clear(NULL);
    assert_int_equal(config_load(&fx.cfg, argc, argv, cerr, sizeof(cerr)), 0);
    return issuers_load(&fx.is, &fx.cfg, fx.err, sizeof(fx.err));
}

static int load_file(const char *json)
{
    unit_write_file(fx.file, json, strlen(json));
    return load("--issuers-file", fx.file, NULL);
}

static int lines(const char *text)
{
    int n = text[0] != '\0';
    for (const char *p = text; *p != '\0'; p++)
        n += *p == '\n';
    return n;
}

static void test_settings_issuer(void **state)
{
    (void)state;
    assert_int_equal(load("--jwt-hmac-secret-file", fx.secret, "--issuer", "https://a.example", "--audience", "api",
                          "--algorithms", "HS256, RS256", "--leeway", "7", NULL),
                     0);
    assert_int_equal(fx.is.n, 1);
    const struct issuer_conf *c = &fx.is.at[0];
    assert_string_equal(c->iss, "https://a.example");
    assert_int_equal(c->n_audiences, 1);
    assert_string_equal(c->audiences[0], "api");
    assert_int_equal(c->algs, JWKS_ALG_BIT(ALG_HS256) | JWKS_ALG_BIT(ALG_RS256));
    assert_int_equal(c->leeway, 7);
    assert_string_equal(c->hmac_secret_file, fx.secret);
    assert_false(issuers_remote(c));
    /* Without REVOKD_ISSUER the one issuer takes any iss. */
    assert_int_equal(load("--jwks-url", "https://idp.example/jwks", NULL), 0);
    assert_string_equal(fx.is.at[0].iss, "");
    assert_true(issuers_remote(&fx.is.at[0]));
}

static void test_settings_mistakes(void **state)
{
    (void)state;
    assert_int_equal(load(NULL), -1);
    unit_expect_contains(fx.err, "no verification key");
    assert_int_equal(load("--oidc-discovery", "1", NULL), -1);
    unit_expect_contains(fx.err, "REVOKD_OIDC_DISCOVERY: needs REVOKD_ISSUER");
    assert_int_equal(load("--jwks-url", "https://idp.example/jwks", "--jwt-hmac-secret-file", fx.secret, NULL), -1);
    unit_expect_contains(fx.err, "cannot be combined with key files");
    assert_int_equal(load("--jwt-hmac-secret-file", fx.secret, "--algorithms", "RS256,none", NULL), -1);
    unit_expect_contains(fx.err, "REVOKD_ALGORITHMS: ");
    assert_int_equal(fx.is.n, 0);
}

static void test_file_issuers(void **state)
{
    (void)state;
    assert_int_equal(load_file("{\"issuers\": ["
                               "{\"iss\": \"https://a.example\", \"hmac_secret_file\": \"hs.secret\","
                               " \"audiences\": [\"x\", \"y\"], \"algorithms\": [\"HS256\"], \"leeway\": 5,"
                               " \"max_token_lifetime\": 600},"
                               "{\"iss\": \"https://b.example\", \"discovery\": true},"
                               "{\"iss\": \"https://c.example\", \"jwks_url\": \"http://127.0.0.1:1/jwks\"}]}"),
                     0);
    assert_int_equal(fx.is.n, 3);
    const struct issuer_conf *a = &fx.is.at[0], *b = &fx.is.at[1], *c = &fx.is.at[2];
    /* Relative to the file's directory. */
    assert_string_equal(a->hmac_secret_file, fx.secret);
    assert_string_equal(a->hmac_alg, "HS256");
    assert_int_equal(a->n_audiences, 2);
    assert_string_equal(a->audiences[1], "y");
    assert_int_equal(a->leeway, 5);
    assert_int_equal(a->max_lifetime, 600);
    /* Defaults from the settings. */
    assert_int_equal(b->leeway, fx.cfg.leeway);
    assert_int_equal(b->max_lifetime, fx.cfg.max_token_lifetime);
    assert_true(b->discovery && issuers_remote(b));
    assert_true(issuers_same_remote(c, c));
    assert_false(issuers_same_remote(b, c));
    assert_false(issuers_same_remote(a, a)); /* files are read again, never kept */
}

static void test_file_every_mistake_on_its_own_line(void **state)
{
    (void)state;
    assert_int_equal(load_file("{\"issuers\": ["
                               "{\"iss\": \"https://a.example\", \"audience\": \"x\", \"hmac_secret_file\": \"hs.secret\"},"
                               "{\"hmac_secret_file\": \"hs.secret\"},"
                               "{\"iss\": \"https://a.example\", \"jwks_url\": \"http://example.com/jwks\"},"
                               "{\"iss\": \"https://d.example\", \"jwks_url\": \"https://d.example/jwks\", \"discovery\": true},"
                               "{\"iss\": \"https://e.example\"},"
                               "{\"iss\": \"https://f.example\", \"jwks_file\": \"missing.json\", \"leeway\": 99999}]}"),
                     -1);
    static const char *const expected[] = {
        "issuers[0]: unknown member \"audience\"",
        "issuers[1]: iss is required",
        "issuers[2]: jwks_url: \"http://example.com/jwks\" must be https",
        "issuers[2]: iss \"https://a.example\" is also issuers[0]",
        "issuers[3]: give jwks_url or discovery, not both",
        "issuers[4]: no keys",
        "issuers[5]: jwks_file: cannot read",
        "issuers[5]: leeway must be a whole number of seconds in 0..3600",
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        unit_expect_contains(fx.err, expected[i]);
    assert_int_equal(lines(fx.err), (int)(sizeof(expected) / sizeof(expected[0])));
    assert_int_equal(fx.is.n, 0);
}

static void test_file_shape_and_replaced_settings(void **state)
{
    (void)state;
    assert_int_equal(load_file("[]"), -1);
    unit_expect_contains(fx.err, "is not JSON of the form {\"issuers\": [{...}, ...]}");
    assert_int_equal(load_file("{\"issuers\": []}"), -1);
    const char *good = "{\"issuers\": [{\"iss\": \"a\", \"hmac_secret_file\": \"hs.secret\"}]}";
    unit_write_file(fx.file, good, strlen(good));
    assert_int_equal(load("--issuers-file", fx.file, "--issuer", "a", "--jwks-file", fx.secret, NULL), -1);
    unit_expect_contains(fx.err, "REVOKD_ISSUER: not used with REVOKD_ISSUERS_FILE");
    unit_expect_contains(fx.err, "REVOKD_JWKS_FILE: not used with REVOKD_ISSUERS_FILE");
    assert_int_equal(lines(fx.err), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_settings_issuer, clear),
        cmocka_unit_test_teardown(test_settings_mistakes, clear),
        cmocka_unit_test_teardown(test_file_issuers, clear),
        cmocka_unit_test_teardown(test_file_every_mistake_on_its_own_line, clear),
        cmocka_unit_test_teardown(test_file_shape_and_replaced_settings, clear),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
