/* fuzz_issuers_file.c - issuers_load() over the REVOKD_ISSUERS_FILE an
 * operator writes: the input is the file, written anew for every input to
 * the one path the configuration names (made once, with its directory, at
 * start).
 *
 * Asserts: issuers_load() answers 0 or -1, err a string; a refused file
 * leaves no issuers and says why; a loaded one has 1..ISSUERS_MAX issuers,
 * each with an iss of text, distinct, at most ISSUER_AUDIENCES_MAX
 * audiences, and keys from exactly one place (an HMAC key with its
 * algorithm). */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "revokd/config.h"
#include "revokd/issuers.h"
#include "revokd/utf8.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    char dir[PATH_MAX], file[PATH_MAX + 32], key[PATH_MAX + 32];
    struct config cfg;
} fx;

static void cleanup(void)
{
    config_free(&fx.cfg);
    unlink(fx.file);
    unlink(fx.key);
    rmdir(fx.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[1024] = "";
    (void)argc;
    (void)argv;

    fuzz_scrub_environment();
    fuzz_make_temp_dir(fx.dir, sizeof(fx.dir), "fuzz-issuers");
    snprintf(fx.file, sizeof(fx.file), "%s/issuers.json", fx.dir);
    /* A key file the issuers may name (relative paths are taken from the file's directory). */
    snprintf(fx.key, sizeof(fx.key), "%s/hs256.secret", fx.dir);
    fuzz_write_file(fx.file, "{}", 2);
    fuzz_write_file(fx.key, "fuzz-hmac-secret-of-32-bytes-min!!", 34);
    fuzz_check(setenv("REVOKD_ISSUERS_FILE", fx.file, 1) == 0, "setenv failed");
    char *args[] = {"revokd", NULL};
    fuzz_check(config_load(&fx.cfg, 1, args, err, sizeof(err)) == 0, err);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct issuers is;
    char err[4096];

    fuzz_write_file(fx.file, data, size);
    int rc = issuers_load(&is, &fx.cfg, err, sizeof(err));
    fuzz_check(rc == 0 || rc == -1, "an unknown answer of issuers_load");
    fuzz_check(memchr(err, '\0', sizeof(err)) != NULL, "err is not a string");
    if (rc < 0) {
        fuzz_check(is.n == 0 && is.at == NULL && err[0] != '\0', "a refused file left issuers, or no reason");
        return 0;
    }
    /* What a file that loads gives the keyring: 1..ISSUERS_MAX issuers, each
     * with an iss of text, distinct, and keys from one place. */
    fuzz_check(is.n >= 1 && is.n <= ISSUERS_MAX, "a number of issuers out of bounds");
    for (size_t i = 0; i < is.n; i++) {
        const struct issuer_conf *c = &is.at[i];
        fuzz_check(c->iss != NULL && c->iss[0] != '\0' && utf8_is_text(c->iss, strlen(c->iss)), "an issuer without iss");
        fuzz_check(c->n_audiences <= ISSUER_AUDIENCES_MAX, "too many audiences");
        int locals = (c->jwks_file != NULL) + (c->public_key_file != NULL) + (c->hmac_secret_file != NULL);
        fuzz_check(issuers_remote(c) ? locals == 0 && !(c->jwks_url != NULL && c->discovery) : locals > 0,
                   "an issuer with keys from no place, or from two");
        fuzz_check(c->hmac_secret_file == NULL || c->hmac_alg != NULL, "an HMAC key without its algorithm");
        for (size_t j = 0; j < i; j++)
            fuzz_check(strcmp(is.at[j].iss, c->iss) != 0, "an iss twice");
        fuzz_check(issuers_same_remote(c, c) == issuers_remote(c), "a remote issuer unlike itself");
    }
    issuers_free(&is);
    return 0;
}
