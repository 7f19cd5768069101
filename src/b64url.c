/* b64url.c - strict base64url. Written here rather than taken from OpenSSL,
 * whose decoder is lenient (padding, whitespace, trailing bits), which is the
 * very leniency that let modified signatures through libjwt. */
#include "revokd/b64url.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Each character's 6 bits plus one; 0 outside the alphabet. A table, not a
 * chain of range tests: every token that misses the cache is decoded here. */
static const unsigned char values[256] = {
#define R(c, first, v0) [c] = (c) - (first) + (v0) + 1
#define SIX(first, v0, c) R(c, first, v0), R(c + 1, first, v0), R(c + 2, first, v0), \
    R(c + 3, first, v0), R(c + 4, first, v0), R(c + 5, first, v0)
    SIX('A', 0, 'A'), SIX('A', 0, 'G'), SIX('A', 0, 'M'), SIX('A', 0, 'S'), R('Y', 'A', 0), R('Z', 'A', 0),
    SIX('a', 26, 'a'), SIX('a', 26, 'g'), SIX('a', 26, 'm'), SIX('a', 26, 's'), R('y', 'a', 26), R('z', 'a', 26),
    SIX('0', 52, '0'), R('6', '0', 52), R('7', '0', 52), R('8', '0', 52), R('9', '0', 52),
    ['-'] = 63, ['_'] = 64,
#undef SIX
#undef R
};

long b64url_decode(const char *in, size_t len, unsigned char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, i, rest = len % 4;
    unsigned long acc = 0;
    int bad = 0;

    if (rest == 1)
        return -1;
    for (i = 0; i < len; i++) {
        unsigned v = values[s[i]];
        bad |= v == 0;
        acc = acc << 6 | (v - 1);
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    if (rest == 2) {
        out[o++] = (unsigned char)(acc >> 4);
        acc &= 0xf;
    } else if (rest == 3) {
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
        acc &= 0x3;
    }
    /* Left-over bits must be zero, or two encodings would decode alike. */
    return bad || acc != 0 ? -1 : (long)o;
}

size_t b64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0, i = 0;

    for (; i + 2 < len; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned long v = (unsigned long)in[i] << 16;
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}
