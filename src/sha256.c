/* sha256.c - SHA-256 with the implementation fetched once, and a context
 * per thread: EVP_Digest() allocates, wipes and frees one on every call,
 * and a check hashes three times (its cache key and two Redis keys). */
#include "revokd/sha256.h"

#include <pthread.h>
#include <stdlib.h>

#include <openssl/evp.h>

static EVP_MD *md;
static pthread_key_t ctx_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void init(void)
{
    md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (md == NULL || pthread_key_create(&ctx_key, ctx_free) != 0)
        abort(); /* the default provider always has it: OpenSSL is broken */
}

void sha256(const void *in, size_t len, unsigned char out[SHA256_BYTES])
{
    EVP_MD_CTX *ctx;

    pthread_once(&once, init);
    if ((ctx = pthread_getspecific(ctx_key)) == NULL &&
        ((ctx = EVP_MD_CTX_new()) == NULL || pthread_setspecific(ctx_key, ctx) != 0))
        abort(); /* only out of memory; a wrong digest would be worse */
    if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, in, len) != 1 ||
        EVP_DigestFinal_ex(ctx, out, NULL) != 1)
        abort();
}
