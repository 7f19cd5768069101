/* test_utf8.c - utf8_valid() and utf8_is_text() against the well-formed
 * boundaries of RFC 3629 and the classic malformations: overlong forms,
 * surrogates, code points beyond U+10FFFF, stray and missing continuation
 * bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "revokd/utf8.h"

static bool valid(const char *s)
{
    return utf8_valid(s, strlen(s));
}

static void test_well_formed(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "", "alice", "alice+x@example.com",
        "\xC2\x80", "\xDF\xBF",                 /* U+0080, U+07FF */
        "\xE0\xA0\x80", "\xED\x9F\xBF",         /* U+0800, U+D7FF */
        "\xEE\x80\x80", "\xEF\xBF\xBF",         /* U+E000, U+FFFF */
        "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", /* U+10000, U+10FFFF */
        "caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x94\x91",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (!valid(ok[i]))
            print_error("refused: case %zu\n", i);
        assert_true(valid(ok[i]));
    }
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xFF", "a\xFE" "b", "\x80", "\xBF",           /* not a lead byte */
        "\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF",        /* overlong '/' and others */
        "\xE0\x9F\xBF", "\xF0\x8F\xBF\xBF",            /* overlong */
        "\xED\xA0\x80", "\xED\xBF\xBF",                /* surrogates */
        "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80", /* > U+10FFFF */
        "\xC3", "\xE2\x82", "\xF0\x9F\x94",            /* cut short */
        "\xC3(", "\xE2\x28\xA1", "\xE2\x82\x28", "\xF0\x9F\x28\x91", /* bad continuation */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (valid(bad[i]))
            print_error("accepted: case %zu\n", i);
        assert_false(valid(bad[i]));
    }
    /* Cut by len, not by the NUL. */
    assert_false(utf8_valid("\xC3\xA9", 1));
    assert_true(utf8_valid("\xC3\xA9", 2));
}

static void test_text(void **state)
{
    (void)state;
    assert_true(utf8_is_text("user-42", 7));
    assert_true(utf8_is_text("caf\xC3\xA9 \xC2\x85", 8)); /* C1 controls are not C0 */
    assert_false(utf8_is_text("a\r\nb", 4));
    assert_false(utf8_is_text("a\tb", 3));
    assert_false(utf8_is_text("a\x7F", 2));
    assert_false(utf8_is_text("a\0b", 3));
    assert_false(utf8_is_text("\xFF", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
