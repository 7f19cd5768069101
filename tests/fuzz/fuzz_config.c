/* fuzz_config.c - config_load() over a command line: the input, split at
 * each NUL or newline into at most 32 arguments after "revokd" ("--flag",
 * "value" or "--flag=value"). No REVOKD_* variable is set meanwhile, so
 * every setting starts from the table's default.
 *
 * Asserts: config_load() answers 0 or -1, a refusal says why, in a string,
 * and a loaded configuration has its limits and its issuer. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/config.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 32

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_scrub_environment();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *args[MAX_ARGS + 2] = {"revokd"}, err[1024];
    char *text = fuzz_text(data, size);
    int argc = 1;
    struct config cfg;

    /* strcspn stops at a NUL as at a newline: either ends an argument. */
    for (size_t at = 0; at < size && argc <= MAX_ARGS;) {
        size_t n = strcspn(text + at, "\n");
        args[argc++] = text + at;
        text[at + n] = '\0';
        at += n + 1;
    }
    args[argc] = NULL;

    err[0] = '\0';
    int rc = config_load(&cfg, argc, args, err, sizeof(err));
    fuzz_check(rc == 0 || rc == -1, "an unknown answer of config_load");
    fuzz_check(rc == 0 || err[0] != '\0', "refused without a reason");
    fuzz_check(memchr(err, '\0', sizeof(err)) != NULL, "err is not a string");
    if (rc == 0)
        fuzz_check(cfg.max_token_bytes > 0 && cfg.max_body_bytes > 0 && cfg.issuer != NULL, "a loaded setting is missing");
    config_free(&cfg);
    free(text);
    return 0;
}
