/* fuzz_discovery.c - jwks_fetch_parse_discovery(), the fetcher's reader of
 * an OpenID discovery (or RFC 8414 metadata) document as a provider serves
 * it, for two issuers: one the seeds name, and one that no document is
 * likely to. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/jwks_fetch.h"
#include "revokd/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond, what)                                                                        \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_discovery: %s\n", what);                                      \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

/* As big as the fetcher's URL buffer (jwks_fetch.c). */
#define URL_SIZE 2304

static void parse(const char *text, size_t len, const char *iss)
{
    char uri[URL_SIZE], err[256], why[256]; /* err: as the fetcher's (CURL_ERROR_SIZE) */

    err[0] = '\0';
    int rc = jwks_fetch_parse_discovery(text, len, iss, uri, sizeof(uri), err, sizeof(err));
    check(rc == 0 || rc == -1, "an unknown answer");
    check(memchr(err, '\0', sizeof(err)) != NULL, "err is not a string");
    /* What the fetcher then fetches: a URL it may fetch. */
    check(rc != 0 || url_fetchable(uri, why, sizeof(why)) == 0, "a jwks_uri that may not be fetched");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The fetcher's body: NUL-terminated after its len bytes. */
    char *text = malloc(size + 1);

    check(text != NULL, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    parse(text, size, "https://issuer.fuzz.test");
    parse(text, size, "https://login.example.com/tenant-1/v2.0");
    free(text);
    return 0;
}
