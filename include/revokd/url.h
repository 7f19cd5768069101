/* url.h - percent-decoding. */
#ifndef REVOKD_URL_H
#define REVOKD_URL_H

#include <stddef.h>

/* Decodes %XX escapes of in (len bytes) into out (size bytes, NUL-terminated).
 * '+' stays '+' (this is not form decoding). Refuses bad escapes, %00 and
 * overflow. Returns the length or -1. */
long url_decode(const char *in, size_t len, char *out, size_t size);

#endif
