/* jwks_fetch.c - the key set fetcher: one thread, one libcurl multi handle,
 * a schedule per source; see jwks_fetch.h. */
#include "revokd/jwks_fetch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "revokd/loop.h"
#include "revokd/url.h"

#define JWKS_FETCH_NAME(name, text) #name,
static const char *const result_names[] = {JWKS_FETCH_RESULTS(JWKS_FETCH_NAME)};
#undef JWKS_FETCH_NAME

/* The first retry after a failure; each further one waits twice as long. */
#define RETRY_FIRST_MS 1000
/* A max-age beyond this (about 31 years) counts as this. */
#define MAX_AGE_CAP 1000000000LL
/* Longest wait in curl_multi_poll: kicks and stop wake it anyway. */
#define POLL_MAX_MS 1000

enum phase { PHASE_OPENID, PHASE_OAUTH, PHASE_JWKS };

struct source {
    struct jwks_fetch_source conf;
    size_t max_bytes;
    CURL *easy;      /* the transfer in flight, or NULL */
    enum phase phase;
    char url[2304];  /* what is being fetched */
    char *body;
    size_t len;
    bool too_large;
    int64_t max_age; /* seconds from Cache-Control or Expires; -1: none */
    char error[CURL_ERROR_SIZE]; /* why the last fetch failed */
    int64_t due_ms;  /* the next fetch, in loop_now_ms() time */
    int failures;    /* in a row, for the retry delay */
    atomic_bool kicked;
    atomic_int_fast64_t kicked_ms;
};

struct jwks_fetch {
    struct jwks_fetch_opts opts;
    struct source *sources;
    size_t n;
    CURLM *multi;
    pthread_t thread;
    atomic_bool stop;
};

const char *jwks_fetch_result_name(enum jwks_fetch_result r)
{
    return r < JWKS_FETCH_NRESULTS ? result_names[r] : "unknown";
}

/* ---- one transfer ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct source *s = arg;
    size_t n = size * nmemb;
    char *grown;

    if (s->len + n > s->max_bytes) {
        s->too_large = true;
        return 0; /* aborts the transfer */
    }
    if ((grown = realloc(s->body, s->len + n + 1)) == NULL)
        return 0;
    s->body = grown;
    memcpy(s->body + s->len, data, n);
    s->len += n;
    s->body[s->len] = '\0';
    return n;
}

/* Seconds a set may be kept: not negative, and a huge value is beyond any
 * refresh bound yet small enough to count in milliseconds. */
static int64_t age_of(long long seconds)
{
    return seconds < 0 ? 0 : seconds > MAX_AGE_CAP ? MAX_AGE_CAP : seconds;
}

/* Cache-Control: max-age=N (no-cache and no-store: 0), else Expires. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct source *s = arg;
    size_t n = size * nmemb;
    char line[512];

    if (n >= sizeof(line))
        return n;
    memcpy(line, data, n);
    line[n] = '\0';
    if (strncasecmp(line, "cache-control:", 14) == 0) {
        const char *p = strcasestr(line, "max-age=");
        if (strcasestr(line, "no-cache") != NULL || strcasestr(line, "no-store") != NULL)
            s->max_age = 0;
        else if (p != NULL)
            s->max_age = age_of(strtoll(p + 8, NULL, 10));
    } else if (strncasecmp(line, "expires:", 8) == 0 && s->max_age < 0) {
        time_t t = curl_getdate(line + 8, NULL);
        if (t > 0)
            s->max_age = age_of((int64_t)t - (int64_t)time(NULL));
    }
    return n;
}

static int begin(struct jwks_fetch *f, struct source *s)
{
    const struct jwks_fetch_opts *o = &f->opts;
    CURL *e = curl_easy_init();

    free(s->body);
    s->body = NULL;
    s->len = 0;
    s->too_large = false;
    s->max_age = -1;
    s->error[0] = '\0';
    if (e == NULL)
        return -1;
    curl_easy_setopt(e, CURLOPT_URL, s->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* A redirect could lead from https to anywhere; providers serve their
     * key sets where their discovery documents say. */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (o->ca_file != NULL && o->ca_file[0] != '\0')
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    curl_easy_setopt(e, CURLOPT_USERAGENT, o->user_agent);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->error);
    s->easy = e;
    if (curl_multi_add_handle(f->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        s->easy = NULL;
        return -1;
    }
    return 0;
}

static void finish_transfer(struct jwks_fetch *f, struct source *s)
{
    curl_multi_remove_handle(f->multi, s->easy);
    curl_easy_cleanup(s->easy);
    s->easy = NULL;
}

/* The discovery URL of phase: RFC 8414 3 puts the well-known part between
 * host and path ("https://h/.well-known/oauth-authorization-server/t1");
 * OpenID Discovery 4 appends it to the issuer. */
static int discovery_url(struct source *s)
{
    const char *iss = s->conf.iss;
    size_t ilen = strlen(iss);

    if (ilen > 0 && iss[ilen - 1] == '/')
        ilen--;
    if (s->phase == PHASE_OPENID)
        return snprintf(s->url, sizeof(s->url), "%.*s/.well-known/openid-configuration", (int)ilen, iss) <
                       (int)sizeof(s->url) ? 0 : -1;
    const char *host = strstr(iss, "://");
    const char *path = host != NULL ? strchr(host + 3, '/') : NULL;
    size_t hlen = path != NULL ? (size_t)(path - iss) : ilen;
    return snprintf(s->url, sizeof(s->url), "%.*s/.well-known/oauth-authorization-server%.*s", (int)hlen,
                    iss, path != NULL ? (int)(ilen - hlen) : 0, path != NULL ? path : "") < (int)sizeof(s->url)
               ? 0
               : -1;
}

static int start_fetch(struct jwks_fetch *f, struct source *s)
{
    if (s->conf.discovery) {
        s->phase = PHASE_OPENID;
        if (discovery_url(s) < 0)
            return -1;
    } else {
        s->phase = PHASE_JWKS;
        snprintf(s->url, sizeof(s->url), "%s", s->conf.jwks_url);
    }
    return begin(f, s);
}

/* ---- outcomes ---- */

static void report(struct jwks_fetch *f, struct source *s, enum jwks_fetch_result r, struct jwks *set,
                   int skipped)
{
    const struct jwks_fetch_opts *o = &f->opts;
    int64_t next;

    if (r == JWKS_FETCH_ok) {
        s->failures = 0;
        next = s->max_age >= 0 ? s->max_age * 1000 : o->refresh_max_ms;
        next = next < o->refresh_min_ms ? o->refresh_min_ms : next > o->refresh_max_ms ? o->refresh_max_ms : next;
    } else {
        next = (int64_t)RETRY_FIRST_MS << (s->failures < 20 ? s->failures : 20);
        next = next > o->refresh_min_ms ? o->refresh_min_ms : next;
        s->failures++;
    }
    s->due_ms = loop_now_ms() + next;
    struct jwks_fetch_outcome out = {
        .source = (size_t)(s - f->sources),
        .result = r,
        .set = set,
        .skipped = skipped,
        .url = s->url,
        .error = s->error,
        .next_ms = next,
    };
    o->done(o->arg, &out);
}

/* A discovery document: its issuer must be the one asked about (OpenID
 * Discovery 4.3, RFC 8414 3.3), else a provider could vouch for another
 * issuer's tokens; its jwks_uri must be fetchable. */
int jwks_fetch_parse_discovery(const char *text, size_t len, const char *iss, char *jwks_uri, size_t size,
                               char *err, size_t errlen)
{
    cJSON *doc = cJSON_ParseWithLength(text, len);
    const cJSON *issuer = cJSON_GetObjectItemCaseSensitive(doc, "issuer");
    const cJSON *uri = cJSON_GetObjectItemCaseSensitive(doc, "jwks_uri");
    char why[200];
    int rc = -1;

    if (!cJSON_IsString(issuer) || !cJSON_IsString(uri))
        snprintf(err, errlen, "no issuer and jwks_uri strings");
    else if (strcmp(issuer->valuestring, iss) != 0)
        snprintf(err, errlen, "names issuer \"%.128s\"", issuer->valuestring);
    else if (url_fetchable(uri->valuestring, why, sizeof(why)) < 0)
        snprintf(err, errlen, "jwks_uri: %.200s", why);
    else if (snprintf(jwks_uri, size, "%s", uri->valuestring) < (int)size)
        rc = 0;
    else
        snprintf(err, errlen, "jwks_uri of %zu bytes; at most %zu", strlen(uri->valuestring), size - 1);
    cJSON_Delete(doc);
    return rc;
}

static int take_discovery(struct source *s)
{
    return jwks_fetch_parse_discovery(s->body, s->len, s->conf.iss, s->url, sizeof(s->url), s->error,
                                      sizeof(s->error));
}

static void take_jwks(struct jwks_fetch *f, struct source *s)
{
    struct jwks_opts jo = {.algs = s->conf.algs, .max_keys = f->opts.max_keys, .skip_unusable = true};
    struct jwks *set = jwks_new();
    int skipped;

    if (set == NULL) {
        snprintf(s->error, sizeof(s->error), "out of memory");
        report(f, s, JWKS_FETCH_invalid, NULL, 0);
        return;
    }
    s->error[0] = '\0';
    skipped = jwks_load_json(set, s->body, s->len, s->url, &jo, s->error, sizeof(s->error));
    if (skipped < 0 || jwks_count(set) == 0) {
        if (skipped >= 0 && s->error[0] == '\0')
            snprintf(s->error, sizeof(s->error), "no keys");
        jwks_free(set);
        report(f, s, skipped < 0 ? JWKS_FETCH_invalid : JWKS_FETCH_no_usable_key, NULL, 0);
        return;
    }
    report(f, s, JWKS_FETCH_ok, set, skipped);
}

static void transfer_done(struct jwks_fetch *f, struct source *s, CURLcode code)
{
    long status = 0;

    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    finish_transfer(f, s);
    if (code != CURLE_OK) {
        bool large = s->too_large || code == CURLE_FILESIZE_EXCEEDED;
        if (large)
            snprintf(s->error, sizeof(s->error), "larger than %zu bytes", f->opts.max_bytes);
        else if (s->error[0] == '\0')
            snprintf(s->error, sizeof(s->error), "%s", curl_easy_strerror(code));
        report(f, s, large ? JWKS_FETCH_too_large : JWKS_FETCH_network_error, NULL, 0);
        return;
    }
    if (s->phase == PHASE_OPENID && status == 404) {
        s->phase = PHASE_OAUTH;
        if (discovery_url(s) == 0 && begin(f, s) == 0)
            return;
    }
    if (status != 200) {
        snprintf(s->error, sizeof(s->error), "HTTP status %ld", status);
        report(f, s, s->phase == PHASE_JWKS ? JWKS_FETCH_http_error : JWKS_FETCH_discovery_error, NULL, 0);
        return;
    }
    if (s->phase != PHASE_JWKS) {
        if (take_discovery(s) < 0) {
            report(f, s, JWKS_FETCH_discovery_error, NULL, 0);
            return;
        }
        s->phase = PHASE_JWKS;
        if (begin(f, s) < 0) {
            snprintf(s->error, sizeof(s->error), "cannot start a transfer");
            report(f, s, JWKS_FETCH_network_error, NULL, 0);
        }
        return;
    }
    take_jwks(f, s);
}

/* ---- the thread ---- */

static void *run(void *arg)
{
    struct jwks_fetch *f = arg;

    while (!atomic_load(&f->stop)) {
        int64_t now = loop_now_ms(), wait = POLL_MAX_MS;
        int running = 0, left = 0;
        CURLMsg *msg;

        for (size_t i = 0; i < f->n; i++) {
            struct source *s = &f->sources[i];
            if (atomic_exchange(&s->kicked, false) && s->easy == NULL)
                s->due_ms = now;
            if (s->easy == NULL && s->due_ms <= now && start_fetch(f, s) < 0) {
                snprintf(s->error, sizeof(s->error), "cannot start a transfer");
                report(f, s, JWKS_FETCH_network_error, NULL, 0);
            }
            if (s->easy == NULL && s->due_ms - now < wait)
                wait = s->due_ms - now;
        }
        curl_multi_perform(f->multi, &running);
        while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            for (size_t i = 0; i < f->n; i++)
                if (f->sources[i].easy == msg->easy_handle) {
                    transfer_done(f, &f->sources[i], msg->data.result);
                    break;
                }
        }
        curl_multi_poll(f->multi, NULL, 0, wait > 0 ? (int)wait : 0, NULL);
    }
    return NULL;
}

struct jwks_fetch *jwks_fetch_start(const struct jwks_fetch_source *sources, size_t n,
                                    const struct jwks_fetch_opts *opts, char *err, size_t errlen)
{
    struct jwks_fetch *f = calloc(1, sizeof(*f));

    if (f == NULL || (f->sources = calloc(n, sizeof(*f->sources))) == NULL ||
        (f->multi = curl_multi_init()) == NULL) {
        snprintf(err, errlen, "out of memory for the key set fetcher");
        goto fail;
    }
    f->opts = *opts;
    f->n = n;
    for (size_t i = 0; i < n; i++) {
        f->sources[i].conf = sources[i];
        f->sources[i].max_bytes = opts->max_bytes;
        f->sources[i].due_ms = loop_now_ms();
        atomic_init(&f->sources[i].kicked, false);
        /* The first kick may come at once. */
        atomic_init(&f->sources[i].kicked_ms, INT64_MIN / 2);
    }
    atomic_init(&f->stop, false);
    if (pthread_create(&f->thread, NULL, run, f) != 0) {
        snprintf(err, errlen, "cannot start the key set fetcher thread");
        goto fail;
    }
    return f;

fail:
    if (f != NULL) {
        curl_multi_cleanup(f->multi);
        free(f->sources);
        free(f);
    }
    return NULL;
}

bool jwks_fetch_kick(struct jwks_fetch *f, size_t source)
{
    struct source *s = &f->sources[source];
    int64_t now = loop_now_ms(), last = atomic_load(&s->kicked_ms);

    /* One kick per interval wins the exchange; the rest, concurrent or
     * later within the interval, return here without a system call. */
    if (now - last < f->opts.kick_interval_ms || !atomic_compare_exchange_strong(&s->kicked_ms, &last, now))
        return false;
    atomic_store(&s->kicked, true);
    curl_multi_wakeup(f->multi);
    return true;
}

void jwks_fetch_stop(struct jwks_fetch *f)
{
    if (f == NULL)
        return;
    atomic_store(&f->stop, true);
    curl_multi_wakeup(f->multi);
    pthread_join(f->thread, NULL);
    for (size_t i = 0; i < f->n; i++) {
        struct source *s = &f->sources[i];
        if (s->easy != NULL)
            finish_transfer(f, s);
        free(s->body);
    }
    curl_multi_cleanup(f->multi);
    free(f->sources);
    free(f);
}
