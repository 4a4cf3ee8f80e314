/*
 * check --all: the node's onboot vGPU VMs after a reboot, on the real binary: boot order by
 * startup order then VMID, templates and HA-managed VMs skipped, managed VMs placed, what runs
 * now ignored (the host is empty after a reboot), exit status and JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "testutil.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fakehost FH_HOST;
static struct fakehost *const FH = &FH_HOST;
static struct fh_result R;

#define run(...) fh_run(FH, &R, NULL, __VA_ARGS__)
#define U200 "00000000-0000-0000-0000-000000000200"

static void vm(unsigned long vmid, const char *body) {
    char conf[1024];
    snprintf(conf, sizeof(conf), "%s%s", FH_HOOKSCRIPT, body);
    assert_int_equal(fh_vmconf(FH, vmid, conf), 0);
}

/* Two P40s. GPU A takes two 12Q (100, 101), 102 is managed (a 24Q, only on GPU B), 103 a third
 * 12Q on GPU A. 110 (HA) and 111 (a template) would take GPU B first if they were started.
 * Now GPU A hosts VM 200's 24Q, and 200 runs: after a reboot it is gone (200 is no onboot VM). */
static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create_p40_pair(FH), 0);
    assert_int_equal(fh_install_hookscript(FH), 0);
    vm(100, "onboot: 1\nstartup: order=1\nhostpci0: 0000:06:00.0,mdev=nvidia-52\n");
    vm(101, "onboot: 1\nstartup: order=2,up=30\nhostpci0: 0000:06:00.0,mdev=nvidia-52\n");
    vm(102, "onboot: 1\nstartup: 3\n");
    vm(103, "onboot: 1\nhostpci0: 0000:06:00.0,mdev=nvidia-52\n");
    vm(104, "onboot: 1\nstartup: order=0\n");           /* no vGPU: not listed */
    vm(105, "hostpci0: 0000:07:00.0,mdev=nvidia-53\n"); /* no onboot */
    vm(110, "onboot: 1\nstartup: order=0\nhostpci0: 0000:07:00.0,mdev=nvidia-53\n");
    vm(111, "onboot: 1\nstartup: order=0\ntemplate: 1\nhostpci0: 0000:07:00.0,mdev=nvidia-53\n");
    vm(200, "hostpci0: 0000:06:00.0,mdev=nvidia-53\n");
    assert_int_equal(fh_write(FH, "etc/pve/ha/resources.cfg", "vm: 110\n\tstate started\n\n"), 0);
    assert_int_equal(run("attach", "102", "--type", "P40-24Q", "--gpu", GPU_B, NULL), 0);
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-53", U200), 0);
    assert_int_equal(fh_run_vm(FH, 200, 5200), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(FH);
    return 0;
}

static void test_fourth_does_not_fit(void **state) {
    (void)state;
    /* today VM 100 cannot start at all: VM 200's 24Q fills GPU A */
    assert_int_equal(run("check", "100", NULL), 1);
    char *before = fh_snapshot(FH);
    assert_int_equal(run("check", "--all", NULL), 1);
    assert_host_unchanged(FH, before);
    assert_contains(
        R.out,
        "VM 100 (order=1): would start\n  index 0: nvidia-52 (GRID P40-12Q) on 0000:06:00.0\n"
        "VM 101 (order=2): would start\n  index 0: nvidia-52 (GRID P40-12Q) on 0000:06:00.0\n"
        "VM 102 (order=3): would start\n  index 0: nvidia-53 (GRID P40-24Q) on 0000:07:00.0\n"
        "VM 103 (no order): would NOT start\n"
        "  cannot place nvidia-52 for hostpci0: 0000:06:00.0 has no available instances"
    );
    assert_contains(R.out, "it hosts: 2 x GRID P40-12Q (12288 MiB) for VM 100, VM 101");
    assert_contains(R.out, "VM 110: HA-managed: HA starts it, not onboot; not simulated\n");
    assert_contains(R.out, "Would NOT start after a reboot:\n  VM 103: cannot place nvidia-52");
    assert_not_contains(R.out, "VM 104");
    assert_not_contains(R.out, "VM 105");
    assert_not_contains(R.out, "VM 111");
    assert_not_contains(R.out, "VM 200");
}

static void test_order_decides(void **state) {
    (void)state;
    /* 103 first now (order=0), 100 without an order: 100 is the one left without room */
    vm(103, "onboot: 1\nstartup: order=0\nhostpci0: 0000:06:00.0,mdev=nvidia-52\n");
    vm(100, "onboot: 1\nhostpci0: 0000:06:00.0,mdev=nvidia-52\n");
    assert_int_equal(run("check", "--all", NULL), 1);
    assert_contains(R.out, "VM 103 (order=0): would start\n");
    assert_contains(R.out, "Would NOT start after a reboot:\n  VM 100: cannot place");
    /* without orders, VMID decides: 100 and 101 before 103 */
    vm(101, "onboot: 1\nhostpci0: 0000:06:00.0,mdev=nvidia-52\n");
    vm(103, "onboot: 1\nhostpci0: 0000:06:00.0,mdev=nvidia-52\n");
    assert_int_equal(run("check", "--all", NULL), 1);
    assert_contains(R.out, "VM 100 (no order): would start\n");
    assert_contains(R.out, "VM 101 (no order): would start\n");
    assert_contains(R.out, "Would NOT start after a reboot:\n  VM 103: cannot place");
    assert_true(strstr(R.out, "VM 102 (order=3)") < strstr(R.out, "VM 100 (no order)"));
}

static void test_all_start_json(void **state) {
    (void)state;
    vm(103, "onboot: 1\nhostpci0: 0000:06:00.0,mdev=nvidia-53\n"); /* a 24Q needs a free GPU */
    vm(101, "onboot: 1\n");
    vm(100, "onboot: 1\n");
    /* 102 (order 3) takes GPU B, 103 GPU A: both start */
    assert_int_equal(run("check", "--all", "--json", NULL), 0);
    json_object *o = json_tokener_parse(R.out), *vms, *v, *d, *x;
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "all_start", &x) && json_object_get_boolean(x));
    assert_true(json_object_object_get_ex(o, "node", &x));
    assert_string_equal(json_object_get_string(x), "pve1");
    assert_true(json_object_object_get_ex(o, "vms", &vms));
    assert_int_equal(json_object_array_length(vms), 2);
    v = json_object_array_get_idx(vms, 0);
    assert_true(json_object_object_get_ex(v, "vmid", &x) && json_object_get_int(x) == 102);
    assert_true(json_object_object_get_ex(v, "order", &x) && json_object_get_int(x) == 3);
    assert_true(json_object_object_get_ex(v, "devices", &d));
    d = json_object_array_get_idx(d, 0);
    assert_true(json_object_object_get_ex(d, "gpu", &x));
    assert_string_equal(json_object_get_string(x), GPU_B);
    v = json_object_array_get_idx(vms, 1);
    assert_true(json_object_object_get_ex(v, "order", &x) && x == NULL);
    assert_true(json_object_object_get_ex(v, "would_start", &x) && json_object_get_boolean(x));
    assert_true(json_object_object_get_ex(o, "ha_managed", &x));
    assert_int_equal(json_object_get_int(json_object_array_get_idx(x, 0)), 110);
    json_object_put(o);
    /* a refusal in JSON: its code and message */
    vm(101, "onboot: 1\nhostpci0: 0000:06:00.0,mdev=nvidia-52\n");
    assert_int_equal(run("check", "--all", "--json", NULL), 1);
    assert_contains(R.out, "\"all_start\": false");
    assert_contains(R.out, "\"code\": \"refused\"");
}

/* A VM that would not start holds nothing: its first vGPU placed, its second refused. */
static void test_refused_vm_takes_nothing(void **state) {
    (void)state;
    vm(106, "onboot: 1\nstartup: order=0\nhostpci0: 0000:07:00.0,mdev=nvidia-53\n"
            "hostpci1: 0000:07:00.0,mdev=nvidia-53\n");
    /* without reclaiming, a device of 106 left in the model would keep 102 off GPU B */
    char *cfg = fh_read(FH, "etc/pve/vgpu-hook.json");
    json_object *o = json_tokener_parse(cfg);
    json_object_object_add(o, "reclaim_stale", json_object_new_boolean(false));
    assert_int_equal(fh_write(FH, "etc/pve/vgpu-hook.json", json_object_to_json_string(o)), 0);
    json_object_put(o);
    free(cfg);
    assert_int_equal(run("check", "--all", NULL), 1);
    assert_contains(
        R.out, "VM 106 (order=0): would NOT start\n  cannot place nvidia-53 for hostpci1"
    );
    assert_contains(
        R.out,
        "VM 102 (order=3): would start\n  index 0: nvidia-53 (GRID P40-24Q) on 0000:07:00.0\n"
    );
}

/* NVIDIA's vendor interface: every VF free after a reboot, the GPU in equal-size mode once the
 * first VM's type is set (so a VM of another size fails), even though a VF is in use now. */
static int setup_iface(void **state) {
    (void)state;
    assert_int_equal(fh_create(FH), 0);
    assert_int_equal(fh_qemu_server_version(FH, "8.3.0"), 0);
    assert_int_equal(fh_install_hookscript(FH), 0);
    assert_int_equal(
        fh_add_nvidia_iface(FH, "0000:41:00.0", 3, "1 : NVIDIA L40S-2Q\n2 : NVIDIA L40S-4Q\n"), 0
    );
    return 0;
}

static void test_vendor_interface(void **state) {
    (void)state;
    vm(100, "onboot: 1\nhostpci0: 0000:41:00.4,mdev=nvidia-2\n");
    vm(101, "onboot: 1\nhostpci0: 0000:41:00.5,mdev=nvidia-1\n");
    vm(102, "onboot: 1\nhostpci0: 0000:41:00.6,mdev=nvidia-2\n");
    vm(200, "hostpci0: 0000:41:00.4,mdev=nvidia-1\n"); /* runs now on 100's VF */
    assert_int_equal(
        fh_write(FH, "sys/bus/pci/devices/0000:41:00.4/nvidia/current_vgpu_type", "1\n"), 0
    );
    assert_int_equal(fh_run_vm_on_vf(FH, 200, 5200, "0000:41:00.4"), 0);
    assert_int_equal(run("check", "--all", NULL), 1);
    assert_contains(
        R.out,
        "VM 100 (no order): would start\n  index 0: nvidia-2 on 0000:41:00.4 (GPU 0000:41:00.0)\n"
        "VM 101 (no order): would NOT start\n"
        "  cannot place nvidia-1 for hostpci0: 0000:41:00.5 (NVIDIA's vendor interface) "
        "cannot take nvidia-1 now\n    creatable there now: nvidia-2 (NVIDIA L40S-4Q)\n"
    );
    assert_contains(R.out, "VM 102 (no order): would start\n  index 0: nvidia-2 on 0000:41:00.6");
}

static void test_usage(void **state) {
    (void)state;
    assert_int_equal(run("check", "100", "--all", NULL), 2);
    assert_contains(R.err, "unexpected argument '100'");
    assert_int_equal(run("help", "check", NULL), 0);
    assert_contains(R.out, "--all");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fourth_does_not_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_decides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_start_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_vm_takes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vendor_interface, setup_iface, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
