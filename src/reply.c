/* reply.c - build reply bodies, error bodies and token failures; the one
 * place handlers' answers meet the JSON library. */
#include "revokd/reply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "revokd/event_stream.h"
#include "revokd/log.h"

void reply_begin(struct reply *rep, int status)
{
    cJSON_Delete(rep->body);
    rep->status = status;
    rep->body = rep->object = cJSON_CreateObject();
}

void reply_string(struct reply *rep, const char *name, const char *value)
{
    cJSON_AddStringToObject(rep->object, name, value);
}

void reply_int(struct reply *rep, const char *name, int64_t value)
{
    char digits[24];
    snprintf(digits, sizeof(digits), "%" PRId64, value);
    cJSON_AddRawToObject(rep->object, name, digits);
}

void reply_words(struct reply *rep, const char *name, const char *joined, char sep)
{
    if (strchr(joined, sep) == NULL) {
        reply_string(rep, name, joined);
        return;
    }
    cJSON *a = cJSON_AddArrayToObject(rep->object, name);
    for (const char *p = joined; a != NULL && *p != '\0';) {
        size_t len = strcspn(p, (char[]){sep, '\0'});
        cJSON *item = cJSON_CreateString("");
        char *copy = strndup(p, len);
        if (item != NULL && copy != NULL) {
            cJSON_SetValuestring(item, copy);
            cJSON_AddItemToArray(a, item);
        } else {
            cJSON_Delete(item);
        }
        free(copy);
        p += len + (p[len] == sep);
    }
}

void reply_bool(struct reply *rep, const char *name, bool value)
{
    cJSON_AddBoolToObject(rep->object, name, value);
}

void reply_null(struct reply *rep, const char *name)
{
    cJSON_AddNullToObject(rep->object, name);
}

void reply_object(struct reply *rep, const char *name)
{
    cJSON *o = cJSON_AddObjectToObject(rep->object, name);
    if (o != NULL)
        rep->object = o;
}

void reply_array_object(struct reply *rep, const char *name)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(rep->body, name);
    cJSON *o = cJSON_CreateObject();

    if (a == NULL)
        a = cJSON_AddArrayToObject(rep->body, name);
    if (o == NULL || !cJSON_AddItemToArray(a, o)) {
        cJSON_Delete(o);
        return;
    }
    rep->object = o;
}

void reply_array(struct reply *rep, const char *name)
{
    cJSON_AddArrayToObject(rep->object, name);
}

int reply_array_raw(struct reply *rep, const char *name, const char *json)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(rep->body, name);
    cJSON *item = cJSON_CreateRaw(json);

    if (a == NULL)
        a = cJSON_AddArrayToObject(rep->body, name);
    if (a == NULL || item == NULL || !cJSON_AddItemToArray(a, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

void reply_object_end(struct reply *rep)
{
    rep->object = rep->body;
}

void reply_empty(struct reply *rep, int status)
{
    reply_text(rep, status, strdup(""), NULL);
}

void reply_text(struct reply *rep, int status, char *text, const char *content_type)
{
    free(rep->text);
    rep->status = status;
    rep->text = text;
    rep->content_type = content_type;
}

void reply_stream(struct reply *rep, struct event_consumer *c)
{
    reply_text(rep, 200, NULL, "text/event-stream");
    rep->stream = c;
}

void reply_error(struct reply *rep, int status, const char *code, const char *description)
{
    reply_begin(rep, status);
    reply_string(rep, "error", code);
    reply_string(rep, "error_description", description);
}

void reply_log(struct reply *rep, const char *name, const char *value)
{
    /* Request lines are written at info only (http_server.c). */
    if (!log_enabled(LOG_INFO))
        return;
    if (rep->log == NULL)
        rep->log = cJSON_CreateObject();
    cJSON_AddStringToObject(rep->log, name, value);
}

void reply_token_failure(struct reply *rep, int reason, const struct jwt_claims *c)
{
    const char *name = jwt_reason_name(reason), *text = jwt_reason_text(reason);

    if (reason == -JWT_ENOKEYS) {
        reply_error(rep, 503, "keys_unavailable",
                    "the token's issuer has no keys yet: its key set could not be fetched so far");
        reply_log(rep, "reason", "keys_unavailable");
        return;
    }
    reply_begin(rep, 401);
    reply_bool(rep, "active", false);
    reply_string(rep, "reason", name);
    reply_string(rep, "error", "invalid_token");
    reply_string(rep, "error_description", text);
    if (c != NULL && reason == -JWT_revoked) {
        if (c->jti[0] != '\0')
            reply_string(rep, "jti", c->jti);
        if (c->has_sub)
            reply_string(rep, "sub", c->sub);
    }
    /* RFC 6750 3: the texts are fixed ASCII without quotes. */
    snprintf(rep->www_authenticate, sizeof(rep->www_authenticate),
             "Bearer error=\"invalid_token\", error_description=\"%s\"", text);
    reply_log(rep, "reason", name);
}

void reply_store_error(struct reply *rep, int code)
{
    if (code == -STORE_ENOTREPLICATED)
        reply_error(rep, 503, "not_replicated",
                    "the revocation was not confirmed by enough Redis replicas; retry");
    else if (code == -STORE_ESTALE)
        reply_error(rep, 503, "feed_stale",
                    "this edge cannot vouch for its copy of the central service's revocations; the token's state "
                    "is unknown");
    else if (code == -STORE_EOVERLOADED)
        reply_error(rep, 503, "overloaded",
                    "too many requests wait for the revocation store; retry after Retry-After seconds");
    else
        reply_error(rep, 503, "store_unavailable",
                    "the revocation store cannot be reached; the token's state is unknown");
}

void reply_store_failed(struct reply *rep, const struct store_result *res)
{
    reply_log(rep, "store_error", res->error);
    reply_store_error(rep, res->rc);
}

char *reply_render(const struct reply *rep)
{
    return rep->body != NULL ? cJSON_PrintUnformatted(rep->body) : NULL;
}

struct cJSON *reply_take_log(struct reply *rep)
{
    cJSON *log = rep->log;
    rep->log = NULL;
    return log;
}

void reply_header(struct reply *rep, const char *name, const char *value)
{
    size_t n = strlen(name) + 1, v = strlen(value) + 1, need = rep->headers_len + n + v;

    /* One allocation for the usual few headers, not one each. */
    if (need > rep->headers_cap) {
        size_t cap = need > 2 * rep->headers_cap ? need : 2 * rep->headers_cap;
        char *grown = realloc(rep->headers, cap < 512 ? 512 : cap);
        if (grown == NULL)
            return;
        rep->headers = grown;
        rep->headers_cap = cap < 512 ? 512 : cap;
    }
    memcpy(rep->headers + rep->headers_len, name, n);
    memcpy(rep->headers + rep->headers_len + n, value, v);
    rep->headers_len = need;
}

bool reply_next_header(const struct reply *rep, size_t *at, const char **name, const char **value)
{
    if (*at >= rep->headers_len)
        return false;
    *name = rep->headers + *at;
    *value = *name + strlen(*name) + 1;
    *at = (size_t)(*value + strlen(*value) + 1 - rep->headers);
    return true;
}

void reply_clear(struct reply *rep)
{
    cJSON_Delete(rep->body);
    cJSON_Delete(rep->log);
    free(rep->text);
    free(rep->headers);
    if (rep->stream != NULL)
        event_stream_close(rep->stream); /* never sent */
    memset(rep, 0, sizeof(*rep));
}
