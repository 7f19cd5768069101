/* fuzz_clients_file.c - the two credential files an operator writes:
 * clients_load() (REVOKD_CLIENTS_FILE, `client_id:secret[:permissions]` a
 * line) and admin_keys_load() (REVOKD_ADMIN_KEYS_FILE, `[name:]key` a line),
 * both over the input, written anew for every input to one temporary file
 * made at start. What loads is asked about a client and a key.
 *
 * Asserts: a refusal says why, in a string; a client's permissions are
 * known ones, and there is none without a clients file; an admin key's name
 * is 1..ADMIN_NAME_MAX bytes, there is none without admin keys, and an empty
 * key never matches. */
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
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    char dir[PATH_MAX], file[PATH_MAX + 32];
} fx;

static void cleanup(void)
{
    unlink(fx.file);
    rmdir(fx.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;

    fuzz_make_temp_dir(fx.dir, sizeof(fx.dir), "fuzz-clients");
    snprintf(fx.file, sizeof(fx.file), "%s/credentials", fx.dir);
    fuzz_write_file(fx.file, "", 0);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char secret[] = "client-secret-0123456789";
    char err[1024];

    fuzz_write_file(fx.file, data, size);

    err[0] = '\0';
    struct clients *c = clients_load(fx.file, err, sizeof(err));
    fuzz_check(c != NULL || err[0] != '\0', "clients refused without a reason");
    fuzz_check(memchr(err, '\0', sizeof(err)) != NULL, "err is not a string");
    int perms = clients_check(c, "app", secret, sizeof(secret) - 1);
    fuzz_check(perms >= -1 && perms <= (CLIENT_REVOKE_ANY | CLIENT_GLOBAL_REVOCATION), "unknown permissions");
    fuzz_check(c != NULL || perms == -1, "a client without a clients file");
    clients_free(c);

    err[0] = '\0';
    struct admin_keys *k = admin_keys_load(fx.file, err, sizeof(err));
    fuzz_check(k != NULL || err[0] != '\0', "admin keys refused without a reason");
    fuzz_check(memchr(err, '\0', sizeof(err)) != NULL, "err is not a string");
    const char *name = admin_keys_check(k, "admin-key-fuzz-0123456789", 25);
    fuzz_check(k != NULL || name == NULL, "an admin key without admin keys");
    fuzz_check(name == NULL || (name[0] != '\0' && strlen(name) <= ADMIN_NAME_MAX), "an admin key's name out of bounds");
    fuzz_check(admin_keys_check(k, "", 0) == NULL, "an empty admin key");
    admin_keys_free(k);
    return 0;
}
