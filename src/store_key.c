/* store_key.c - name revocation records in Redis. */
#include "revokd/store_key.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "revokd/b64url.h"
#include "revokd/sha256.h"

void store_key_digest(unsigned char out[STORE_KEY_DIGEST_BYTES], const char *iss, const char *id)
{
    unsigned char input[4 + 2 * STORE_KEY_ID_MAX], digest[SHA256_BYTES];
    size_t isslen = strlen(iss), idlen = strlen(id);

    /* Callers bound iss and ids (JWT_STR_MAX); longer ones are a bug. */
    assert(isslen <= STORE_KEY_ID_MAX && idlen <= STORE_KEY_ID_MAX);
    input[0] = (unsigned char)(isslen >> 24);
    input[1] = (unsigned char)(isslen >> 16);
    input[2] = (unsigned char)(isslen >> 8);
    input[3] = (unsigned char)isslen;
    memcpy(input + 4, iss, isslen);
    memcpy(input + 4 + isslen, id, idlen);
    sha256(input, 4 + isslen + idlen, digest);
    memcpy(out, digest, STORE_KEY_DIGEST_BYTES);
}

size_t store_key(char *out, const char *prefix, enum store_key_kind kind, const char *iss,
                 const char *id)
{
    unsigned char digest[STORE_KEY_DIGEST_BYTES];
    size_t plen = strlen(prefix);

    /* The prefix is bounded by the configuration; a longer one is a bug. */
    assert(plen <= STORE_KEY_PREFIX_MAX);
    store_key_digest(digest, iss, id);
    memcpy(out, prefix, plen);
    out[plen] = (char)kind;
    return plen + 1 + b64url_encode(digest, STORE_KEY_DIGEST_BYTES, out + plen + 1);
}
