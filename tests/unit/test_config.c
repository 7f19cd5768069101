/* test_config.c - settings from defaults, REVOKD_* variables and --flags, and
 * the one-line errors that name the setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "revokd/config.h"

#include "unit_util.h"

extern char **environ;

static struct config cfg;
static char err[256];

/* Every test starts from an environment without REVOKD_* variables. */
static int clean_env(void **state)
{
    (void)state;
    char name[128];

    for (;;) {
        char **e = environ;
        while (*e != NULL && strncmp(*e, "REVOKD_", 7) != 0)
            e++;
        if (*e == NULL)
            break;
        size_t n = strcspn(*e, "=");
        if (n >= sizeof(name))
            return -1;
        memcpy(name, *e, n);
        name[n] = '\0';
        unsetenv(name);
    }
    memset(&cfg, 0, sizeof(cfg));
    err[0] = '\0';
    return 0;
}

static int free_cfg(void **state)
{
    config_free(&cfg);
    return clean_env(state);
}

/* config_load over a NULL-terminated argument list (argv[0] added). */
static int load(const char *arg, ...)
{
    char *argv[16] = {"revokd"};
    int argc = 1;
    va_list ap;

    va_start(ap, arg);
    for (const char *a = arg; a != NULL; a = va_arg(ap, const char *)) {
        assert_true(argc < 15);
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    config_free(&cfg); /* a test may load more than once */
    return config_load(&cfg, argc, argv, err, sizeof(err));
}

static void expect_err(const char *part)
{
    unit_expect_contains(err, part);
}

static void test_defaults(void **state)
{
    (void)state;
    assert_int_equal(load(NULL), 0);
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6379/0");
    assert_string_equal(cfg.sentinels, "");
    assert_string_equal(cfg.sentinel_master, "revokd-primary");
    assert_int_equal(cfg.redis_timeout_ms, 500);
    assert_int_equal(cfg.store_max_pending, 1000);
    assert_int_equal(cfg.min_replicas, 0);
    assert_int_equal(cfg.replication_timeout_ms, 500);
    assert_int_equal(cfg.role_check_ms, 1000);
    assert_string_equal(cfg.jwks_file, "");
    assert_string_equal(cfg.jwt_public_key_file, "");
    assert_string_equal(cfg.jwt_public_key_alg, "");
    assert_string_equal(cfg.jwt_hmac_secret_file, "");
    assert_string_equal(cfg.jwt_hmac_alg, "HS256");
    assert_string_equal(cfg.issuer, "");
    assert_string_equal(cfg.audience, "");
    assert_int_equal(cfg.leeway, 30);
    assert_int_equal(cfg.max_token_lifetime, 2592000);
    assert_string_equal(cfg.admin_keys_file, "");
    assert_string_equal(cfg.feed_keys_file, "");
    assert_string_equal(cfg.key_prefix, "revokd:");
    assert_int_equal(cfg.threads, 0);
    assert_int_equal(cfg.max_connections, 1000);
    assert_int_equal(cfg.connection_timeout, 30);
    assert_int_equal(cfg.max_body_bytes, 16384);
    assert_int_equal(cfg.max_token_bytes, 8192);
    assert_int_equal(cfg.shutdown_grace_ms, 0);
    assert_string_equal(cfg.log_level, "info");
    assert_string_equal(cfg.mode, "central");
    assert_string_equal(cfg.feed_url, "");
    assert_int_equal(cfg.edge_max_staleness_ms, 5000);
    assert_int_equal(cfg.edge_poll_wait, 2);
    assert_int_equal(cfg.edge_max_revocations, 5000000);
}

static void test_env_overrides_default(void **state)
{
    (void)state;
    setenv("REVOKD_LEEWAY", "60", 1);
    setenv("REVOKD_ISSUER", "https://issuer.example", 1);
    setenv("REVOKD_MAX_TOKEN_BYTES", "65536", 1);
    setenv("REVOKD_AUDIENCE", "", 1); /* set but empty is a value */
    setenv("REVOKD_NOT_A_SETTING", "x", 1);
    setenv("revokd_leeway", "7", 1); /* names are exact */
    assert_int_equal(load(NULL), 0);
    assert_int_equal(cfg.leeway, 60);
    assert_string_equal(cfg.issuer, "https://issuer.example");
    assert_int_equal(cfg.max_token_bytes, 65536);
    assert_string_equal(cfg.audience, "");
    /* Untouched rows keep their defaults. */
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_int_equal(cfg.max_token_lifetime, 2592000);
    unsetenv("revokd_leeway");
}

static void test_flag_overrides_env(void **state)
{
    (void)state;
    setenv("REVOKD_LEEWAY", "60", 1);
    setenv("REVOKD_AUDIENCE", "from-env", 1);
    assert_int_equal(load("--leeway=90", "--audience", "from-flag", "--max-token-bytes", "1024",
                          "--listen=[::1]:0", "--issuer=", NULL),
                     0);
    assert_int_equal(cfg.leeway, 90);
    assert_string_equal(cfg.audience, "from-flag");
    assert_int_equal(cfg.max_token_bytes, 1024);
    assert_string_equal(cfg.listen, "[::1]:0");
    assert_string_equal(cfg.issuer, "");
    /* The last of repeated flags wins; a value may contain '='. */
    assert_int_equal(load("--leeway", "1", "--leeway=2", "--redis-url=redis://:a=b@h/1", NULL), 0);
    assert_int_equal(cfg.leeway, 2);
    assert_string_equal(cfg.redis_url, "redis://:a=b@h/1");
    assert_string_equal(cfg.redis_url_parsed.password, "a=b");
    /* "--name value" takes the next argument as it is, even a flag. */
    assert_int_equal(load("--issuer", "--leeway=5", NULL), 0);
    assert_string_equal(cfg.issuer, "--leeway=5");
    assert_int_equal(cfg.leeway, 60);
}

static void test_unknown_flag(void **state)
{
    (void)state;
    assert_int_equal(load("--nope=1", NULL), -1);
    expect_err("unknown argument \"--nope=1\"");
    assert_int_equal(load("--leeway=1", "--nope", "x", NULL), -1);
    expect_err("unknown argument \"--nope\"");
    /* The flag spells '_' as '-'; a positional argument is no flag. */
    assert_int_equal(load("--max_token_bytes=1024", NULL), -1);
    expect_err("unknown argument");
    assert_int_equal(load("leeway=5", NULL), -1);
    expect_err("unknown argument \"leeway=5\"");
    assert_int_equal(load("-leeway", "5", NULL), -1);
    expect_err("unknown argument");
    assert_int_equal(load("--LEEWAY=5", NULL), -1);
    expect_err("unknown argument");
    assert_int_equal(load("--", NULL), -1);
    expect_err("unknown argument");
    /* A prefix of a flag is not the flag. */
    assert_int_equal(load("--lee=5", NULL), -1);
    assert_int_equal(load("--leewayx=5", NULL), -1);
}

static void test_missing_value(void **state)
{
    (void)state;
    assert_int_equal(load("--issuer", NULL), -1);
    expect_err("--issuer needs a value");
    assert_int_equal(load("--leeway=3", "--leeway", NULL), -1);
    expect_err("--leeway needs a value");
}

static void test_bad_integer(void **state)
{
    (void)state;
    static const char *const bad[] = {"abc", "12x", "", "1.5", "0x10", "99999999999999999999", "3 "};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("REVOKD_LEEWAY", bad[i], 1);
        assert_int_equal(load(NULL), -1);
        expect_err("REVOKD_LEEWAY: not an integer in [0, 3600]");
    }
    unsetenv("REVOKD_LEEWAY");
    /* Through a flag, the message still names the variable. */
    assert_int_equal(load("--threads=many", NULL), -1);
    expect_err("REVOKD_THREADS");
    expect_err("\"many\"");
    assert_int_equal(load("--max-body-bytes", "16k", NULL), -1);
    expect_err("REVOKD_MAX_BODY_BYTES");
}

static void test_out_of_range(void **state)
{
    (void)state;
    assert_int_equal(load("--leeway=3600", NULL), 0);
    assert_int_equal(cfg.leeway, 3600);
    assert_int_equal(load("--leeway=3601", NULL), -1);
    expect_err("REVOKD_LEEWAY: not an integer in [0, 3600] s: \"3601\"");
    assert_int_equal(load("--leeway=-1", NULL), -1);
    expect_err("REVOKD_LEEWAY");

    assert_int_equal(load("--max-token-lifetime=60", NULL), 0);
    assert_int_equal(cfg.max_token_lifetime, 60);
    assert_int_equal(load("--max-token-lifetime=59", NULL), -1);
    expect_err("REVOKD_MAX_TOKEN_LIFETIME: not an integer in [60, 315360000]");
    assert_int_equal(load("--max-token-lifetime=315360001", NULL), -1);

    setenv("REVOKD_MAX_TOKEN_BYTES", "255", 1);
    assert_int_equal(load(NULL), -1);
    expect_err("REVOKD_MAX_TOKEN_BYTES: not an integer in [256, 65536]");
    /* A flag cannot rescue a bad variable: the environment is read first. */
    assert_int_equal(load("--max-token-bytes=300", NULL), -1);
    expect_err("REVOKD_MAX_TOKEN_BYTES");
    setenv("REVOKD_MAX_TOKEN_BYTES", "256", 1);
    assert_int_equal(load(NULL), 0);
    assert_int_equal(cfg.max_token_bytes, 256);

    assert_int_equal(load("--min-replicas=17", NULL), -1);
    expect_err("REVOKD_MIN_REPLICAS: not an integer in [0, 16]");
    assert_int_equal(load("--redis-timeout-ms=9", NULL), -1);
    expect_err("REVOKD_REDIS_TIMEOUT_MS");
    /* At least one call may wait, or a link could never be used. */
    assert_int_equal(load("--store-max-pending=1", NULL), 0);
    assert_int_equal(cfg.store_max_pending, 1);
    assert_int_equal(load("--store-max-pending=0", NULL), -1);
    expect_err("REVOKD_STORE_MAX_PENDING: not an integer in [1, 1000000]");
    assert_int_equal(load("--store-max-pending=1000001", NULL), -1);
    expect_err("REVOKD_STORE_MAX_PENDING");
}

/* Text rows bound their length: the longest issuer is the longest iss a
 * token may carry, and a setting that must name something is not empty. */
static void test_text_length(void **state)
{
    (void)state;
    char issuer[JWT_STR_MAX + 2];

    memset(issuer, 'i', JWT_STR_MAX);
    issuer[JWT_STR_MAX] = '\0';
    setenv("REVOKD_ISSUER", issuer, 1);
    assert_int_equal(load(NULL), 0);
    assert_int_equal(strlen(cfg.issuer), JWT_STR_MAX);
    strcat(issuer, "i");
    setenv("REVOKD_ISSUER", issuer, 1);
    assert_int_equal(load(NULL), -1);
    expect_err("REVOKD_ISSUER: 257 bytes long; at most 256 allowed");
    unsetenv("REVOKD_ISSUER");

    assert_int_equal(load("--key-prefix=", NULL), -1);
    expect_err("REVOKD_KEY_PREFIX: must not be empty");
    assert_int_equal(load("--log-level", "", NULL), -1);
    expect_err("REVOKD_LOG_LEVEL: must not be empty");
    assert_int_equal(load("--audience=", NULL), 0);
}

/* The key prefix is a NAME: 1..STORE_KEY_PREFIX_MAX bytes of printable ASCII
 * without spaces (what a Redis key prefix can safely be). */
static void test_key_prefix(void **state)
{
    (void)state;
    static const char *const good[] = {"revokd:", "x", "{tenant}:revokd:~!"};
    static const char *const bad[] = {"", "a b", "revokd: ", "a\tb", "a\nb", "a\x7f", "caf\xc3\xa9:"};
    char arg[STORE_KEY_PREFIX_MAX + 32];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(arg, sizeof(arg), "--key-prefix=%s", good[i]);
        assert_int_equal(load(arg, NULL), 0);
        assert_string_equal(cfg.key_prefix, good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(arg, sizeof(arg), "--key-prefix=%s", bad[i]);
        assert_int_equal(load(arg, NULL), -1);
        expect_err("REVOKD_KEY_PREFIX");
    }
    memset(arg, 'p', sizeof(arg));
    memcpy(arg, "--key-prefix=", 13);
    arg[13 + STORE_KEY_PREFIX_MAX] = '\0';
    assert_int_equal(load(arg, NULL), 0);
    arg[13 + STORE_KEY_PREFIX_MAX] = 'p';
    arg[13 + STORE_KEY_PREFIX_MAX + 1] = '\0';
    assert_int_equal(load(arg, NULL), -1);
}

/* Addresses, URLs, lists and files are parsed and checked when loaded, so
 * the rest of revokd takes them as they are. */
static void test_typed_values(void **state)
{
    (void)state;
    assert_int_equal(load("--listen=[::1]:8081", "--redis-url=redis://u:p%40ss@[::1]/3",
                          "--sentinels=a:1,[::1],b", NULL),
                     0);
    assert_string_equal(cfg.listen_addr.host, "::1");
    assert_int_equal(cfg.listen_addr.ss.ss_family, AF_INET6);
    assert_string_equal(cfg.redis_url_parsed.endpoint.host, "::1");
    assert_int_equal(cfg.redis_url_parsed.endpoint.port, 6379);
    assert_string_equal(cfg.redis_url_parsed.username, "u");
    assert_string_equal(cfg.redis_url_parsed.password, "p@ss");
    assert_int_equal(cfg.redis_url_parsed.db, 3);
    assert_int_equal(cfg.sentinels_parsed.n, 3);
    assert_int_equal(cfg.sentinels_parsed.at[0].port, 1);
    assert_int_equal(cfg.sentinels_parsed.at[1].port, 26379);
    assert_string_equal(cfg.sentinels_parsed.at[2].host, "b");

    assert_int_equal(load("--redis-url=unix:///run/r.sock?db=2", "--sentinels=", NULL), 0);
    assert_string_equal(cfg.redis_url_parsed.unix_path, "/run/r.sock");
    assert_int_equal(cfg.redis_url_parsed.db, 2);
    assert_null(cfg.redis_url_parsed.password);
    assert_int_equal(cfg.sentinels_parsed.n, 0);

    static const char *const bad[] = {"--listen=localhost:80", "--listen=127.0.0.1:65536",
                                      "--redis-url=http://h", "--redis-url=redis://h/x",
                                      "--redis-url=redis://:%zz@h", "--sentinels=a,b,c,d,e,f,g,h,i",
                                      "--sentinels=a:0", "--jwks-file=/nonexistent",
                                      "--jwks-file=/", "--feed-keys-file=/nonexistent",
                                      "--jwt-public-key-alg=none"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(load(bad[i], NULL), -1);
        char env[64] = "REVOKD_";
        for (size_t j = 2; bad[i][j] != '='; j++)
            env[5 + j] = bad[i][j] == '-' ? '_' : (char)(bad[i][j] - 32);
        expect_err(env);
    }
    expect_err("\"none\" is not one of |RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|ES512|EdDSA");
}

/* Edge mode's settings hold only together, and only in edge mode: each
 * mistake names the setting. The key file only has to be readable here
 * (main.c reads the key). */
static void test_edge_mode(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX + 32], key[PATH_MAX + 64];
    const char *url = "--feed-url=http://127.0.0.1:8080/v1/events";

    assert_int_equal(unit_tmpdir_create(dir, sizeof(dir)), 0);
    unit_path_in(path, sizeof(path), dir, "feed-key");
    unit_write_file(path, "a-feed-key-0123456789\n", 22);
    snprintf(key, sizeof(key), "--feed-key-file=%s", path);

    assert_int_equal(load("--mode=edge", url, key, NULL), 0);
    assert_string_equal(cfg.mode, "edge");
    assert_int_equal(load("--mode=edge", url, key, "--edge-poll-wait=5", "--edge-max-staleness-ms=10000", NULL), 0);

    const struct {
        const char *args[4], *setting;
    } bad[] = {
        {{"--mode=edge", NULL}, "REVOKD_FEED_URL: REVOKD_MODE=edge needs"},
        {{"--mode=edge", "--feed-url=http://127.0.0.1:8080/v1/check", key, NULL},
         "REVOKD_FEED_URL: must end with /v1/events"},
        {{"--mode=edge", "--feed-url=http://127.0.0.1:8080/v1/events?a=b", key, NULL},
         "REVOKD_FEED_URL: must end with /v1/events"},
        {{"--mode=edge", "--feed-url=http://central.example/v1/events", NULL}, "REVOKD_FEED_URL"},
        {{"--mode=edge", "--feed-url=http://127.0.0.1:8080/v1/events", NULL}, "REVOKD_FEED_KEY_FILE"},
        {{"--mode=edge", "--feed-url=http://127.0.0.1:8080/v1/events", key,
          "--edge-poll-wait=3"},
         "REVOKD_EDGE_POLL_WAIT: 3 s is more than half of REVOKD_EDGE_MAX_STALENESS_MS (5000 ms)"},
        {{"--feed-url=http://127.0.0.1:8080/v1/events", NULL}, "are for REVOKD_MODE=edge"},
        {{"--mode=mirror", NULL}, "REVOKD_MODE"},
        {{"--edge-poll-wait=31", NULL}, "REVOKD_EDGE_POLL_WAIT"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(load(bad[i].args[0], bad[i].args[1], bad[i].args[2], bad[i].args[3], NULL), -1);
        expect_err(bad[i].setting);
    }
    unit_tmpdir_remove(dir, (const char *const[]){"feed-key"}, 1);
}

static void test_free_is_idempotent(void **state)
{
    (void)state;
    assert_int_equal(load("--issuer=x", NULL), 0);
    config_free(&cfg);
    assert_null(cfg.issuer);
    assert_null(cfg.listen);
    config_free(&cfg);
}

static void test_help_and_markdown(void **state)
{
    (void)state;
    char *help = unit_capture(config_print_help);
    char *md = unit_capture(config_print_markdown);

    assert_non_null(strstr(help, "REVOKD_LEEWAY, --leeway"));
    assert_non_null(strstr(help, "(default: \"30\", 0..3600 s)"));
    assert_non_null(strstr(help, "at most 256 bytes"));
    assert_non_null(strstr(help, "REVOKD_MAX_TOKEN_BYTES, --max-token-bytes"));
    assert_non_null(strstr(md, "| `REVOKD_LEEWAY` | `--leeway` | `30` |"));
    assert_non_null(strstr(md, "| `REVOKD_LOG_LEVEL` | `--log-level` | `info` |"));
    free(help);
    free(md);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clean_env, free_cfg)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_env_overrides_default),
        T(test_flag_overrides_env),
        T(test_unknown_flag),
        T(test_missing_value),
        T(test_bad_integer),
        T(test_out_of_range),
        T(test_text_length),
        T(test_key_prefix),
        T(test_typed_values),
        T(test_edge_mode),
        T(test_free_is_idempotent),
        T(test_help_and_markdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
