/* fuzz_jwks.c - jwks_load_json() over a key set document as an identity
 * provider serves it: as a remote set is read (unusable keys skipped, at most
 * 100 keys), and as a file is (nothing skipped, no limit) into a set that
 * already holds a key. What loads is then asked for a key of every
 * algorithm, and a signature is checked with it.
 *
 * Asserts: known answers of jwks_load_json() and jwks_select(), err a
 * string; a refused document leaves no keys in a new set and changes
 * nothing in the one with a key; a remote set holds at most max_keys; with
 * nothing to skip, both ways load the same keys; a set is a subset of
 * itself. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/jwks.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
        fuzz_check(rc == 0 || rc == -JWKS_ENOKEY || rc == -JWKS_EALG, "an unknown answer of jwks_select");
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

    fuzz_check(a != NULL && b != NULL, "out of memory");
    int skipped = jwks_load_json(a, (const char *)data, size, "https://idp.fuzz.test/jwks", &remote, err, sizeof(err));
    fuzz_check(skipped >= -1, "an unknown answer of jwks_load_json");
    fuzz_check(skipped != -1 || jwks_count(a) == 0, "a refused document left keys");
    fuzz_check(jwks_count(a) <= 100, "more keys than max_keys");
    fuzz_check(memchr(err, '\0', sizeof(err)) != NULL, "err is not a string");
    use(a, NULL);
    use(a, "k1");

    fuzz_check(jwks_load_json(b, held, sizeof(held) - 1, "held", NULL, err, sizeof(err)) == 0, "the held key does not load");
    int rc = jwks_load_json(b, (const char *)data, size, "/etc/revokd/jwks.json", NULL, err, sizeof(err));
    fuzz_check(rc == 0 || rc == -1, "skipped keys without skip_unusable");
    fuzz_check(rc == 0 || jwks_count(b) == 1, "a refused document changed the set");
    /* Without skipping, an unusable key refuses the document; with nothing
     * to skip, both ways keep the same keys (a kid "k1" clashes with the held one). */
    fuzz_check(rc != 0 || skipped <= 0, "a key skipped as unusable was loaded from a file");
    fuzz_check(rc != 0 || skipped != 0 || jwks_count(b) == 1 + jwks_count(a), "a file and a remote set differ");
    use(b, NULL);
    use(b, "k1");
    /* Every key of a set is in itself. */
    fuzz_check(jwks_subset(a, a) && jwks_subset(b, b), "a set is not a subset of itself");
    (void)jwks_subset(a, b);

    jwks_free(a);
    jwks_free(b);
    return 0;
}
