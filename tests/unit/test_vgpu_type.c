/* NVIDIA type names (time-sliced and MIG-backed) and mdev descriptions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vgpu_type.h"

#include <string.h>

static void test_names(void **state) {
    (void)state;
    static const struct {
        const char *name;
        int rc;
        const char *shortn, *gpu;
        char series;
        unsigned fb;
        bool mig;
    } cases[] = {
        {"GRID P40-1Q", 0, "P40-1Q", "P40", 'Q', 1024, false},
        {"GRID P40-2B", 0, "P40-2B", "P40", 'B', 2048, false},
        {"GRID P40-24C", 0, "P40-24C", "P40", 'C', 24576, false},
        {"Grid M60-0Q", 0, "M60-0Q", "M60", 'Q', 512, false}, /* 0 = 512 MB */
        {"GRID RTX6000-1Q", 0, "RTX6000-1Q", "RTX6000", 'Q', 1024, false},
        {"NVIDIA A40-48Q", 0, "A40-48Q", "A40", 'Q', 49152, false},
        {"NVIDIA RTX Pro 6000 Blackwell DC-48C", 0, "DC-48C", "DC", 'C', 49152, false},
        {"NVIDIA A100-1-5C", 0, "A100-1-5C", "A100", 'C', 5120, true},
        {"NVIDIA A100-1-5CME", 0, "A100-1-5CME", "A100", 'C', 5120, true},
        {"NVIDIA H200X-1-18C", 0, "H200X-1-18C", "H200X", 'C', 18432, true},
        {"NVIDIA A100X-2-10C", 0, "A100X-2-10C", "A100X", 'C', 10240, true},
        {"GRID T4-16A", 0, "T4-16A", "T4", 'A', 16384, false},
        {"GRID P40-1Z", -22, "P40-1Z", "", 0, 0, false},   /* unknown series */
        {"GRID P40-01Q", -22, "P40-01Q", "", 0, 0, false}, /* leading zero */
        {"i915-GVTg_V5_4", -22, "i915-GVTg_V5_4", "", 0, 0, false},
        {"", -22, "", "", 0, 0, false},
        {"GRID -1Q", -22, "-1Q", "", 0, 0, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vgpu_type_info t;
        memset(&t, 0, sizeof(t));
        int rc = vgpu_type_parse_name(cases[i].name, &t);
        if (rc != cases[i].rc) {
            fail_msg("'%s': rc %d, want %d", cases[i].name, rc, cases[i].rc);
        }
        assert_string_equal(t.short_name, cases[i].shortn);
        if (rc == 0) {
            assert_string_equal(t.gpu, cases[i].gpu);
            assert_int_equal(t.series, cases[i].series);
            assert_int_equal(t.fb_mib, cases[i].fb);
            assert_int_equal(t.mig, cases[i].mig);
        }
    }
}

static void test_descriptions(void **state) {
    (void)state;
    struct vgpu_type_info t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(
        vgpu_type_parse_description(
            "num_heads=4, frl_config=45, framebuffer=2048M, "
            "max_resolution=5120x2880, max_instance=12",
            &t
        ),
        0
    );
    assert_int_equal(t.fb_mib, 2048);
    assert_int_equal(t.max_instance, 12);
    assert_int_equal(t.num_heads, 4);
    assert_int_equal(t.frl_config, 45);
    assert_string_equal(t.max_resolution, "5120x2880");

    memset(&t, 0, sizeof(t));
    assert_int_equal(vgpu_type_parse_description("framebuffer=1G, future_key=x", &t), 0);
    assert_int_equal(t.fb_mib, 1024);

    memset(&t, 0, sizeof(t));
    assert_int_equal(vgpu_type_parse_description("framebuffer=lots", &t), -22);
    assert_int_equal(vgpu_type_parse_description("max_instance=-1", &t), -22);
    assert_int_equal(vgpu_type_parse_description("just words", &t), -22);
    assert_int_equal(vgpu_type_parse_description("", &t), 0);

    /* description's framebuffer wins over the name's size (960M on a 1Q) */
    struct vgpu_type_info d;
    vgpu_type_describe("GRID P40-1Q", "framebuffer=960M, max_instance=24", &d);
    assert_int_equal(d.fb_mib, 960);
    assert_int_equal(d.series, 'Q');
    vgpu_type_describe(NULL, NULL, &d); /* mtty-like type with neither */
    assert_false(d.named);
}

static void test_matches(void **state) {
    (void)state;
    assert_true(vgpu_type_matches("nvidia-46", "nvidia-46", "GRID P40-1Q"));
    assert_true(vgpu_type_matches("GRID P40-1Q", "nvidia-46", "GRID P40-1Q"));
    assert_true(vgpu_type_matches("grid p40-1q", "nvidia-46", "GRID P40-1Q"));
    assert_true(vgpu_type_matches("P40-1Q", "nvidia-46", "GRID P40-1Q"));
    assert_true(vgpu_type_matches("p40-1q", "nvidia-46", "GRID P40-1Q"));
    assert_false(vgpu_type_matches("NVIDIA-46", "nvidia-46", "GRID P40-1Q")); /* ids exact */
    assert_false(vgpu_type_matches("P40-1", "nvidia-46", "GRID P40-1Q"));
    assert_false(vgpu_type_matches("GRID P40-2Q", "nvidia-46", "GRID P40-1Q"));
    assert_false(vgpu_type_matches("P40-1Q", "nvidia-46", ""));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_descriptions),
        cmocka_unit_test(test_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
