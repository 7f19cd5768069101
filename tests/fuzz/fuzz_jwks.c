/* fuzz_jwks.c - jwks_load_json() over a key set document as an identity
 * provider serves it: as a remote set is read (unusable keys skipped, at most
 * 100 keys), and as a file is (nothing skipped, no limit) into a set that
 * already holds a key. What loads is then asked for a key of every
 * algorithm, and a signature is checked with it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/jwks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond, what)                                                                        \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_jwks: %s\n", what);                                           \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

/* The key the second set holds before the document is added: a clash of kid
 * "k1" must refuse the whole document and leave the set as it was. */
static const char held[] =
    "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k1\",\"alg\":\"HS256\",\"k\":\"ZnV6ei1obWFjLXNlY3JldC1vZi0zMi1ieXRlcy1taW4hIQ\"}]}";

/* Asks set for a key of every algorithm, kid-less or named kid, and checks a
 * signature of every length some key could take with it. Whether it verifies
 * is not asked: the document's keys are whatever the input made them (an
 * identity provider can sign whatever it likes with its own keys). */
static void use(const struct jwks *set, const char *kid)
{
    static const unsigned char msg[] = "eyJhbGciOiJIUzI1NiJ9.e30";
    static const size_t lengths[] = {32, 48, 64, 96, 114, 132, 256, 384, 512};
    static unsigned char sig[1024];

    for (int alg = ALG_RS256; alg <= ALG_HS512; alg++) {
        const struct jwk *key = NULL;
        int rc = jwks_select(set, kid, alg, &key);
        check(rc == 0 || rc == -JWKS_ENOKEY || rc == -JWKS_EALG, "an unknown answer of jwks_select");
        if (rc != 0)
            continue;
        for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
            (void)jwks_verify(key, msg, sizeof(msg) - 1, sig, lengths[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct jwks_opts remote = {.max_keys = 100, .skip_unusable = true};
    struct jwks *a = jwks_new(), *b = jwks_new();
    char err[256];

    check(a != NULL && b != NULL, "out of memory");
    int skipped = jwks_load_json(a, (const char *)data, size, "https://idp.fuzz.test/jwks", &remote, err, sizeof(err));
    check(skipped >= -1, "an unknown answer of jwks_load_json");
    check(skipped != -1 || jwks_count(a) == 0, "a refused document left keys");
    check(jwks_count(a) <= 100, "more keys than max_keys");
    check(memchr(err, '\0', sizeof(err)) != NULL, "err is not a string");
    use(a, NULL);
    use(a, "k1");

    check(jwks_load_json(b, held, sizeof(held) - 1, "held", NULL, err, sizeof(err)) == 0, "the held key does not load");
    int rc = jwks_load_json(b, (const char *)data, size, "/etc/revokd/jwks.json", NULL, err, sizeof(err));
    check(rc == 0 || rc == -1, "skipped keys without skip_unusable");
    check(rc == 0 || jwks_count(b) == 1, "a refused document changed the set");
    /* Without skipping, an unusable key refuses the document; with nothing
     * to skip, both ways keep the same keys (a kid "k1" clashes with the held one). */
    check(rc != 0 || skipped <= 0, "a key skipped as unusable was loaded from a file");
    check(rc != 0 || skipped != 0 || jwks_count(b) == 1 + jwks_count(a), "a file and a remote set differ");
    use(b, NULL);
    use(b, "k1");
    /* Every key of a set is in itself. */
    check(jwks_subset(a, a) && jwks_subset(b, b), "a set is not a subset of itself");
    (void)jwks_subset(a, b);

    jwks_free(a);
    jwks_free(b);
    return 0;
}
