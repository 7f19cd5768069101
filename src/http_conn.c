/* http_conn.c - client connections beside libmicrohttpd: request deadlines,
 * connection limits, lingering closes; see http_conn.h. */
#include "http_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received (glibc's lacks it) */

#include "revokd/addr_limit.h"
#include "revokd/log.h"
#include "revokd/loop.h"
#include "revokd/metrics.h"

/* How often a worker looks at its connections' deadlines. */
#define SWEEP_MS 500
/* After an answer sent before the body was read, how long the rest of the
 * body is read and dropped before the connection is closed for good. */
#define LINGER_MS 5000

struct http_conn {
    struct http_conns *set;
    struct http_conn *prev, *next;
    int fd;
    enum { CONN_RECEIVING, CONN_HANDLED, CONN_IDLE } state;
    int64_t since_ms;    /* RECEIVING: when the request began */
    uint64_t idle_bytes; /* IDLE: bytes received when the sweep first looked */
    bool idle_seen;      /* IDLE: idle_bytes is set */
    bool counted;        /* counted in the per-address table */
    bool linger;
    struct sockaddr_storage addr;
};

/* A connection libmicrohttpd closed after an early answer: a duplicate of
 * its socket, read and dropped until the client closes or LINGER_MS. */
struct lingerer {
    struct loop_watch watch; /* first: on_linger_event finds it from the watch */
    struct http_conns *set;
    struct lingerer *next;
    int64_t until_ms;
    bool counted;
    struct sockaddr_storage addr;
};

struct http_conns {
    struct loop *loop;
    struct http_conn_limits *limits;
    int64_t request_timeout_ms;
    struct http_conn *conns;
    struct lingerer *lingering;
    struct loop_timer sweep;
    /* The place http_conn_admit() reserved for the connection being
     * accepted; one left over means that accept failed. */
    bool reserved;
    struct sockaddr_storage reserved_addr;
    int64_t logged_ms[METRICS_NLIMITS]; /* the last log line for each limit */
};

/* The client's address as text, for a log line. */
static const char *addr_text(const struct sockaddr_storage *ss, char *out, size_t size)
{
    const void *a = ss->ss_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                                              : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
    if (inet_ntop(ss->ss_family, a, out, (socklen_t)size) == NULL)
        snprintf(out, size, "unknown");
    return out;
}

/* Counts a limit's hit, and logs it at most once a second per worker: a
 * flood of refused connections must not become a flood of log lines. */
static void limit_hit(struct http_conns *cs, enum metrics_limit limit, const struct sockaddr_storage *addr)
{
    static const char *const names[METRICS_NLIMITS] = {
        "REVOKD_MAX_CONNECTIONS", "REVOKD_MAX_CONNECTIONS_PER_ADDRESS", "REVOKD_REQUEST_TIMEOUT"};
    int64_t now = loop_now_ms();
    char text[INET6_ADDRSTRLEN];

    metrics_limit(limit);
    if (now - cs->logged_ms[limit] < 1000 || !log_enabled(LOG_WARN))
        return;
    cs->logged_ms[limit] = now;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "limit", names[limit]);
    cJSON_AddStringToObject(f, "client", addr_text(addr, text, sizeof(text)));
    log_event(LOG_WARN, limit == METRICS_LIMIT_REQUEST_TIME ? "request_timeout" : "connection_refused", f);
}

static void forget(struct http_conns *cs, bool counted, const struct sockaddr_storage *addr)
{
    if (counted)
        addr_limit_release(cs->limits->per_address, (const struct sockaddr *)addr);
    atomic_fetch_sub(&cs->limits->open, 1);
}

void http_conn_settle(struct http_conns *cs)
{
    if (cs->reserved)
        forget(cs, true, &cs->reserved_addr);
    cs->reserved = false;
}

bool http_conn_admit(struct http_conns *cs, const struct sockaddr *addr, socklen_t len)
{
    struct http_conn_limits *lim = cs->limits;
    unsigned open = atomic_load(&lim->open);
    enum metrics_limit limit = METRICS_LIMIT_CONNECTIONS;

    http_conn_settle(cs);
    memset(&cs->reserved_addr, 0, sizeof(cs->reserved_addr));
    memcpy(&cs->reserved_addr, addr, len < sizeof(cs->reserved_addr) ? len : sizeof(cs->reserved_addr));
    while (open < lim->max_open) {
        if (!atomic_compare_exchange_weak(&lim->open, &open, open + 1))
            continue;
        if (addr_limit_take(lim->per_address, addr)) {
            cs->reserved = true;
            return true;
        }
        atomic_fetch_sub(&lim->open, 1);
        limit = METRICS_LIMIT_PER_ADDRESS;
        break;
    }
    limit_hit(cs, limit, &cs->reserved_addr);
    return false;
}

struct http_conn *http_conn_open(struct http_conns *cs, int fd)
{
    /* Every connection comes through http_conn_admit(). */
    bool counted = cs->reserved;
    struct http_conn *c = calloc(1, sizeof(*c));

    if (!counted)
        atomic_fetch_add(&cs->limits->open, 1);
    cs->reserved = false;
    if (c == NULL) {
        if (counted)
            addr_limit_release(cs->limits->per_address, (const struct sockaddr *)&cs->reserved_addr);
        return NULL;
    }
    c->set = cs;
    c->fd = fd;
    c->state = CONN_RECEIVING;
    c->since_ms = loop_now_ms();
    c->addr = cs->reserved_addr;
    c->counted = counted;
    c->next = cs->conns;
    if (cs->conns != NULL)
        cs->conns->prev = c;
    cs->conns = c;
    return c;
}

static void linger_end(struct lingerer *lg)
{
    struct http_conns *cs = lg->set;

    for (struct lingerer **p = &cs->lingering; *p != NULL; p = &(*p)->next) {
        if (*p == lg) {
            *p = lg->next;
            break;
        }
    }
    loop_unwatch(cs->loop, &lg->watch);
    close(lg->watch.fd);
    forget(cs, lg->counted, &lg->addr);
    free(lg);
}

static void on_linger_event(struct loop_watch *lw, uint32_t events)
{
    struct lingerer *lg = (struct lingerer *)lw;
    static char sink[16384]; /* nobody reads what is dropped here */
    ssize_t n;
    (void)events;

    while ((n = read(lw->fd, sink, sizeof(sink))) > 0) {
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
        linger_end(lg);
}

/* libmicrohttpd is about to close c's socket, after an answer that did not
 * wait for the body (it has shut down the sending side, so the client has
 * the whole answer and then end of file). A duplicate of the socket keeps
 * it open while what the client still sends is read and dropped. Returns 0
 * when the duplicate now owns c's counts. */
static int linger_start(struct http_conn *c)
{
    struct http_conns *cs = c->set;
    struct lingerer *lg = calloc(1, sizeof(*lg));
    int fd = lg != NULL ? fcntl(c->fd, F_DUPFD_CLOEXEC, 0) : -1;

    if (fd < 0) {
        free(lg);
        return -1;
    }
    *lg = (struct lingerer){.watch = {.fd = fd, .on_event = on_linger_event},
                            .set = cs,
                            .next = cs->lingering,
                            .until_ms = loop_now_ms() + LINGER_MS,
                            .counted = c->counted,
                            .addr = c->addr};
    if (loop_watch(cs->loop, &lg->watch, EPOLLIN) < 0) {
        close(fd);
        free(lg);
        return -1;
    }
    cs->lingering = lg;
    return 0;
}

void http_conn_close(struct http_conns *cs, struct http_conn *c)
{
    if (c == NULL) {
        atomic_fetch_sub(&cs->limits->open, 1);
        return;
    }
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        cs->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (!c->linger || linger_start(c) < 0)
        forget(cs, c->counted, &c->addr);
    free(c);
}

const struct sockaddr_storage *http_conn_peer(const struct http_conn *c)
{
    return &c->addr;
}

void http_conn_request_begins(struct http_conn *c)
{
    /* The request line is here before the sweep saw its first byte. */
    if (c->state == CONN_IDLE) {
        c->state = CONN_RECEIVING;
        c->since_ms = loop_now_ms();
    }
}

void http_conn_request_whole(struct http_conn *c)
{
    c->state = CONN_HANDLED;
}

void http_conn_request_done(struct http_conn *c)
{
    /* The next request's deadline runs from its first byte. */
    c->state = CONN_IDLE;
    c->idle_seen = false;
}

void http_conn_linger(struct http_conn *c)
{
    c->linger = true;
}

/* The bytes the kernel has received on fd, or -1. */
static int64_t bytes_received(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
        return -1;
    return (int64_t)ti.tcpi_bytes_received;
}

/* Every SWEEP_MS: a request that has not arrived whole REVOKD_REQUEST_TIMEOUT
 * after its first byte loses its connection (shut down here; libmicrohttpd
 * sees the end of the stream and closes it), an idle connection whose next
 * request has begun gets that request's deadline, and lingering closes that
 * ran out of time end. */
static void on_sweep(struct loop_timer *t)
{
    struct http_conns *cs = (struct http_conns *)((char *)t - offsetof(struct http_conns, sweep));
    int64_t now = loop_now_ms();

    for (struct http_conn *c = cs->conns; c != NULL; c = c->next) {
        if (c->state == CONN_IDLE) {
            int64_t n = bytes_received(c->fd);
            if (n >= 0 && c->idle_seen && (uint64_t)n != c->idle_bytes) {
                c->state = CONN_RECEIVING;
                c->since_ms = now;
            } else if (n >= 0) {
                c->idle_bytes = (uint64_t)n;
                c->idle_seen = true;
            }
        } else if (c->state == CONN_RECEIVING && now - c->since_ms >= cs->request_timeout_ms) {
            shutdown(c->fd, SHUT_RDWR);
            c->state = CONN_HANDLED; /* once */
            limit_hit(cs, METRICS_LIMIT_REQUEST_TIME, &c->addr);
        }
    }
    for (struct lingerer *lg = cs->lingering, *next; lg != NULL; lg = next) {
        next = lg->next;
        if (now >= lg->until_ms)
            linger_end(lg);
    }
    loop_timer_arm(cs->loop, &cs->sweep, SWEEP_MS);
}

struct http_conns *http_conn_set_new(struct loop *loop, struct http_conn_limits *limits, int request_timeout)
{
    struct http_conns *cs = calloc(1, sizeof(*cs));

    if (cs == NULL)
        return NULL;
    cs->loop = loop;
    cs->limits = limits;
    cs->request_timeout_ms = (int64_t)request_timeout * 1000;
    cs->sweep.on_timer = on_sweep;
    loop_timer_arm(loop, &cs->sweep, SWEEP_MS);
    return cs;
}

void http_conn_set_free(struct http_conns *cs)
{
    if (cs == NULL)
        return;
    http_conn_settle(cs);
    while (cs->lingering != NULL)
        linger_end(cs->lingering);
    loop_timer_disarm(cs->loop, &cs->sweep);
    free(cs);
}
