/* keyring.c - the keys in force, their refresh and their reload; see
 * keyring.h.
 *
 * Everything one configuration yields lives in a struct generation: the
 * issuers, their policies and keys, the admin keys and the fetcher of the
 * remote sets. A reload builds a whole new generation beside the running
 * one and swaps it in under the write lock, so a broken file changes
 * nothing and a good one changes everything at once. */
#include "revokd/keyring.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "revokd/admin_keys.h"
#include "revokd/clients.h"
#include "revokd/issuers.h"
#include "revokd/jwks.h"
#include "revokd/jwks_fetch.h"
#include "revokd/log.h"
#include "revokd/metrics.h"

#ifndef REVOKD_VERSION
#define REVOKD_VERSION "dev"
#endif

/* What revokd knows of one issuer's keys. */
struct held {
    struct jwks *set; /* NULL until a remote set is first fetched */
    int64_t loaded_at;
    enum jwks_fetch_result last;
    bool attempted, stale;
    uint64_t fetches[JWKS_FETCH_NRESULTS];
};

struct generation {
    struct keyring *ring;
    struct issuers conf;
    struct jwt_policy *policies; /* conf.n, as jwt_verify reads them */
    struct held *held;           /* conf.n */
    struct jwt_trust trust;
    struct admin_keys *admins;
    struct admin_keys *feeds; /* read the revocation log only */
    struct clients *clients;
    struct jwks_fetch *fetch;    /* NULL without remote sets */
    size_t *source_of;           /* fetch source -> issuer */
    struct jwks_fetch_source *sources;
};

struct keyring {
    pthread_rwlock_t lock;           /* guards gen and what it holds */
    pthread_mutex_t reload_lock;     /* one reload at a time */
    const struct config *cfg;
    struct token_cache *cache;
    struct generation *gen;
};

static void generation_free(struct generation *g)
{
    if (g == NULL)
        return;
    jwks_fetch_stop(g->fetch);
    for (size_t i = 0; g->held != NULL && i < g->conf.n; i++)
        jwks_free(g->held[i].set);
    free(g->held);
    free(g->policies);
    free(g->source_of);
    free(g->sources);
    admin_keys_free(g->admins);
    admin_keys_free(g->feeds);
    clients_free(g->clients);
    issuers_free(&g->conf);
    free(g);
}

static int64_t unix_now(void)
{
    return (int64_t)time(NULL);
}

/* How the key files are named in mistakes: in the issuers file, and as the
 * settings of the single issuer. */
static const char *const file_names[2][3] = {
    {"jwks_file", "public_key_file", "hmac_secret_file"},
    {"REVOKD_JWKS_FILE", "REVOKD_JWT_PUBLIC_KEY_FILE", "REVOKD_JWT_HMAC_SECRET_FILE"},
};

/* The key files of issuer c into a new set, or NULL with the reason in why,
 * naming the file by names[]. */
static struct jwks *load_files(const struct issuer_conf *c, const char *const names[3], char *why, size_t size)
{
    struct jwks_opts opts = {.algs = c->algs};
    struct jwks *set = jwks_new();
    char detail[384];

    if (set == NULL) {
        snprintf(why, size, "out of memory");
        return NULL;
    }
    if (c->jwks_file != NULL && jwks_load_file(set, c->jwks_file, &opts, detail, sizeof(detail)) < 0)
        snprintf(why, size, "%s: %s", names[0], detail);
    else if (c->public_key_file != NULL &&
             jwks_load_pem(set, c->public_key_file, c->public_key_alg, c->algs, detail, sizeof(detail)) < 0)
        snprintf(why, size, "%s: %s", names[1], detail);
    else if (c->hmac_secret_file != NULL &&
             jwks_load_hmac(set, c->hmac_secret_file, c->hmac_alg, c->algs, detail, sizeof(detail)) < 0)
        snprintf(why, size, "%s: %s", names[2], detail);
    else if (jwks_count(set) == 0)
        snprintf(why, size, "%s: no key for signatures", c->jwks_file != NULL ? names[0] : names[1]);
    else
        return set;
    jwks_free(set);
    return NULL;
}

static void fetched(void *arg, const struct jwks_fetch_outcome *o);

/* Starts the fetcher of g's remote sets, if it has any. */
static int start_fetch(struct generation *g, char *err, size_t errlen)
{
    const struct config *cfg = g->ring->cfg;
    size_t n = 0;

    for (size_t i = 0; i < g->conf.n; i++)
        if (issuers_remote(&g->conf.at[i])) {
            const struct issuer_conf *c = &g->conf.at[i];
            g->source_of[n] = i;
            g->sources[n++] = (struct jwks_fetch_source){c->iss, c->jwks_url, c->discovery, c->algs};
        }
    if (n == 0)
        return 0;
    struct jwks_fetch_opts o = {
        .ca_file = cfg->ca_file,
        .refresh_min_ms = cfg->jwks_refresh_min * 1000,
        .refresh_max_ms = cfg->jwks_refresh_max * 1000,
        .kick_interval_ms = cfg->jwks_unknown_kid_interval * 1000,
        .timeout_ms = cfg->jwks_fetch_timeout_ms,
        .max_bytes = (size_t)cfg->jwks_max_bytes,
        .max_keys = (size_t)cfg->jwks_max_keys,
        .user_agent = "revokd/" REVOKD_VERSION,
        .done = fetched,
        .arg = g,
    };
    return (g->fetch = jwks_fetch_start(g->sources, n, &o, err, errlen)) != NULL ? 0 : -1;
}

/* A generation from the configuration as the files say now: issuers, key
 * files and admin keys read, remote sets not fetched yet. */
static struct generation *generation_new(struct keyring *r, char *err, size_t errlen)
{
    const struct config *cfg = r->cfg;
    struct generation *g = calloc(1, sizeof(*g));
    char why[512];

    if (g == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->ring = r;
    if (issuers_load(&g->conf, cfg, err, errlen) < 0) {
        free(g);
        return NULL;
    }
    size_t n = g->conf.n;
    g->policies = calloc(n, sizeof(*g->policies));
    g->held = calloc(n, sizeof(*g->held));
    g->source_of = calloc(n, sizeof(*g->source_of));
    g->sources = calloc(n, sizeof(*g->sources));
    if (g->policies == NULL || g->held == NULL || g->source_of == NULL || g->sources == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* Every issuer's files are read, so that every mistake is reported. */
    struct issuers_mistakes m = {err, errlen, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        const struct issuer_conf *c = &g->conf.at[i];
        bool in_file = cfg->issuers_file[0] != '\0';
        if (!issuers_remote(c) && (g->held[i].set = load_files(c, file_names[!in_file], why, sizeof(why))) == NULL) {
            if (in_file)
                issuers_mistake(&m, "REVOKD_ISSUERS_FILE: issuers[%zu]: %s", i, why);
            else
                issuers_mistake(&m, "%s", why);
        }
        if (!issuers_remote(c))
            g->held[i].loaded_at = unix_now();
        g->policies[i] = (struct jwt_policy){
            .keys = g->held[i].set,
            .issuer = c->iss,
            .audiences = c->audiences,
            .n_audiences = c->n_audiences,
            .leeway = c->leeway,
            .max_lifetime = c->max_lifetime,
        };
    }
    g->trust = (struct jwt_trust){g->policies, n, (size_t)cfg->max_token_bytes};
    if (cfg->admin_keys_file[0] != '\0' && (g->admins = admin_keys_load(cfg->admin_keys_file, why, sizeof(why))) == NULL)
        issuers_mistake(&m, "REVOKD_ADMIN_KEYS_FILE: %s", why);
    if (cfg->feed_keys_file[0] != '\0' && (g->feeds = admin_keys_load(cfg->feed_keys_file, why, sizeof(why))) == NULL)
        issuers_mistake(&m, "REVOKD_FEED_KEYS_FILE: %s", why);
    if (cfg->clients_file[0] != '\0' && (g->clients = clients_load(cfg->clients_file, why, sizeof(why))) == NULL)
        issuers_mistake(&m, "REVOKD_CLIENTS_FILE: %s", why);
    issuers_mistakes_end(&m);
    if (m.count > 0)
        goto fail;
    return g;

fail:
    generation_free(g);
    return NULL;
}

/* ---- fetched key sets ---- */

static void log_fetch(const struct issuer_conf *c, const struct jwks_fetch_outcome *o, const struct held *h)
{
    cJSON *f = cJSON_CreateObject();
    bool ok = o->result == JWKS_FETCH_ok;

    cJSON_AddStringToObject(f, "issuer", c->iss);
    cJSON_AddStringToObject(f, "url", o->url);
    cJSON_AddStringToObject(f, "result", jwks_fetch_result_name(o->result));
    cJSON_AddNumberToObject(f, "keys", h->set != NULL ? (double)jwks_count(h->set) : 0);
    if (o->error[0] != '\0')
        cJSON_AddStringToObject(f, ok ? "skipped_key" : "error", o->error);
    if (o->skipped > 0)
        cJSON_AddNumberToObject(f, "skipped", o->skipped);
    if (!ok)
        cJSON_AddBoolToObject(f, "keeping_last_good_set", h->set != NULL);
    cJSON_AddNumberToObject(f, "next_fetch_in_s", (double)(o->next_ms / 1000));
    log_event(ok && o->skipped == 0 ? LOG_INFO : LOG_WARN, ok ? "jwks_fetched" : "jwks_fetch_failed", f);
}

/* On the fetcher's thread: a fetch of g's source o->source ended. */
static void fetched(void *arg, const struct jwks_fetch_outcome *o)
{
    struct generation *g = arg;
    struct keyring *r = g->ring;
    size_t i = g->source_of[o->source];
    struct held *h = &g->held[i];
    struct jwks *old = NULL;
    bool withdrawn = false;

    pthread_rwlock_wrlock(&r->lock);
    h->attempted = true;
    h->last = o->result;
    h->fetches[o->result]++;
    if (o->set != NULL) {
        old = h->set;
        withdrawn = old != NULL && !jwks_subset(old, o->set);
        h->set = o->set;
        g->policies[i].keys = o->set;
        h->loaded_at = unix_now();
    }
    h->stale = o->set == NULL && h->set != NULL;
    /* Only the generation in force decides what the cache may hold. */
    withdrawn = withdrawn && r->gen == g;
    pthread_rwlock_unlock(&r->lock);
    if (withdrawn && r->cache != NULL)
        token_cache_clear(r->cache);
    jwks_free(old);
    log_fetch(&g->conf.at[i], o, h);
}

/* ---- the keyring ---- */

struct keyring *keyring_new(const struct config *cfg, struct token_cache *cache, char *err, size_t errlen)
{
    struct keyring *r = calloc(1, sizeof(*r));
    pthread_rwlockattr_t attr;

    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->cfg = cfg;
    r->cache = cache;
    /* Writers first: a steady stream of checks must not hold a refresh off. */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&r->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&r->reload_lock, NULL);
    if ((r->gen = generation_new(r, err, errlen)) == NULL || start_fetch(r->gen, err, errlen) < 0) {
        keyring_free(r);
        return NULL;
    }
    return r;
}

void keyring_free(struct keyring *r)
{
    if (r == NULL)
        return;
    generation_free(r->gen);
    pthread_rwlock_destroy(&r->lock);
    pthread_mutex_destroy(&r->reload_lock);
    free(r);
}

int keyring_reload(struct keyring *r, char *err, size_t errlen)
{
    struct generation *g, *old;

    pthread_mutex_lock(&r->reload_lock);
    if ((g = generation_new(r, err, errlen)) == NULL || start_fetch(g, err, errlen) < 0) {
        generation_free(g);
        pthread_mutex_unlock(&r->reload_lock);
        metrics_reload(false);
        log_msg(LOG_ERROR, "reload_failed", "the configuration in force is kept: %s", err);
        return -1;
    }
    pthread_rwlock_wrlock(&r->lock);
    old = r->gen;
    /* A remote set configured alike stays in force until fetched anew. */
    for (size_t i = 0; i < g->conf.n; i++)
        for (size_t j = 0; j < old->conf.n; j++)
            if (g->held[i].set == NULL && issuers_same_remote(&g->conf.at[i], &old->conf.at[j])) {
                g->held[i] = old->held[j];
                g->policies[i].keys = g->held[i].set;
                memset(&old->held[j], 0, sizeof(old->held[j]));
            }
    r->gen = g;
    pthread_rwlock_unlock(&r->lock);
    /* Rules or keys may have changed under tokens already verified. */
    if (r->cache != NULL)
        token_cache_clear(r->cache);
    generation_free(old);
    pthread_mutex_unlock(&r->reload_lock);
    metrics_reload(true);
    log_msg(LOG_INFO, "reloaded", "%zu issuer(s); remote key sets are fetched anew", g->conf.n);
    return 0;
}

int keyring_verify(struct keyring *r, const char *token, size_t len, struct jwt_claims *out)
{
    int rc;

    pthread_rwlock_rdlock(&r->lock);
    struct generation *g = r->gen;
    rc = jwt_verify(&g->trust, token, len, out);
    if (rc == -JWT_unknown_key && out->issuer >= 0 && g->fetch != NULL)
        for (size_t s = 0; s < g->conf.n && g->sources[s].iss != NULL; s++)
            if (g->source_of[s] == (size_t)out->issuer) {
                jwks_fetch_kick(g->fetch, s);
                break;
            }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

enum keyring_admin keyring_admin_check(struct keyring *r, const char *key, size_t len, char name[ADMIN_NAME_MAX + 1])
{
    enum keyring_admin a = KEYRING_ADMIN_NONE;
    const char *found;

    pthread_rwlock_rdlock(&r->lock);
    if (r->gen->admins != NULL) {
        found = admin_keys_check(r->gen->admins, key, len);
        a = found != NULL ? KEYRING_ADMIN_OK : KEYRING_ADMIN_DENIED;
        if (found != NULL)
            snprintf(name, ADMIN_NAME_MAX + 1, "%s", found);
    }
    pthread_rwlock_unlock(&r->lock);
    return a;
}

enum keyring_admin keyring_feed_check(struct keyring *r, const char *key, size_t len, char name[ADMIN_NAME_MAX + 1],
                                      bool *admin)
{
    enum keyring_admin a = KEYRING_ADMIN_NONE;

    pthread_rwlock_rdlock(&r->lock);
    const struct generation *g = r->gen;
    if (g->admins != NULL || g->feeds != NULL) {
        /* Both sets compared in full, whichever matches. */
        const char *as_admin = admin_keys_check(g->admins, key, len);
        const char *as_feed = admin_keys_check(g->feeds, key, len);
        const char *found = as_admin != NULL ? as_admin : as_feed;
        a = found != NULL ? KEYRING_ADMIN_OK : KEYRING_ADMIN_DENIED;
        if (found != NULL)
            snprintf(name, ADMIN_NAME_MAX + 1, "%s", found);
        *admin = as_admin != NULL;
    }
    pthread_rwlock_unlock(&r->lock);
    return a;
}

int keyring_client_check(struct keyring *r, const char *id, const char *secret, size_t len)
{
    int perms;

    pthread_rwlock_rdlock(&r->lock);
    perms = clients_check(r->gen->clients, id, secret, len);
    pthread_rwlock_unlock(&r->lock);
    return perms;
}

void keyring_limits(struct keyring *r, const char *iss, int64_t *leeway, int64_t *max_lifetime)
{
    pthread_rwlock_rdlock(&r->lock);
    const struct generation *g = r->gen;
    *leeway = *max_lifetime = 0;
    for (size_t i = 0; i < g->conf.n; i++) {
        const struct issuer_conf *c = &g->conf.at[i];
        if (strcmp(c->iss, iss) == 0) {
            *leeway = c->leeway;
            *max_lifetime = c->max_lifetime;
            break;
        }
        *leeway = c->leeway > *leeway ? c->leeway : *leeway;
        *max_lifetime = c->max_lifetime > *max_lifetime ? c->max_lifetime : *max_lifetime;
    }
    pthread_rwlock_unlock(&r->lock);
}

int64_t keyring_log_retention(struct keyring *r)
{
    int64_t longest = 0;

    pthread_rwlock_rdlock(&r->lock);
    const struct generation *g = r->gen;
    for (size_t i = 0; i < g->conf.n; i++) {
        const struct issuer_conf *c = &g->conf.at[i];
        if (c->max_lifetime + 2 * c->leeway > longest)
            longest = c->max_lifetime + 2 * c->leeway;
    }
    pthread_rwlock_unlock(&r->lock);
    return longest;
}

void keyring_each(struct keyring *r, void (*each)(void *arg, const struct keyring_status *s), void *arg)
{
    pthread_rwlock_rdlock(&r->lock);
    const struct generation *g = r->gen;
    for (size_t i = 0; i < g->conf.n; i++) {
        const struct issuer_conf *c = &g->conf.at[i];
        const struct held *h = &g->held[i];
        bool remote = issuers_remote(c);
        struct keyring_status s = {
            .iss = c->iss,
            .source = c->jwks_url != NULL ? "jwks_url" : c->discovery ? "discovery" : "files",
            .keys = h->set != NULL ? jwks_count(h->set) : 0,
            .loaded_at = h->loaded_at,
            .last = !remote ? "loaded" : h->attempted ? jwks_fetch_result_name(h->last) : "pending",
            .stale = h->stale,
            .fetches = remote ? h->fetches : NULL,
        };
        each(arg, &s);
    }
    pthread_rwlock_unlock(&r->lock);
}

bool keyring_ready(struct keyring *r, char *why, size_t size)
{
    bool ready = true;

    pthread_rwlock_rdlock(&r->lock);
    const struct generation *g = r->gen;
    for (size_t i = 0; i < g->conf.n && ready; i++)
        if (g->held[i].set == NULL) {
            snprintf(why, size, "no keys yet for issuer \"%.256s\": its key set has not been fetched", g->conf.at[i].iss);
            ready = false;
        }
    pthread_rwlock_unlock(&r->lock);
    return ready;
}

void keyring_summary(struct keyring *r, size_t *issuers, size_t *keys, bool *admin_api)
{
    pthread_rwlock_rdlock(&r->lock);
    const struct generation *g = r->gen;
    *issuers = g->conf.n;
    *keys = 0;
    for (size_t i = 0; i < g->conf.n; i++)
        *keys += g->held[i].set != NULL ? jwks_count(g->held[i].set) : 0;
    *admin_api = g->admins != NULL;
    pthread_rwlock_unlock(&r->lock);
}
