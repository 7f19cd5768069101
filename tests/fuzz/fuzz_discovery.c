/* fuzz_discovery.c - jwks_fetch_parse_discovery(), the fetcher's reader of
 * an OpenID discovery (or RFC 8414 metadata) document as a provider serves
 * it, for two issuers: one the seeds name, and one that no document is
 * likely to.
 *
 * Asserts: an answer of 0 or -1, err a string, and a jwks_uri found is one
 * the fetcher may fetch (url_fetchable). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/jwks_fetch.h"
#include "revokd/url.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* As big as the fetcher's URL buffer (jwks_fetch.c). */
#define URL_SIZE 2304

static void parse(const char *text, size_t len, const char *iss)
{
    char uri[URL_SIZE], err[256], why[256]; /* err: as the fetcher's (CURL_ERROR_SIZE) */

    err[0] = '\0';
    int rc = jwks_fetch_parse_discovery(text, len, iss, uri, sizeof(uri), err, sizeof(err));
    fuzz_check(rc == 0 || rc == -1, "an unknown answer");
    fuzz_check(memchr(err, '\0', sizeof(err)) != NULL, "err is not a string");
    /* What the fetcher then fetches: a URL it may fetch. */
    fuzz_check(rc != 0 || url_fetchable(uri, why, sizeof(why)) == 0, "a jwks_uri that may not be fetched");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The fetcher's body: NUL-terminated after its len bytes. */
    char *text = fuzz_text(data, size);

    parse(text, size, "https://issuer.fuzz.test");
    parse(text, size, "https://login.example.com/tenant-1/v2.0");
    free(text);
    return 0;
}
