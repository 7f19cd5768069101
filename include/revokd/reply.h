/* reply.h - the replies handlers build, in one place, so that every error
 * body is {"error", "error_description"} and every token failure carries
 * the same fields and WWW-Authenticate header.
 *
 * A JSON body is built member by member (reply_begin, reply_string, ...);
 * the JSON library stays inside reply.c. */
#ifndef REVOKD_REPLY_H
#define REVOKD_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "revokd/jwt.h"
#include "revokd/store.h"

struct cJSON;
struct event_consumer;

struct reply {
    int status;                 /* 0 until a reply is made */
    struct cJSON *body;         /* reply.c's: the JSON body */
    struct cJSON *object;       /* reply.c's: where members go, the body or an object in it */
    char *text;                 /* owned; when set, sent instead of body as content_type */
    const char *content_type;
    const char *allow;          /* 405: the Allow header */
    char www_authenticate[320]; /* 401, 403: the WWW-Authenticate header, or "" */
    char *headers;              /* reply.c's: more headers, "name\0value\0" each */
    size_t headers_len, headers_cap;
    struct cJSON *log;          /* reply.c's: extra fields for the request's log line */
    struct event_consumer *stream; /* when set, the body is this event stream (event_stream.h) */
};

/* A JSON object body with status; members follow. Replaces any body made
 * before. */
void reply_begin(struct reply *rep, int status);

/* Members of the object being built. Integers are printed exactly (a JSON
 * library would format them as doubles, the costliest part of a check's
 * reply). */
void reply_string(struct reply *rep, const char *name, const char *value);
void reply_int(struct reply *rep, const char *name, int64_t value);
void reply_bool(struct reply *rep, const char *name, bool value);
/* joined, a list separated by sep: a string member when it has one word,
 * else an array of them (as RFC 7662's aud). */
void reply_words(struct reply *rep, const char *name, const char *joined, char sep);
void reply_null(struct reply *rep, const char *name);

/* Members then go into a new object member name, until reply_object_end(). */
void reply_object(struct reply *rep, const char *name);
void reply_object_end(struct reply *rep);
/* Adds the header name: value to the reply (value: text without control
 * characters, which the callers' claims are). */
void reply_header(struct reply *rep, const char *name, const char *value);
/* The headers added, one after another: *at starts at 0; returns false
 * after the last. */
bool reply_next_header(const struct reply *rep, size_t *at, const char **name, const char **value);

/* A new object at the end of the body's array name (made by the first
 * call); members go into it until reply_object_end(). */
void reply_array_object(struct reply *rep, const char *name);

/* An empty array member name of the object being built. */
void reply_array(struct reply *rep, const char *name);
/* Appends json, the text of one JSON value (event_json's, say), to the
 * body's array name (made by the first call if reply_array did not).
 * Returns 0, or -1 when out of memory: then nothing was added. */
int reply_array_raw(struct reply *rep, const char *name, const char *json);

/* A body that is not JSON: text (taken over, freed with the reply). */
void reply_text(struct reply *rep, int status, char *text, const char *content_type);
/* 200 whose body is the event stream c (text/event-stream), taken over:
 * the transport sends it as it comes, and closes c. */
void reply_stream(struct reply *rep, struct event_consumer *c);
/* A reply without a body or Content-Type (204). */
void reply_empty(struct reply *rep, int status);

/* {"error": code, "error_description": description}. */
void reply_error(struct reply *rep, int status, const char *code, const char *description);

/* 401 {"active": false, "reason", "error": "invalid_token", "error_description"}
 * with WWW-Authenticate; jti and sub are added for reason revoked (c may be
 * NULL). reason is a negative or positive JWT_* value; -JWT_ENOKEYS gives
 * 503 {"error": "keys_unavailable"} instead. */
void reply_token_failure(struct reply *rep, int reason, const struct jwt_claims *c);

/* 503 for a store error code (-STORE_*). */
void reply_store_error(struct reply *rep, int code);

/* The same for a store call that failed (res->rc < 0), its error logged. */
void reply_store_failed(struct reply *rep, const struct store_result *res);

/* Adds a string field to the request's log line. */
void reply_log(struct reply *rep, const char *name, const char *value);

/* The transport's side: the body as JSON text, malloc'd (NULL when out of
 * memory or no JSON body was made), and the log fields (taken over by the
 * caller, a cJSON object or NULL). */
char *reply_render(const struct reply *rep);
struct cJSON *reply_take_log(struct reply *rep);

/* Frees what the reply holds and clears it; a cleared reply may be
 * cleared again. */
void reply_clear(struct reply *rep);

/* Why a lookup or an admin revocation that names no issuer is refused when
 * REVOKD_ISSUER is unset: it would reach only the tokens without iss, which
 * most providers never issue, and report success for a revocation that
 * revokes nothing. */
#define ISSUER_REQUIRED                                                                          \
    "iss is required since REVOKD_ISSUER is not set: give the token's issuer (empty or null "      \
    "for tokens without iss)"

#endif
