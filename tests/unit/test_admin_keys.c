/* test_admin_keys.c - loading admin API keys and checking a presented key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "revokd/admin_keys.h"

#include "unit_util.h"

#define KEY1 "k1-0123456789abcdef"
#define KEY2 "second-key-with-32-bytes-of-text"

static struct {
    char dir[PATH_MAX];
    char path[PATH_MAX + 32];
    char err[256];
} fx;

static int group_setup(void **state)
{
    (void)state;
    if (unit_tmpdir_create(fx.dir, sizeof(fx.dir)) != 0)
        return -1;
    unit_path_in(fx.path, sizeof(fx.path), fx.dir, "admin-keys");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    static const char *const files[] = {"admin-keys"};

    unit_tmpdir_remove(fx.dir, files, sizeof(files) / sizeof(files[0]));
    return 0;
}

/* Writes text as the keys file and loads it. */
static struct admin_keys *load_text(const char *text)
{
    unit_write_file(fx.path, text, strlen(text));
    fx.err[0] = '\0';
    return admin_keys_load(fx.path, fx.err, sizeof(fx.err));
}

static bool check(const struct admin_keys *keys, const char *s)
{
    return admin_keys_check(keys, s, strlen(s));
}

static void expect_err(const char *part)
{
    unit_expect_contains(fx.err, part);
}

static void test_load_with_comments_and_blanks(void **state)
{
    (void)state;
    struct admin_keys *keys = load_text("# admin keys for revokd\n"
                                        "\n"
                                        KEY1 "\n"
                                        "   \n"
                                        "\r\n"
                                        "# " KEY2 " is the on-call key\n"
                                        KEY2 " \t\r\n");
    assert_non_null(keys);
    assert_true(check(keys, KEY1));
    assert_true(check(keys, KEY2));
    /* The comment is not a key, nor is its text. */
    assert_false(check(keys, "# admin keys for revokd"));
    assert_false(check(keys, "# " KEY2 " is the on-call key"));
    /* Trailing blanks were the file's, not the key's. */
    assert_false(check(keys, KEY2 " "));
    admin_keys_free(keys);

    /* So were leading ones: a presented key never has them (request_bearer
     * drops the blanks around it), so such a key could never match. */
    keys = load_text("  " KEY1 "\n\t" KEY2 "\n \t # indented comment\n");
    assert_non_null(keys);
    assert_true(check(keys, KEY1));
    assert_true(check(keys, KEY2));
    assert_false(check(keys, "  " KEY1));
    assert_false(check(keys, "# indented comment"));
    admin_keys_free(keys);

    /* No final newline. */
    keys = load_text(KEY1);
    assert_non_null(keys);
    assert_true(check(keys, KEY1));
    admin_keys_free(keys);
}

static void test_check_exact_only(void **state)
{
    (void)state;
    struct admin_keys *keys = load_text(KEY1 "\n" KEY2 "\n");

    assert_non_null(keys);
    assert_true(check(keys, KEY1));
    assert_true(check(keys, KEY2));
    /* A prefix, an extension, another case, empty: all refused. */
    assert_false(check(keys, "k1-0123456789abcde"));
    assert_false(check(keys, "k"));
    assert_false(check(keys, KEY1 "0"));
    assert_false(check(keys, KEY1 "\n"));
    assert_false(check(keys, KEY1 KEY2));
    assert_false(check(keys, "K1-0123456789ABCDEF"));
    assert_false(check(keys, ""));
    assert_false(admin_keys_check(keys, KEY1, 0));
    /* len decides, not the NUL: a longer buffer cut to the key's length. */
    assert_true(admin_keys_check(keys, KEY1 "trailing", strlen(KEY1)));
    assert_false(admin_keys_check(keys, KEY1, strlen(KEY1) - 1));
    admin_keys_free(keys);
}

static void test_null_keys(void **state)
{
    (void)state;
    assert_false(admin_keys_check(NULL, KEY1, strlen(KEY1)));
    assert_false(admin_keys_check(NULL, "", 0));
    admin_keys_free(NULL);
}

static void test_short_key_refused(void **state)
{
    (void)state;
    /* ADMIN_KEY_MIN (16) bytes is enough; 15 is not. */
    struct admin_keys *keys = load_text("0123456789abcdef\n");
    assert_non_null(keys);
    assert_true(check(keys, "0123456789abcdef"));
    admin_keys_free(keys);

    assert_null(load_text(KEY1 "\n# comment\n0123456789abcde\n"));
    expect_err("key on line 3 is shorter than 16 bytes");
    /* Trailing blanks do not count towards the length. */
    assert_null(load_text("0123456789abcde   \n"));
    expect_err("shorter than 16 bytes");
}

static void test_empty_file_refused(void **state)
{
    (void)state;
    assert_null(load_text(""));
    expect_err("holds no key");
    assert_null(load_text("\n\n  \n"));
    expect_err("holds no key");
    assert_null(load_text("# only a comment, no keys at all\n"));
    expect_err("holds no key");
}

static void test_missing_file(void **state)
{
    (void)state;
    char path[PATH_MAX + 32];

    unit_path_in(path, sizeof(path), fx.dir, "does-not-exist");
    fx.err[0] = '\0';
    assert_null(admin_keys_load(path, fx.err, sizeof(fx.err)));
    expect_err("cannot open");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_with_comments_and_blanks),
        cmocka_unit_test(test_check_exact_only),
        cmocka_unit_test(test_null_keys),
        cmocka_unit_test(test_short_key_refused),
        cmocka_unit_test(test_empty_file_refused),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
