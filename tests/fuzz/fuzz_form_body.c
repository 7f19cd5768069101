/* fuzz_form_body.c - request_form() over an application/x-www-form-urlencoded
 * body as OAuth clients send it to /oauth2/revoke and /oauth2/introspect,
 * and the members read from it then (route_oauth.c). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "revokd/clients.h"
#include "revokd/request.h"
#include "revokd/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond, what)                                                                        \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_form_body: %s\n", what);                                      \
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"token", "token_type_hint", "client_id", "client_secret"};
    static const size_t max[] = {16384, 64, CLIENT_ID_MAX, 1024};
    struct request req = {0};
    char *body = malloc(size + 1);

    check(body != NULL, "out of memory");
    memcpy(body, data, size);
    body[size] = '\0';
    request_init(&req, &transport);
    req.method = "POST";
    req.path = "/oauth2/introspect";
    req.content_type = "application/x-www-form-urlencoded";
    req.body = body;
    req.body_len = size;

    int rc = request_form(&req, &req.reply);
    check(rc == 1 || rc == -1, "an unknown answer of request_form");
    check(rc != -1 || req.reply.status == 400, "a refused form without 400");
    if (rc == 1) {
        const cJSON *m;
        check(cJSON_IsObject(req.json), "a form without its members");
        /* Every member a string of UTF-8, each name once. */
        cJSON_ArrayForEach(m, req.json) {
            check(cJSON_IsString(m) && utf8_valid(m->valuestring, strlen(m->valuestring)), "a member that is not UTF-8");
            check(m->string[0] != '\0', "a member without a name");
            check(cJSON_GetObjectItemCaseSensitive(req.json, m->string) == m, "a name given twice");
        }
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            const char *s = NULL;
            int got = request_body_string(&req, names[i], max[i], &s);
            check(got != 1 || (s[0] != '\0' && strlen(s) <= max[i]), "a string member out of bounds");
        }
    }
    free(reply_render(&req.reply));

    released = false;
    request_finish(&req);
    check(released && req.json == NULL, "the request was not let go");
    free(body);
    return 0;
}
