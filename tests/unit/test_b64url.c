/* test_b64url.c - strict base64url: round trips against OpenSSL's encoder and
 * every refusal that keeps one byte string to one encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <openssl/evp.h>

#include "revokd/b64url.h"

/* The reference encoding: OpenSSL's standard base64 with the URL-safe
 * alphabet swapped in and the padding cut off. */
static size_t reference_encode(const unsigned char *in, size_t len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    size_t m = (size_t)n;

    while (m > 0 && out[m - 1] == '=')
        m--;
    out[m] = '\0';
    for (size_t i = 0; i < m; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return m;
}

/* Decodes a NUL-terminated string; returns the decoder's result. */
static long decode_str(const char *s, unsigned char *out)
{
    return b64url_decode(s, strlen(s), out);
}

static void test_round_trip_all_lengths(void **state)
{
    (void)state;
    unsigned char in[64], back[B64URL_DECODED_MAX(B64URL_ENCODED_SIZE(64))];
    char enc[B64URL_ENCODED_SIZE(64)], ref[B64URL_ENCODED_SIZE(64) + 4];

    for (size_t len = 0; len <= 64; len++) {
        /* Every byte value shows up across the lengths, 0xfb/0xff (the
         * '-' and '_' sextets) included. */
        for (size_t i = 0; i < len; i++)
            in[i] = (unsigned char)(i * 67 + len * 13 + 0xfb);
        size_t n = b64url_encode(in, len, enc);
        size_t want = (len * 4 + 2) / 3; /* ceil(4n/3): no padding */
        assert_int_equal(n, want);
        assert_int_equal(strlen(enc), want);
        assert_true(n + 1 <= B64URL_ENCODED_SIZE(len));
        reference_encode(in, len, ref);
        assert_string_equal(enc, ref);

        memset(back, 0xaa, sizeof(back));
        long m = b64url_decode(enc, n, back);
        assert_int_equal(m, (long)len);
        assert_true((size_t)m <= B64URL_DECODED_MAX(n));
        assert_memory_equal(back, in, len);
    }
}

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *plain, *encoded;
    } v[] = {
        {"", ""},           {"f", "Zg"},           {"fo", "Zm8"},
        {"foo", "Zm9v"},    {"foob", "Zm9vYg"},    {"fooba", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy"},
    };
    char enc[32];
    unsigned char dec[32];

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t len = strlen(v[i].plain);
        assert_int_equal(b64url_encode((const unsigned char *)v[i].plain, len, enc),
                         strlen(v[i].encoded));
        assert_string_equal(enc, v[i].encoded);
        assert_int_equal(decode_str(v[i].encoded, dec), (long)len);
        assert_memory_equal(dec, v[i].plain, len);
    }
}

static void test_url_safe_alphabet(void **state)
{
    (void)state;
    const unsigned char in[] = {0xfb, 0xff, 0xbf};
    char enc[8];
    unsigned char dec[8];

    assert_int_equal(b64url_encode(in, 3, enc), 4);
    assert_string_equal(enc, "-_-_");
    assert_int_equal(decode_str("-_-_", dec), 3);
    assert_memory_equal(dec, in, 3);
    /* Two bytes: 0xfb 0xff -> 111110 111111 1111(00). */
    assert_int_equal(b64url_encode(in, 2, enc), 3);
    assert_string_equal(enc, "-_8");
}

static void test_refuses_padding(void **state)
{
    (void)state;
    unsigned char out[16];

    assert_int_equal(decode_str("QQ", out), 1);
    assert_int_equal(out[0], 'A');
    assert_int_equal(decode_str("QQ==", out), -1);
    assert_int_equal(decode_str("QQ=", out), -1);
    assert_int_equal(decode_str("QUI=", out), -1);
    assert_int_equal(decode_str("=", out), -1);
    assert_int_equal(decode_str("====", out), -1);
    assert_int_equal(decode_str("QUJD====", out), -1);
}

static void test_refuses_standard_alphabet(void **state)
{
    (void)state;
    unsigned char out[16];

    /* "-_-_" is fine; its standard-alphabet twin "+/+/" is not. */
    assert_int_equal(decode_str("+/+/", out), -1);
    assert_int_equal(decode_str("+w", out), -1);
    assert_int_equal(decode_str("/w", out), -1);
    assert_int_equal(decode_str("QUJ+", out), -1);
    assert_int_equal(decode_str("QUJ/", out), -1);
    assert_int_equal(decode_str("QU.D", out), -1);
    assert_int_equal(decode_str("QU\xc3\xa9", out), -1);
}

static void test_refuses_whitespace(void **state)
{
    (void)state;
    unsigned char out[16];

    assert_int_equal(decode_str(" QQ", out), -1);
    assert_int_equal(decode_str("QQ ", out), -1);
    assert_int_equal(decode_str("Q Q", out), -1);
    assert_int_equal(decode_str("QQ\n", out), -1);
    assert_int_equal(decode_str("QUJD\r\n", out), -1);
    assert_int_equal(decode_str("QU\tJD", out), -1);
    /* An embedded NUL is not whitespace either, and not the end. */
    assert_int_equal(b64url_decode("Q\0Q", 3, out), -1);
    assert_int_equal(b64url_decode("QQ\0\0", 4, out), -1);
}

static void test_refuses_length_one_mod_four(void **state)
{
    (void)state;
    unsigned char out[16];

    assert_int_equal(decode_str("Q", out), -1);
    assert_int_equal(decode_str("QUJDR", out), -1);
    assert_int_equal(decode_str("QUJDRUZHS", out), -1);
    /* Refused for the length itself, even when the lone character's bits
     * are all zero and would decode to nothing. */
    assert_int_equal(decode_str("A", out), -1);
    assert_int_equal(decode_str("QUJDA", out), -1);
    assert_int_equal(decode_str("AAAAA", out), -1);
    /* The other remainders are fine. */
    assert_int_equal(decode_str("", out), 0);
    assert_int_equal(decode_str("QUJDRQ", out), 4);
    assert_int_equal(decode_str("QUJDRUY", out), 5);
    assert_int_equal(decode_str("QUJDRUZH", out), 6);
    assert_memory_equal(out, "ABCEFG", 6);
}

static void test_refuses_unused_bits(void **state)
{
    (void)state;
    unsigned char out[16];

    /* One byte: the second character carries 4 unused bits. */
    assert_int_equal(decode_str("QQ", out), 1);
    assert_int_equal(out[0], 0x41);
    assert_int_equal(decode_str("QR", out), -1);
    assert_int_equal(decode_str("QS", out), -1);
    assert_int_equal(decode_str("QW", out), -1);
    assert_int_equal(decode_str("Q_", out), -1);
    /* Two bytes ("AB" = QUI): the third character carries 2 unused bits. */
    assert_int_equal(decode_str("QUI", out), 2);
    assert_memory_equal(out, "AB", 2);
    assert_int_equal(decode_str("QUJ", out), -1);
    assert_int_equal(decode_str("QUK", out), -1);
    assert_int_equal(decode_str("QUL", out), -1);
    /* Same after full groups. */
    assert_int_equal(decode_str("QUJDQQ", out), 4);
    assert_int_equal(decode_str("QUJDQR", out), -1);
}

/* Every two-character string decodes to at most one byte, and exactly one
 * string in 16 per first character is accepted: one encoding per byte. */
static void test_unique_encoding_of_every_byte(void **state)
{
    (void)state;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int seen[256] = {0};
    unsigned char out[4];
    char s[3] = {0};

    for (int a = 0; a < 64; a++) {
        for (int b = 0; b < 64; b++) {
            s[0] = alphabet[a];
            s[1] = alphabet[b];
            long n = b64url_decode(s, 2, out);
            if (n < 0)
                continue;
            assert_int_equal(n, 1);
            seen[out[0]]++;
        }
    }
    for (int v = 0; v < 256; v++)
        assert_int_equal(seen[v], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_all_lengths),
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_url_safe_alphabet),
        cmocka_unit_test(test_refuses_padding),
        cmocka_unit_test(test_refuses_standard_alphabet),
        cmocka_unit_test(test_refuses_whitespace),
        cmocka_unit_test(test_refuses_length_one_mod_four),
        cmocka_unit_test(test_refuses_unused_bits),
        cmocka_unit_test(test_unique_encoding_of_every_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
