/* test_jwks.c - loading verification keys (JWKS, PEM, HMAC secret), the
 * refusals that keep each key pinned to one algorithm, and key selection.
 * Keys are generated here and written to a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "revokd/jwks.h"

#include "unit_util.h"

static struct {
    char dir[PATH_MAX];
    EVP_PKEY *rsa, *rsa1024, *ec256, *ec384;
    char err[256];
} fx;

static const char msg[] = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ";

/* ---- helpers ------------------------------------------------------------ */

static cJSON *oct_jwk(const char *kid, const char *alg, size_t len)
{
    unsigned char secret[128];

    for (size_t i = 0; i < len; i++)
        secret[i] = (unsigned char)(i + 1);
    return unit_jwk_oct(kid, alg, secret, len);
}

/* Writes text to name in the temporary dir; path receives the full name. */
static void put(char *path, size_t size, const char *name, const char *text)
{
    unit_path_in(path, size, fx.dir, name);
    unit_write_file(path, text, strlen(text));
}

/* Loads {"keys": [k0, k1, ...]} (NULL-terminated list, consumed) into set;
 * the reason of a failure is left in fx.err. */
static int load_keys(struct jwks *set, cJSON *k0, ...)
{
    char path[PATH_MAX + 32];
    va_list ap;

    unit_path_in(path, sizeof(path), fx.dir, "jwks.json");
    va_start(ap, k0);
    unit_write_jwksv(path, k0, ap);
    va_end(ap);
    fx.err[0] = '\0';
    return jwks_load_file(set, path, fx.err, sizeof(fx.err));
}

static void expect_err(const char *part)
{
    unit_expect_contains(fx.err, part);
}

/* A signature of msg: PKCS #1 v1.5 for RSA, DER for ECDSA. */
static size_t sign_pkey(EVP_PKEY *key, const EVP_MD *md, unsigned char *sig, size_t size)
{
    return unit_sign(key, md, msg, strlen(msg), sig, size);
}

/* An ECDSA signature of msg as JWS carries it: r || s. */
static size_t sign_ec(EVP_PKEY *key, const EVP_MD *md, size_t half, unsigned char *out)
{
    return unit_sign_ecdsa_jws(key, md, msg, strlen(msg), half, out);
}

static int verify_msg(const struct jwk *k, const unsigned char *sig, size_t len)
{
    return jwks_verify(k, (const unsigned char *)msg, strlen(msg), sig, len);
}

static void write_pem_public(const char *name, EVP_PKEY *k, char *path, size_t size)
{
    unit_path_in(path, size, fx.dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PUBKEY(f, k), 1);
    assert_int_equal(fclose(f), 0);
}

/* ---- fixture ------------------------------------------------------------ */

static const char *const files[] = {"jwks.json", "jwks2.json", "rsa.pem", "rsa1024.pem",
                                    "ec256.pem", "ec384.pem",  "private.pem", "garbage.pem",
                                    "secret",    "empty"};

static int group_setup(void **state)
{
    (void)state;
    if (unit_tmpdir_create(fx.dir, sizeof(fx.dir)) != 0)
        return -1;
    fx.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fx.rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    fx.ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fx.ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    return fx.rsa && fx.rsa1024 && fx.ec256 && fx.ec384 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    unit_tmpdir_remove(fx.dir, files, sizeof(files) / sizeof(files[0]));
    EVP_PKEY_free(fx.rsa);
    EVP_PKEY_free(fx.rsa1024);
    EVP_PKEY_free(fx.ec256);
    EVP_PKEY_free(fx.ec384);
    return 0;
}

/* ---- algorithms --------------------------------------------------------- */

static void test_alg_names(void **state)
{
    (void)state;
    static const char *const names[] = {"RS256", "RS384", "RS512", "ES256",
                                        "ES384", "HS256", "HS384", "HS512"};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(jwks_alg_parse(names[i]), i);
        assert_string_equal(jwks_alg_name((enum jwt_alg)i), names[i]);
    }
    assert_int_equal(jwks_alg_parse("none"), -1);
    assert_int_equal(jwks_alg_parse("rs256"), -1);
    assert_int_equal(jwks_alg_parse("RS256 "), -1);
    assert_int_equal(jwks_alg_parse("PS256"), -1);
    assert_int_equal(jwks_alg_parse("ES512"), -1);
    assert_int_equal(jwks_alg_parse(""), -1);
}

/* ---- RSA ---------------------------------------------------------------- */

static void test_rsa_needs_alg(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    const struct jwk *k = NULL;

    assert_int_equal(load_keys(set, unit_jwk_rsa(fx.rsa, "r1", NULL), NULL), -1);
    expect_err("RSA key needs alg");
    expect_err("key 0");
    assert_int_equal(jwks_count(set), 0);

    assert_int_equal(load_keys(set, unit_jwk_rsa(fx.rsa, "r1", "RS256"), NULL), 0);
    assert_int_equal(jwks_count(set), 1);
    assert_int_equal(jwks_select(set, "r1", ALG_RS256, &k), 0);
    assert_non_null(k);
    assert_int_equal(jwks_select(set, "r1", ALG_RS384, &k), -JWKS_EALG);
    assert_int_equal(jwks_select(set, "r1", ALG_HS256, &k), -JWKS_EALG);
    jwks_free(set);
}

static void test_rsa_verifies_with_pinned_alg(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    const struct jwk *k = NULL;
    unsigned char sig[512];

    assert_int_equal(load_keys(set, unit_jwk_rsa(fx.rsa, "r384", "RS384"), NULL), 0);
    assert_int_equal(jwks_select(set, "r384", ALG_RS384, &k), 0);
    size_t n = sign_pkey(fx.rsa, EVP_sha384(), sig, sizeof(sig));
    assert_int_equal(n, 256);
    assert_int_equal(verify_msg(k, sig, n), 0);
    /* A valid RS256 signature is not an RS384 one. */
    n = sign_pkey(fx.rsa, EVP_sha256(), sig, sizeof(sig));
    assert_int_equal(verify_msg(k, sig, n), -1);
    jwks_free(set);
}

static void test_rsa_1024_refused(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();

    assert_int_equal(load_keys(set, unit_jwk_rsa(fx.rsa1024, "small", "RS256"), NULL), -1);
    expect_err("1024 bits");
    expect_err("2048");
    assert_int_equal(jwks_count(set), 0);
    jwks_free(set);
}

static void test_rsa_bad_members(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    cJSON *k;

    k = unit_jwk_rsa(fx.rsa, "r", "RS256");
    cJSON_DeleteItemFromObject(k, "e");
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("n and e");

    k = unit_jwk_rsa(fx.rsa, "r", "RS256");
    cJSON_ReplaceItemInObject(k, "n", cJSON_CreateNumber(3));
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("n and e");

    /* base64url, strictly: standard padding is not accepted. */
    k = unit_jwk_rsa(fx.rsa, "r", "RS256");
    cJSON_ReplaceItemInObject(k, "e", cJSON_CreateString("AQAB=="));
    assert_int_equal(load_keys(set, k, NULL), -1);

    /* kty and alg must agree. */
    assert_int_equal(load_keys(set, unit_jwk_rsa(fx.rsa, "r", "ES256"), NULL), -1);
    expect_err("cannot carry ES256");
    assert_int_equal(load_keys(set, unit_jwk_rsa(fx.rsa, "r", "HS256"), NULL), -1);
    assert_int_equal(load_keys(set, unit_jwk_rsa(fx.rsa, "r", "none"), NULL), -1);
    expect_err("unsupported alg");
    assert_int_equal(jwks_count(set), 0);
    jwks_free(set);
}

/* ---- EC ----------------------------------------------------------------- */

static void test_ec_alg_from_curve(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    const struct jwk *k256 = NULL, *k384 = NULL;
    unsigned char sig[128];

    assert_int_equal(load_keys(set, unit_jwk_ec(fx.ec256, "e256", "P-256", 32),
                               unit_jwk_ec(fx.ec384, "e384", "P-384", 48), NULL),
                     0);
    assert_int_equal(jwks_count(set), 2);
    assert_int_equal(jwks_select(set, "e256", ALG_ES256, &k256), 0);
    assert_int_equal(jwks_select(set, "e256", ALG_ES384, &k256), -JWKS_EALG);
    assert_int_equal(jwks_select(set, "e384", ALG_ES384, &k384), 0);
    assert_int_equal(jwks_select(set, "e384", ALG_ES256, &k384), -JWKS_EALG);

    size_t n = sign_ec(fx.ec256, EVP_sha256(), 32, sig);
    assert_int_equal(verify_msg(k256, sig, n), 0);
    assert_int_equal(verify_msg(k384, sig, n), -1);
    n = sign_ec(fx.ec384, EVP_sha384(), 48, sig);
    assert_int_equal(verify_msg(k384, sig, n), 0);
    sig[10] ^= 4;
    assert_int_equal(verify_msg(k384, sig, n), -1);
    jwks_free(set);
}

static void test_ec_curve_and_alg_must_agree(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    cJSON *k;

    k = unit_jwk_ec(fx.ec384, "e", "P-384", 48);
    cJSON_AddStringToObject(k, "alg", "ES256");
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("ES256 needs crv P-256");

    /* An explicit alg matching the curve is fine. */
    k = unit_jwk_ec(fx.ec256, "e", "P-256", 32);
    cJSON_AddStringToObject(k, "alg", "ES256");
    assert_int_equal(load_keys(set, k, NULL), 0);
    assert_int_equal(jwks_count(set), 1);

    /* A curve without an algorithm of ours. */
    k = unit_jwk_ec(fx.ec256, "e2", "P-521", 32);
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("EC key needs alg");
    assert_int_equal(jwks_count(set), 1);
    jwks_free(set);
}

static void test_ec_wrong_coordinate_length(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    unsigned char coord[64];
    cJSON *k;

    memset(coord, 0x11, sizeof(coord));
    k = unit_jwk_ec(fx.ec256, "e", "P-256", 32);
    cJSON_DeleteItemFromObject(k, "x");
    unit_json_add_b64url(k, "x", coord, 31);
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("x and y of 32 bytes");

    k = unit_jwk_ec(fx.ec256, "e", "P-256", 32);
    cJSON_DeleteItemFromObject(k, "y");
    unit_json_add_b64url(k, "y", coord, 33);
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("x and y of 32 bytes");

    /* P-384 coordinates are 48 bytes; P-256-sized ones are refused. */
    k = unit_jwk_ec(fx.ec256, "e", "P-384", 32);
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("x and y of 48 bytes");

    k = unit_jwk_ec(fx.ec256, "e", "P-256", 32);
    cJSON_DeleteItemFromObject(k, "y");
    assert_int_equal(load_keys(set, k, NULL), -1);
    assert_int_equal(jwks_count(set), 0);
    jwks_free(set);
}

static void test_ec_point_not_on_curve(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    BIGNUM *y = NULL;
    unsigned char buf[32];
    cJSON *k;

    /* y + 1 keeps the length but leaves the curve. */
    assert_int_equal(EVP_PKEY_get_bn_param(fx.ec256, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    assert_int_equal(BN_add_word(y, 1), 1);
    assert_int_equal(BN_bn2binpad(y, buf, 32), 32);
    BN_free(y);
    k = unit_jwk_ec(fx.ec256, "e", "P-256", 32);
    cJSON_DeleteItemFromObject(k, "y");
    unit_json_add_b64url(k, "y", buf, 32);
    assert_int_equal(load_keys(set, k, NULL), -1);
    assert_true(fx.err[0] != '\0');
    assert_int_equal(jwks_count(set), 0);

    /* (0, 0) is not on P-256 either. */
    memset(buf, 0, sizeof(buf));
    k = unit_jwk_ec(fx.ec256, "e", "P-256", 32);
    cJSON_DeleteItemFromObject(k, "x");
    cJSON_DeleteItemFromObject(k, "y");
    unit_json_add_b64url(k, "x", buf, 32);
    unit_json_add_b64url(k, "y", buf, 32);
    assert_int_equal(load_keys(set, k, NULL), -1);
    assert_int_equal(jwks_count(set), 0);
    jwks_free(set);
}

/* ---- oct ---------------------------------------------------------------- */

static void test_oct_secret_length(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    const struct jwk *k = NULL;
    unsigned char secret[32], mac[64];
    unsigned int maclen = 0;

    assert_int_equal(load_keys(set, oct_jwk("h", "HS256", 31), NULL), -1);
    expect_err("HS256 secret of 31 bytes; at least 32 required");
    assert_int_equal(load_keys(set, oct_jwk("h", "HS384", 47), NULL), -1);
    expect_err("at least 48");
    assert_int_equal(load_keys(set, oct_jwk("h", "HS512", 63), NULL), -1);
    expect_err("at least 64");
    assert_int_equal(load_keys(set, oct_jwk("h", NULL, 64), NULL), -1);
    expect_err("oct key needs alg");
    assert_int_equal(load_keys(set, oct_jwk("h", "RS256", 64), NULL), -1);
    expect_err("cannot carry RS256");
    assert_int_equal(jwks_count(set), 0);

    assert_int_equal(load_keys(set, oct_jwk("h256", "HS256", 32), oct_jwk("h512", "HS512", 64),
                               NULL),
                     0);
    assert_int_equal(jwks_count(set), 2);
    assert_int_equal(jwks_select(set, "h256", ALG_HS256, &k), 0);
    for (size_t i = 0; i < sizeof(secret); i++)
        secret[i] = (unsigned char)(i + 1);
    HMAC(EVP_sha256(), secret, (int)sizeof(secret), (const unsigned char *)msg, strlen(msg), mac,
         &maclen);
    assert_int_equal(maclen, 32);
    assert_int_equal(verify_msg(k, mac, maclen), 0);
    assert_int_equal(verify_msg(k, mac, maclen - 1), -1);
    mac[31] ^= 1;
    assert_int_equal(verify_msg(k, mac, maclen), -1);
    jwks_free(set);
}

/* ---- the document ------------------------------------------------------- */

static void test_use_enc_skipped(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    const struct jwk *k = NULL;
    cJSON *enc = unit_jwk_rsa(fx.rsa, "enc1", "RS256");
    cJSON *sig = unit_jwk_ec(fx.ec256, "sig1", "P-256", 32);
    /* An encryption key is skipped before it is looked at: even a 1024-bit
     * one without alg does not stop the load. */
    cJSON *weak = unit_jwk_rsa(fx.rsa1024, "enc2", NULL);
    cJSON *odd = oct_jwk("enc3", "HS256", 32);

    cJSON_AddStringToObject(enc, "use", "enc");
    cJSON_AddStringToObject(sig, "use", "sig");
    cJSON_AddStringToObject(weak, "use", "enc");
    cJSON_AddNumberToObject(odd, "use", 1);
    assert_int_equal(load_keys(set, enc, sig, weak, odd, NULL), 0);
    assert_int_equal(jwks_count(set), 1);
    assert_int_equal(jwks_select(set, "sig1", ALG_ES256, &k), 0);
    assert_int_equal(jwks_select(set, "enc1", ALG_RS256, &k), -JWKS_ENOKEY);
    assert_int_equal(jwks_select(set, "enc3", ALG_HS256, &k), -JWKS_ENOKEY);
    jwks_free(set);
}

static void test_duplicate_kid_refused(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    const struct jwk *k = NULL;

    assert_int_equal(load_keys(set, unit_jwk_ec(fx.ec256, "same", "P-256", 32),
                               unit_jwk_rsa(fx.rsa, "same", "RS256"), NULL),
                     -1);
    expect_err("duplicate kid \"same\"");
    expect_err("key 1");
    assert_int_equal(jwks_count(set), 0);

    /* Across two files too. */
    assert_int_equal(load_keys(set, unit_jwk_ec(fx.ec256, "same", "P-256", 32), NULL), 0);
    assert_int_equal(load_keys(set, oct_jwk("same", "HS256", 32), NULL), -1);
    expect_err("duplicate kid");
    assert_int_equal(jwks_count(set), 1);
    assert_int_equal(jwks_select(set, "same", ALG_ES256, &k), 0);
    jwks_free(set);
}

static void test_failed_load_leaves_set_unchanged(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    const struct jwk *k = NULL;

    assert_int_equal(load_keys(set, oct_jwk("first", "HS256", 32), NULL), 0);
    assert_int_equal(load_keys(set, unit_jwk_ec(fx.ec256, "good", "P-256", 32),
                               unit_jwk_ec(fx.ec384, "good2", "P-384", 48),
                               unit_jwk_rsa(fx.rsa1024, "bad", "RS256"), NULL),
                     -1);
    expect_err("key 2");
    assert_int_equal(jwks_count(set), 1);
    assert_int_equal(jwks_select(set, "good", ALG_ES256, &k), -JWKS_ENOKEY);
    assert_int_equal(jwks_select(set, "good2", ALG_ES384, &k), -JWKS_ENOKEY);
    assert_int_equal(jwks_select(set, "first", ALG_HS256, &k), 0);
    jwks_free(set);
}

static void test_two_kidless_keys_same_alg(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();

    assert_int_equal(load_keys(set, unit_jwk_ec(fx.ec256, NULL, "P-256", 32),
                               unit_jwk_ec(fx.ec256, NULL, "P-256", 32), NULL),
                     -1);
    expect_err("two keys without kid for ES256");
    assert_int_equal(jwks_count(set), 0);
    /* Different algorithms may each have one. */
    assert_int_equal(load_keys(set, unit_jwk_ec(fx.ec256, NULL, "P-256", 32),
                               unit_jwk_ec(fx.ec384, NULL, "P-384", 48), NULL),
                     0);
    assert_int_equal(jwks_count(set), 2);
    jwks_free(set);
}

static void test_not_a_jwks(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    char path[PATH_MAX + 32], kid[300];

    static const struct {
        const char *text, *why;
    } bad[] = {
        {"{}", "is not a JWKS document"},
        {"[]", "is not a JWKS document"},
        {"not json", "is not a JWKS document"},
        {"", "is not a JWKS document"},
        {"{\"keys\":{}}", "is not a JWKS document"},
        {"{\"keys\":[42]}", "not a JWK object with kty"},
        {"{\"keys\":[{\"kid\":\"a\"}]}", "not a JWK object with kty"},
        {"{\"keys\":[{\"kty\":\"oct\",\"kid\":\"\",\"alg\":\"HS256\"}]}", "kid must be"},
        {"{\"keys\":[{\"kty\":\"oct\",\"kid\":5,\"alg\":\"HS256\"}]}", "kid must be"},
        {"{\"keys\":[{\"kty\":\"oct\",\"alg\":5}]}", "unsupported alg"},
        {"{\"keys\":[{\"kty\":\"OKP\",\"alg\":\"HS256\"}]}", "cannot carry"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put(path, sizeof(path), "jwks.json", bad[i].text);
        fx.err[0] = '\0';
        assert_int_equal(jwks_load_file(set, path, fx.err, sizeof(fx.err)), -1);
        expect_err(bad[i].why);
    }
    /* kid: 256 bytes at most. */
    memset(kid, 'k', 257);
    kid[257] = '\0';
    assert_int_equal(load_keys(set, oct_jwk(kid, "HS256", 32), NULL), -1);
    expect_err("kid must be");
    kid[256] = '\0';
    assert_int_equal(load_keys(set, oct_jwk(kid, "HS256", 32), NULL), 0);

    unit_path_in(path, sizeof(path), fx.dir, "missing.json");
    assert_int_equal(jwks_load_file(set, path, fx.err, sizeof(fx.err)), -1);
    expect_err("cannot open");
    assert_int_equal(jwks_count(set), 1);
    jwks_free(set);
}

/* ---- PEM ---------------------------------------------------------------- */

static void test_pem_private_key_refused(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    char path[PATH_MAX + 32];

    unit_path_in(path, sizeof(path), fx.dir, "private.pem");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, fx.ec256, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(jwks_load_pem(set, path, NULL, fx.err, sizeof(fx.err)), -1);
    expect_err("private key");
    assert_int_equal(jwks_load_pem(set, path, "ES256", fx.err, sizeof(fx.err)), -1);
    expect_err("private key");
    assert_int_equal(jwks_count(set), 0);
    jwks_free(set);
}

static void test_pem_infers_alg(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    char path[PATH_MAX + 32];
    const struct jwk *krs = NULL, *kes256 = NULL, *kes384 = NULL;
    unsigned char sig[512];
    size_t n;

    write_pem_public("rsa.pem", fx.rsa, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, NULL, fx.err, sizeof(fx.err)), 0);
    write_pem_public("ec256.pem", fx.ec256, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, "", fx.err, sizeof(fx.err)), 0);
    write_pem_public("ec384.pem", fx.ec384, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, NULL, fx.err, sizeof(fx.err)), 0);
    assert_int_equal(jwks_count(set), 3);

    assert_int_equal(jwks_select(set, NULL, ALG_RS256, &krs), 0);
    assert_int_equal(jwks_select(set, NULL, ALG_ES256, &kes256), 0);
    assert_int_equal(jwks_select(set, NULL, ALG_ES384, &kes384), 0);
    assert_int_equal(jwks_select(set, NULL, ALG_RS384, &krs), -JWKS_ENOKEY);
    assert_int_equal(jwks_select(set, NULL, ALG_RS512, &krs), -JWKS_ENOKEY);
    assert_int_equal(jwks_select(set, NULL, ALG_RS256, &krs), 0);
    assert_ptr_not_equal(krs, kes256);
    assert_ptr_not_equal(kes256, kes384);

    /* And each verifies its own algorithm's signatures. */
    n = sign_pkey(fx.rsa, EVP_sha256(), sig, sizeof(sig));
    assert_int_equal(verify_msg(krs, sig, n), 0);
    n = sign_ec(fx.ec256, EVP_sha256(), 32, sig);
    assert_int_equal(verify_msg(kes256, sig, n), 0);
    n = sign_ec(fx.ec384, EVP_sha384(), 48, sig);
    assert_int_equal(verify_msg(kes384, sig, n), 0);

    /* A second kid-less RS256 key would be ambiguous. */
    write_pem_public("rsa.pem", fx.rsa, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, "RS256", fx.err, sizeof(fx.err)), -1);
    expect_err("two keys without kid for RS256");
    assert_int_equal(jwks_count(set), 3);
    jwks_free(set);
}

static void test_pem_explicit_alg(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    char path[PATH_MAX + 32];
    const struct jwk *k = NULL;

    write_pem_public("rsa.pem", fx.rsa, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, "RS512", fx.err, sizeof(fx.err)), 0);
    assert_int_equal(jwks_select(set, NULL, ALG_RS512, &k), 0);
    assert_int_equal(jwks_select(set, NULL, ALG_RS256, &k), -JWKS_ENOKEY);

    assert_int_equal(jwks_load_pem(set, path, "ES256", fx.err, sizeof(fx.err)), -1);
    expect_err("ES256 needs an EC key on curve prime256v1");
    assert_int_equal(jwks_load_pem(set, path, "HS256", fx.err, sizeof(fx.err)), -1);
    expect_err("no usable algorithm");
    assert_int_equal(jwks_load_pem(set, path, "none", fx.err, sizeof(fx.err)), -1);
    expect_err("no usable algorithm");

    write_pem_public("ec256.pem", fx.ec256, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, "ES384", fx.err, sizeof(fx.err)), -1);
    expect_err("curve secp384r1");
    assert_int_equal(jwks_load_pem(set, path, "RS256", fx.err, sizeof(fx.err)), -1);
    expect_err("needs an RSA key");

    write_pem_public("rsa1024.pem", fx.rsa1024, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, NULL, fx.err, sizeof(fx.err)), -1);
    expect_err("RSA key of 1024 bits; at least 2048 required");

    put(path, sizeof(path), "garbage.pem",
        "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n");
    assert_int_equal(jwks_load_pem(set, path, NULL, fx.err, sizeof(fx.err)), -1);
    expect_err("is not a PEM public key");
    unit_path_in(path, sizeof(path), fx.dir, "missing.pem");
    assert_int_equal(jwks_load_pem(set, path, NULL, fx.err, sizeof(fx.err)), -1);
    expect_err("cannot open");
    assert_int_equal(jwks_count(set), 1);
    jwks_free(set);
}

/* ---- HMAC secret file --------------------------------------------------- */

static void test_hmac_secret_file(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    char path[PATH_MAX + 32], secret[40];
    const struct jwk *k = NULL;
    unsigned char mac[64];
    unsigned int maclen = 0;

    /* One trailing CRLF is not part of the secret. */
    memcpy(secret, "0123456789abcdef0123456789abcdef\r\n", 35);
    unit_path_in(path, sizeof(path), fx.dir, "secret");
    unit_write_file(path, secret, 34);
    assert_int_equal(jwks_load_hmac(set, path, "HS256", fx.err, sizeof(fx.err)), 0);
    assert_int_equal(jwks_select(set, NULL, ALG_HS256, &k), 0);
    HMAC(EVP_sha256(), secret, 32, (const unsigned char *)msg, strlen(msg), mac, &maclen);
    assert_int_equal(verify_msg(k, mac, maclen), 0);
    HMAC(EVP_sha256(), secret, 33, (const unsigned char *)msg, strlen(msg), mac, &maclen);
    assert_int_equal(verify_msg(k, mac, maclen), -1);

    /* 31 bytes and a newline are too short for HS256. */
    unit_write_file(path, "0123456789abcdef0123456789abcde\n", 32);
    assert_int_equal(jwks_load_hmac(set, path, "HS384", fx.err, sizeof(fx.err)), -1);
    expect_err("at least 48");
    assert_int_equal(jwks_load_hmac(set, path, "HS256", fx.err, sizeof(fx.err)), -1);
    expect_err("HS256 secret of 31 bytes");
    assert_int_equal(jwks_load_hmac(set, path, "RS256", fx.err, sizeof(fx.err)), -1);
    expect_err("is not HS256, HS384 or HS512");
    assert_int_equal(jwks_load_hmac(set, path, "hs256", fx.err, sizeof(fx.err)), -1);
    unit_path_in(path, sizeof(path), fx.dir, "empty");
    unit_write_file(path, "", 0);
    assert_int_equal(jwks_load_hmac(set, path, "HS256", fx.err, sizeof(fx.err)), -1);
    assert_int_equal(jwks_count(set), 1);
    jwks_free(set);
}

/* ---- selection ---------------------------------------------------------- */

static void test_select(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    const struct jwk *k = NULL, *kidless = NULL, *ka = NULL, *kb = NULL;
    unsigned char sig[512];
    size_t n;

    assert_int_equal(load_keys(set, unit_jwk_ec(fx.ec256, "a", "P-256", 32),
                               unit_jwk_rsa(fx.rsa, "b", "RS256"), oct_jwk(NULL, "HS256", 32),
                               NULL),
                     0);
    assert_int_equal(jwks_count(set), 3);

    /* Without kid: the kid-less key for the alg, never a keyed one. */
    assert_int_equal(jwks_select(set, NULL, ALG_HS256, &kidless), 0);
    assert_int_equal(jwks_select(set, NULL, ALG_ES256, &k), -JWKS_ENOKEY);
    assert_int_equal(jwks_select(set, NULL, ALG_RS256, &k), -JWKS_ENOKEY);

    /* By kid: that key, if pinned to alg; never a fallback. */
    assert_int_equal(jwks_select(set, "a", ALG_ES256, &ka), 0);
    assert_int_equal(jwks_select(set, "b", ALG_RS256, &kb), 0);
    assert_ptr_not_equal(ka, kb);
    assert_ptr_not_equal(ka, kidless);
    k = NULL;
    assert_int_equal(jwks_select(set, "a", ALG_HS256, &k), -JWKS_EALG);
    assert_null(k);
    assert_int_equal(jwks_select(set, "zzz", ALG_HS256, &k), -JWKS_ENOKEY);
    assert_int_equal(jwks_select(set, "", ALG_HS256, &k), -JWKS_ENOKEY);
    assert_int_equal(jwks_select(set, "A", ALG_ES256, &k), -JWKS_ENOKEY);
    assert_null(k);

    n = sign_ec(fx.ec256, EVP_sha256(), 32, sig);
    assert_int_equal(verify_msg(ka, sig, n), 0);
    n = sign_pkey(fx.rsa, EVP_sha256(), sig, sizeof(sig));
    assert_int_equal(verify_msg(kb, sig, n), 0);
    assert_int_equal(verify_msg(ka, sig, n), -1);
    jwks_free(set);

    /* An empty set has no keys; jwks_free(NULL) is a no-op. */
    set = jwks_new();
    assert_int_equal(jwks_count(set), 0);
    assert_int_equal(jwks_select(set, NULL, ALG_HS256, &k), -JWKS_ENOKEY);
    jwks_free(set);
    jwks_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alg_names),
        cmocka_unit_test(test_rsa_needs_alg),
        cmocka_unit_test(test_rsa_verifies_with_pinned_alg),
        cmocka_unit_test(test_rsa_1024_refused),
        cmocka_unit_test(test_rsa_bad_members),
        cmocka_unit_test(test_ec_alg_from_curve),
        cmocka_unit_test(test_ec_curve_and_alg_must_agree),
        cmocka_unit_test(test_ec_wrong_coordinate_length),
        cmocka_unit_test(test_ec_point_not_on_curve),
        cmocka_unit_test(test_oct_secret_length),
        cmocka_unit_test(test_use_enc_skipped),
        cmocka_unit_test(test_duplicate_kid_refused),
        cmocka_unit_test(test_failed_load_leaves_set_unchanged),
        cmocka_unit_test(test_two_kidless_keys_same_alg),
        cmocka_unit_test(test_not_a_jwks),
        cmocka_unit_test(test_pem_private_key_refused),
        cmocka_unit_test(test_pem_infers_alg),
        cmocka_unit_test(test_pem_explicit_alg),
        cmocka_unit_test(test_hmac_secret_file),
        cmocka_unit_test(test_select),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
