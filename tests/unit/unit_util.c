/* unit_util.c - helpers shared by the unit tests; see unit_util.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>

#include "unit_util.h"

/* ---- temporary directory and files -------------------------------------- */

int unit_tmpdir_create(char *dir, size_t size)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, size, "%s/revokd-unit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

void unit_tmpdir_remove(const char *dir, const char *const *names, size_t count)
{
    char path[PATH_MAX + 32];

    for (size_t i = 0; i < count; i++) {
        unit_path_in(path, sizeof(path), dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

void unit_path_in(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < size);
}

void unit_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

char *unit_capture(void (*print)(FILE *))
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    print(f);
    assert_int_equal(fclose(f), 0);
    return text;
}

/* ---- base64url and JWKs -------------------------------------------------- */

char *unit_b64url(const void *data, size_t len)
{
    char *out = malloc(len / 3 * 4 + 8);
    assert_non_null(out);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    size_t m = (size_t)n;
    while (m > 0 && out[m - 1] == '=')
        m--;
    out[m] = '\0';
    for (size_t i = 0; i < m; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return out;
}

void unit_json_add_b64url(cJSON *o, const char *name, const void *data, size_t len)
{
    char *s = unit_b64url(data, len);
    cJSON_AddStringToObject(o, name, s);
    free(s);
}

/* Adds member name: the base64url of k's BIGNUM parameter param, big-endian,
 * left-padded to pad bytes (minimal when pad is 0). */
static void add_bn(cJSON *o, const char *name, EVP_PKEY *k, const char *param, size_t pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];

    assert_int_equal(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    int n = pad ? BN_bn2binpad(bn, buf, (int)pad) : BN_bn2bin(bn, buf);
    assert_true(n > 0);
    unit_json_add_b64url(o, name, buf, (size_t)n);
    BN_free(bn);
}

/* A new JWK object {"kty", "kid", "alg"}; kid and alg left out when NULL. */
static cJSON *new_jwk(const char *kty, const char *kid, const char *alg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kty", kty);
    if (kid)
        cJSON_AddStringToObject(o, "kid", kid);
    if (alg)
        cJSON_AddStringToObject(o, "alg", alg);
    return o;
}

cJSON *unit_jwk_rsa(EVP_PKEY *k, const char *kid, const char *alg)
{
    cJSON *o = new_jwk("RSA", kid, alg);
    add_bn(o, "n", k, OSSL_PKEY_PARAM_RSA_N, 0);
    add_bn(o, "e", k, OSSL_PKEY_PARAM_RSA_E, 0);
    return o;
}

cJSON *unit_jwk_ec(EVP_PKEY *k, const char *kid, const char *crv, size_t size)
{
    cJSON *o = new_jwk("EC", kid, NULL); /* no alg: the curve implies it */
    cJSON_AddStringToObject(o, "crv", crv);
    add_bn(o, "x", k, OSSL_PKEY_PARAM_EC_PUB_X, size);
    add_bn(o, "y", k, OSSL_PKEY_PARAM_EC_PUB_Y, size);
    return o;
}

cJSON *unit_jwk_okp(EVP_PKEY *k, const char *kid, const char *crv)
{
    cJSON *o = new_jwk("OKP", kid, NULL); /* no alg: EdDSA is implied */
    unsigned char x[64];
    size_t len = sizeof(x);

    cJSON_AddStringToObject(o, "crv", crv);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, x, &len), 1);
    unit_json_add_b64url(o, "x", x, len);
    return o;
}

cJSON *unit_jwk_oct(const char *kid, const char *alg, const void *secret, size_t len)
{
    cJSON *o = new_jwk("oct", kid, alg);
    unit_json_add_b64url(o, "k", secret, len);
    return o;
}

void unit_write_jwksv(const char *path, cJSON *k0, va_list ap)
{
    cJSON *doc = cJSON_CreateObject(), *keys = cJSON_AddArrayToObject(doc, "keys");

    for (cJSON *k = k0; k != NULL; k = va_arg(ap, cJSON *))
        cJSON_AddItemToArray(keys, k);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    unit_write_file(path, text, strlen(text));
    cJSON_free(text);
}

void unit_write_jwks(const char *path, cJSON *k0, ...)
{
    va_list ap;

    va_start(ap, k0);
    unit_write_jwksv(path, k0, ap);
    va_end(ap);
}

/* ---- signatures ---------------------------------------------------------- */

size_t unit_sign(EVP_PKEY *key, const EVP_MD *md, const void *msg, size_t len,
                 unsigned char *sig, size_t size)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t n = size;

    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, key), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &n, msg, len), 1);
    EVP_MD_CTX_free(ctx);
    return n;
}

size_t unit_sign_pss(EVP_PKEY *key, const EVP_MD *md, int saltlen, const void *msg, size_t len,
                     unsigned char *sig, size_t size)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t n = size;

    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md, NULL, key), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &n, msg, len), 1);
    EVP_MD_CTX_free(ctx); /* frees pctx too */
    return n;
}

size_t unit_sign_eddsa(EVP_PKEY *key, const void *msg, size_t len, unsigned char *sig,
                       size_t size)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t n = size;

    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, key), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &n, msg, len), 1);
    EVP_MD_CTX_free(ctx);
    return n;
}

size_t unit_sign_ecdsa_jws(EVP_PKEY *key, const EVP_MD *md, const void *msg, size_t len,
                           size_t half, unsigned char *out)
{
    unsigned char der[256];
    size_t n = unit_sign(key, md, msg, len, der, sizeof(der));
    const unsigned char *p = der;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);

    assert_non_null(es);
    ECDSA_SIG_get0(es, &r, &s);
    assert_int_equal(BN_bn2binpad(r, out, (int)half), (int)half);
    assert_int_equal(BN_bn2binpad(s, out + half, (int)half), (int)half);
    ECDSA_SIG_free(es);
    return 2 * half;
}

/* ---- checks -------------------------------------------------------------- */

void unit_expect_contains(const char *text, const char *part)
{
    if (strstr(text, part) == NULL)
        print_error("error \"%s\" does not contain \"%s\"\n", text, part);
    assert_non_null(strstr(text, part));
}
