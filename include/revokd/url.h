/* url.h - percent-decoding, and parameters of a raw query string.
 *
 * One decoding for every identifier that arrives in a URL, path segment or
 * query alike: RFC 3986 percent-decoding, where '+' is a plus sign. Query
 * strings are not read as application/x-www-form-urlencoded (which would
 * make '+' a space), so "alice+x@example.com" names the same subject in a
 * path, in a query and in a JSON body. */
#ifndef REVOKD_URL_H
#define REVOKD_URL_H

#include <stddef.h>

/* Decodes %XX escapes of in (len bytes) into out (size bytes, NUL-terminated).
 * '+' stays '+' (this is not form decoding). Refuses bad escapes, %00 and
 * overflow. Returns the length or -1. */
long url_decode(const char *in, size_t len, char *out, size_t size);
/* The same for a value of an application/x-www-form-urlencoded body (OAuth
 * requests, RFC 6749 and its HTTP Basic credentials), where '+' is a space. */
long url_decode_form(const char *in, size_t len, char *out, size_t size);

/* Finds parameter name in query, the raw query string without '?' ("a=1&b",
 * may be NULL). Returns how many times name occurs; for the first, *value
 * points at its raw value inside query and *len is its length (0 for "b" or
 * "b="). The caller refuses a repeated name: two parsers could pick
 * different ones. */
int url_query_find(const char *query, const char *name, const char **value, size_t *len);

/* 0 when revokd may fetch keys from url: an absolute https URL, or http to
 * a loopback address (127.0.0.0/8, ::1, localhost; for tests and sidecars),
 * without credentials or a fragment. Else -1 with the reason in why. Key
 * sets over plain http from anywhere else could be swapped in transit for
 * an attacker's keys. */
int url_fetchable(const char *url, char *why, size_t size);

#endif
