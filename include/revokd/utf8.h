/* utf8.h - is this text well-formed, and fit to be an identifier?
 *
 * JSON exchanged between systems must be UTF-8 (RFC 8259 8.1), and what
 * revokd echoes (reply bodies, log lines, later headers) must be too, or
 * strict JSON parsers reject it. Identifiers (jti, sub, iss) must also hold
 * no control character, which could split a header or a log line. */
#ifndef REVOKD_UTF8_H
#define REVOKD_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s (len bytes) is well-formed UTF-8 (RFC 3629): no overlong form
 * (C0 AF), no surrogate (ED A0 80), nothing beyond U+10FFFF, no cut-off
 * sequence. */
bool utf8_valid(const char *s, size_t len);

/* utf8_valid() and no control character (U+0000 to U+001F, U+007F). */
bool utf8_is_text(const char *s, size_t len);

#endif
