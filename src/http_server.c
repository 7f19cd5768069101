/* http_server.c - libmicrohttpd glue: read the request, bound its body,
 * hand it to the router (request.h), hold it while it waits, send the
 * reply, log the request line.
 *
 * Each worker thread runs one libmicrohttpd daemon (its own listening socket,
 * SO_REUSEPORT), its connection to the store and its inbox from the
 * signature pool on one loop (loop.h). No request ever blocks a thread, and
 * store round trips are shared by all the requests of a round.
 *
 * How a request waits, for the store or for the signature pool: it is first
 * "parked". It keeps its place in libmicrohttpd, which calls the handler
 * again in every round until the handler queues a reply (0.9.75 keeps a
 * request with no reply on its list of ready connections; the API allows
 * the repeated calls). That costs no system call, whereas suspending and
 * resuming costs two epoll_ctl calls per request, measured at 15% of a busy
 * loop's time. A request still waiting after PARK_MS is suspended, which
 * costs no more calls of the handler. libmicrohttpd may close a waiting
 * request's connection (the client went away) and free its head: so the
 * Authorization header and the query are copied into the exchange, where a
 * pool thread may read the token, and the exchange lives until the request
 * is released (request.h).
 *
 * What libmicrohttpd does not bound (request deadlines, connections per
 * address, lingering closes) is http_conn.c's.
 *
 * REVOKD_ADMIN_LISTEN adds one more worker, the same code on its own loop,
 * thread and socket, whose requests are marked as the admin listener's
 * (request.h; router.c decides what each listener serves). Admin traffic is
 * a trickle, so one thread is enough, and a flood on the main port does not
 * delay it; the limits on connections are shared. TLS (http_tls.h) is a
 * listener's own: each daemon of a listener answers its handshakes with the
 * certificate in force for it. */
#include "revokd/http_server.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <openssl/rand.h>

#include "http_conn.h"
#include "http_tls.h"
#include "revokd/addr_limit.h"
#include "revokd/event_stream.h"
#include "revokd/log.h"
#include "revokd/loop.h"
#include "revokd/metrics.h"
#include "revokd/request.h"

/* A connection's memory holds the request head, whose largest part is the
 * bearer token, and the reply head; libmicrohttpd wipes all of it for every
 * request, so its 32 KiB default would cost 32 MB per 1,000 connections.
 * Beyond the token it holds HEAD_HEADROOM for the request's other headers
 * and REPLY_RESERVE for the reply head (under 600 bytes). A longer head
 * than the token plus HEAD_HEADROOM is refused here, with a JSON 431.
 * libmicrohttpd itself refuses only a head that fills the whole memory (an
 * HTML 431, also counting 64 bytes per header line); in the 200-300 bytes
 * just below that, the head has taken the reply's room and the connection
 * closes unanswered, which no setting of 0.9.75 prevents. */
#define HEAD_HEADROOM 1024
#define REPLY_RESERVE 1024
/* The longest a request stays parked before it is suspended, and the
 * longest the loop waits for the store while libmicrohttpd, seeing the
 * parked requests, asks for another round at once (it may also have a
 * reply to finish writing, which then waits at most this long). */
#define PARK_MS 1
/* Every 503 says when to come back (unless its reply already does): the
 * store unavailable, overloaded or short of replicas, keys not fetched yet,
 * the node shutting down. One second, the least the header can say: revokd
 * moves on faster than that by itself (a lost Redis connection is retried
 * after 100 ms, a stalled one given up after REVOKD_REDIS_TIMEOUT_MS, 500 ms
 * by default, and a full link empties as its replies come), so a client
 * coming back then finds the present state, while one that retried at once
 * would only add to the load behind the 503. */
#define RETRY_AFTER_503 "1"
/* The most an event stream's read is asked for at a time, and its socket's
 * send buffer (Linux doubles it). */
#define STREAM_BLOCK 4096
#define STREAM_SNDBUF (128 * 1024)

struct worker {
    struct http_server *srv;
    pthread_t thread;
    bool started, quiesced;
    bool admin;              /* REVOKD_ADMIN_LISTEN's */
    struct http_tls *tls;    /* its listener's certificate; NULL: plain HTTP */
    struct MHD_Daemon *daemon;
    struct loop *loop;
    struct loop_watch mhd;   /* libmicrohttpd's own epoll descriptor */
    struct loop_watch wake;  /* eventfd: quiesce or stop */
    struct loop_hook hook;   /* before the loop sleeps: how long libmicrohttpd may */
    struct loop_timer mhd_timer;
    struct store_conn *store;
    struct work_inbox *inbox; /* signature checks back from the pool */
    struct http_conns *conns;
    struct exchange *spare; /* released exchanges, reused: a request's state
                               is too large for malloc's per-thread cache */
    unsigned parked;        /* requests parked (see the top of this file) */
    int64_t round_ns;       /* when libmicrohttpd's current round began */
    bool again;             /* libmicrohttpd has work now that it does not
                               know of: a waiting request's reply is ready,
                               or a reply was queued */
};

struct http_server {
    struct app *app;
    struct worker *workers; /* the main listener's, then the admin one's */
    unsigned nworkers;
    atomic_bool quiescing, stopping;
    struct http_conn_limits limits;
    int port, admin_port;   /* admin_port 0: no admin listener */
    struct http_tls *tls, *admin_tls;
};

/* One request's exchange with its client: the transport's side of it. */
struct exchange {
    struct request req;
    struct worker *worker;
    struct http_conn *conn;        /* until on_completed: it may go before the exchange */
    struct MHD_Connection *mhd;    /* likewise */
    int64_t start_ns;
    char *body;
    size_t len;
    bool started;   /* the handler saw the head */
    bool too_large; /* the body outgrew the limit: discard it, answer 413 */
    bool close;     /* the answer closes the connection */
    enum { HELD_NOT, HELD_PARKED, HELD_SUSPENDED } held; /* while the request waits */
    int64_t parked_ns;
    char *auth;      /* the Authorization header's copy, kept across requests */
    size_t auth_size;
    char *query;     /* the raw query's copy (see on_uri), kept across requests */
    size_t query_size;
    char id[65];
    struct exchange *next_spare;
};

static struct exchange *exchange_of(struct request *req)
{
    return (struct exchange *)((char *)req - offsetof(struct exchange, req));
}

static uint64_t id_seed;
static atomic_uint_fast64_t id_counter;

/* A sane caller-supplied id is kept so logs join up across services;
 * anything else is replaced, so ids are never a log-injection vector. */
static void request_id(struct MHD_Connection *conn, char *out, size_t size)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t n = given ? strlen(given) : 0;

    if (n > 0 && n < size && n <= 64 && strspn(given, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n) {
        memcpy(out, given, n + 1);
        return;
    }
    /* splitmix64 of a counter: unique per process, unpredictable across. */
    uint64_t z = id_seed + atomic_fetch_add(&id_counter, 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    snprintf(out, size, "%016llx", (unsigned long long)z);
}

/* An event stream's body (event_stream.h), read as it comes: with nothing
 * to send, the connection is suspended until the stream resumes it. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    ssize_t n = event_stream_read(cls, buf, max);
    (void)pos;
    return n >= 0 ? n : n == -1 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
    event_stream_close(cls);
}

static void stream_suspend(void *mhd, void *worker)
{
    (void)worker;
    MHD_suspend_connection(mhd);
}

/* From the stream's thread. libmicrohttpd 0.9.75 takes resumed connections
 * back at the start of MHD_run() and then clears the signal the resume
 * sent: a resume that falls in between would wait for the next round,
 * which may not come. The worker's own wake-up, written after the resume,
 * makes sure a round follows it. */
static void stream_resume(void *mhd, void *worker)
{
    MHD_resume_connection(mhd);
    loop_eventfd_signal(((struct worker *)worker)->wake.fd);
}

static const struct event_stream_transport stream_transport = {.suspend = stream_suspend,
                                                               .resume = stream_resume};

/* The reply's body as libmicrohttpd's response; *type its Content-Type. */
static struct MHD_Response *response_of(struct exchange *ex, struct reply *rep, const char **type)
{
    struct MHD_Response *resp;

    if (rep->stream != NULL) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, rep->stream,
                                                 stream_free);
        if (resp != NULL) {
            /* What a consumer has not read is REVOKD_FEED_BUFFER_BYTES in
             * revokd and this much in the kernel, not the megabytes TCP's
             * autotuning would let the socket take. */
            const union MHD_ConnectionInfo *fd = MHD_get_connection_info(ex->mhd, MHD_CONNECTION_INFO_CONNECTION_FD);
            int sndbuf = STREAM_SNDBUF;
            if (fd != NULL)
                setsockopt(fd->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
            event_stream_attach(rep->stream, &stream_transport, ex->mhd, ex->worker);
            rep->stream = NULL; /* the response's now */
            *type = rep->content_type;
            /* A proxy in front (nginx) must pass each event on at once. */
            MHD_add_response_header(resp, "X-Accel-Buffering", "no");
            return resp;
        }
        reply_error(rep, 500, "internal_error", "out of memory");
    }
    char *text = rep->text != NULL ? rep->text : reply_render(rep);
    *type = rep->text != NULL ? rep->content_type : "application/json";
    rep->text = NULL;
    if (text == NULL)
        text = strdup("{\"error\":\"internal_error\",\"error_description\":\"out of memory\"}");
    resp = text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE) : NULL;
    if (resp == NULL)
        free(text);
    return resp;
}

/* Queues the request's reply and writes the request line. */
static enum MHD_Result respond(struct exchange *ex, const char *method, const char *path)
{
    struct reply *rep = &ex->req.reply;
    const char *type = NULL;
    struct MHD_Response *resp = response_of(ex, rep, &type);
    enum MHD_Result ok = MHD_NO;
    double seconds = (double)(loop_now_ns() - ex->start_ns) / 1e9;

    if (resp != NULL) {
        if (type != NULL)
            MHD_add_response_header(resp, "Content-Type", type);
        /* An authorization decision must never be served from a cache. */
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        MHD_add_response_header(resp, "X-Request-Id", ex->id);
        if (rep->allow != NULL)
            MHD_add_response_header(resp, "Allow", rep->allow);
        if (rep->www_authenticate[0] != '\0')
            MHD_add_response_header(resp, "WWW-Authenticate", rep->www_authenticate);
        const char *name, *value;
        bool retry_after = false;
        for (size_t at = 0; reply_next_header(rep, &at, &name, &value);) {
            MHD_add_response_header(resp, name, value);
            retry_after |= strcasecmp(name, "Retry-After") == 0;
        }
        if (rep->status == 503 && !retry_after)
            MHD_add_response_header(resp, "Retry-After", RETRY_AFTER_503);
        if (ex->close)
            MHD_add_response_header(resp, "Connection", "close");
        ok = MHD_queue_response(ex->mhd, (unsigned)rep->status, resp);
        MHD_destroy_response(resp);
    }
    ex->worker->again = true; /* unless it went out at once, it is written next round */
    metrics_request(ex->req.route, rep->status, seconds);

    if (log_enabled(LOG_INFO)) {
        cJSON *f = reply_take_log(rep);
        if (f == NULL)
            f = cJSON_CreateObject();
        /* The path is logged, never the query or headers: only the path's
         * {sub} and the lookup's jti/sub may identify a token, and those
         * are allowed in logs. */
        cJSON_AddStringToObject(f, "request_id", ex->id);
        cJSON_AddStringToObject(f, "method", method);
        cJSON_AddStringToObject(f, "path", path);
        cJSON_AddNumberToObject(f, "status", rep->status);
        cJSON_AddNumberToObject(f, "latency_us", (double)(long long)(seconds * 1e6));
        log_event(rep->status >= 500 ? LOG_WARN : LOG_INFO, "request", f);
    }
    reply_clear(rep);
    return ok;
}

/* Answers before the request reaches a handler. */
static enum MHD_Result refuse(struct exchange *ex, const char *method, const char *url, int status,
                              const char *error, const char *why)
{
    reply_error(&ex->req.reply, status, error, why);
    request_refused(&ex->req);
    return respond(ex, method, url);
}

/* Answers from the head alone, in the first call: libmicrohttpd then reads
 * no more of the request and closes the connection after the answer, which
 * says so (Connection: close), and the close lingers (http_conn.h) so that
 * the client reads the answer whatever it sent after it. */
static enum MHD_Result refuse_head(struct exchange *ex, const char *method, const char *url, int status,
                                   const char *error, const char *why)
{
    ex->close = true;
    http_conn_linger(ex->conn);
    return refuse(ex, method, url, status, error, why);
}

static const char *too_large(size_t max, char *why, size_t size)
{
    snprintf(why, size, "the body is larger than %zu bytes (REVOKD_MAX_BODY_BYTES)", max);
    return why;
}

struct framing {
    unsigned content_length, transfer_encoding, authorization;
    bool chunked;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct framing *f = cls;
    (void)kind;
    if (strcasecmp(key, "Content-Length") == 0) {
        f->content_length++;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->transfer_encoding++;
        f->chunked = strcasecmp(value, "chunked") == 0;
    } else if (strcasecmp(key, "Authorization") == 0) {
        f->authorization++;
    }
    return MHD_YES;
}

/* A head whose body two parsers could frame differently is refused and the
 * connection closed (RFC 9112 6.1 and 6.3), so that no part of it can pass
 * for a request of its own behind a proxy (request smuggling); so is a head
 * with two Authorization headers, since a backend behind a gateway might
 * read the other one. Returns why, or NULL. */
static const char *ambiguous_head(struct MHD_Connection *conn)
{
    struct framing f = {0};

    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
    if (f.content_length > 1)
        return "more than one Content-Length header";
    if (f.transfer_encoding > 0 && f.content_length > 0)
        return "both Content-Length and Transfer-Encoding";
    if (f.transfer_encoding > 1 || (f.transfer_encoding == 1 && !f.chunked))
        return "a Transfer-Encoding other than one \"chunked\"";
    if (f.authorization > 1)
        return "more than one Authorization header";
    return NULL;
}

static void unpark(struct exchange *ex)
{
    if (ex->held == HELD_PARKED) {
        ex->held = HELD_NOT;
        ex->worker->parked--;
    }
}

/* The request waits (see the top of this file); the handler returns this. */
static enum MHD_Result hold(struct exchange *ex)
{
    if (ex->held == HELD_NOT) {
        ex->held = HELD_PARKED;
        ex->parked_ns = ex->worker->round_ns;
        ex->worker->parked++;
        return MHD_YES;
    }
    if (ex->held == HELD_SUSPENDED || ex->worker->round_ns - ex->parked_ns < PARK_MS * 1000000)
        return MHD_YES;
    unpark(ex);
    ex->held = HELD_SUSPENDED;
    MHD_suspend_connection(ex->mhd);
    return MHD_YES;
}

/* request.h: a waiting request's reply is ready. */
static void replied(struct request *req)
{
    struct exchange *ex = exchange_of(req);

    if (ex->held == HELD_SUSPENDED) {
        ex->held = HELD_NOT;
        MHD_resume_connection(ex->mhd);
    }
    /* Parked, its handler replies in the next round; resumed, too, and
     * MHD_get_timeout() does not count a resumed connection as work. */
    ex->worker->again = true;
    loop_wake(ex->worker->loop);
}

/* request.h: nobody holds the request any more. */
static void released(struct request *req)
{
    struct exchange *ex = exchange_of(req);

    free(ex->body);
    ex->body = NULL;
    ex->next_spare = ex->worker->spare;
    ex->worker->spare = ex;
}

static const struct request_transport transport = {.replied = replied, .release = released};

/* Copies value into *buf (size *size, grown as needed and kept for the
 * exchange's next request). Returns the copy, or NULL when out of memory. */
static const char *keep(char **buf, size_t *size, const char *value)
{
    size_t n = strlen(value) + 1;
    if (n > *size) {
        char *p = realloc(*buf, n);
        if (p == NULL)
            return NULL;
        *buf = p;
        *size = n;
    }
    return memcpy(*buf, value, n);
}

/* libmicrohttpd calls this with the request target exactly as it was sent,
 * before it parses the query itself, turning '+' into ' ' as form decoding
 * does. revokd reads '+' as a plus sign everywhere (url.h), so the query is
 * copied here as sent. What this returns is the exchange that every later
 * call for the request receives. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mhd)
{
    struct worker *w = cls;
    struct exchange *ex = w->spare;
    const char *q = strchr(uri, '?');
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mhd, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct http_conn *conn = ci != NULL ? ci->socket_context : NULL;

    if (conn == NULL)
        return NULL; /* on_connection ran out of memory */
    http_conn_request_begins(conn);
    if (ex != NULL)
        w->spare = ex->next_spare;
    else if ((ex = calloc(1, sizeof(*ex))) == NULL)
        return NULL;
    request_init(&ex->req, &transport);
    ex->worker = w;
    ex->conn = conn;
    ex->mhd = mhd;
    ex->start_ns = loop_now_ns();
    ex->body = NULL;
    ex->len = 0;
    ex->started = ex->too_large = ex->close = false;
    ex->held = HELD_NOT;
    ex->req.peer = *http_conn_peer(conn);
    ex->req.query = q != NULL ? keep(&ex->query, &ex->query_size, q + 1) : NULL;
    if (q != NULL && ex->req.query == NULL) {
        request_finish(&ex->req);
        return NULL;
    }
    return ex;
}

/* The last call: the whole request is here. Returns the handler's step. */
static enum request_step dispatch(struct exchange *ex, const char *method, const char *url)
{
    struct worker *w = ex->worker;
    struct request *req = &ex->req;
    const char *auth = MHD_lookup_connection_value(ex->mhd, MHD_HEADER_KIND, "Authorization");

    http_conn_request_whole(ex->conn);
    if (ex->body != NULL)
        ex->body[ex->len] = '\0';
    req->method = method;
    req->path = url;
    req->authorization = auth != NULL ? keep(&ex->auth, &ex->auth_size, auth) : NULL;
    req->content_type = MHD_lookup_connection_value(ex->mhd, MHD_HEADER_KIND, "Content-Type");
    req->accept = MHD_lookup_connection_value(ex->mhd, MHD_HEADER_KIND, "Accept");
    req->last_event_id = MHD_lookup_connection_value(ex->mhd, MHD_HEADER_KIND, "Last-Event-ID");
    req->request_id = ex->id;
    req->body = ex->body != NULL ? ex->body : "";
    req->body_len = ex->len;
    req->app = w->srv->app;
    req->now = (int64_t)time(NULL);
    req->store = w->store;
    req->inbox = w->inbox;
    req->listener = w->srv->admin_port == 0 ? REQUEST_LISTENER_ONLY
                    : w->admin              ? REQUEST_LISTENER_ADMIN
                                            : REQUEST_LISTENER_MAIN;
    if (w->store == NULL || (auth != NULL && req->authorization == NULL)) {
        /* Out of memory, or the worker is stopping (worker_run's last
         * round): a request read from a kept-alive connection now has
         * neither store nor pool to wait for. */
        reply_store_error(&req->reply, -STORE_EUNAVAILABLE);
        request_refused(req);
        return REQUEST_DONE;
    }
    return request_dispatch(req);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mhd, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct worker *w = cls;
    struct exchange *ex = *con_cls;
    size_t max = (size_t)w->srv->app->cfg->max_body_bytes;
    char why[96];
    const char *ambiguous;
    (void)version;

    if (ex == NULL)
        return MHD_NO; /* on_uri ran out of memory */
    if (!ex->started) {
        /* First call: headers only. Refuse an ambiguous head, and an
         * announced oversized body before reading it. */
        ex->started = true;
        request_id(mhd, ex->id, sizeof(ex->id));
        if ((ambiguous = ambiguous_head(mhd)) != NULL)
            return refuse_head(ex, method, url, 400, "invalid_request", ambiguous);
        const union MHD_ConnectionInfo *head =
            MHD_get_connection_info(mhd, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
        if (head != NULL && head->header_size > (size_t)w->srv->app->cfg->max_token_bytes + HEAD_HEADROOM)
            return refuse_head(ex, method, url, 431, "request_header_fields_too_large",
                               "the request line and headers are longer than REVOKD_MAX_TOKEN_BYTES + 1024 bytes");
        const char *cl = MHD_lookup_connection_value(mhd, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > max)
            return refuse_head(ex, method, url, 413, "payload_too_large", too_large(max, why, sizeof(why)));
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* A chunked body announces no length: it is found too large only
         * while it arrives, when libmicrohttpd cannot answer yet. The rest
         * is read and dropped, and the 413 goes out at its end; a sender
         * that never ends meets REVOKD_REQUEST_TIMEOUT. */
        if (ex->too_large || *upload_data_size > max - ex->len) {
            ex->too_large = true;
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (ex->body == NULL && (ex->body = malloc(max + 1)) == NULL)
            return MHD_NO;
        memcpy(ex->body + ex->len, upload_data, *upload_data_size);
        ex->len += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (ex->too_large)
        return refuse(ex, method, url, 413, "payload_too_large", too_large(max, why, sizeof(why)));
    if (ex->req.state == REQUEST_RECEIVED && dispatch(ex, method, url) == REQUEST_DONE)
        return respond(ex, method, url);
    /* Parked, a waiting request comes back here every round; suspended,
     * once replied() resumed it. */
    if (ex->req.state == REQUEST_WAITING)
        return hold(ex);
    unpark(ex);
    return respond(ex, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *mhd, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    struct exchange *ex = *con_cls;
    (void)cls;
    (void)mhd;
    (void)code;
    if (ex == NULL)
        return;
    *con_cls = NULL;
    http_conn_request_done(ex->conn);
    ex->conn = NULL;
    ex->mhd = NULL;
    unpark(ex);
    ex->held = HELD_NOT;
    request_finish(&ex->req); /* a request still waiting goes when its call answers */
}

/* Keep the raw path: a subject may contain "%2F", which must not become a
 * path separator before routing. Handlers decode what they use. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *uri)
{
    (void)cls;
    (void)conn;
    return strlen(uri);
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct worker *w = cls;
    return http_conn_admit(w->conns, addr, len) ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *mhd, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct worker *w = cls;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(mhd, MHD_CONNECTION_INFO_CONNECTION_FD);
        /* Untracked (out of memory), it would have no deadline: on_uri
         * refuses its requests, so libmicrohttpd closes it. */
        *socket_context = fd != NULL ? http_conn_open(w->conns, fd->connect_fd) : NULL;
    } else {
        http_conn_close(w->conns, *socket_context);
    }
}

static void on_mhd_event(struct loop_watch *lw, uint32_t events)
{
    (void)lw;
    (void)events; /* MHD_run() follows every round anyway */
}

static void on_mhd_timer(struct loop_timer *t)
{
    (void)t; /* it only woke the loop for libmicrohttpd's next timeout */
}

/* Before the loop sleeps: not at all when libmicrohttpd has work it does
 * not know of; else as long as it may, except that parked requests alone
 * make it ask for a round at once: then the loop waits for the store
 * instead, up to PARK_MS. */
static void before_sleep(struct loop_hook *h)
{
    struct worker *w = (struct worker *)((char *)h - offsetof(struct worker, hook));
    MHD_UNSIGNED_LONG_LONG ms;

    if (w->again) {
        loop_wake(w->loop);
    } else if (MHD_get_timeout(w->daemon, &ms) != MHD_YES) {
        loop_timer_disarm(w->loop, &w->mhd_timer);
    } else if (ms == 0 && w->parked == 0) {
        loop_wake(w->loop);
    } else {
        loop_timer_arm(w->loop, &w->mhd_timer, ms == 0 ? PARK_MS : (int64_t)ms);
    }
}

static void worker_quiesce(struct worker *w)
{
    MHD_socket fd = MHD_quiesce_daemon(w->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    w->quiesced = true;
}

/* The worker's schedule: one round of the loop (the store's and this
 * file's hooks, the wait, the events, the timers), then libmicrohttpd's
 * round, in which requests are read and replies written. */
static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct http_server *srv = w->srv;

    http_tls_bind_thread(w->tls);
    while (!atomic_load(&srv->stopping)) {
        loop_poll(w->loop, -1);
        if (atomic_load(&srv->quiescing) && !w->quiesced)
            worker_quiesce(w);
        w->again = false;
        w->round_ns = loop_now_ns();
        MHD_run(w->daemon);
        http_conn_settle(w->conns);
    }
    /* Take back every signature check still in the pool (its request may
     * then ask the store), answer the requests still waiting for the store,
     * and let libmicrohttpd take them back (it refuses to stop with
     * connections suspended): one round queues their replies, the next
     * writes them. */
    work_inbox_drain(w->inbox);
    store_conn_free(w->store);
    w->store = NULL; /* dispatch(): no new request may wait any more */
    MHD_run(w->daemon);
    MHD_run(w->daemon);
    return NULL;
}

static void worker_free(struct worker *w)
{
    if (w->daemon != NULL)
        MHD_stop_daemon(w->daemon); /* completes the last requests into w->spare */
    http_conn_set_free(w->conns);
    store_conn_free(w->store);
    work_inbox_free(w->inbox);
    while (w->spare != NULL) {
        struct exchange *ex = w->spare;
        w->spare = ex->next_spare;
        free(ex->auth);
        free(ex->query);
        free(ex);
    }
    if (w->loop != NULL) {
        loop_hook_remove(w->loop, &w->hook);
        loop_timer_disarm(w->loop, &w->mhd_timer);
    }
    if (w->wake.fd >= 0)
        close(w->wake.fd);
    loop_free(w->loop);
}

static int worker_init(struct http_server *srv, struct worker *w, const struct sockaddr *addr, bool admin)
{
    const struct config *cfg = srv->app->cfg;
    const union MHD_DaemonInfo *info;

    w->srv = srv;
    w->admin = admin;
    w->tls = admin ? srv->admin_tls : srv->tls;
    w->wake.fd = -1;
    if ((w->loop = loop_new()) == NULL || (w->store = store_conn_new(srv->app->store, w->loop)) == NULL ||
        (w->inbox = work_inbox_new(w->loop, srv->app->pool)) == NULL ||
        (w->conns = http_conn_set_new(w->loop, &srv->limits, (int)cfg->request_timeout)) == NULL)
        return -1;
    /* Suspend/resume is how a request waits long. SO_REUSEPORT
     * (ADDRESS_REUSE) gives every worker its own listening socket on the
     * same port, and the kernel spreads connections over them. */
    /* Without TLS, the options end before the TLS ones. */
    w->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | (addr->sa_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
            (w->tls != NULL ? MHD_USE_TLS : 0),
        0, on_accept,
        w, on_request, w, MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_NOTIFY_CONNECTION, on_connection, w,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->max_token_bytes + HEAD_HEADROOM + REPLY_RESERVE,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, w, MHD_OPTION_URI_LOG_CALLBACK, on_uri, w,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        w->tls != NULL ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END, http_tls_retrieve,
        MHD_OPTION_HTTPS_PRIORITIES, HTTP_TLS_PRIORITIES, MHD_OPTION_END);
    if (w->daemon == NULL || (info = MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_EPOLL_FD)) == NULL)
        return -1;
    w->mhd = (struct loop_watch){.fd = info->epoll_fd, .on_event = on_mhd_event};
    w->wake = (struct loop_watch){.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
                                .on_event = loop_eventfd_on_event};
    if (w->wake.fd < 0 || loop_watch(w->loop, &w->mhd, EPOLLIN) < 0 ||
        loop_watch(w->loop, &w->wake, EPOLLIN) < 0)
        return -1;
    w->hook.before_sleep = before_sleep;
    w->mhd_timer.on_timer = on_mhd_timer;
    loop_hook_add(w->loop, &w->hook);
    return 0;
}

static void wake_workers(struct http_server *srv)
{
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].wake.fd >= 0)
            loop_eventfd_signal(srv->workers[i].wake.fd);
}

/* Both files of a pair or neither; loads them into *out (NULL for
 * neither). Returns 0, or -1 with one line naming the setting in err. */
static int load_tls(const char *cert, const char *key, const char *cert_setting, const char *key_setting,
                    struct http_tls **out, char *err, size_t errlen)
{
    *out = NULL;
    if (cert[0] == '\0' && key[0] == '\0')
        return 0;
    if (cert[0] == '\0' || key[0] == '\0') {
        snprintf(err, errlen, "%s and %s: set both or neither (%s is empty)", cert_setting, key_setting,
                 cert[0] == '\0' ? cert_setting : key_setting);
        return -1;
    }
    return (*out = http_tls_new(cert, key, cert_setting, key_setting, err, errlen)) != NULL ? 0 : -1;
}

/* Whether two listening addresses would take each other's connections:
 * with SO_REUSEPORT both binds succeed, and the kernel would hand the
 * admin port's connections to the main listener or the other way. */
static bool overlap(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false; /* an IPv6 wildcard may take IPv4 too: the bind then fails, reported */
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port && x->sin6_port != 0 &&
               (memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 ||
                IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr));
    }
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_port != 0 &&
           (x->sin_addr.s_addr == y->sin_addr.s_addr || x->sin_addr.s_addr == htonl(INADDR_ANY) ||
            y->sin_addr.s_addr == htonl(INADDR_ANY));
}

static int bound_port(const struct worker *w)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

struct http_server *http_server_start(struct app *app, char *err, size_t errlen)
{
    const struct config *cfg = app->cfg;
    struct sockaddr_storage ss = cfg->listen_addr.ss; /* config_load() parsed it */
    bool admin = cfg->admin_listen[0] != '\0';
    struct http_server *srv;

    if (!admin && (cfg->admin_tls_cert_file[0] != '\0' || cfg->admin_tls_key_file[0] != '\0')) {
        snprintf(err, errlen, "REVOKD_ADMIN_TLS_CERT_FILE and REVOKD_ADMIN_TLS_KEY_FILE: need REVOKD_ADMIN_LISTEN");
        return NULL;
    }
    if (admin && overlap(&cfg->listen_addr.ss, &cfg->admin_listen_addr.ss)) {
        snprintf(err, errlen, "REVOKD_ADMIN_LISTEN: %s shares its port with REVOKD_LISTEN (%s)", cfg->admin_listen,
                 cfg->listen);
        return NULL;
    }
    unsigned n = (unsigned)cfg->threads; /* main() resolved 0 */
    if ((srv = calloc(1, sizeof(*srv))) == NULL ||
        (srv->workers = calloc(n + admin, sizeof(*srv->workers))) == NULL) {
        free(srv);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->app = app;
    RAND_bytes((unsigned char *)&id_seed, sizeof(id_seed));
    if (load_tls(cfg->tls_cert_file, cfg->tls_key_file, "REVOKD_TLS_CERT_FILE", "REVOKD_TLS_KEY_FILE", &srv->tls,
                 err, errlen) < 0 ||
        load_tls(cfg->admin_tls_cert_file, cfg->admin_tls_key_file, "REVOKD_ADMIN_TLS_CERT_FILE",
                 "REVOKD_ADMIN_TLS_KEY_FILE", &srv->admin_tls, err, errlen) < 0) {
        http_server_stop(srv);
        return NULL;
    }

    srv->limits.max_open = (unsigned)cfg->max_connections;
    /* Lingering closes count too; they cannot outnumber the connections. */
    srv->limits.per_address = addr_limit_new(2 * srv->limits.max_open, (unsigned)cfg->max_connections_per_address);
    if (srv->limits.per_address == NULL) {
        snprintf(err, errlen, "out of memory");
        http_server_stop(srv);
        return NULL;
    }
    for (unsigned i = 0; i < n + admin; i++) {
        bool is_admin = i == n;
        struct sockaddr_storage at = is_admin ? cfg->admin_listen_addr.ss : ss;
        errno = 0;
        srv->nworkers = i + 1;
        if (worker_init(srv, &srv->workers[i], (struct sockaddr *)&at, is_admin) < 0) {
            snprintf(err, errlen, "%s: cannot listen on %s: %s", is_admin ? "REVOKD_ADMIN_LISTEN" : "REVOKD_LISTEN",
                     is_admin ? cfg->admin_listen : cfg->listen, errno ? strerror(errno) : "libmicrohttpd refused");
            http_server_stop(srv);
            return NULL;
        }
        if (is_admin) {
            srv->admin_port = bound_port(&srv->workers[i]);
        } else if (i == 0) {
            /* Port 0 picked a port: the other workers share that one. */
            srv->port = bound_port(&srv->workers[0]);
            if (ss.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)srv->port);
            else
                ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)srv->port);
        }
    }
    for (unsigned i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        if (pthread_create(&w->thread, NULL, worker_run, w) != 0) {
            snprintf(err, errlen, "cannot start worker threads");
            http_server_stop(srv);
            return NULL;
        }
        w->started = true;
    }
    return srv;
}

int http_server_port(const struct http_server *srv)
{
    return srv->port;
}

int http_server_admin_port(const struct http_server *srv)
{
    return srv->admin_port;
}

bool http_server_tls(const struct http_server *srv, bool admin)
{
    return (admin ? srv->admin_tls : srv->tls) != NULL;
}

int http_server_reload_tls(struct http_server *srv, char *err, size_t errlen)
{
    if (srv->tls != NULL && http_tls_reload(srv->tls, err, errlen) < 0)
        return -1;
    if (srv->admin_tls != NULL && http_tls_reload(srv->admin_tls, err, errlen) < 0)
        return -1;
    return 0;
}

void http_server_quiesce(struct http_server *srv)
{
    atomic_store(&srv->quiescing, true);
    wake_workers(srv);
}

unsigned http_server_connections(const struct http_server *srv)
{
    return atomic_load(&srv->limits.open);
}

void http_server_stop(struct http_server *srv)
{
    if (srv == NULL)
        return;
    atomic_store(&srv->stopping, true);
    wake_workers(srv);
    for (unsigned i = 0; i < srv->nworkers; i++) {
        if (srv->workers[i].started)
            pthread_join(srv->workers[i].thread, NULL);
        worker_free(&srv->workers[i]);
    }
    free(srv->workers);
    addr_limit_free(srv->limits.per_address);
    http_tls_free(srv->tls);
    http_tls_free(srv->admin_tls);
    free(srv);
}
