/*
 * The real pve-vgpu-hook binary as Proxmox runs it (VMID PHASE), on fake hosts whose sysfs
 * behaves like the kernel (fake driver preloaded). Each test states what the administrator
 * observes: exit status, the task-log lines, sysfs and the VM config afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "fakekernel.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static struct fakehost FH_HOST;
static struct fakehost *const FH = &FH_HOST; /* one host per test */
static struct fh_result R;

static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create_p40_pair(FH), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(FH);
    return 0;
}

#include <json-c/json.h>

/* Before every pre-start, `check VMID --json` with the same environment must change nothing
 * and predict the outcome: the same verdict, and every planned device present afterwards on
 * the planned parent. Injected driver failures are invisible to a dry run by nature. */
static int run_phase(const char *const *env, const char *vmid, const char *phase) {
    static char check_said[4100]; /* what check printed, for a mismatch's message */
    bool injected = false;
    for (size_t i = 0; env && env[i]; i++) {
        injected |= (!strncmp(env[i], "FAKE_MDEV_FAIL=", 15) && env[i][15]) ||
                    !strncmp(env[i], "FAKE_MDEV_HOLD_AFTER_REMOVE=", 28);
    }
    json_object *plan = NULL;
    if (!strcmp(phase, "pre-start") && !injected) {
        char *before = fh_snapshot(FH);
        fh_run(FH, &R, env, "check", vmid, "--json", NULL);
        char *after = fh_snapshot(FH);
        if (strcmp(before, after)) {
            fail_msg("check %s changed the host", vmid);
        }
        free(before);
        free(after);
        plan = json_tokener_parse(R.out);
        snprintf(check_said, sizeof(check_said), "%.2000s%.2000s", R.out, R.err);
        if (!plan && R.status != 2) {
            fail_msg(
                "check %s --json printed no JSON (status %d):\n%s\n%s", vmid, R.status, R.out, R.err
            );
        }
    }
    fh_run(FH, &R, env, vmid, phase, NULL);
    if (plan) {
        json_object *ws, *mdevs;
        assert_true(json_object_object_get_ex(plan, "would_start", &ws));
        if (json_object_get_boolean(ws) != (R.status == 0)) {
            fail_msg(
                "check %s said would_start=%d but pre-start exited %d:\n%s\ncheck said:\n%s", vmid,
                json_object_get_boolean(ws), R.status, R.err, check_said
            );
        }
        assert_true(json_object_object_get_ex(plan, "mdevs", &mdevs));
        for (size_t i = 0; R.status == 0 && i < json_object_array_length(mdevs); i++) {
            json_object *m = json_object_array_get_idx(mdevs, i), *u, *p, *act;
            json_object_object_get_ex(m, "action", &act);
            if (!strcmp(json_object_get_string(act), "proxmox-sets-type")) {
                continue; /* NVIDIA's vendor interface: no mdev of ours */
            }
            json_object_object_get_ex(m, "uuid", &u);
            json_object_object_get_ex(m, "parent", &p);
            char rel[256];
            snprintf(
                rel, sizeof(rel), "sys/devices/pci0000:00/%s/%s", json_object_get_string(p),
                json_object_get_string(u)
            );
            if (!fh_exists(FH, rel)) {
                fail_msg("check %s planned %s, which pre-start did not create", vmid, rel);
            }
        }
        json_object_put(plan);
    }
    return R.status;
}

static int hook(const char *vmid, const char *phase) {
    return run_phase(NULL, vmid, phase);
}

static int hook_env(const char *const *env, const char *vmid, const char *phase) {
    return run_phase(env, vmid, phase);
}

static void vm(unsigned long vmid, const char *hostpci_lines) {
    char conf[4096];
    snprintf(
        conf, sizeof(conf),
        "#Windows desktop\n#with a vGPU\nboot: order=scsi0\ncores: 4\n%smemory: 8192\n"
        "name: vm%lu\nsmbios1: uuid=5d5f2b7e-1a33-4c7e-9c9d-ABCDEF012345\n\n"
        "[before-vgpu]\ncores: 2\nhostpci0: 0000:07:00.0,mdev=nvidia-53\nsnaptime: 1\n",
        hostpci_lines, vmid
    );
    assert_int_equal(fh_vmconf(FH, vmid, conf), 0);
}

/* ---------- the lifecycle ---------- */

static void test_lifecycle(void **state) {
    (void)state;
    vm(100, "hostpci0: 0000:06:00.0,mdev=nvidia-46,pcie=1\n");
    assert_int_equal(hook("100", "pre-start"), 0);
    assert_contains(
        R.err,
        "pve-vgpu-hook: VM 100: created mdev " U100 " (nvidia-46, GRID P40-1Q) on 0000:06:00.0"
    );
    /* the kernel's layout: device dir, mdev_type link, devices/ entry, bus link */
    assert_true(fh_exists(FH, DEV(GPU_A, U100) "/mdev_type"));
    assert_true(fh_exists(
        FH, "sys/devices/pci0000:00/" GPU_A "/mdev_supported_types/nvidia-46/devices/" U100
    ));
    assert_true(fh_exists(FH, BUS(U100)));
    assert_string_equal(R.out, ""); /* hook mode prints nothing on stdout */

    assert_int_equal(hook("100", "post-start"), 0);
    assert_string_equal(R.err, "");
    assert_int_equal(hook("100", "pre-stop"), 0);
    assert_string_equal(R.err, "");

    assert_int_equal(hook("100", "post-stop"), 0);
    assert_contains(R.err, "VM 100: removed mdev " U100 " (nvidia-46 on 0000:06:00.0)");
    assert_false(fh_exists(FH, DEV(GPU_A, U100)));
    assert_false(fh_exists(FH, BUS(U100)));
    char *avail = fh_read(
        FH, "sys/devices/pci0000:00/" GPU_A "/mdev_supported_types/nvidia-47/available_instances"
    );
    assert_string_equal(avail, "12\n"); /* the GPU is free for any size again */
    free(avail);

    /* idempotent */
    assert_int_equal(hook("100", "post-stop"), 0);
    assert_not_contains(R.err, "removed");
}

static void test_short_id_and_second_vgpu(void **state) {
    (void)state;
    vm(100, "hostpci0: 06:00.0,mdev=nvidia-46\nhostpci1: host=07:00.0,mdev=nvidia-49\n");
    assert_int_equal(hook("100", "pre-start"), 0);
    assert_true(fh_exists(FH, DEV(GPU_A, U100)));
    assert_true(fh_exists(FH, DEV(GPU_B, U100_1)));
    assert_int_equal(hook("100", "post-stop"), 0);
    assert_false(fh_exists(FH, BUS(U100)));
    assert_false(fh_exists(FH, BUS(U100_1)));
}

static void test_mapping(void **state) {
    (void)state;
    fh_write(
        FH, "etc/pve/mapping/pci.cfg",
        "p40s\n\tmap node=pve2,path=0000:81:00.0,id=10de:1b38\n"
        "\tmap node=pve1,path=0000:06:00.0;0000:07:00.0,id=10de:1b38\n\tmdev 1\n\n"
    );
    vm(101, "hostpci0: 0000:06:00.0,mdev=nvidia-47\n");
    fh_run_vm(FH, 101, 5101);
    assert_int_equal(hook("101", "pre-start"), 0);
    /* GPU A holds a 2Q: the 1Q goes to the mapping's next device on this node, GPU B */
    vm(100, "hostpci0: mapping=p40s,mdev=nvidia-46\n");
    assert_int_equal(hook("100", "pre-start"), 0);
    assert_contains(R.err, "created mdev " U100 " (nvidia-46, GRID P40-1Q) on 0000:07:00.0");

    vm(102, "hostpci0: mapping=nope,mdev=nvidia-46\n");
    assert_int_equal(hook("102", "pre-start"), 1);
    assert_contains(R.err, "PCI mapping 'nope' is not defined in /etc/pve/mapping/pci.cfg");
}

static void test_sriov_vf(void **state) {
    (void)state;
    assert_int_equal(fh_add_a40_sriov(FH, "0000:41:00.0", 4), 0);
    vm(100, "hostpci0: 0000:41:00.5,mdev=nvidia-558\n");
    assert_int_equal(hook("100", "pre-start"), 0);
    assert_contains(R.err, "created mdev " U100 " (nvidia-558, NVIDIA A40-2Q) on 0000:41:00.5");
    /* a 4Q on another VF of the same physical GPU: the driver (equal-size) says no */
    fh_run_vm(FH, 100, 5100);
    vm(101, "hostpci0: 0000:41:00.6,mdev=nvidia-560\n");
    assert_int_equal(hook("101", "pre-start"), 1);
    assert_contains(
        R.err, "0000:41:00.6 (a VF of 0000:41:00.0: one vGPU per VF) has no available instances "
               "of NVIDIA A40-4Q (the driver"
    );
    assert_contains(R.err, "its GPU hosts: 1 x NVIDIA A40-2Q (2048 MiB) for VM 100");
    assert_contains(R.err, "the GPU is in equal-size mode: it takes only 2048 MiB vGPUs");
    /* the same type on the VF VM 100 holds: that VF takes nothing more, and the refusal points
     * at a free VF of the same GPU, never at the physical function (which takes no vGPU) */
    vm(102, "hostpci0: 0000:41:00.5,mdev=nvidia-558\n");
    assert_int_equal(hook("102", "pre-start"), 1);
    assert_contains(R.err, "0000:41:00.5 (a VF of 0000:41:00.0: one vGPU per VF) has no available");
    assert_contains(R.err, "types that fit there now: none");
    assert_contains(
        R.err, "GPUs that could take nvidia-558 now: 0000:41:00.4 (a free VF of 0000:41:00.0)"
    );
    assert_not_contains(R.err, "could take nvidia-558 now: 0000:41:00.0");
}

static void test_nothing_to_do(void **state) {
    (void)state;
    fh_write(FH, "etc/pve/nodes/pve1/lxc/200.conf", "arch: amd64\n");
    assert_int_equal(hook("200", "pre-start"), 0);
    assert_contains(R.err, "VM 200: not a VM (container), nothing to do");
    fh_vmconf(FH, 300, "cores: 2\nhostpci0: 0000:06:00.0,pcie=1\n");
    char *before = fh_snapshot(FH);
    assert_int_equal(hook("300", "pre-start"), 0);
    assert_contains(R.err, "no vGPU in the VM config, nothing to do");
    char *after = fh_snapshot(FH);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* ---------- existing devices ---------- */

static void test_reuse_and_replace(void **state) {
    (void)state;
    vm(100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-46", U100), 0);
    assert_int_equal(hook("100", "pre-start"), 0);
    assert_contains(R.err, "mdev " U100 " (nvidia-46) already exists on 0000:06:00.0; reusing it");

    /* a leftover with the VM's UUID but another type: replaced */
    assert_int_equal(hook("100", "post-stop"), 0);
    assert_int_equal(fh_add_mdev(FH, GPU_B, "nvidia-53", U100), 0);
    assert_int_equal(hook("100", "pre-start"), 0);
    assert_contains(R.err, "removed old mdev " U100 " (nvidia-53 on 0000:07:00.0)");
    assert_contains(R.err, "created mdev " U100 " (nvidia-46, GRID P40-1Q) on 0000:06:00.0");
    assert_false(fh_exists(FH, DEV(GPU_B, U100)));

    /* an old hostpci1 device of the same VM, no longer configured: removed */
    assert_int_equal(hook("100", "post-stop"), 0);
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-47", U100_1), 0);
    assert_int_equal(hook("100", "pre-start"), 0);
    assert_contains(R.err, "removed its old mdev " U100_1);
    assert_true(fh_exists(FH, DEV(GPU_A, U100)));
}

static void test_refusal_explains(void **state) {
    (void)state;
    vm(101, "hostpci0: 0000:06:00.0,mdev=nvidia-47\n");
    assert_int_equal(hook("101", "pre-start"), 0);
    fh_run_vm(FH, 101, 5101);
    vm(100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    char *before = fh_snapshot(FH);
    assert_int_equal(hook("100", "pre-start"), 1);
    /* policy auto (the default): the driver said no, and the message says so and why */
    assert_contains(
        R.err, "VM 100: error: cannot place nvidia-46 for hostpci0: 0000:06:00.0 has no "
               "available instances of GRID P40-1Q (the driver says no: available_instances is 0)"
    );
    assert_contains(R.err, "VM 100:   it hosts: 1 x GRID P40-2Q (2048 MiB) for VM 101");
    assert_contains(R.err, "the GPU is in equal-size mode: it takes only 2048 MiB vGPUs");
    assert_contains(R.err, "GPUs that could take nvidia-46 now: 0000:07:00.0");
    assert_contains(R.err, "what to do:");
    char *after = fh_snapshot(FH);
    assert_string_equal(before, after);
    free(after);

    /* the admin's own equal-size policy: the policy said no, and the message says that */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0, \"policy\": \"equal-size\"}");
    free(before);
    before = fh_snapshot(FH);
    assert_int_equal(hook("100", "pre-start"), 1);
    assert_contains(
        R.err, "VM 100: error: cannot place nvidia-46 for hostpci0: GPU 0000:06:00.0 "
               "cannot take GRID P40-1Q: the equal-size policy (your settings) locks it to 2048 "
               "MiB vGPUs (it hosts GRID P40-2Q), and GRID P40-1Q has 1024 MiB"
    );
    assert_contains(R.err, "types that fit there now: P40-2B, P40-2Q");
    after = fh_snapshot(FH);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* the same request on the other GPU succeeds */
    vm(100, "hostpci0: 0000:07:00.0,mdev=nvidia-46\n");
    assert_int_equal(hook("100", "pre-start"), 0);

    /* homogeneous policy: a same-size C next to a Q is refused */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0, \"policy\": \"homogeneous\"}");
    vm(102, "hostpci0: 0000:06:00.0,mdev=nvidia-156\n");
    assert_int_equal(hook("102", "pre-start"), 1);
    assert_contains(R.err, "the homogeneous policy (your settings) allows only one type per GPU");
}

static void test_reclaim_stale(void **state) {
    (void)state;
    /* VM 101 stopped without post-stop: its 2Q leftover blocks a 1Q for VM 100 */
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-47", U101), 0);
    vm(100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");

    /* while VM 101 starts (Proxmox holds its lock) its device is not a leftover */
    char lockpath[4200];
    snprintf(lockpath, sizeof(lockpath), "%s/var/lock/qemu-server/lock-101.conf", FH->root);
    int fd = open(lockpath, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    assert_int_equal(hook("100", "pre-start"), 1);
    assert_true(fh_exists(FH, BUS(U101)));
    close(fd);

    /* reclaim_stale off: refused, leftover kept */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0, \"reclaim_stale\": false}");
    assert_int_equal(hook("100", "pre-start"), 1);
    assert_true(fh_exists(FH, BUS(U101)));

    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0}");
    assert_int_equal(hook("100", "pre-start"), 0);
    assert_contains(
        R.err, "removed leftover mdev " U101 " of stopped VM 101 (nvidia-47 on "
               "0000:06:00.0) that blocked placement"
    );
    assert_false(fh_exists(FH, BUS(U101)));
    assert_true(fh_exists(FH, DEV(GPU_A, U100)));

    /* VM 100 stopped without post-stop; VM 101 wants its 2Q again. The leftover 1Q is removed
     * to make room, but the driver has not released it yet: pre-start asks the driver again
     * instead of creating on the strength of its own prediction, and refuses with the reason */
    vm(101, "hostpci0: 0000:06:00.0,mdev=nvidia-47\n");
    const char *hold[] = {"FAKE_MDEV_HOLD_AFTER_REMOVE=1", NULL};
    assert_int_equal(hook_env(hold, "101", "pre-start"), 1);
    assert_contains(R.err, "removed leftover mdev " U100 " of stopped VM 100");
    assert_contains(
        R.err, "cannot place nvidia-47 for hostpci0: this start removed a device on 0000:06:00.0 "
               "to make room, but the driver still offers no instance of nvidia-47 there"
    );
    assert_contains(R.err, "start VM 101 again in a few seconds");
    assert_not_contains(R.err, "although available_instances reads");
    assert_false(fh_exists(FH, BUS(U101)));
}

static void test_running_vm_device_untouched(void **state) {
    (void)state;
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-47", U101), 0);
    fh_run_vm(FH, 101, 5101);
    vm(100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    assert_int_equal(hook("100", "pre-start"), 1);
    assert_true(fh_exists(FH, BUS(U101)));
    /* post-stop of VM 100 never touches VM 101's device or a foreign UUID */
    assert_int_equal(
        fh_add_mdev(FH, GPU_B, "nvidia-46", "b4c5a7c8-1f3e-4e55-9a31-5b0a0c0ffee1"), 0
    );
    assert_int_equal(hook("100", "post-stop"), 0);
    assert_true(fh_exists(FH, BUS(U101)));
    assert_true(fh_exists(FH, BUS("b4c5a7c8-1f3e-4e55-9a31-5b0a0c0ffee1")));
    /* post-stop of a VM that runs again (reboot) keeps its device */
    assert_int_equal(hook("101", "post-stop"), 0);
    assert_contains(R.err, "VM is running again; leaving its vGPUs in place");
    assert_true(fh_exists(FH, BUS(U101)));
}

static void test_post_stop_waits_for_driver(void **state) {
    (void)state;
    /* NVIDIA's driver removes the vGPU itself shortly after QEMU exits: post-stop waits for
     * that (here the "driver" does it 300 ms in) instead of removing it first */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 5}");
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-46", U100), 0);
    vm(100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    pid_t driver = fork();
    if (driver == 0) {
        char remove[4300];
        snprintf(remove, sizeof(remove), "%s/" DEV(GPU_A, U100) "/remove", FH->root);
        usleep(300 * 1000);
        _exit(fk_remove(remove, "1", 1) == 0 ? 0 : 1);
    }
    assert_int_equal(hook("100", "post-stop"), 0);
    int st;
    assert_int_equal(waitpid(driver, &st, 0), driver);
    assert_int_equal(WEXITSTATUS(st), 0); /* the driver found the device still there */
    assert_contains(R.err, "mdev " U100 " was removed by its driver");
    assert_not_contains(R.err, "removed mdev " U100 " (");
    assert_false(fh_exists(FH, BUS(U100)));
    /* a device the driver keeps is removed once the wait is over */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 1}");
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-46", U100), 0);
    assert_int_equal(hook("100", "post-stop"), 0);
    assert_contains(R.err, "removed mdev " U100 " (nvidia-46 on 0000:06:00.0)");
    assert_false(fh_exists(FH, BUS(U100)));
    /* the VM config may be gone (VM destroyed): cleanup still works by UUID */
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-46", U100), 0);
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0}");
    unlink(strcat(strcpy((char[4200]){0}, FH->root), "/etc/pve/nodes/pve1/qemu-server/100.conf"));
    assert_int_equal(hook("100", "post-stop"), 0);
    assert_false(fh_exists(FH, BUS(U100)));
}

static void test_not_taking_vm_lock(void **state) {
    (void)state;
    /* Proxmox holds the VM's lock while the hook runs: we must not wait for it */
    char lockpath[4200];
    snprintf(lockpath, sizeof(lockpath), "%s/var/lock/qemu-server/lock-100.conf", FH->root);
    int fd = open(lockpath, O_RDWR | O_CREAT, 0644);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    vm(100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    assert_int_equal(hook("100", "pre-start"), 0);
    assert_int_equal(hook("100", "post-stop"), 0);
    close(fd);
}

static void test_nvidia_vendor_interface(void **state) {
    (void)state;
    /* kernel >= 6.8: VFs with nvidia/creatable_vgpu_types; Proxmox sets the type itself */
    assert_int_equal(
        fh_add_nvidia_iface(
            FH, "0000:81:00.0", 2, "1414  : NVIDIA H200X-1-18C\n1415  : NVIDIA H200X-2-35C\n"
        ),
        0
    );
    vm(100, "hostpci0: 0000:81:00.4,mdev=nvidia-1414\n");
    char *before = fh_snapshot(FH);
    assert_int_equal(hook("100", "pre-start"), 0);
    assert_contains(
        R.err, "0000:81:00.4 uses NVIDIA's vendor interface: Proxmox sets nvidia-1414 "
               "on it itself"
    );
    char *after = fh_snapshot(FH);
    assert_string_equal(before, after); /* nothing of ours to create */
    free(before);
    free(after);
    fh_run(FH, &R, NULL, "check", "100", NULL);
    assert_int_equal(R.status, 0);
    assert_contains(R.out, "index 0: nvidia-1414 on 0000:81:00.4: left to Proxmox");
    /* a VF may offer many types (time-sliced and MIG-backed): the last of 100 still counts */
    char many[4096] = "";
    for (unsigned id = 2001; id <= 2100; id++) {
        char line[40];
        snprintf(line, sizeof(line), "%u : NVIDIA H100-%uC\n", id, id - 2000);
        strcat(many, line);
    }
    assert_int_equal(fh_add_nvidia_iface(FH, "0000:82:00.0", 1, many), 0);
    vm(102, "hostpci0: 0000:82:00.4,mdev=nvidia-2100\n");
    fh_run(FH, &R, NULL, "check", "102", NULL);
    assert_int_equal(R.status, 0);
    assert_contains(R.out, "index 0: nvidia-2100 on 0000:82:00.4: left to Proxmox");
    /* a type that is not creatable there now: refused with what is */
    vm(101, "hostpci0: 0000:81:00.5,mdev=nvidia-1499\n");
    assert_int_equal(hook("101", "pre-start"), 1);
    assert_contains(R.err, "0000:81:00.5 (NVIDIA's vendor interface) cannot take nvidia-1499 now");
    assert_contains(
        R.err, "creatable there now: nvidia-1414 (NVIDIA H200X-1-18C), nvidia-1415 "
               "(NVIDIA H200X-2-35C)"
    );
    /* already set to the type (a restart): fine even when no longer listed as creatable */
    fh_write(FH, "sys/devices/pci0000:00/0000:81:00.5/nvidia/current_vgpu_type", "1499\n");
    assert_int_equal(hook("101", "pre-start"), 0);
}

/* ---------- -uuid in args on old qemu-server ---------- */

static void test_uuid_args(void **state) {
    (void)state;
    fh_qemu_server_version(FH, "7.2-3");
    vm(100, "args: -cpu host,kvm=off\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    char *conf_before = fh_read_vmconf(FH, 100);
    char *sys_before = fh_snapshot(FH);
    assert_int_equal(hook("100", "pre-start"), 1);
    assert_contains(
        R.err, "added '-uuid " U100 "' to args in /etc/pve/qemu-server/100.conf "
               "(qemu-server 7.2-3 is older than 7.2-4"
    );
    assert_contains(R.err, "start the VM once more");
    char *conf_after = fh_read_vmconf(FH, 100);
    /* only the args line changed */
    char *expect = strdup(conf_before);
    char *p = strstr(expect, "args: -cpu host,kvm=off\n");
    char fixed[8192];
    snprintf(
        fixed, sizeof(fixed), "%.*sargs: -cpu host,kvm=off -uuid " U100 "\n%s", (int)(p - expect),
        expect, p + strlen("args: -cpu host,kvm=off\n")
    );
    assert_string_equal(conf_after, fixed);
    /* no device stays behind from the refused start */
    assert_false(fh_exists(FH, BUS(U100)));
    free(sys_before);

    /* the next start goes through, without touching the config */
    assert_int_equal(hook("100", "pre-start"), 0);
    assert_true(fh_exists(FH, BUS(U100)));
    char *conf_third = fh_read_vmconf(FH, 100);
    assert_string_equal(conf_third, conf_after);
    free(conf_before);
    free(conf_after);
    free(conf_third);
    free(expect);
}

static void test_uuid_args_variants(void **state) {
    (void)state;
    /* new qemu-server: nothing to do */
    fh_qemu_server_version(FH, "7.2-4");
    vm(100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    char *before = fh_read_vmconf(FH, 100);
    assert_int_equal(hook("100", "pre-start"), 0);
    char *after = fh_read_vmconf(FH, 100);
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(hook("100", "post-stop"), 0);

    /* uuid_source smbios: the VM keeps its identity */
    fh_qemu_server_version(FH, "7.1-4");
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0, \"uuid_source\": \"smbios\"}");
    assert_int_equal(hook("100", "pre-start"), 1);
    after = fh_read_vmconf(FH, 100);
    assert_contains(after, "\nargs: -uuid 5d5f2b7e-1a33-4c7e-9c9d-abcdef012345\n");
    free(after);

    /* uuid_args never: no change even when old */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0, \"uuid_args\": \"never\"}");
    vm(101, "hostpci0: 0000:07:00.0,mdev=nvidia-46\n");
    before = fh_read_vmconf(FH, 101);
    assert_int_equal(hook("101", "pre-start"), 0);
    after = fh_read_vmconf(FH, 101);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* dpkg's journal (updates/) is newer than status: an upgrade to 7.2-4 not yet merged */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0}");
    fh_write(
        FH, "var/lib/dpkg/updates/0000",
        "Package: pve-manager\nStatus: install ok "
        "installed\nDepends: qemu-server\nVersion: 9\n"
    );
    fh_write(
        FH, "var/lib/dpkg/updates/0001",
        "Package: qemu-server\nStatus: install ok "
        "installed\nVersion: 7.2-4\n"
    );
    vm(103, "hostpci0: 0000:07:00.0,mdev=nvidia-46\n");
    before = fh_read_vmconf(FH, 103);
    assert_int_equal(hook("103", "pre-start"), 0);
    after = fh_read_vmconf(FH, 103);
    assert_string_equal(before, after);
    free(before);
    free(after);
    fh_write(FH, "var/lib/dpkg/updates/0001", "");
    fh_write(FH, "var/lib/dpkg/updates/0002", "");

    /* args with an open quote: -uuid cannot be added correctly; refused, nothing changed */
    fh_qemu_server_version(FH, "7.2-3");
    vm(104, "args: -fw_cfg 'name=opt/x,string=a\nhostpci0: 0000:07:00.0,mdev=nvidia-46\n");
    before = fh_snapshot(FH);
    assert_int_equal(hook("104", "pre-start"), 1);
    assert_contains(R.err, "args of VM 104 has an unbalanced quote");
    after = fh_snapshot(FH);
    assert_string_equal(before, after);
    free(before);
    free(after);
    fh_qemu_server_version(FH, "7.1-4");

    /* no dpkg status: a warning, no change */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0}");
    fh_write(FH, "var/lib/dpkg/status", "");
    vm(102, "hostpci0: 0000:07:00.0,mdev=nvidia-46\n");
    assert_int_equal(hook("102", "pre-start"), 0);
    assert_contains(R.err, "cannot tell the installed qemu-server version");
}

static void test_uuid_args_readonly_pmxcfs(void **state) {
    (void)state;
    fh_qemu_server_version(FH, "7.2-3");
    vm(100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    char *before = fh_snapshot(FH);
    const char *env[] = {"FAKE_PMXCFS_RO=1", NULL};
    assert_int_equal(hook_env(env, "100", "pre-start"), 1);
    assert_contains(R.err, "needs '-uuid " U100 "' in args");
    assert_contains(R.err, "cannot be written: Permission denied");
    assert_contains(R.err, "read-only without cluster quorum");
    assert_contains(R.err, "qm set 100 --args '-uuid " U100 "'");
    char *after = fh_snapshot(FH);
    assert_string_equal(before, after); /* no temp file, no device */
    free(before);
    free(after);
}

static void test_migration_target(void **state) {
    (void)state;
    fh_qemu_server_version(FH, "7.2-3");
    /* the config is still under the source node during a live migration */
    fh_write(
        FH, "etc/pve/nodes/pve2/qemu-server/100.conf",
        "cores: 2\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n"
    );
    const char *env[] = {"PVE_MIGRATED_FROM=pve2", NULL};
    assert_int_equal(hook_env(env, "100", "pre-start"), 0);
    assert_contains(R.err, "not changing the config during a migration");
    assert_true(fh_exists(FH, BUS(U100)));
    char *conf = fh_read(FH, "etc/pve/nodes/pve2/qemu-server/100.conf");
    assert_string_equal(conf, "cores: 2\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    free(conf);
    /* an empty PVE_MIGRATED_FROM is a normal start (qemu-server >= 7.2-9 always sets it) */
    const char *env2[] = {"PVE_MIGRATED_FROM=", NULL};
    assert_int_equal(hook_env(env2, "100", "pre-start"), 1);
    assert_contains(R.err, "no VM config /etc/pve/qemu-server/100.conf");
    const char *env3[] = {"PVE_MIGRATED_FROM=../../x", NULL};
    assert_int_equal(hook_env(env3, "100", "pre-start"), 1);
    assert_contains(R.err, "is not a node name");
}

/* ---------- bad input: clear message, nothing changed ---------- */

static void test_usage_errors(void **state) {
    (void)state;
    static const struct {
        const char *a, *b;
        int status;
        const char *msg;
    } cases[] = {
        {"99", "pre-start", 2,
         "'99' is not a VMID: a VMID is a whole number from 100 to 999999999"},
        {"1000000000", "pre-start", 2, "is not a VMID"},
        {"0100", "pre-start", 2, "is not a VMID"},
        {"100", NULL, 2, "missing PHASE"},
        {"100", "boot", 0, "warning: unknown phase 'boot' ignored"},
        {"frobnicate", NULL, 2, "unknown command 'frobnicate'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *before = fh_snapshot(FH);
        fh_run(FH, &R, NULL, cases[i].a, cases[i].b, NULL);
        if (R.status != cases[i].status || !strstr(R.err, cases[i].msg)) {
            fail_msg(
                "%s %s: status %d, stderr:\n%s", cases[i].a, cases[i].b ? cases[i].b : "", R.status,
                R.err
            );
        }
        char *after = fh_snapshot(FH);
        assert_string_equal(before, after);
        free(before);
        free(after);
    }
    fh_run(FH, &R, NULL, "100", "pre-start", "extra", NULL);
    assert_int_equal(R.status, 2);
    assert_contains(R.err, "unexpected argument 'extra'");
}

/* A hostpci line Proxmox's parser rejects is no device to Proxmox: nothing is created for it,
 * the start goes on, and a warning says why. A valid earlier line of the key still counts. */
static void test_ignored_lines(void **state) {
    (void)state;
    static const struct {
        const char *hostpci;
        const char *warning;
        const char *created; /* NULL: nothing */
    } cases[] = {
        {"hostpci0: 0000:06:00.0,mdev=../../../../tmp/x\n", "invalid mdev '../../../../tmp/x'",
         NULL},
        {"hostpci0: 0000:06:00.0,mdev=nvidia-46,mdev=nvidia-47\n", "duplicate key 'mdev'", NULL},
        {"hostpci0: 0000:6:00.0,mdev=nvidia-46\n", "invalid host '0000:6:00.0'", NULL},
        {"hostpci0: 0000:06:00.0,mdev=nvidia-46,bogus=1\n", "unknown key 'bogus'", NULL},
        {"hostpci0: 0000:06:00.0,mdev=nvidia-46,pcie=maybe\n", "invalid pcie 'maybe'", NULL},
        /* two hostpci0 lines: Proxmox uses the last, and so do we */
        {"hostpci0: 0000:06:00.0,mdev=nvidia-46\nhostpci0: 0000:07:00.0,mdev=nvidia-47\n",
         "'hostpci0' is set again further down; Proxmox uses line 6",
         "created mdev " U100 " (nvidia-47, GRID P40-2Q) on 0000:07:00.0"},
        /* a rejected last line leaves the earlier one in force */
        {"hostpci0: 0000:06:00.0,mdev=nvidia-46\nhostpci0: 0000:07:00.0,mdev=nvidia-47,bogus=1\n",
         "Proxmox ignores 'hostpci0' (unknown key 'bogus')",
         "created mdev " U100 " (nvidia-46, GRID P40-1Q) on 0000:06:00.0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        vm(100, cases[i].hostpci);
        char *before = fh_snapshot(FH);
        int status = hook("100", "pre-start");
        if (status != 0 || !strstr(R.err, cases[i].warning) ||
            (cases[i].created && !strstr(R.err, cases[i].created))) {
            fail_msg("case %zu: status %d, stderr:\n%s", i, status, R.err);
        }
        assert_contains(
            R.err, "pve-vgpu-hook: VM 100: warning: /etc/pve/qemu-server/100.conf line "
        );
        char *after = fh_snapshot(FH);
        if (!cases[i].created && strcmp(before, after) != 0) {
            fail_msg("case %zu changed the host", i);
        }
        free(before);
        free(after);
        assert_int_equal(hook("100", "post-stop"), 0);
    }
}

static void test_refusals_change_nothing(void **state) {
    (void)state;
    static const struct {
        const char *hostpci; /* hostpci lines, "" = none (config written raw) */
        const char *json;    /* our config, NULL = default test config */
        const char *fail;    /* FAKE_MDEV_FAIL */
        const char *msg;
    } cases[] = {
        /* Proxmox accepts a blank in mdev=, but no such type can exist */
        {"hostpci0: 0000:06:00.0,mdev=nvidia 46\n", NULL, NULL,
         "mdev type 'nvidia 46' is not a valid type name"},
        {"hostpci0: 0000:06:00.0;0000:06:00.1,mdev=nvidia-46\n", NULL, NULL,
         "cannot use a multifunction group"},
        {"hostpci0: 0000:0a:00.0,mdev=nvidia-46\n", NULL, NULL,
         "PCI device 0000:0a:00.0 does not exist on this host"},
        {"hostpci0: 0000:00:1f.0,mdev=nvidia-46\n", NULL, NULL,
         "0000:00:1f.0 is not a mediated-device parent"},
        {"hostpci0: 0000:06:00.0,mdev=nvidia-999\n", NULL, NULL,
         "0000:06:00.0 does not offer type nvidia-999"},
        {"hostpci0: 0000:06:00.0,mdev=nvidia-46\n", "{\"policy\": \"fair\"}", NULL,
         "\"policy\" must be one of"},
        {"hostpci0: 0000:06:00.0,mdev=nvidia-46\n", "{\n\"policy\": \"none\",\n}", NULL,
         "/etc/pve/vgpu-hook.json:3:1: invalid JSON"},
        {"hostpci0: 0000:06:00.0,mdev=nvidia-46\n", NULL, "nvidia-46=28",
         "the driver refused to create nvidia-46 on 0000:06:00.0: No space left on device, "
         "although available_instances reads 24"},
        {"hostpci0: 0000:06:00.0,mdev=nvidia-46\n", NULL, "nvidia-46=22",
         "the kernel rejected creating nvidia-46 on 0000:06:00.0"},
        {"hostpci0: 0000:06:00.0,mdev=nvidia-46\n", NULL, "nvidia-46=17",
         "UUID " U100 " is already in use"},
        /* rollback: the first vGPU is removed again when the second fails */
        {"hostpci0: 0000:06:00.0,mdev=nvidia-46\nhostpci1: 0000:07:00.0,mdev=nvidia-47\n", NULL,
         "nvidia-47=28", "removed mdev " U100 " again (start refused)"},
    };
    fh_add_pci(FH, "0000:00:1f.0", 0x8086, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        vm(100, cases[i].hostpci);
        fh_write(
            FH, "etc/pve/vgpu-hook.json", cases[i].json ? cases[i].json : "{\"remove_wait_s\": 0}"
        );
        char *before = fh_snapshot(FH);
        char failenv[128];
        snprintf(failenv, sizeof(failenv), "FAKE_MDEV_FAIL=%s", cases[i].fail ? cases[i].fail : "");
        const char *env[] = {failenv, NULL};
        hook_env(env, "100", "pre-start");
        if (R.status != 1 || !strstr(R.err, cases[i].msg)) {
            fail_msg(
                "case %zu: status %d, stderr lacks '%s':\n%s", i, R.status, cases[i].msg, R.err
            );
        }
        assert_contains(R.err, "pve-vgpu-hook: VM 100: error: ");
        char *after = fh_snapshot(FH);
        if (strcmp(before, after) != 0) {
            fail_msg("case %zu changed the host", i);
        }
        free(before);
        free(after);
    }
}

static void test_missing_config_and_broken_sysfs(void **state) {
    (void)state;
    assert_int_equal(hook("100", "pre-start"), 1);
    assert_contains(R.err, "error: no VM config /etc/pve/qemu-server/100.conf");
    assert_contains(R.err, "this node is 'pve1'");

    /* a dangling bus link is a warning, not a failure */
    fh_add_dangling(FH, "00000000-0000-0000-0000-000000000555");
    vm(100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    assert_int_equal(hook("100", "pre-start"), 0);
    assert_int_equal(hook("100", "post-stop"), 0);

    /* unreadable available_instances: refused with the reason */
    fh_write(
        FH,
        "sys/devices/pci0000:00/0000:06:00.0/mdev_supported_types/nvidia-46/"
        "available_instances",
        "n/a\n"
    );
    char *before = fh_snapshot(FH);
    assert_int_equal(hook("100", "pre-start"), 1);
    assert_contains(
        R.err, "warning: cannot read /sys/bus/pci/devices/0000:06:00.0/"
               "mdev_supported_types/nvidia-46/available_instances"
    );
    assert_contains(R.err, "available_instances is unreadable (Invalid argument)");
    char *after = fh_snapshot(FH);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* exhausted: the driver reports 0 */
    fh_write(
        FH,
        "sys/devices/pci0000:00/0000:06:00.0/mdev_supported_types/nvidia-46/"
        "available_instances",
        "0\n"
    );
    assert_int_equal(hook("100", "pre-start"), 1);
    assert_contains(
        R.err, "0000:06:00.0 has no available instances of GRID P40-1Q (the driver says "
               "no: available_instances is 0)"
    );
}

/* On the way to a start, pre-start reads available_instances of the asked types only (a GPU
 * offers dozens per VF): a broken count of another type is never read, so never warned about;
 * a refusal is still explained from the whole GPU. */
static void test_reads_only_asked_types(void **state) {
    (void)state;
    const char *broken = "sys/devices/pci0000:00/" GPU_A "/mdev_supported_types/nvidia-47/"
                         "available_instances";
    assert_int_equal(fh_write(FH, broken, "garbage\n"), 0);
    vm(100, "hostpci0: " GPU_A ",mdev=nvidia-46\n");
    assert_int_equal(hook("100", "pre-start"), 0);
    assert_contains(R.err, "created mdev " U100 " (nvidia-46, GRID P40-1Q) on " GPU_A);
    assert_not_contains(R.err, "nvidia-47/available_instances");
    fh_run_vm(FH, 100, 5100);
    assert_int_equal(fh_write(FH, broken, "garbage\n"), 0); /* the create recomputed it */
    /* asked for: read, and the unreadable count refuses (as 0 available) */
    vm(101, "hostpci0: " GPU_A ",mdev=nvidia-47\n");
    assert_int_equal(hook("101", "pre-start"), 1);
    assert_contains(R.err, "nvidia-47/available_instances (Invalid argument)");
    /* a refusal on a partial read is decided again on the whole GPU, with what fits there */
    vm(102, "hostpci0: " GPU_A ",mdev=nvidia-48\n");
    assert_int_equal(hook("102", "pre-start"), 1);
    assert_contains(R.err, "types that fit there now: P40-1B, P40-1Q");
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_lifecycle),
        T(test_short_id_and_second_vgpu),
        T(test_mapping),
        T(test_sriov_vf),
        T(test_nothing_to_do),
        T(test_reuse_and_replace),
        T(test_refusal_explains),
        T(test_reclaim_stale),
        T(test_running_vm_device_untouched),
        T(test_post_stop_waits_for_driver),
        T(test_not_taking_vm_lock),
        T(test_nvidia_vendor_interface),
        T(test_uuid_args),
        T(test_uuid_args_variants),
        T(test_uuid_args_readonly_pmxcfs),
        T(test_migration_target),
        T(test_usage_errors),
        T(test_refusals_change_nothing),
        T(test_ignored_lines),
        T(test_missing_config_and_broken_sysfs),
        T(test_reads_only_asked_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
