/* main.c - revokd: start-up, the wait for a signal, and an orderly stop.
 *
 * Start-up checks everything it can (settings, issuers, keys, addresses)
 * and stops with one line per mistake, naming the setting. Redis (on an
 * edge, central) and remote key sets are not required at start: the node
 * then reports not ready until Redis answers (the edge has replayed
 * central's feed) and every issuer has keys. SIGHUP reloads the files. */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "revokd/app.h"
#include "revokd/auth_limit.h"
#include "revokd/config.h"
#include "revokd/event_stream.h"
#include "revokd/file.h"
#include "revokd/http_server.h"
#include "revokd/keyring.h"
#include "revokd/log.h"
#include "revokd/metrics.h"
#include "revokd/router.h"
#include "revokd/store_edge.h"
#include "revokd/store_key.h"
#include "revokd/store_redis.h"
#include "revokd/work.h"

#ifndef REVOKD_VERSION
#define REVOKD_VERSION "dev"
#endif

/* How long to wait for requests in flight once no new ones are accepted. */
#define DRAIN_MS 1000

static int usage_error(const char *msg)
{
    fprintf(stderr, "revokd: %s\n", msg);
    return 2;
}

/* --key-name jti|sub ISSUER ID: the Redis key of a revocation. */
static int key_name(int argc, char **argv)
{
    struct config cfg;
    char err[512], key[STORE_KEY_SIZE];
    int rc = 0;

    if (argc != 5 || (strcmp(argv[2], "jti") != 0 && strcmp(argv[2], "sub") != 0))
        return usage_error("usage: revokd --key-name jti|sub ISSUER ID");
    if (config_load(&cfg, 1, argv, err, sizeof(err)) < 0)
        rc = usage_error(err);
    else if (strlen(argv[3]) > STORE_KEY_ID_MAX || strlen(argv[4]) > STORE_KEY_ID_MAX)
        rc = usage_error("the issuer and the id are at most 256 bytes each");
    else if (printf("%s\n", (store_key(key, cfg.key_prefix, argv[2][0] == 'j' ? STORE_KEY_JTI : STORE_KEY_SUB,
                                       argv[3], argv[4]),
                             key)) < 0)
        rc = 1;
    config_free(&cfg);
    curl_global_cleanup();
    return rc;
}

/* Modes that print something and exit; returns -1 when argv is not one. */
static int info_mode(int argc, char **argv)
{
    if (argc < 2)
        return -1;
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        config_print_help(stdout);
    else if (strcmp(argv[1], "--version") == 0)
        printf("revokd %s\n", REVOKD_VERSION);
    else if (strcmp(argv[1], "--routes") == 0)
        router_print_routes(stdout);
    else if (strcmp(argv[1], "--config-markdown") == 0)
        config_print_markdown(stdout);
    else if (strcmp(argv[1], "--config-env") == 0)
        config_print_env(stdout, argv + 2);
    else if (strcmp(argv[1], "--config-json") == 0)
        config_print_json(stdout);
    else if (strcmp(argv[1], "--key-name") == 0)
        return key_name(argc, argv);
    else
        return -1;
    return 0;
}

/* REVOKD_THREADS and REVOKD_VERIFY_THREADS of 0, from the cores this
 * process may run on (a container's cpuset included). The event loops leave
 * one core to the rest of the machine, typically Redis and the kernel's
 * network work: they are mostly waiting on sockets, and one fewer loop that
 * fights Redis for a core answers faster. The pool takes half the cores:
 * it covers the usual trickle of new tokens, and under a flood of them the
 * loops verify too (check_verify), so more pool threads would only crowd
 * the cores (on 2 cores, a pool of 2 checked 29,000 tokens/s, of 1 36,000). */
static void resolve_threads(struct config *cfg)
{
    cpu_set_t set;
    long cores = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;

    if (cfg->threads == 0)
        cfg->threads = cores > 1 ? cores - 1 : 1;
    if (cfg->verify_threads == 0)
        cfg->verify_threads = cores > 1 ? cores / 2 : 1;
}

/* Longest feed key file, and key, read. */
#define FEED_KEY_FILE_MAX 4096
#define FEED_KEY_MIN 16
#define FEED_KEY_MAX 1024

static void edge_limits(void *arg, const char *iss, int64_t *leeway, int64_t *max_lifetime)
{
    keyring_limits(arg, iss, leeway, max_lifetime);
}

/* Reads the key of REVOKD_FEED_KEY_FILE into key: its first line that is
 * not a comment, printable ASCII without blanks, as it goes into a header.
 * Returns 0, or -1 with one line in err. The file's text is wiped; the
 * caller wipes key once done with it. */
static int read_feed_key(const struct config *cfg, char key[FEED_KEY_MAX + 1], char *err, size_t errlen)
{
    char why[256];
    size_t len = 0, lineno = 0;
    char *text = file_read(cfg->feed_key_file, FEED_KEY_FILE_MAX, &len, why, sizeof(why));
    char *cursor = text, *line = text != NULL ? file_next_line(&cursor, &lineno) : NULL;
    size_t n = line != NULL ? strlen(line) : 0;
    bool printable = line != NULL;
    int rc = -1;

    for (size_t i = 0; i < n; i++)
        printable &= line[i] > ' ' && line[i] < 0x7f;
    if (text == NULL)
        snprintf(err, errlen, "REVOKD_FEED_KEY_FILE: %s", why);
    else if (line == NULL)
        snprintf(err, errlen, "REVOKD_FEED_KEY_FILE: no key in the file");
    else if (n < FEED_KEY_MIN || n > FEED_KEY_MAX || !printable)
        snprintf(err, errlen, "REVOKD_FEED_KEY_FILE: the key must be %d to %d printable ASCII characters without blanks",
                 FEED_KEY_MIN, FEED_KEY_MAX);
    else {
        memcpy(key, line, n + 1);
        rc = 0;
    }
    if (text != NULL)
        file_free(text, len);
    return rc;
}

/* The store of REVOKD_MODE=edge: central's revocations, followed from its
 * feed with the key of REVOKD_FEED_KEY_FILE. NULL with one line in err. */
static struct store *edge_store(struct app *app, char *err, size_t errlen)
{
    const struct config *cfg = app->cfg;
    char key[FEED_KEY_MAX + 1];
    struct store *s = NULL;

    if (read_feed_key(cfg, key, err, errlen) == 0) {
        struct store_edge_opts o = {
            .feed_url = cfg->feed_url,
            .admin_url = cfg->central_admin_url,
            .feed_key = key,
            .ca_file = cfg->ca_file,
            .user_agent = "revokd/" REVOKD_VERSION " edge",
            .poll_wait_s = cfg->edge_poll_wait,
            .timeout_ms = cfg->edge_timeout_ms,
            .max_staleness_ms = cfg->edge_max_staleness_ms,
            .max_revocations = (size_t)cfg->edge_max_revocations,
            .max_pending = (int)cfg->store_max_pending,
            .limits = edge_limits,
            .limits_arg = app->keys,
        };
        s = store_edge_new(&o, err, errlen); /* the store keeps a copy */
    }
    OPENSSL_cleanse(key, sizeof(key));
    return s;
}

/* On SIGHUP, an edge reads its feed key again: central may have rotated it.
 * A key that cannot be read leaves the one in force. */
static void edge_rekey(struct app *app)
{
    char err[512], key[FEED_KEY_MAX + 1];

    if (!app->edge)
        return;
    int rc = read_feed_key(app->cfg, key, err, sizeof(err));
    if (rc == 0 && (rc = store_edge_set_key(app->store, key)) < 0)
        snprintf(err, sizeof(err), "out of memory");
    OPENSSL_cleanse(key, sizeof(key));
    if (rc < 0)
        log_msg(LOG_ERROR, "feed_key_reload_failed", "the feed key in force is kept: %s", err);
    else
        log_msg(LOG_INFO, "feed_key_reloaded", "the feed's next requests carry the key just read");
}

/* Builds everything a request may use, in app, and starts serving. Returns
 * 0, or -1 with one line in err; app_stop() undoes either. */
static int app_start(struct app *app, struct config *cfg, char *err, size_t errlen)
{
    app->cfg = cfg;
    if ((app->cache = token_cache_new((size_t)cfg->token_cache_size, cfg->issuer)) == NULL) {
        snprintf(err, errlen, "out of memory for REVOKD_TOKEN_CACHE_SIZE");
        return -1;
    }
    if ((app->keys = keyring_new(cfg, app->cache, err, errlen)) == NULL)
        return -1;
    if ((app->auth_limit = auth_limit_new((int)cfg->auth_failures_burst, (int)cfg->auth_failures_per_minute)) == NULL) {
        snprintf(err, errlen, "out of memory for the failed-authentication table");
        return -1;
    }
    app->edge = strcmp(cfg->mode, "edge") == 0;
    struct store_redis_opts so = {
        .redis = &cfg->redis_url_parsed,
        .sentinels = &cfg->sentinels_parsed,
        .master = cfg->sentinel_master,
        .source = cfg->redis_source_address[0] != '\0' ? cfg->redis_source_address : NULL,
        .prefix = cfg->key_prefix,
        .timeout_ms = (int)cfg->redis_timeout_ms,
        .max_pending = (int)cfg->store_max_pending,
        .min_replicas = (int)cfg->min_replicas,
        .replication_timeout_ms = (int)cfg->replication_timeout_ms,
        .role_check_ms = (int)cfg->role_check_ms,
    };
    /* An edge connects to no Redis: central's feed is its store. */
    if ((app->store = app->edge ? edge_store(app, err, errlen) : store_redis_new(&so, err, errlen)) == NULL)
        return -1;
    if (store_start(app->store) < 0) {
        snprintf(err, errlen, app->edge ? "cannot start the feed's thread" : "cannot start the Sentinel watcher thread");
        return -1;
    }
    struct event_stream_opts eo = {.store = app->store, .heartbeat_ms = cfg->feed_heartbeat_ms,
                                   .buffer_max = (size_t)cfg->feed_buffer_bytes,
                                   .max_consumers = (unsigned)cfg->feed_max_consumers};
    if (!app->edge && (app->events = event_stream_start(&eo, err, errlen)) == NULL)
        return -1;
    resolve_threads(cfg);
    if ((app->pool = work_pool_new((unsigned)cfg->verify_threads)) == NULL) {
        snprintf(err, errlen, "cannot start the signature-check threads");
        return -1;
    }
    metrics_init(router_route_count(), router_route_label);
    return (app->http = http_server_start(app, err, errlen)) != NULL ? 0 : -1;
}

static void app_stop(struct app *app)
{
    event_stream_stop(app->events); /* no connection may stay suspended */
    http_server_stop(app->http);    /* drains what its workers gave the pool */
    event_stream_free(app->events);
    work_pool_free(app->pool);
    store_free(app->store);
    keyring_free(app->keys);
    auth_limit_free(app->auth_limit);
    token_cache_free(app->cache);
}

static void log_listening(const struct app *app)
{
    const struct config *cfg = app->cfg;
    cJSON *f = cJSON_CreateObject();
    size_t issuers, keys;
    bool admin_api;

    keyring_summary(app->keys, &issuers, &keys, &admin_api);

    cJSON_AddStringToObject(f, "listen", cfg->listen);
    cJSON_AddStringToObject(f, "address", cfg->listen_addr.host);
    cJSON_AddNumberToObject(f, "port", http_server_port(app->http));
    cJSON_AddBoolToObject(f, "tls", http_server_tls(app->http, false));
    if (cfg->admin_listen[0] != '\0') {
        cJSON_AddStringToObject(f, "admin_listen", cfg->admin_listen);
        cJSON_AddNumberToObject(f, "admin_port", http_server_admin_port(app->http));
        cJSON_AddBoolToObject(f, "admin_tls", http_server_tls(app->http, true));
    }
    cJSON_AddStringToObject(f, "store", app->edge ? "edge" : cfg->sentinels_parsed.n > 0 ? "sentinel" : "redis");
    if (app->edge)
        cJSON_AddStringToObject(f, "feed", cfg->feed_url);
    cJSON_AddNumberToObject(f, "issuers", (double)issuers);
    cJSON_AddNumberToObject(f, "keys", (double)keys);
    cJSON_AddNumberToObject(f, "threads", (double)cfg->threads);
    cJSON_AddNumberToObject(f, "verify_threads", (double)cfg->verify_threads);
    cJSON_AddBoolToObject(f, "admin_api", admin_api);
    cJSON_AddStringToObject(f, "version", REVOKD_VERSION);
    log_event(LOG_INFO, "listening", f);
}

/* The listeners' certificates, on SIGHUP: new connections get the new
 * ones, open connections keep theirs. */
static void reload_tls(struct app *app)
{
    char err[512];

    if (!http_server_tls(app->http, false) && !http_server_tls(app->http, true))
        return;
    if (http_server_reload_tls(app->http, err, sizeof(err)) < 0)
        log_msg(LOG_ERROR, "tls_reload_failed", "the certificates in force are kept: %s", err);
    else
        log_msg(LOG_INFO, "tls_reloaded", "new connections get the certificates just read");
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Orderly stop: readiness fails first so load balancers drain the node
 * while it still serves, then no new connections, then a bounded wait for
 * requests in flight. */
static void drain(struct app *app, int sig)
{
    atomic_store(&app->shutting_down, true);
    log_msg(LOG_INFO, "shutdown", "signal %d: draining for %lld ms", sig, app->cfg->shutdown_grace_ms);
    sleep_ms((long)app->cfg->shutdown_grace_ms);
    http_server_quiesce(app->http);
    /* Event streams never end by themselves: they end now, each after what
     * it holds, and their consumers resume elsewhere from the last id. */
    event_stream_stop(app->events);
    for (int waited = 0; waited < DRAIN_MS && http_server_connections(app->http) > 0; waited += 50)
        sleep_ms(50);
}

int main(int argc, char **argv)
{
    struct config cfg;
    struct app app = {0};
    char err[8192];
    sigset_t sigs;
    int sig = 0, rc = 2;

    int info = info_mode(argc, argv);
    if (info >= 0)
        return info;
    /* Signals are taken by sigwait() below; block them before any thread
     * exists so no worker is interrupted by them. A write to a Redis that
     * went away must be an error, not a SIGPIPE death. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Before any thread: libcurl's global set-up is not thread-safe. */
    curl_global_init(CURL_GLOBAL_DEFAULT);

    if (config_load(&cfg, argc, argv, err, sizeof(err)) < 0) {
        usage_error(err);
    } else if (log_set_level(cfg.log_level), app_start(&app, &cfg, err, sizeof(err)) < 0) {
        usage_error(err);
    } else {
        log_listening(&app);
        /* SIGHUP reloads the files; a failed reload is logged and changes
         * nothing (keyring_reload; the certificates apart from the keys). */
        while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) {
            if (keyring_reload(app.keys, err, sizeof(err)) == 0)
                event_stream_end_all(app.events, EVENT_STREAM_END_reloaded);
            reload_tls(&app);
            edge_rekey(&app);
        }
        drain(&app, sig);
        rc = 0;
    }
    app_stop(&app);
    if (rc == 0)
        log_msg(LOG_INFO, "stopped", "revokd stopped");
    config_free(&cfg);
    curl_global_cleanup();
    return rc;
}
