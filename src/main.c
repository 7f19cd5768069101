/* main.c - revokd: start-up, the wait for a signal, and an orderly stop.
 *
 * Start-up checks everything it can (settings, keys, addresses) and stops
 * with one line naming the setting at the first problem. Redis is not
 * required at start: the node then reports not ready until Redis answers. */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "revokd/admin_keys.h"
#include "revokd/app.h"
#include "revokd/config.h"
#include "revokd/http_server.h"
#include "revokd/metrics.h"
#include "revokd/jwks.h"
#include "revokd/log.h"
#include "revokd/router.h"
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

/* Modes that print something and exit; returns -1 when argv is not one. */
static int info_mode(int argc, char **argv)
{
    if (argc < 2)
        return -1;
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        config_print_help(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("revokd %s\n", REVOKD_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--routes") == 0) {
        router_print_routes(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--config-markdown") == 0) {
        config_print_markdown(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--key-name") == 0) {
        struct config cfg;
        char err[256], key[STORE_KEY_SIZE];
        if (argc != 5 || (strcmp(argv[2], "jti") != 0 && strcmp(argv[2], "sub") != 0))
            return usage_error("usage: revokd --key-name jti|sub ISSUER ID");
        if (config_load(&cfg, 1, argv, err, sizeof(err)) < 0)
            return usage_error(err);
        if (store_key_prefix_valid(cfg.key_prefix) < 0 || strlen(argv[3]) > STORE_KEY_ID_MAX ||
            strlen(argv[4]) > STORE_KEY_ID_MAX) {
            config_free(&cfg);
            return usage_error("invalid REVOKD_KEY_PREFIX, issuer or id");
        }
        store_key(key, cfg.key_prefix, argv[2][0] == 'j' ? STORE_KEY_JTI : STORE_KEY_SUB, argv[3],
                  argv[4]);
        printf("%s\n", key);
        config_free(&cfg);
        return 0;
    }
    return -1;
}

static int load_keys(const struct config *cfg, struct jwks *keys, char *err, size_t errlen)
{
    char why[384];
    int alg;

    /* Name the algorithm settings themselves when they are wrong, before
     * any file is read. */
    alg = jwks_alg_parse(cfg->jwt_hmac_alg);
    if (alg < ALG_HS256) {
        snprintf(err, errlen, "REVOKD_JWT_HMAC_ALG: \"%.16s\" is not HS256, HS384 or HS512",
                 cfg->jwt_hmac_alg);
        return -1;
    }
    alg = cfg->jwt_public_key_alg[0] ? jwks_alg_parse(cfg->jwt_public_key_alg) : ALG_RS256;
    if (alg < 0 || alg >= ALG_HS256) {
        snprintf(err, errlen,
                 "REVOKD_JWT_PUBLIC_KEY_ALG: \"%.16s\" is not RS256, RS384, RS512, ES256 or ES384",
                 cfg->jwt_public_key_alg);
        return -1;
    }

    if (cfg->jwks_file[0] != '\0' && jwks_load_file(keys, cfg->jwks_file, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "REVOKD_JWKS_FILE: %s", why);
        return -1;
    }
    if (cfg->jwt_public_key_file[0] != '\0' &&
        jwks_load_pem(keys, cfg->jwt_public_key_file, cfg->jwt_public_key_alg, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "REVOKD_JWT_PUBLIC_KEY_FILE: %s", why);
        return -1;
    }
    if (cfg->jwt_hmac_secret_file[0] != '\0' &&
        jwks_load_hmac(keys, cfg->jwt_hmac_secret_file, cfg->jwt_hmac_alg, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "REVOKD_JWT_HMAC_SECRET_FILE: %s", why);
        return -1;
    }
    if (jwks_count(keys) == 0) {
        snprintf(err, errlen,
                 "no verification key: set REVOKD_JWKS_FILE, REVOKD_JWT_PUBLIC_KEY_FILE or "
                 "REVOKD_JWT_HMAC_SECRET_FILE");
        return -1;
    }
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

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    struct config cfg;
    struct app app = {0};
    struct jwks *keys = jwks_new();
    struct http_server *srv = NULL;
    char err[512];
    sigset_t sigs;
    int sig = 0, rc = 2;

    int info = info_mode(argc, argv);
    if (info >= 0) {
        jwks_free(keys);
        return info;
    }

    /* Signals are taken by sigwait() below; block them before any thread
     * exists so no worker is interrupted by them. A write to a Redis that
     * went away must be an error, not a SIGPIPE death. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (config_load(&cfg, argc, argv, err, sizeof(err)) < 0) {
        jwks_free(keys);
        config_free(&cfg);
        return usage_error(err);
    }
    if (log_set_level(cfg.log_level) < 0) {
        usage_error("REVOKD_LOG_LEVEL: expected debug, info, warn or error");
        goto out;
    }
    if (load_keys(&cfg, keys, err, sizeof(err)) < 0) {
        usage_error(err);
        goto out;
    }
    if (cfg.admin_keys_file[0] != '\0' &&
        (app.admins = admin_keys_load(cfg.admin_keys_file, err, sizeof(err))) == NULL) {
        fprintf(stderr, "revokd: REVOKD_ADMIN_KEYS_FILE: %s\n", err);
        goto out;
    }
    struct store_redis_opts so = {
        .url = cfg.redis_url,
        .sentinels = cfg.sentinels,
        .master = cfg.sentinel_master,
        .prefix = cfg.key_prefix,
        .timeout_ms = (int)cfg.redis_timeout_ms,
        .min_replicas = (int)cfg.min_replicas,
        .replication_timeout_ms = (int)cfg.replication_timeout_ms,
        .role_check_ms = (int)cfg.role_check_ms,
    };
    if ((app.store = store_redis_new(&so, err, sizeof(err))) == NULL) {
        usage_error(err);
        goto out;
    }
    app.cfg = &cfg;
    app.policy = (struct jwt_policy){
        .keys = keys,
        .issuer = cfg.issuer,
        .audience = cfg.audience,
        .leeway = cfg.leeway,
        .max_lifetime = cfg.max_token_lifetime,
        .max_token_bytes = (size_t)cfg.max_token_bytes,
    };
    if (store_start(app.store) < 0) {
        usage_error("cannot start the Sentinel watcher thread");
        goto out;
    }
    if ((app.cache = token_cache_new((size_t)cfg.token_cache_size)) == NULL) {
        usage_error("out of memory for REVOKD_TOKEN_CACHE_SIZE");
        goto out;
    }
    resolve_threads(&cfg);
    if ((app.pool = work_pool_new((unsigned)cfg.verify_threads)) == NULL) {
        usage_error("cannot start the signature-check threads");
        goto out;
    }
    metrics_init(router_route_count(), router_route_label);
    if ((srv = http_server_start(&app, err, sizeof(err))) == NULL) {
        usage_error(err);
        goto out;
    }
    app.http = srv;

    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "listen", cfg.listen);
    cJSON_AddStringToObject(f, "address", http_server_host(srv));
    cJSON_AddNumberToObject(f, "port", http_server_port(srv));
    cJSON_AddStringToObject(f, "store", cfg.sentinels[0] ? "sentinel" : "redis");
    cJSON_AddNumberToObject(f, "keys", (double)jwks_count(keys));
    cJSON_AddNumberToObject(f, "threads", (double)cfg.threads);
    cJSON_AddNumberToObject(f, "verify_threads", (double)cfg.verify_threads);
    cJSON_AddBoolToObject(f, "admin_api", app.admins != NULL);
    cJSON_AddStringToObject(f, "version", REVOKD_VERSION);
    log_event(LOG_INFO, "listening", f);

    sigwait(&sigs, &sig);

    /* Orderly stop: readiness fails first so load balancers drain the node
     * while it still serves, then no new connections, then a bounded wait
     * for requests in flight. */
    atomic_store(&app.shutting_down, true);
    log_msg(LOG_INFO, "shutdown", "signal %d: draining for %lld ms", sig, cfg.shutdown_grace_ms);
    sleep_ms((long)cfg.shutdown_grace_ms);
    http_server_quiesce(srv);
    for (int waited = 0; waited < DRAIN_MS && http_server_connections(srv) > 0; waited += 50)
        sleep_ms(50);
    rc = 0;

out:
    http_server_stop(srv); /* drains what its workers gave the pool */
    work_pool_free(app.pool);
    store_free(app.store);
    token_cache_free(app.cache);
    admin_keys_free(app.admins);
    jwks_free(keys);
    if (rc == 0)
        log_msg(LOG_INFO, "stopped", "revokd stopped");
    config_free(&cfg);
    return rc;
}
