/* fuzz_form_body.c - request_form() over an application/x-www-form-urlencoded
 * body as OAuth clients send it to /oauth2/revoke and /oauth2/introspect,
 * and the members read from it then (route_oauth.c).
 *
 * Asserts: a form is taken (1) or refused with 400 (-1); a taken one's
 * members are strings of UTF-8, each with a name, each name once; the
 * members OAuth reads are within their bounds; the request is let go with
 * its members (fuzz_request_finish, util.c). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "revokd/clients.h"
#include "revokd/request.h"
#include "revokd/utf8.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"token", "token_type_hint", "client_id", "client_secret"};
    static const size_t max[] = {16384, 64, CLIENT_ID_MAX, 1024};
    struct fuzz_request fr;
    struct request *req = &fr.req;

    fuzz_request_post(&fr, "/oauth2/introspect", "application/x-www-form-urlencoded", data, size);
    int rc = request_form(req, &req->reply);
    fuzz_check(rc == 1 || rc == -1, "an unknown answer of request_form");
    fuzz_check(rc != -1 || req->reply.status == 400, "a refused form without 400");
    if (rc == 1) {
        const cJSON *m;
        fuzz_check(cJSON_IsObject(req->json), "a form without its members");
        /* Every member a string of UTF-8, each name once. */
        cJSON_ArrayForEach(m, req->json) {
            fuzz_check(cJSON_IsString(m) && utf8_valid(m->valuestring, strlen(m->valuestring)), "a member that is not UTF-8");
            fuzz_check(m->string[0] != '\0', "a member without a name");
            fuzz_check(cJSON_GetObjectItemCaseSensitive(req->json, m->string) == m, "a name given twice");
        }
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            const char *s = NULL;
            int got = request_body_string(req, names[i], max[i], &s);
            fuzz_check(got != 1 || (s[0] != '\0' && strlen(s) <= max[i]), "a string member out of bounds");
        }
    }
    fuzz_request_finish(&fr);
    return 0;
}
