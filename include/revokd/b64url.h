/* b64url.h - strict base64url (RFC 4648 section 5, no padding), as JWS wants it. */
#ifndef REVOKD_B64URL_H
#define REVOKD_B64URL_H

#include <stddef.h>

/* Largest decoded size of len input characters. */
#define B64URL_DECODED_MAX(len) (((len) / 4) * 3 + 2)
/* Encoded size of len bytes, plus the NUL. */
#define B64URL_ENCODED_SIZE(len) (((len) / 3) * 4 + 4)

/* Decodes exactly len characters into out (B64URL_DECODED_MAX(len) bytes).
 * Refuses padding, characters outside the URL-safe alphabet, a length of 1
 * mod 4 and non-zero unused bits in the last character, so every byte string
 * has one encoding only. Returns the decoded length, or -1. */
long b64url_decode(const char *in, size_t len, unsigned char *out);

/* Encodes len bytes into out (B64URL_ENCODED_SIZE(len) bytes), NUL-terminated,
 * without padding. Returns the string length. */
size_t b64url_encode(const unsigned char *in, size_t len, char *out);

#endif
