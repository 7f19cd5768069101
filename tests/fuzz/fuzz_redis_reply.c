/* fuzz_redis_reply.c - the Redis store's reading of Redis's replies
 * (store_redis_conn.c): MGET for a check, SET and the revoke-all script for
 * revocations, WAIT for replicas, ROLE, SET and the data-loss marker for
 * readiness, XRANGE for a read of the revocation log (GET /v1/events) and
 * XREAD BLOCK for the blocking read that follows it (event_stream.c), AUTH
 * and SELECT on a new link, and every reply that is not what was asked, down
 * to hiredis's own reader.
 *
 * The store is revokd's own, as the daemon builds it (store_redis_new),
 * pointed at a Unix socket in a temporary directory where this target plays
 * Redis: each command the store sends is answered with the next reply of the
 * input, on the same loop, so the replies arrive by the real path (the
 * worker's loop, the hiredis adapter, the callbacks) and no network is used.
 * The input:
 *
 *   byte 0  bit 0: a password (AUTH), bit 1: with a user name, bit 2:
 *           database 2 (SELECT), bits 3-4: replicas to WAIT for, bit 5:
 *           checks name a subject too (MGET of two keys), bit 6: kind 3
 *           reads the log (3 entries at most, after an id) instead of
 *           probing, bit 7: that read blocks (XREAD BLOCK; else XRANGE,
 *           without waiting)
 *   byte 1  bits 6-7: 1 + (this % 3) calls, made at once; bits 0-1, 2-3,
 *           4-5: each one's kind: check, revoke a jti, revoke all, probe
 *           (or read the log)
 *   rest    the replies, in RESP; each complete one answers one command,
 *           in the order the commands arrive. When a command finds no
 *           complete reply left, what remains (a cut reply, or bytes that
 *           are not RESP) is sent and the connection closed: the calls still
 *           open then fail, as when Redis goes away.
 *
 * A fresh store and connection per input: nothing (the marker it adopted,
 * a link closed) carries over.
 *
 * Asserts: what store.h promises of every answer: each call answered once,
 * never inside the call; a known result, a failure with a reason, data lost
 * only from a probe, ready only as a primary; a read of the log with at
 * most the entries asked for, each whole (an id, a jti or a subject with
 * its cutoff, an iss and a by; strings within STORE_BY_MAX) and each one
 * event_json() makes a JSON object of, as GET /v1/events does; and the
 * store sends RESP and opens no more connections than it should. Not
 * checked: that the entries' ids are canonical and in order, which Redis's
 * stream ids are and the store takes as they come. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "revokd/config.h"
#include "revokd/event.h"
#include "revokd/loop.h"
#include "revokd/store.h"
#include "revokd/store_redis.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CALLS 3
#define MAX_REPLIES 64
#define MAX_ELEMENTS 65536
#define MAX_PEERS 4   /* connections the store opens per input: two links, and room to spare */
#define ROUNDS 2000   /* loop rounds the calls may take, none of them waiting */
#define LOG_AFTER "1767225600123-0"

/* One connection the store opened, as the server sees it. */
struct peer {
    int fd;
    redisReader *commands; /* what the store sent, read as RESP */
    bool closed;           /* our side is shut: no more replies */
};

static struct {
    char dir[PATH_MAX], sock[PATH_MAX + 32];
    int listener;
    struct loop *loop;
    /* This input's replies: [at[i], at[i + 1]) is reply i; the tail, [at[n], end), follows the last. */
    const char *replies;
    size_t at[MAX_REPLIES + 1], n, next, end;
    bool tail_sent;
    struct peer peers[MAX_PEERS];
    size_t npeers;
} fx;

/* What the calls came to. */
struct answer {
    bool done;
    struct store_result res;
    enum store_op op;
    int limit; /* READ_LOG */
};

static void cleanup(void)
{
    loop_free(fx.loop);
    close(fx.listener);
    unlink(fx.sock);
    rmdir(fx.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    (void)argc;
    (void)argv;

    /* As the daemon does (main.c): a write to a closed connection is an error, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    fuzz_make_temp_dir(fx.dir, sizeof(fx.dir), "fuzz-redis");
    snprintf(fx.sock, sizeof(fx.sock), "%s/redis.sock", fx.dir);
    fuzz_check(strlen(fx.sock) < sizeof(sun.sun_path), "the socket's path is too long: set TMPDIR");
    memcpy(sun.sun_path, fx.sock, strlen(fx.sock) + 1);
    fx.listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    fuzz_check(fx.listener >= 0 && bind(fx.listener, (struct sockaddr *)&sun, sizeof(sun)) == 0 &&
                   listen(fx.listener, 16) == 0,
               "cannot listen on the socket");
    fuzz_check((fx.loop = loop_new()) != NULL, "cannot make a loop");
    atexit(cleanup);
    return 0;
}

/* Whether data holds an array header ("*N") longer than MAX_ELEMENTS.
 * hiredis 0.14 allocates an array's element pointers as soon as it reads
 * its length, before any element arrives: "*1000000000" alone asks for
 * 8 GB, in hiredis, whoever reads it. Such an input is not sent (see
 * README.md); a '*' inside a bulk string may skip an input for nothing. */
static bool huge_array(const char *data, size_t size)
{
    for (const char *p = data; (p = memchr(p, '*', size - (size_t)(p - data))) != NULL; p++) {
        long n = 0;
        for (const char *q = p + 1; q < data + size && *q >= '0' && *q <= '9' && n <= MAX_ELEMENTS; q++)
            n = n * 10 + (*q - '0');
        if (n > MAX_ELEMENTS)
            return true;
    }
    return false;
}

/* Splits the input's replies where hiredis's reader ends each. */
static void split_replies(const char *data, size_t size)
{
    redisReader *r = redisReaderCreate();
    void *reply;

    fuzz_check(r != NULL, "out of memory");
    fx.replies = data;
    fx.end = size;
    fx.n = fx.next = 0;
    fx.at[0] = 0;
    fx.tail_sent = false;
    if (size > 0 && redisReaderFeed(r, data, size) == REDIS_OK) {
        while (fx.n < MAX_REPLIES && redisReaderGetReply(r, &reply) == REDIS_OK && reply != NULL) {
            freeReplyObject(reply);
            /* Where the reader stands in the input: what it was fed, less what it holds unread. */
            fx.at[++fx.n] = size - (r->len - r->pos);
        }
    }
    /* Past MAX_REPLIES, the rest is not sent: it may hold whole replies, and
     * a reply nobody asked for is not something Redis sends. */
    if (fx.n == MAX_REPLIES)
        fx.end = fx.at[fx.n];
    redisReaderFree(r);
}

static void send_all(struct peer *p, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = send(p->fd, buf, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) /* the store closed its end: it wants no more */
            return;
        buf += w;
        len -= (size_t)w;
    }
}

/* One command arrived on p: the next reply answers it, or the rest of the
 * input and the end of the connection do. */
static void answer(struct peer *p)
{
    if (p->closed)
        return;
    if (fx.next < fx.n) {
        send_all(p, fx.replies + fx.at[fx.next], fx.at[fx.next + 1] - fx.at[fx.next]);
        fx.next++;
        return;
    }
    if (!fx.tail_sent) {
        send_all(p, fx.replies + fx.at[fx.n], fx.end - fx.at[fx.n]);
        fx.tail_sent = true;
    }
    shutdown(p->fd, SHUT_WR);
    p->closed = true;
}

/* Plays Redis for one round: takes new connections, reads what they sent,
 * answers each whole command. */
static void serve(void)
{
    int fd;
    char buf[4096];

    while ((fd = accept4(fx.listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        fuzz_check(fx.npeers < MAX_PEERS, "more connections than the store should open");
        struct peer *p = &fx.peers[fx.npeers++];
        *p = (struct peer){.fd = fd, .commands = redisReaderCreate()};
        fuzz_check(p->commands != NULL, "out of memory");
    }
    for (size_t i = 0; i < fx.npeers; i++) {
        struct peer *p = &fx.peers[i];
        ssize_t n;
        void *command;
        while ((n = read(p->fd, buf, sizeof(buf))) > 0) {
            fuzz_check(redisReaderFeed(p->commands, buf, (size_t)n) == REDIS_OK, "out of memory");
            int rc;
            while ((rc = redisReaderGetReply(p->commands, &command)) == REDIS_OK && command != NULL) {
                freeReplyObject(command);
                answer(p);
            }
            fuzz_check(rc == REDIS_OK, "the store sent a command that is not RESP");
        }
    }
}

/* A string of an entry: there, and within what the store reads. */
static void check_entry_string(const char *s, const char *what)
{
    fuzz_check(s != NULL && strlen(s) < STORE_BY_MAX, what);
}

/* What store.h promises of a read of the log, checked in done(): its
 * entries live only during the call. */
static void check_log(const struct answer *a, const struct store_result *res)
{
    if (res->rc != 0) {
        fuzz_check(res->n_events == 0, "entries with a failure");
        return;
    }
    fuzz_check(res->n_events <= (size_t)a->limit, "more entries than asked for");
    fuzz_check(res->n_events == 0 || res->events != NULL, "entries that are not there");
    for (size_t i = 0; i < res->n_events; i++) {
        const struct store_event *e = &res->events[i];
        fuzz_check(memchr(e->id, '\0', sizeof(e->id)) != NULL && e->id[0] != '\0', "an entry without an id");
        check_entry_string(e->iss, "an entry without an iss");
        check_entry_string(e->by, "an entry without a by");
        if (e->reason != NULL)
            check_entry_string(e->reason, "a reason too long");
        if (e->kind == STORE_EVENT_JTI) {
            check_entry_string(e->jti, "a jti entry without a jti");
            fuzz_check(e->sub == NULL, "a jti entry with a sub");
        } else {
            fuzz_check(e->kind == STORE_EVENT_SUBJECT, "an entry of no known kind");
            check_entry_string(e->sub, "a subject entry without a sub");
            fuzz_check(e->jti == NULL, "a subject entry with a jti");
        }
        /* As GET /v1/events writes it into a page. */
        char *json = event_json(e);
        fuzz_check(json != NULL, "an entry event_json() cannot write");
        cJSON *o = cJSON_Parse(json);
        fuzz_check(cJSON_IsObject(o), "an entry event_json() writes as something else than a JSON object");
        fuzz_check(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "id")), "an entry written without its id");
        cJSON_Delete(o);
        free(json);
    }
}

static void done(void *arg, const struct store_result *res)
{
    struct answer *a = arg;

    fuzz_check(!a->done, "a call answered twice");
    a->done = true;
    a->res = *res;
    if (a->op == STORE_READ_LOG)
        check_log(a, res);
    /* Valid only during the call. */
    a->res.events = NULL;
}

/* What store.h promises of every answer. */
static void check_answer(const struct answer *a)
{
    fuzz_check(a->done, "a call never answered");
    fuzz_check(a->res.rc == 0 || a->res.rc == -STORE_EUNAVAILABLE || a->res.rc == -STORE_ENOTREPLICATED ||
                   a->res.rc == -STORE_EDATALOST,
               "an unknown result");
    fuzz_check(a->res.rc == 0 || (a->res.error != NULL && a->res.error[0] != '\0'), "a failure without a reason");
    fuzz_check(a->res.rc != -STORE_EDATALOST || (a->op == STORE_PROBE && a->res.status.data_lost), "data lost outside a probe");
    /* Not checked: -STORE_ENOTREPLICATED for a check. store.h has it for
     * writes only, but any error reply starting "NOREPLICAS" gives it, to a
     * check's MGET too, which Redis never refuses so; the check still fails
     * closed. */
    if (a->op == STORE_PROBE) {
        const struct store_status *st = &a->res.status;
        fuzz_check(memchr(st->role, '\0', sizeof(st->role)) != NULL, "a role that is not a string");
        /* Ready only as a primary. */
        fuzz_check(a->res.rc != 0 || strcmp(st->role, "master") == 0, "ready without a primary");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum store_op ops[] = {STORE_IS_REVOKED, STORE_REVOKE_JTI, STORE_REVOKE_ALL, STORE_PROBE};
    static const enum store_op logs[] = {STORE_IS_REVOKED, STORE_REVOKE_JTI, STORE_REVOKE_ALL, STORE_READ_LOG};
    struct answer answers[MAX_CALLS] = {0};
    char err[256];

    if (size < 2)
        return 0;
    unsigned flags = data[0], calls = 1 + (unsigned)(data[1] >> 6) % MAX_CALLS;
    struct config_redis redis = {.unix_path = fx.sock};
    struct config_endpoints no_sentinels = {.n = 0};
    if (flags & 1) {
        redis.password = "fuzz-password";
        redis.username = flags & 2 ? "revokd" : NULL;
    }
    redis.db = flags & 4 ? 2 : 0;
    struct store_redis_opts opts = {
        .redis = &redis,
        .sentinels = &no_sentinels,
        .master = "mymaster",
        .prefix = "revokd:",
        .timeout_ms = 10000, /* never reached: every command is answered or its link closed */
        .max_pending = 1000, /* the daemon's default (REVOKD_STORE_MAX_PENDING): three calls never
                                reach it, so none is refused -STORE_EOVERLOADED before it is sent */
        .min_replicas = (int)(flags >> 3) & 3,
        .replication_timeout_ms = 500,
        .role_check_ms = 1000,
    };

    if (huge_array((const char *)data + 2, size - 2))
        return 0;
    split_replies((const char *)data + 2, size - 2);
    fx.npeers = 0;
    struct store *store = store_redis_new(&opts, err, sizeof(err));
    fuzz_check(store != NULL, err);
    struct store_conn *conn = store_conn_new(store, fx.loop);
    fuzz_check(conn != NULL, "out of memory");

    for (unsigned i = 0; i < calls; i++) {
        struct store_call call = {
            .op = (flags & 64 ? logs : ops)[(data[1] >> (2 * i)) & 3],
            .iss = "https://issuer.fuzz.test",
            .jti = "jti-1",
            .sub = flags & 32 ? "alice" : NULL,
            .iat = 1767225600,
            .expires_at = 1767229200,
            .reason = i % 2 ? "compromised" : NULL,
            .cutoff = 1767225600,
            .ttl = 3600,
            .after = LOG_AFTER,
            .limit = 3,
            /* XRANGE without a wait: one that waits would park and read again
             * later, and this loop never sleeps. XREAD BLOCK is sent once, its
             * wait Redis's, and answered by the next reply like any command. */
            .wait_ms = flags & 128 ? 1000 : 0,
            .block = (flags & 128) != 0,
        };
        if (call.op != STORE_IS_REVOKED && call.sub == NULL)
            call.sub = "alice";
        answers[i].op = call.op;
        answers[i].limit = call.limit;
        store_call(conn, &call, done, &answers[i]);
        fuzz_check(!answers[i].done, "answered inside the call");
    }

    for (int round = 0; round < ROUNDS; round++) {
        bool all = true;
        for (unsigned i = 0; i < calls; i++)
            all = all && answers[i].done;
        if (all)
            break;
        loop_poll(fx.loop, 0);
        serve();
    }
    for (unsigned i = 0; i < calls; i++)
        check_answer(&answers[i]);

    store_conn_free(conn);
    store_free(store);
    /* The links are gone: nothing of this input may answer the next one. */
    int fd;
    while ((fd = accept4(fx.listener, NULL, NULL, SOCK_CLOEXEC)) >= 0)
        close(fd);
    for (size_t i = 0; i < fx.npeers; i++) {
        close(fx.peers[i].fd);
        redisReaderFree(fx.peers[i].commands);
    }
    return 0;
}
