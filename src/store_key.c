/* store_key.c - name revocation records in Redis. */
#include "revokd/store_key.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "revokd/b64url.h"
#include "revokd/sha256.h"

size_t store_key(char *out, const char *prefix, enum store_key_kind kind, const char *iss,
                 const char *id)
{
    unsigned char input[4 + 2 * STORE_KEY_ID_MAX], digest[SHA256_BYTES];
    size_t isslen = strlen(iss), idlen = strlen(id), plen = strlen(prefix);

    /* Callers bound iss and ids (JWT_STR_MAX) and the prefix; longer ones
     * are a bug. */
    assert(isslen <= STORE_KEY_ID_MAX && idlen <= STORE_KEY_ID_MAX && plen <= STORE_KEY_PREFIX_MAX);
    input[0] = (unsigned char)(isslen >> 24);
    input[1] = (unsigned char)(isslen >> 16);
    input[2] = (unsigned char)(isslen >> 8);
    input[3] = (unsigned char)isslen;
    memcpy(input + 4, iss, isslen);
    memcpy(input + 4 + isslen, id, idlen);
    sha256(input, 4 + isslen + idlen, digest);

    memcpy(out, prefix, plen);
    out[plen] = (char)kind;
    return plen + 1 + b64url_encode(digest, STORE_KEY_DIGEST_BYTES, out + plen + 1);
}
