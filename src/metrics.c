/* metrics.c - counters and histograms for GET /metrics, kept per thread and
 * summed at scrape time into the Prometheus text format (version 0.0.4).
 * What to count is the callers' business; route_metrics.c adds the gauges. */
#include "revokd/metrics.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "revokd/edge_feed.h"
#include "revokd/event_stream.h"
#include "revokd/jwks_fetch.h"
#include "revokd/keyring.h"
#include "revokd/store_edge.h"

#ifndef REVOKD_VERSION
#define REVOKD_VERSION "dev"
#endif

/* Histogram bucket bounds in seconds, as printed in the le label. One table,
 * so the comparison and the label cannot disagree. */
#define BUCKET_TABLE(X)                                                                          \
    X(0.0001, "0.0001") X(0.00025, "0.00025") X(0.0005, "0.0005") X(0.001, "0.001")               \
    X(0.0025, "0.0025") X(0.005, "0.005") X(0.01, "0.01") X(0.025, "0.025") X(0.05, "0.05")      \
    X(0.1, "0.1") X(0.25, "0.25") X(0.5, "0.5") X(1, "1") X(2.5, "2.5")

#define BOUND_VALUE(v, s) v,
#define BOUND_LABEL(v, s) s,
static const double bounds[] = {BUCKET_TABLE(BOUND_VALUE)};
static const char *const bound_labels[] = {BUCKET_TABLE(BOUND_LABEL) "+Inf"};
#undef BOUND_VALUE
#undef BOUND_LABEL
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))
#define NBUCKETS (NBOUNDS + 1) /* the last one is +Inf */

/* The HTTP statuses counted one by one: what revokd and libmicrohttpd
 * answer. Anything else is counted as status="other" rather than growing
 * every shard by 500 counters per route. */
#define HTTP_STATUS_TABLE(X)                                                                     \
    X(200) X(204) X(400) X(401) X(403) X(404) X(405) X(408) X(413) X(414) X(415) X(429)          \
    X(431) X(500) X(501) X(502) X(503) X(504) X(505)

#define STATUS_ENUM(code) STATUS_##code,
enum { STATUS_OTHER, HTTP_STATUS_TABLE(STATUS_ENUM) NSTATUS };
#undef STATUS_ENUM
#define STATUS_SLOT(code) [code] = STATUS_##code,
static const uint8_t status_slot[600] = {HTTP_STATUS_TABLE(STATUS_SLOT)};
#undef STATUS_SLOT
#define STATUS_CODE(code) code,
static const int status_code[NSTATUS] = {0, HTTP_STATUS_TABLE(STATUS_CODE)};
#undef STATUS_CODE

/* metrics_check() results, indexed by the absolute value: 0 active,
 * 1 .. JWT_REASON_COUNT - 1 the reasons, METRICS_CHECK_UNKNOWN the store. */
#define NCHECKS (METRICS_CHECK_UNKNOWN + 1)

/* A counter written by one thread only (its shard's) and read by scrapes.
 * The writer's load-add-store needs no locked instruction: nobody else
 * writes, and relaxed atomics keep the scrape's read of it whole. */
typedef _Atomic uint64_t counter;

static inline void bump(counter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t get(const counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Buckets are not cumulative here (one store per observation); the count is
 * their sum, so a scrape always sees _count equal to the +Inf bucket. The sum
 * is kept in nanoseconds: whole numbers add exactly across shards. */
struct hist {
    counter bucket[NBUCKETS];
    counter sum_ns;
};

struct route_stats {
    struct hist seconds;
    counter status[NSTATUS];
};

struct shard {
    struct shard *next; /* the list of all shards; set before it is linked */
    size_t nroutes;     /* route[nroutes] is "unmatched" */
    counter checks[NCHECKS];
    counter revocations[2][2]; /* [enum metrics_revocation][admin] */
    struct hist redis;
    counter redis_errors;
    counter cache[2]; /* [hit] */
    counter limits[METRICS_NLIMITS];
    struct route_stats route[];
};

/* Every shard ever made, newest first. Shards outlive their threads: a
 * counter must never go back, so an exited thread's counts stay in the sum.
 * Threads are a fixed pool, so the list stays short. */
static pthread_mutex_t shards_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shard *shards;
static size_t route_count;
static const char *(*route_label)(size_t i);
static double start_time;

/* The initial-exec model makes the per-call TLS access one load off %fs;
 * revokd's code is never in a dlopen()ed object, where that would not do. */
#if defined(__GNUC__)
__attribute__((tls_model("initial-exec")))
#endif
static _Thread_local struct shard *mine;

static size_t shard_size(size_t nroutes)
{
    return sizeof(struct shard) + (nroutes + 1) * sizeof(struct route_stats);
}

/* A zeroed shard, cache-line aligned and padded so that no two threads'
 * counters share a line. NULL when out of memory. */
static struct shard *shard_new(size_t nroutes)
{
    size_t size = (shard_size(nroutes) + 63) & ~(size_t)63;
    struct shard *s = aligned_alloc(64, size);

    if (s == NULL)
        return NULL;
    memset(s, 0, size); /* all-zero bits is 0 for a lock-free atomic integer */
    s->nroutes = nroutes;
    return s;
}

/* The calling thread's shard, made and linked on its first update; NULL
 * when out of memory (the update is then lost, and the next one retries). */
static struct shard *shard_get(void)
{
    struct shard *s = mine;

    if (__builtin_expect(s != NULL, 1))
        return s;
    pthread_mutex_lock(&shards_lock);
    s = shard_new(route_count);
    if (s != NULL) {
        s->next = shards;
        shards = s;
    }
    pthread_mutex_unlock(&shards_lock);
    mine = s;
    return s;
}

/* When the process started, as client libraries report it: the kernel's
 * boot time plus the process's start in clock ticks. Now, when /proc says
 * nothing. */
static double process_start(void)
{
    char buf[1024];
    unsigned long long ticks = 0, btime = 0;
    long hz = sysconf(_SC_CLK_TCK);
    bool have_ticks = false, have_btime = false;
    FILE *f = fopen("/proc/self/stat", "r");

    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        /* Field 22; the command (field 2) may hold spaces and ')' itself. */
        char *p = strrchr(buf, ')');
        for (int field = 2; p != NULL && field < 22; field++)
            p = strchr(p + 1, ' ');
        have_ticks = p != NULL && sscanf(p + 1, "%llu", &ticks) == 1;
    }
    f = fopen("/proc/stat", "r");
    if (f != NULL) {
        while (!have_btime && fgets(buf, sizeof(buf), f) != NULL)
            have_btime = sscanf(buf, "btime %llu", &btime) == 1;
        fclose(f);
    }
    if (have_ticks && have_btime && hz > 0)
        return (double)btime + (double)ticks / (double)hz;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

void metrics_init(size_t nroutes, const char *(*label)(size_t i))
{
    double start = process_start();

    pthread_mutex_lock(&shards_lock);
    route_count = nroutes;
    route_label = label;
    start_time = start;
    pthread_mutex_unlock(&shards_lock);
}

static inline void observe(struct hist *h, double seconds)
{
    size_t b = 0;

    if (!(seconds > 0)) /* negative, zero or NaN */
        seconds = 0;
    else if (seconds > 1e6) /* keeps the conversion defined; no request takes 11 days */
        seconds = 1e6;
    while (b < NBOUNDS && seconds > bounds[b])
        b++;
    bump(&h->bucket[b], 1);
    /* 2^64 ns is 584 years of summed time. */
    bump(&h->sum_ns, (uint64_t)(seconds * 1e9 + 0.5));
}

void metrics_request(int route, int status, double seconds)
{
    struct shard *s = shard_get();

    if (s == NULL)
        return;
    size_t r = route >= 0 && (size_t)route < s->nroutes ? (size_t)route : s->nroutes;
    unsigned slot = status >= 0 && status < (int)sizeof(status_slot) ? status_slot[status]
                                                                      : STATUS_OTHER;
    observe(&s->route[r].seconds, seconds);
    bump(&s->route[r].status[slot], 1);
}

void metrics_check(int result)
{
    struct shard *s = shard_get();
    unsigned i = result < 0 ? 0u - (unsigned)result : (unsigned)result;

    if (i == (unsigned)JWT_ENOKEYS)
        i = METRICS_CHECK_UNKNOWN; /* the token's state is unknown, as when the store cannot answer */

    /* A result outside the table is a caller's bug, not worth a crash of
     * the request path; it is dropped, and the unit test holds the table. */
    if (s == NULL || i >= (unsigned)NCHECKS ||
        (i >= (unsigned)JWT_REASON_COUNT && i != (unsigned)METRICS_CHECK_UNKNOWN))
        return;
    bump(&s->checks[i], 1);
}

void metrics_revocation(enum metrics_revocation kind, bool admin)
{
    struct shard *s = shard_get();

    if (s == NULL || (kind != METRICS_REVOKE_TOKEN && kind != METRICS_REVOKE_SUBJECT))
        return;
    bump(&s->revocations[kind][admin], 1);
}

void metrics_redis(double seconds, bool ok)
{
    struct shard *s = shard_get();

    if (s == NULL)
        return;
    if (ok)
        observe(&s->redis, seconds);
    else
        bump(&s->redis_errors, 1);
}

void metrics_cache(bool hit)
{
    struct shard *s = shard_get();

    if (s != NULL)
        bump(&s->cache[hit], 1);
}

void metrics_limit(enum metrics_limit limit)
{
    struct shard *s = shard_get();

    if (s != NULL && limit < METRICS_NLIMITS)
        bump(&s->limits[limit], 1);
}

/* ---- rendering ---------------------------------------------------------- */

static void hist_add(struct hist *to, const struct hist *from)
{
    for (size_t b = 0; b < NBUCKETS; b++)
        bump(&to->bucket[b], get(&from->bucket[b]));
    bump(&to->sum_ns, get(&from->sum_ns));
}

/* Adds shard s into total, whose nroutes may differ from s's (a thread that
 * counted before metrics_init): routes either lacks count as unmatched. */
static void shard_add(struct shard *total, const struct shard *s)
{
    for (size_t i = 0; i < NCHECKS; i++)
        bump(&total->checks[i], get(&s->checks[i]));
    for (size_t k = 0; k < 2; k++)
        for (size_t a = 0; a < 2; a++)
            bump(&total->revocations[k][a], get(&s->revocations[k][a]));
    hist_add(&total->redis, &s->redis);
    bump(&total->redis_errors, get(&s->redis_errors));
    for (size_t h = 0; h < 2; h++)
        bump(&total->cache[h], get(&s->cache[h]));
    for (size_t i = 0; i < METRICS_NLIMITS; i++)
        bump(&total->limits[i], get(&s->limits[i]));
    for (size_t r = 0; r <= s->nroutes; r++) {
        size_t to = r < s->nroutes && r < total->nroutes ? r : total->nroutes;
        hist_add(&total->route[to].seconds, &s->route[r].seconds);
        for (size_t k = 0; k < NSTATUS; k++)
            bump(&total->route[to].status[k], get(&s->route[r].status[k]));
    }
}

/* A growing string; after a failed allocation every append is a no-op and
 * failed says so. */
struct out {
    char *buf;
    size_t len, cap;
    bool failed;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;

    if (o->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 > o->len + (size_t)n + 1 ? o->cap * 2 : o->len + (size_t)n + 1;
        char *buf = realloc(o->buf, cap);
        if (buf == NULL) {
            o->failed = true;
            return;
        }
        o->buf = buf;
        o->cap = cap;
    }
}

/* A label value, escaped as the text format wants (\\, \" and \n). */
static void put_label(struct out *o, const char *value)
{
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\\')
            put(o, "\\\\");
        else if (*p == '"')
            put(o, "\\\"");
        else if (*p == '\n')
            put(o, "\\n");
        else
            put(o, "%c", *p);
    }
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_seconds(struct out *o, uint64_t ns)
{
    put(o, "%" PRIu64 ".%09" PRIu64, ns / 1000000000, ns % 1000000000);
}

/* The samples of one histogram, with the one label lname="lvalue" when
 * lname is not NULL. */
static void put_hist(struct out *o, const char *name, const char *lname, const char *lvalue,
                     const struct hist *h)
{
    static const char *const suffix[2] = {"_sum", "_count"};
    uint64_t cumulative = 0;

    for (size_t b = 0; b < NBUCKETS; b++) {
        cumulative += get(&h->bucket[b]);
        put(o, "%s_bucket{", name);
        if (lname != NULL) {
            put(o, "%s=\"", lname);
            put_label(o, lvalue);
            put(o, "\",");
        }
        put(o, "le=\"%s\"} %" PRIu64 "\n", bound_labels[b], cumulative);
    }
    for (size_t i = 0; i < 2; i++) {
        put(o, "%s%s", name, suffix[i]);
        if (lname != NULL) {
            put(o, "{%s=\"", lname);
            put_label(o, lvalue);
            put(o, "\"}");
        }
        put(o, " ");
        if (i == 0)
            put_seconds(o, get(&h->sum_ns));
        else
            put(o, "%" PRIu64, cumulative);
        put(o, "\n");
    }
}

/* What a scrape takes from the shared state, under the lock. */
struct snapshot {
    struct shard *total; /* every shard added up */
    const char *(*label)(size_t i);
    double start_time;
};

static const char *label_of(const struct snapshot *snap, size_t r)
{
    const char *l = r < snap->total->nroutes && snap->label != NULL ? snap->label(r) : NULL;
    return l != NULL ? l : "unmatched";
}

static void render_http(struct out *o, const struct snapshot *snap)
{
    const struct shard *t = snap->total;

    family(o, "revokd_http_requests_total", "counter",
           "HTTP requests answered, by route (\"METHOD /path\", or unmatched) and status.");
    for (size_t r = 0; r <= t->nroutes; r++) {
        for (size_t k = 0; k < NSTATUS; k++) {
            uint64_t n = get(&t->route[r].status[k]);
            if (n == 0)
                continue; /* a series appears with its first request */
            put(o, "revokd_http_requests_total{route=\"");
            put_label(o, label_of(snap, r));
            if (k == STATUS_OTHER)
                put(o, "\",status=\"other\"} %" PRIu64 "\n", n);
            else
                put(o, "\",status=\"%d\"} %" PRIu64 "\n", status_code[k], n);
        }
    }
    family(o, "revokd_http_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer being queued, by route.");
    for (size_t r = 0; r <= t->nroutes; r++) {
        put_hist(o, "revokd_http_request_duration_seconds", "route", label_of(snap, r),
                 &t->route[r].seconds);
    }
}

static void render_counts(struct out *o, const struct shard *t)
{
    family(o, "revokd_checks_total", "counter",
           "Decisions of /v1/check: active, the reason a token was refused, or store_unavailable.");
    for (int i = 0; i < NCHECKS; i++) {
        const char *name = i == 0                  ? "active"
                           : i == METRICS_CHECK_UNKNOWN ? "store_unavailable"
                           : i < JWT_REASON_COUNT ? jwt_reason_name(i)
                                                   : NULL;
        if (name != NULL)
            put(o, "revokd_checks_total{result=\"%s\"} %" PRIu64 "\n", name, get(&t->checks[i]));
    }
    family(o, "revokd_revocations_total", "counter",
           "Revocations stored, by kind (token or subject) and by whom (holder or admin).");
    static const char *const kinds[2] = {"token", "subject"}, *const bys[2] = {"holder", "admin"};
    for (size_t k = 0; k < 2; k++)
        for (size_t a = 0; a < 2; a++)
            put(o, "revokd_revocations_total{kind=\"%s\",by=\"%s\"} %" PRIu64 "\n", kinds[k],
                bys[a], get(&t->revocations[k][a]));
    family(o, "revokd_redis_command_duration_seconds", "histogram",
           "Redis round trips (a command or a pipelined group) that succeeded; failures are "
           "counted in revokd_redis_errors_total.");
    put_hist(o, "revokd_redis_command_duration_seconds", NULL, NULL, &t->redis);
    family(o, "revokd_redis_errors_total", "counter",
           "Redis round trips that failed: timeout, lost connection or error reply.");
    put(o, "revokd_redis_errors_total %" PRIu64 "\n", get(&t->redis_errors));
    family(o, "revokd_token_cache_hits_total", "counter",
           "Tokens found in the verified-token cache (signature not checked again).");
    put(o, "revokd_token_cache_hits_total %" PRIu64 "\n", get(&t->cache[1]));
    family(o, "revokd_token_cache_misses_total", "counter",
           "Tokens not found in the verified-token cache.");
    put(o, "revokd_token_cache_misses_total %" PRIu64 "\n", get(&t->cache[0]));
    family(o, "revokd_http_limit_hits_total", "counter",
           "Connections refused at accept (max_connections, max_connections_per_address) or "
           "closed because their request did not arrive in time (request_timeout); requests "
           "answered 429 (auth_failures) or 503 overloaded (store_max_pending).");
    static const char *const limits[METRICS_NLIMITS] = {"max_connections", "max_connections_per_address",
                                                        "request_timeout", "auth_failures",
                                                        "store_max_pending"};
    for (size_t i = 0; i < METRICS_NLIMITS; i++)
        put(o, "revokd_http_limit_hits_total{limit=\"%s\"} %" PRIu64 "\n", limits[i],
            get(&t->limits[i]));
}

static void render_gauges(struct out *o, const struct metrics_gauges *g)
{
    family(o, "revokd_token_cache_entries", "gauge", "Verified tokens in the cache now.");
    put(o, "revokd_token_cache_entries %zu\n", g->cache_entries);
    family(o, "revokd_token_cache_capacity", "gauge",
           "Most verified tokens the cache holds (REVOKD_TOKEN_CACHE_SIZE; 0: disabled).");
    put(o, "revokd_token_cache_capacity %zu\n", g->cache_capacity);
    family(o, "revokd_store_up", "gauge",
           "1 when the store's last Redis command succeeded, else 0.");
    put(o, "revokd_store_up %d\n", g->store_up ? 1 : 0);
    family(o, "revokd_store_data_lost", "gauge",
           "1 when the readiness probe found that Redis lost its data (revocations made before "
           "are gone) since this node started, else 0.");
    put(o, "revokd_store_data_lost %d\n", g->store_data_lost ? 1 : 0);
    family(o, "revokd_http_connections", "gauge", "Open HTTP connections.");
    put(o, "revokd_http_connections %u\n", g->connections);
}

/* Reloads are rare and off the request path: two plain atomics. */
static atomic_uint_fast64_t reloads[2]; /* [ok] */

void metrics_reload(bool ok)
{
    atomic_fetch_add(&reloads[ok], 1);
}

enum key_family { KEYS_COUNT, KEYS_AGE, KEYS_STALE, KEYS_FETCHES };

struct key_render {
    struct out *o;
    enum key_family family;
    int64_t now;
};

static void put_issuer(struct out *o, const char *name, const char *iss)
{
    put(o, "%s{issuer=\"", name);
    put_label(o, iss);
    put(o, "\"");
}

static void render_issuer(void *arg, const struct keyring_status *s)
{
    struct key_render *k = arg;
    struct out *o = k->o;

    switch (k->family) {
    case KEYS_COUNT:
        put_issuer(o, "revokd_jwks_keys", s->iss);
        put(o, "} %zu\n", s->keys);
        break;
    case KEYS_AGE:
        if (s->loaded_at == 0)
            break; /* no keys yet: no age */
        put_issuer(o, "revokd_jwks_age_seconds", s->iss);
        put(o, "} %" PRId64 "\n", k->now - s->loaded_at);
        break;
    case KEYS_STALE:
        put_issuer(o, "revokd_jwks_stale", s->iss);
        put(o, "} %d\n", s->stale ? 1 : 0);
        break;
    case KEYS_FETCHES:
        for (size_t r = 0; s->fetches != NULL && r < JWKS_FETCH_NRESULTS; r++) {
            put_issuer(o, "revokd_jwks_fetches_total", s->iss);
            put(o, ",result=\"%s\"} %" PRIu64 "\n", jwks_fetch_result_name((enum jwks_fetch_result)r),
                s->fetches[r]);
        }
        break;
    }
}

static void render_keys(struct out *o, struct keyring *keys)
{
    static const char *const families[][3] = {
        [KEYS_COUNT] = {"revokd_jwks_keys", "gauge", "Signature keys in force, by issuer."},
        [KEYS_AGE] = {"revokd_jwks_age_seconds", "gauge",
                      "Seconds since the keys in force were read or fetched, by issuer."},
        [KEYS_STALE] = {"revokd_jwks_stale", "gauge",
                        "1 when the last fetch of an issuer's key set failed and older keys are in force."},
        [KEYS_FETCHES] = {"revokd_jwks_fetches_total", "counter",
                          "Fetches of remote key sets, by issuer and result."},
    };
    struct key_render k = {o, KEYS_COUNT, (int64_t)time(NULL)};

    for (size_t f = 0; keys != NULL && f < sizeof(families) / sizeof(families[0]); f++) {
        family(o, families[f][0], families[f][1], families[f][2]);
        k.family = (enum key_family)f;
        keyring_each(keys, render_issuer, &k);
    }
    family(o, "revokd_reloads_total", "counter",
           "Reloads (SIGHUP, POST /v1/admin/reload), by result: ok, or failed (nothing changed).");
    put(o, "revokd_reloads_total{result=\"ok\"} %" PRIu64 "\n", (uint64_t)atomic_load(&reloads[1]));
    put(o, "revokd_reloads_total{result=\"failed\"} %" PRIu64 "\n", (uint64_t)atomic_load(&reloads[0]));
}

/* The event streams of GET /v1/events (event_stream.h). */
static void render_feed(struct out *o, const struct event_stream_stats *f)
{
    if (f == NULL)
        return;
    family(o, "revokd_feed_consumers", "gauge", "Event streams (GET /v1/events, text/event-stream) open.");
    put(o, "revokd_feed_consumers %u\n", f->consumers);
    family(o, "revokd_feed_consumers_ended_total", "counter",
           "Event streams ended, by why: closed by the consumer, cut_off (it read too slowly), store_error, "
           "reloaded (the keys were), stopped.");
    for (int e = 0; e < EVENT_STREAM_NENDS; e++)
        put(o, "revokd_feed_consumers_ended_total{why=\"%s\"} %" PRIu64 "\n",
            event_stream_end_name((enum event_stream_end)e), f->ends[e]);
    family(o, "revokd_feed_events_total", "counter", "Revocation events queued to event streams, every consumer counted.");
    put(o, "revokd_feed_events_total %" PRIu64 "\n", f->events);
}

/* An edge's view of central (store_edge.h): how long since it heard from
 * it, what it holds, how its polls and forwarded revocations went. */
static void render_edge(struct out *o, const struct store_edge_stats *e)
{
    if (e == NULL)
        return;
    family(o, "revokd_edge_lag_seconds", "gauge",
           "Seconds since central was last heard from (a poll of its feed answered, with events or none); "
           "since start when never.");
    put(o, "revokd_edge_lag_seconds %.3f\n", (double)e->lag_ms / 1000);
    family(o, "revokd_edge_stale", "gauge",
           "1 when checks answer 503 feed_stale: the feed not replayed yet, central not heard from within "
           "REVOKD_EDGE_MAX_STALENESS_MS, a forwarded revocation not read back yet, or no room for more.");
    put(o, "revokd_edge_stale %d\n", e->stale ? 1 : 0);
    family(o, "revokd_edge_replayed", "gauge", "1 once the feed was read to its end after start.");
    put(o, "revokd_edge_replayed %d\n", e->replayed ? 1 : 0);
    family(o, "revokd_edge_revocations", "gauge", "Revocations held, by kind (token or subject).");
    put(o, "revokd_edge_revocations{kind=\"token\"} %zu\n", e->jti);
    put(o, "revokd_edge_revocations{kind=\"subject\"} %zu\n", e->sub);
    family(o, "revokd_edge_memory_bytes", "gauge",
           "Memory the revocations held take (their table); divided by revokd_edge_revocations, the cost of one.");
    put(o, "revokd_edge_memory_bytes %zu\n", e->bytes);
    family(o, "revokd_edge_feed_polls_total", "counter",
           "Pages of central's feed read, and deliveries of its stream (events or a heartbeat), by result.");
    for (size_t r = 0; r < EDGE_FEED_NRESULTS; r++)
        put(o, "revokd_edge_feed_polls_total{result=\"%s\"} %" PRIu64 "\n",
            edge_feed_result_name((enum edge_feed_result)r), e->feed.polls[r]);
    family(o, "revokd_edge_events_total", "counter", "Events of central's feed applied, by kind (token or subject).");
    put(o, "revokd_edge_events_total{kind=\"token\"} %" PRIu64 "\n", e->feed.events[EDGE_FEED_JTI]);
    put(o, "revokd_edge_events_total{kind=\"subject\"} %" PRIu64 "\n", e->feed.events[EDGE_FEED_SUBJECT]);
    family(o, "revokd_edge_forwards_total", "counter",
           "Revocations forwarded to central, by result: ok (accepted and read back), unsynced (accepted, not "
           "read back in time), refused (an error status, relayed), unavailable (no answer).");
    for (size_t r = 0; r < EDGE_FEED_NFORWARDS; r++)
        put(o, "revokd_edge_forwards_total{result=\"%s\"} %" PRIu64 "\n",
            edge_feed_forward_name((enum edge_feed_forward_result)r), e->feed.forwards[r]);
}

static void render_process(struct out *o, const struct snapshot *snap)
{
    family(o, "revokd_build_info", "gauge", "Always 1; the version is in the label.");
    put(o, "revokd_build_info{version=\"");
    put_label(o, REVOKD_VERSION);
    put(o, "\"} 1\n");
    family(o, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
    put(o, "process_start_time_seconds %.2f\n", snap->start_time);

    /* statm's second field: resident pages. Left out when /proc is not there. */
    unsigned long long size, resident;
    long page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    bool ok = f != NULL && fscanf(f, "%llu %llu", &size, &resident) == 2 && page > 0;
    if (f != NULL)
        fclose(f);
    if (ok) {
        family(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        put(o, "process_resident_memory_bytes %llu\n", resident * (unsigned long long)page);
    }
}

char *metrics_render(const struct metrics_gauges *g)
{
    struct out o = {.buf = malloc(16384), .cap = 16384};
    struct snapshot snap;

    assert(g != NULL);
    pthread_mutex_lock(&shards_lock);
    snap.total = shard_new(route_count);
    snap.label = route_label;
    snap.start_time = start_time;
    for (const struct shard *s = shards; snap.total != NULL && s != NULL; s = s->next)
        shard_add(snap.total, s);
    pthread_mutex_unlock(&shards_lock);
    if (o.buf == NULL || snap.total == NULL)
        goto fail;
    o.buf[0] = '\0';
    render_http(&o, &snap);
    render_counts(&o, snap.total);
    render_gauges(&o, g);
    render_keys(&o, g->keys);
    render_edge(&o, g->edge);
    render_feed(&o, g->feed);
    render_process(&o, &snap);
    if (o.failed)
        goto fail;
    free(snap.total);
    return o.buf;

fail:
    free(snap.total);
    free(o.buf);
    return NULL;
}
