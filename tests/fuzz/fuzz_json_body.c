/* fuzz_json_body.c - request_body() and the readers of its members over a
 * request body as a client sends it to the JSON endpoints (/v1/check,
 * /v1/revoke, /v1/admin/..., /global-token-revocation): the input, with the
 * NUL the transport puts after it. The request lives and is let go as
 * http_server.c's do (request_init, request_finish), through
 * fuzz_request_post() and fuzz_request_finish() (util.c).
 *
 * Asserts: request_body() answers 1, 0 (only for an empty body) or -1 (with
 * 400); a body taken is a UTF-8 object; its string members are within their
 * bounds and its ids (jti, sub, iss, sub_id's) are text; the request is let
 * go with its parsed body. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "revokd/request.h"
#include "revokd/utf8.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What request.h promises of a string member read with max. */
static void string_member(const struct request *req, const char *name, size_t max)
{
    const char *s = NULL;
    int rc = request_body_string(req, name, max, &s);

    fuzz_check(rc >= -1 && rc <= 1, "an unknown answer of request_body_string");
    fuzz_check(rc != 1 || (s[0] != '\0' && strlen(s) <= max), "a string member out of bounds");
}

static void id_member(const struct request *req, const char *name)
{
    const char *s = NULL;
    int rc = request_body_id(req, name, &s);

    fuzz_check(rc != 1 || (s[0] != '\0' && strlen(s) <= JWT_STR_MAX && utf8_is_text(s, strlen(s))), "an id that is not text");
}

static void object_member(const struct request *req, const char *object, const char *name)
{
    const char *s = NULL;
    int rc = request_body_member_string(req, object, name, &s);

    fuzz_check(rc != 1 || (s[0] != '\0' && strlen(s) <= JWT_STR_MAX && utf8_is_text(s, strlen(s))), "a member that is not text");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_request fr;
    struct request *req = &fr.req;
    double number;

    fuzz_request_post(&fr, "/v1/revoke", "application/json", data, size);
    int rc = request_body(req, &req->reply, true);
    fuzz_check(rc == 1 || rc == 0 || rc == -1, "an unknown answer of request_body");
    fuzz_check(rc != 0 || size == 0, "a body taken for empty");
    fuzz_check(rc != -1 || req->reply.status == 400, "a refused body without 400");
    fuzz_check(rc != 1 || (cJSON_IsObject(req->json) && utf8_valid(fr.body, size)), "a body taken that is no UTF-8 object");
    if (rc == 1) {
        string_member(req, "token", 16384);
        string_member(req, "reason", JWT_STR_MAX);
        id_member(req, "jti");
        id_member(req, "sub");
        id_member(req, "iss");
        (void)request_body_null(req, "iss");
        fuzz_check(request_body_number(req, "exp", &number) >= -1, "an unknown answer of request_body_number");
        object_member(req, "sub_id", "format");
        object_member(req, "sub_id", "iss");
        object_member(req, "sub_id", "sub");
        object_member(req, "sub_id", "id");
    }
    fuzz_request_finish(&fr);
    return 0;
}
