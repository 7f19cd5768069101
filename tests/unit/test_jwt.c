/* test_jwt.c - jwt_verify() and jwt_check_times() against tokens built
 * here: HS256 (jwks_load_hmac), HS384, RS256, ES256 and ES384 (one JWKS file),
 * each key generated or chosen by the test and written to a temporary dir.
 * The tests' own base64url (unit_util.c: OpenSSL's encoder, alphabet
 * swapped) and HMAC keep the expectations independent of the code under
 * test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "revokd/jwks.h"
#include "revokd/jwt.h"

#include "unit_util.h"

#define ISS "https://issuer.example"
#define AUD "revokd-api"
#define IAT 1700000000
#define EXP 1700000600
#define ISS_AUD "\"iss\":\"" ISS "\",\"aud\":\"" AUD "\""
#define TIMES "\"iat\":1700000000,\"exp\":1700000600"
/* A payload every test policy accepts. */
#define GOOD_PAYLOAD "{" ISS_AUD ",\"sub\":\"user-1\",\"jti\":\"id-1\"," TIMES ",\"nbf\":1700000100}"

enum signer { S_HS256, S_HS384, S_RS256, S_ES256, S_ES384, S_WRONG_HS256 };

static struct {
    char dir[PATH_MAX];
    EVP_PKEY *rsa, *ec256, *ec384;
    unsigned char hs256[40], hs384[48];
    struct jwks *keys;
    struct jwt_policy policy;
    struct jwt_trust trust; /* the one issuer, policy */
    char *aud[1];
    unsigned char last_sig[512]; /* the signature the last make_token() made */
    size_t last_sig_len;
} fx;

/* ---- helpers: encoding, signing ---------------------------------------- */

/* base64url of a string, malloc'd; written with OpenSSL, not b64url.c. */
static char *b64s(const char *s)
{
    return unit_b64url(s, strlen(s));
}

static char *join3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *out = malloc(la + lb + lc + 3);
    assert_non_null(out);
    memcpy(out, a, la);
    out[la] = '.';
    memcpy(out + la + 1, b, lb);
    out[la + 1 + lb] = '.';
    memcpy(out + la + 2 + lb, c, lc + 1);
    return out;
}

static size_t hmac(const EVP_MD *md, const void *key, size_t keylen, const void *msg, size_t len,
                   unsigned char *sig)
{
    unsigned int n = 0;
    assert_non_null(HMAC(md, key, (int)keylen, msg, len, sig, &n));
    return n;
}

static size_t sign(enum signer s, const char *msg, size_t len, unsigned char *sig)
{
    switch (s) {
    case S_HS256:
        return hmac(EVP_sha256(), fx.hs256, sizeof(fx.hs256), msg, len, sig);
    case S_WRONG_HS256: {
        unsigned char other[sizeof(fx.hs256)];
        memcpy(other, fx.hs256, sizeof(other));
        other[0] ^= 1;
        return hmac(EVP_sha256(), other, sizeof(other), msg, len, sig);
    }
    case S_HS384:
        return hmac(EVP_sha384(), fx.hs384, sizeof(fx.hs384), msg, len, sig);
    case S_RS256:
        return unit_sign(fx.rsa, EVP_sha256(), msg, len, sig, 512);
    case S_ES256:
        return unit_sign_ecdsa_jws(fx.ec256, EVP_sha256(), msg, len, 32, sig);
    case S_ES384:
        return unit_sign_ecdsa_jws(fx.ec384, EVP_sha384(), msg, len, 48, sig);
    }
    fail();
    return 0;
}

/* hdr.payload (both already base64url) signed by s; malloc'd. */
static char *make_token_raw(const char *hdr, const char *payload, enum signer s)
{
    char *input = join3(hdr, payload, "");
    size_t len = strlen(input) - 1; /* without the trailing '.' */
    fx.last_sig_len = sign(s, input, len, fx.last_sig);
    char *sig = unit_b64url(fx.last_sig, fx.last_sig_len);
    char *tok = join3(hdr, payload, sig);
    free(sig);
    free(input);
    return tok;
}

static char *make_token(const char *hdr_json, const char *payload_json, enum signer s)
{
    char *h = b64s(hdr_json), *p = b64s(payload_json);
    char *tok = make_token_raw(h, p, s);
    free(h);
    free(p);
    return tok;
}

static const char *header_for(enum signer s)
{
    switch (s) {
    case S_HS256:
    case S_WRONG_HS256:
        return "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    case S_HS384:
        return "{\"alg\":\"HS384\",\"kid\":\"hs384\"}";
    case S_RS256:
        return "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"typ\":\"at+jwt\"}";
    case S_ES256:
        return "{\"alg\":\"ES256\",\"kid\":\"ec256\"}";
    case S_ES384:
        return "{\"alg\":\"ES384\",\"kid\":\"ec384\"}";
    }
    return NULL;
}

static int verify(const char *tok, struct jwt_claims *c)
{
    return jwt_verify(&fx.trust, tok, strlen(tok), c);
}

/* Signs payload_json with the kid-less HS256 key and verifies it. */
static int verify_payload(const char *payload_json, struct jwt_claims *c)
{
    char *tok = make_token(header_for(S_HS256), payload_json, S_HS256);
    int rc = verify(tok, c);
    free(tok);
    return rc;
}

static int verify_header(const char *hdr_json, enum signer s)
{
    struct jwt_claims c;
    char *tok = make_token(hdr_json, GOOD_PAYLOAD, s);
    int rc = verify(tok, &c);
    free(tok);
    return rc;
}

static void expect_payload(const char *payload_json, int reason)
{
    struct jwt_claims c;
    int rc = verify_payload(payload_json, &c);
    if (rc != -reason)
        print_error("payload %s: got %s, want %s\n", payload_json, jwt_reason_name(rc),
                    jwt_reason_name(reason));
    assert_int_equal(rc, -reason);
}

/* ---- fixture ------------------------------------------------------------ */

static void default_policy(void)
{
    fx.aud[0] = (char *)AUD;
    fx.policy = (struct jwt_policy){
        .keys = fx.keys,
        .issuer = ISS,
        .audiences = fx.aud,
        .n_audiences = 1,
        .leeway = 30,
        .max_lifetime = 3600,
    };
    fx.trust = (struct jwt_trust){.issuers = &fx.policy, .n = 1, .max_token_bytes = 8192};
}

static int group_setup(void **state)
{
    (void)state;
    char path[PATH_MAX + 32], err[256] = "";

    if (unit_tmpdir_create(fx.dir, sizeof(fx.dir)) != 0)
        return -1;
    fx.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fx.ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fx.ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (fx.rsa == NULL || fx.ec256 == NULL || fx.ec384 == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(fx.hs256); i++)
        fx.hs256[i] = (unsigned char)('A' + i % 26);
    for (size_t i = 0; i < sizeof(fx.hs384); i++)
        fx.hs384[i] = (unsigned char)(i * 5 + 1);

    cJSON *rsa = unit_jwk_rsa(fx.rsa, "rsa1", "RS256");
    cJSON_AddStringToObject(rsa, "use", "sig");
    unit_path_in(path, sizeof(path), fx.dir, "jwks.json");
    unit_write_jwks(path, rsa, unit_jwk_ec(fx.ec256, "ec256", "P-256", 32),
                    unit_jwk_ec(fx.ec384, "ec384", "P-384", 48),
                    unit_jwk_oct("hs384", "HS384", fx.hs384, sizeof(fx.hs384)), NULL);

    fx.keys = jwks_new();
    if (jwks_load_file(fx.keys, path, NULL, err, sizeof(err)) != 0) {
        print_error("jwks_load_file: %s\n", err);
        return -1;
    }
    /* The secret file ends with a newline, as editors leave it. */
    unsigned char secret[sizeof(fx.hs256) + 1];
    memcpy(secret, fx.hs256, sizeof(fx.hs256));
    secret[sizeof(fx.hs256)] = '\n';
    unit_path_in(path, sizeof(path), fx.dir, "hs256.secret");
    unit_write_file(path, secret, sizeof(secret));
    if (jwks_load_hmac(fx.keys, path, "HS256", 0, err, sizeof(err)) != 0) {
        print_error("jwks_load_hmac: %s\n", err);
        return -1;
    }
    if (jwks_count(fx.keys) != 5)
        return -1;
    default_policy();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    static const char *const files[] = {"jwks.json", "hs256.secret"};

    unit_tmpdir_remove(fx.dir, files, sizeof(files) / sizeof(files[0]));
    jwks_free(fx.keys);
    EVP_PKEY_free(fx.rsa);
    EVP_PKEY_free(fx.ec256);
    EVP_PKEY_free(fx.ec384);
    return 0;
}

static int reset_policy(void **state)
{
    (void)state;
    default_policy();
    return 0;
}

/* ---- valid tokens ------------------------------------------------------- */

static void assert_good_claims(const struct jwt_claims *c)
{
    assert_string_equal(c->jti, "id-1");
    assert_false(c->jti_derived);
    assert_true(c->has_sub);
    assert_string_equal(c->sub, "user-1");
    assert_true(c->has_iss);
    assert_string_equal(c->iss, ISS);
    assert_int_equal(c->iat, IAT);
    assert_int_equal(c->exp, EXP);
    assert_true(c->has_nbf);
    assert_int_equal(c->nbf, IAT + 100);
}

static void test_valid_every_algorithm(void **state)
{
    (void)state;
    static const enum signer all[] = {S_HS256, S_HS384, S_RS256, S_ES256, S_ES384};

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        struct jwt_claims c;
        memset(&c, 0x5a, sizeof(c));
        char *tok = make_token(header_for(all[i]), GOOD_PAYLOAD, all[i]);
        int rc = verify(tok, &c);
        if (rc != 0)
            print_error("signer %zu: %s\n", i, jwt_reason_name(rc));
        assert_int_equal(rc, 0);
        assert_good_claims(&c);
        free(tok);
    }
}

static void test_valid_minimal_claims(void **state)
{
    (void)state;
    struct jwt_claims c;

    fx.policy.issuer = "";
    fx.policy.n_audiences = 0;
    assert_int_equal(verify_payload("{\"jti\":\"j\"," TIMES "}", &c), 0);
    assert_string_equal(c.jti, "j");
    assert_false(c.has_sub);
    assert_false(c.has_iss);
    assert_false(c.has_nbf);
    assert_string_equal(c.sub, "");
    assert_string_equal(c.iss, "");
    /* Fractions are allowed and truncated. */
    assert_int_equal(verify_payload("{\"iat\":100.9,\"exp\":200.5,\"nbf\":150.2}", &c), 0);
    assert_int_equal(c.iat, 100);
    assert_int_equal(c.exp, 200);
    assert_int_equal(c.nbf, 150);
    /* iat == exp and 0 are in range; so is 9999-12-31T23:59:59Z. */
    assert_int_equal(verify_payload("{\"iat\":0,\"exp\":0}", &c), 0);
    fx.policy.max_lifetime = 315360000;
    assert_int_equal(verify_payload("{\"iat\":253402300000,\"exp\":253402300799}", &c), 0);
    assert_int_equal(c.exp, 253402300799LL);
}

static void test_valid_typ_values(void **state)
{
    (void)state;
    assert_int_equal(verify_header("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", S_HS256), 0);
    assert_int_equal(verify_header("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", S_HS256), 0);
    assert_int_equal(verify_header("{\"alg\":\"HS256\",\"typ\":\"application/at+jwt\"}", S_HS256),
                     0);
    assert_int_equal(verify_header("{\"alg\":\"HS256\"}", S_HS256), 0);
}

/* ---- malformed ---------------------------------------------------------- */

static void test_missing_token(void **state)
{
    (void)state;
    struct jwt_claims c;
    assert_int_equal(jwt_verify(&fx.trust, "", 0, &c), -JWT_missing_token);
}

static void test_malformed_segment_count(void **state)
{
    (void)state;
    struct jwt_claims c;
    char *tok = make_token(header_for(S_HS256), GOOD_PAYLOAD, S_HS256);
    size_t len = strlen(tok);
    char *last_dot = strrchr(tok, '.');

    assert_int_equal(verify(tok, &c), 0);
    /* Two segments: header.payload. */
    assert_int_equal(jwt_verify(&fx.trust, tok, (size_t)(last_dot - tok), &c), -JWT_malformed);
    /* One segment. */
    assert_int_equal(jwt_verify(&fx.trust, tok, (size_t)(strchr(tok, '.') - tok), &c),
                     -JWT_malformed);
    /* Four segments, the fourth good base64url. */
    char *four = malloc(len + 6);
    memcpy(four, tok, len);
    memcpy(four + len, ".QUJD", 6);
    assert_int_equal(verify(four, &c), -JWT_malformed);
    /* A trailing dot makes an empty fourth segment. */
    four[len + 1] = '\0';
    assert_int_equal(verify(four, &c), -JWT_malformed);
    free(four);
    free(tok);
}

static void test_malformed_empty_segment(void **state)
{
    (void)state;
    struct jwt_claims c;
    char *h = b64s(header_for(S_HS256)), *p = b64s(GOOD_PAYLOAD);
    char *tok = make_token_raw(h, p, S_HS256);
    char *sig = unit_b64url(fx.last_sig, fx.last_sig_len);
    char *t;

    assert_int_equal(verify(tok, &c), 0);
    t = join3("", p, sig);
    assert_int_equal(verify(t, &c), -JWT_malformed);
    free(t);
    t = join3(h, "", sig);
    assert_int_equal(verify(t, &c), -JWT_malformed);
    free(t);
    t = join3(h, p, "");
    assert_int_equal(verify(t, &c), -JWT_malformed);
    free(t);
    assert_int_equal(verify("..", &c), -JWT_malformed);
    assert_int_equal(verify(".", &c), -JWT_malformed);
    assert_int_equal(verify("...", &c), -JWT_malformed);
    free(sig);
    free(tok);
    free(h);
    free(p);
}

static void test_malformed_bad_base64(void **state)
{
    (void)state;
    struct jwt_claims c;
    char *h = b64s(header_for(S_HS256)), *p = b64s(GOOD_PAYLOAD);
    char *tok = make_token_raw(h, p, S_HS256);
    char *sig = unit_b64url(fx.last_sig, fx.last_sig_len);
    char buf[512], *t;

    /* Header: padding, '+', whitespace. */
    snprintf(buf, sizeof(buf), "%s==", h);
    t = join3(buf, p, sig);
    assert_int_equal(verify(t, &c), -JWT_malformed);
    free(t);
    snprintf(buf, sizeof(buf), "+%s", h + 1);
    t = join3(buf, p, sig);
    assert_int_equal(verify(t, &c), -JWT_malformed);
    free(t);
    snprintf(buf, sizeof(buf), " %s", h);
    t = join3(buf, p, sig);
    assert_int_equal(verify(t, &c), -JWT_malformed);
    free(t);

    /* Signature: a bad character is malformed, not a bad signature. */
    snprintf(buf, sizeof(buf), "/%s", sig + 1);
    t = join3(h, p, buf);
    assert_int_equal(verify(t, &c), -JWT_malformed);
    free(t);
    snprintf(buf, sizeof(buf), "%s=", sig);
    t = join3(h, p, buf);
    assert_int_equal(verify(t, &c), -JWT_malformed);
    free(t);
    snprintf(buf, sizeof(buf), "%s\n", sig);
    t = join3(h, p, buf);
    assert_int_equal(verify(t, &c), -JWT_malformed);
    free(t);
    /* Non-zero unused bits in the signature's last character: 32 bytes
     * leave 2 unused bits, so the last character is one of 16. */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(sig);
    snprintf(buf, sizeof(buf), "%s", sig);
    const char *at = strchr(alphabet, buf[n - 1]);
    assert_non_null(at);
    assert_int_equal((at - alphabet) & 3, 0);
    buf[n - 1] = alphabet[(at - alphabet) | 1];
    t = join3(h, p, buf);
    assert_int_equal(verify(t, &c), -JWT_malformed);
    free(t);

    /* Payload: the signature covers the bad text, so only decoding can
     * refuse it. */
    snprintf(buf, sizeof(buf), "%s+", p);
    t = make_token_raw(h, buf, S_HS256);
    assert_int_equal(verify(t, &c), -JWT_malformed);
    free(t);
    snprintf(buf, sizeof(buf), "%s=", p);
    t = make_token_raw(h, buf, S_HS256);
    assert_int_equal(verify(t, &c), -JWT_malformed);
    free(t);

    free(sig);
    free(tok);
    free(h);
    free(p);
}

static void test_malformed_header(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "[\"HS256\"]",
        "\"HS256\"",
        "null",
        "42",
        "alg",
        "{\"alg\":\"HS256\"",
        "{\"alg\":\"HS256\"}x",
        "{\"alg\":\"HS256\"}{}",
        "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", /* duplicate member */
        "{\"typ\":\"JWT\"}",                     /* no alg */
        "{\"alg\":256}",
        "{\"alg\":\"HS256\",\"typ\":\"JWE\"}",
        "{\"alg\":\"HS256\",\"typ\":7}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"HS256\",\"kid\":7}",
        "{\"alg\":\"HS256\",\"kid\":\"\"}",
        "{\"alg\":\"HS256\",\"kid\":\"a\\u0000b\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = verify_header(bad[i], S_HS256);
        if (rc != -JWT_malformed)
            print_error("header %s: got %s\n", bad[i], jwt_reason_name(rc));
        assert_int_equal(rc, -JWT_malformed);
    }
    /* kid: 256 bytes is a name (unknown here), 257 is malformed. */
    char hdr[400];
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"HS256\",\"kid\":\"%0256d\"}", 0);
    assert_int_equal(verify_header(hdr, S_HS256), -JWT_unknown_key);
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"HS256\",\"kid\":\"%0257d\"}", 0);
    assert_int_equal(verify_header(hdr, S_HS256), -JWT_malformed);
}

static void test_malformed_payload_not_object(void **state)
{
    (void)state;
    expect_payload("[" TIMES "]", JWT_malformed);
    expect_payload("[]", JWT_malformed);
    expect_payload("42", JWT_malformed);
    expect_payload("\"claims\"", JWT_malformed);
    expect_payload("null", JWT_malformed);
    expect_payload("true", JWT_malformed);
    expect_payload("{" TIMES, JWT_malformed);
}

static void test_malformed_duplicate_claims(void **state)
{
    (void)state;
    expect_payload("{" ISS_AUD "," TIMES ",\"sub\":\"a\",\"sub\":\"b\"}", JWT_malformed);
    expect_payload("{" ISS_AUD "," TIMES ",\"exp\":1700000601}", JWT_malformed);
    expect_payload("{" ISS_AUD "," TIMES ",\"iss\":\"" ISS "\"}", JWT_malformed);
    /* Same name in different case is two claims. */
    expect_payload("{" ISS_AUD "," TIMES ",\"sub\":\"a\",\"Sub\":\"b\"}", JWT_OK);
}

static void test_malformed_nul(void **state)
{
    (void)state;
    struct jwt_claims c;

    expect_payload("{" ISS_AUD "," TIMES ",\"sub\":\"admin\\u0000x\"}", JWT_malformed);
    expect_payload("{" ISS_AUD "," TIMES ",\"jti\":\"\\u0000\"}", JWT_malformed);
    expect_payload("{" ISS_AUD "," TIMES ",\"x\\u0000\":1}", JWT_malformed);
    /* A raw NUL byte inside the decoded payload. */
    static const char raw[] = "{" ISS_AUD "," TIMES ",\"sub\":\"a\"}\0{\"sub\":\"b\"}";
    char *h = b64s(header_for(S_HS256)), *p = unit_b64url(raw, sizeof(raw) - 1);
    char *tok = make_token_raw(h, p, S_HS256);
    assert_int_equal(verify(tok, &c), -JWT_malformed);
    free(tok);
    free(h);
    free(p);
}

static void test_malformed_trailing_garbage(void **state)
{
    (void)state;
    expect_payload(GOOD_PAYLOAD "x", JWT_malformed);
    expect_payload(GOOD_PAYLOAD "{}", JWT_malformed);
    expect_payload(GOOD_PAYLOAD ",", JWT_malformed);
    expect_payload(GOOD_PAYLOAD "}", JWT_malformed);
    /* Whitespace around the object is JSON, not garbage. */
    expect_payload(" " GOOD_PAYLOAD "\n", JWT_OK);
}

static void test_malformed_over_max_token_bytes(void **state)
{
    (void)state;
    struct jwt_claims c;
    char *tok = make_token(header_for(S_HS256), GOOD_PAYLOAD, S_HS256);
    size_t len = strlen(tok);

    fx.trust.max_token_bytes = len;
    assert_int_equal(verify(tok, &c), 0);
    fx.trust.max_token_bytes = len - 1;
    assert_int_equal(verify(tok, &c), -JWT_malformed);
    fx.trust.max_token_bytes = 16;
    assert_int_equal(verify(tok, &c), -JWT_malformed);
    free(tok);
    /* An RS256 token is longer than the smallest configurable bound. */
    tok = make_token(header_for(S_RS256), GOOD_PAYLOAD, S_RS256);
    assert_true(strlen(tok) > 256);
    fx.trust.max_token_bytes = 256;
    assert_int_equal(verify(tok, &c), -JWT_malformed);
    fx.trust.max_token_bytes = strlen(tok);
    assert_int_equal(verify(tok, &c), 0);
    free(tok);
}

/* ---- key and algorithm -------------------------------------------------- */

static void test_unknown_key(void **state)
{
    (void)state;
    assert_int_equal(verify_header("{\"alg\":\"HS256\",\"kid\":\"nope\"}", S_HS256),
                     -JWT_unknown_key);
    /* kid names are exact. */
    assert_int_equal(verify_header("{\"alg\":\"RS256\",\"kid\":\"RSA1\"}", S_RS256),
                     -JWT_unknown_key);
    /* Without kid only the kid-less keys count: there is no kid-less RSA
     * key and no kid-less HS384 key, although keyed ones exist. */
    assert_int_equal(verify_header("{\"alg\":\"RS256\"}", S_RS256), -JWT_unknown_key);
    assert_int_equal(verify_header("{\"alg\":\"HS384\"}", S_HS384), -JWT_unknown_key);
    assert_int_equal(verify_header("{\"alg\":\"HS512\"}", S_HS256), -JWT_unknown_key);
}

static void test_algorithm_not_allowed(void **state)
{
    (void)state;
    struct jwt_claims c;
    char *h, *p, *t;

    /* alg none with a signature segment. */
    assert_int_equal(verify_header("{\"alg\":\"none\"}", S_HS256), -JWT_algorithm_not_allowed);
    assert_int_equal(verify_header("{\"alg\":\"none\",\"kid\":\"rsa1\"}", S_HS256),
                     -JWT_algorithm_not_allowed);
    /* The classic "alg none" token has no signature at all: malformed. */
    h = b64s("{\"alg\":\"none\",\"typ\":\"JWT\"}");
    p = b64s(GOOD_PAYLOAD);
    t = join3(h, p, "");
    assert_int_equal(verify(t, &c), -JWT_malformed);
    free(t);
    free(h);

    /* HS256 on the RSA kid, keyed with the public key's PEM text: what a
     * verifier trusting the token's alg would accept. */
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    assert_int_equal(PEM_write_bio_PUBKEY(bio, fx.rsa), 1);
    long pemlen = BIO_get_mem_data(bio, &pem);
    h = b64s("{\"alg\":\"HS256\",\"kid\":\"rsa1\"}");
    char *input = join3(h, p, "");
    unsigned char mac[64];
    size_t maclen = hmac(EVP_sha256(), pem, (size_t)pemlen, input, strlen(input) - 1, mac);
    char *sig = unit_b64url(mac, maclen);
    t = join3(h, p, sig);
    assert_int_equal(verify(t, &c), -JWT_algorithm_not_allowed);
    free(t);
    free(sig);
    free(input);
    free(h);
    free(p);
    BIO_free(bio);

    /* Any alg other than the kid's pinned one. */
    assert_int_equal(verify_header("{\"alg\":\"RS384\",\"kid\":\"rsa1\"}", S_RS256),
                     -JWT_algorithm_not_allowed);
    assert_int_equal(verify_header("{\"alg\":\"RS256\",\"kid\":\"hs384\"}", S_HS384),
                     -JWT_algorithm_not_allowed);
    assert_int_equal(verify_header("{\"alg\":\"ES384\",\"kid\":\"ec256\"}", S_ES256),
                     -JWT_algorithm_not_allowed);
    /* Names we do not know, or not spelled exactly. */
    assert_int_equal(verify_header("{\"alg\":\"PS256\",\"kid\":\"rsa1\"}", S_RS256),
                     -JWT_algorithm_not_allowed);
    assert_int_equal(verify_header("{\"alg\":\"hs256\"}", S_HS256), -JWT_algorithm_not_allowed);
    assert_int_equal(verify_header("{\"alg\":\"HS256 \"}", S_HS256), -JWT_algorithm_not_allowed);
    assert_int_equal(verify_header("{\"alg\":\"\"}", S_HS256), -JWT_algorithm_not_allowed);
}

/* ---- signatures --------------------------------------------------------- */

/* Replaces the signature of a token made by signer with sig (siglen bytes). */
static int verify_with_sig(enum signer s, const unsigned char *sig, size_t siglen)
{
    struct jwt_claims c;
    char *h = b64s(header_for(s)), *p = b64s(GOOD_PAYLOAD), *sg = unit_b64url(sig, siglen);
    char *t = join3(h, p, sg);
    int rc = verify(t, &c);
    free(t);
    free(sg);
    free(h);
    free(p);
    return rc;
}

static void test_invalid_signature(void **state)
{
    (void)state;
    static const enum signer all[] = {S_HS256, S_HS384, S_RS256, S_ES256, S_ES384};
    struct jwt_claims c;
    unsigned char sig[512];

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        char *tok = make_token(header_for(all[i]), GOOD_PAYLOAD, all[i]);
        size_t n = fx.last_sig_len;
        assert_int_equal(verify(tok, &c), 0);
        memcpy(sig, fx.last_sig, n);
        assert_int_equal(verify_with_sig(all[i], sig, n), 0);
        /* A flipped bit at either end. */
        sig[0] ^= 0x01;
        assert_int_equal(verify_with_sig(all[i], sig, n), -JWT_invalid_signature);
        sig[0] ^= 0x01;
        sig[n - 1] ^= 0x80;
        assert_int_equal(verify_with_sig(all[i], sig, n), -JWT_invalid_signature);
        sig[n - 1] ^= 0x80;
        /* One byte short, one byte long. */
        assert_int_equal(verify_with_sig(all[i], sig, n - 1), -JWT_invalid_signature);
        sig[n] = 0;
        assert_int_equal(verify_with_sig(all[i], sig, n + 1), -JWT_invalid_signature);
        free(tok);
    }

    /* The right length, the wrong key. */
    char *tok = make_token(header_for(S_HS256), GOOD_PAYLOAD, S_WRONG_HS256);
    assert_int_equal(verify(tok, &c), -JWT_invalid_signature);
    free(tok);
    /* An HS384 MAC under an HS256 header. */
    tok = make_token(header_for(S_HS256), GOOD_PAYLOAD, S_HS384);
    assert_int_equal(verify(tok, &c), -JWT_invalid_signature);
    free(tok);
}

static void test_invalid_signature_swapped_payload(void **state)
{
    (void)state;
    struct jwt_claims c;
    char *a = make_token(header_for(S_RS256), GOOD_PAYLOAD, S_RS256);
    char *sig = unit_b64url(fx.last_sig, fx.last_sig_len);
    char *h = b64s(header_for(S_RS256));
    char *p = b64s("{" ISS_AUD ",\"sub\":\"admin\",\"jti\":\"id-1\"," TIMES "}");
    char *t = join3(h, p, sig);

    assert_int_equal(verify(a, &c), 0);
    assert_int_equal(verify(t, &c), -JWT_invalid_signature);
    free(t);
    free(p);
    free(h);
    free(sig);
    free(a);
}

static void test_invalid_signature_ecdsa_der(void **state)
{
    (void)state;
    struct jwt_claims c;
    unsigned char der[128];
    char *h = b64s(header_for(S_ES256)), *p = b64s(GOOD_PAYLOAD);
    char *input = join3(h, p, "");
    /* A DER signature (what OpenSSL produces) is not a JWS ES256 signature. */
    size_t n = unit_sign(fx.ec256, EVP_sha256(), input, strlen(input) - 1, der, sizeof(der));
    char *sig = unit_b64url(der, n);
    char *t = join3(h, p, sig);

    assert_int_equal(verify(t, &c), -JWT_invalid_signature);
    /* r || s of zeros is not a signature either. */
    unsigned char zero[64] = {0};
    assert_int_equal(verify_with_sig(S_ES256, zero, sizeof(zero)), -JWT_invalid_signature);
    free(t);
    free(sig);
    free(input);
    free(h);
    free(p);
}

/* ---- claims ------------------------------------------------------------- */

static void test_invalid_claims_exp(void **state)
{
    (void)state;
    expect_payload("{" ISS_AUD ",\"iat\":1700000000}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD ",\"iat\":1700000000,\"exp\":\"1700000600\"}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD ",\"iat\":1700000000,\"exp\":null}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD ",\"iat\":0,\"exp\":-1}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD ",\"iat\":1700000000,\"exp\":true}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD ",\"iat\":1700000000,\"exp\":[1700000600]}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD ",\"iat\":1700000000,\"exp\":253402300800}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD ",\"iat\":1700000000,\"exp\":1e400}", JWT_invalid_claims);
    /* exp before iat. */
    expect_payload("{" ISS_AUD ",\"iat\":1700000000,\"exp\":1699999999}", JWT_invalid_claims);
}

static void test_invalid_claims_iat_nbf(void **state)
{
    (void)state;
    expect_payload("{" ISS_AUD ",\"exp\":1700000600}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD ",\"exp\":1700000600,\"iat\":\"1700000000\"}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD ",\"exp\":1700000600,\"iat\":null}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD ",\"exp\":1700000600,\"iat\":-5}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD "," TIMES ",\"nbf\":\"1700000000\"}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD "," TIMES ",\"nbf\":-1}", JWT_invalid_claims);
}

static void test_invalid_claims_strings(void **state)
{
    (void)state;
    expect_payload("{" ISS_AUD "," TIMES ",\"jti\":123}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD "," TIMES ",\"jti\":null}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD "," TIMES ",\"jti\":[\"a\"]}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD "," TIMES ",\"jti\":\"\"}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD "," TIMES ",\"sub\":42}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD "," TIMES ",\"sub\":\"\"}", JWT_invalid_claims);
    expect_payload("{\"aud\":\"" AUD "\"," TIMES ",\"iss\":1}", JWT_invalid_claims);
}

/* Claims that are not UTF-8 could not be echoed in a JSON reply or log line;
 * ids with control characters could split a header or a log line. */
static void test_invalid_claims_not_text(void **state)
{
    (void)state;
    expect_payload("{" ISS_AUD "," TIMES ",\"sub\":\"\xff\"}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD "," TIMES ",\"jti\":\"a\xc0\xaf\"}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD "," TIMES ",\"jti\":\"\xed\xa0\x80\"}", JWT_invalid_claims);
    /* Anywhere in the claims, not only in the ones revokd reads. */
    expect_payload("{" ISS_AUD "," TIMES ",\"name\":\"\xe2\x82\"}", JWT_invalid_claims);
    /* Escaped control characters decode to control characters. */
    expect_payload("{" ISS_AUD "," TIMES ",\"jti\":\"a\\r\\nSet-Cookie: x\"}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD "," TIMES ",\"sub\":\"a\\tb\"}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD "," TIMES ",\"sub\":\"a\\u007fb\"}", JWT_invalid_claims);
    /* Text beyond ASCII, raw or escaped, is fine. */
    expect_payload("{" ISS_AUD "," TIMES ",\"sub\":\"caf\xc3\xa9\"}", JWT_OK);
    expect_payload("{" ISS_AUD "," TIMES ",\"sub\":\"caf\\u00e9 \\ud83d\\udd11\"}", JWT_OK);
    /* In the header, the token is malformed. */
    assert_int_equal(verify_header("{\"alg\":\"HS256\",\"x\":\"\xff\"}", S_HS256), -JWT_malformed);
    assert_int_equal(verify_header("{\"alg\":\"HS384\",\"kid\":\"hs384\\n\"}", S_HS384),
                     -JWT_malformed);
}

static void test_invalid_claims_aud_types(void **state)
{
    (void)state;
    expect_payload("{\"iss\":\"" ISS "\"," TIMES ",\"aud\":[\"" AUD "\",5]}", JWT_invalid_claims);
    expect_payload("{\"iss\":\"" ISS "\"," TIMES ",\"aud\":[\"" AUD "\",null]}", JWT_invalid_claims);
    expect_payload("{\"iss\":\"" ISS "\"," TIMES ",\"aud\":{\"" AUD "\":1}}", JWT_invalid_claims);
    expect_payload("{\"iss\":\"" ISS "\"," TIMES ",\"aud\":7}", JWT_invalid_claims);
    /* Checked even when any audience is accepted. */
    fx.policy.n_audiences = 0;
    expect_payload("{\"iss\":\"" ISS "\"," TIMES ",\"aud\":[\"x\",5]}", JWT_invalid_claims);
}

static void test_invalid_claims_sub_length(void **state)
{
    (void)state;
    struct jwt_claims c;
    char sub[JWT_STR_MAX + 2], payload[JWT_STR_MAX + 200];

    memset(sub, 's', sizeof(sub));
    sub[JWT_STR_MAX] = '\0'; /* 256 bytes: the longest accepted */
    snprintf(payload, sizeof(payload), "{" ISS_AUD "," TIMES ",\"sub\":\"%s\"}", sub);
    assert_int_equal(verify_payload(payload, &c), 0);
    assert_int_equal(strlen(c.sub), JWT_STR_MAX);
    assert_string_equal(c.sub, sub);
    sub[JWT_STR_MAX] = 's';
    sub[JWT_STR_MAX + 1] = '\0'; /* 257 bytes */
    snprintf(payload, sizeof(payload), "{" ISS_AUD "," TIMES ",\"sub\":\"%s\"}", sub);
    assert_int_equal(verify_payload(payload, &c), -JWT_invalid_claims);
    /* Same bound for jti and iss. */
    snprintf(payload, sizeof(payload), "{" ISS_AUD "," TIMES ",\"jti\":\"%s\"}", sub);
    assert_int_equal(verify_payload(payload, &c), -JWT_invalid_claims);
    fx.policy.issuer = "";
    snprintf(payload, sizeof(payload), "{\"aud\":\"" AUD "\"," TIMES ",\"iss\":\"%s\"}", sub);
    assert_int_equal(verify_payload(payload, &c), -JWT_invalid_claims);
}

static void test_invalid_issuer(void **state)
{
    (void)state;
    struct jwt_claims c;

    expect_payload("{\"iss\":\"https://evil.example\",\"aud\":\"" AUD "\"," TIMES "}",
                   JWT_invalid_issuer);
    expect_payload("{\"iss\":\"https://issuer.example/\",\"aud\":\"" AUD "\"," TIMES "}",
                   JWT_invalid_issuer);
    expect_payload("{\"aud\":\"" AUD "\"," TIMES "}", JWT_invalid_issuer);
    /* No configured issuer: any, or none. */
    fx.policy.issuer = "";
    assert_int_equal(verify_payload("{\"iss\":\"https://evil.example\",\"aud\":\"" AUD "\"," TIMES "}",
                                    &c),
                     0);
    assert_string_equal(c.iss, "https://evil.example");
    fx.policy.issuer = "";
    expect_payload("{\"aud\":\"" AUD "\"," TIMES "}", JWT_OK);
}

static void test_invalid_audience(void **state)
{
    (void)state;
    expect_payload("{\"iss\":\"" ISS "\"," TIMES ",\"aud\":\"other\"}", JWT_invalid_audience);
    expect_payload("{\"iss\":\"" ISS "\"," TIMES ",\"aud\":\"REVOKD-API\"}", JWT_invalid_audience);
    expect_payload("{\"iss\":\"" ISS "\"," TIMES ",\"aud\":[\"a\",\"b\"]}", JWT_invalid_audience);
    expect_payload("{\"iss\":\"" ISS "\"," TIMES ",\"aud\":[]}", JWT_invalid_audience);
    expect_payload("{\"iss\":\"" ISS "\"," TIMES "}", JWT_invalid_audience);
    /* One match in an array is enough. */
    expect_payload("{\"iss\":\"" ISS "\"," TIMES ",\"aud\":[\"a\",\"" AUD "\"]}", JWT_OK);
    fx.policy.n_audiences = 0;
    expect_payload("{\"iss\":\"" ISS "\"," TIMES ",\"aud\":\"other\"}", JWT_OK);
    expect_payload("{\"iss\":\"" ISS "\"," TIMES "}", JWT_OK);
}

/* scope, client_id (else azp) and aud are read for gateways: text only, since
 * they become header values, and bounded. */
static void test_gateway_claims(void **state)
{
    (void)state;
    struct jwt_claims c;
    char payload[JWT_SCOPE_MAX + 400], big[JWT_SCOPE_MAX + 2];

    assert_int_equal(verify_payload("{\"iss\":\"" ISS "\"," TIMES ",\"aud\":[\"x\",\"" AUD "\"],"
                                    "\"scope\":\"a b\",\"client_id\":\"web\",\"azp\":\"other\"}", &c),
                     0);
    assert_string_equal(c.scope, "a b");
    assert_string_equal(c.client_id, "web");
    assert_string_equal(c.aud, "x\n" AUD);
    assert_true(jwt_audience_has(&c, "x") && jwt_audience_has(&c, AUD) && !jwt_audience_has(&c, "x\n" AUD));
    assert_true(jwt_scope_has(&c, "b", 1) && !jwt_scope_has(&c, "a b", 3) && !jwt_scope_has(&c, "", 0));
    assert_int_equal(verify_payload("{" ISS_AUD "," TIMES ",\"azp\":\"spa\"}", &c), 0);
    assert_string_equal(c.client_id, "spa");
    assert_string_equal(c.scope, "");
    expect_payload("{" ISS_AUD "," TIMES ",\"scope\":\"a\\r\\nX-Auth-Subject: root\"}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD "," TIMES ",\"client_id\":7}", JWT_invalid_claims);
    expect_payload("{" ISS_AUD "," TIMES ",\"scope\":[\"a\"]}", JWT_invalid_claims);
    expect_payload("{\"iss\":\"" ISS "\"," TIMES ",\"aud\":[\"" AUD "\",\"a\\nb\"]}", JWT_invalid_claims);
    memset(big, 's', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0'; /* JWT_SCOPE_MAX + 1 bytes */
    snprintf(payload, sizeof(payload), "{" ISS_AUD "," TIMES ",\"scope\":\"%s\"}", big);
    assert_int_equal(verify_payload(payload, &c), -JWT_invalid_claims);
    big[JWT_SCOPE_MAX] = '\0';
    snprintf(payload, sizeof(payload), "{" ISS_AUD "," TIMES ",\"scope\":\"%s\"}", big);
    assert_int_equal(verify_payload(payload, &c), 0);
}

static void test_lifetime_exceeded(void **state)
{
    (void)state;
    /* max_lifetime is 3600. */
    expect_payload("{" ISS_AUD ",\"iat\":1700000000,\"exp\":1700003600}", JWT_OK);
    expect_payload("{" ISS_AUD ",\"iat\":1700000000,\"exp\":1700003601}", JWT_lifetime_exceeded);
    expect_payload("{" ISS_AUD ",\"iat\":0,\"exp\":253402300799}", JWT_lifetime_exceeded);
    fx.policy.max_lifetime = 60;
    expect_payload("{" ISS_AUD ",\"iat\":1700000000,\"exp\":1700000060}", JWT_OK);
    expect_payload("{" ISS_AUD ",\"iat\":1700000000,\"exp\":1700000061}", JWT_lifetime_exceeded);
}

/* ---- derived jti -------------------------------------------------------- */

static void expect_derived(enum signer s, const char *payload)
{
    struct jwt_claims c;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char want[JWT_STR_MAX + 1];
    char *tok = make_token(header_for(s), payload, s);

    /* The signing input: everything before the second '.'. */
    SHA256((const unsigned char *)tok, (size_t)(strrchr(tok, '.') - tok), digest);
    char *d = unit_b64url(digest, sizeof(digest));
    snprintf(want, sizeof(want), "sha256:%s", d);
    assert_int_equal(strlen(want), 7 + 43);
    assert_int_equal(verify(tok, &c), 0);
    assert_true(c.jti_derived);
    assert_string_equal(c.jti, want);
    free(d);
    free(tok);
}

static void test_derived_jti(void **state)
{
    (void)state;
    struct jwt_claims a, b;
    const char *payload = "{" ISS_AUD ",\"sub\":\"user-1\"," TIMES "}";

    expect_derived(S_HS256, payload);
    expect_derived(S_RS256, payload);
    expect_derived(S_ES256, payload);
    /* ECDSA signs with a fresh nonce each time; two signatures over the same
     * header and payload still name one token. */
    char *t1 = make_token(header_for(S_ES256), payload, S_ES256);
    char *t2 = make_token(header_for(S_ES256), payload, S_ES256);
    assert_string_not_equal(t1, t2);
    assert_int_equal(verify(t1, &a), 0);
    assert_int_equal(verify(t2, &b), 0);
    assert_string_equal(a.jti, b.jti);
    free(t1);
    free(t2);
    /* Another payload is another token. */
    t1 = make_token(header_for(S_ES256), "{" ISS_AUD ",\"sub\":\"user-2\"," TIMES "}", S_ES256);
    assert_int_equal(verify(t1, &b), 0);
    assert_string_not_equal(a.jti, b.jti);
    free(t1);
    /* A jti claim wins over the derived one. */
    assert_int_equal(verify_payload(GOOD_PAYLOAD, &a), 0);
    assert_false(a.jti_derived);
    assert_string_equal(a.jti, "id-1");
}

/* (r, n - s): the twin every ECDSA signature (r, s) has, valid over the same
 * bytes. order is the group order in hex, half the size of r and of s. */
static char *ecdsa_twin(const char *tok, const char *order, size_t half)
{
    const char *dot2 = strrchr(tok, '.');
    unsigned char sig[2 * 66];
    BIGNUM *n = NULL, *s = BN_bin2bn(fx.last_sig + half, (int)half, NULL);
    char *head = strndup(tok, (size_t)(dot2 - tok) + 1);

    assert_int_equal(fx.last_sig_len, 2 * half);
    assert_true(BN_hex2bn(&n, order) > 0);
    assert_non_null(s);
    assert_non_null(head);
    assert_int_equal(BN_sub(s, n, s), 1);
    memcpy(sig, fx.last_sig, half);
    assert_int_equal(BN_bn2binpad(s, sig + half, (int)half), (int)half);
    char *b = unit_b64url(sig, 2 * half);
    char *twin = malloc(strlen(head) + strlen(b) + 1);
    assert_non_null(twin);
    strcpy(twin, head);
    strcat(twin, b);
    BN_free(n);
    BN_free(s);
    free(head);
    free(b);
    return twin;
}

/* A token without jti is named by what was signed, so the twin signature an
 * ECDSA token's holder can compute names the same token. */
static void test_derived_jti_ecdsa_twin(void **state)
{
    (void)state;
    static const struct {
        enum signer s;
        const char *order;
        size_t half;
    } curves[] = {
        {S_ES256, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 32},
        {S_ES384,
         "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
         48},
    };
    const char *payload = "{" ISS_AUD ",\"sub\":\"user-1\"," TIMES "}";

    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        struct jwt_claims a, b;
        char *tok = make_token(header_for(curves[i].s), payload, curves[i].s);
        char *twin = ecdsa_twin(tok, curves[i].order, curves[i].half);

        assert_string_not_equal(tok, twin);
        assert_int_equal(verify(tok, &a), 0);
        assert_int_equal(verify(twin, &b), 0); /* high S or low S: both verify */
        assert_true(a.jti_derived && b.jti_derived);
        assert_string_equal(a.jti, b.jti);
        free(tok);
        free(twin);
    }
}

/* ---- times -------------------------------------------------------------- */

static void test_check_times_exp(void **state)
{
    (void)state;
    struct jwt_claims c = {.iat = 500, .exp = 1000};

    c.leeway = 30;
    assert_int_equal(jwt_check_times(&c, 1000), 0);
    assert_int_equal(jwt_check_times(&c, 1029), 0);
    assert_int_equal(jwt_check_times(&c, 1030), -JWT_expired);
    assert_int_equal(jwt_check_times(&c, 1031), -JWT_expired);
    c.leeway = 0;
    assert_int_equal(jwt_check_times(&c, 999), 0);
    assert_int_equal(jwt_check_times(&c, 1000), -JWT_expired);
}

static void test_check_times_nbf(void **state)
{
    (void)state;
    struct jwt_claims c = {.iat = 500, .exp = 1000, .nbf = 600, .has_nbf = true};

    c.leeway = 30;
    assert_int_equal(jwt_check_times(&c, 569), -JWT_not_yet_valid);
    assert_int_equal(jwt_check_times(&c, 570), 0);
    assert_int_equal(jwt_check_times(&c, 600), 0);
    c.leeway = 0;
    assert_int_equal(jwt_check_times(&c, 599), -JWT_not_yet_valid);
    assert_int_equal(jwt_check_times(&c, 600), 0);
    /* nbf is only read when present. */
    c.has_nbf = false;
    assert_int_equal(jwt_check_times(&c, 599), 0);
}

static void test_check_times_iat(void **state)
{
    (void)state;
    struct jwt_claims c = {.iat = 500, .exp = 1000};

    c.leeway = 30;
    assert_int_equal(jwt_check_times(&c, 469), -JWT_not_yet_valid);
    assert_int_equal(jwt_check_times(&c, 470), 0);
    c.leeway = 0;
    assert_int_equal(jwt_check_times(&c, 499), -JWT_not_yet_valid);
    assert_int_equal(jwt_check_times(&c, 500), 0);
    /* Expired wins when both hold (iat after exp cannot pass jwt_verify). */
    c.iat = 2000;
    assert_int_equal(jwt_check_times(&c, 1500), -JWT_expired);
}

static void test_reason_names(void **state)
{
    (void)state;
    assert_string_equal(jwt_reason_name(0), "ok");
    assert_string_equal(jwt_reason_name(-JWT_missing_token), "missing_token");
    assert_string_equal(jwt_reason_name(-JWT_malformed), "malformed");
    assert_string_equal(jwt_reason_name(JWT_algorithm_not_allowed), "algorithm_not_allowed");
    assert_string_equal(jwt_reason_name(-JWT_revoked), "revoked");
    assert_string_equal(jwt_reason_name(-JWT_REASON_COUNT), "unknown");
    assert_string_equal(jwt_reason_text(-JWT_expired), "the token has expired");
    assert_string_equal(jwt_reason_text(JWT_REASON_COUNT + 5), "unknown");
}

#define T(f) cmocka_unit_test_setup(f, reset_policy)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_valid_every_algorithm),
        T(test_valid_minimal_claims),
        T(test_valid_typ_values),
        T(test_missing_token),
        T(test_malformed_segment_count),
        T(test_malformed_empty_segment),
        T(test_malformed_bad_base64),
        T(test_malformed_header),
        T(test_malformed_payload_not_object),
        T(test_malformed_duplicate_claims),
        T(test_malformed_nul),
        T(test_malformed_trailing_garbage),
        T(test_malformed_over_max_token_bytes),
        T(test_unknown_key),
        T(test_algorithm_not_allowed),
        T(test_invalid_signature),
        T(test_invalid_signature_swapped_payload),
        T(test_invalid_signature_ecdsa_der),
        T(test_invalid_claims_exp),
        T(test_invalid_claims_iat_nbf),
        T(test_invalid_claims_strings),
        T(test_invalid_claims_not_text),
        T(test_invalid_claims_aud_types),
        T(test_invalid_claims_sub_length),
        T(test_invalid_issuer),
        T(test_invalid_audience),
        T(test_gateway_claims),
        T(test_lifetime_exceeded),
        T(test_derived_jti),
        T(test_derived_jti_ecdsa_twin),
        T(test_check_times_exp),
        T(test_check_times_nbf),
        T(test_check_times_iat),
        T(test_reason_names),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
