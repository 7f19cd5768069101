/* revokectl.c - command-line client for revokd, for operators and tests.
 *
 * Talks HTTP to revokd with libcurl. "mint" signs development tokens with
 * libjwt; it is the one place libjwt is used, since signing our own test
 * tokens involves none of the verification traps that keep it out of the
 * server (see jwks.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <jwt.h>
#include <openssl/rand.h>

#include "revokd/file.h"

#define EXIT_REFUSED 1 /* revokd said no (4xx) */
#define EXIT_USAGE 2
#define EXIT_UNAVAILABLE 3 /* 5xx or no answer */

static const char usage[] =
    "usage: revokectl [--url URL] [--admin-key-file FILE] COMMAND ...\n"
    "\n"
    "  mint --key FILE [--alg ALG] [--kid KID] [--sub S] [--iss I] [--aud A]\n"
    "       [--jti J | --no-jti] [--ttl SECONDS] [--iat N | --no-iat] [--nbf N] [--exp N]\n"
    "       [--claims JSON]      sign a token with a development key (PEM private key,\n"
    "                            or the raw secret for HS*); prints the token\n"
    "  check TOKEN               GET /v1/check\n"
    "  revoke TOKEN              POST /v1/revoke\n"
    "  revoke-jti JTI --exp N [--iss I] [--reason R]   POST /v1/admin/revoke\n"
    "  revoke-all SUBJECT [--reason R]                 POST /v1/admin/subjects/{sub}/revoke-all\n"
    "  health                    GET /readyz\n"
    "\n"
    "URL defaults to $REVOKD_URL or http://127.0.0.1:8080. The admin key is read\n"
    "from --admin-key-file (first line) or $REVOKD_ADMIN_KEY.\n"
    "Exit status: 0 for 2xx, 1 for 4xx, 2 for usage errors, 3 for 5xx or no answer.\n";

static int die_usage(const char *msg)
{
    fprintf(stderr, "revokectl: %s\n%s", msg, usage);
    return EXIT_USAGE;
}

/* ---- mint ---- */

static int mint(int argc, char **argv)
{
    const char *keyfile = NULL, *algname = "RS256", *kid = NULL, *sub = NULL, *iss = NULL,
               *aud = NULL, *jti = NULL, *claims = NULL;
    long long ttl = 300, iat = (long long)time(NULL), nbf = -1, exp = -1;
    int no_jti = 0, no_iat = 0, rc = EXIT_USAGE;
    char jtibuf[33], err[256];

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-jti") == 0) {
            no_jti = 1;
            continue;
        }
        if (strcmp(a, "--no-iat") == 0) {
            no_iat = 1;
            continue;
        }
        if (v == NULL)
            return die_usage("mint: missing value");
        i++;
        if (strcmp(a, "--key") == 0)
            keyfile = v;
        else if (strcmp(a, "--alg") == 0)
            algname = v;
        else if (strcmp(a, "--kid") == 0)
            kid = v;
        else if (strcmp(a, "--sub") == 0)
            sub = v;
        else if (strcmp(a, "--iss") == 0)
            iss = v;
        else if (strcmp(a, "--aud") == 0)
            aud = v;
        else if (strcmp(a, "--jti") == 0)
            jti = v;
        else if (strcmp(a, "--claims") == 0)
            claims = v;
        else if (strcmp(a, "--ttl") == 0)
            ttl = atoll(v);
        else if (strcmp(a, "--iat") == 0)
            iat = atoll(v);
        else if (strcmp(a, "--nbf") == 0)
            nbf = atoll(v);
        else if (strcmp(a, "--exp") == 0)
            exp = atoll(v);
        else
            return die_usage("mint: unknown option");
    }
    if (keyfile == NULL)
        return die_usage("mint: --key FILE is required");
    jwt_alg_t alg = jwt_str_alg(algname);
    if (alg == JWT_ALG_INVAL || alg == JWT_ALG_NONE)
        return die_usage("mint: unsupported --alg");

    size_t keylen = 0;
    char *key = file_read(keyfile, 1024 * 1024, &keylen, err, sizeof(err));
    if (key == NULL) {
        fprintf(stderr, "revokectl: --key: %s\n", err);
        return EXIT_USAGE;
    }
    size_t used = keylen;
    if (alg >= JWT_ALG_HS256 && alg <= JWT_ALG_HS512 && used > 0 && key[used - 1] == '\n')
        used--;

    jwt_t *jwt = NULL;
    char *token = NULL;
    if (jwt_new(&jwt) != 0 || jwt_set_alg(jwt, alg, (unsigned char *)key, (int)used) != 0) {
        fprintf(stderr, "revokectl: mint: the key does not fit %s\n", algname);
        goto out;
    }
    if (!no_jti && jti == NULL) {
        unsigned char rnd[16];
        RAND_bytes(rnd, sizeof(rnd));
        for (size_t i = 0; i < sizeof(rnd); i++)
            snprintf(jtibuf + 2 * i, 3, "%02x", rnd[i]);
        jti = jtibuf;
    }
    if (exp < 0)
        exp = iat + ttl;
    if ((kid && jwt_add_header(jwt, "kid", kid)) || (sub && jwt_add_grant(jwt, "sub", sub)) ||
        (iss && jwt_add_grant(jwt, "iss", iss)) || (aud && jwt_add_grant(jwt, "aud", aud)) ||
        (!no_jti && jwt_add_grant(jwt, "jti", jti)) ||
        (!no_iat && jwt_add_grant_int(jwt, "iat", (long)iat)) ||
        (nbf >= 0 && jwt_add_grant_int(jwt, "nbf", (long)nbf)) ||
        jwt_add_grant_int(jwt, "exp", (long)exp) ||
        (claims && jwt_add_grants_json(jwt, claims))) {
        fprintf(stderr, "revokectl: mint: invalid claims\n");
        goto out;
    }
    if ((token = jwt_encode_str(jwt)) == NULL) {
        fprintf(stderr, "revokectl: mint: signing failed: %s\n", strerror(errno));
        goto out;
    }
    printf("%s\n", token);
    rc = 0;
out:
    free(token);
    jwt_free(jwt);
    file_free(key, keylen);
    return rc;
}

/* ---- HTTP commands ---- */

struct buffer {
    char *data;
    size_t len;
};

static size_t collect(char *ptr, size_t size, size_t n, void *userdata)
{
    struct buffer *b = userdata;
    size_t add = size * n;
    char *grown = realloc(b->data, b->len + add + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + b->len, ptr, add);
    b->data = grown;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* Sends one request and prints the body. Returns the exit status. */
static int call(const char *base, const char *method, const char *path, const char *bearer,
                const char *json)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    struct buffer body = {0};
    char url[4096], auth[16384];
    long status = 0;
    int rc = EXIT_UNAVAILABLE;

    if (curl == NULL)
        return EXIT_UNAVAILABLE;
    snprintf(url, sizeof(url), "%s%s", base, path);
    if (bearer != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
        headers = curl_slist_append(headers, auth);
    }
    if (json != NULL) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    CURLcode res = curl_easy_perform(curl);
    if (res != CURLE_OK) {
        fprintf(stderr, "revokectl: %s: %s\n", url, curl_easy_strerror(res));
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        printf("%s\n", body.data ? body.data : "");
        rc = status >= 200 && status < 300 ? 0 : status < 500 ? EXIT_REFUSED : EXIT_UNAVAILABLE;
    }
    free(body.data);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return rc;
}

static char *admin_key(const char *file)
{
    char err[256];
    size_t len = 0;

    if (file == NULL) {
        const char *env = getenv("REVOKD_ADMIN_KEY");
        return env ? strdup(env) : NULL;
    }
    char *text = file_read(file, 64 * 1024, &len, err, sizeof(err));
    if (text == NULL) {
        fprintf(stderr, "revokectl: --admin-key-file: %s\n", err);
        return NULL;
    }
    text[strcspn(text, "\r\n")] = '\0';
    char *key = strdup(text);
    file_free(text, len);
    return key;
}

/* Adds name: value to o when value is not NULL. */
static void add_string(cJSON *o, const char *name, const char *value)
{
    if (value != NULL)
        cJSON_AddStringToObject(o, name, value);
}

/* Prints o as the request body, deletes o, and calls. */
static int call_json(const char *base, const char *path, const char *bearer, cJSON *o)
{
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    int rc = call(base, "POST", path, bearer, body ? body : "{}");
    free(body);
    return rc;
}

int main(int argc, char **argv)
{
    const char *base = getenv("REVOKD_URL"), *keyfile = NULL;
    int i = 1, rc;

    if (base == NULL)
        base = "http://127.0.0.1:8080";
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return die_usage("missing value");
        if (strcmp(argv[i], "--url") == 0)
            base = argv[i + 1];
        else if (strcmp(argv[i], "--admin-key-file") == 0)
            keyfile = argv[i + 1];
        else
            return die_usage("unknown option");
    }
    if (i >= argc)
        return die_usage("missing command");
    const char *cmd = argv[i++];
    if (strcmp(cmd, "mint") == 0)
        return mint(argc - i, argv + i);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (strcmp(cmd, "check") == 0 && i + 1 == argc) {
        rc = call(base, "GET", "/v1/check", argv[i], NULL);
    } else if (strcmp(cmd, "revoke") == 0 && i + 1 == argc) {
        cJSON *o = cJSON_CreateObject();
        add_string(o, "token", argv[i]);
        rc = call_json(base, "/v1/revoke", NULL, o);
    } else if (strcmp(cmd, "health") == 0 && i == argc) {
        rc = call(base, "GET", "/readyz", NULL, NULL);
    } else if ((strcmp(cmd, "revoke-jti") == 0 || strcmp(cmd, "revoke-all") == 0) && i < argc) {
        const char *id = argv[i++], *iss = NULL, *reason = NULL;
        long long exp = -1;
        for (; i + 1 < argc; i += 2) {
            if (strcmp(argv[i], "--exp") == 0)
                exp = atoll(argv[i + 1]);
            else if (strcmp(argv[i], "--iss") == 0)
                iss = argv[i + 1];
            else if (strcmp(argv[i], "--reason") == 0)
                reason = argv[i + 1];
            else
                break;
        }
        char *key = admin_key(keyfile);
        if (i != argc || key == NULL || (cmd[7] == 'j' && exp < 0)) {
            free(key);
            curl_global_cleanup();
            return die_usage(key == NULL ? "an admin key is required" : "bad arguments");
        }
        cJSON *o = cJSON_CreateObject();
        add_string(o, "iss", iss);
        add_string(o, "reason", reason);
        if (cmd[7] == 'j') {
            add_string(o, "jti", id);
            cJSON_AddNumberToObject(o, "exp", (double)exp);
            rc = call_json(base, "/v1/admin/revoke", key, o);
        } else {
            char *esc = curl_easy_escape(NULL, id, 0), path[2048];
            snprintf(path, sizeof(path), "/v1/admin/subjects/%s/revoke-all", esc ? esc : "");
            rc = call_json(base, path, key, o);
            curl_free(esc);
        }
        free(key);
    } else {
        rc = die_usage("unknown command or wrong arguments");
    }
    curl_global_cleanup();
    return rc;
}
