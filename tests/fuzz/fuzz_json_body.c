/* fuzz_json_body.c - request_body() and the readers of its members over a
 * request body as a client sends it to the JSON endpoints (/v1/check,
 * /v1/revoke, /v1/admin/..., /global-token-revocation): the input, with the
 * NUL the transport puts after it. The request lives and is let go as
 * http_server.c's do (request_init, request_finish). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "revokd/request.h"
#include "revokd/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond, what)                                                                        \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_json_body: %s\n", what);                                      \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static bool released;

static void on_replied(struct request *req)
{
    (void)req;
    check(false, "replied() without a wait");
}

static void on_release(struct request *req)
{
    (void)req;
    released = true;
}

static const struct request_transport transport = {.replied = on_replied, .release = on_release};

/* What request.h promises of a string member read with max. */
static void string_member(const struct request *req, const char *name, size_t max)
{
    const char *s = NULL;
    int rc = request_body_string(req, name, max, &s);

    check(rc >= -1 && rc <= 1, "an unknown answer of request_body_string");
    check(rc != 1 || (s[0] != '\0' && strlen(s) <= max), "a string member out of bounds");
}

static void id_member(const struct request *req, const char *name)
{
    const char *s = NULL;
    int rc = request_body_id(req, name, &s);

    check(rc != 1 || (s[0] != '\0' && strlen(s) <= JWT_STR_MAX && utf8_is_text(s, strlen(s))), "an id that is not text");
}

static void object_member(const struct request *req, const char *object, const char *name)
{
    const char *s = NULL;
    int rc = request_body_member_string(req, object, name, &s);

    check(rc != 1 || (s[0] != '\0' && strlen(s) <= JWT_STR_MAX && utf8_is_text(s, strlen(s))), "a member that is not text");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct request req = {0};
    char *body = malloc(size + 1);
    double number;

    check(body != NULL, "out of memory");
    memcpy(body, data, size);
    body[size] = '\0';
    request_init(&req, &transport);
    req.method = "POST";
    req.path = "/v1/revoke";
    req.content_type = "application/json";
    req.body = body;
    req.body_len = size;

    int rc = request_body(&req, &req.reply, true);
    check(rc == 1 || rc == 0 || rc == -1, "an unknown answer of request_body");
    check(rc != 0 || size == 0, "a body taken for empty");
    check(rc != -1 || req.reply.status == 400, "a refused body without 400");
    check(rc != 1 || (cJSON_IsObject(req.json) && utf8_valid(body, size)), "a body taken that is no UTF-8 object");
    if (rc == 1) {
        string_member(&req, "token", 16384);
        string_member(&req, "reason", JWT_STR_MAX);
        id_member(&req, "jti");
        id_member(&req, "sub");
        id_member(&req, "iss");
        (void)request_body_null(&req, "iss");
        check(request_body_number(&req, "exp", &number) >= -1, "an unknown answer of request_body_number");
        object_member(&req, "sub_id", "format");
        object_member(&req, "sub_id", "iss");
        object_member(&req, "sub_id", "sub");
        object_member(&req, "sub_id", "id");
    }
    free(reply_render(&req.reply));

    released = false;
    request_finish(&req);
    check(released && req.json == NULL, "the request was not let go");
    free(body);
    return 0;
}
