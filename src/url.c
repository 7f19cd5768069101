/* url.c - percent-decoding (RFC 3986 2.1) of path segments, query values
 * and the credentials of a Redis URL. */
#include "revokd/url.h"

#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long url_decode(const char *in, size_t len, char *out, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            int h = i + 2 < len ? hexval(in[i + 1]) : -1;
            int l = i + 2 < len ? hexval(in[i + 2]) : -1;
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return -1;
            c = (char)(h << 4 | l);
            i += 2;
        }
        if (o + 1 >= size)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

int url_query_find(const char *query, const char *name, const char **value, size_t *len)
{
    size_t nlen = strlen(name);
    int found = 0;

    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        if (plen >= nlen && memcmp(p, name, nlen) == 0 && (plen == nlen || p[nlen] == '=')) {
            if (found++ == 0) {
                *value = p + (plen > nlen ? nlen + 1 : nlen);
                *len = plen > nlen ? plen - nlen - 1 : 0;
            }
        }
        p += plen + (amp ? 1 : 0);
    }
    return found;
}
