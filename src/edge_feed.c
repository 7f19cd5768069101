/* edge_feed.c - the edge's link to central: the feed's polls and the
 * forwarded calls, on one libcurl multi handle in one thread; see
 * edge_feed.h. */
#include "revokd/edge_feed.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>

#include "revokd/event.h"
#include "revokd/jwt.h"
#include "revokd/loop.h"
#include "revokd/utf8.h"

#define RESULT_NAME(name, text) #name,
static const char *const result_names[] = {EDGE_FEED_RESULTS(RESULT_NAME)};
static const char *const forward_names[] = {EDGE_FEED_FORWARDS(RESULT_NAME)};
#undef RESULT_NAME

/* A failed poll is retried after this, doubled each time up to the max:
 * the staleness bound is a few seconds, so the edge must not sleep long. */
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 1000
/* Longest sleep in curl_multi_poll: progress() is called at least this
 * often, and forwards and stop wake it anyway. */
#define TICK_MS 1000
/* Longest header value kept from an answer (WWW-Authenticate carries a
 * description). */
#define HEADER_MAX 320
/* Longest line of the stream: an event's data is one, central's under 2 KiB. */
#define STREAM_LINE_MAX (64 * 1024)
/* Largest integer a JSON number carries exactly. */
#define INT_EXACT 9007199254740992.0

const char *edge_feed_result_name(enum edge_feed_result r)
{
    return r < EDGE_FEED_NRESULTS ? result_names[r] : "unknown";
}

const char *edge_feed_forward_name(enum edge_feed_forward_result r)
{
    return r < EDGE_FEED_NFORWARDS ? forward_names[r] : "unknown";
}

/* "Authorization: Bearer <key>", malloc'd; NULL when out of memory. */
static char *auth_header(const char *key)
{
    size_t n = strlen("Authorization: Bearer ") + strlen(key) + 1;
    char *h = malloc(n);
    if (h != NULL)
        snprintf(h, n, "Authorization: Bearer %s", key);
    return h;
}

/* The credential's copy is wiped before it goes. */
static void free_secret(char *s)
{
    if (s != NULL)
        OPENSSL_cleanse(s, strlen(s));
    free(s);
}

/* ---- reading a page ---- */

/* An event id as central reads one back in ?after= (route_events.c):
 * "<ms>-<seq>", each part 1 to 20 digits and at most 2^64 - 1, as Redis
 * stream ids are, or "0", the start. It goes into the next poll's query
 * unescaped and is compared as two numbers: a sign, a part alone or a
 * number past 2^64 - 1 (which strtoull reads as 2^64 - 1) would pass the
 * order check and have the edge ask, poll after poll, for what follows an
 * id central refuses. */
static bool id_ok(const char *id)
{
    if (strcmp(id, "0") == 0)
        return true;
    for (int part = 0; part < 2; part++) {
        size_t n = strspn(id, "0123456789");
        if (n == 0 || n > 20 || (n == 20 && strncmp(id, "18446744073709551615", 20) > 0))
            return false;
        id += n;
        if (part == 0 && *id++ != '-')
            return false;
    }
    return *id == '\0';
}

/* An identifier: 1..JWT_STR_MAX bytes of text, as revokd takes them. */
static const char *text_member(const cJSON *o, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(m))
        return NULL;
    size_t n = strlen(m->valuestring);
    return n > 0 && n <= JWT_STR_MAX && utf8_is_text(m->valuestring, n) ? m->valuestring : NULL;
}

/* A whole number of seconds in 0..2^53; -1: absent; -2: not such a number. */
static int int_member(const cJSON *o, const char *name, int64_t *out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
    if (m == NULL)
        return -1;
    if (!cJSON_IsNumber(m) || m->valuedouble != floor(m->valuedouble) || m->valuedouble < 0 ||
        m->valuedouble > INT_EXACT)
        return -2;
    *out = (int64_t)m->valuedouble;
    return 0;
}

/* Event e of the page, checked, into ev. Returns 0, or -1 with err. */
static int read_event(const cJSON *e, struct edge_feed_event *ev, char *err, size_t errlen)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(e, "kind");
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(e, "iss");

    memset(ev, 0, sizeof(*ev));
    if (!cJSON_IsObject(e) || !cJSON_IsString(id) || !id_ok(id->valuestring)) {
        snprintf(err, errlen, "an event without a valid id");
        return -1;
    }
    ev->id = id->valuestring;
    /* iss: a string, or null (or "") for the tokens without iss. */
    if (cJSON_IsNull(iss) || (cJSON_IsString(iss) && iss->valuestring[0] == '\0'))
        ev->iss = "";
    else if ((ev->iss = text_member(e, "iss")) == NULL) {
        snprintf(err, errlen, "event %s: iss is not 1 to %d bytes of text, nor null", ev->id, JWT_STR_MAX);
        return -1;
    }
    /* A kind this node does not know would have an effect it cannot
     * apply: the page is refused rather than passed over. */
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "jti") == 0) {
        ev->kind = EDGE_FEED_JTI;
        if ((ev->jti = text_member(e, "jti")) == NULL || int_member(e, "exp", &ev->exp) != 0) {
            snprintf(err, errlen, "event %s: a jti event needs jti (1 to %d bytes of text) and exp", ev->id,
                     JWT_STR_MAX);
            return -1;
        }
        return 0;
    }
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "subject") == 0) {
        ev->kind = EDGE_FEED_SUBJECT;
        int has_exp = int_member(e, "exp", &ev->exp);
        if ((ev->sub = text_member(e, "sub")) == NULL || int_member(e, "cutoff", &ev->cutoff) != 0 ||
            has_exp == -2) {
            snprintf(err, errlen, "event %s: a subject event needs sub (1 to %d bytes of text) and cutoff",
                     ev->id, JWT_STR_MAX);
            return -1;
        }
        if (has_exp < 0)
            ev->exp = 0;
        return 0;
    }
    snprintf(err, errlen, "event %s: unknown kind", ev->id);
    return -1;
}

int edge_feed_parse(const char *text, size_t len, const char *after, size_t limit,
                    int (*each)(void *arg, const struct edge_feed_event *e), void *arg, char *next,
                    size_t *count, char *err, size_t errlen)
{
    cJSON *doc = cJSON_ParseWithLength(text, len);
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(doc, "events");
    const cJSON *nx = cJSON_GetObjectItemCaseSensitive(doc, "next");
    struct edge_feed_event ev;
    const char *prev = after;
    int rc = -1;

    *count = 0;
    if (!cJSON_IsArray(events)) {
        snprintf(err, errlen, "not a JSON object with an events array");
        goto out;
    }
    if ((size_t)cJSON_GetArraySize(events) > limit) {
        snprintf(err, errlen, "%d events, more than the %zu asked for", cJSON_GetArraySize(events), limit);
        goto out;
    }
    if (nx != NULL && (!cJSON_IsString(nx) || !id_ok(nx->valuestring))) {
        snprintf(err, errlen, "next is not a valid id");
        goto out;
    }
    /* Everything is checked first: a page is applied whole. */
    const cJSON *e;
    cJSON_ArrayForEach(e, events) {
        if (read_event(e, &ev, err, errlen) < 0)
            goto out;
        if (!event_id_after(ev.id, prev)) {
            snprintf(err, errlen, "event %s does not come after %s", ev.id, prev);
            goto out;
        }
        prev = ev.id;
    }
    /* next is where to go on from: after the last event, or beyond. */
    if (nx != NULL && event_id_after(prev, nx->valuestring)) {
        snprintf(err, errlen, "next %s is before event %s", nx->valuestring, prev);
        goto out;
    }
    snprintf(next, EDGE_FEED_ID_MAX, "%s", nx != NULL ? nx->valuestring : prev);
    cJSON_ArrayForEach(e, events) {
        read_event(e, &ev, err, errlen);
        if (each(arg, &ev) < 0) {
            snprintf(next, EDGE_FEED_ID_MAX, "%s", *count > 0 ? prev : after);
            snprintf(err, errlen, "event %s could not be kept", ev.id);
            rc = -2;
            goto out;
        }
        prev = ev.id;
        (*count)++;
    }
    rc = 0;
out:
    /* After a refused event, next is the last one kept: prev points into
     * doc, which goes now. */
    cJSON_Delete(doc);
    return rc;
}

/* ---- transfers ---- */

/* One HTTP exchange: a poll (a page, or the stream), or a forwarded call. */
struct transfer {
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    size_t len, max;
    bool too_large;
    char retry_after[32], www_authenticate[HEADER_MAX];
    char error[CURL_ERROR_SIZE];
};

/* A forwarded call, from edge_feed_forward() until answered. */
struct fwd {
    struct transfer t;
    char *url, *method, *payload;
    size_t payload_len;
    struct curl_slist *request_headers;
    bool bad;          /* a header could not be sent as it came */
    edge_feed_answered answered;
    void *arg;
    long status;
    uint64_t ticket;   /* accepted: the sync it waits for */
    int64_t deadline_ms;
    struct fwd *next;
};

struct edge_feed {
    struct edge_feed_opts opts;
    char *url, *base, *admin_base, *auth, *ca_file, *user_agent; /* copies */
    CURLM *multi;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t lock;
    struct fwd *incoming; /* under lock: handed over by edge_feed_forward() */
    /* auth is under lock too: edge_feed_set_key() swaps it. */

    /* The thread's alone. */
    struct fwd *active;   /* transfers in flight */
    struct fwd *syncing;  /* accepted, waiting for the feed to pass them */
    struct transfer poll;
    struct edge_feed_stream sse; /* the stream's event being read */
    bool sse_full;        /* the stream was dropped at an event this node could not keep */
    bool sse_heard;       /* central heard from since the last report */
    size_t sse_events;    /* applied from the stream since the last report */
    bool polling, streaming; /* a poll is in flight; it is the stream, not a page */
    uint64_t poll_ticket; /* tickets issued when the poll began */
    char last_id[EDGE_FEED_ID_MAX];
    bool replayed, more, behind;
    uint64_t tickets, synced, behind_ticket;
    int failures;
    int64_t due_ms, heard_ms, ticked_ms;

    atomic_uint_fast64_t polls[EDGE_FEED_NRESULTS];
    atomic_uint_fast64_t forwards[EDGE_FEED_NFORWARDS];
    atomic_uint_fast64_t events[2];
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nmemb;

    if (t->len + n > t->max) {
        t->too_large = true;
        return 0; /* aborts the transfer */
    }
    char *grown = realloc(t->body, t->len + n + 1);
    if (grown == NULL)
        return 0;
    t->body = grown;
    memcpy(t->body + t->len, data, n);
    t->len += n;
    t->body[t->len] = '\0';
    return n;
}

/* Keeps value (of n bytes, CR LF and blanks around it dropped) in out when
 * it fits and is text; else clears out. */
static void keep_header(char *out, size_t size, const char *value, size_t n)
{
    while (n > 0 && (value[0] == ' ' || value[0] == '\t'))
        value++, n--;
    while (n > 0 && (value[n - 1] == '\r' || value[n - 1] == '\n' || value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    out[0] = '\0';
    if (n > 0 && n < size && utf8_is_text(value, n)) {
        memcpy(out, value, n);
        out[n] = '\0';
    }
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nmemb;

    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new status line (after 100 Continue): its own headers follow. */
        t->retry_after[0] = t->www_authenticate[0] = '\0';
    } else if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        keep_header(t->retry_after, sizeof(t->retry_after), data + 12, n - 12);
    } else if (n > 17 && strncasecmp(data, "WWW-Authenticate:", 17) == 0) {
        keep_header(t->www_authenticate, sizeof(t->www_authenticate), data + 17, n - 17);
    }
    return n;
}

/* Prepares t for url; the caller sets the method and adds the handle. */
static int transfer_init(struct edge_feed *f, struct transfer *t, const char *url, size_t max,
                         int64_t timeout_ms)
{
    CURL *e = curl_easy_init();

    free(t->body);
    t->body = NULL;
    t->len = 0;
    t->max = max;
    t->too_large = false;
    t->retry_after[0] = t->www_authenticate[0] = t->error[0] = '\0';
    t->easy = e;
    if (e == NULL)
        return -1;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* central answers where it is asked; a redirect could lead anywhere,
     * with the credentials. */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)f->opts.timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (f->ca_file[0] != '\0')
        curl_easy_setopt(e, CURLOPT_CAINFO, f->ca_file);
    curl_easy_setopt(e, CURLOPT_USERAGENT, f->user_agent);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    return 0;
}

static int transfer_add(struct edge_feed *f, struct transfer *t)
{
    if (curl_multi_add_handle(f->multi, t->easy) == CURLM_OK)
        return 0;
    curl_easy_cleanup(t->easy);
    t->easy = NULL;
    return -1;
}

/* Ends t's exchange; its body and headers stay until the next init. */
static void transfer_end(struct edge_feed *f, struct transfer *t)
{
    if (t->easy != NULL) {
        curl_multi_remove_handle(f->multi, t->easy);
        curl_easy_cleanup(t->easy);
        t->easy = NULL;
    }
    curl_slist_free_all(t->headers);
    t->headers = NULL;
}

/* ---- the feed ---- */

/* Tells the caller how the feed stands: after a poll (polled), or on a
 * tick. */
static void report(struct edge_feed *f, bool polled, enum edge_feed_result r, size_t events, long status,
                   const char *error)
{
    struct edge_feed_progress p = {
        .polled = polled,
        .result = r,
        .status = status,
        .error = error,
        .last_id = f->last_id,
        .replayed = f->replayed,
        .behind = f->behind,
        .heard_ms = f->heard_ms,
        .events = events,
    };
    f->ticked_ms = loop_now_ms();
    f->opts.progress(f->opts.arg, &p);
}

static size_t on_stream(char *data, size_t size, size_t nmemb, void *arg);

/* The next poll: the stream, once nothing is wanted at once (the feed is
 * replayed, the last page was not full, and no accepted forward waits for
 * the feed to pass it); else a page, read without waiting. */
static void poll_begin(struct edge_feed *f)
{
    char url[2600];
    struct transfer *t = &f->poll;
    struct curl_slist *accept = NULL;

    f->streaming = f->replayed && !f->more && f->tickets <= f->synced;
    f->poll_ticket = f->tickets;
    if (f->streaming)
        snprintf(url, sizeof(url), "%s?after=%s", f->url, f->last_id);
    else
        snprintf(url, sizeof(url), "%s?after=%s&limit=%d", f->url, f->last_id, EDGE_FEED_PAGE);
    int rc = transfer_init(f, t, url, f->streaming ? STREAM_LINE_MAX : EDGE_FEED_PAGE_MAX_BYTES,
                           f->streaming ? 0 : f->opts.timeout_ms);
    if (rc == 0 && f->streaming) {
        /* No end but central's; silence for wait_s is a dead link. */
        memset(&f->sse, 0, sizeof(f->sse));
        f->sse_full = f->sse_heard = false;
        f->sse_events = 0;
        curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_stream);
        curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, f);
        curl_easy_setopt(t->easy, CURLOPT_ACCEPT_ENCODING, NULL);
        curl_easy_setopt(t->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)0);
        curl_easy_setopt(t->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(t->easy, CURLOPT_LOW_SPEED_TIME, (long)f->opts.wait_s);
        rc = (accept = curl_slist_append(NULL, "Accept: text/event-stream")) != NULL ? 0 : -1;
    }
    pthread_mutex_lock(&f->lock); /* edge_feed_set_key() may swap it */
    if (rc == 0 && (t->headers = curl_slist_append(accept, f->auth)) == NULL)
        rc = -1;
    pthread_mutex_unlock(&f->lock);
    if (rc < 0 ||
        (curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers),
         curl_easy_setopt(t->easy, CURLOPT_HTTPGET, 1L), transfer_add(f, t)) < 0) {
        if (t->headers == NULL)
            curl_slist_free_all(accept);
        transfer_end(f, &f->poll);
        snprintf(f->poll.error, sizeof(f->poll.error), "cannot start a transfer");
        f->due_ms = loop_now_ms() + RETRY_MAX_MS;
        atomic_fetch_add(&f->polls[EDGE_FEED_network_error], 1);
        report(f, true, EDGE_FEED_network_error, 0, 0, f->poll.error);
        return;
    }
    f->polling = true;
}

static int apply_one(void *arg, const struct edge_feed_event *e)
{
    struct edge_feed *f = arg;
    if (f->opts.apply(f->opts.arg, e) < 0)
        return -1;
    atomic_fetch_add(&f->events[e->kind], 1);
    return 0;
}

/* ---- following the stream ----
 *
 * Once replayed, the edge follows central's feed as Server-Sent Events
 * (GET /v1/events, Accept: text/event-stream, after the last event
 * applied): each event comes as soon as central has written it, and a
 * comment (": heartbeat") at least every REVOKD_FEED_HEARTBEAT_MS of quiet
 * says that everything written so far has been sent. Either is a word from
 * central. A stream silent for wait_s is dropped as dead and opened again
 * from the last event applied. */

/* Central was heard from just now. */
static void stream_heard(struct edge_feed *f)
{
    f->heard_ms = loop_now_ms();
    f->failures = 0;
    f->sse_heard = true;
}

int edge_feed_stream_line(struct edge_feed_stream *s, const char *line, size_t n, const char *after,
                          int (*each)(void *arg, const struct edge_feed_event *e), void *arg, char *err,
                          size_t errlen)
{
    struct edge_feed_event ev;

    if (n > 0 && line[0] == ':')
        return EDGE_FEED_LINE_HEARD;
    if (n == 0) {
        memset(s, 0, sizeof(*s));
        return EDGE_FEED_LINE_FIELD;
    }
    if (n > 4 && memcmp(line, "id: ", 4) == 0) {
        s->bad_id = n - 4 >= sizeof(s->id);
        snprintf(s->id, sizeof(s->id), "%.*s", s->bad_id ? 0 : (int)(n - 4), line + 4);
        return EDGE_FEED_LINE_FIELD;
    }
    if (n < 6 || memcmp(line, "data: ", 6) != 0)
        return EDGE_FEED_LINE_FIELD; /* "event: revocation", or a field this node does not use */
    cJSON *doc = cJSON_ParseWithLength(line + 6, n - 6);
    int rc = -1;
    if (s->has_data) {
        snprintf(err, errlen, "an event with two data lines");
    } else if (read_event(doc, &ev, err, errlen) == 0) {
        if (s->bad_id || strcmp(ev.id, s->id) != 0) {
            snprintf(err, errlen, "event %s under another stream id", ev.id);
        } else if (!event_id_after(ev.id, after)) {
            rc = EDGE_FEED_LINE_OLD;
        } else if (each(arg, &ev) < 0) {
            snprintf(err, errlen, "event %s could not be kept", ev.id);
            rc = -2;
        } else {
            rc = EDGE_FEED_LINE_EVENT;
        }
    }
    s->has_data = true;
    cJSON_Delete(doc);
    return rc;
}

/* One line of the stream into f, as edge_feed_stream_line() reads it.
 * Returns 0, or -1 (with t->error, and t->too_large for no room) when the
 * stream cannot be followed: it is then dropped, and opened again after
 * what was applied. */
static int stream_line(struct edge_feed *f, const char *line, size_t n)
{
    struct transfer *t = &f->poll;
    int rc = edge_feed_stream_line(&f->sse, line, n, f->last_id, apply_one, f, t->error, sizeof(t->error));

    if (rc == EDGE_FEED_LINE_EVENT) {
        snprintf(f->last_id, sizeof(f->last_id), "%s", f->sse.id);
        f->sse_events++;
    }
    if (rc == EDGE_FEED_LINE_EVENT || rc == EDGE_FEED_LINE_HEARD)
        stream_heard(f);
    f->sse_full = rc == -2;
    return rc < 0 ? -1 : 0;
}

/* The stream's bytes: whole lines are taken as they come, a partial one
 * kept for the next call (at most STREAM_LINE_MAX). */
static size_t on_stream(char *data, size_t size, size_t nmemb, void *arg)
{
    struct edge_feed *f = arg;
    struct transfer *t = &f->poll;
    size_t n = size * nmemb, done = 0;

    if (on_body(data, size, nmemb, t) != n) {
        snprintf(t->error, sizeof(t->error), "a line of the stream longer than %d bytes", STREAM_LINE_MAX);
        return 0;
    }
    for (char *nl; (nl = memchr(t->body + done, '\n', t->len - done)) != NULL; done = (size_t)(nl - t->body) + 1) {
        size_t len = (size_t)(nl - t->body) - done;
        if (len > 0 && t->body[done + len - 1] == '\r')
            len--;
        if (stream_line(f, t->body + done, len) < 0)
            return 0;
    }
    memmove(t->body, t->body + done, t->len - done);
    t->len -= done;
    if (f->sse_heard) {
        enum edge_feed_result r = f->sse_events > 0 ? EDGE_FEED_events : EDGE_FEED_empty;
        atomic_fetch_add(&f->polls[r], 1);
        report(f, true, r, f->sse_events, 200, NULL);
        f->sse_events = 0;
        f->sse_heard = false;
    }
    return n;
}

static void poll_done(struct edge_feed *f, CURLcode code)
{
    struct transfer *t = &f->poll;
    enum edge_feed_result r;
    long status = 0;
    size_t count = 0;
    int rc;
    char next[EDGE_FEED_ID_MAX];

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    transfer_end(f, t);
    f->polling = false;
    if (f->streaming && code == CURLE_OK && status == 200) {
        /* central ended it in order (it stops): the next one at once,
         * after what was applied. */
        f->due_ms = loop_now_ms();
        report(f, false, EDGE_FEED_empty, 0, 0, NULL);
        return;
    }
    if (f->streaming && code == CURLE_WRITE_ERROR && t->error[0] != '\0') {
        r = f->sse_full ? EDGE_FEED_full : t->too_large ? EDGE_FEED_too_large : EDGE_FEED_invalid;
    } else if (f->streaming && code == CURLE_OPERATION_TIMEDOUT) {
        r = EDGE_FEED_network_error;
        snprintf(t->error, sizeof(t->error), "the stream was silent for %" PRId64 " s", f->opts.wait_s);
    } else if (code != CURLE_OK) {
        r = t->too_large || code == CURLE_FILESIZE_EXCEEDED ? EDGE_FEED_too_large : EDGE_FEED_network_error;
        if (r == EDGE_FEED_too_large)
            snprintf(t->error, sizeof(t->error), "a page of more than %d bytes", EDGE_FEED_PAGE_MAX_BYTES);
        else if (t->error[0] == '\0')
            snprintf(t->error, sizeof(t->error), "%s", curl_easy_strerror(code));
    } else if (status != 200) {
        r = EDGE_FEED_http_error;
        snprintf(t->error, sizeof(t->error), "HTTP status %ld", status);
    } else if ((rc = edge_feed_parse(t->body != NULL ? t->body : "", t->len, f->last_id, EDGE_FEED_PAGE,
                                     apply_one, f, next, &count, t->error, sizeof(t->error))) < 0) {
        /* Refused whole, or cut short where this node could keep no more:
         * either way the next poll asks again from what was kept. */
        r = rc == -2 ? EDGE_FEED_full : EDGE_FEED_invalid;
        if (r == EDGE_FEED_full)
            snprintf(f->last_id, sizeof(f->last_id), "%s", next);
    } else {
        r = count > 0 ? EDGE_FEED_events : EDGE_FEED_empty;
        snprintf(f->last_id, sizeof(f->last_id), "%s", next);
    }
    int64_t now = loop_now_ms();
    atomic_fetch_add(&f->polls[r], 1);
    if (r == EDGE_FEED_events || r == EDGE_FEED_empty || r == EDGE_FEED_full)
        f->heard_ms = now; /* central answered: this is as current as it is */
    if (r == EDGE_FEED_events || r == EDGE_FEED_empty) {
        f->failures = 0;
        f->due_ms = now;
        f->more = count == EDGE_FEED_PAGE;
        if (!f->more) {
            /* A short page: everything central held when this poll began
             * has been applied. */
            f->replayed = true;
            if (f->synced < f->poll_ticket)
                f->synced = f->poll_ticket;
        }
    } else {
        int64_t delay = (int64_t)RETRY_FIRST_MS << (f->failures < 10 ? f->failures : 10);
        f->due_ms = now + (delay < RETRY_MAX_MS ? delay : RETRY_MAX_MS);
        f->failures++;
    }
    f->behind = f->behind_ticket > f->synced;
    report(f, true, r, count, status, r == EDGE_FEED_events || r == EDGE_FEED_empty ? NULL : t->error);
}

/* ---- forwarded calls ---- */

static void fwd_free(struct edge_feed *f, struct fwd *w)
{
    transfer_end(f, &w->t);
    free(w->t.body);
    curl_slist_free_all(w->request_headers);
    free(w->url);
    free(w->method);
    free(w->payload);
    free(w);
}

/* The body's "error" member, when it is a short string, in code. */
static void error_code_of(const char *body, size_t len, char *code, size_t size)
{
    cJSON *doc = cJSON_ParseWithLength(body, len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");

    code[0] = '\0';
    if (cJSON_IsString(e) && strlen(e->valuestring) < size)
        snprintf(code, size, "%s", e->valuestring);
    cJSON_Delete(doc);
}

static void answer(struct edge_feed *f, struct fwd *w, enum edge_feed_forward_result r, const char *error)
{
    char code[64] = "";
    struct edge_feed_answer a = {
        .result = r,
        .status = w->status,
        .body = w->t.body != NULL ? w->t.body : "",
        .len = w->t.len,
        .retry_after = w->t.retry_after[0] != '\0' ? w->t.retry_after : NULL,
        .www_authenticate = w->t.www_authenticate[0] != '\0' ? w->t.www_authenticate : NULL,
        .error = error,
    };
    if (r == EDGE_FEED_FORWARD_unavailable) {
        a.body = "";
        a.len = 0;
        a.retry_after = a.www_authenticate = NULL;
    } else if (a.len > 0) {
        error_code_of(a.body, a.len, code, sizeof(code));
        a.error_code = code[0] != '\0' ? code : NULL;
    }
    atomic_fetch_add(&f->forwards[r], 1);
    w->answered(w->arg, &a);
    fwd_free(f, w);
}

/* A header line "name: value" for a value the client sent; false when the
 * value could split the request (a control character). */
static bool add_header(struct fwd *w, const char *name, const char *value)
{
    char line[HEADER_MAX * 32];
    struct curl_slist *l;

    if (value == NULL)
        return true;
    if (!utf8_valid(value, strlen(value)) || strpbrk(value, "\r\n") != NULL ||
        snprintf(line, sizeof(line), "%s: %s", name, value) >= (int)sizeof(line)) {
        w->bad = true;
        return false;
    }
    if ((l = curl_slist_append(w->request_headers, line)) == NULL) {
        w->bad = true;
        return false;
    }
    w->request_headers = l;
    return true;
}

static void fwd_begin(struct edge_feed *f, struct fwd *w)
{
    if (w->bad) {
        answer(f, w, EDGE_FEED_FORWARD_unavailable, "the request cannot be forwarded as it came");
        return;
    }
    if (transfer_init(f, &w->t, w->url, EDGE_FEED_ANSWER_MAX_BYTES, f->opts.timeout_ms) < 0) {
        answer(f, w, EDGE_FEED_FORWARD_unavailable, "cannot start a transfer");
        return;
    }
    CURL *e = w->t.easy;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->request_headers);
    if (strcmp(w->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, w->payload);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->payload_len);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, w->method);
    }
    if (transfer_add(f, &w->t) < 0) {
        answer(f, w, EDGE_FEED_FORWARD_unavailable, "cannot start a transfer");
        return;
    }
    w->next = f->active;
    f->active = w;
}

static void fwd_done(struct edge_feed *f, struct fwd *w, CURLcode code)
{
    char why[CURL_ERROR_SIZE + 64];

    curl_easy_getinfo(w->t.easy, CURLINFO_RESPONSE_CODE, &w->status);
    transfer_end(f, &w->t);
    if (code != CURLE_OK) {
        if (w->t.too_large || code == CURLE_FILESIZE_EXCEEDED)
            snprintf(why, sizeof(why), "central's answer is over %d bytes", EDGE_FEED_ANSWER_MAX_BYTES);
        else
            snprintf(why, sizeof(why), "%s", w->t.error[0] != '\0' ? w->t.error : curl_easy_strerror(code));
        answer(f, w, EDGE_FEED_FORWARD_unavailable, why);
        return;
    }
    /* Relayed: a 2xx, 4xx or 5xx answer with a JSON body or none. */
    bool json = w->t.len == 0;
    if (!json) {
        cJSON *doc = cJSON_ParseWithLength(w->t.body, w->t.len);
        json = doc != NULL;
        cJSON_Delete(doc);
    }
    if (!json || w->status < 200 || (w->status >= 300 && w->status < 400) || w->status > 599) {
        snprintf(why, sizeof(why), "central answered HTTP %ld%s", w->status, json ? "" : " without JSON");
        answer(f, w, EDGE_FEED_FORWARD_unavailable, why);
        return;
    }
    if (w->status >= 300) {
        answer(f, w, EDGE_FEED_FORWARD_refused, NULL);
        return;
    }
    /* Accepted: the answer waits until the feed has passed it. */
    w->ticket = ++f->tickets;
    w->deadline_ms = loop_now_ms() + f->opts.timeout_ms;
    w->next = f->syncing;
    f->syncing = w;
}

/* Answers the accepted forwards the feed has passed, and those that waited
 * too long (the node is then behind until the feed passes them). */
static void settle_syncing(struct edge_feed *f, int64_t now, int64_t *wait_ms)
{
    struct fwd **p = &f->syncing;
    bool behind = f->behind;

    while (*p != NULL) {
        struct fwd *w = *p;
        if (w->ticket <= f->synced || now >= w->deadline_ms) {
            *p = w->next;
            if (w->ticket <= f->synced) {
                answer(f, w, EDGE_FEED_FORWARD_ok, NULL);
            } else {
                if (f->behind_ticket < w->ticket)
                    f->behind_ticket = w->ticket;
                answer(f, w, EDGE_FEED_FORWARD_unsynced, "the feed did not show the revocation in time");
            }
        } else {
            if (w->deadline_ms - now < *wait_ms)
                *wait_ms = w->deadline_ms - now;
            p = &w->next;
        }
    }
    f->behind = f->behind_ticket > f->synced;
    if (f->behind != behind)
        report(f, false, EDGE_FEED_empty, 0, 0, NULL);
}

void edge_feed_forward(struct edge_feed *f, const struct edge_feed_request *r, edge_feed_answered answered,
                       void *arg)
{
    struct fwd *w = calloc(1, sizeof(*w));
    size_t ulen;

    if (w == NULL) {
        struct edge_feed_answer a = {.result = EDGE_FEED_FORWARD_unavailable, .body = "", .error = "out of memory"};
        atomic_fetch_add(&f->forwards[EDGE_FEED_FORWARD_unavailable], 1);
        answered(arg, &a);
        return;
    }
    w->answered = answered;
    w->arg = arg;
    /* Admin calls go to central's admin listener when it has one
     * (REVOKD_CENTRAL_ADMIN_URL): its main one answers them 404. */
    const char *base = strncmp(r->path, "/v1/admin/", 10) == 0 ? f->admin_base : f->base;
    ulen = strlen(base) + strlen(r->path) + (r->query != NULL ? strlen(r->query) + 1 : 0) + 1;
    w->url = malloc(ulen);
    w->method = strdup(r->method);
    w->payload = malloc(r->body_len + 1);
    if (w->url == NULL || w->method == NULL || w->payload == NULL) {
        w->bad = true;
    } else {
        snprintf(w->url, ulen, "%s%s%s%s", base, r->path, r->query != NULL ? "?" : "",
                 r->query != NULL ? r->query : "");
        memcpy(w->payload, r->body, r->body_len);
        w->payload[r->body_len] = '\0';
        w->payload_len = r->body_len;
        /* Only what central needs to judge the call: the client's own
         * other headers stay here. No Expect: 100-continue, whose round
         * trip a body this small does not need. */
        if (add_header(w, "Content-Type", r->content_type) && add_header(w, "Authorization", r->authorization) &&
            add_header(w, "X-Request-Id", r->request_id) && add_header(w, "Accept", "application/json")) {
            struct curl_slist *l = curl_slist_append(w->request_headers, "Expect:"); /* "Expect:": not sent */
            if (l != NULL)
                w->request_headers = l;
            else
                w->bad = true;
        }
    }
    pthread_mutex_lock(&f->lock);
    w->next = f->incoming;
    f->incoming = w;
    pthread_mutex_unlock(&f->lock);
    curl_multi_wakeup(f->multi);
}

/* ---- the thread ---- */

static void take_incoming(struct edge_feed *f)
{
    pthread_mutex_lock(&f->lock);
    struct fwd *list = f->incoming;
    f->incoming = NULL;
    pthread_mutex_unlock(&f->lock);
    /* In the order they came. */
    struct fwd *rev = NULL;
    while (list != NULL) {
        struct fwd *w = list;
        list = w->next;
        w->next = rev;
        rev = w;
    }
    while (rev != NULL) {
        struct fwd *w = rev;
        rev = w->next;
        fwd_begin(f, w);
    }
}

static void transfer_finished(struct edge_feed *f, CURL *easy, CURLcode code)
{
    if (f->polling && f->poll.easy == easy) {
        poll_done(f, code);
        return;
    }
    for (struct fwd **p = &f->active; *p != NULL; p = &(*p)->next) {
        if ((*p)->t.easy == easy) {
            struct fwd *w = *p;
            *p = w->next;
            fwd_done(f, w, code);
            return;
        }
    }
}

static void *run(void *arg)
{
    struct edge_feed *f = arg;

    while (!atomic_load(&f->stop)) {
        int64_t now = loop_now_ms(), wait = TICK_MS;
        int running = 0, left = 0;
        CURLMsg *msg;

        take_incoming(f);
        /* A forward was accepted while the stream is followed: whether an
         * event of the stream is that revocation, nothing says. The stream
         * is dropped (what it applied stays) for a page read at once, which
         * holds everything central had written, and then opened again. */
        if (f->polling && f->streaming && f->tickets > f->poll_ticket) {
            transfer_end(f, &f->poll);
            f->polling = false;
            f->due_ms = now;
        }
        if (!f->polling && now >= f->due_ms)
            poll_begin(f);
        if (!f->polling && f->due_ms - now < wait)
            wait = f->due_ms - now;
        curl_multi_perform(f->multi, &running);
        while ((msg = curl_multi_info_read(f->multi, &left)) != NULL)
            if (msg->msg == CURLMSG_DONE)
                transfer_finished(f, msg->easy_handle, msg->data.result);
        now = loop_now_ms();
        settle_syncing(f, now, &wait);
        if ((!f->polling && f->due_ms <= now) || (f->polling && f->streaming && f->tickets > f->poll_ticket))
            wait = 0;
        if (now - f->ticked_ms >= TICK_MS)
            report(f, false, EDGE_FEED_empty, 0, 0, NULL);
        curl_multi_poll(f->multi, NULL, 0, wait > 0 ? (int)wait : 0, NULL);
    }
    return NULL;
}

/* What edge_feed_start allocated; f may be NULL or half made. */
static void feed_free(struct edge_feed *f)
{
    if (f == NULL)
        return;
    curl_multi_cleanup(f->multi);
    pthread_mutex_destroy(&f->lock);
    free(f->url);
    free(f->base);
    free(f->admin_base);
    free(f->ca_file);
    free(f->user_agent);
    free_secret(f->auth);
    free(f);
}

struct edge_feed *edge_feed_start(const struct edge_feed_opts *opts, char *err, size_t errlen)
{
    struct edge_feed *f = calloc(1, sizeof(*f));
    const char *suffix = "/v1/events";

    if (f == NULL)
        goto oom;
    f->opts = *opts;
    pthread_mutex_init(&f->lock, NULL);
    size_t ulen = strlen(opts->url), slen = strlen(suffix);
    if (ulen < slen || strcmp(opts->url + ulen - slen, suffix) != 0) {
        snprintf(err, errlen, "the feed's URL must end with %s", suffix);
        goto fail;
    }
    if ((f->url = strdup(opts->url)) == NULL || (f->base = strndup(opts->url, ulen - slen)) == NULL ||
        (f->admin_base = strdup(opts->admin_url != NULL && opts->admin_url[0] != '\0' ? opts->admin_url
                                                                                     : f->base)) == NULL ||
        (f->ca_file = strdup(opts->ca_file != NULL ? opts->ca_file : "")) == NULL ||
        (f->user_agent = strdup(opts->user_agent)) == NULL || (f->auth = auth_header(opts->key)) == NULL ||
        (f->multi = curl_multi_init()) == NULL)
        goto oom;
    snprintf(f->last_id, sizeof(f->last_id), "0");
    f->due_ms = f->ticked_ms = loop_now_ms();
    atomic_init(&f->stop, false);
    if (pthread_create(&f->thread, NULL, run, f) != 0) {
        snprintf(err, errlen, "cannot start the feed's thread");
        goto fail;
    }
    return f;

oom:
    snprintf(err, errlen, "out of memory for the feed");
fail:
    feed_free(f);
    return NULL;
}

void edge_feed_stats(struct edge_feed *f, struct edge_feed_stats *out)
{
    for (size_t i = 0; i < EDGE_FEED_NRESULTS; i++)
        out->polls[i] = atomic_load(&f->polls[i]);
    for (size_t i = 0; i < EDGE_FEED_NFORWARDS; i++)
        out->forwards[i] = atomic_load(&f->forwards[i]);
    for (size_t i = 0; i < 2; i++)
        out->events[i] = atomic_load(&f->events[i]);
}

int edge_feed_set_key(struct edge_feed *f, const char *key)
{
    char *auth = auth_header(key), *old;

    if (auth == NULL)
        return -1;
    pthread_mutex_lock(&f->lock);
    old = f->auth;
    f->auth = auth;
    pthread_mutex_unlock(&f->lock);
    free_secret(old);
    return 0;
}

void edge_feed_stop(struct edge_feed *f)
{
    if (f == NULL)
        return;
    atomic_store(&f->stop, true);
    curl_multi_wakeup(f->multi);
    pthread_join(f->thread, NULL);
    pthread_mutex_lock(&f->lock);
    struct fwd *lists[3] = {f->incoming, f->active, f->syncing};
    f->incoming = f->active = f->syncing = NULL;
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < 3; i++)
        while (lists[i] != NULL) {
            struct fwd *w = lists[i];
            lists[i] = w->next;
            answer(f, w, EDGE_FEED_FORWARD_unavailable, "shutting down");
        }
    transfer_end(f, &f->poll);
    free(f->poll.body);
    feed_free(f);
}
