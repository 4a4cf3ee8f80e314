/* Allocation policies and placement order over a hand-built host model (no I/O). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hostmodel.h"
#include "rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct model_type P40[] = {
    /* max: build() sets what is available */
    {"nvidia-46", "GRID P40-1Q", 1024, 0},  {"nvidia-47", "GRID P40-2Q", 2048, 0},
    {"nvidia-49", "GRID P40-4Q", 4096, 0},  {"nvidia-53", "GRID P40-24Q", 24576, 0},
    {"nvidia-155", "GRID P40-1B", 1024, 0}, {"nvidia-54", "GRID P40-1A", 1024, 0},
    {"nvidia-283", "GRID P40-4C", 4096, 0}, {"nvidia-900", "NVIDIA A100-1-5C", 5120, 0},
    {"nvidia-156", "GRID P40-2B", 2048, 0}, {"nvidia-998", "Custom", 0, 0},
};
#define NT (sizeof(P40) / sizeof(P40[0]))

/* ngpus GPUs, each one parent offering all P40 types with `avail` instances. */
static void build(struct host *h, size_t ngpus, long avail) {
    model_build(h, ngpus, P40, NT, 64);
    for (size_t g = 0; g < ngpus; g++) {
        for (size_t t = 0; t < NT; t++) {
            h->parents[g].types[t].available = avail;
        }
    }
}

static void add_mdev(struct host *h, size_t gpu, const char *type, unsigned long vmid) {
    model_add_mdev(h, gpu, type, vmid);
}

static const struct inv_typedef *def(struct host *h, size_t gpu, const char *id) {
    const struct inv_typedef *d = inv_gpu_typedef(h, gpu, id);
    assert_non_null(d);
    return d;
}

static void test_policies(void **state) {
    (void)state;
    static const struct {
        enum pvh_policy policy;
        const char *resident[3];
        const char *want;
        bool fits;
        const char *why;
        const char *groups; /* NULL: the default [[A,B,C,Q]] */
    } cases[] = {
        /* auto (the default): the driver decides, never stricter, whatever is resident */
        {POLICY_AUTO, {"nvidia-46"}, "nvidia-47", true, NULL, NULL},
        {POLICY_AUTO, {"nvidia-46"}, "nvidia-155", true, NULL, NULL},
        {POLICY_AUTO, {"nvidia-777"}, "nvidia-998", true, NULL, NULL},
        /* empty GPU: anything */
        {POLICY_EQUAL_SIZE, {NULL}, "nvidia-53", true, NULL, NULL},
        /* equal-size: same size and series */
        {POLICY_EQUAL_SIZE, {"nvidia-46"}, "nvidia-46", true, NULL, NULL},
        /* same size, Q and C share (default series group) */
        {POLICY_EQUAL_SIZE, {"nvidia-49"}, "nvidia-283", true, NULL, NULL},
        /* same size, Q and B share in the default group, not when the admin's groups split them */
        {POLICY_EQUAL_SIZE, {"nvidia-46"}, "nvidia-155", true, NULL, NULL},
        {POLICY_EQUAL_SIZE, {"nvidia-46"}, "nvidia-155", false, "series Q and B", "QC"},
        /* a resident whose type the GPU does not list, and a wanted type of unknown size: the
         * rule cannot be checked (this dereferenced NULL once) */
        {POLICY_EQUAL_SIZE, {"nvidia-777"}, "nvidia-998", false, "cannot be checked", NULL},
        {POLICY_HOMOGENEOUS, {"nvidia-777"}, "nvidia-998", false, "only one type", NULL},
        {POLICY_MIXED_SIZE, {"nvidia-777"}, "nvidia-998", true, NULL, NULL},
        /* other size refused, with the size named */
        {POLICY_EQUAL_SIZE, {"nvidia-46"}, "nvidia-47", false, "locks it to 1024 MiB", NULL},
        /* MIG-backed types are exempt, and MIG residents do not lock the GPU */
        {POLICY_EQUAL_SIZE, {"nvidia-46"}, "nvidia-900", true, NULL, NULL},
        {POLICY_EQUAL_SIZE, {"nvidia-900"}, "nvidia-47", true, NULL, NULL},
        /* homogeneous: same type only */
        {POLICY_HOMOGENEOUS, {"nvidia-49"}, "nvidia-49", true, NULL, NULL},
        {POLICY_HOMOGENEOUS, {"nvidia-49"}, "nvidia-283", false, "only one type", NULL},
        /* mixed-size: sum within 24 GiB */
        {POLICY_MIXED_SIZE, {"nvidia-49", "nvidia-47"}, "nvidia-46", true, NULL, NULL},
        {POLICY_MIXED_SIZE,
         {"nvidia-49", "nvidia-47"},
         "nvidia-53",
         false,
         "6144 MiB are in use",
         NULL},
        /* none: the driver decides */
        {POLICY_NONE, {"nvidia-46"}, "nvidia-53", true, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct host h;
        build(&h, 1, 4);
        struct pvh_config cfg;
        config_defaults(&cfg);
        cfg.policy = cases[i].policy;
        if (cases[i].groups) {
            strcpy(cfg.series_groups[0], cases[i].groups);
        }
        for (size_t r = 0; r < 3 && cases[i].resident[r]; r++) {
            add_mdev(&h, 0, cases[i].resident[r], 100 + r);
        }
        char why[512] = "";
        bool fits = rules_type_fits(&cfg, &h, 0, def(&h, 0, cases[i].want), NULL, why, sizeof(why));
        if (fits != cases[i].fits || (cases[i].why && !strstr(why, cases[i].why))) {
            fail_msg("case %zu (%s): fits=%d why='%s'", i, cases[i].want, fits, why);
        }
        inventory_free(&h);
    }
}

static void test_series_groups_config(void **state) {
    (void)state;
    struct host h;
    build(&h, 1, 4);
    struct pvh_config cfg;
    config_defaults(&cfg);
    cfg.policy = POLICY_EQUAL_SIZE;
    cfg.nseries_groups = 0; /* no groups: Q and C may not share */
    add_mdev(&h, 0, "nvidia-49", 100);
    assert_false(rules_type_fits(&cfg, &h, 0, def(&h, 0, "nvidia-283"), NULL, NULL, 0));
    strcpy(cfg.series_groups[0], "ABQ");
    cfg.nseries_groups = 1;
    add_mdev(&h, 0, "nvidia-49", 101);
    assert_false(rules_type_fits(&cfg, &h, 0, def(&h, 0, "nvidia-283"), NULL, NULL, 0));
    inventory_free(&h);
    build(&h, 1, 4);
    add_mdev(&h, 0, "nvidia-46", 100);
    assert_true(rules_type_fits(&cfg, &h, 0, def(&h, 0, "nvidia-155"), NULL, NULL, 0));
    inventory_free(&h);
}

static void test_ignore_and_available(void **state) {
    (void)state;
    struct host h;
    build(&h, 2, 4);
    struct pvh_config cfg;
    config_defaults(&cfg);
    cfg.policy = POLICY_EQUAL_SIZE;
    add_mdev(&h, 0, "nvidia-46", 100);
    bool ignore[64] = {true};
    assert_true(rules_type_fits(&cfg, &h, 0, def(&h, 0, "nvidia-47"), ignore, NULL, 0));
    assert_false(rules_type_fits(&cfg, &h, 0, def(&h, 0, "nvidia-47"), NULL, NULL, 0));

    /* available_instances = 0 refuses under every policy */
    cfg.policy = POLICY_NONE;
    const struct inv_type *t;
    h.parents[1].types[1].available = 0; /* nvidia-47 on GPU 1 */
    assert_int_equal(rules_pick_parent(&cfg, &h, 1, "GRID P40-2Q", NULL, &t), NO_INDEX);
    assert_int_equal(rules_pick_parent(&cfg, &h, 1, "P40-1Q", NULL, &t), 1);
    assert_string_equal(inv_def(&h, t)->id, "nvidia-46");

    char buf[512];
    cfg.policy = POLICY_EQUAL_SIZE;
    rules_describe_residents(&h, 0, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "1 x GRID P40-1Q (1024 MiB) for VM 100");
    rules_describe_residents(&h, 1, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "nothing");
    rules_types_fitting(&cfg, &h, 0, NO_INDEX, NULL, buf, sizeof(buf));
    /* the 1024 MiB types of the default group, and MIG, which is exempt */
    assert_string_equal(buf, "P40-1Q, P40-1B, P40-1A, A100-1-5C");
    strcpy(cfg.series_groups[0], "QC");
    rules_types_fitting(&cfg, &h, 0, NO_INDEX, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "P40-1Q, A100-1-5C");
    rules_other_gpus(&cfg, &h, "nvidia-47", buf, sizeof(buf));
    assert_string_equal(buf, "none"); /* GPU 1 reports 0 for nvidia-47 */
    rules_other_gpus(&cfg, &h, "nvidia-49", buf, sizeof(buf));
    assert_string_equal(buf, "0000:07:00.0");
    inventory_free(&h);
}

static void test_order(void **state) {
    (void)state;
    struct host h;
    build(&h, 4, 4);
    struct pvh_config cfg;
    config_defaults(&cfg);
    /* GPU 0: two 1Q, GPU 1: one 2Q, GPU 2: one 1Q, GPU 3: empty */
    add_mdev(&h, 0, "nvidia-46", 100);
    add_mdev(&h, 0, "nvidia-46", 101);
    add_mdev(&h, 1, "nvidia-47", 102);
    add_mdev(&h, 2, "nvidia-46", 103);
    size_t order[4] = {3, 2, 1, 0};
    rules_order_candidates(&cfg, &h, order, 4, def(&h, 0, "nvidia-46"));
    /* pack: same size first, fuller first; then by count, then address; empty last */
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 1);
    assert_int_equal(order[3], 3);
    cfg.placement = PLACEMENT_SPREAD;
    size_t order2[4] = {0, 1, 2, 3};
    rules_order_candidates(&cfg, &h, order2, 4, def(&h, 0, "nvidia-46"));
    assert_int_equal(order2[0], 3);
    assert_int_equal(order2[1], 1); /* one vGPU, lower address than GPU 2 */
    assert_int_equal(order2[2], 2);
    assert_int_equal(order2[3], 0);
    /* deterministic: same input, same output */
    size_t order3[4] = {2, 0, 3, 1};
    rules_order_candidates(&cfg, &h, order3, 4, def(&h, 0, "nvidia-46"));
    assert_memory_equal(order2, order3, sizeof(order2));
    inventory_free(&h);
}

/* How a GPU behaves, from what it hosts and what the driver still offers. */
static void test_gpu_mode(void **state) {
    (void)state;
    struct host h;
    build(&h, 1, 4);
    assert_int_equal(rules_gpu_mode(&h, 0, NULL), GPU_MODE_IDLE);
    add_mdev(&h, 0, "nvidia-46", 100);
    /* offers other sizes while hosting 1024 MiB: mixed-size */
    assert_int_equal(rules_gpu_mode(&h, 0, NULL), GPU_MODE_MIXED_SIZE);
    for (size_t t = 0; t < h.parents[0].ntypes; t++) {
        const struct inv_typedef *d = inv_def(&h, &h.parents[0].types[t]);
        if (d->info.fb_mib != 1024 && !d->info.mig) {
            h.parents[0].types[t].available = 0;
        }
    }
    assert_int_equal(rules_gpu_mode(&h, 0, NULL), GPU_MODE_EQUAL_SIZE);
    assert_int_equal(rules_hosted_size(&h, 0, NULL), 1024);
    bool ignore[64] = {true};
    assert_int_equal(rules_gpu_mode(&h, 0, ignore), GPU_MODE_IDLE);
    add_mdev(&h, 0, "nvidia-47", 101);
    assert_int_equal(rules_gpu_mode(&h, 0, NULL), GPU_MODE_MIXED_SIZE);
    inventory_free(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpu_mode),
        cmocka_unit_test(test_policies),
        cmocka_unit_test(test_series_groups_config),
        cmocka_unit_test(test_ignore_and_available),
        cmocka_unit_test(test_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
