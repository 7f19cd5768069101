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
#include <openssl/rsa.h>

#include "revokd/jwks.h"

#include "unit_util.h"

static struct {
    char dir[PATH_MAX];
    EVP_PKEY *rsa, *rsa_other, *rsa1024, *ec256, *ec384, *ec521, *ec521_other;
    EVP_PKEY *ed25519, *ed25519_other, *ed448, *ed448_other;
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
    return jwks_load_file(set, path, NULL, fx.err, sizeof(fx.err));
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

/* RSASSA-PSS of msg with MGF1 md and a salt of saltlen (RSA_PSS_SALTLEN_*). */
static size_t sign_pss(EVP_PKEY *key, const EVP_MD *md, int saltlen, unsigned char *sig,
                       size_t size)
{
    return unit_sign_pss(key, md, saltlen, msg, strlen(msg), sig, size);
}

static size_t sign_ed(EVP_PKEY *key, unsigned char *sig, size_t size)
{
    return unit_sign_eddsa(key, msg, strlen(msg), sig, size);
}

/* {"keys": [k0, k1, ...]} (NULL-terminated list, consumed) as text the
 * caller frees with cJSON_free(). */
static char *jwks_text(cJSON *k0, va_list ap)
{
    cJSON *doc = cJSON_CreateObject(), *keys = cJSON_AddArrayToObject(doc, "keys");

    for (cJSON *k = k0; k != NULL; k = va_arg(ap, cJSON *))
        cJSON_AddItemToArray(keys, k);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    assert_non_null(text);
    return text;
}

/* jwks_load_json() of {"keys": [k0, ...]} with opts; the reason (or the first
 * skip's) is left in fx.err. */
static int load_opts(struct jwks *set, const struct jwks_opts *opts, cJSON *k0, ...)
{
    va_list ap;

    va_start(ap, k0);
    char *text = jwks_text(k0, ap);
    va_end(ap);
    strcpy(fx.err, "untouched");
    int rc = jwks_load_json(set, text, strlen(text), "https://idp.test/jwks", opts, fx.err,
                            sizeof(fx.err));
    cJSON_free(text);
    return rc;
}

/* Asserts that the set's kid key is pinned to alg and verifies sig but not a
 * truncated or extended copy of it (with a zero byte after it). */
static void expect_verifies(const struct jwks *set, const char *kid, enum jwt_alg alg,
                            const unsigned char *sig, size_t n)
{
    const struct jwk *k = NULL;
    unsigned char longer[1024];

    assert_true(n + 1 <= sizeof(longer));
    assert_int_equal(jwks_select(set, kid, (int)alg, &k), 0);
    assert_int_equal(verify_msg(k, sig, n), 0);
    assert_int_equal(verify_msg(k, sig, n - 1), -1);
    memcpy(longer, sig, n);
    longer[n] = 0;
    assert_int_equal(verify_msg(k, longer, n + 1), -1);
    /* Leading zero byte, the signature value unchanged. */
    longer[0] = 0;
    memcpy(longer + 1, sig, n);
    assert_int_equal(verify_msg(k, longer, n + 1), -1);
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

static const char *const files[] = {"jwks.json",   "jwks2.json",  "rsa.pem",     "rsa1024.pem",
                                    "ec256.pem",   "ec384.pem",   "ec521.pem",   "ed25519.pem",
                                    "ed448.pem",   "private.pem", "garbage.pem", "secret",
                                    "empty"};

static int group_setup(void **state)
{
    (void)state;
    if (unit_tmpdir_create(fx.dir, sizeof(fx.dir)) != 0)
        return -1;
    fx.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fx.rsa_other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fx.rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    fx.ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fx.ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    fx.ec521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    fx.ec521_other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    fx.ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    fx.ed25519_other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    fx.ed448 = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    fx.ed448_other = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    return fx.rsa && fx.rsa_other && fx.rsa1024 && fx.ec256 && fx.ec384 && fx.ec521 &&
                   fx.ec521_other && fx.ed25519 && fx.ed25519_other && fx.ed448 && fx.ed448_other
               ? 0
               : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    unit_tmpdir_remove(fx.dir, files, sizeof(files) / sizeof(files[0]));
    EVP_PKEY *keys[] = {fx.rsa,         fx.rsa_other, fx.rsa1024, fx.ec256,
                        fx.ec384,       fx.ec521,     fx.ec521_other, fx.ed25519,
                        fx.ed25519_other, fx.ed448,   fx.ed448_other};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

/* ---- algorithms --------------------------------------------------------- */

static void test_alg_names(void **state)
{
    (void)state;
    static const char *const names[] = {"RS256", "RS384", "RS512", "PS256", "PS384",
                                        "PS512", "ES256", "ES384", "ES512", "EdDSA",
                                        "HS256", "HS384", "HS512"};
    for (int i = 0; i < 13; i++) {
        assert_int_equal(jwks_alg_parse(names[i]), i);
        assert_string_equal(jwks_alg_name((enum jwt_alg)i), names[i]);
    }
    assert_int_equal(ALG_PS256, 3);
    assert_int_equal(ALG_EDDSA, 9);
    assert_int_equal(jwks_alg_parse("none"), -1);
    assert_int_equal(jwks_alg_parse("rs256"), -1);
    assert_int_equal(jwks_alg_parse("RS256 "), -1);
    assert_int_equal(jwks_alg_parse("EDDSA"), -1);
    assert_int_equal(jwks_alg_parse("Ed25519"), -1);
    assert_int_equal(jwks_alg_parse("ES256K"), -1);
    assert_int_equal(jwks_alg_parse(""), -1);
}

static void test_algs_parse(void **state)
{
    (void)state;
    unsigned set = 12345;

    assert_int_equal(jwks_algs_parse("", &set, fx.err, sizeof(fx.err)), 0);
    assert_int_equal(set, 0);
    set = 1;
    assert_int_equal(jwks_algs_parse("  ", &set, fx.err, sizeof(fx.err)), 0);
    assert_int_equal(set, 0);
    assert_int_equal(jwks_algs_parse("RS256", &set, fx.err, sizeof(fx.err)), 0);
    assert_int_equal(set, JWKS_ALG_BIT(ALG_RS256));
    assert_int_equal(jwks_algs_parse("RS256,PS256", &set, fx.err, sizeof(fx.err)), 0);
    assert_int_equal(set, JWKS_ALG_BIT(ALG_RS256) | JWKS_ALG_BIT(ALG_PS256));
    assert_int_equal(jwks_algs_parse(" EdDSA ,\tES512,HS512 , RS256", &set, fx.err,
                                     sizeof(fx.err)),
                     0);
    assert_int_equal(set, JWKS_ALG_BIT(ALG_EDDSA) | JWKS_ALG_BIT(ALG_ES512) |
                              JWKS_ALG_BIT(ALG_HS512) | JWKS_ALG_BIT(ALG_RS256));
    /* Naming one twice is harmless. */
    assert_int_equal(jwks_algs_parse("ES256,ES256", &set, NULL, 0), 0);
    assert_int_equal(set, JWKS_ALG_BIT(ALG_ES256));

    static const struct {
        const char *list, *why;
    } bad[] = {
        {"RS257", "unknown algorithm \"RS257\""},
        {"RS256,none", "unknown algorithm \"none\""},
        {"rs256", "unknown algorithm \"rs256\""},
        {"RS256 PS256", "unknown algorithm \"RS256 PS256\""},
        {"RS256;PS256", "unknown algorithm \"RS256;PS256\""},
        {"RS256,,PS256", "empty name"},
        {"RS256,", "empty name"},
        {",RS256", "empty name"},
        {" , ", "empty name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        set = 777;
        fx.err[0] = '\0';
        assert_int_equal(jwks_algs_parse(bad[i].list, &set, fx.err, sizeof(fx.err)), -1);
        expect_err(bad[i].why);
        assert_int_equal(set, 777);
    }
    assert_int_equal(jwks_algs_parse("XX", &set, fx.err, sizeof(fx.err)), -1);
    expect_err("known: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA");
    /* err may be NULL. */
    assert_int_equal(jwks_algs_parse("nope", &set, NULL, 0), -1);
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

/* A modulus past 8192 bits (any odd number will do: nothing is verified
 * with it) is refused before it can cost every token a slow verification. */
static void test_rsa_over_8192_refused(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    unsigned char n[8200 / 8 + 1];
    const unsigned char e[] = {1, 0, 1};
    cJSON *k = cJSON_CreateObject();

    memset(n, 0xa5, sizeof(n));
    n[0] = 0x80;
    cJSON_AddStringToObject(k, "kty", "RSA");
    cJSON_AddStringToObject(k, "kid", "huge");
    cJSON_AddStringToObject(k, "alg", "RS256");
    unit_json_add_b64url(k, "n", n, sizeof(n));
    unit_json_add_b64url(k, "e", e, sizeof(e));
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("RSA key of 8208 bits; 2048 to 8192 required");
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

/* ---- RSASSA-PSS ---------------------------------------------------------- */

static void test_pss_verifies(void **state)
{
    (void)state;
    static const struct {
        enum jwt_alg alg;
        const char *name, *kid;
        const EVP_MD *(*md)(void);
    } cases[] = {
        {ALG_PS256, "PS256", "p256", EVP_sha256},
        {ALG_PS384, "PS384", "p384", EVP_sha384},
        {ALG_PS512, "PS512", "p512", EVP_sha512},
    };
    struct jwks *set = jwks_new();
    const struct jwk *k = NULL;
    unsigned char sig[512];
    size_t n;

    assert_int_equal(load_keys(set, unit_jwk_rsa(fx.rsa, "p256", "PS256"),
                               unit_jwk_rsa(fx.rsa, "p384", "PS384"),
                               unit_jwk_rsa(fx.rsa, "p512", "PS512"),
                               unit_jwk_rsa(fx.rsa, "r256", "RS256"), NULL),
                     0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const EVP_MD *md = cases[i].md();
        n = sign_pss(fx.rsa, md, RSA_PSS_SALTLEN_DIGEST, sig, sizeof(sig));
        assert_int_equal(n, 256);
        expect_verifies(set, cases[i].kid, cases[i].alg, sig, n);
        assert_int_equal(jwks_select(set, cases[i].kid, (int)cases[i].alg, &k), 0);
        /* A key pinned to PSx takes no RSx, and no other hash. */
        assert_int_equal(jwks_select(set, cases[i].kid, ALG_RS256, &k), -JWKS_EALG);
        assert_int_equal(jwks_select(set, cases[i].kid, (int)cases[i].alg, &k), 0);
        /* RFC 7518 3.5: the salt is as long as the hash; none or the longest
         * that fits is another signature scheme's parameter. */
        n = sign_pss(fx.rsa, md, 0, sig, sizeof(sig));
        assert_int_equal(verify_msg(k, sig, n), -1);
        n = sign_pss(fx.rsa, md, RSA_PSS_SALTLEN_MAX, sig, sizeof(sig));
        assert_int_equal(verify_msg(k, sig, n), -1);
        n = sign_pss(fx.rsa, md, (int)EVP_MD_get_size(md) + 1, sig, sizeof(sig));
        assert_int_equal(verify_msg(k, sig, n), -1);
        /* PKCS #1 v1.5 with the same hash is not PSS. */
        n = sign_pkey(fx.rsa, md, sig, sizeof(sig));
        assert_int_equal(verify_msg(k, sig, n), -1);
        /* Another RSA key's signature. */
        n = sign_pss(fx.rsa_other, md, RSA_PSS_SALTLEN_DIGEST, sig, sizeof(sig));
        assert_int_equal(n, 256);
        assert_int_equal(verify_msg(k, sig, n), -1);
        /* Another hash. */
        n = sign_pss(fx.rsa, i == 0 ? EVP_sha384() : EVP_sha256(), RSA_PSS_SALTLEN_DIGEST, sig,
                     sizeof(sig));
        assert_int_equal(verify_msg(k, sig, n), -1);
    }
    /* And an RS256 key takes no PSS signature. */
    assert_int_equal(jwks_select(set, "r256", ALG_RS256, &k), 0);
    n = sign_pss(fx.rsa, EVP_sha256(), RSA_PSS_SALTLEN_DIGEST, sig, sizeof(sig));
    assert_int_equal(verify_msg(k, sig, n), -1);
    n = sign_pkey(fx.rsa, EVP_sha256(), sig, sizeof(sig));
    assert_int_equal(verify_msg(k, sig, n), 0);
    jwks_free(set);
}

static void test_pss_1024_refused(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    char path[PATH_MAX + 32];

    assert_int_equal(load_keys(set, unit_jwk_rsa(fx.rsa1024, "small", "PS256"), NULL), -1);
    expect_err("RSA key of 1024 bits; 2048 to 8192 required");
    write_pem_public("rsa1024.pem", fx.rsa1024, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, "PS512", 0, fx.err, sizeof(fx.err)), -1);
    expect_err("RSA key of 1024 bits");
    assert_int_equal(load_keys(set, unit_jwk_rsa(fx.rsa, "p", "PS256"), NULL), 0);
    assert_int_equal(jwks_count(set), 1);
    /* kty and alg must agree for PSS too. */
    cJSON *ec = unit_jwk_ec(fx.ec256, "e", "P-256", 32);
    cJSON_AddStringToObject(ec, "alg", "PS256");
    assert_int_equal(load_keys(set, ec, NULL), -1);
    expect_err("kty EC cannot carry PS256");
    assert_int_equal(jwks_count(set), 1);
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
    k = unit_jwk_ec(fx.ec256, "e2", "P-192", 32);
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("unsupported crv \"P-192\"");
    k = unit_jwk_ec(fx.ec256, "e2", "secp256k1", 32);
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("unsupported crv");
    k = unit_jwk_ec(fx.ec256, "e2", "P-256", 32);
    cJSON_DeleteItemFromObject(k, "crv");
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("EC key needs crv");
    /* P-521 names ES512, whose coordinates are 66 bytes. */
    k = unit_jwk_ec(fx.ec256, "e2", "P-521", 32);
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("x and y of 66 bytes");
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

static void test_es512(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    const struct jwk *k = NULL;
    unsigned char sig[256];
    cJSON *jwk;
    size_t n;

    /* P-521 implies ES512, with or without "alg". */
    jwk = unit_jwk_ec(fx.ec521, "e521b", "P-521", 66);
    cJSON_AddStringToObject(jwk, "alg", "ES512");
    assert_int_equal(load_keys(set, unit_jwk_ec(fx.ec521, "e521", "P-521", 66), jwk, NULL), 0);
    assert_int_equal(jwks_select(set, "e521", ALG_ES384, &k), -JWKS_EALG);
    n = sign_ec(fx.ec521, EVP_sha512(), 66, sig);
    assert_int_equal(n, 132);
    expect_verifies(set, "e521", ALG_ES512, sig, n);
    expect_verifies(set, "e521b", ALG_ES512, sig, n);
    assert_int_equal(jwks_select(set, "e521", ALG_ES512, &k), 0);
    /* Another P-521 key's signature; the same key with another hash. */
    n = sign_ec(fx.ec521_other, EVP_sha512(), 66, sig);
    assert_int_equal(verify_msg(k, sig, n), -1);
    n = sign_ec(fx.ec521, EVP_sha384(), 66, sig);
    assert_int_equal(verify_msg(k, sig, n), -1);
    /* The signature as DER, as OpenSSL writes it: not JWS. */
    n = sign_pkey(fx.ec521, EVP_sha512(), sig, sizeof(sig));
    assert_int_equal(verify_msg(k, sig, n), -1);
    jwks_free(set);

    set = jwks_new();
    /* 66-byte coordinates exactly: the minimal 65 of a small x is refused. */
    unsigned char coord[66];
    memset(coord, 0x01, sizeof(coord));
    jwk = unit_jwk_ec(fx.ec521, "e", "P-521", 66);
    cJSON_DeleteItemFromObject(jwk, "x");
    unit_json_add_b64url(jwk, "x", coord, 65);
    assert_int_equal(load_keys(set, jwk, NULL), -1);
    expect_err("EC key needs x and y of 66 bytes each");
    jwk = unit_jwk_ec(fx.ec521, "e", "P-521", 66);
    cJSON_AddStringToObject(jwk, "alg", "ES256");
    assert_int_equal(load_keys(set, jwk, NULL), -1);
    expect_err("ES256 needs crv P-256");
    jwk = unit_jwk_ec(fx.ec384, "e", "P-384", 48);
    cJSON_AddStringToObject(jwk, "alg", "ES512");
    assert_int_equal(load_keys(set, jwk, NULL), -1);
    expect_err("ES512 needs crv P-521");
    /* A point off the curve: y + 1. */
    BIGNUM *y = NULL;
    unsigned char buf[66];
    assert_int_equal(EVP_PKEY_get_bn_param(fx.ec521, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    assert_int_equal(BN_add_word(y, 1), 1);
    assert_int_equal(BN_bn2binpad(y, buf, 66), 66);
    BN_free(y);
    jwk = unit_jwk_ec(fx.ec521, "e", "P-521", 66);
    cJSON_DeleteItemFromObject(jwk, "y");
    unit_json_add_b64url(jwk, "y", buf, 66);
    assert_int_equal(load_keys(set, jwk, NULL), -1);
    expect_err("EC ");
    assert_int_equal(jwks_count(set), 0);
    jwks_free(set);
}

/* ---- EdDSA -------------------------------------------------------------- */

static void test_eddsa_verifies(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    const struct jwk *k25519 = NULL, *k448 = NULL;
    unsigned char sig[256];
    cJSON *jwk;
    size_t n;

    /* OKP implies EdDSA; an explicit "alg": "EdDSA" is the same. */
    jwk = unit_jwk_okp(fx.ed448, "ed448", "Ed448");
    cJSON_AddStringToObject(jwk, "alg", "EdDSA");
    assert_int_equal(load_keys(set, unit_jwk_okp(fx.ed25519, "ed25519", "Ed25519"), jwk, NULL), 0);
    assert_int_equal(jwks_count(set), 2);
    assert_int_equal(jwks_select(set, "ed25519", ALG_ES256, &k25519), -JWKS_EALG);
    assert_int_equal(jwks_select(set, "ed25519", ALG_EDDSA, &k25519), 0);
    assert_int_equal(jwks_select(set, "ed448", ALG_EDDSA, &k448), 0);

    n = sign_ed(fx.ed25519, sig, sizeof(sig));
    assert_int_equal(n, 64);
    expect_verifies(set, "ed25519", ALG_EDDSA, sig, n);
    assert_int_equal(verify_msg(k448, sig, n), -1);
    sig[5] ^= 0x20;
    assert_int_equal(verify_msg(k25519, sig, n), -1);
    n = sign_ed(fx.ed25519_other, sig, sizeof(sig));
    assert_int_equal(verify_msg(k25519, sig, n), -1);

    n = sign_ed(fx.ed448, sig, sizeof(sig));
    assert_int_equal(n, 114);
    expect_verifies(set, "ed448", ALG_EDDSA, sig, n);
    assert_int_equal(verify_msg(k25519, sig, 64), -1);
    n = sign_ed(fx.ed448_other, sig, sizeof(sig));
    assert_int_equal(verify_msg(k448, sig, n), -1);
    jwks_free(set);
}

static void test_okp_members(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    unsigned char x[64];
    cJSON *k;

    memset(x, 0x42, sizeof(x));
    k = unit_jwk_okp(fx.ed25519, "o", "X25519");
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("unsupported crv \"X25519\"");
    k = unit_jwk_okp(fx.ed25519, "o", "P-256");
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("unsupported crv");
    k = unit_jwk_okp(fx.ed25519, "o", "Ed25519");
    cJSON_DeleteItemFromObject(k, "crv");
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("OKP key needs crv");
    k = unit_jwk_okp(fx.ed25519, "o", "X25519");
    cJSON_AddStringToObject(k, "alg", "EdDSA");
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("EdDSA needs crv Ed25519 or Ed448");

    k = unit_jwk_okp(fx.ed25519, "o", "Ed25519");
    cJSON_DeleteItemFromObject(k, "x");
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("Ed25519 key needs x of 32 bytes");
    k = unit_jwk_okp(fx.ed25519, "o", "Ed25519");
    cJSON_ReplaceItemInObject(k, "x", cJSON_CreateNumber(1));
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("needs x of 32 bytes");
    static const size_t bad25519[] = {31, 33, 57};
    for (size_t i = 0; i < 3; i++) {
        k = unit_jwk_okp(fx.ed25519, "o", "Ed25519");
        cJSON_DeleteItemFromObject(k, "x");
        unit_json_add_b64url(k, "x", x, bad25519[i]);
        assert_int_equal(load_keys(set, k, NULL), -1);
        expect_err("Ed25519 key needs x of 32 bytes");
    }
    /* An Ed25519 key's x named Ed448. */
    k = unit_jwk_okp(fx.ed25519, "o", "Ed448");
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("Ed448 key needs x of 57 bytes");

    /* kty and alg must agree. */
    k = unit_jwk_okp(fx.ed25519, "o", "Ed25519");
    cJSON_AddStringToObject(k, "alg", "ES256");
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("kty OKP cannot carry ES256");
    k = unit_jwk_ec(fx.ec256, "e", "P-256", 32);
    cJSON_AddStringToObject(k, "alg", "EdDSA");
    assert_int_equal(load_keys(set, k, NULL), -1);
    expect_err("kty EC cannot carry EdDSA");
    assert_int_equal(load_keys(set, unit_jwk_rsa(fx.rsa, "r", "EdDSA"), NULL), -1);
    expect_err("kty RSA cannot carry EdDSA");
    assert_int_equal(jwks_count(set), 0);

    /* Two kid-less EdDSA keys are ambiguous, whatever their curves. */
    assert_int_equal(load_keys(set, unit_jwk_okp(fx.ed25519, NULL, "Ed25519"),
                               unit_jwk_okp(fx.ed448, NULL, "Ed448"), NULL),
                     -1);
    expect_err("two keys without kid for EdDSA");
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
        {"{\"keys\":[{\"kty\":\"foo\",\"alg\":\"RS256\"}]}", "unsupported kty \"foo\""},
        {"{\"keys\":[{\"kty\":\"oct\",\"key_ops\":\"verify\"}]}", "key_ops must be"},
        {"{\"keys\":[]} []", "is not a JWKS document"},
        {"{\"keys\":[]}x", "is not a JWKS document"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put(path, sizeof(path), "jwks.json", bad[i].text);
        fx.err[0] = '\0';
        assert_int_equal(jwks_load_file(set, path, NULL, fx.err, sizeof(fx.err)), -1);
        expect_err(bad[i].why);
    }
    /* White space may follow the document. */
    put(path, sizeof(path), "jwks.json", "{\"keys\":[]}\r\n \n");
    assert_int_equal(jwks_load_file(set, path, NULL, fx.err, sizeof(fx.err)), 0);
    /* kid: 256 bytes at most. */
    memset(kid, 'k', 257);
    kid[257] = '\0';
    assert_int_equal(load_keys(set, oct_jwk(kid, "HS256", 32), NULL), -1);
    expect_err("kid must be");
    kid[256] = '\0';
    assert_int_equal(load_keys(set, oct_jwk(kid, "HS256", 32), NULL), 0);

    unit_path_in(path, sizeof(path), fx.dir, "missing.json");
    assert_int_equal(jwks_load_file(set, path, NULL, fx.err, sizeof(fx.err)), -1);
    expect_err("cannot open");
    assert_int_equal(jwks_count(set), 1);
    jwks_free(set);
}

/* ---- documents from elsewhere: jwks_load_json() with options ------------- */

/* Without "alg", RSA and oct keys take the one algorithm of their type that
 * is accepted. */
static void test_alg_inferred_from_accepted(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    struct jwks_opts opts = {.algs = JWKS_ALG_BIT(ALG_RS256)};
    const struct jwk *k = NULL;
    unsigned char sig[512];
    size_t n;

    assert_int_equal(load_opts(set, &opts, unit_jwk_rsa(fx.rsa, "r", NULL), NULL), 0);
    assert_int_equal(jwks_select(set, "r", ALG_RS256, &k), 0);
    jwks_free(set);

    set = jwks_new();
    opts.algs = JWKS_ALG_BIT(ALG_PS384) | JWKS_ALG_BIT(ALG_ES256) | JWKS_ALG_BIT(ALG_HS512);
    assert_int_equal(load_opts(set, &opts, unit_jwk_rsa(fx.rsa, "r", NULL),
                               oct_jwk("h", NULL, 64), unit_jwk_ec(fx.ec256, "e", "P-256", 32),
                               NULL),
                     0);
    assert_string_equal(fx.err, "");
    n = sign_pss(fx.rsa, EVP_sha384(), RSA_PSS_SALTLEN_DIGEST, sig, sizeof(sig));
    expect_verifies(set, "r", ALG_PS384, sig, n);
    assert_int_equal(jwks_select(set, "h", ALG_HS512, &k), 0);
    assert_int_equal(jwks_select(set, "e", ALG_ES256, &k), 0);
    jwks_free(set);

    /* Two RSA algorithms: the key must say which. */
    set = jwks_new();
    opts.algs = JWKS_ALG_BIT(ALG_RS256) | JWKS_ALG_BIT(ALG_PS256);
    assert_int_equal(load_opts(set, &opts, unit_jwk_rsa(fx.rsa, "r", NULL), NULL), -1);
    expect_err("RSA key needs alg");
    assert_int_equal(load_opts(set, &opts, unit_jwk_rsa(fx.rsa, "r", "PS256"), NULL), 0);
    /* None of the key's type. */
    opts.algs = JWKS_ALG_BIT(ALG_ES256);
    assert_int_equal(load_opts(set, &opts, oct_jwk("h", NULL, 64), NULL), -1);
    expect_err("oct key needs alg, and no accepted algorithm (ES256) fits it");
    /* Every algorithm (0): RSA and oct keys need alg, as from a file. */
    assert_int_equal(load_opts(set, NULL, oct_jwk("h", NULL, 64), NULL), -1);
    expect_err("oct key needs alg");
    opts.algs = 0;
    assert_int_equal(load_opts(set, &opts, unit_jwk_rsa(fx.rsa, "r2", NULL), NULL), -1);
    expect_err("RSA key needs alg");
    /* An EC curve's algorithm must be accepted too. */
    opts.algs = JWKS_ALG_BIT(ALG_ES256);
    assert_int_equal(load_opts(set, &opts, unit_jwk_ec(fx.ec384, "e", "P-384", 48), NULL), -1);
    expect_err("ES384 is not an accepted algorithm (accepted: ES256)");
    assert_int_equal(jwks_count(set), 1);
    jwks_free(set);
}

static void test_max_keys(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    struct jwks_opts opts = {.max_keys = 2, .skip_unusable = true};
    cJSON *enc = unit_jwk_rsa(fx.rsa, "enc", "RS256");

    /* Every entry counts, used or not. */
    cJSON_AddStringToObject(enc, "use", "enc");
    assert_int_equal(load_opts(set, &opts, unit_jwk_ec(fx.ec256, "a", "P-256", 32),
                               unit_jwk_ec(fx.ec384, "b", "P-384", 48), enc, NULL),
                     -1);
    expect_err("\"https://idp.test/jwks\" holds 3 keys; at most 2 accepted");
    assert_int_equal(jwks_count(set), 0);
    opts.max_keys = 3;
    enc = unit_jwk_rsa(fx.rsa, "enc", "RS256");
    cJSON_AddStringToObject(enc, "use", "enc");
    assert_int_equal(load_opts(set, &opts, unit_jwk_ec(fx.ec256, "a", "P-256", 32),
                               unit_jwk_ec(fx.ec384, "b", "P-384", 48), enc, NULL),
                     0);
    assert_int_equal(jwks_count(set), 2);
    jwks_free(set);
}

/* A remote set: keys revokd cannot use are skipped and counted; the good
 * ones stay, and the first skip's reason is reported. */
static void test_skip_unusable(void **state)
{
    (void)state;
    struct jwks *set = jwks_new(), *strict = jwks_new();
    struct jwks_opts opts = {.algs = JWKS_ALG_BIT(ALG_RS256) | JWKS_ALG_BIT(ALG_ES256) |
                                     JWKS_ALG_BIT(ALG_EDDSA),
                             .max_keys = 20,
                             .skip_unusable = true};
    const struct jwk *k = NULL;
    cJSON *keys[14];

    /* A fresh copy of the document each time (loading consumes it). */
    for (int round = 0; round < 3; round++) {
        size_t i = 0;
        cJSON *c;
        keys[i++] = unit_jwk_rsa(fx.rsa, "good-rsa", "RS256");
        c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "kty", "foo");
        cJSON_AddStringToObject(c, "kid", "foo");
        keys[i++] = c;                                                   /* 1: unknown kty */
        keys[i++] = unit_jwk_rsa(fx.rsa1024, "weak", "RS256");           /* 2: 1024 bits */
        keys[i++] = unit_jwk_ec(fx.ec384, "p384", "P-384", 48);          /* 3: ES384 not accepted */
        keys[i++] = unit_jwk_ec(fx.ec256, "k1", "secp256k1", 32);        /* 4: unknown crv */
        keys[i++] = unit_jwk_rsa(fx.rsa, "ps", "PS256");                 /* 5: PS256 not accepted */
        keys[i++] = unit_jwk_rsa(fx.rsa, "odd", "RS999");                /* 6: unknown alg */
        c = unit_jwk_rsa(fx.rsa, "enc", "RS256");                        /* not used, not counted */
        cJSON_AddStringToObject(c, "use", "enc");
        keys[i++] = c;
        c = unit_jwk_rsa(fx.rsa, "signer", "RS256"); /* key_ops without verify: not counted */
        cJSON *ops = cJSON_AddArrayToObject(c, "key_ops");
        cJSON_AddItemToArray(ops, cJSON_CreateString("sign"));
        keys[i++] = c;
        c = unit_jwk_ec(fx.ec256, "good-ec", "P-256", 32); /* key_ops with verify: used */
        ops = cJSON_AddArrayToObject(c, "key_ops");
        cJSON_AddItemToArray(ops, cJSON_CreateString("sign"));
        cJSON_AddItemToArray(ops, cJSON_CreateString("verify"));
        keys[i++] = c;
        c = unit_jwk_okp(fx.ed25519, "bad-ops", "Ed25519"); /* 10: key_ops not an array */
        cJSON_AddStringToObject(c, "key_ops", "verify");
        keys[i++] = c;
        c = unit_jwk_okp(fx.ed25519, "bad-ops2", "Ed25519"); /* 11: key_ops with a number */
        ops = cJSON_AddArrayToObject(c, "key_ops");
        cJSON_AddItemToArray(ops, cJSON_CreateNumber(1));
        keys[i++] = c;
        keys[i++] = unit_jwk_okp(fx.ed448, "good-ed", "Ed448");
        keys[i++] = NULL;
        assert_int_equal(i, 14);

        if (round == 0) {
            assert_int_equal(load_opts(set, &opts, keys[0], keys[1], keys[2], keys[3], keys[4],
                                       keys[5], keys[6], keys[7], keys[8], keys[9], keys[10],
                                       keys[11], keys[12], NULL),
                             8);
            expect_err("\"https://idp.test/jwks\" key 1 skipped: unsupported kty \"foo\"");
            assert_int_equal(jwks_count(set), 3);
            assert_int_equal(jwks_select(set, "good-rsa", ALG_RS256, &k), 0);
            assert_int_equal(jwks_select(set, "good-ec", ALG_ES256, &k), 0);
            assert_int_equal(jwks_select(set, "good-ed", ALG_EDDSA, &k), 0);
            assert_int_equal(jwks_select(set, "enc", ALG_RS256, &k), -JWKS_ENOKEY);
            assert_int_equal(jwks_select(set, "signer", ALG_RS256, &k), -JWKS_ENOKEY);
            assert_int_equal(jwks_select(set, "weak", ALG_RS256, &k), -JWKS_ENOKEY);
            assert_int_equal(jwks_select(set, "ps", ALG_PS256, &k), -JWKS_ENOKEY);
        } else if (round == 1) {
            /* Strict (a file): the first unusable key fails the document,
             * and set stays as it was. */
            opts.skip_unusable = false;
            assert_int_equal(load_opts(strict, &opts, keys[0], keys[1], keys[2], keys[3], keys[4],
                                       keys[5], keys[6], keys[7], keys[8], keys[9], keys[10],
                                       keys[11], keys[12], NULL),
                             -1);
            expect_err("\"https://idp.test/jwks\" key 1: unsupported kty \"foo\"");
            assert_int_equal(jwks_count(strict), 0);
        } else {
            /* Skipping, but a duplicate kid fails the document as a whole:
             * here every usable key is already in set. */
            opts.skip_unusable = true;
            assert_int_equal(load_opts(set, &opts, keys[0], keys[1], keys[2], keys[3], keys[4],
                                       keys[5], keys[6], keys[7], keys[8], keys[9], keys[10],
                                       keys[11], keys[12], NULL),
                             -1);
            expect_err("key 0: duplicate kid \"good-rsa\"");
            assert_int_equal(jwks_count(set), 3);
        }
    }
    jwks_free(set);
    jwks_free(strict);
}

static void test_json_document(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    struct jwks_opts skip = {.skip_unusable = true};
    const struct jwk *k = NULL;

    /* Two usable keys under one kid: refused as a whole, even when skipping. */
    assert_int_equal(load_opts(set, &skip, unit_jwk_ec(fx.ec256, "same", "P-256", 32),
                               unit_jwk_okp(fx.ed25519, "same", "Ed25519"), NULL),
                     -1);
    expect_err("key 1: duplicate kid \"same\"");
    assert_int_equal(jwks_count(set), 0);

    /* The text need not end in NUL: only len bytes are read. */
    static const char text[] = "{\"keys\":[]}garbage";
    assert_int_equal(jwks_load_json(set, text, 11, "t", NULL, fx.err, sizeof(fx.err)), 0);
    assert_int_equal(jwks_load_json(set, text, sizeof(text) - 1, "t", NULL, fx.err,
                                    sizeof(fx.err)),
                     -1);
    expect_err("\"t\" is not a JWKS document");
    assert_int_equal(jwks_load_json(set, text, 10, "t", &skip, fx.err, sizeof(fx.err)), -1);
    assert_int_equal(jwks_load_json(set, "", 0, "t", &skip, fx.err, sizeof(fx.err)), -1);
    assert_int_equal(jwks_load_json(set, "{\"keys\":[1]}", 12, "t", &skip, NULL, 0), 1);
    assert_int_equal(jwks_load_json(set, "{\"keys\":7}", 10, "t", &skip, NULL, 0), -1);

    /* Every key of a good document, and err cleared. */
    strcpy(fx.err, "old");
    assert_int_equal(load_opts(set, &skip, unit_jwk_okp(fx.ed25519, "a", "Ed25519"),
                               unit_jwk_ec(fx.ec521, "b", "P-521", 66), NULL),
                     0);
    assert_string_equal(fx.err, "");
    assert_int_equal(jwks_select(set, "a", ALG_EDDSA, &k), 0);
    assert_int_equal(jwks_select(set, "b", ALG_ES512, &k), 0);
    /* Bits of no algorithm accept nothing; they do not mean "any". */
    struct jwks_opts none = {.algs = 1u << 30};
    assert_int_equal(load_opts(set, &none, unit_jwk_okp(fx.ed448, "c", "Ed448"), NULL), -1);
    expect_err("EdDSA is not an accepted algorithm");
    assert_int_equal(jwks_count(set), 2);
    jwks_free(set);
}

/* ---- subsets ------------------------------------------------------------ */

static void test_subset(void **state)
{
    (void)state;
    struct jwks *a = jwks_new(), *b = jwks_new(), *fewer = jwks_new(), *changed = jwks_new(),
                *realg = jwks_new(), *secret = jwks_new(), *empty = jwks_new();
    char path[PATH_MAX + 32];

    assert_int_equal(load_keys(a, unit_jwk_rsa(fx.rsa, "r", "RS256"),
                               unit_jwk_okp(fx.ed25519, "ed", "Ed25519"),
                               oct_jwk("h", "HS256", 32), NULL),
                     0);
    /* The same keys in another order, from another document. */
    assert_int_equal(load_keys(b, oct_jwk("h", "HS256", 32),
                               unit_jwk_okp(fx.ed25519, "ed", "Ed25519"),
                               unit_jwk_rsa(fx.rsa, "r", "RS256"), NULL),
                     0);
    assert_true(jwks_subset(a, b));
    assert_true(jwks_subset(b, a));
    assert_true(jwks_subset(a, a));

    /* A key removed: a is no subset of it; the other way round, a key added. */
    assert_int_equal(load_keys(fewer, unit_jwk_rsa(fx.rsa, "r", "RS256"),
                               oct_jwk("h", "HS256", 32), NULL),
                     0);
    assert_false(jwks_subset(a, fewer));
    assert_true(jwks_subset(fewer, a));

    /* Other material under the same kid. */
    assert_int_equal(load_keys(changed, unit_jwk_rsa(fx.rsa_other, "r", "RS256"),
                               unit_jwk_okp(fx.ed25519, "ed", "Ed25519"),
                               oct_jwk("h", "HS256", 32), NULL),
                     0);
    assert_false(jwks_subset(a, changed));
    assert_false(jwks_subset(changed, a));
    /* The same material pinned to another algorithm. */
    assert_int_equal(load_keys(realg, unit_jwk_rsa(fx.rsa, "r", "PS256"),
                               unit_jwk_okp(fx.ed25519, "ed", "Ed25519"),
                               oct_jwk("h", "HS256", 32), NULL),
                     0);
    assert_false(jwks_subset(a, realg));
    /* Another secret under the same kid; the same secret under another kid. */
    unsigned char other[32];
    memset(other, 7, sizeof(other));
    assert_int_equal(load_keys(secret, unit_jwk_rsa(fx.rsa, "r", "RS256"),
                               unit_jwk_okp(fx.ed25519, "ed", "Ed25519"),
                               unit_jwk_oct("h", "HS256", other, sizeof(other)),
                               oct_jwk("h2", "HS256", 32), NULL),
                     0);
    assert_false(jwks_subset(a, secret));
    assert_true(jwks_subset(fewer, fewer));

    /* Kid-less keys match kid-less keys of the same algorithm only. */
    write_pem_public("ed25519.pem", fx.ed25519, path, sizeof(path));
    struct jwks *pem1 = jwks_new(), *pem2 = jwks_new();
    assert_int_equal(jwks_load_pem(pem1, path, NULL, 0, fx.err, sizeof(fx.err)), 0);
    assert_int_equal(jwks_load_pem(pem2, path, NULL, 0, fx.err, sizeof(fx.err)), 0);
    assert_true(jwks_subset(pem1, pem2));
    assert_false(jwks_subset(pem1, a)); /* a has the key, but under kid "ed" */

    /* The empty set (and NULL) is a subset of every set. */
    assert_true(jwks_subset(empty, a));
    assert_true(jwks_subset(NULL, a));
    assert_true(jwks_subset(empty, NULL));
    assert_false(jwks_subset(a, empty));
    assert_false(jwks_subset(a, NULL));

    struct jwks *all[] = {a, b, fewer, changed, realg, secret, empty, pem1, pem2};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        jwks_free(all[i]);
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
    assert_int_equal(jwks_load_pem(set, path, NULL, 0, fx.err, sizeof(fx.err)), -1);
    expect_err("private key");
    assert_int_equal(jwks_load_pem(set, path, "ES256", 0, fx.err, sizeof(fx.err)), -1);
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
    assert_int_equal(jwks_load_pem(set, path, NULL, 0, fx.err, sizeof(fx.err)), 0);
    write_pem_public("ec256.pem", fx.ec256, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, "", 0, fx.err, sizeof(fx.err)), 0);
    write_pem_public("ec384.pem", fx.ec384, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, NULL, 0, fx.err, sizeof(fx.err)), 0);
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
    assert_int_equal(jwks_load_pem(set, path, "RS256", 0, fx.err, sizeof(fx.err)), -1);
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
    assert_int_equal(jwks_load_pem(set, path, "RS512", 0, fx.err, sizeof(fx.err)), 0);
    assert_int_equal(jwks_select(set, NULL, ALG_RS512, &k), 0);
    assert_int_equal(jwks_select(set, NULL, ALG_RS256, &k), -JWKS_ENOKEY);

    assert_int_equal(jwks_load_pem(set, path, "ES256", 0, fx.err, sizeof(fx.err)), -1);
    expect_err("ES256 needs an EC key on curve prime256v1");
    assert_int_equal(jwks_load_pem(set, path, "HS256", 0, fx.err, sizeof(fx.err)), -1);
    expect_err("no usable algorithm");
    assert_int_equal(jwks_load_pem(set, path, "none", 0, fx.err, sizeof(fx.err)), -1);
    expect_err("no usable algorithm");

    write_pem_public("ec256.pem", fx.ec256, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, "ES384", 0, fx.err, sizeof(fx.err)), -1);
    expect_err("curve secp384r1");
    assert_int_equal(jwks_load_pem(set, path, "RS256", 0, fx.err, sizeof(fx.err)), -1);
    expect_err("needs an RSA key");

    write_pem_public("rsa1024.pem", fx.rsa1024, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, NULL, 0, fx.err, sizeof(fx.err)), -1);
    expect_err("RSA key of 1024 bits; 2048 to 8192 required");

    put(path, sizeof(path), "garbage.pem",
        "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n");
    assert_int_equal(jwks_load_pem(set, path, NULL, 0, fx.err, sizeof(fx.err)), -1);
    expect_err("is not a PEM public key");
    unit_path_in(path, sizeof(path), fx.dir, "missing.pem");
    assert_int_equal(jwks_load_pem(set, path, NULL, 0, fx.err, sizeof(fx.err)), -1);
    expect_err("cannot open");
    assert_int_equal(jwks_count(set), 1);
    jwks_free(set);
}

static void test_pem_new_algorithms(void **state)
{
    (void)state;
    struct jwks *set = jwks_new(), *set2 = jwks_new();
    char path[PATH_MAX + 32];
    const struct jwk *k = NULL;
    unsigned char sig[512];
    size_t n;

    /* Inferred: EdDSA for Ed25519 and Ed448, ES512 for P-521. */
    write_pem_public("ed25519.pem", fx.ed25519, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, NULL, 0, fx.err, sizeof(fx.err)), 0);
    n = sign_ed(fx.ed25519, sig, sizeof(sig));
    expect_verifies(set, NULL, ALG_EDDSA, sig, n);
    write_pem_public("ed448.pem", fx.ed448, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set2, path, "EdDSA", 0, fx.err, sizeof(fx.err)), 0);
    n = sign_ed(fx.ed448, sig, sizeof(sig));
    expect_verifies(set2, NULL, ALG_EDDSA, sig, n);
    write_pem_public("ec521.pem", fx.ec521, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, "", 0, fx.err, sizeof(fx.err)), 0);
    n = sign_ec(fx.ec521, EVP_sha512(), 66, sig);
    expect_verifies(set, NULL, ALG_ES512, sig, n);
    assert_int_equal(jwks_load_pem(set, path, "ES384", 0, fx.err, sizeof(fx.err)), -1);
    expect_err("ES384 needs an EC key on curve secp384r1");

    /* An RSA key infers RS256; PS* only when configured. */
    write_pem_public("rsa.pem", fx.rsa, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, NULL, 0, fx.err, sizeof(fx.err)), 0);
    assert_int_equal(jwks_select(set, NULL, ALG_PS256, &k), -JWKS_ENOKEY);
    assert_int_equal(jwks_load_pem(set, path, "PS384", 0, fx.err, sizeof(fx.err)), 0);
    n = sign_pss(fx.rsa, EVP_sha384(), RSA_PSS_SALTLEN_DIGEST, sig, sizeof(sig));
    expect_verifies(set, NULL, ALG_PS384, sig, n);
    assert_int_equal(jwks_select(set, NULL, ALG_RS256, &k), 0);
    assert_int_equal(verify_msg(k, sig, n), -1);

    /* Keys of other types. */
    assert_int_equal(jwks_load_pem(set, path, "EdDSA", 0, fx.err, sizeof(fx.err)), -1);
    expect_err("EdDSA needs an Ed25519 or Ed448 key");
    write_pem_public("ed25519.pem", fx.ed25519, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, "ES256", 0, fx.err, sizeof(fx.err)), -1);
    expect_err("needs an EC key");
    assert_int_equal(jwks_load_pem(set, path, "PS256", 0, fx.err, sizeof(fx.err)), -1);
    expect_err("PS256 needs an RSA key");
    assert_int_equal(jwks_count(set), 4);
    assert_int_equal(jwks_count(set2), 1);
    jwks_free(set);
    jwks_free(set2);
}

/* jwks_load_pem() and jwks_load_hmac() with a set of accepted algorithms. */
static void test_pem_and_hmac_accepted_algs(void **state)
{
    (void)state;
    struct jwks *set = jwks_new();
    char path[PATH_MAX + 32];
    const struct jwk *k = NULL;

    write_pem_public("rsa.pem", fx.rsa, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, NULL, JWKS_ALG_BIT(ALG_PS256), fx.err,
                                   sizeof(fx.err)),
                     -1);
    expect_err("RS256 is not an accepted algorithm (accepted: PS256)");
    expect_err("inferred");
    assert_int_equal(jwks_load_pem(set, path, "RS512", JWKS_ALG_BIT(ALG_PS256) | JWKS_ALG_BIT(ALG_RS256),
                                   fx.err, sizeof(fx.err)),
                     -1);
    expect_err("RS512 is not an accepted algorithm (accepted: RS256, PS256)");
    assert_int_equal(jwks_load_pem(set, path, "PS256", JWKS_ALG_BIT(ALG_PS256), fx.err,
                                   sizeof(fx.err)),
                     0);
    assert_int_equal(jwks_select(set, NULL, ALG_PS256, &k), 0);

    write_pem_public("ed25519.pem", fx.ed25519, path, sizeof(path));
    assert_int_equal(jwks_load_pem(set, path, NULL, JWKS_ALG_BIT(ALG_ES256), fx.err,
                                   sizeof(fx.err)),
                     -1);
    expect_err("EdDSA is not an accepted algorithm");
    assert_int_equal(jwks_load_pem(set, path, NULL, JWKS_ALG_BIT(ALG_EDDSA), fx.err,
                                   sizeof(fx.err)),
                     0);

    unit_path_in(path, sizeof(path), fx.dir, "secret");
    unit_write_file(path, "0123456789abcdef0123456789abcdef0123456789abcdef", 48);
    assert_int_equal(jwks_load_hmac(set, path, "HS256", JWKS_ALG_BIT(ALG_HS384), fx.err,
                                    sizeof(fx.err)),
                     -1);
    expect_err("HS256 is not an accepted algorithm (accepted: HS384)");
    assert_int_equal(jwks_load_hmac(set, path, "HS384", JWKS_ALG_BIT(ALG_HS384), fx.err,
                                    sizeof(fx.err)),
                     0);
    assert_int_equal(jwks_count(set), 3);
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
    assert_int_equal(jwks_load_hmac(set, path, "HS256", 0, fx.err, sizeof(fx.err)), 0);
    assert_int_equal(jwks_select(set, NULL, ALG_HS256, &k), 0);
    HMAC(EVP_sha256(), secret, 32, (const unsigned char *)msg, strlen(msg), mac, &maclen);
    assert_int_equal(verify_msg(k, mac, maclen), 0);
    HMAC(EVP_sha256(), secret, 33, (const unsigned char *)msg, strlen(msg), mac, &maclen);
    assert_int_equal(verify_msg(k, mac, maclen), -1);

    /* 31 bytes and a newline are too short for HS256. */
    unit_write_file(path, "0123456789abcdef0123456789abcde\n", 32);
    assert_int_equal(jwks_load_hmac(set, path, "HS384", 0, fx.err, sizeof(fx.err)), -1);
    expect_err("at least 48");
    assert_int_equal(jwks_load_hmac(set, path, "HS256", 0, fx.err, sizeof(fx.err)), -1);
    expect_err("HS256 secret of 31 bytes");
    assert_int_equal(jwks_load_hmac(set, path, "RS256", 0, fx.err, sizeof(fx.err)), -1);
    expect_err("is not HS256, HS384 or HS512");
    assert_int_equal(jwks_load_hmac(set, path, "hs256", 0, fx.err, sizeof(fx.err)), -1);
    unit_path_in(path, sizeof(path), fx.dir, "empty");
    unit_write_file(path, "", 0);
    assert_int_equal(jwks_load_hmac(set, path, "HS256", 0, fx.err, sizeof(fx.err)), -1);
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
        cmocka_unit_test(test_algs_parse),
        cmocka_unit_test(test_rsa_needs_alg),
        cmocka_unit_test(test_rsa_verifies_with_pinned_alg),
        cmocka_unit_test(test_rsa_1024_refused),
        cmocka_unit_test(test_rsa_over_8192_refused),
        cmocka_unit_test(test_rsa_bad_members),
        cmocka_unit_test(test_pss_verifies),
        cmocka_unit_test(test_pss_1024_refused),
        cmocka_unit_test(test_ec_alg_from_curve),
        cmocka_unit_test(test_ec_curve_and_alg_must_agree),
        cmocka_unit_test(test_ec_wrong_coordinate_length),
        cmocka_unit_test(test_ec_point_not_on_curve),
        cmocka_unit_test(test_es512),
        cmocka_unit_test(test_eddsa_verifies),
        cmocka_unit_test(test_okp_members),
        cmocka_unit_test(test_oct_secret_length),
        cmocka_unit_test(test_use_enc_skipped),
        cmocka_unit_test(test_duplicate_kid_refused),
        cmocka_unit_test(test_failed_load_leaves_set_unchanged),
        cmocka_unit_test(test_two_kidless_keys_same_alg),
        cmocka_unit_test(test_not_a_jwks),
        cmocka_unit_test(test_alg_inferred_from_accepted),
        cmocka_unit_test(test_max_keys),
        cmocka_unit_test(test_skip_unusable),
        cmocka_unit_test(test_json_document),
        cmocka_unit_test(test_subset),
        cmocka_unit_test(test_pem_private_key_refused),
        cmocka_unit_test(test_pem_infers_alg),
        cmocka_unit_test(test_pem_explicit_alg),
        cmocka_unit_test(test_pem_new_algorithms),
        cmocka_unit_test(test_pem_and_hmac_accepted_algs),
        cmocka_unit_test(test_hmac_secret_file),
        cmocka_unit_test(test_select),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
