/* fuzz_config.c - config_load() over a command line: the input, split at
 * each NUL or newline into at most 32 arguments after "revokd" ("--flag",
 * "value" or "--flag=value"). No REVOKD_* variable is set meanwhile, so
 * every setting starts from the table's default. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 32

#define check(cond, what)                                                                        \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_config: %s\n", what);                                         \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

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

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    scrub_environment();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *args[MAX_ARGS + 2] = {"revokd"}, err[1024];
    char *text = malloc(size + 1);
    int argc = 1;
    struct config cfg;

    check(text != NULL, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
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
    check(rc == 0 || rc == -1, "an unknown answer of config_load");
    check(rc == 0 || err[0] != '\0', "refused without a reason");
    check(memchr(err, '\0', sizeof(err)) != NULL, "err is not a string");
    if (rc == 0)
        check(cfg.max_token_bytes > 0 && cfg.max_body_bytes > 0 && cfg.issuer != NULL, "a loaded setting is missing");
    config_free(&cfg);
    free(text);
    return 0;
}
