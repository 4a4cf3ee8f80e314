/* The UUID scheme shared with qemu-server and vgpu_unlock-rs, both ways; VMID parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mdev_uuid.h"

static void test_format(void **state) {
    (void)state;
    char u[MDEV_UUID_LEN + 1];
    mdev_uuid_for(100, 0, u);
    assert_string_equal(u, "00000000-0000-0000-0000-000000000100");
    mdev_uuid_for(8006, 1, u); /* qemu-server test q35-linux-hostpci-mapping */
    assert_string_equal(u, "00000001-0000-0000-0000-000000008006");
    mdev_uuid_for(999999999, 15, u);
    assert_string_equal(u, "00000015-0000-0000-0000-000999999999");
}

static void test_parse(void **state) {
    (void)state;
    static const struct {
        const char *uuid;
        bool ok;
        unsigned index;
        unsigned long vmid;
    } cases[] = {
        {"00000000-0000-0000-0000-000000000100", true, 0, 100},
        {"00000003-0000-0000-0000-000000004242", true, 3, 4242},
        {"00000000-0000-0000-0000-000999999999", true, 0, 999999999},
        {"00000000-0000-0000-0000-000000000099", false, 0, 0},  /* VMID below 100 */
        {"00000000-0000-0000-0000-00000000010a", false, 0, 0},  /* hex, not decimal */
        {"0000000a-0000-0000-0000-000000000100", false, 0, 0},  /* index not decimal */
        {"00000000-0000-0000-0001-000000000100", false, 0, 0},  /* group 4 not zero */
        {"00000000-0000-0000-0000-00000000010", false, 0, 0},   /* too short */
        {"00000000-0000-0000-0000-000000000100 ", false, 0, 0}, /* trailing space */
        {"b4c5a7c8-1f3e-4e55-9a31-5b0a0c0ffee1", false, 0, 0},  /* a random UUID */
        {"00000000-0000-0000-0000-0000000001OO", false, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned idx = 99;
        unsigned long vmid = 99;
        bool ok = mdev_uuid_parse(cases[i].uuid, &idx, &vmid);
        if (ok != cases[i].ok) {
            fail_msg("mdev_uuid_parse(%s) = %d", cases[i].uuid, ok);
        }
        if (ok) {
            assert_int_equal(idx, cases[i].index);
            assert_int_equal(vmid, cases[i].vmid);
        }
    }
    /* round trip */
    for (unsigned long v = 100; v < 100000000; v = v * 7 + 3) {
        char u[MDEV_UUID_LEN + 1];
        unsigned idx;
        unsigned long back;
        mdev_uuid_for(v, (unsigned)(v % 16), u);
        assert_true(mdev_uuid_parse(u, &idx, &back));
        assert_int_equal(back, v);
        assert_int_equal(idx, v % 16);
    }
}

static void test_canonical(void **state) {
    (void)state;
    assert_true(uuid_is_canonical("b4c5a7c8-1f3e-4e55-9a31-5b0a0c0ffee1"));
    assert_false(uuid_is_canonical("B4C5A7C8-1F3E-4E55-9A31-5B0A0C0FFEE1")); /* kernel: %pUl */
    assert_false(uuid_is_canonical("b4c5a7c81f3e4e559a315b0a0c0ffee1"));
    assert_false(uuid_is_canonical("power"));
}

static void test_vmid(void **state) {
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"100", true},          {"999999999", true}, {"99", false},
        {"1000000000", false},  {"0100", false},     {"-100", false},
        {"+100", false},        {"100 ", false},     {"", false},
        {"1e3", false},         {"abc", false},      {"4294967396", false},
        {"00000000100", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned long v;
        if (vmid_parse(cases[i].s, &v) != cases[i].ok) {
            fail_msg("vmid_parse('%s') should be %d", cases[i].s, cases[i].ok);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_vmid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
