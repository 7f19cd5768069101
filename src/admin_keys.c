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

struct admin_key {
    unsigned char digest[SHA256_BYTES];
    char name[ADMIN_NAME_MAX + 1];
};

struct admin_keys {
    struct admin_key *at;
    size_t n;
};

void admin_keys_free(struct admin_keys *keys)
{
    if (keys == NULL)
        return;
    OPENSSL_cleanse(keys->at, keys->n * sizeof(*keys->at));
    free(keys->at);
    free(keys);
}

/* The length of the name of a "name:key" line, or 0 for a bare key. */
static size_t named(const char *line)
{
    size_t n = strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
    return n > 0 && n <= ADMIN_NAME_MAX && line[n] == ':' ? n : 0;
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
        struct admin_key k = {0};
        size_t namelen = named(line);
        const char *key = namelen > 0 ? line + namelen + 1 : line;
        size_t n = strlen(key);
        if (n < ADMIN_KEY_MIN) {
            snprintf(err, errlen, "\"%s\": key on line %zu is shorter than %d bytes", path, lineno,
                     ADMIN_KEY_MIN);
            goto fail;
        }
        sha256(key, n, k.digest);
        if (namelen > 0)
            memcpy(k.name, line, namelen);
        else
            snprintf(k.name, sizeof(k.name), "key-%02x%02x%02x%02x", k.digest[0], k.digest[1], k.digest[2],
                     k.digest[3]);
        for (size_t i = 0; i < keys->n; i++)
            if (strcmp(keys->at[i].name, k.name) == 0) {
                snprintf(err, errlen, "\"%s\": line %zu names key \"%s\" again", path, lineno, k.name);
                goto fail;
            }
        struct admin_key *grown = realloc(keys->at, (keys->n + 1) * sizeof(*grown));
        if (grown == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        keys->at = grown;
        keys->at[keys->n++] = k;
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

const char *admin_keys_check(const struct admin_keys *keys, const char *presented, size_t len)
{
    unsigned char digest[SHA256_BYTES];
    const char *name = NULL;

    if (keys == NULL)
        return NULL;
    sha256(presented, len, digest);
    /* Every digest compared in full, whichever matches. */
    for (size_t i = 0; i < keys->n; i++)
        if (CRYPTO_memcmp(digest, keys->at[i].digest, sizeof(digest)) == 0)
            name = keys->at[i].name;
    return name;
}
