/* url.c - percent-decoding (RFC 3986 2.1) of path segments, query values
 * and the credentials of a Redis URL; which URLs keys may come from. */
#include "revokd/url.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <curl/curl.h>

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

/* plus_is_space: application/x-www-form-urlencoded, where '+' is a space. */
static long decode(const char *in, size_t len, char *out, size_t size, bool plus_is_space)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '\0') {
            return -1; /* a C string would end there: refused, as %00 is */
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == '%') {
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

long url_decode(const char *in, size_t len, char *out, size_t size)
{
    return decode(in, len, out, size, false);
}

long url_decode_form(const char *in, size_t len, char *out, size_t size)
{
    return decode(in, len, out, size, true);
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

static bool loopback_host(const char *host)
{
    struct in_addr v4;

    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
        return true;
    return inet_pton(AF_INET, host, &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

int url_fetchable(const char *url, char *why, size_t size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *fragment = NULL;
    int rc = -1;

    /* libcurl's own parser, so the URL checked is the URL fetched. */
    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(why, size, "\"%.64s\" is not an absolute URL", url);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK) {
        snprintf(why, size, "a key URL carries no credentials and no fragment");
        goto out;
    }
    if (strcmp(scheme, "https") == 0 || (strcmp(scheme, "http") == 0 && loopback_host(host)))
        rc = 0;
    else
        snprintf(why, size, "\"%.64s\" must be https (http only to a loopback address)", url);
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(fragment);
    curl_url_cleanup(u);
    return rc;
}
