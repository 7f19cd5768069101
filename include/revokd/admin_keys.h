/* admin_keys.h - the admin API keys and their constant-time check. */
#ifndef REVOKD_ADMIN_KEYS_H
#define REVOKD_ADMIN_KEYS_H

#include <stdbool.h>
#include <stddef.h>

struct admin_keys;

/* Loads one key per line from path ('#' starts a comment line, blank lines
 * are skipped; each key at least ADMIN_KEY_MIN bytes). Only SHA-256 digests
 * are kept. Returns NULL with the reason in err. */
struct admin_keys *admin_keys_load(const char *path, char *err, size_t errlen);
void admin_keys_free(struct admin_keys *keys);

#define ADMIN_KEY_MIN 16

/* True when presented (len bytes) is one of keys. Takes the same time
 * whichever key matches, or none: every digest is compared in full. keys may
 * be NULL (no admin keys: always false). */
bool admin_keys_check(const struct admin_keys *keys, const char *presented, size_t len);

#endif
