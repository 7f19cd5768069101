/* jwks.c - load verification keys once and verify JWS signatures with them.
 *
 * Signatures are checked with OpenSSL EVP directly rather than libjwt's
 * jwt_decode(): libjwt takes the algorithm from the token (HS256 keyed with
 * the RSA public key's PEM text passes), accepts any token when given an
 * empty key, accepts signatures with junk appended to their base64, and
 * re-parses the PEM key on every call (about 3,500 RS256 checks/s per core
 * against 60,000+ with a key parsed once). */
#include "revokd/jwks.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "revokd/b64url.h"
#include "revokd/file.h"

#define MAX_KEY_FILE (1024 * 1024)
#define MAX_KID 256
#define MIN_RSA_BITS 2048

enum kind { KIND_RSA, KIND_EC, KIND_HMAC };

static const struct alg_info {
    const char *name;
    enum kind kind;
    const EVP_MD *(*md)(void);
    const char *curve; /* EC: the OpenSSL group name */
    size_t size;       /* EC: bytes per coordinate; HMAC: shortest secret (RFC 7518 3.2) */
} algs[] = {
    [ALG_RS256] = {"RS256", KIND_RSA, EVP_sha256, NULL, 0},
    [ALG_RS384] = {"RS384", KIND_RSA, EVP_sha384, NULL, 0},
    [ALG_RS512] = {"RS512", KIND_RSA, EVP_sha512, NULL, 0},
    [ALG_ES256] = {"ES256", KIND_EC, EVP_sha256, "prime256v1", 32},
    [ALG_ES384] = {"ES384", KIND_EC, EVP_sha384, "secp384r1", 48},
    [ALG_HS256] = {"HS256", KIND_HMAC, EVP_sha256, NULL, 32},
    [ALG_HS384] = {"HS384", KIND_HMAC, EVP_sha384, NULL, 48},
    [ALG_HS512] = {"HS512", KIND_HMAC, EVP_sha512, NULL, 64},
};
#define NALGS (sizeof(algs) / sizeof(algs[0]))

/* Verify contexts of one key, ready for reuse. OpenSSL 3 looks the
 * algorithms up by name every time a context is set up (about 4 us of an
 * RS256 check's 20), so a context is set up once and then reused, by one
 * thread at a time: taken from here, put back after the check. */
#define SPARES_MAX 64
struct spares {
    EVP_PKEY_CTX *ctx[SPARES_MAX];
    size_t n;
};
static pthread_mutex_t spares_lock = PTHREAD_MUTEX_INITIALIZER;

struct jwk {
    char *kid; /* NULL for the convenience keys */
    enum jwt_alg alg;
    EVP_PKEY *pkey;        /* RSA and EC */
    EVP_MD *md;            /* the digest, fetched once */
    struct spares *spares; /* RSA and EC */
    unsigned char *secret; /* HMAC */
    size_t secret_len;
};

struct jwks {
    struct jwk *keys;
    size_t n;
};

int jwks_alg_parse(const char *name)
{
    for (size_t i = 0; i < NALGS; i++)
        if (strcmp(name, algs[i].name) == 0)
            return (int)i;
    return -1;
}

const char *jwks_alg_name(enum jwt_alg alg)
{
    return algs[alg].name;
}

struct jwks *jwks_new(void)
{
    return calloc(1, sizeof(struct jwks));
}

static void jwk_clear(struct jwk *k)
{
    free(k->kid);
    EVP_PKEY_free(k->pkey);
    EVP_MD_free(k->md);
    for (size_t i = 0; k->spares != NULL && i < k->spares->n; i++)
        EVP_PKEY_CTX_free(k->spares->ctx[i]);
    free(k->spares);
    if (k->secret != NULL) {
        OPENSSL_cleanse(k->secret, k->secret_len);
        free(k->secret);
    }
    memset(k, 0, sizeof(*k));
}

void jwks_free(struct jwks *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++)
        jwk_clear(&set->keys[i]);
    free(set->keys);
    free(set);
}

size_t jwks_count(const struct jwks *set)
{
    return set->n;
}

/* Appends k to set, taking ownership of its members. Refuses a kid seen
 * before, and a second kid-less key for the same algorithm, because either
 * would make the choice of key ambiguous. */
static int add_key(struct jwks *set, struct jwk *k, char *err, size_t errlen)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct jwk *o = &set->keys[i];
        if (k->kid != NULL && o->kid != NULL && strcmp(k->kid, o->kid) == 0) {
            snprintf(err, errlen, "duplicate kid \"%.64s\"", k->kid);
            goto fail;
        }
        if (k->kid == NULL && o->kid == NULL && k->alg == o->alg) {
            snprintf(err, errlen, "two keys without kid for %s", algs[k->alg].name);
            goto fail;
        }
    }
    if ((k->md = EVP_MD_fetch(NULL, EVP_MD_get0_name(algs[k->alg].md()), NULL)) == NULL ||
        (k->pkey != NULL && (k->spares = calloc(1, sizeof(*k->spares))) == NULL)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    struct jwk *keys = realloc(set->keys, (set->n + 1) * sizeof(*keys));
    if (keys == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    set->keys = keys;
    set->keys[set->n++] = *k;
    memset(k, 0, sizeof(*k));
    return 0;

fail:
    jwk_clear(k);
    return -1;
}

/* Checks that pkey can carry alg: right type, curve, and size. */
static int check_pkey(EVP_PKEY *pkey, enum jwt_alg alg, char *err, size_t errlen)
{
    const struct alg_info *a = &algs[alg];
    char group[64] = "";

    if (a->kind == KIND_RSA) {
        if (!EVP_PKEY_is_a(pkey, "RSA")) {
            snprintf(err, errlen, "%s needs an RSA key", a->name);
            return -1;
        }
        if (EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS) {
            snprintf(err, errlen, "RSA key of %d bits; at least %d required",
                     EVP_PKEY_get_bits(pkey), MIN_RSA_BITS);
            return -1;
        }
        return 0;
    }
    if (a->kind == KIND_EC && EVP_PKEY_is_a(pkey, "EC") &&
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) == 1 &&
        strcmp(group, a->curve) == 0)
        return 0;
    snprintf(err, errlen, "%s needs an EC key on curve %s", a->name, a->curve);
    return -1;
}

/* The algorithm a PEM key implies when none is configured. */
static int infer_alg(EVP_PKEY *pkey)
{
    char group[64] = "";

    if (EVP_PKEY_is_a(pkey, "RSA"))
        return ALG_RS256;
    if (EVP_PKEY_is_a(pkey, "EC") &&
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) == 1) {
        if (strcmp(group, algs[ALG_ES256].curve) == 0)
            return ALG_ES256;
        if (strcmp(group, algs[ALG_ES384].curve) == 0)
            return ALG_ES384;
    }
    return -1;
}

int jwks_load_pem(struct jwks *set, const char *path, const char *alg, char *err, size_t errlen)
{
    struct jwk k = {0};
    size_t len = 0;
    char *pem = file_read(path, MAX_KEY_FILE, &len, err, errlen);
    OSSL_DECODER_CTX *dctx = NULL;
    int a;

    if (pem == NULL)
        return -1;
    /* The decoder would take the public half out of a private key; a private
     * key has no business on a verifying server, so say so. */
    if (strstr(pem, "PRIVATE KEY") != NULL) {
        snprintf(err, errlen, "\"%s\" holds a private key; give the public key", path);
        goto fail;
    }
    dctx = OSSL_DECODER_CTX_new_for_pkey(&k.pkey, "PEM", NULL, NULL, EVP_PKEY_PUBLIC_KEY, NULL,
                                         NULL);
    const unsigned char *p = (const unsigned char *)pem;
    size_t left = len;
    if (dctx == NULL || OSSL_DECODER_from_data(dctx, &p, &left) != 1 || k.pkey == NULL) {
        snprintf(err, errlen, "\"%s\" is not a PEM public key", path);
        goto fail;
    }
    a = (alg == NULL || *alg == '\0') ? infer_alg(k.pkey) : jwks_alg_parse(alg);
    if (a < 0 || algs[a].kind == KIND_HMAC) {
        snprintf(err, errlen, "no usable algorithm for \"%s\" (RS256/384/512, ES256, ES384)", path);
        goto fail;
    }
    k.alg = (enum jwt_alg)a;
    if (check_pkey(k.pkey, k.alg, err, errlen) < 0)
        goto fail;
    OSSL_DECODER_CTX_free(dctx);
    file_free(pem, len);
    return add_key(set, &k, err, errlen);

fail:
    OSSL_DECODER_CTX_free(dctx);
    file_free(pem, len);
    jwk_clear(&k);
    return -1;
}

static int set_secret(struct jwk *k, const unsigned char *secret, size_t len, char *err,
                      size_t errlen)
{
    if (len < algs[k->alg].size) {
        snprintf(err, errlen, "%s secret of %zu bytes; at least %zu required", algs[k->alg].name,
                 len, algs[k->alg].size);
        return -1;
    }
    k->secret = malloc(len);
    if (k->secret == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(k->secret, secret, len);
    k->secret_len = len;
    return 0;
}

int jwks_load_hmac(struct jwks *set, const char *path, const char *alg, char *err, size_t errlen)
{
    struct jwk k = {0};
    size_t len = 0;
    char *secret;
    int a = jwks_alg_parse(alg);

    if (a < 0 || algs[a].kind != KIND_HMAC) {
        snprintf(err, errlen, "\"%.16s\" is not HS256, HS384 or HS512", alg);
        return -1;
    }
    k.alg = (enum jwt_alg)a;
    secret = file_read(path, MAX_KEY_FILE, &len, err, errlen);
    if (secret == NULL)
        return -1;
    /* Editors add a final newline; it is not part of the secret. */
    size_t used = len;
    if (used > 0 && secret[used - 1] == '\n')
        used--;
    if (used > 0 && secret[used - 1] == '\r')
        used--;
    int rc = set_secret(&k, (unsigned char *)secret, used, err, errlen);
    file_free(secret, len);
    if (rc < 0) {
        jwk_clear(&k);
        return -1;
    }
    return add_key(set, &k, err, errlen);
}

/* Decodes the base64url member name of jwk into a fresh buffer. */
static unsigned char *member_bytes(const cJSON *jwk, const char *name, size_t *len)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(jwk, name);
    if (!cJSON_IsString(m))
        return NULL;
    size_t in = strlen(m->valuestring);
    unsigned char *out = malloc(B64URL_DECODED_MAX(in) + 1);
    long n = out ? b64url_decode(m->valuestring, in, out) : -1;
    if (n <= 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static int jwk_rsa(const cJSON *jwk, struct jwk *k, char *err, size_t errlen)
{
    size_t nlen = 0, elen = 0;
    unsigned char *n = member_bytes(jwk, "n", &nlen);
    unsigned char *e = member_bytes(jwk, "e", &elen);
    BIGNUM *bn_n = n ? BN_bin2bn(n, (int)nlen, NULL) : NULL;
    BIGNUM *bn_e = e ? BN_bin2bn(e, (int)elen, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    int rc = -1;

    if (bn_n == NULL || bn_e == NULL) {
        snprintf(err, errlen, "RSA key needs base64url n and e");
        goto out;
    }
    if (bld == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1 ||
        (k->pkey = pkey_fromdata("RSA", bld)) == NULL) {
        snprintf(err, errlen, "RSA key could not be built");
        goto out;
    }
    rc = check_pkey(k->pkey, k->alg, err, errlen);
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return rc;
}

static int jwk_ec(const cJSON *jwk, struct jwk *k, char *err, size_t errlen)
{
    const struct alg_info *a = &algs[k->alg];
    size_t xlen = 0, ylen = 0;
    unsigned char *x = member_bytes(jwk, "x", &xlen);
    unsigned char *y = member_bytes(jwk, "y", &ylen);
    unsigned char point[1 + 2 * 66];
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY_CTX *check = NULL;
    int rc = -1;

    if (x == NULL || y == NULL || xlen != a->size || ylen != a->size) {
        snprintf(err, errlen, "EC key needs x and y of %zu bytes each", a->size);
        goto out;
    }
    /* Uncompressed point: 0x04 || x || y. */
    point[0] = 0x04;
    memcpy(point + 1, x, xlen);
    memcpy(point + 1 + xlen, y, ylen);
    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, a->curve, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + xlen + ylen) != 1 ||
        (k->pkey = pkey_fromdata("EC", bld)) == NULL) {
        snprintf(err, errlen, "EC key could not be built");
        goto out;
    }
    /* fromdata does not promise the point is on the curve; an off-curve
     * point is the start of invalid-curve attacks. */
    check = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (check == NULL || EVP_PKEY_public_check(check) != 1) {
        snprintf(err, errlen, "EC point is not on curve %s", a->curve);
        goto out;
    }
    rc = check_pkey(k->pkey, k->alg, err, errlen);
out:
    EVP_PKEY_CTX_free(check);
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return rc;
}

static int jwk_oct(const cJSON *jwk, struct jwk *k, char *err, size_t errlen)
{
    size_t len = 0;
    unsigned char *secret = member_bytes(jwk, "k", &len);
    int rc;

    if (secret == NULL) {
        snprintf(err, errlen, "oct key needs base64url k");
        return -1;
    }
    rc = set_secret(k, secret, len, err, errlen);
    OPENSSL_cleanse(secret, len);
    free(secret);
    return rc;
}

/* Parses one JWK into k. Returns 1 when the key is for another use (skipped),
 * 0 when k holds it, -1 on error. */
static int parse_jwk(const cJSON *jwk, struct jwk *k, char *err, size_t errlen)
{
    const cJSON *kty = cJSON_GetObjectItemCaseSensitive(jwk, "kty");
    const cJSON *use = cJSON_GetObjectItemCaseSensitive(jwk, "use");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(jwk, "kid");
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(jwk, "alg");
    const cJSON *crv = cJSON_GetObjectItemCaseSensitive(jwk, "crv");
    int a = -1;

    if (!cJSON_IsObject(jwk) || !cJSON_IsString(kty)) {
        snprintf(err, errlen, "not a JWK object with kty");
        return -1;
    }
    if (use != NULL && !(cJSON_IsString(use) && strcmp(use->valuestring, "sig") == 0))
        return 1;
    if (kid != NULL) {
        if (!cJSON_IsString(kid) || kid->valuestring[0] == '\0' ||
            strlen(kid->valuestring) > MAX_KID) {
            snprintf(err, errlen, "kid must be a string of 1 to %d bytes", MAX_KID);
            return -1;
        }
        k->kid = strdup(kid->valuestring);
        if (k->kid == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (alg != NULL && (!cJSON_IsString(alg) || (a = jwks_alg_parse(alg->valuestring)) < 0)) {
        snprintf(err, errlen, "unsupported alg");
        return -1;
    }
    /* An EC curve names its algorithm; RSA and oct keys fit several, so they
     * must say which one they are pinned to. */
    if (a < 0 && strcmp(kty->valuestring, "EC") == 0 && cJSON_IsString(crv))
        a = strcmp(crv->valuestring, "P-256") == 0   ? ALG_ES256
            : strcmp(crv->valuestring, "P-384") == 0 ? ALG_ES384
                                                     : -1;
    if (a < 0) {
        snprintf(err, errlen, "%s key needs alg", kty->valuestring);
        return -1;
    }
    k->alg = (enum jwt_alg)a;

    if (strcmp(kty->valuestring, "RSA") == 0 && algs[a].kind == KIND_RSA)
        return jwk_rsa(jwk, k, err, errlen);
    if (strcmp(kty->valuestring, "EC") == 0 && algs[a].kind == KIND_EC) {
        const char *want = a == ALG_ES256 ? "P-256" : "P-384";
        if (!cJSON_IsString(crv) || strcmp(crv->valuestring, want) != 0) {
            snprintf(err, errlen, "%s needs crv %s", algs[a].name, want);
            return -1;
        }
        return jwk_ec(jwk, k, err, errlen);
    }
    if (strcmp(kty->valuestring, "oct") == 0 && algs[a].kind == KIND_HMAC)
        return jwk_oct(jwk, k, err, errlen);
    snprintf(err, errlen, "kty %.8s cannot carry %s", kty->valuestring, algs[a].name);
    return -1;
}

int jwks_load_file(struct jwks *set, const char *path, char *err, size_t errlen)
{
    size_t len = 0, before = set->n;
    char *text = file_read(path, MAX_KEY_FILE, &len, err, errlen);
    cJSON *doc = NULL;
    const cJSON *keys;
    char why[192];
    int index = 0;

    if (text == NULL)
        return -1;
    doc = cJSON_ParseWithLength(text, len);
    keys = cJSON_GetObjectItemCaseSensitive(doc, "keys");
    if (!cJSON_IsArray(keys)) {
        snprintf(err, errlen, "\"%s\" is not a JWKS document ({\"keys\": [...]})", path);
        goto fail;
    }
    const cJSON *jwk;
    cJSON_ArrayForEach(jwk, keys) {
        struct jwk k = {0};
        int rc = parse_jwk(jwk, &k, why, sizeof(why));
        if (rc == 0)
            rc = add_key(set, &k, why, sizeof(why));
        else
            jwk_clear(&k);
        if (rc < 0) {
            snprintf(err, errlen, "\"%s\" key %d: %s", path, index, why);
            goto fail;
        }
        index++;
    }
    cJSON_Delete(doc);
    file_free(text, len);
    return 0;

fail:
    while (set->n > before)
        jwk_clear(&set->keys[--set->n]);
    cJSON_Delete(doc);
    file_free(text, len);
    return -1;
}

int jwks_select(const struct jwks *set, const char *kid, int alg, const struct jwk **key)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct jwk *k = &set->keys[i];
        if (kid != NULL) {
            if (k->kid == NULL || strcmp(k->kid, kid) != 0)
                continue;
            if ((int)k->alg != alg)
                return -JWKS_EALG;
            *key = k;
            return 0;
        }
        if (k->kid == NULL && (int)k->alg == alg) {
            *key = k;
            return 0;
        }
    }
    return -JWKS_ENOKEY;
}

/* JWS carries ECDSA signatures as r || s; OpenSSL wants DER. */
static int ecdsa_to_der(const unsigned char *sig, size_t half, unsigned char **der)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL);
    BIGNUM *s = BN_bin2bn(sig + half, (int)half, NULL);
    int len = -1;

    if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* owned by es now */
        *der = NULL;
        len = i2d_ECDSA_SIG(es, der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return len;
}

/* A verify context for key: a spare one, or a new one pinned to the key's
 * algorithm (PKCS #1 v1.5 padding for RSA, the key's digest). NULL when
 * out of memory. */
static EVP_PKEY_CTX *verify_ctx_take(const struct jwk *key)
{
    EVP_PKEY_CTX *ctx = NULL;

    pthread_mutex_lock(&spares_lock);
    if (key->spares->n > 0)
        ctx = key->spares->ctx[--key->spares->n];
    pthread_mutex_unlock(&spares_lock);
    if (ctx != NULL)
        return ctx;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1 ||
        (algs[key->alg].kind == KIND_RSA && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) ||
        EVP_PKEY_CTX_set_signature_md(ctx, key->md) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void verify_ctx_put(const struct jwk *key, EVP_PKEY_CTX *ctx)
{
    if (ctx == NULL)
        return;
    pthread_mutex_lock(&spares_lock);
    if (key->spares->n < SPARES_MAX) {
        key->spares->ctx[key->spares->n++] = ctx;
        ctx = NULL;
    }
    pthread_mutex_unlock(&spares_lock);
    EVP_PKEY_CTX_free(ctx); /* more threads than spares: rare, and only costs a set-up */
}

int jwks_verify(const struct jwk *key, const unsigned char *msg, size_t msglen,
               const unsigned char *sig, size_t siglen)
{
    const struct alg_info *a = &algs[key->alg];

    if (a->kind == KIND_HMAC) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        if (HMAC(key->md, key->secret, (int)key->secret_len, msg, msglen, mac, &maclen) == NULL)
            return -1;
        return siglen == maclen && CRYPTO_memcmp(mac, sig, maclen) == 0 ? 0 : -1;
    }

    unsigned char *der = NULL;
    const unsigned char *check = sig;
    size_t checklen = siglen;
    int ok = 0;

    if (a->kind == KIND_RSA) {
        if (siglen != (size_t)EVP_PKEY_get_size(key->pkey))
            return -1;
    } else {
        int n;
        if (siglen != 2 * a->size || (n = ecdsa_to_der(sig, a->size, &der)) <= 0)
            return -1;
        check = der;
        checklen = (size_t)n;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen;
    EVP_PKEY_CTX *ctx = verify_ctx_take(key);
    if (ctx != NULL && EVP_Digest(msg, msglen, digest, &dlen, key->md, NULL) == 1)
        ok = EVP_PKEY_verify(ctx, check, checklen, digest, dlen) == 1;
    verify_ctx_put(key, ctx);
    OPENSSL_free(der);
    return ok ? 0 : -1;
}
