/* admin_keys.c - admin API keys.
 *
 * Keys are hashed at load and the presented key is hashed once, so the
 * comparison runs over fixed-length digests (no length leak) with
 * CRYPTO_memcmp, and every configured key is compared (no early exit). */
#include "revokd/admin_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "revokd/file.h"
#include "revokd/sha256.h"

struct admin_keys {
    unsigned char (*digests)[SHA256_BYTES];
    size_t n;
};

void admin_keys_free(struct admin_keys *keys)
{
    if (keys == NULL)
        return;
    free(keys->digests);
    free(keys);
}

struct admin_keys *admin_keys_load(const char *path, char *err, size_t errlen)
{
    size_t len = 0, lineno = 0;
    char *text = file_read(path, 1024 * 1024, &len, err, errlen);
    struct admin_keys *keys = NULL;
    char *line, *cursor = text;

    if (text == NULL)
        return NULL;
    if ((keys = calloc(1, sizeof(*keys))) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* Whitespace around a key is never part of it: a presented key is taken
     * without the blanks around it (request_bearer), so a key kept with them
     * could never match. */
    while ((line = file_next_line(&cursor, &lineno)) != NULL) {
        size_t n = strlen(line);
        if (n < ADMIN_KEY_MIN) {
            snprintf(err, errlen, "\"%s\": key on line %zu is shorter than %d bytes", path, lineno,
                     ADMIN_KEY_MIN);
            goto fail;
        }
        void *grown = realloc(keys->digests, (keys->n + 1) * sizeof(*keys->digests));
        if (grown == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        keys->digests = grown;
        sha256(line, n, keys->digests[keys->n++]);
    }
    if (keys->n == 0) {
        snprintf(err, errlen, "\"%s\" holds no key", path);
        goto fail;
    }
    file_free(text, len);
    return keys;

fail:
    file_free(text, len);
    admin_keys_free(keys);
    return NULL;
}

bool admin_keys_check(const struct admin_keys *keys, const char *presented, size_t len)
{
    unsigned char digest[SHA256_BYTES];
    int match = 0;

    if (keys == NULL)
        return false;
    sha256(presented, len, digest);
    for (size_t i = 0; i < keys->n; i++)
        match |= CRYPTO_memcmp(digest, keys->digests[i], sizeof(digest)) == 0;
    return match != 0;
}
