/* admin_keys.h - the admin API keys and their constant-time check. */
#ifndef REVOKD_ADMIN_KEYS_H
#define REVOKD_ADMIN_KEYS_H

#include <stdbool.h>
#include <stddef.h>

struct admin_keys;

/* Loads one key per line from path ('#' starts a comment line, blank lines
 * are skipped; each key at least ADMIN_KEY_MIN bytes). A line may name its
 * key, `name:key` (a name of 1 to ADMIN_NAME_MAX letters, digits, '.', '_'
 * or '-'); a bare key is named "key-" + the first 8 hex digits of its
 * SHA-256, so that logs can tell keys apart without showing one. Only
 * SHA-256 digests are kept. Returns NULL with the reason in err. */
struct admin_keys *admin_keys_load(const char *path, char *err, size_t errlen);
void admin_keys_free(struct admin_keys *keys);

#define ADMIN_KEY_MIN 16
#define ADMIN_NAME_MAX 64

/* The name of the key presented (len bytes), or NULL when it is none of
 * keys. Takes the same time whichever key matches, or none: every digest is
 * compared in full. keys may be NULL (no admin keys: always NULL). */
const char *admin_keys_check(const struct admin_keys *keys, const char *presented, size_t len);

#endif
