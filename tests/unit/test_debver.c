/* dpkg version order and the installed-version lookup in /var/lib/dpkg/status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "debver.h"
#include "qemu_server.h"

#include <errno.h>
#include <string.h>

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

/* Each feature of qemu-server from the release that brought it; one message for every caller. */
static void test_qemu_server_features(void **state) {
    (void)state;
    static const struct {
        const char *ver;
        enum qsrv_feature f;
        bool yes;
    } cases[] = {
        {"7.2-3", QSRV_PASSES_UUID, false},    {"7.2-4", QSRV_PASSES_UUID, true},
        {"8.0.3", QSRV_MAPPING_MDEV, false},   {"8.0.4", QSRV_MAPPING_MDEV, true},
        {"8.2.4", QSRV_VENDOR_IFACE, false},   {"8.2.5", QSRV_VENDOR_IFACE, true},
        {"9.0.0", QSRV_VENDOR_IFACE, true},    {"8.3.8", QSRV_LIVE_MIGRATION, false},
        {"8.3.9", QSRV_LIVE_MIGRATION, true},  {"", QSRV_PASSES_UUID, false},
        {"8.10.0", QSRV_LIVE_MIGRATION, true}, {"8.2.5~rc1", QSRV_VENDOR_IFACE, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(qsrv_supports(cases[i].ver, cases[i].f), cases[i].yes);
        struct pvh_err e = {0};
        assert_int_equal(
            qsrv_require(cases[i].ver, cases[i].f, "pve2", &e), cases[i].yes ? 0 : -ENOTSUP
        );
        if (!cases[i].yes) {
            assert_non_null(strstr(e.msg, "on node pve2 cannot"));
            assert_non_null(strstr(e.msg, qsrv_since(cases[i].f)));
            assert_string_equal(e.reason, "qemu-server-old");
            assert_non_null(strstr(e.hint, "apt full-upgrade"));
        }
    }
    assert_false(qsrv_supports(NULL, QSRV_PASSES_UUID));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_installed),
        cmocka_unit_test(test_qemu_server_features),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
