/* revokectl.c - command-line client for revokd, for operators and tests.
 *
 * Talks HTTP to revokd with libcurl. "mint" signs development tokens with
 * OpenSSL, every algorithm revokd verifies; "mint --count", for load tests,
 * parses the key once for many tokens. "events" reads the revocation log
 * page by page, and with --follow keeps polling it. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <unistd.h>

#include "revokd/b64url.h"
#include "revokd/file.h"

#define EXIT_REFUSED 1 /* revokd said no (4xx) */
#define EXIT_USAGE 2
#define EXIT_UNAVAILABLE 3 /* 5xx or no answer */

static const char usage[] =
    "usage: revokectl [--url URL] [--admin-key-file FILE] [--feed-key-file FILE] COMMAND ...\n"
    "\n"
    "  mint --key FILE [--alg ALG] [--kid KID] [--sub S] [--iss I] [--aud A]\n"
    "       [--jti J | --no-jti] [--ttl SECONDS] [--iat N | --no-iat] [--nbf N] [--exp N]\n"
    "       [--claims JSON] [--count N]\n"
    "                            sign a token with a development key (PEM private key,\n"
    "                            or the raw secret for HS*); prints the token. With\n"
    "                            --count, prints N tokens, one per line, the i-th with\n"
    "                            jti J-i (J: --jti or random) and sub S-i (for load tests).\n"
    "                            ALG: HS*, RS*, PS*, ES256/384/512, EdDSA (default RS256)\n"
    "  check TOKEN               GET /v1/check\n"
    "  revoke TOKEN              POST /v1/revoke\n"
    "  revoke-jti JTI --exp N [--iss I] [--reason R]   POST /v1/admin/revoke\n"
    "  revoke-all SUBJECT [--iss I] [--reason R]       POST /v1/admin/subjects/{sub}/revoke-all\n"
    "                            --iss '' names the tokens without iss; without --iss the\n"
    "                            server's REVOKD_ISSUER is used (required when unset)\n"
    "  events [--after ID] [--follow]\n"
    "                            GET /v1/events: the revocation log, one JSON object a\n"
    "                            line, from after ID (default 0, the start) to its end;\n"
    "                            --follow keeps waiting for more, until interrupted\n"
    "  health                    GET /readyz\n"
    "  reload                    POST /v1/admin/reload: the server reads its files again\n"
    "                            (issuers, keys, admin keys) and answers once done\n"
    "\n"
    "URL defaults to $REVOKD_URL or http://127.0.0.1:8080. The admin key is read\n"
    "from --admin-key-file (first line) or $REVOKD_ADMIN_KEY; events takes a feed\n"
    "key from --feed-key-file or $REVOKD_FEED_KEY, else the admin key.\n"
    "Exit status: 0 for 2xx, 1 for 4xx, 2 for usage errors, 3 for 5xx or no answer.\n";

static int die_usage(const char *msg)
{
    fprintf(stderr, "revokectl: %s\n%s", msg, usage);
    return EXIT_USAGE;
}

/* ---- mint ---- */

struct mint_args {
    const char *keyfile, *algname, *kid, *sub, *iss, *aud, *jti, *claims;
    long long ttl, iat, nbf, exp, count; /* count 0: one token, jti and sub as given */
    int no_jti, no_iat;
};

/* The algorithms mint signs. */
enum sign_kind { SIGN_HMAC, SIGN_RSA, SIGN_PSS, SIGN_EC, SIGN_EDDSA };
static const struct {
    const char *name;
    enum sign_kind kind;
    const EVP_MD *(*md)(void); /* NULL for EdDSA, which signs the message itself */
    int bits; /* EC: the curve's size, which fixes the JWS signature's */
} sign_algs[] = {
    {"HS256", SIGN_HMAC, EVP_sha256, 0}, {"HS384", SIGN_HMAC, EVP_sha384, 0},
    {"HS512", SIGN_HMAC, EVP_sha512, 0}, {"RS256", SIGN_RSA, EVP_sha256, 0},
    {"RS384", SIGN_RSA, EVP_sha384, 0},  {"RS512", SIGN_RSA, EVP_sha512, 0},
    {"PS256", SIGN_PSS, EVP_sha256, 0},  {"PS384", SIGN_PSS, EVP_sha384, 0},
    {"PS512", SIGN_PSS, EVP_sha512, 0},  {"ES256", SIGN_EC, EVP_sha256, 256},
    {"ES384", SIGN_EC, EVP_sha384, 384}, {"ES512", SIGN_EC, EVP_sha512, 521},
    {"EdDSA", SIGN_EDDSA, NULL, 0},
};

/* A signing key parsed once, for many tokens. */
struct signer {
    enum sign_kind kind;
    const EVP_MD *md;
    const unsigned char *secret; /* HMAC; borrowed from the caller */
    size_t secret_len;
    EVP_PKEY *pkey; /* RSA, EC, EdDSA */
    EVP_MD_CTX *ctx;
    size_t half; /* EC: bytes of r and of s */
};

/* Signs msg into sig (at least EVP_MAX_MD_SIZE and EVP_PKEY_get_size() bytes)
 * in JWS form: ECDSA as r || s rather than OpenSSL's DER. Returns the
 * signature's length, or -1. */
static long signer_sign(struct signer *s, const unsigned char *msg, size_t len,
                        unsigned char *sig, size_t cap)
{
    if (s->kind == SIGN_HMAC) {
        unsigned int n = 0;
        return HMAC(s->md, s->secret, (int)s->secret_len, msg, len, sig, &n) ? (long)n : -1;
    }
    size_t n = cap;
    EVP_PKEY_CTX *pctx = NULL;
    if (EVP_DigestSignInit(s->ctx, &pctx, s->md, NULL, s->pkey) != 1)
        return -1;
    /* RFC 7518 3.5: MGF1 with the same hash, a salt as long as the hash. */
    if (s->kind == SIGN_PSS &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, s->md) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
        return -1;
    if (EVP_DigestSign(s->ctx, sig, &n, msg, len) != 1)
        return -1;
    if (s->kind != SIGN_EC)
        return (long)n;

    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    long out = -1;
    if (es != NULL && 2 * s->half <= cap &&
        BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, (int)s->half) == (int)s->half &&
        BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + s->half, (int)s->half) == (int)s->half)
        out = (long)(2 * s->half);
    ECDSA_SIG_free(es);
    return out;
}

/* Whether pkey (NULL: none) can sign as kind: an RSA key for RS* and PS*, an
 * EC key of bits for ES*, an Ed25519 or Ed448 key for EdDSA. */
static int key_fits(EVP_PKEY *pkey, enum sign_kind kind, int bits)
{
    if (pkey == NULL)
        return 0;
    switch (kind) {
    case SIGN_RSA:
    case SIGN_PSS:
        return EVP_PKEY_is_a(pkey, "RSA");
    case SIGN_EC:
        return EVP_PKEY_is_a(pkey, "EC") && EVP_PKEY_get_bits(pkey) == bits;
    case SIGN_EDDSA:
        return EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448");
    case SIGN_HMAC:
        break;
    }
    return 0;
}

/* Appends "-<i>" to base in buf. */
static const char *numbered(char *buf, size_t size, const char *base, long long i)
{
    snprintf(buf, size, "%s-%lld", base, i);
    return buf;
}

/* One token (m->count 0), or m->count tokens, one per line, for load tests:
 * the key is parsed once and only the numbered claims change, so 100,000
 * RS256 tokens take seconds per core. The i-th token (from 0) has jti
 * "<J>-<i>", J being --jti or 16 random hex digits (so two runs never share
 * a jti), and sub "<S>-<i>" when --sub S is given. One token has jti and sub
 * as given (a random jti by default, none with --no-jti). --claims members
 * are set last and win. */
static int mint_tokens(const struct mint_args *m, char *key, size_t keylen)
{
    struct signer s = {0};
    cJSON *header = NULL, *payload = NULL, *extra = NULL;
    char *hjson = NULL, *pjson = NULL, *h64 = NULL, *input = NULL, *sig64 = NULL;
    unsigned char *sig = NULL;
    char prefix[33], jtibuf[512], subbuf[512];
    size_t a = 0, cap = 0;
    int rc = EXIT_USAGE;

    while (a < sizeof(sign_algs) / sizeof(sign_algs[0]) && strcmp(sign_algs[a].name, m->algname))
        a++;
    if (a == sizeof(sign_algs) / sizeof(sign_algs[0]))
        return die_usage("mint: unsupported --alg (HS*, RS*, PS*, ES* and EdDSA are)");
    if (m->no_jti && m->count > 0)
        return die_usage("mint: --count needs a jti to tell the tokens apart");
    s.kind = sign_algs[a].kind;
    s.md = sign_algs[a].md ? sign_algs[a].md() : NULL;
    if (s.kind == SIGN_HMAC) {
        s.secret = (const unsigned char *)key;
        s.secret_len = keylen > 0 && key[keylen - 1] == '\n' ? keylen - 1 : keylen;
        cap = EVP_MAX_MD_SIZE;
    } else {
        BIO *bio = BIO_new_mem_buf(key, (int)keylen);
        s.pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        if (!key_fits(s.pkey, s.kind, sign_algs[a].bits)) {
            fprintf(stderr, "revokectl: mint: the key does not fit %s\n", m->algname);
            goto out;
        }
        s.half = (size_t)(sign_algs[a].bits + 7) / 8;
        cap = (size_t)EVP_PKEY_get_size(s.pkey) + 2 * s.half;
        if ((s.ctx = EVP_MD_CTX_new()) == NULL)
            goto fail;
    }
    if (m->claims != NULL) {
        extra = cJSON_Parse(m->claims);
        if (!cJSON_IsObject(extra)) {
            fprintf(stderr, "revokectl: mint: invalid claims\n");
            goto out;
        }
    }
    if (m->jti != NULL) {
        snprintf(prefix, sizeof(prefix), "%s", m->jti);
    } else {
        unsigned char rnd[8];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            goto fail;
        for (size_t i = 0; i < sizeof(rnd); i++)
            snprintf(prefix + 2 * i, 3, "%02x", rnd[i]);
    }

    /* The header is the same for every token: encode it once. */
    if ((header = cJSON_CreateObject()) == NULL ||
        !cJSON_AddStringToObject(header, "alg", m->algname) ||
        !cJSON_AddStringToObject(header, "typ", "JWT") ||
        (m->kid && !cJSON_AddStringToObject(header, "kid", m->kid)) ||
        (hjson = cJSON_PrintUnformatted(header)) == NULL ||
        (h64 = malloc(B64URL_ENCODED_SIZE(strlen(hjson)))) == NULL ||
        (sig = malloc(cap)) == NULL || (sig64 = malloc(B64URL_ENCODED_SIZE(cap))) == NULL)
        goto fail;
    size_t hlen = b64url_encode((const unsigned char *)hjson, strlen(hjson), h64);

    for (long long i = 0; i < (m->count > 0 ? m->count : 1); i++) {
        const char *sub = m->count > 0 && m->sub ? numbered(subbuf, sizeof(subbuf), m->sub, i) : m->sub;
        const char *jti = m->count > 0 ? numbered(jtibuf, sizeof(jtibuf), prefix, i) : m->jti ? m->jti : prefix;
        cJSON_Delete(payload);
        if ((payload = cJSON_CreateObject()) == NULL || (sub && !cJSON_AddStringToObject(payload, "sub", sub)) ||
            (m->iss && !cJSON_AddStringToObject(payload, "iss", m->iss)) ||
            (m->aud && !cJSON_AddStringToObject(payload, "aud", m->aud)) ||
            (!m->no_jti && !cJSON_AddStringToObject(payload, "jti", jti)) ||
            (!m->no_iat && !cJSON_AddNumberToObject(payload, "iat", (double)m->iat)) ||
            (m->nbf >= 0 && !cJSON_AddNumberToObject(payload, "nbf", (double)m->nbf)) ||
            !cJSON_AddNumberToObject(payload, "exp", (double)m->exp))
            goto fail;
        for (cJSON *c = extra ? extra->child : NULL; c != NULL; c = c->next) {
            cJSON *copy = cJSON_Duplicate(c, 1);
            cJSON_DeleteItemFromObjectCaseSensitive(payload, c->string);
            if (copy == NULL || !cJSON_AddItemToObject(payload, c->string, copy)) {
                cJSON_Delete(copy);
                goto fail;
            }
        }
        free(pjson);
        if ((pjson = cJSON_PrintUnformatted(payload)) == NULL)
            goto fail;
        size_t plen = strlen(pjson);
        free(input);
        if ((input = malloc(hlen + 1 + B64URL_ENCODED_SIZE(plen))) == NULL)
            goto fail;
        memcpy(input, h64, hlen);
        input[hlen] = '.';
        size_t inlen = hlen + 1 + b64url_encode((const unsigned char *)pjson, plen, input + hlen + 1);
        long n = signer_sign(&s, (const unsigned char *)input, inlen, sig, cap);
        if (n < 0) {
            fprintf(stderr, "revokectl: mint: signing failed\n");
            goto out;
        }
        b64url_encode(sig, (size_t)n, sig64);
        if (printf("%s.%s\n", input, sig64) < 0)
            goto fail;
    }
    rc = fflush(stdout) == 0 ? 0 : EXIT_UNAVAILABLE;
    if (rc != 0)
        fprintf(stderr, "revokectl: mint: %s\n", strerror(errno));
    goto out;
fail:
    fprintf(stderr, "revokectl: mint: out of memory or a crypto failure\n");
    rc = EXIT_UNAVAILABLE;
out:
    free(sig64);
    free(sig);
    free(input);
    free(pjson);
    free(h64);
    free(hjson);
    cJSON_Delete(payload);
    cJSON_Delete(header);
    cJSON_Delete(extra);
    EVP_MD_CTX_free(s.ctx);
    EVP_PKEY_free(s.pkey);
    return rc;
}

static int mint(int argc, char **argv)
{
    struct mint_args m = {.algname = "RS256", .ttl = 300, .iat = (long long)time(NULL),
                          .nbf = -1, .exp = -1};
    char err[256];

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-jti") == 0) {
            m.no_jti = 1;
            continue;
        }
        if (strcmp(a, "--no-iat") == 0) {
            m.no_iat = 1;
            continue;
        }
        if (v == NULL)
            return die_usage("mint: missing value");
        i++;
        if (strcmp(a, "--key") == 0)
            m.keyfile = v;
        else if (strcmp(a, "--alg") == 0)
            m.algname = v;
        else if (strcmp(a, "--kid") == 0)
            m.kid = v;
        else if (strcmp(a, "--sub") == 0)
            m.sub = v;
        else if (strcmp(a, "--iss") == 0)
            m.iss = v;
        else if (strcmp(a, "--aud") == 0)
            m.aud = v;
        else if (strcmp(a, "--jti") == 0)
            m.jti = v;
        else if (strcmp(a, "--claims") == 0)
            m.claims = v;
        else if (strcmp(a, "--ttl") == 0)
            m.ttl = atoll(v);
        else if (strcmp(a, "--iat") == 0)
            m.iat = atoll(v);
        else if (strcmp(a, "--nbf") == 0)
            m.nbf = atoll(v);
        else if (strcmp(a, "--exp") == 0)
            m.exp = atoll(v);
        else if (strcmp(a, "--count") == 0) {
            m.count = atoll(v);
            if (m.count < 1 || m.count > 100000000)
                return die_usage("mint: --count must be 1..100000000");
        }
        else
            return die_usage("mint: unknown option");
    }
    if (m.keyfile == NULL)
        return die_usage("mint: --key FILE is required");
    if (m.exp < 0)
        m.exp = m.iat + m.ttl;

    size_t keylen = 0;
    char *key = file_read(m.keyfile, 1024 * 1024, &keylen, err, sizeof(err));
    if (key == NULL) {
        fprintf(stderr, "revokectl: --key: %s\n", err);
        return EXIT_USAGE;
    }
    int rc = mint_tokens(&m, key, keylen);
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

/* Sends one request; the answer's status and body (the caller frees
 * body->data) when it came. Returns 0, or -1 after saying why on stderr. */
static int fetch(const char *base, const char *method, const char *path, const char *bearer, const char *json,
                 long timeout_ms, long *status, struct buffer *body)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    char url[4096], auth[16384];
    int rc = -1;

    if (curl == NULL)
        return -1;
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
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    CURLcode res = curl_easy_perform(curl);
    if (res != CURLE_OK) {
        fprintf(stderr, "revokectl: %s: %s\n", url, curl_easy_strerror(res));
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
        rc = 0;
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return rc;
}

static int exit_status(long status)
{
    return status >= 200 && status < 300 ? 0 : status < 500 ? EXIT_REFUSED : EXIT_UNAVAILABLE;
}

/* Sends one request and prints the body. Returns the exit status. */
static int call(const char *base, const char *method, const char *path, const char *bearer,
                const char *json)
{
    struct buffer body = {0};
    long status = 0;
    int rc = EXIT_UNAVAILABLE;

    if (fetch(base, method, path, bearer, json, 10000L, &status, &body) == 0) {
        printf("%s\n", body.data ? body.data : "");
        rc = exit_status(status);
    }
    free(body.data);
    return rc;
}

/* How long a poll of --follow asks the server to wait for an event, and
 * how long it waits for the answer beyond that. */
#define FOLLOW_WAIT_S 25
#define FOLLOW_SLACK_MS 10000L
#define EVENTS_PAGE 1000

/* Prints the events of one page, one object a line, and copies its next
 * into next (size bytes). Returns how many there were, or -1 when the page
 * is not one (nothing printed). */
static int print_page(const char *text, char *next, size_t size)
{
    cJSON *page = cJSON_Parse(text);
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(page, "events");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(page, "next"), *e;
    int count = -1;

    if (cJSON_IsArray(events) && cJSON_IsString(n) && strlen(n->valuestring) < size) {
        count = 0;
        cJSON_ArrayForEach(e, events) {
            char *line = cJSON_PrintUnformatted(e);
            if (line == NULL) {
                count = -1;
                break;
            }
            printf("%s\n", line);
            free(line);
            count++;
        }
        snprintf(next, size, "%s", n->valuestring);
    }
    fflush(stdout); /* a reader at the other end of a pipe sees each page at once */
    cJSON_Delete(page);
    return count;
}

/* events: pages from after to the end of the log; with follow, then waits
 * for more, resuming after the last event printed, and rides out the
 * server's failures (a failover, say) by trying again a second later. */
static int events(const char *base, const char *key, const char *after, bool follow)
{
    char next[64], path[256];

    if (strlen(after) >= sizeof(next))
        return die_usage("--after: not an event id");
    snprintf(next, sizeof(next), "%s", after);
    for (;;) {
        struct buffer body = {0};
        long status = 0;
        char *esc = curl_easy_escape(NULL, next, 0);
        snprintf(path, sizeof(path), "/v1/events?after=%s&limit=%d&wait=%d", esc ? esc : "", EVENTS_PAGE,
                 follow ? FOLLOW_WAIT_S : 0);
        curl_free(esc);
        int got = fetch(base, "GET", path, key, NULL, follow ? FOLLOW_WAIT_S * 1000L + FOLLOW_SLACK_MS : 10000L,
                        &status, &body);
        int rc = got < 0 ? EXIT_UNAVAILABLE : exit_status(status);
        int n = rc == 0 ? print_page(body.data ? body.data : "", next, sizeof(next)) : 0;
        if (rc != 0 && got == 0)
            fprintf(stderr, "revokectl: GET %s: %ld %s\n", path, status, body.data ? body.data : "");
        else if (n < 0)
            fprintf(stderr, "revokectl: GET %s: not a page of events\n", path);
        free(body.data);
        if (rc == EXIT_REFUSED)
            return rc;
        if ((rc != 0 || n < 0) && !follow)
            return EXIT_UNAVAILABLE;
        if (rc != 0 || n < 0)
            sleep(1);
        else if (!follow && n < EVENTS_PAGE)
            return 0; /* the end of the log, as it was */
    }
}

/* The first line of file, for option. NULL after saying why. */
static char *key_from_file(const char *option, const char *file)
{
    char err[256];
    size_t len = 0;
    char *text = file_read(file, 64 * 1024, &len, err, sizeof(err));

    if (text == NULL) {
        fprintf(stderr, "revokectl: %s: %s\n", option, err);
        return NULL;
    }
    text[strcspn(text, "\r\n")] = '\0';
    char *key = strdup(text);
    file_free(text, len);
    return key;
}

static char *admin_key(const char *file)
{
    if (file == NULL) {
        const char *env = getenv("REVOKD_ADMIN_KEY");
        return env ? strdup(env) : NULL;
    }
    return key_from_file("--admin-key-file", file);
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
    const char *base = getenv("REVOKD_URL"), *keyfile = NULL, *feedfile = NULL;
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
        else if (strcmp(argv[i], "--feed-key-file") == 0)
            feedfile = argv[i + 1];
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
    } else if (strcmp(cmd, "events") == 0) {
        const char *after = "0";
        bool follow = false, ok = true;
        for (; i < argc && ok; i++) {
            if (strcmp(argv[i], "--follow") == 0)
                follow = true;
            else if (strcmp(argv[i], "--after") == 0 && i + 1 < argc)
                after = argv[++i];
            else
                ok = false;
        }
        char *key = feedfile != NULL ? key_from_file("--feed-key-file", feedfile)
                    : getenv("REVOKD_FEED_KEY") != NULL ? strdup(getenv("REVOKD_FEED_KEY"))
                                                        : admin_key(keyfile);
        rc = !ok ? die_usage("bad arguments")
             : key == NULL ? die_usage("a feed or admin key is required")
                           : events(base, key, after, follow);
        free(key);
    } else if (strcmp(cmd, "health") == 0 && i == argc) {
        rc = call(base, "GET", "/readyz", NULL, NULL);
    } else if (strcmp(cmd, "reload") == 0 && i == argc) {
        char *key = admin_key(keyfile);
        rc = key != NULL ? call(base, "POST", "/v1/admin/reload", key, NULL) : die_usage("an admin key is required");
        free(key);
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
        if (iss != NULL && iss[0] == '\0')
            cJSON_AddNullToObject(o, "iss");
        else
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
