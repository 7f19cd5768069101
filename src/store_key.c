/* store_key.c - name revocation records in Redis. */
#include "revokd/store_key.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

static void hex(char *out, const unsigned char *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

size_t store_key(char *out, const char *prefix, enum store_key_kind kind, const char *iss,
                 const char *id)
{
    unsigned char ns[SHA256_DIGEST_LENGTH], name[SHA256_DIGEST_LENGTH];
    unsigned char input[4 + 2 * STORE_KEY_ID_MAX];
    size_t isslen = strlen(iss), idlen = strlen(id);

    /* Callers bound iss and ids (JWT_STR_MAX); longer ones are a bug. */
    assert(isslen <= STORE_KEY_ID_MAX && idlen <= STORE_KEY_ID_MAX);
    input[0] = (unsigned char)(isslen >> 24);
    input[1] = (unsigned char)(isslen >> 16);
    input[2] = (unsigned char)(isslen >> 8);
    input[3] = (unsigned char)isslen;
    memcpy(input + 4, iss, isslen);
    memcpy(input + 4 + isslen, id, idlen);
    SHA256((const unsigned char *)iss, isslen, ns);
    SHA256(input, 4 + isslen + idlen, name);

    size_t n = (size_t)snprintf(out, STORE_KEY_SIZE, "%.*s%c:", STORE_KEY_PREFIX_MAX, prefix,
                                (char)kind);
    hex(out + n, ns, 8);
    n += 16;
    out[n++] = ':';
    hex(out + n, name, 16);
    n += 32;
    out[n] = '\0';
    return n;
}

int store_key_prefix_valid(const char *prefix)
{
    size_t len = strlen(prefix);
    if (len == 0 || len > STORE_KEY_PREFIX_MAX)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (prefix[i] <= ' ' || prefix[i] > '~')
            return -1;
    return 0;
}
