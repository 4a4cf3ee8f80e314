/* dpkg version order and the installed-version lookup in /var/lib/dpkg/status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "debver.h"

#include <errno.h>

static void test_order(void **state) {
    (void)state;
    static const struct {
        const char *a, *b;
        int want;
    } cases[] = {
        {"7.2-3", "7.2-4", -1},     {"7.2-4", "7.2-10", -1},  {"7.2-10", "7.3-1", -1},
        {"7.3-1", "8.0.0", -1},     {"7.2-12", "7.3-1", -1},  {"7.4-3", "8.0.0", -1},
        {"8.0.4", "8.0.10", -1},    {"9.1.4", "9.1.4.1", -1}, {"9.1.4.1", "9.1.5", -1},
        {"8.2.5~rc1", "8.2.5", -1}, {"1.0~~", "1.0~", -1},    {"1.0", "1.0+b1", -1},
        {"7.2-4", "7.2-4", 0},      {"7.2-04", "7.2-4", 0},   {"1:1.0", "2.0", 1},
        {"0:7.2-4", "7.2-4", 0},    {"2:0.1", "1:9.9", 1},    {"1.0-1", "1.0", 1},
        {"1.0", "1.0-0", 0},        {"1.0a", "1.0", 1},       {"1.0a", "1.0+", -1},
        {"7.2-3", "7.2-3.1", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = debver_cmp(cases[i].a, cases[i].b);
        int sign = got > 0 ? 1 : got < 0 ? -1 : 0;
        if (sign != cases[i].want) {
            fail_msg(
                "debver_cmp(%s, %s) = %d, want %d", cases[i].a, cases[i].b, sign, cases[i].want
            );
        }
        int back = debver_cmp(cases[i].b, cases[i].a);
        assert_int_equal(back > 0 ? 1 : back < 0 ? -1 : 0, -cases[i].want);
    }
}

static void test_installed(void **state) {
    (void)state;
    const char *status = "Package: qemu-server-doc\nStatus: install ok installed\nVersion: 1.0\n\n"
                         "Package: qemu-server\n"
                         "Status: install ok installed\n"
                         "Description: tools\n continued line\n"
                         "version: 7.2-3\n\n"
                         "Package: other\nStatus: install ok installed\nVersion: 9\n";
    char v[64];
    assert_int_equal(debver_installed(status, "qemu-server", v, sizeof(v)), 0);
    assert_string_equal(v, "7.2-3"); /* field names are case-insensitive */
    assert_int_equal(debver_installed(status, "other", v, sizeof(v)), 0);
    assert_string_equal(v, "9");
    assert_int_equal(debver_installed(status, "absent", v, sizeof(v)), -ENOENT);

    /* mid-upgrade states do not count as installed */
    const char *half = "Package: qemu-server\nStatus: install ok unpacked\nVersion: 7.2-4\n";
    assert_int_equal(debver_installed(half, "qemu-server", v, sizeof(v)), -ESRCH);
    const char *removed = "Package: qemu-server\nStatus: deinstall ok config-files\n"
                          "Version: 7.2-4\n";
    assert_int_equal(debver_installed(removed, "qemu-server", v, sizeof(v)), -ESRCH);
    /* a stanza that only mentions the package is not its stanza */
    const char *other = "Package: pve-manager\nStatus: install ok installed\n"
                        "Depends: qemu-server (>= 8.0)\nVersion: 8.1\n";
    assert_int_equal(debver_installed(other, "qemu-server", v, sizeof(v)), -ENOENT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_installed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
