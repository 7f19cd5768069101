/* unit_util.h - helpers shared by the unit tests: a temporary directory and
 * the files in it, an OpenSSL-based base64url, JWKs built from OpenSSL keys,
 * signatures, and a few small checks.
 *
 * None of it calls the code under test: the encoder is OpenSSL's, not
 * src/b64url.c, and keys and signatures come straight from OpenSSL, so the
 * tests' expectations stay independent of what they test.
 *
 * Helpers that "assert" use cmocka's assert_* and so fail the running test;
 * call them from a test or a fixture, never from elsewhere. */
#ifndef REVOKD_UNIT_UTIL_H
#define REVOKD_UNIT_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

/* ---- temporary directory and files -------------------------------------- */

/* Creates a fresh directory "$TMPDIR/revokd-unit-XXXXXX" (/tmp when TMPDIR
 * is unset or empty) and leaves its name in dir (size bytes). Returns 0, or
 * -1 when mkdtemp fails. Asserts nothing, so a group setup can return -1.
 * The caller removes it again with unit_tmpdir_remove(). */
int unit_tmpdir_create(char *dir, size_t size);

/* Removes the files dir/names[0 .. count) (one that does not exist is no
 * error), then the directory itself; the directory must hold no other
 * entries to go. Asserts only that each path fits in PATH_MAX + 32 bytes. */
void unit_tmpdir_remove(const char *dir, const char *const *names, size_t count);

/* Writes "dir/name" to out (size bytes); asserts that it fits. */
void unit_path_in(char *out, size_t size, const char *dir, const char *name);

/* Creates or truncates path and writes len bytes of data to it; asserts that
 * the file opens, every byte is written and it closes cleanly. */
void unit_write_file(const char *path, const void *data, size_t len);

/* What print writes to a FILE, as a NUL-terminated malloc'd string the
 * caller frees. Asserts that the memory stream opens and closes cleanly. */
char *unit_capture(void (*print)(FILE *));

/* ---- base64url and JWKs -------------------------------------------------- */

/* base64url (RFC 4648 section 5, no padding) of len bytes of data, written
 * with OpenSSL's EVP_EncodeBlock and the alphabet swapped, not with
 * src/b64url.c. Returns a malloc'd string the caller frees; asserts the
 * allocation. */
char *unit_b64url(const void *data, size_t len);

/* Adds member name to object o: the base64url of len bytes of data. */
void unit_json_add_b64url(cJSON *o, const char *name, const void *data, size_t len);

/* A new RSA JWK {"kty":"RSA", "kid", "alg", "n", "e"} for k's public part;
 * kid and alg are left out when NULL. The caller owns the object (or hands
 * it to unit_write_jwks()). Asserts that k has n and e. */
cJSON *unit_jwk_rsa(EVP_PKEY *k, const char *kid, const char *alg);

/* A new EC JWK {"kty":"EC", "kid", "crv", "x", "y"} for k's public point,
 * each coordinate left-padded to size bytes; kid is left out when NULL, and
 * crv is written as given (it need not be k's curve). The caller owns the
 * object. Asserts that k has x and y and that they fit size bytes. */
cJSON *unit_jwk_ec(EVP_PKEY *k, const char *kid, const char *crv, size_t size);

/* A new OKP JWK {"kty":"OKP", "kid", "crv", "x"} for k's raw public key
 * (Ed25519 or Ed448); kid is left out when NULL, and crv is written as given
 * (it need not be k's curve). The caller owns the object. */
cJSON *unit_jwk_okp(EVP_PKEY *k, const char *kid, const char *crv);

/* A new symmetric JWK {"kty":"oct", "kid", "alg", "k"} with len bytes of
 * secret as k; kid and alg are left out when NULL. The caller owns it. */
cJSON *unit_jwk_oct(const char *kid, const char *alg, const void *secret, size_t len);

/* Writes {"keys": [k0, k1, ...]} (unformatted JSON) to path. The keys are a
 * NULL-terminated list; they are consumed (freed) whatever happens. Asserts
 * as unit_write_file() does. */
void unit_write_jwks(const char *path, cJSON *k0, ...);
/* The same with the keys after k0 in ap, for variadic wrappers. */
void unit_write_jwksv(const char *path, cJSON *k0, va_list ap);

/* ---- signatures ---------------------------------------------------------- */

/* Signs len bytes of msg with key and digest md (EVP_DigestSign: PKCS #1
 * v1.5 for RSA, DER for ECDSA) into sig, which has room for size bytes.
 * Returns the signature's length; asserts that signing succeeds. */
size_t unit_sign(EVP_PKEY *key, const EVP_MD *md, const void *msg, size_t len,
                 unsigned char *sig, size_t size);

/* An RSASSA-PSS signature of msg: digest md, MGF1 with md, a salt of saltlen
 * bytes or one of OpenSSL's RSA_PSS_SALTLEN_* (DIGEST is what JWS asks
 * for). Written to sig (size bytes); returns its length, asserts success. */
size_t unit_sign_pss(EVP_PKEY *key, const EVP_MD *md, int saltlen, const void *msg, size_t len,
                     unsigned char *sig, size_t size);

/* An EdDSA signature of msg (PureEdDSA: no digest) with an Ed25519 or Ed448
 * key, written to sig (size bytes); returns its length, asserts success. */
size_t unit_sign_eddsa(EVP_PKEY *key, const void *msg, size_t len, unsigned char *sig,
                       size_t size);

/* An ECDSA signature of msg as JWS carries it: r || s, each left-padded to
 * half bytes (32 for P-256, 48 for P-384, 66 for P-521), written to out
 * (2 * half bytes).
 * Returns 2 * half; asserts that signing succeeds and r and s fit. */
size_t unit_sign_ecdsa_jws(EVP_PKEY *key, const EVP_MD *md, const void *msg, size_t len,
                           size_t half, unsigned char *out);

/* ---- checks -------------------------------------------------------------- */

/* Asserts that text (an error message) contains part; when it does not,
 * prints `error "<text>" does not contain "<part>"` first. */
void unit_expect_contains(const char *text, const char *part);

#endif
