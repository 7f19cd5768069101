/* reply.c - build error bodies and token failures; small request helpers. */
#include "revokd/reply.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "revokd/log.h"
#include "revokd/store.h"
#include "revokd/utf8.h"

void reply_json(struct reply *rep, int status, cJSON *body)
{
    cJSON_Delete(rep->body);
    rep->status = status;
    rep->body = body;
}

void reply_error(struct reply *rep, int status, const char *code, const char *description)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "error", code);
    cJSON_AddStringToObject(body, "error_description", description);
    reply_json(rep, status, body);
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
    cJSON *body = cJSON_CreateObject();

    cJSON_AddFalseToObject(body, "active");
    cJSON_AddStringToObject(body, "reason", name);
    cJSON_AddStringToObject(body, "error", "invalid_token");
    cJSON_AddStringToObject(body, "error_description", text);
    if (c != NULL && reason == -JWT_revoked) {
        if (c->jti[0] != '\0')
            cJSON_AddStringToObject(body, "jti", c->jti);
        if (c->has_sub)
            cJSON_AddStringToObject(body, "sub", c->sub);
    }
    reply_json(rep, 401, body);
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
    else
        reply_error(rep, 503, "store_unavailable",
                    "the revocation store cannot be reached; the token's state is unknown");
}

void reply_store_failed(struct reply *rep, const struct store_result *res)
{
    reply_log(rep, "store_error", res->error);
    reply_store_error(rep, res->rc);
}

cJSON *reply_parse_body(struct request *req, struct reply *rep, int allow_empty)
{
    const char *end = NULL;
    cJSON *json;

    if (req->body_len == 0 && allow_empty)
        return NULL;
    /* The body is NUL-terminated by http_server.c; an embedded NUL would end
     * parsing early, so insist that the parse consumed every byte. */
    json = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0);
    while (json != NULL && end < req->body + req->body_len &&
           (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (!cJSON_IsObject(json) || end != req->body + req->body_len ||
        strcasestr(req->body, "\\u0000") != NULL || !utf8_valid(req->body, req->body_len)) {
        cJSON_Delete(json);
        reply_error(rep, 400, "invalid_request",
                    "the body must be a JSON object in UTF-8 (and contain no \\u0000)");
        return NULL;
    }
    req->json = json;
    return json;
}

int request_bearer(const struct request *req, const char **token, size_t *len)
{
    const char *h = req->authorization;

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return -1;
    h += 7;
    h += strspn(h, " \t");
    size_t n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (n == 0)
        return -1;
    *token = h;
    *len = n;
    return 0;
}

int json_string(const cJSON *obj, const char *name, size_t max, const char **out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (m == NULL)
        return 0;
    if (!cJSON_IsString(m) || m->valuestring[0] == '\0' || strlen(m->valuestring) > max)
        return -1;
    *out = m->valuestring;
    return 1;
}

int json_id(const cJSON *obj, const char *name, const char **out)
{
    int rc = json_string(obj, name, JWT_STR_MAX, out);
    return rc == 1 && !utf8_is_text(*out, strlen(*out)) ? -1 : rc;
}

void json_add_int(cJSON *obj, const char *name, int64_t value)
{
    char digits[24];
    snprintf(digits, sizeof(digits), "%" PRId64, value);
    cJSON_AddRawToObject(obj, name, digits);
}
