/* test_store_edge.c - an edge's store against events made up here, without
 * a central service: checks fail closed (feed_stale) until the feed is
 * replayed, once central is silent past the staleness bound, while a
 * forwarded revocation is not read back and while the table is full; a
 * jti is revoked until its record ends (plus this node's leeway), a subject
 * up to its cutoff; answers come in the caller's next round; the probe
 * says how current the copy is. And the feed's page reader: every event
 * checked before any is applied, ids in order, every field bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "revokd/edge_feed.h"
#include "revokd/log.h"
#include "revokd/loop.h"
#include "revokd/store_edge.h"

#include "unit_util.h"

#define ISS "https://issuer.edge.test"
#define LEEWAY 30
#define LIFETIME 3600
#define STALE_MS 2000

static void limits(void *arg, const char *iss, int64_t *leeway, int64_t *max_lifetime)
{
    (void)arg;
    (void)iss;
    *leeway = LEEWAY;
    *max_lifetime = LIFETIME;
}

static struct {
    struct loop *loop;
    struct store *store;
    struct store_conn *conn;
    int answers;
    struct store_result last;
    char error[256];
} fx;

static struct store *edge_new(size_t max)
{
    char err[128];
    struct store_edge_opts o = {
        .feed_url = "http://127.0.0.1:1/v1/events",
        .feed_key = "a-feed-key-of-some-length",
        .poll_wait_s = 1,
        .timeout_ms = 1000,
        .max_staleness_ms = STALE_MS,
        .max_revocations = max,
        .max_pending = 4,
        .limits = limits,
    };
    struct store *s = store_edge_new(&o, err, sizeof(err));
    assert_non_null(s);
    return s;
}

static int setup(void **state)
{
    (void)state;
    log_set_level("error"); /* the store logs how the feed stands; the edge_full line stays */
    fx.loop = loop_new();
    fx.store = edge_new(100000);
    fx.conn = store_conn_new(fx.store, fx.loop);
    fx.answers = 0;
    return fx.loop != NULL && fx.conn != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    store_conn_free(fx.conn);
    store_free(fx.store);
    loop_free(fx.loop);
    return 0;
}

static void done(void *arg, const struct store_result *res)
{
    (void)arg;
    fx.answers++;
    fx.last = *res;
    snprintf(fx.error, sizeof(fx.error), "%s", res->error != NULL ? res->error : "");
    fx.last.error = fx.error;
}

/* Makes call and runs the loop for its answer, which must not come inside
 * the call. */
static const struct store_result *ask(const struct store_call *call)
{
    int before = fx.answers;
    store_call(fx.conn, call, done, NULL);
    assert_int_equal(fx.answers, before);
    for (int i = 0; i < 10 && fx.answers == before; i++)
        loop_poll(fx.loop, 10);
    assert_int_equal(fx.answers, before + 1);
    return &fx.last;
}

static const struct store_result *is_revoked(const char *jti, const char *sub, int64_t iat)
{
    struct store_call c = {.op = STORE_IS_REVOKED, .iss = ISS, .jti = jti, .sub = sub, .iat = iat};
    return ask(&c);
}

static void expect_revoked(const char *jti, const char *sub, int64_t iat, bool revoked)
{
    const struct store_result *r = is_revoked(jti, sub, iat);
    if (r->rc != 0)
        print_error("rc %d: %s\n", r->rc, r->error);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->revoked, revoked);
}

static void expect_stale(const char *why)
{
    const struct store_result *r = is_revoked("any", "anyone", 0);
    assert_int_equal(r->rc, -STORE_ESTALE);
    unit_expect_contains(r->error, why);
}

static void apply_jti(const char *id, const char *jti, int64_t exp)
{
    struct edge_feed_event e = {.id = id, .kind = EDGE_FEED_JTI, .iss = ISS, .jti = jti, .exp = exp};
    assert_int_equal(store_edge_apply(fx.store, &e), 0);
}

static void apply_subject(const char *id, const char *sub, int64_t cutoff, int64_t exp)
{
    struct edge_feed_event e = {.id = id, .kind = EDGE_FEED_SUBJECT, .iss = ISS, .sub = sub, .cutoff = cutoff,
                                .exp = exp};
    assert_int_equal(store_edge_apply(fx.store, &e), 0);
}

/* The feed as a poll leaves it. */
static void progress(const char *last_id, bool replayed, int64_t heard_ms, bool behind, enum edge_feed_result r)
{
    struct edge_feed_progress p = {
        .polled = true,
        .result = r,
        .last_id = last_id,
        .replayed = replayed,
        .behind = behind,
        .heard_ms = heard_ms,
    };
    store_edge_progress(fx.store, &p);
}

static void test_fails_closed_until_replayed(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);

    expect_stale("not read central's revocation feed to its end");
    /* A page, but a full one: not replayed yet. */
    apply_jti("1-0", "j1", now + 100);
    progress("1-0", false, loop_now_ms(), false, EDGE_FEED_events);
    expect_stale("not read central's revocation feed to its end");
    progress("1-0", true, loop_now_ms(), false, EDGE_FEED_empty);
    expect_revoked("j1", NULL, now, true);
    expect_revoked("j2", NULL, now, false);
}

static void test_revocations(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);

    apply_jti("1-0", "live", now + 100);
    apply_jti("1-1", "in-leeway", now - LEEWAY / 2); /* central's record ended; this node's leeway holds it */
    apply_jti("1-2", "dead", now - LEEWAY - 1);
    apply_subject("2-0", "alice", now, now + 100);
    apply_subject("2-1", "bob", now - 10, 0); /* no exp: kept cutoff + lifetime + leeway */
    apply_subject("2-2", "carol", now - 10, now - 500);
    progress("2-2", true, loop_now_ms(), false, EDGE_FEED_events);

    expect_revoked("live", NULL, now, true);
    expect_revoked("in-leeway", NULL, now, true);
    expect_revoked("dead", NULL, now, false);
    expect_revoked("x", "alice", now, true);
    expect_revoked("x", "alice", now - 1000, true);
    expect_revoked("x", "alice", now + 1, false);
    expect_revoked("x", "bob", now - 10, true);
    expect_revoked("x", "bob", now - 9, false);
    expect_revoked("x", "carol", now - 20, true); /* cutoff + lifetime is later than central's exp */
    /* Another issuer's same ids are not revoked. */
    struct store_call c = {.op = STORE_IS_REVOKED, .iss = "https://other.test", .jti = "live", .sub = "alice",
                           .iat = now};
    const struct store_result *r = ask(&c);
    assert_int_equal(r->rc, 0);
    assert_false(r->revoked);
    /* A cutoff only moves forward, even when events come out of order. */
    apply_subject("3-0", "alice", now - 100, now + 100);
    expect_revoked("x", "alice", now, true);
}

static void test_staleness(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);

    apply_jti("1-0", "j", now + 100);
    progress("1-0", true, loop_now_ms(), false, EDGE_FEED_events);
    expect_revoked("j", NULL, now, true);
    /* Central last heard from beyond the bound: nothing is vouched for,
     * revoked or not. */
    progress("1-0", true, loop_now_ms() - STALE_MS - 100, false, EDGE_FEED_network_error);
    expect_stale("not heard from central within REVOKD_EDGE_MAX_STALENESS_MS");
    const struct store_result *r = ask(&(struct store_call){.op = STORE_PROBE});
    assert_int_equal(r->rc, -STORE_ESTALE);
    assert_true(r->status.edge);
    assert_true(r->status.stale);
    assert_true(r->status.replayed);
    assert_true(r->status.lag_ms >= STALE_MS + 100);
    /* Heard again: current. */
    progress("1-0", true, loop_now_ms(), false, EDGE_FEED_empty);
    expect_revoked("j", NULL, now, true);
    /* A revocation central acknowledged through this edge, not read back. */
    progress("1-0", true, loop_now_ms(), true, EDGE_FEED_empty);
    expect_stale("has not brought back yet");
    progress("1-0", true, loop_now_ms(), false, EDGE_FEED_empty);
    expect_revoked("j", NULL, now, true);
}

static void test_probe(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);

    apply_jti("7-3", "j", now + 100);
    apply_subject("7-4", "s", now, now + 100);
    progress("7-4", true, loop_now_ms(), false, EDGE_FEED_events);
    const struct store_result *r = ask(&(struct store_call){.op = STORE_PROBE});
    assert_int_equal(r->rc, 0);
    assert_true(r->status.edge);
    assert_false(r->status.stale);
    assert_string_equal(r->status.role, "edge");
    assert_string_equal(r->status.address, "http://127.0.0.1:1");
    assert_string_equal(r->status.last_id, "7-4");
    assert_int_equal(r->status.revocations, 2);
    assert_true(r->status.lag_ms >= 0 && r->status.lag_ms < 1000);
    struct store_edge_stats st;
    store_edge_stats(fx.store, &st);
    assert_int_equal(st.jti, 1);
    assert_int_equal(st.sub, 1);
    assert_false(st.stale);
    /* An edge stores nothing itself, and without a feed forwards nothing. */
    r = ask(&(struct store_call){.op = STORE_REVOKE_JTI, .iss = ISS, .jti = "j", .expires_at = now + 10});
    assert_int_equal(r->rc, -STORE_EUNAVAILABLE);
    struct store_forward f = {.method = "POST", .path = "/v1/revoke", .body = "{}", .body_len = 2};
    r = ask(&(struct store_call){.op = STORE_FORWARD, .forward = &f});
    assert_int_equal(r->rc, -STORE_EUNAVAILABLE);
}

/* Beyond its max the edge refuses the event (the feed then stops before
 * it) and fails closed until a poll goes through again. */
static void test_full(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);
    struct store *s = fx.store;
    char jti[32], id[32];

    fx.store = edge_new(1000);
    store_conn_free(fx.conn);
    fx.conn = store_conn_new(fx.store, fx.loop);
    int i = 0;
    for (;; i++) {
        snprintf(jti, sizeof(jti), "j-%d", i);
        snprintf(id, sizeof(id), "1-%d", i);
        struct edge_feed_event e = {.id = id, .kind = EDGE_FEED_JTI, .iss = ISS, .jti = jti, .exp = now + 100};
        if (store_edge_apply(fx.store, &e) < 0)
            break;
    }
    assert_int_equal(i, 1000);
    progress(id, true, loop_now_ms(), false, EDGE_FEED_full);
    expect_stale("cannot keep the next");
    progress(id, true, loop_now_ms(), false, EDGE_FEED_empty);
    expect_revoked("j-999", NULL, now, true);
    store_conn_free(fx.conn);
    store_free(fx.store);
    fx.store = s;
    fx.conn = store_conn_new(fx.store, fx.loop);
}

/* What a revocation held costs, at 100,000 of them. */
static void test_memory_per_revocation(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);
    char jti[32], id[32];

    for (int i = 0; i < 100000; i++) {
        snprintf(jti, sizeof(jti), "jti-%d", i);
        snprintf(id, sizeof(id), "1-%d", i);
        apply_jti(id, jti, now + 600);
    }
    struct store_edge_stats st;
    store_edge_stats(fx.store, &st);
    assert_int_equal(st.jti, 100000);
    print_message("100000 revocations held in %zu bytes: %.1f bytes each\n", st.bytes, (double)st.bytes / 100000);
    assert_true(st.bytes <= 100000 * 86);
}

/* ---- the page reader ---- */

struct seen {
    int n, refuse_at;
    char ids[8][EDGE_FEED_ID_MAX];
    char names[8][300];
    int64_t exp[8], cutoff[8];
    char iss[8][300];
};

static int each(void *arg, const struct edge_feed_event *e)
{
    struct seen *s = arg;
    if (s->n == s->refuse_at)
        return -1;
    snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", e->id);
    snprintf(s->names[s->n], sizeof(s->names[0]), "%s", e->kind == EDGE_FEED_JTI ? e->jti : e->sub);
    snprintf(s->iss[s->n], sizeof(s->iss[0]), "%s", e->iss);
    s->exp[s->n] = e->exp;
    s->cutoff[s->n] = e->cutoff;
    s->n++;
    return 0;
}

static int parse(const char *page, const char *after, struct seen *s, char *next, size_t *count, char *err)
{
    memset(s, 0, sizeof(*s));
    s->refuse_at = -1;
    return edge_feed_parse(page, strlen(page), after, 5, each, s, next, count, err, 256);
}

static void test_parse_page(void **state)
{
    (void)state;
    struct seen s;
    char next[EDGE_FEED_ID_MAX], err[256];
    size_t count;

    assert_int_equal(parse("{\"events\":[{\"id\":\"5-0\",\"kind\":\"jti\",\"iss\":\"" ISS "\",\"jti\":\"a\",\"exp\":100,"
                           "\"reason\":\"r\",\"by\":\"admin:ops\",\"at\":1},"
                           "{\"id\":\"5-1\",\"kind\":\"subject\",\"iss\":null,\"sub\":\"alice\",\"cutoff\":90,"
                           "\"exp\":200,\"by\":\"holder\",\"at\":2}],\"next\":\"5-1\"}",
                           "0", &s, next, &count, err),
                     0);
    assert_int_equal(count, 2);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.ids[0], "5-0");
    assert_string_equal(s.names[0], "a");
    assert_string_equal(s.iss[0], ISS);
    assert_int_equal(s.exp[0], 100);
    assert_string_equal(s.names[1], "alice");
    assert_string_equal(s.iss[1], ""); /* null: the tokens without iss */
    assert_int_equal(s.cutoff[1], 90);
    assert_string_equal(next, "5-1");

    /* An empty page: next as given, else where it was. */
    assert_int_equal(parse("{\"events\":[],\"next\":\"5-1\"}", "5-1", &s, next, &count, err), 0);
    assert_int_equal(count, 0);
    assert_string_equal(next, "5-1");
    assert_int_equal(parse("{\"events\":[]}", "7-0", &s, next, &count, err), 0);
    assert_string_equal(next, "7-0");

    /* each() refusing the second: the first is kept, next is it. */
    memset(&s, 0, sizeof(s));
    s.refuse_at = 1;
    const char *two = "{\"events\":[{\"id\":\"6-0\",\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"a\",\"exp\":1},"
                      "{\"id\":\"6-1\",\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"b\",\"exp\":1}],\"next\":\"6-1\"}";
    assert_int_equal(edge_feed_parse(two, strlen(two), "5-9", 5, each, &s, next, &count, err, sizeof(err)), -2);
    assert_int_equal(count, 1);
    assert_string_equal(next, "6-0");
    memset(&s, 0, sizeof(s));
    s.refuse_at = 0;
    assert_int_equal(edge_feed_parse(two, strlen(two), "5-9", 5, each, &s, next, &count, err, sizeof(err)), -2);
    assert_int_equal(count, 0);
    assert_string_equal(next, "5-9");
}

/* Every refusal applies nothing, and says why. */
static void test_parse_refuses(void **state)
{
    (void)state;
    static const struct {
        const char *page, *why;
    } cases[] = {
        {"not json", "not a JSON object with an events array"},
        {"{\"events\":{}}", "not a JSON object with an events array"},
        {"{\"events\":[1,2,3,4,5,6]}", "more than the 5 asked for"},
        {"{\"events\":[],\"next\":\"x\"}", "next is not a valid id"},
        {"{\"events\":[{\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"a\",\"exp\":1}]}", "without a valid id"},
        {"{\"events\":[{\"id\":\"1-0?x\",\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"a\",\"exp\":1}]}", "without a valid id"},
        {"{\"events\":[{\"id\":\"1-1\",\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"a\",\"exp\":1}]}", "does not come after 1-1"},
        {"{\"events\":[{\"id\":\"3-0\",\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"a\",\"exp\":1},"
         "{\"id\":\"2-5\",\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"a\",\"exp\":1}]}", "2-5 does not come after 3-0"},
        {"{\"events\":[{\"id\":\"3-0\",\"kind\":\"unrevoke\",\"iss\":\"i\",\"jti\":\"a\",\"exp\":1}]}", "unknown kind"},
        {"{\"events\":[{\"id\":\"3-0\",\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"a\",\"exp\":1.5}]}", "needs jti"},
        {"{\"events\":[{\"id\":\"3-0\",\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"a\",\"exp\":-1}]}", "needs jti"},
        {"{\"events\":[{\"id\":\"3-0\",\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"a\",\"exp\":\"1\"}]}", "needs jti"},
        {"{\"events\":[{\"id\":\"3-0\",\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"a\"}]}", "needs jti"},
        {"{\"events\":[{\"id\":\"3-0\",\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"a\\nb\",\"exp\":1}]}", "needs jti"},
        {"{\"events\":[{\"id\":\"3-0\",\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"\",\"exp\":1}]}", "needs jti"},
        {"{\"events\":[{\"id\":\"3-0\",\"kind\":\"jti\",\"iss\":5,\"jti\":\"a\",\"exp\":1}]}", "iss is not"},
        {"{\"events\":[{\"id\":\"3-0\",\"kind\":\"subject\",\"iss\":\"i\",\"sub\":\"a\"}]}", "needs sub"},
        {"{\"events\":[{\"id\":\"3-0\",\"kind\":\"subject\",\"iss\":\"i\",\"sub\":\"a\",\"cutoff\":1,\"exp\":true}]}",
         "needs sub"},
        {"{\"events\":[{\"id\":\"3-0\",\"kind\":\"jti\",\"iss\":\"i\",\"jti\":\"a\",\"exp\":1}],\"next\":\"2-9\"}",
         "next 2-9 is before event 3-0"},
    };
    struct seen s;
    char next[EDGE_FEED_ID_MAX], err[256];
    size_t count;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        if (parse(cases[i].page, "1-1", &s, next, &count, err) != -1)
            print_error("case %zu accepted: %s\n", i, cases[i].page);
        assert_int_equal(parse(cases[i].page, "1-1", &s, next, &count, err), -1);
        assert_int_equal(s.n, 0);
        unit_expect_contains(err, cases[i].why);
    }
    /* Longest fields pass; one byte more does not. */
    char page[2048], iss[300];
    memset(iss, 'i', 256);
    iss[256] = '\0';
    snprintf(page, sizeof(page), "{\"events\":[{\"id\":\"3-0\",\"kind\":\"jti\",\"iss\":\"%s\",\"jti\":\"a\",\"exp\":9007199254740992}]}", iss);
    assert_int_equal(parse(page, "1-1", &s, next, &count, err), 0);
    iss[256] = 'i';
    iss[257] = '\0';
    snprintf(page, sizeof(page), "{\"events\":[{\"id\":\"3-0\",\"kind\":\"jti\",\"iss\":\"%s\",\"jti\":\"a\",\"exp\":1}]}", iss);
    assert_int_equal(parse(page, "1-1", &s, next, &count, err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fails_closed_until_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_staleness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_per_revocation, setup, teardown),
        cmocka_unit_test(test_parse_page),
        cmocka_unit_test(test_parse_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
