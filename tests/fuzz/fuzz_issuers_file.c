/* fuzz_issuers_file.c - issuers_load() over the REVOKD_ISSUERS_FILE an
 * operator writes: the input is the file, written anew for every input to
 * the one path the configuration names (made once, with its directory, at
 * start). */
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

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond, what)                                                                        \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_issuers_file: %s\n", what);                                   \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static struct {
    char dir[PATH_MAX], file[PATH_MAX + 32], key[PATH_MAX + 32];
    struct config cfg;
} fx;

extern char **environ;

/* The REVOKD_* settings of the shell that runs the fuzzer must not leak in. */
static void scrub_environment(void)
{
    for (size_t i = 0; environ[i] != NULL;) {
        char name[256];
        size_t n = strcspn(environ[i], "=");
        if (strncmp(environ[i], "REVOKD_", 7) != 0 || n >= sizeof(name)) {
            i++;
            continue;
        }
        memcpy(name, environ[i], n);
        name[n] = '\0';
        check(unsetenv(name) == 0, "unsetenv failed");
    }
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");

    check(f != NULL && fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write a file");
}

static void cleanup(void)
{
    config_free(&fx.cfg);
    unlink(fx.file);
    unlink(fx.key);
    rmdir(fx.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    char err[1024] = "";
    (void)argc;
    (void)argv;

    scrub_environment();
    snprintf(fx.dir, sizeof(fx.dir), "%s/fuzz-issuers-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : P_tmpdir);
    check(mkdtemp(fx.dir) != NULL, "cannot make a temporary directory");
    snprintf(fx.file, sizeof(fx.file), "%s/issuers.json", fx.dir);
    /* A key file the issuers may name (relative paths are taken from the file's directory). */
    snprintf(fx.key, sizeof(fx.key), "%s/hs256.secret", fx.dir);
    write_file(fx.file, "{}", 2);
    write_file(fx.key, "fuzz-hmac-secret-of-32-bytes-min!!", 34);
    check(setenv("REVOKD_ISSUERS_FILE", fx.file, 1) == 0, "setenv failed");
    char *args[] = {"revokd", NULL};
    if (config_load(&fx.cfg, 1, args, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_issuers_file: %s\n", err);
        abort();
    }
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct issuers is;
    char err[4096];

    write_file(fx.file, data, size);
    int rc = issuers_load(&is, &fx.cfg, err, sizeof(err));
    check(rc == 0 || rc == -1, "an unknown answer of issuers_load");
    check(memchr(err, '\0', sizeof(err)) != NULL, "err is not a string");
    if (rc < 0) {
        check(is.n == 0 && is.at == NULL && err[0] != '\0', "a refused file left issuers, or no reason");
        return 0;
    }
    /* What a file that loads gives the keyring: 1..ISSUERS_MAX issuers, each
     * with an iss of text, distinct, and keys from one place. */
    check(is.n >= 1 && is.n <= ISSUERS_MAX, "a number of issuers out of bounds");
    for (size_t i = 0; i < is.n; i++) {
        const struct issuer_conf *c = &is.at[i];
        check(c->iss != NULL && c->iss[0] != '\0' && utf8_is_text(c->iss, strlen(c->iss)), "an issuer without iss");
        check(c->n_audiences <= ISSUER_AUDIENCES_MAX, "too many audiences");
        int locals = (c->jwks_file != NULL) + (c->public_key_file != NULL) + (c->hmac_secret_file != NULL);
        check(issuers_remote(c) ? locals == 0 && !(c->jwks_url != NULL && c->discovery) : locals > 0,
              "an issuer with keys from no place, or from two");
        check(c->hmac_secret_file == NULL || c->hmac_alg != NULL, "an HMAC key without its algorithm");
        for (size_t j = 0; j < i; j++)
            check(strcmp(is.at[j].iss, c->iss) != 0, "an iss twice");
        check(issuers_same_remote(c, c) == issuers_remote(c), "a remote issuer unlike itself");
    }
    issuers_free(&is);
    return 0;
}
