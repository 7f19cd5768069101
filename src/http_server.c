/* http_server.c - libmicrohttpd glue: collect the request, bound its body,
 * dispatch, send the reply, log the request line.
 *
 * A pool of worker threads each runs its own epoll loop; a handler runs on
 * the worker that owns the connection, which is why the store keeps one
 * Redis connection per thread. */
#include "revokd/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/rand.h>

#include "revokd/log.h"
#include "revokd/reply.h"
#include "revokd/router.h"

#define HOST_MAX 64 /* an IPv6 literal is at most 45 characters */

struct http_server {
    struct MHD_Daemon *daemon;
    struct app *app;
    char host[HOST_MAX]; /* the listening address without brackets */
    int port;
};

/* Per-request state, from the first call of the handler to completion. */
struct exchange {
    struct timespec start;
    char *body;
    size_t len;
    bool responded;  /* a reply was queued */
    bool too_large;  /* the body outgrew the limit: discard it, answer 413 */
    size_t discarded;
    char id[65];
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

static const char *query_lookup(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

/* Queues rep on conn and writes the request line. Consumes rep's members. */
static enum MHD_Result respond(struct MHD_Connection *conn, struct exchange *ex, const char *method,
                               const char *path, struct reply *rep)
{
    char *text = rep->body ? cJSON_PrintUnformatted(rep->body) : NULL;
    struct MHD_Response *resp;
    enum MHD_Result ok = MHD_NO;

    if (text == NULL)
        text = strdup("{\"error\":\"internal_error\",\"error_description\":\"out of memory\"}");
    resp = text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE) : NULL;
    if (resp == NULL) {
        free(text);
    } else {
        MHD_add_response_header(resp, "Content-Type", "application/json");
        /* An authorization decision must never be served from a cache. */
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        MHD_add_response_header(resp, "X-Request-Id", ex->id);
        if (rep->allow != NULL)
            MHD_add_response_header(resp, "Allow", rep->allow);
        if (rep->www_authenticate[0] != '\0')
            MHD_add_response_header(resp, "WWW-Authenticate", rep->www_authenticate);
        ok = MHD_queue_response(conn, (unsigned)rep->status, resp);
        MHD_destroy_response(resp);
    }
    ex->responded = true;

    if (log_enabled(LOG_INFO)) {
        struct timespec end;
        clock_gettime(CLOCK_MONOTONIC, &end);
        long long us = (end.tv_sec - ex->start.tv_sec) * 1000000LL +
                       (end.tv_nsec - ex->start.tv_nsec) / 1000;
        cJSON *f = rep->log ? rep->log : cJSON_CreateObject();
        rep->log = NULL;
        /* The path is logged, never the query or headers: only the path's
         * {sub} and the lookup's jti/sub may identify a token, and those
         * are allowed in logs. */
        cJSON_AddStringToObject(f, "request_id", ex->id);
        cJSON_AddStringToObject(f, "method", method);
        cJSON_AddStringToObject(f, "path", path);
        cJSON_AddNumberToObject(f, "status", rep->status);
        cJSON_AddNumberToObject(f, "latency_us", (double)us);
        log_event(rep->status >= 500 ? LOG_WARN : LOG_INFO, "request", f);
    }
    cJSON_Delete(rep->body);
    cJSON_Delete(rep->log);
    return ok;
}

static enum MHD_Result too_large(struct MHD_Connection *conn, struct exchange *ex,
                                 const char *method, const char *url, size_t max)
{
    struct reply rep = {0};
    char why[96];
    snprintf(why, sizeof(why), "the body is larger than %zu bytes (REVOKD_MAX_BODY_BYTES)", max);
    reply_error(&rep, 413, "payload_too_large", why);
    return respond(conn, ex, method, url, &rep);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct http_server *srv = cls;
    struct exchange *ex = *con_cls;
    size_t max = (size_t)srv->app->cfg->max_body_bytes;
    (void)version;

    if (ex == NULL) {
        /* First call: headers only. Refuse an announced oversized body
         * before reading it. */
        if ((ex = calloc(1, sizeof(*ex))) == NULL)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &ex->start);
        request_id(conn, ex->id, sizeof(ex->id));
        *con_cls = ex;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > max)
            return too_large(conn, ex, method, url, max);
        return MHD_YES;
    }
    if (ex->responded) {
        *upload_data_size = 0; /* discard the rest of a refused body */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* A chunked body announces no length: it is found too large only
         * while it arrives, when libmicrohttpd cannot answer yet. Discard
         * the rest and answer 413 at its end, up to a bound past which the
         * sender is just wasting our time. */
        if (ex->too_large || *upload_data_size > max - ex->len) {
            ex->too_large = true;
            ex->discarded += *upload_data_size;
            *upload_data_size = 0;
            return ex->discarded > 16 * max ? MHD_NO : MHD_YES;
        }
        if (ex->body == NULL && (ex->body = malloc(max + 1)) == NULL)
            return MHD_NO;
        memcpy(ex->body + ex->len, upload_data, *upload_data_size);
        ex->len += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (ex->too_large)
        return too_large(conn, ex, method, url, max);

    /* Last call: the whole request is here. */
    struct request req = {
        .method = method,
        .path = url,
        .authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
        .content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"),
        .body = ex->body ? ex->body : "",
        .body_len = ex->len,
        .query = query_lookup,
        .query_ctx = conn,
        .app = srv->app,
        .now = (int64_t)time(NULL),
    };
    struct reply rep = {0};
    if (ex->body != NULL)
        ex->body[ex->len] = '\0';
    router_dispatch(&req, &rep);
    return respond(conn, ex, method, url, &rep);
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
    free(ex->body);
    free(ex);
    *con_cls = NULL;
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
    if ((srv = calloc(1, sizeof(*srv))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->app = app;
    memcpy(srv->host, host, sizeof(host));
    RAND_bytes((unsigned char *)&id_seed, sizeof(id_seed));

    unsigned threads = (unsigned)cfg->threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    /* ITC lets MHD_quiesce_daemon() wake the workers at shutdown. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     (v6 ? MHD_USE_IPv6 : 0);
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->connection_timeout, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_END);
    if (srv->daemon == NULL) {
        snprintf(err, errlen, "REVOKD_LISTEN: cannot listen on %s: %s", cfg->listen,
                 errno ? strerror(errno) : "libmicrohttpd refused");
        free(srv);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
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
    MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

unsigned http_server_connections(const struct http_server *srv)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

void http_server_stop(struct http_server *srv)
{
    if (srv == NULL)
        return;
    MHD_stop_daemon(srv->daemon);
    free(srv);
}
