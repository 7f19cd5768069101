/* fuzz_clients_file.c - the two credential files an operator writes:
 * clients_load() (REVOKD_CLIENTS_FILE, `client_id:secret[:permissions]` a
 * line) and admin_keys_load() (REVOKD_ADMIN_KEYS_FILE, `[name:]key` a line),
 * both over the input, written anew for every input to one temporary file
 * made at start. What loads is asked about a client and a key. */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "revokd/admin_keys.h"
#include "revokd/clients.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond, what)                                                                        \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_clients_file: %s\n", what);                                   \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static struct {
    char dir[PATH_MAX], file[PATH_MAX + 32];
} fx;

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");

    check(f != NULL && fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write a file");
}

static void cleanup(void)
{
    unlink(fx.file);
    rmdir(fx.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    (void)argc;
    (void)argv;

    snprintf(fx.dir, sizeof(fx.dir), "%s/fuzz-clients-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : P_tmpdir);
    check(mkdtemp(fx.dir) != NULL, "cannot make a temporary directory");
    snprintf(fx.file, sizeof(fx.file), "%s/credentials", fx.dir);
    write_file(fx.file, "", 0);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char secret[] = "client-secret-0123456789";
    char err[1024];

    write_file(fx.file, data, size);

    err[0] = '\0';
    struct clients *c = clients_load(fx.file, err, sizeof(err));
    check(c != NULL || err[0] != '\0', "clients refused without a reason");
    check(memchr(err, '\0', sizeof(err)) != NULL, "err is not a string");
    int perms = clients_check(c, "app", secret, sizeof(secret) - 1);
    check(perms >= -1 && perms <= (CLIENT_REVOKE_ANY | CLIENT_GLOBAL_REVOCATION), "unknown permissions");
    check(c != NULL || perms == -1, "a client without a clients file");
    clients_free(c);

    err[0] = '\0';
    struct admin_keys *k = admin_keys_load(fx.file, err, sizeof(err));
    check(k != NULL || err[0] != '\0', "admin keys refused without a reason");
    check(memchr(err, '\0', sizeof(err)) != NULL, "err is not a string");
    const char *name = admin_keys_check(k, "admin-key-fuzz-0123456789", 25);
    check(k != NULL || name == NULL, "an admin key without admin keys");
    check(name == NULL || (name[0] != '\0' && strlen(name) <= ADMIN_NAME_MAX), "an admin key's name out of bounds");
    check(admin_keys_check(k, "", 0) == NULL, "an empty admin key");
    admin_keys_free(k);
    return 0;
}
