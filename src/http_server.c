/* http_server.c - libmicrohttpd glue: collect the request, bound its body,
 * dispatch, send the reply, log the request line.
 *
 * Each worker thread runs one libmicrohttpd daemon (its own listening socket,
 * SO_REUSEPORT) and one connection to the store on one epoll loop. A handler
 * that needs Redis queues its command and the request waits; after each
 * round of requests the queued commands go out together, and each reply
 * completes its request. No request ever blocks a thread, and Redis round
 * trips are shared by all the requests of a round.
 *
 * How a request waits, for Redis or for the signature pool: it is first
 * "parked". It keeps its place in libmicrohttpd, which calls the handler
 * again in every round until the handler queues a reply (0.9.75 keeps a
 * request with no reply on its list of ready connections; the API allows
 * the repeated calls). That costs no system call, whereas suspending and
 * resuming costs two epoll_ctl calls per request, measured at 15% of a busy
 * loop's time. A request still waiting after PARK_MS is suspended, which
 * costs no more calls of the handler. libmicrohttpd may close a parked
 * request's connection (the client went away) and free its head: so the
 * Authorization header is copied into the exchange, where a pool thread may
 * read its token, and the exchange outlives the connection until nothing
 * waits (req->gone).
 *
 * Beside libmicrohttpd, each worker tracks its client connections (struct
 * client) for what libmicrohttpd 0.9.75 does not bound: the time a request
 * may take to arrive (its idle timeout restarts with every byte, so a
 * client trickling a byte a second would hold a connection forever), the
 * connections of one client address across every worker (addr_limit.h),
 * and the close after an answer sent before the body was read, which must
 * linger, as nginx's does, or the unread bytes make the kernel reset the
 * connection before the client reads the answer. */
#include "revokd/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received (glibc's lacks it) */

#include <microhttpd.h>
#include <openssl/rand.h>

#include "revokd/addr_limit.h"
#include "revokd/loop.h"
#include "revokd/log.h"
#include "revokd/metrics.h"
#include "revokd/reply.h"
#include "revokd/router.h"
#include "revokd/work.h"

#define HOST_MAX 64 /* an IPv6 literal is at most 45 characters */
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
 * longest the loop waits for Redis while libmicrohttpd, seeing the parked
 * requests, asks for another round at once (it may also have a reply to
 * finish writing, which then waits at most this long). */
#define PARK_MS 1
/* How often a worker looks at its connections' deadlines. */
#define SWEEP_MS 500
/* After an answer sent before the body was read, how long the rest of the
 * body is read and dropped before the connection is closed for good. */
#define LINGER_MS 5000

struct client;
struct lingerer;

struct worker {
    struct http_server *srv;
    pthread_t thread;
    bool started, quiesced;
    struct MHD_Daemon *daemon;
    struct loop *loop;
    struct loop_watch mhd;  /* libmicrohttpd's own epoll descriptor */
    struct loop_watch wake; /* eventfd: quiesce or stop */
    struct store_conn *store;
    struct work_inbox *inbox; /* signature checks back from the pool */
    struct exchange *spare; /* finished exchanges, reused: a request's state
                               is too large for malloc's per-thread cache */
    unsigned parked;        /* requests parked (see the top of this file) */
    int64_t round_ns;       /* when libmicrohttpd's current round began */
    bool again;             /* libmicrohttpd has work now that it does not
                               know of: a waiting request's answer came, or a
                               reply was queued */
    struct client *clients; /* open connections */
    /* The place on_accept reserved for the connection libmicrohttpd is
     * accepting (counted in open and per_address), which on_connection
     * then takes over; one left over means that accept failed. */
    bool reserved;
    struct sockaddr_storage reserved_addr;
    struct lingerer *lingering;
    struct loop_timer sweep; /* request deadlines and lingering closes */
    int64_t logged_ms[METRICS_NLIMITS]; /* the last log line for each limit */
};

struct http_server {
    struct app *app;
    struct worker *workers;
    unsigned nworkers;
    atomic_bool quiescing, stopping;
    atomic_uint open;   /* connections of all workers, lingering ones included */
    unsigned max_open;  /* REVOKD_MAX_CONNECTIONS */
    struct addr_limit *per_address; /* REVOKD_MAX_CONNECTIONS_PER_ADDRESS */
    char host[HOST_MAX]; /* the listening address without brackets */
    int port;
};

/* One client connection, from accept to close (libmicrohttpd's socket
 * context). A request is RECEIVING from its first byte until it is whole
 * (the first request from the connection's opening), HANDLED until its
 * answer is sent, then the connection is IDLE until the next request's
 * first byte, which libmicrohttpd does not report: the sweep sees it in the
 * socket's count of bytes received (TCP_INFO). */
struct client {
    struct worker *worker;
    struct client *prev, *next;
    int fd;
    enum { CLIENT_RECEIVING, CLIENT_HANDLED, CLIENT_IDLE } state;
    int64_t since_ms;    /* RECEIVING: when the request began */
    uint64_t idle_bytes; /* IDLE: bytes received when the sweep first looked */
    bool idle_seen;      /* IDLE: idle_bytes is set */
    bool counted;        /* counted in the server's per_address */
    bool linger;         /* answered before its body was read */
    struct sockaddr_storage addr;
};

/* A connection libmicrohttpd closed after an early answer: a duplicate of
 * its socket, read and dropped until the client closes or LINGER_MS. */
struct lingerer {
    struct loop_watch watch; /* first: on_linger_event finds it from the watch */
    struct worker *worker;
    struct lingerer *next;
    int64_t until_ms;
    bool counted;
    struct sockaddr_storage addr;
};

/* Per-request state, from the first call of the handler to completion. */
struct exchange {
    struct worker *worker;
    struct client *client; /* until on_completed: it may go before the exchange */
    struct MHD_Connection *conn;
    int64_t start_ns;
    char *body;
    size_t len;
    bool started;    /* the handler saw the head */
    bool dispatched; /* the handler ran */
    bool parked;     /* waiting, the handler called every round */
    bool suspended;  /* waiting, suspended */
    bool responded;  /* a reply was queued */
    bool too_large;  /* the body outgrew the limit: discard it, answer 413 */
    bool close;      /* the answer closes the connection */
    int64_t parked_ns;
    char *auth;       /* the Authorization header's copy, kept across requests */
    size_t auth_size;
    char *query;      /* the raw query's copy (see on_uri), kept across requests */
    size_t query_size;
    char id[65];
    struct request req;
    struct reply rep;
    struct exchange *next_spare;
};

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

/* Queues rep on conn and writes the request line. Consumes rep's members. */
static enum MHD_Result respond(struct MHD_Connection *conn, struct exchange *ex, const char *method,
                               const char *path, struct reply *rep)
{
    char *text = rep->text ? rep->text : rep->body ? cJSON_PrintUnformatted(rep->body) : NULL;
    const char *type = rep->text ? rep->content_type : "application/json";
    struct MHD_Response *resp;
    enum MHD_Result ok = MHD_NO;
    double seconds = (double)(loop_now_ns() - ex->start_ns) / 1e9;

    rep->text = NULL;

    if (text == NULL)
        text = strdup("{\"error\":\"internal_error\",\"error_description\":\"out of memory\"}");
    resp = text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE) : NULL;
    if (resp == NULL) {
        free(text);
    } else {
        MHD_add_response_header(resp, "Content-Type", type);
        /* An authorization decision must never be served from a cache. */
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        MHD_add_response_header(resp, "X-Request-Id", ex->id);
        if (rep->allow != NULL)
            MHD_add_response_header(resp, "Allow", rep->allow);
        if (rep->www_authenticate[0] != '\0')
            MHD_add_response_header(resp, "WWW-Authenticate", rep->www_authenticate);
        if (ex->close)
            MHD_add_response_header(resp, "Connection", "close");
        ok = MHD_queue_response(conn, (unsigned)rep->status, resp);
        MHD_destroy_response(resp);
    }
    ex->responded = true;
    ex->worker->again = true; /* unless it went out at once, it is written next round */
    metrics_request(ex->req.route, rep->status, seconds);

    if (log_enabled(LOG_INFO)) {
        cJSON *f = rep->log ? rep->log : cJSON_CreateObject();
        rep->log = NULL;
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
    cJSON_Delete(rep->body);
    cJSON_Delete(rep->log);
    return ok;
}

/* Answers before the request reaches a handler. */
static enum MHD_Result refuse(struct MHD_Connection *conn, struct exchange *ex, const char *method,
                              const char *url, int status, const char *error, const char *why)
{
    struct reply rep = {0};
    ex->req.route = -1;
    reply_error(&rep, status, error, why);
    return respond(conn, ex, method, url, &rep);
}

/* Answers from the head alone, in the first call: libmicrohttpd then reads
 * no more of the request and closes the connection after the answer, which
 * says so (Connection: close), and the close lingers (see the top of this
 * file) so that the client reads the answer whatever it sent after it. */
static enum MHD_Result refuse_head(struct MHD_Connection *conn, struct exchange *ex,
                                   const char *method, const char *url, int status,
                                   const char *error, const char *why)
{
    ex->close = true;
    ex->client->linger = true;
    return refuse(conn, ex, method, url, status, error, why);
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

/* The request waits for the store or for the pool. */
static bool waiting(const struct request *req)
{
    return req->then != NULL || req->verify.then != NULL;
}

static void unpark(struct exchange *ex)
{
    if (ex->parked) {
        ex->parked = false;
        ex->worker->parked--;
    }
}

/* Frees what the request owned and keeps the exchange for the next one. */
static void exchange_release(struct exchange *ex)
{
    if (!ex->responded && ex->dispatched) {
        cJSON_Delete(ex->rep.body);
        cJSON_Delete(ex->rep.log);
        free(ex->rep.text);
    }
    if (ex->dispatched)
        cJSON_Delete(ex->req.json);
    free(ex->body);
    ex->next_spare = ex->worker->spare;
    ex->worker->spare = ex;
}

/* The request waits (see the top of this file); the handler returns this. */
static enum MHD_Result wait_for(struct exchange *ex)
{
    if (!ex->parked) {
        ex->parked = true;
        ex->parked_ns = ex->worker->round_ns;
        ex->worker->parked++;
        return MHD_YES;
    }
    if (ex->worker->round_ns - ex->parked_ns < PARK_MS * 1000000)
        return MHD_YES;
    unpark(ex);
    ex->suspended = true;
    MHD_suspend_connection(ex->conn);
    return MHD_YES;
}

void request_continued(struct request *req)
{
    struct exchange *ex = req->exchange;
    /* When the continuation ran inside the handler (the store answered at
     * once, the cache knew the token), the handler replies. */
    if (waiting(req))
        return;
    if (req->gone) {
        exchange_release(ex);
    } else if (ex->suspended) {
        ex->suspended = false;
        MHD_resume_connection(ex->conn);
        /* MHD_get_timeout() does not count a resumed connection as work. */
        ex->worker->again = true;
    } else if (ex->parked) {
        ex->worker->again = true; /* its handler replies in the next round */
    }
}

void request_store_done(void *arg, const struct store_result *res)
{
    struct request *req = arg;
    void (*then)(struct request *, struct reply *, const struct store_result *) = req->then;

    req->then = NULL;
    if (!req->gone)
        then(req, req->reply, res);
    request_continued(req);
}

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
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct worker *w = cls;
    struct exchange *ex = w->spare;
    const char *q = strchr(uri, '?');
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct client *c = ci != NULL ? ci->socket_context : NULL;

    if (c == NULL)
        return NULL; /* on_connection ran out of memory */
    if (c->state == CLIENT_IDLE) {
        /* The request line is here before the sweep saw its first byte. */
        c->state = CLIENT_RECEIVING;
        c->since_ms = loop_now_ms();
    }
    if (ex != NULL)
        w->spare = ex->next_spare;
    else if ((ex = calloc(1, sizeof(*ex))) == NULL)
        return NULL;
    ex->worker = w;
    ex->client = c;
    ex->conn = conn;
    ex->start_ns = loop_now_ns();
    ex->body = NULL;
    ex->len = 0;
    ex->started = ex->dispatched = ex->parked = ex->suspended = ex->responded = ex->too_large = false;
    ex->close = false;
    ex->req.route = -1;
    ex->req.query = q != NULL ? keep(&ex->query, &ex->query_size, q + 1) : NULL;
    if (q != NULL && ex->req.query == NULL) {
        exchange_release(ex);
        return NULL;
    }
    return ex;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct worker *w = cls;
    struct exchange *ex = *con_cls;
    struct app *app = w->srv->app;
    size_t max = (size_t)app->cfg->max_body_bytes;
    char why[96];
    const char *ambiguous;
    (void)version;

    if (ex == NULL)
        return MHD_NO; /* on_uri ran out of memory */
    if (!ex->started) {
        /* First call: headers only. Refuse an ambiguous head, and an
         * announced oversized body before reading it. */
        ex->started = true;
        request_id(conn, ex->id, sizeof(ex->id));
        if ((ambiguous = ambiguous_head(conn)) != NULL)
            return refuse_head(conn, ex, method, url, 400, "invalid_request", ambiguous);
        const union MHD_ConnectionInfo *head =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
        if (head != NULL && head->header_size > (size_t)app->cfg->max_token_bytes + HEAD_HEADROOM)
            return refuse_head(conn, ex, method, url, 431, "request_header_fields_too_large",
                               "the request line and headers are longer than REVOKD_MAX_TOKEN_BYTES + 1024 bytes");
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > max)
            return refuse_head(conn, ex, method, url, 413, "payload_too_large",
                               too_large(max, why, sizeof(why)));
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
        return refuse(conn, ex, method, url, 413, "payload_too_large", too_large(max, why, sizeof(why)));

    if (!ex->dispatched) {
        /* Last call: the whole request is here. */
        const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        if (auth != NULL && (auth = keep(&ex->auth, &ex->auth_size, auth)) == NULL)
            return MHD_NO;
        ex->client->state = CLIENT_HANDLED;
        ex->dispatched = true;
        ex->req = (struct request){
            .method = method,
            .path = url,
            .authorization = auth,
            .content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"),
            .body = ex->body ? ex->body : "",
            .body_len = ex->len,
            .query = ex->req.query,
            .app = app,
            .now = (int64_t)time(NULL),
            .store = w->store,
            .inbox = w->inbox,
            .reply = &ex->rep,
            .exchange = ex,
        };
        ex->rep = (struct reply){0};
        if (ex->body != NULL)
            ex->body[ex->len] = '\0';
        if (w->store == NULL) {
            /* The worker is stopping (worker_run's last round): a request
             * read from a kept-alive connection now has neither store nor
             * pool to wait for. */
            ex->req.route = -1;
            reply_store_error(&ex->rep, -STORE_EUNAVAILABLE);
            return respond(conn, ex, method, url, &ex->rep);
        }
        router_dispatch(&ex->req, &ex->rep);
    }
    /* Parked, a request comes back here every round; suspended, when
     * request_continued() resumed it. */
    if (waiting(&ex->req))
        return wait_for(ex);
    unpark(ex);
    return respond(conn, ex, method, url, &ex->rep);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    struct exchange *ex = *con_cls;
    (void)cls;
    (void)conn;
    (void)code;
    if (ex == NULL)
        return;
    *con_cls = NULL;
    /* The next request's deadline runs from its first byte. */
    ex->client->state = CLIENT_IDLE;
    ex->client->idle_seen = false;
    ex->client = NULL;
    unpark(ex);
    /* Closed while parked (the client went away, or a timeout): the
     * callback it waits for releases the exchange. */
    if (ex->dispatched && waiting(&ex->req)) {
        ex->req.gone = true;
        return;
    }
    exchange_release(ex);
}

/* Keep the raw path and query: a subject may contain "%2F", which must not
 * become a path separator before routing. Handlers decode what they use. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *uri)
{
    (void)cls;
    (void)conn;
    return strlen(uri);
}

/* "host:port" or "[v6]:port" into a socket address and host (HOST_MAX bytes). */
static int parse_listen(const char *s, struct sockaddr_storage *ss, char *host, bool *v6)
{
    const char *colon = strrchr(s, ':');
    size_t hl;
    char *end;

    if (colon == NULL)
        return -1;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    hl = (size_t)(colon - s);
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
        s++;
        hl -= 2;
    }
    if (hl == 0 || hl >= HOST_MAX)
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *v6 = false;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *v6 = true;
        return 0;
    }
    return -1;
}

/* The kernel spreads new connections over the workers' sockets unevenly,
 * so REVOKD_MAX_CONNECTIONS is counted across all workers, not split. */
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
static void limit_hit(struct worker *w, enum metrics_limit limit, const struct sockaddr_storage *addr)
{
    static const char *const names[METRICS_NLIMITS] = {
        "REVOKD_MAX_CONNECTIONS", "REVOKD_MAX_CONNECTIONS_PER_ADDRESS", "REVOKD_REQUEST_TIMEOUT"};
    int64_t now = loop_now_ms();
    char text[INET6_ADDRSTRLEN];

    metrics_limit(limit);
    if (now - w->logged_ms[limit] < 1000 || !log_enabled(LOG_WARN))
        return;
    w->logged_ms[limit] = now;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "limit", names[limit]);
    cJSON_AddStringToObject(f, "client", addr_text(addr, text, sizeof(text)));
    log_event(LOG_WARN, limit == METRICS_LIMIT_REQUEST_TIME ? "request_timeout" : "connection_refused", f);
}

static void client_forget(struct http_server *srv, bool counted, const struct sockaddr_storage *addr)
{
    if (counted)
        addr_limit_release(srv->per_address, (const struct sockaddr *)addr);
    atomic_fetch_sub(&srv->open, 1);
}

static void reservation_drop(struct worker *w)
{
    if (w->reserved)
        client_forget(w->srv, true, &w->reserved_addr);
    w->reserved = false;
}

/* The kernel spreads new connections over the workers' sockets unevenly,
 * so REVOKD_MAX_CONNECTIONS and the per-address limit are counted across
 * all workers, not split, and a place is reserved here at once, so that
 * workers accepting at the same moment cannot go past either limit. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct worker *w = cls;
    struct http_server *srv = w->srv;
    unsigned open = atomic_load(&srv->open);
    enum metrics_limit limit = METRICS_LIMIT_CONNECTIONS;

    reservation_drop(w);
    memset(&w->reserved_addr, 0, sizeof(w->reserved_addr));
    memcpy(&w->reserved_addr, addr, len < sizeof(w->reserved_addr) ? len : sizeof(w->reserved_addr));
    while (open < srv->max_open) {
        if (!atomic_compare_exchange_weak(&srv->open, &open, open + 1))
            continue;
        if (addr_limit_take(srv->per_address, addr)) {
            w->reserved = true;
            return MHD_YES;
        }
        atomic_fetch_sub(&srv->open, 1);
        limit = METRICS_LIMIT_PER_ADDRESS;
        break;
    }
    limit_hit(w, limit, &w->reserved_addr);
    return MHD_NO;
}

static void linger_end(struct lingerer *lg)
{
    struct worker *w = lg->worker;

    for (struct lingerer **p = &w->lingering; *p != NULL; p = &(*p)->next) {
        if (*p == lg) {
            *p = lg->next;
            break;
        }
    }
    loop_unwatch(w->loop, &lg->watch);
    close(lg->watch.fd);
    client_forget(w->srv, lg->counted, &lg->addr);
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
 * it open while what the client still sends is read and dropped; closing
 * with those bytes unread would make the kernel reset the connection, and
 * the client could lose the answer. Returns 0 when the duplicate now owns
 * c's counts. */
static int linger_start(struct client *c)
{
    struct worker *w = c->worker;
    struct lingerer *lg = calloc(1, sizeof(*lg));
    int fd = lg != NULL ? fcntl(c->fd, F_DUPFD_CLOEXEC, 0) : -1;

    if (fd < 0) {
        free(lg);
        return -1;
    }
    *lg = (struct lingerer){.watch = {.fd = fd, .on_event = on_linger_event},
                          .worker = w,
                          .next = w->lingering,
                          .until_ms = loop_now_ms() + LINGER_MS,
                          .counted = c->counted,
                          .addr = c->addr};
    if (loop_watch(w->loop, &lg->watch, EPOLLIN) < 0) {
        close(fd);
        free(lg);
        return -1;
    }
    w->lingering = lg;
    return 0;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct worker *w = cls;
    struct http_server *srv = w->srv;
    struct client *c = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

        /* on_accept reserved its place; every connection comes through it. */
        bool counted = w->reserved;
        if (!counted)
            atomic_fetch_add(&srv->open, 1);
        w->reserved = false;
        if (fd == NULL || (c = calloc(1, sizeof(*c))) == NULL) {
            /* Untracked, it would have no deadline: on_uri refuses its
             * requests, so libmicrohttpd closes it. */
            if (counted)
                addr_limit_release(srv->per_address, (const struct sockaddr *)&w->reserved_addr);
            *socket_context = NULL;
            return;
        }
        c->worker = w;
        c->fd = fd->connect_fd;
        c->state = CLIENT_RECEIVING;
        c->since_ms = loop_now_ms();
        c->addr = w->reserved_addr;
        c->counted = counted;
        c->next = w->clients;
        if (w->clients != NULL)
            w->clients->prev = c;
        w->clients = c;
        *socket_context = c;
        return;
    }
    if (c == NULL) {
        atomic_fetch_sub(&srv->open, 1);
        return;
    }
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (!c->linger || linger_start(c) < 0)
        client_forget(srv, c->counted, &c->addr);
    free(c);
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
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, sweep));
    int64_t now = loop_now_ms(), limit_ms = w->srv->app->cfg->request_timeout * 1000;

    for (struct client *c = w->clients; c != NULL; c = c->next) {
        if (c->state == CLIENT_IDLE) {
            int64_t n = bytes_received(c->fd);
            if (n >= 0 && c->idle_seen && (uint64_t)n != c->idle_bytes) {
                c->state = CLIENT_RECEIVING;
                c->since_ms = now;
            } else if (n >= 0) {
                c->idle_bytes = (uint64_t)n;
                c->idle_seen = true;
            }
        } else if (c->state == CLIENT_RECEIVING && now - c->since_ms >= limit_ms) {
            shutdown(c->fd, SHUT_RDWR);
            c->state = CLIENT_HANDLED; /* once */
            limit_hit(w, METRICS_LIMIT_REQUEST_TIME, &c->addr);
        }
    }
    for (struct lingerer *lg = w->lingering, *next; lg != NULL; lg = next) {
        next = lg->next;
        if (now >= lg->until_ms)
            linger_end(lg);
    }
    loop_timer_arm(w->loop, &w->sweep, SWEEP_MS);
}

static void on_mhd_event(struct loop_watch *lw, uint32_t events)
{
    (void)lw;
    (void)events; /* MHD_run() follows every round of events anyway */
}

static void on_wake(struct loop_watch *lw, uint32_t events)
{
    uint64_t n;
    (void)events;
    if (read(lw->fd, &n, sizeof(n)) < 0) {
        /* EAGAIN: another worker's round already took the wake-up count */
    }
}

static void worker_quiesce(struct worker *w)
{
    MHD_socket fd = MHD_quiesce_daemon(w->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    w->quiesced = true;
}

/* One round: send the Redis commands the last round queued, wait for any
 * event (or the nearest timeout), then let libmicrohttpd read requests,
 * resume the ones Redis or the pool answered and write replies. */
static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct http_server *srv = w->srv;

    while (!atomic_load(&srv->stopping)) {
        MHD_UNSIGNED_LONG_LONG mhd_ms;
        /* The tick may fail requests waiting on a link that timed out:
         * their answers are then ready, and must not wait for the next
         * event (which could be a second away). */
        int timeout = store_conn_tick(w->store);
        if (w->again) {
            timeout = 0;
        } else if (MHD_get_timeout(w->daemon, &mhd_ms) == MHD_YES &&
                   mhd_ms < (MHD_UNSIGNED_LONG_LONG)timeout) {
            /* Parked requests alone make libmicrohttpd ask for a round at
             * once: then wait for Redis instead, up to PARK_MS. */
            if (mhd_ms == 0 && w->parked > 0)
                timeout = timeout >= 0 && timeout < PARK_MS ? timeout : PARK_MS;
            else
                timeout = (int)mhd_ms;
        }
        loop_poll(w->loop, timeout);
        if (atomic_load(&srv->quiescing) && !w->quiesced)
            worker_quiesce(w);
        w->again = false;
        w->round_ns = loop_now_ns();
        MHD_run(w->daemon);
        reservation_drop(w); /* an accept that failed after on_accept */
    }
    /* Take back every signature check still in the pool (its request may
     * then ask the store), answer the requests still waiting for Redis, and
     * let libmicrohttpd take them back (it refuses to stop with connections
     * suspended): one round queues their replies, the next writes them. */
    work_inbox_drain(w->inbox);
    store_conn_free(w->store);
    w->store = NULL; /* on_request: no new request may wait any more */
    MHD_run(w->daemon);
    MHD_run(w->daemon);
    return NULL;
}

static void worker_free(struct worker *w)
{
    if (w->daemon != NULL)
        MHD_stop_daemon(w->daemon); /* completes the last requests into w->spare */
    while (w->lingering != NULL)
        linger_end(w->lingering);
    if (w->loop != NULL)
        loop_timer_disarm(w->loop, &w->sweep);
    store_conn_free(w->store);
    work_inbox_free(w->inbox);
    while (w->spare != NULL) {
        struct exchange *ex = w->spare;
        w->spare = ex->next_spare;
        free(ex->auth);
        free(ex->query);
        free(ex);
    }
    if (w->wake.fd >= 0)
        close(w->wake.fd);
    loop_free(w->loop);
}

static int worker_init(struct http_server *srv, struct worker *w, const struct sockaddr *addr,
                       bool v6)
{
    const struct config *cfg = srv->app->cfg;
    const union MHD_DaemonInfo *info;

    w->srv = srv;
    w->wake.fd = -1;
    if ((w->loop = loop_new()) == NULL || (w->store = store_conn_new(srv->app->store, w->loop)) == NULL ||
        (w->inbox = work_inbox_new(w->loop, srv->app->pool)) == NULL)
        return -1;
    /* Suspend/resume is how a request waits long. SO_REUSEPORT
     * (ADDRESS_REUSE) gives every worker its own listening socket on the
     * same port, and the kernel spreads connections over them. */
    w->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | (v6 ? MHD_USE_IPv6 : 0), 0, on_accept,
        w, on_request, w, MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_NOTIFY_CONNECTION, on_connection, w,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->max_token_bytes + HEAD_HEADROOM + REPLY_RESERVE,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, w, MHD_OPTION_URI_LOG_CALLBACK, on_uri, w,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_END);
    if (w->daemon == NULL || (info = MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_EPOLL_FD)) == NULL)
        return -1;
    w->mhd = (struct loop_watch){.fd = info->epoll_fd, .on_event = on_mhd_event};
    w->wake = (struct loop_watch){.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), .on_event = on_wake};
    if (w->wake.fd < 0 || loop_watch(w->loop, &w->mhd, EPOLLIN) < 0 ||
        loop_watch(w->loop, &w->wake, EPOLLIN) < 0)
        return -1;
    w->sweep.on_timer = on_sweep;
    loop_timer_arm(w->loop, &w->sweep, SWEEP_MS);
    return 0;
}

static void wake_workers(struct http_server *srv)
{
    uint64_t one = 1;
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].wake.fd >= 0 && write(srv->workers[i].wake.fd, &one, sizeof(one)) < 0) {
            /* the counter is saturated: that worker is awake anyway */
        }
}

struct http_server *http_server_start(struct app *app, char *err, size_t errlen)
{
    const struct config *cfg = app->cfg;
    struct sockaddr_storage ss;
    char host[HOST_MAX];
    bool v6;
    struct http_server *srv;

    if (parse_listen(cfg->listen, &ss, host, &v6) < 0) {
        snprintf(err, errlen, "REVOKD_LISTEN: expected IP:port or [IPv6]:port, got \"%.64s\"",
                 cfg->listen);
        return NULL;
    }
    unsigned n = (unsigned)cfg->threads; /* main() resolved 0 */
    if ((srv = calloc(1, sizeof(*srv))) == NULL || (srv->workers = calloc(n, sizeof(*srv->workers))) == NULL) {
        free(srv);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->app = app;
    srv->nworkers = n;
    memcpy(srv->host, host, sizeof(host));
    RAND_bytes((unsigned char *)&id_seed, sizeof(id_seed));

    srv->max_open = (unsigned)cfg->max_connections;
    /* Lingering closes count too; they cannot outnumber the connections. */
    if ((srv->per_address = addr_limit_new(2 * srv->max_open, (unsigned)cfg->max_connections_per_address)) == NULL) {
        snprintf(err, errlen, "out of memory");
        http_server_stop(srv);
        return NULL;
    }
    for (unsigned i = 0; i < n; i++) {
        errno = 0;
        if (worker_init(srv, &srv->workers[i], (struct sockaddr *)&ss, v6) < 0) {
            snprintf(err, errlen, "REVOKD_LISTEN: cannot listen on %s: %s", cfg->listen,
                     errno ? strerror(errno) : "libmicrohttpd refused");
            srv->nworkers = i + 1;
            http_server_stop(srv);
            return NULL;
        }
        if (i == 0) {
            /* Port 0 picked a port: the other workers share that one. */
            const union MHD_DaemonInfo *info =
                MHD_get_daemon_info(srv->workers[0].daemon, MHD_DAEMON_INFO_BIND_PORT);
            srv->port = info ? info->port : 0;
            if (ss.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)srv->port);
            else
                ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)srv->port);
        }
    }
    for (unsigned i = 0; i < n; i++) {
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

const char *http_server_host(const struct http_server *srv)
{
    return srv->host;
}

int http_server_port(const struct http_server *srv)
{
    return srv->port;
}

void http_server_quiesce(struct http_server *srv)
{
    atomic_store(&srv->quiescing, true);
    wake_workers(srv);
}

unsigned http_server_connections(const struct http_server *srv)
{
    return atomic_load(&srv->open);
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
    addr_limit_free(srv->per_address);
    free(srv);
}
