/* test_metrics.c - metrics.c's per-thread shards summed by metrics_render(),
 * the exposition's shape, and the route labels and indexes router.c gives
 * it (GET /metrics itself answered with a zeroed app).
 *
 * Shards live as long as the process, so every test reads values before and
 * after and asserts on the difference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/check.h"
#include "revokd/metrics.h"
#include "revokd/router.h"

#define PER_THREAD 1000

static const char *labels[] = {"GET /a", "POST /b", "GET /q\"uote\\d"};

static const char *label(size_t i)
{
    return i < 3 ? labels[i] : NULL;
}

static char *render(void)
{
    struct metrics_gauges g = {.connections = 7, .cache_entries = 5, .cache_capacity = 100,
                               .store_up = true};
    char *text = metrics_render(&g);
    assert_non_null(text);
    return text;
}

/* The value of the sample whose name and labels are exactly series; -1 when
 * there is none (a counter never incremented may be left out). */
static double value(const char *text, const char *series)
{
    size_t n = strlen(series);

    for (const char *line = text; *line != '\0'; line = strchr(line, '\n') + 1) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        if (strchr(line, '\n') == NULL)
            break;
    }
    return -1;
}

/* Like value(), but a missing series counts as 0. */
static double count(const char *text, const char *series)
{
    double v = value(text, series);
    return v < 0 ? 0 : v;
}

/* What one worker thread does PER_THREAD times. */
static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        metrics_request(0, 200, 0.0002);   /* bucket le=0.00025 */
        metrics_request(2, 401, 0.003);    /* bucket le=0.005 */
        metrics_request(-1, 404, 0.00005); /* bucket le=0.0001 */
        metrics_request(42, 405, 3.0);     /* out of the table: unmatched, +Inf */
        metrics_request(1, 299, 0.0001);   /* uncounted status: other; le is inclusive */
        metrics_check(0);
        metrics_check(-JWT_revoked);
        metrics_check(-CHECK_ESTORE);
        metrics_check(-JWT_REASON_COUNT); /* no such result: dropped */
        metrics_revocation(METRICS_REVOKE_TOKEN, false);
        metrics_revocation(METRICS_REVOKE_SUBJECT, true);
        metrics_redis(0.0005, true);
        metrics_redis(0.2, false);
        metrics_cache(i % 4 == 0);
    }
    return NULL;
}

static void run_two_workers(void)
{
    pthread_t t[2];

    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, NULL), 0);
    /* The threads end before the scrape: their counts must stay. */
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
}

static const char *const series[] = {
    "revokd_http_requests_total{route=\"GET /a\",status=\"200\"}",
    "revokd_http_requests_total{route=\"GET /q\\\"uote\\\\d\",status=\"401\"}",
    "revokd_http_requests_total{route=\"unmatched\",status=\"404\"}",
    "revokd_http_requests_total{route=\"unmatched\",status=\"405\"}",
    "revokd_http_requests_total{route=\"POST /b\",status=\"other\"}",
    "revokd_http_request_duration_seconds_count{route=\"GET /a\"}",
    "revokd_http_request_duration_seconds_bucket{route=\"GET /a\",le=\"0.0001\"}",
    "revokd_http_request_duration_seconds_bucket{route=\"GET /a\",le=\"0.00025\"}",
    "revokd_http_request_duration_seconds_bucket{route=\"GET /a\",le=\"+Inf\"}",
    "revokd_http_request_duration_seconds_bucket{route=\"GET /q\\\"uote\\\\d\",le=\"0.0025\"}",
    "revokd_http_request_duration_seconds_bucket{route=\"GET /q\\\"uote\\\\d\",le=\"0.005\"}",
    "revokd_http_request_duration_seconds_bucket{route=\"POST /b\",le=\"0.0001\"}",
    "revokd_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.0001\"}",
    "revokd_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"2.5\"}",
    "revokd_http_request_duration_seconds_count{route=\"unmatched\"}",
    "revokd_http_request_duration_seconds_sum{route=\"GET /a\"}",
    "revokd_checks_total{result=\"active\"}",
    "revokd_checks_total{result=\"revoked\"}",
    "revokd_checks_total{result=\"store_unavailable\"}",
    "revokd_checks_total{result=\"expired\"}",
    "revokd_revocations_total{kind=\"token\",by=\"holder\"}",
    "revokd_revocations_total{kind=\"token\",by=\"admin\"}",
    "revokd_revocations_total{kind=\"subject\",by=\"admin\"}",
    "revokd_redis_command_duration_seconds_bucket{le=\"0.0005\"}",
    "revokd_redis_command_duration_seconds_bucket{le=\"0.1\"}",
    "revokd_redis_command_duration_seconds_bucket{le=\"0.25\"}",
    "revokd_redis_command_duration_seconds_count",
    "revokd_redis_command_duration_seconds_sum",
    "revokd_redis_errors_total",
    "revokd_token_cache_hits_total",
    "revokd_token_cache_misses_total",
};
#define NSERIES (sizeof(series) / sizeof(series[0]))

static const double per_thread[NSERIES] = {
    1, 1, 1, 1, 1,         /* requests by route and status */
    1, 0, 1, 1,            /* GET /a: 0.0002 s */
    0, 1, 1, 1, 1, 2,      /* buckets are cumulative; le is inclusive */
    0.0002,                /* the sum of GET /a */
    1, 1, 1, 0,            /* checks */
    1, 0, 1,               /* revocations */
    1, 1, 1, 1, 0.0005, 1, /* redis: a failure is counted, not timed */
    0.25, 0.75,            /* cache: every fourth a hit */
};

static void test_threads_are_summed(void **state)
{
    (void)state;
    double before[NSERIES];
    char *text = render();

    for (size_t i = 0; i < NSERIES; i++)
        before[i] = count(text, series[i]);
    free(text);

    run_two_workers();
    run_two_workers(); /* fresh threads: new shards next to the old ones */

    text = render();
    for (size_t i = 0; i < NSERIES; i++) {
        double got = count(text, series[i]) - before[i], want = 4 * PER_THREAD * per_thread[i];
        if (got < want - 1e-6 || got > want + 1e-6)
            fail_msg("%s: moved by %f, not %f", series[i], got, want);
    }
    free(text);
}

/* Every route has a histogram, and its _count is its +Inf bucket. */
static void test_histogram_is_consistent(void **state)
{
    (void)state;
    char *text = render();
    const char *route[] = {"GET /a", "POST /b", "GET /q\\\"uote\\\\d", "unmatched"};

    for (size_t r = 0; r < 4; r++) {
        char name[256];
        snprintf(name, sizeof(name), "revokd_http_request_duration_seconds_count{route=\"%s\"}",
                 route[r]);
        double n = value(text, name);
        snprintf(name, sizeof(name),
                 "revokd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"}", route[r]);
        assert_true(n >= 0);
        assert_true(n == value(text, name));
    }
    free(text);
}

static void test_shape(void **state)
{
    (void)state;
    metrics_request(0, 200, 0.001);
    char *text = render();
    static const char *const families[] = {
        "revokd_http_requests_total counter",
        "revokd_http_request_duration_seconds histogram",
        "revokd_checks_total counter",
        "revokd_revocations_total counter",
        "revokd_redis_command_duration_seconds histogram",
        "revokd_redis_errors_total counter",
        "revokd_token_cache_hits_total counter",
        "revokd_token_cache_misses_total counter",
        "revokd_token_cache_entries gauge",
        "revokd_token_cache_capacity gauge",
        "revokd_store_up gauge",
        "revokd_http_connections gauge",
        "revokd_build_info gauge",
        "process_start_time_seconds gauge",
        "process_resident_memory_bytes gauge",
    };

    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        char line[128], name[96];
        snprintf(line, sizeof(line), "\n# TYPE %s\n", families[i]);
        if (strstr(text, line) == NULL)
            fail_msg("no \"# TYPE %s\"", families[i]);
        snprintf(name, sizeof(name), "# HELP %.*s ", (int)strcspn(families[i], " "), families[i]);
        assert_non_null(strstr(text, name));
    }
    assert_true(value(text, "revokd_http_connections") == 7);
    assert_true(value(text, "revokd_token_cache_entries") == 5);
    assert_true(value(text, "revokd_token_cache_capacity") == 100);
    assert_true(value(text, "revokd_store_up") == 1);
    assert_true(value(text, "revokd_build_info{version=\"" REVOKD_VERSION "\"}") == 1);
    assert_true(value(text, "process_start_time_seconds") > 1600000000);
    assert_true(value(text, "process_resident_memory_bytes") > 0);
    /* Every check result has a series, zero or not: one per JWT reason but
     * JWT_OK, plus active and store_unavailable. */
    size_t results = 0;
    for (const char *p = text; (p = strstr(p, "\nrevokd_checks_total{")) != NULL; p++)
        results++;
    assert_int_equal(results, JWT_REASON_COUNT - 1 + 2);
    /* Lines: comments or `name{labels} value`, and a final newline. */
    assert_int_equal(text[strlen(text) - 1], '\n');
    for (const char *line = text; *line != '\0'; line = strchr(line, '\n') + 1) {
        size_t len = (size_t)(strchr(line, '\n') - line);
        assert_true(len > 0);
        assert_true(line[0] == '#' || (line[0] >= 'a' && line[0] <= 'z'));
    }
    struct metrics_gauges down = {0};
    char *text2 = metrics_render(&down);
    assert_true(value(text2, "revokd_store_up") == 0);
    free(text2);
    free(text);
}

/* ---- the route table's side --------------------------------------------- */

static int dispatch(const char *method, const char *path, struct reply *rep)
{
    static struct app app; /* zeroed: no server, cache or store */
    struct request req;

    memset(&req, 0, sizeof(req));
    memset(rep, 0, sizeof(*rep));
    req.method = method;
    req.path = path;
    req.body = "";
    req.route = 12345;
    req.app = &app;
    router_dispatch(&req, rep);
    return req.route;
}

static void test_route_labels(void **state)
{
    (void)state;
    char printed[4096];
    FILE *f = fmemopen(printed, sizeof(printed), "w");
    size_t n = router_route_count(), at = 0;

    assert_non_null(f);
    router_print_routes(f);
    fclose(f);
    /* router_route_label(i) is line i of --routes, the table openapi.yaml is held to. */
    for (size_t i = 0; i < n; i++) {
        const char *l = router_route_label(i);
        assert_non_null(l);
        assert_memory_equal(printed + at, l, strlen(l));
        at += strlen(l);
        assert_int_equal(printed[at++], '\n');
    }
    assert_int_equal(printed[at], '\0');
    assert_null(router_route_label(n));
}

static void test_route_index(void **state)
{
    (void)state;
    struct reply rep;
    int metrics = -1;

    for (size_t i = 0; i < router_route_count(); i++)
        if (strcmp(router_route_label(i), "GET /metrics") == 0)
            metrics = (int)i;
    assert_true(metrics >= 0);

    assert_int_equal(dispatch("GET", "/metrics", &rep), metrics);
    assert_int_equal(rep.status, 200);
    assert_non_null(rep.text);
    assert_null(rep.body);
    assert_string_equal(rep.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_true(value(rep.text, "revokd_store_up") == 0);
    assert_true(value(rep.text, "revokd_http_connections") == 0);
    assert_true(value(rep.text, "revokd_token_cache_capacity") == 0);
    reply_clear(&rep);

    /* Unknown path, or known path with another method: no route. */
    assert_int_equal(dispatch("GET", "/nope", &rep), -1);
    assert_int_equal(rep.status, 404);
    reply_clear(&rep);
    assert_int_equal(dispatch("POST", "/metrics", &rep), -1);
    assert_int_equal(rep.status, 405);
    reply_clear(&rep);
    /* A matched route that refuses before its handler still counts under it. */
    int route = dispatch("POST", "/v1/admin/subjects/%zz/revoke-all", &rep);
    assert_true(route >= 0);
    assert_string_equal(router_route_label((size_t)route),
                        "POST /v1/admin/subjects/{sub}/revoke-all");
    assert_int_equal(rep.status, 400);
    reply_clear(&rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_are_summed),
        cmocka_unit_test(test_histogram_is_consistent),
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_route_labels),
        cmocka_unit_test(test_route_index),
    };

    metrics_init(3, label);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
