/* The host model from fake sysfs trees with the kernel's layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "inventory.h"
#include "vmstate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int setup(void **state) {
    struct fakehost *fh = calloc(1, sizeof(*fh));
    assert_int_equal(fh_create(fh), 0);
    *state = fh;
    return 0;
}

static int teardown(void **state) {
    fh_destroy(*state);
    free(*state);
    return 0;
}

static void test_p40_pair(void **state) {
    struct fakehost *fh = *state;
    assert_int_equal(fh_add_p40(fh, "0000:06:00.0"), 0);
    assert_int_equal(fh_add_p40(fh, "0000:07:00.0"), 0);
    assert_int_equal(
        fh_add_mdev(fh, "0000:06:00.0", "nvidia-47", "00000000-0000-0000-0000-000000000101"), 0
    );
    assert_int_equal(
        fh_add_mdev(fh, "0000:06:00.0", "nvidia-47", "b4c5a7c8-1f3e-4e55-9a31-5b0a0c0ffee1"), 0
    );
    struct hostfs fs;
    assert_int_equal(hostfs_open(&fs, fh->root), 0);
    struct host h = {0};
    struct pvh_err e;
    assert_int_equal(inventory_load_all(&fs, &h, &e), 0);
    assert_int_equal(h.ngpus, 2);
    assert_int_equal(h.nparents, 2);
    assert_string_equal(h.gpus[0].bdf, "0000:06:00.0");
    assert_true(inv_gpu_is_nvidia(&h, 0));
    assert_string_equal(h.gpus[0].driver, "nvidia");
    assert_int_equal(h.gpus[0].fb_mib, 24576);
    assert_int_equal(h.parents[0].ntypes, P40_NTYPES);
    /* sorted by name (the kernel returns hash order) */
    assert_string_equal(inv_def(&h, &h.parents[0].types[0])->id, "nvidia-155");
    const struct inv_type *t = inv_parent_type(&h, 0, "P40-2Q");
    assert_non_null(t);
    assert_string_equal(inv_def(&h, t)->name, "GRID P40-2Q");
    assert_int_equal(inv_def(&h, t)->info.fb_mib, 2048);
    assert_int_equal(inv_def(&h, t)->info.max_instance, 12);
    assert_int_equal(t->available, 10); /* the fake driver counted the two residents */
    assert_int_equal(inv_parent_type(&h, 0, "P40-1Q")->available, 0);
    assert_int_equal(inv_parent_type(&h, 1, "P40-1Q")->available, 24);
    assert_int_equal(h.nmdevs, 2);
    size_t m = inv_find_mdev(&h, "00000000-0000-0000-0000-000000000101");
    assert_int_not_equal(m, NO_INDEX);
    assert_true(h.mdevs[m].owned);
    assert_int_equal(h.mdevs[m].vmid, 101);
    assert_string_equal(h.mdevs[m].type_id, "nvidia-47");
    m = inv_find_mdev(&h, "b4c5a7c8-1f3e-4e55-9a31-5b0a0c0ffee1");
    assert_false(h.mdevs[m].owned);
    assert_int_equal(h.warnings.n, 0);
    inventory_free(&h);

    struct inv_mdev one;
    assert_int_equal(mdev_lookup(&fs, "00000000-0000-0000-0000-000000000101", &one), 0);
    assert_string_equal(one.parent_bdf, "0000:06:00.0");
    assert_string_equal(one.type_id, "nvidia-47");
    assert_int_equal(mdev_lookup(&fs, "00000000-0000-0000-0000-000000000102", &one), -ENOENT);
    struct inv_mdev *mine;
    size_t n;
    struct pvh_warnings w = {0};
    assert_int_equal(mdev_list(&fs, 101, &mine, &n, &w), 0);
    assert_int_equal(n, 1);
    free(mine);
    hostfs_close(&fs);
}

static void test_sriov(void **state) {
    struct fakehost *fh = *state;
    assert_int_equal(fh_add_a40_sriov(fh, "0000:41:00.0", 8), 0);
    assert_int_equal(
        fh_add_mdev(fh, "0000:41:00.5", "nvidia-558", "00000000-0000-0000-0000-000000000200"), 0
    );
    struct hostfs fs;
    assert_int_equal(hostfs_open(&fs, fh->root), 0);
    struct host h = {0};
    struct pvh_err e;
    size_t g;
    /* asking for a VF loads its whole physical GPU */
    assert_int_equal(inventory_load_gpu(&fs, &h, "0000:41:00.7", &g, &e), 0);
    assert_int_equal(h.ngpus, 1);
    assert_string_equal(h.gpus[g].bdf, "0000:41:00.0");
    assert_int_equal(h.nparents, 8); /* the PF itself offers no types */
    assert_true(h.parents[0].is_vf);
    assert_string_equal(h.parents[0].bdf, "0000:41:00.4");
    assert_string_equal(h.parents[7].bdf, "0000:41:01.3");
    /* type names are read once per GPU and shared by the VFs */
    assert_int_equal(h.ndefs, A40_NTYPES);
    assert_int_equal(h.gpus[g].fb_mib, 49152);
    /* the VF with a vGPU offers nothing more; others offer same-size types only */
    size_t vf5 = inv_find_parent(&h, "0000:41:00.5");
    assert_int_equal(inv_parent_type(&h, vf5, "A40-2Q")->available, 0);
    size_t vf6 = inv_find_parent(&h, "0000:41:00.6");
    assert_int_equal(inv_parent_type(&h, vf6, "A40-2Q")->available, 1);
    assert_int_equal(inv_parent_type(&h, vf6, "A40-4Q")->available, 0);
    assert_int_equal(h.nmdevs, 1);
    assert_int_equal(h.mdevs[0].parent, vf5);
    /* loading again is a no-op */
    assert_int_equal(inventory_load_gpu(&fs, &h, "0000:41:00.0", &g, &e), 0);
    assert_int_equal(h.ngpus, 1);
    inventory_free(&h);
    hostfs_close(&fs);
}

static void test_broken_sysfs(void **state) {
    struct fakehost *fh = *state;
    assert_int_equal(fh_add_p40(fh, "0000:06:00.0"), 0);
    assert_int_equal(fh_add_dangling(fh, "00000000-0000-0000-0000-000000000777"), 0);
    fh_write(
        fh,
        "sys/devices/pci0000:00/0000:06:00.0/mdev_supported_types/nvidia-46/"
        "available_instances",
        "lots\n"
    );
    chmod((char *)fh->root, 0755);
    struct hostfs fs;
    assert_int_equal(hostfs_open(&fs, fh->root), 0);
    struct host h = {0};
    struct pvh_err e;
    assert_int_equal(inventory_load_all(&fs, &h, &e), 0);
    assert_int_equal(h.warnings.n, 2);
    assert_non_null(strstr(h.warnings.items[0], "available_instances (Invalid argument)"));
    assert_non_null(strstr(h.warnings.items[1], "dangling link"));
    const struct inv_type *t = inv_parent_type(&h, 0, "nvidia-46");
    assert_int_equal(t->available, -1);
    assert_int_equal(t->available_err, -EINVAL);
    inventory_free(&h);
    /* a PCI id that does not exist */
    assert_int_equal(inventory_load_gpu(&fs, &h, "0000:0a:00.0", NULL, &e), -ENODEV);
    assert_non_null(strstr(e.msg, "0000:0a:00.0 does not exist"));
    inventory_free(&h);
    hostfs_close(&fs);
}

static void test_running(void **state) {
    struct fakehost *fh = *state;
    struct hostfs fs;
    assert_int_equal(hostfs_open(&fs, fh->root), 0);
    assert_int_equal(vm_is_running(&fs, 100), 0);
    fh_run_vm(fh, 100, 4242);
    assert_int_equal(vm_is_running(&fs, 100), 1);
    /* a pid file naming a process of another VM (pid reuse) does not count */
    fh_write(fh, "run/qemu-server/101.pid", "4242\n");
    assert_int_equal(vm_is_running(&fs, 101), 0);
    /* a zombie does not count */
    fh_write(fh, "proc/4242/stat", "4242 (kvm) Z 1 4242 4242 0 -1\n");
    assert_int_equal(vm_is_running(&fs, 100), 0);
    fh_run_vm(fh, 100, 4242);
    fh_stop_vm(fh, 100);
    assert_int_equal(vm_is_running(&fs, 100), 0);
    fh_write(fh, "run/qemu-server/102.pid", "garbage\n");
    assert_int_equal(vm_is_running(&fs, 102), 0);
    hostfs_close(&fs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_p40_pair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sriov, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_sysfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_running, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
