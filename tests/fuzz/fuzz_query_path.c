/* fuzz_query_path.c - a request target as a client sends it: the path and
 * query decoders (url_decode, url_decode_form, url_query_find,
 * request_query) and router_dispatch() with whatever handler the path picks.
 *
 * The input is "METHOD path[?query]" (without a space in its first 16 bytes
 * the method is GET and all of it is the target). Requests carry no
 * credentials and no body, so no handler gets as far as a signature check;
 * those that ask the store (lookups by jti or sub, /readyz) ask the
 * in-memory one (store_memory.h), which answers a round later on this
 * target's loop, as Redis would: the route's whole chain runs, deterministic
 * and without a network. The app is otherwise zeroed, with a configuration,
 * an HMAC key, admin keys and clients from files written once.
 *
 * Asserts: what url.h promises of the decoders and url_query_find() (a
 * length that fits, the same answer in less room, a value inside the query),
 * request_query() gives text; then every reply: replied, a status of
 * 200..599, a route in the table, 405 with Allow, 404 under no route, no
 * header or WWW-Authenticate that splits; no request waits for a signature
 * check; the request is let go. */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "revokd/app.h"
#include "revokd/config.h"
#include "revokd/keyring.h"
#include "revokd/loop.h"
#include "revokd/request.h"
#include "revokd/router.h"
#include "revokd/store_memory.h"
#include "revokd/token_cache.h"
#include "revokd/url.h"
#include "revokd/utf8.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ISS "https://issuer.fuzz.test"
#define NOW 1767225600LL
#define MAX_TARGET 8192 /* libmicrohttpd's default limit on a request line is about this */
#define ROUNDS 100      /* loop rounds a reply may take */

static struct {
    char dir[PATH_MAX], files[3][PATH_MAX + 32];
    struct config cfg;
    struct app app;
    struct loop *loop;
    struct store_conn *conn;
    struct request req;
    bool released;
} fx;

static void on_replied(struct request *req)
{
    (void)req;
}

static void on_release(struct request *req)
{
    (void)req;
    fx.released = true;
}

static const struct request_transport transport = {.replied = on_replied, .release = on_release};

static void write_file(char *path, const char *name, const char *text)
{
    snprintf(path, PATH_MAX + 32, "%s/%s", fx.dir, name);
    fuzz_write_file(path, text, strlen(text));
}

static void cleanup(void)
{
    store_conn_free(fx.conn);
    store_free(fx.app.store);
    loop_free(fx.loop);
    keyring_free(fx.app.keys);
    token_cache_free(fx.app.cache);
    config_free(&fx.cfg);
    for (size_t i = 0; i < 3; i++)
        unlink(fx.files[i]);
    rmdir(fx.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[2048] = "";
    (void)argc;
    (void)argv;

    fuzz_scrub_environment();
    fuzz_make_temp_dir(fx.dir, sizeof(fx.dir), "fuzz-query-path");
    write_file(fx.files[0], "hs256.secret", "fuzz-hmac-secret-of-32-bytes-min!!");
    write_file(fx.files[1], "admin-keys", "ops:admin-key-fuzz-0123456789\n");
    write_file(fx.files[2], "clients", "app:client-secret-0123456789:revoke_any\n");
    char *args[] = {"revokd", "--jwt-hmac-secret-file", fx.files[0], "--admin-keys-file", fx.files[1],
                    "--clients-file", fx.files[2], "--issuer", ISS, NULL};
    fuzz_check(config_load(&fx.cfg, (int)(sizeof(args) / sizeof(args[0])) - 1, args, err, sizeof(err)) == 0 &&
                   (fx.app.cache = token_cache_new(100, ISS)) != NULL &&
                   (fx.app.keys = keyring_new(&fx.cfg, fx.app.cache, err, sizeof(err))) != NULL,
               err);
    fx.app.cfg = &fx.cfg;
    fuzz_check((fx.loop = loop_new()) != NULL && (fx.app.store = store_memory_new()) != NULL &&
                   (fx.conn = store_conn_new(fx.app.store, fx.loop)) != NULL,
               "cannot make the store");
    atexit(cleanup);
    return 0;
}

/* Both decoders over raw bytes (len, NULs included), into a buffer that
 * fits and into one that may not: what url.h promises of either answer. */
static void decode(const char *raw, size_t len)
{
    char *out = malloc(len + 1), small[8];

    fuzz_check(out != NULL, "out of memory");
    long n = url_decode(raw, len, out, len + 1);
    fuzz_check(n == -1 || (n >= 0 && (size_t)n <= len && out[n] == '\0' && strlen(out) == (size_t)n),
               "url_decode: a bad answer");
    fuzz_check(n != -1 || memchr(raw, '\0', len) != NULL || memchr(raw, '%', len) != NULL,
               "url_decode refused a string without NUL or escape");
    long m = url_decode(raw, len, small, sizeof(small));
    fuzz_check(m == -1 || (m == n && m < (long)sizeof(small)), "url_decode: another answer in less room");
    n = url_decode_form(raw, len, out, len + 1);
    fuzz_check(n == -1 || (n >= 0 && (size_t)n <= len && strlen(out) == (size_t)n), "url_decode_form: a bad answer");
    free(out);
}

static void query(const struct request *req)
{
    static const char *const names[] = {"jti", "sub", "iat", "iss", "scope", "aud", ""};
    char out[300];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *value = NULL;
        size_t len = 0;
        int n = url_query_find(req->query, names[i], &value, &len);
        fuzz_check(n >= 0, "url_query_find: a negative count");
        fuzz_check(n == 0 || (value >= req->query && value + len <= req->query + strlen(req->query)),
                   "url_query_find: a value outside the query");
        int rc = request_query(req, names[i], out, sizeof(out));
        fuzz_check(rc >= -1 && rc <= 1 && (rc != 0) == (n != 0), "request_query: a bad answer");
        fuzz_check(rc != 1 || (out[0] != '\0' && utf8_is_text(out, strlen(out))), "request_query: a value that is not text");
    }
}

/* What every reply must be, whatever the route. */
static void check_reply(struct request *req)
{
    const struct reply *rep = &req->reply;
    size_t at = 0;
    const char *name, *value;

    fuzz_check(req->state == REQUEST_REPLIED, "a request not replied");
    fuzz_check(rep->status >= 200 && rep->status <= 599, "a reply without a status");
    fuzz_check(req->route >= -1 && req->route < (int)router_route_count(), "a route out of the table");
    fuzz_check(rep->status != 405 || rep->allow != NULL, "405 without Allow");
    fuzz_check(rep->status != 404 || req->route == -1, "404 counted under a route");
    while (reply_next_header(rep, &at, &name, &value))
        fuzz_check(strpbrk(value, "\r\n") == NULL && strpbrk(name, "\r\n: ") == NULL, "a header that splits");
    fuzz_check(strpbrk(rep->www_authenticate, "\r\n") == NULL, "a WWW-Authenticate that splits");
    free(reply_render(rep));
    cJSON_Delete(reply_take_log(&req->reply));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct request *req = &fx.req;
    char method[17] = "GET", *text;
    size_t skip = 0;

    if (size > MAX_TARGET)
        return 0;
    const char *sp = memchr(data, ' ', size < sizeof(method) ? size : sizeof(method));
    if (sp != NULL) {
        skip = (size_t)(sp - (const char *)data);
        memcpy(method, data, skip);
        method[skip] = '\0'; /* a NUL in it ends it, as in a C string */
        skip++;
    }
    const char *raw = (const char *)data + skip;
    size_t rawlen = size - skip;
    const char *mark = memchr(raw, '?', rawlen);
    size_t pathlen = mark != NULL ? (size_t)(mark - raw) : rawlen;

    decode(raw, pathlen);
    if (mark != NULL)
        decode(mark + 1, rawlen - pathlen - 1);

    /* The transport's strings: NUL-terminated, the query without its '?'. */
    text = fuzz_text(raw, rawlen);
    if (mark != NULL)
        text[pathlen] = '\0';

    memset(req, 0, sizeof(*req));
    request_init(req, &transport);
    req->method = method;
    req->path = text;
    req->query = mark != NULL ? text + pathlen + 1 : NULL;
    req->body = "";
    req->app = &fx.app;
    req->now = NOW;
    req->store = fx.conn;
    query(req);

    if (request_dispatch(req) == REQUEST_WAIT) {
        fuzz_check(req->on_work == NULL, "a request without a token waits for a signature check");
        for (int i = 0; i < ROUNDS && req->state == REQUEST_WAITING; i++)
            loop_poll(fx.loop, 10);
    }
    check_reply(req);
    fx.released = false;
    request_finish(req);
    fuzz_check(fx.released, "the request was not let go");
    free(text);
    return 0;
}
