/* fuzz_token.c - jwt_verify() over a trust of four issuers, one per kind of
 * key (RSA, EC P-256, Ed25519, HMAC), each with a key set read by
 * jwks_load_json(); jwt_check_times() on what verifies.
 *
 * The first byte picks what the rest is. 0-3: a token as a client sends it.
 * 4-7: a JOSE header and a payload, separated by the first '\n', which this
 * target encodes and signs with the RSA, EC, Ed25519 or HMAC key: a claim is
 * read only once the signature verifies, so only signed inputs reach the
 * claims. The keys are fixed, so that the seeds' tokens verify; they are test
 * keys, used nowhere else. FUZZ_TOKEN_MINT=<dir> writes the seeds of
 * corpus/token/ into dir and exits.
 *
 * Asserts: what jwt.h promises of a token that verified (one of the four
 * issuers, its iss, a jti, within the issuer's lifetime and leeway, an
 * accepted audience) and known answers of jwt_verify() and
 * jwt_check_times(). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "revokd/b64url.h"
#include "revokd/jwks.h"
#include "revokd/jwt.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The time the tokens are judged at: fixed, so that an input always meets the same fate. */
#define NOW 1767225600LL /* 2026-01-01T00:00:00Z */
#define MAX_TOKEN 8192

static const char rsa_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDZSYdqbq0RtpGy\n"
    "7d74x3aw3+arXsETVjmfIARNMvkSd+hYoB0OhKydUufZQMZ3taTCrlZPNWLJCTPS\n"
    "r3+hxly2PGNCbsr4VgOHaxFkb2oXQa1VXEC45y9k52RYcrjbSz2oFxs4d52tmFg0\n"
    "5aiHS6wG987X+s09Bxxh7uwtt3YoidB0ySp7++5ut+75a0wPuMrgu0ljAkK/GFIh\n"
    "ckKreiiCjz6KUm927xhImSoFmt0EK8lZClKujXl+mzBMVm9aEu/Y21x36MCVKYAm\n"
    "fXZ2cnS+xNRWWW9Q6bsJiQz0xD91dE4+E6LE7JRW9i+3O5sx8PIPdwzfphBvDz5p\n"
    "8+xtNCrvAgMBAAECggEAWKvNc60buo1HEv5IjjyT3qVYdFm0MAhxdlLx/nENPLCr\n"
    "JDOe9/RDnuYc0EdDVsnNJVdQyH0wRXsYZ2OQEbwpzIKDPTKKaOJtCT+ztslSwY/f\n"
    "ROTjUrGhYSuegwu6DV+8lxJq3NXPhm6TnG6WIjRKzQMmqXPjeoKi3gJK5nMmaG7o\n"
    "mXZQs1ZRflmLtUefRCkzRs/owq5mkgy34loYN103gzmkJHM0XFwvH0sAm1a/jOJu\n"
    "5R2eQyRIxU16WIZqLTT77MD4717frKUCboU1Tv8/+X2vGqZ6vtWGjdL/+U+OBaUn\n"
    "Ui1xMC2gqVqKHmaFlkzDFTbiD+5I+qsdJdh6TRXYwQKBgQDvx8GobMfHLndR39RV\n"
    "0+E6aLjT2dbSpRZUJGzcoRlel7KBulNbjIC/Q7yIhoUvcCTpYfSStzzy9Kyo2PtP\n"
    "Hxfefs/uo1QKm2ZoDM2OFXgVm8yCkgK8uqs1WbYydYTSYfVlMijZjPRz5xOV7saI\n"
    "b//N6Kc8VaPVEv6zWgke4ndoLwKBgQDn/ENMYfHHCSowyMAfC9uNO7pPG6AecVwS\n"
    "FsoOUpN0cIGDJQzoDRiIzFP7Jl4O6RReaWFJ+Tu57iw75fbscvw+bxIW4Rkjz2FJ\n"
    "PPzQ66cXFdwK6U4fPbvK+IhSlJQtwBGaPctsp9gvr36O/vMgvAhcAAHIbHwzL38H\n"
    "zkBscAP5QQKBgQDBnHQ8wQlXRafHDorvepRki2aieUVC9VZgPsFALTzE6oySv5bL\n"
    "V1omFlXHj4c/VLgZUqUfSqIGM5avB/V0X9DwMUlIkc0se2pnHd9kmOVL3W93Btr6\n"
    "9WeFPpkliUrkbYCuY6AkefJxG+buq8zXIkhVRUS0LRqK1DmhLFQtAgQUtQKBgQCx\n"
    "4VCJJSELCQ/80DHgnGsA5Kd7OSeRsEJ07FyKlu7R/eKQ+LvowwHpAyPyE/1TWY1w\n"
    "x0T+P8l4TBRG6ZJow9J+3RP1zyxDtSRX0Bfa6pb4sJ5FD5gDhIaWn/OHvr3QRtI4\n"
    "fuGYsyqlhd95LiynEQcn5Cl50RV6+hRhm9jyTQH/AQKBgFBUFQ7B/xSgtBMsJxT2\n"
    "/9b7mGfLjUaSIGlfinNOMmT6pIcrTbkpoEFiO+awYkr3rPEh/NgXyGk+qr8MqBsz\n"
    "cIPgeztusLuiO9o8QwxkDDfsjUJWPJNSRoFcokazFn8udKyMwKBCeiGaDgEw52jj\n"
    "Z2m7bv+lU9HNvWa6Q4wmdktJ\n"
    "-----END PRIVATE KEY-----\n";
static const char ec_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgDUqgy1WGp44sJ6v9\n"
    "M+WK6BHTLwCQMUyioSH/JdeKg4KhRANCAASSBAA7pU0ugDy3ax8ksdd5GMXDy35s\n"
    "nimSuejT+QLAnDG9ZQr0zpuNdqmbLQquTio9sLgZrKQ4De0JuL26QvLj\n"
    "-----END PRIVATE KEY-----\n";
static const char ed_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIMlzDIGfZEL0tDdv+9x/GJYlhMf1fQBD2DrhJivNPirm\n"
    "-----END PRIVATE KEY-----\n";
static const char hmac_secret[] = "fuzz-hmac-secret-of-32-bytes-min!!";

enum key { KEY_RSA, KEY_EC, KEY_ED, KEY_HMAC, NKEYS };

static const struct {
    const char *iss, *kid, *alg, *name;
} issuers[NKEYS] = {
    [KEY_RSA] = {"https://rsa.fuzz.test", "rsa-1", "RS256", "rs256"},
    [KEY_EC] = {"https://ec.fuzz.test", "ec-1", "ES256", "es256"},
    [KEY_ED] = {"https://ed.fuzz.test", "ed-1", "EdDSA", "eddsa"},
    [KEY_HMAC] = {"https://hs.fuzz.test", NULL, "HS256", "hs256"},
};

static char *audiences_api[] = {"api"};
static char *audiences_two[] = {"api", "admin"};

static EVP_PKEY *pkeys[NKEYS];
static struct jwks *sets[NKEYS];
static struct jwt_policy policies[NKEYS];
static struct jwt_trust trust;

static EVP_PKEY *read_pem(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    fuzz_check(pkey != NULL, "a fixed key does not parse");
    return pkey;
}

/* base64url of a big-endian number of width bytes (0: as long as it is) into out. */
static void b64_param(EVP_PKEY *pkey, const char *name, int width, char *out)
{
    BIGNUM *bn = NULL;
    unsigned char bytes[512];

    fuzz_check(EVP_PKEY_get_bn_param(pkey, name, &bn) == 1, "a key parameter is missing");
    int n = width > 0 ? BN_bn2binpad(bn, bytes, width) : BN_bn2bin(bn, bytes);
    fuzz_check(n > 0, "a key parameter does not fit");
    b64url_encode(bytes, (size_t)n, out);
    BN_free(bn);
}

/* The JWKS document of key k, in doc. */
static void jwks_text(enum key k, char *doc, size_t size)
{
    char a[700], b[100];
    unsigned char raw[64];
    size_t rawlen = sizeof(raw);

    switch (k) {
    case KEY_RSA:
        b64_param(pkeys[k], OSSL_PKEY_PARAM_RSA_N, 0, a);
        b64_param(pkeys[k], OSSL_PKEY_PARAM_RSA_E, 0, b);
        snprintf(doc, size, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"%s\",\"alg\":\"RS256\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}]}",
                 issuers[k].kid, a, b);
        break;
    case KEY_EC:
        b64_param(pkeys[k], OSSL_PKEY_PARAM_EC_PUB_X, 32, a);
        b64_param(pkeys[k], OSSL_PKEY_PARAM_EC_PUB_Y, 32, b);
        snprintf(doc, size, "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
                 issuers[k].kid, a, b);
        break;
    case KEY_ED:
        fuzz_check(EVP_PKEY_get_raw_public_key(pkeys[k], raw, &rawlen) == 1, "no Ed25519 public key");
        b64url_encode(raw, rawlen, a);
        snprintf(doc, size, "{\"keys\":[{\"kty\":\"OKP\",\"kid\":\"%s\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"key_ops\":[\"verify\"]}]}",
                 issuers[k].kid, a);
        break;
    default:
        b64url_encode((const unsigned char *)hmac_secret, sizeof(hmac_secret) - 1, a);
        snprintf(doc, size, "{\"keys\":[{\"kty\":\"oct\",\"alg\":\"HS256\",\"k\":\"%s\"}]}", a);
        break;
    }
}

/* The JWS signature of msg with key k, into sig (at least 512 bytes). Returns its length. */
static size_t sign(enum key k, const unsigned char *msg, size_t len, unsigned char *sig)
{
    unsigned char der[256];
    size_t n = sizeof(der);
    unsigned int maclen = 0;

    if (k == KEY_HMAC) {
        fuzz_check(HMAC(EVP_sha256(), hmac_secret, (int)sizeof(hmac_secret) - 1, msg, len, sig, &maclen) != NULL,
                   "HMAC failed");
        return maclen;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *out = k == KEY_EC ? der : sig;
    if (k != KEY_EC)
        n = 512;
    fuzz_check(ctx != NULL && EVP_DigestSignInit(ctx, NULL, k == KEY_ED ? NULL : EVP_sha256(), NULL, pkeys[k]) == 1 &&
                   EVP_DigestSign(ctx, out, &n, msg, len) == 1,
               "signing failed");
    EVP_MD_CTX_free(ctx);
    if (k != KEY_EC)
        return n;
    /* JWS carries r || s, 32 bytes each; OpenSSL gives DER. */
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    fuzz_check(es != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) == 32 &&
                   BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) == 32,
               "bad ECDSA signature");
    ECDSA_SIG_free(es);
    return 64;
}

/* A token of header and payload (JSON texts) signed with key k, malloc'd; its length in *len. */
static char *mint(enum key k, const char *header, size_t hlen, const char *payload, size_t plen, size_t *len)
{
    unsigned char sig[512];
    char *token = malloc(B64URL_ENCODED_SIZE(hlen) + B64URL_ENCODED_SIZE(plen) + B64URL_ENCODED_SIZE(sizeof(sig)) + 2);

    fuzz_check(token != NULL, "out of memory");
    size_t n = b64url_encode((const unsigned char *)header, hlen, token);
    token[n++] = '.';
    n += b64url_encode((const unsigned char *)payload, plen, token + n);
    size_t siglen = sign(k, (const unsigned char *)token, n, sig);
    token[n++] = '.';
    n += b64url_encode(sig, siglen, token + n);
    *len = n;
    return token;
}

/* ---- the seeds ---- */

static void write_seed(const char *dir, const char *name, unsigned char mode, const char *text, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fuzz_check((f = fopen(path, "wb")) != NULL, "cannot write a seed");
    fputc(mode, f);
    fwrite(text, 1, len, f);
    fuzz_check(fclose(f) == 0, "cannot write a seed");
}

/* The seeds of corpus/token/: per key, a token ("<alg>") and what mode 4-7 signs
 * ("<alg>-signed"), and a few more of other claims. */
static void mint_seeds(const char *dir)
{
    for (int k = 0; k < NKEYS; k++) {
        char header[200], payload[600], name[64];
        size_t len;

        if (issuers[k].kid != NULL)
            snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", issuers[k].alg,
                     issuers[k].kid);
        else
            snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", issuers[k].alg);
        snprintf(payload, sizeof(payload),
                 "{\"iss\":\"%s\",\"sub\":\"alice\",\"aud\":[\"api\",\"admin\"],\"jti\":\"%s-1\",\"iat\":%lld,"
                 "\"nbf\":%lld,\"exp\":%lld,\"scope\":\"read write\",\"client_id\":\"app\"}",
                 issuers[k].iss, issuers[k].name, NOW - 60, NOW - 60, NOW + 1800);
        char *token = mint((enum key)k, header, strlen(header), payload, strlen(payload), &len);
        write_seed(dir, issuers[k].name, 0, token, len);
        free(token);

        char signed_input[900];
        int n = snprintf(signed_input, sizeof(signed_input), "%s\n%s", header, payload);
        snprintf(name, sizeof(name), "%s-signed", issuers[k].name);
        write_seed(dir, name, (unsigned char)(4 + k), signed_input, (size_t)n);
    }
    /* Without jti (named by its signing input), aud a string, expired, and at+jwt. */
    static const struct {
        const char *name, *header, *payload;
        enum key key;
    } more[] = {
        {"hs256-no-jti", "{\"alg\":\"HS256\"}", "{\"iss\":\"https://hs.fuzz.test\",\"sub\":\"bob\",\"iat\":1767225000,\"exp\":1767226000}", KEY_HMAC},
        {"eddsa-expired", "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",\"typ\":\"at+jwt\"}",
         "{\"iss\":\"https://ed.fuzz.test\",\"aud\":\"admin\",\"jti\":\"old\",\"iat\":1767000000,\"exp\":1767003600,\"azp\":\"cli\"}", KEY_ED},
        {"rs256-wrong-aud", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}",
         "{\"iss\":\"https://rsa.fuzz.test\",\"aud\":\"other\",\"jti\":\"x\",\"iat\":1767225000,\"exp\":1767226000}", KEY_RSA},
    };
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
        size_t len;
        char *token = mint(more[i].key, more[i].header, strlen(more[i].header), more[i].payload,
                           strlen(more[i].payload), &len);
        write_seed(dir, more[i].name, 0, token, len);
        free(token);
    }
}

/* ---- the target ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const pems[NKEYS] = {rsa_pem, ec_pem, ed_pem, NULL};
    char doc[2048], err[256];
    (void)argc;
    (void)argv;

    for (int k = 0; k < NKEYS; k++) {
        if (pems[k] != NULL)
            pkeys[k] = read_pem(pems[k]);
        jwks_text((enum key)k, doc, sizeof(doc));
        fuzz_check((sets[k] = jwks_new()) != NULL, "out of memory");
        if (jwks_load_json(sets[k], doc, strlen(doc), issuers[k].iss, NULL, err, sizeof(err)) != 0 ||
            jwks_count(sets[k]) != 1)
            fuzz_fail("the key set of %s: %s", issuers[k].iss, err);
        policies[k] = (struct jwt_policy){.keys = sets[k], .issuer = issuers[k].iss, .leeway = 30,
                                          .max_lifetime = 86400};
    }
    policies[KEY_RSA].audiences = audiences_api;
    policies[KEY_RSA].n_audiences = 1;
    policies[KEY_ED].audiences = audiences_two;
    policies[KEY_ED].n_audiences = 2;
    policies[KEY_EC].leeway = 0;
    policies[KEY_EC].max_lifetime = 3600;
    trust = (struct jwt_trust){.issuers = policies, .n = NKEYS, .max_token_bytes = MAX_TOKEN};

    const char *mint_dir = getenv("FUZZ_TOKEN_MINT");
    if (mint_dir != NULL) {
        mint_seeds(mint_dir);
        exit(0);
    }
    return 0;
}

/* What jwt.h promises of a token that verified. */
static void check_claims(const struct jwt_claims *c)
{
    fuzz_check(c->issuer >= 0 && c->issuer < NKEYS, "verified without an issuer");
    const struct jwt_policy *p = &policies[c->issuer];
    fuzz_check(c->has_iss && strcmp(c->iss, p->issuer) == 0, "verified under another issuer");
    fuzz_check(c->jti[0] != '\0' && strlen(c->jti) <= JWT_STR_MAX, "verified without a jti");
    fuzz_check(c->exp >= c->iat && c->exp - c->iat <= p->max_lifetime, "verified beyond the lifetime");
    fuzz_check(c->leeway == p->leeway, "verified with another leeway");
    bool aud = p->n_audiences == 0;
    for (size_t i = 0; i < p->n_audiences; i++)
        aud = aud || jwt_audience_has(c, p->audiences[i]);
    fuzz_check(aud, "verified without an accepted audience");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jwt_claims claims;
    char *token = NULL;
    const char *text;
    size_t len;

    if (size == 0)
        return 0;
    unsigned mode = data[0] % 8;
    if (mode < 4) {
        text = (const char *)data + 1;
        len = size - 1;
    } else {
        const char *rest = (const char *)data + 1, *nl = memchr(rest, '\n', size - 1);
        if (nl == NULL || size - 1 > MAX_TOKEN)
            return 0;
        token = mint((enum key)(mode - 4), rest, (size_t)(nl - rest), nl + 1, size - 1 - (size_t)(nl + 1 - rest), &len);
        text = token;
    }

    int rc = jwt_verify(&trust, text, len, &claims);
    if (rc == 0) {
        check_claims(&claims);
        rc = jwt_check_times(&claims, NOW);
        fuzz_check(rc == 0 || rc == -JWT_expired || rc == -JWT_not_yet_valid, "an unknown answer of jwt_check_times");
        (void)jwt_scope_has(&claims, "read", 4);
    } else {
        fuzz_check(rc < 0 && (-rc < JWT_REASON_COUNT || rc == -JWT_ENOKEYS), "an unknown answer of jwt_verify");
        fuzz_check(rc == -JWT_missing_token || rc == -JWT_malformed || claims.issuer < NKEYS, "a bad issuer index");
    }
    free(token);
    return 0;
}
