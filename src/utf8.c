/* utf8.c - UTF-8 validation (RFC 3629, table 3-7 of the Unicode standard). */
#include "revokd/utf8.h"

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        unsigned char c = *p++;
        unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
        int more;

        if (c < 0x80)
            continue;
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* beyond U+10FFFF */
        } else {
            return false; /* a continuation byte, C0, C1 or F5..FF */
        }
        if (end - p < more || *p < lo || *p > hi)
            return false;
        for (p++, more--; more > 0; more--, p++)
            if (*p < 0x80 || *p > 0xBF)
                return false;
    }
    return true;
}

bool utf8_is_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
            return false;
    return utf8_valid(s, len);
}
