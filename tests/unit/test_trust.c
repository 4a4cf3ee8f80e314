/*
 * The promises of issue 9 ("every promise holds under hostile and unlucky input"), one test
 * per item, on the real binary and a fake host: nothing is lost, nothing is acted on that
 * Proxmox ignores, every message is true, and no one without root can influence a start.
 * Each test states what the administrator observes: exit status, messages, file bytes, sysfs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct fakehost FH_HOST;
static struct fakehost *const FH = &FH_HOST; /* one host per test */
static struct fh_result R;

#define run(env, ...) fh_run(FH, &R, env, __VA_ARGS__, NULL)

static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create_p40_pair(FH), 0);
    /* locks time out after a second here; the default is qm set's 10 s */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0, \"lock_timeout_s\": 1}\n");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(FH);
    return 0;
}

static char *path_in(const char *rel) {
    static char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s/%s", FH->root, rel);
    return buf;
}

/* "args: " + n bytes of words, the kind of value that used to be cut at 8 KiB */
static char *long_args(size_t n) {
    char *a = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        a[i] = i % 40 == 39 ? ' ' : (char)('a' + i % 26);
    }
    a[0] = '-';
    a[n] = '\0';
    return a;
}

/* ---------- 1. values are never truncated ---------- */

static void test_01_long_args_pre_start(void **state) {
    (void)state;
    fh_qemu_server_version(FH, "7.2-3");
    char *args = long_args(12 * 1024);
    size_t cl = strlen(args) + 256;
    char *conf = malloc(cl);
    snprintf(conf, cl, "args: %s\ncores: 2\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n", args);
    fh_vmconf(FH, 100, conf);
    assert_int_equal(run(NULL, "100", "pre-start"), 1); /* the args change needs one more start */
    char *got = fh_read_vmconf(FH, 100);
    char *want = malloc(cl + 64);
    snprintf(
        want, cl + 64, "args: %s -uuid " U100 "\ncores: 2\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n",
        args
    );
    assert_string_equal(got, want);
    free(got);
    free(want);
    free(conf);
    free(args);
}

static void test_01_long_args_attach_detach(void **state) {
    (void)state;
    fh_qemu_server_version(FH, "8.0.3"); /* the args form: before 8.0.4 */
    char *args = long_args(12 * 1024);
    size_t cl = strlen(args) + 64;
    char *conf = malloc(cl);
    snprintf(conf, cl, "args: %s\ncores: 2\n", args);
    fh_vmconf(FH, 102, conf);
    assert_int_equal(run(NULL, "attach", "102", "--type", "P40-1Q", NULL), 0);
    char *mid = fh_read_vmconf(FH, 102);
    assert_int_equal(strncmp(mid + 6, args, strlen(args)), 0);
    assert_contains(
        mid, "-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/00000000-0000-0000-0000-000000000102"
    );
    free(mid);
    assert_int_equal(run(NULL, "detach", "102", NULL), 0);
    char *after = fh_read_vmconf(FH, 102);
    assert_string_equal(after, conf); /* byte for byte */
    free(after);
    free(conf);
    free(args);
}

/* A message never carries a cut command: a long args is described, not pasted. */
static void test_01_long_args_hint(void **state) {
    (void)state;
    fh_qemu_server_version(FH, "7.2-3");
    char *args = long_args(12 * 1024);
    size_t cl = strlen(args) + 256;
    char *conf = malloc(cl);
    snprintf(conf, cl, "args: %s\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n", args);
    fh_vmconf(FH, 100, conf);
    const char *ro[] = {"FAKE_PMXCFS_RO=1", NULL};
    assert_int_equal(run(ro, "100", "pre-start"), 1);
    assert_contains(R.err, "append ' -uuid " U100 "' to the VM's args");
    assert_not_contains(R.err, "qm set 100 --args '-");
    free(conf);
    free(args);
}

/* ---------- 2. the VM config is read as Proxmox reads it ---------- */

static void test_02_second_args_line(void **state) {
    (void)state;
    fh_qemu_server_version(FH, "7.2-3");
    fh_vmconf(
        FH, 100, "args: -first\ncores: 2\nargs: -second\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n"
    );
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    char *got = fh_read_vmconf(FH, 100);
    /* -uuid goes where Proxmox reads args: the last line */
    assert_string_equal(
        got, "args: -first\ncores: 2\nargs: -second -uuid " U100
             "\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n"
    );
    free(got);
}

/* A cold start applies [PENDING] before pre-start runs (qemu-server's vm_start): check
 * predicts the start with it; pre-start acts on the file as it then is. */
static void test_02_pending_changes(void **state) {
    (void)state;
    fh_vmconf(
        FH, 100,
        "hostpci0: 0000:06:00.0,mdev=nvidia-46\n\n[PENDING]\nhostpci0: "
        "0000:07:00.0,mdev=nvidia-47\n"
    );
    char *before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "check", "100"), 0);
    assert_contains(R.out, "index 0: create " U100 " (nvidia-47, GRID P40-2Q) on 0000:07:00.0");
    assert_contains(R.err, "has pending changes: a start applies them before the hook runs");
    assert_host_unchanged(FH, before);
    fh_vmconf(
        FH, 100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n\n[PENDING]\ndelete: !hostpci0,cores\n"
    );
    assert_int_equal(run(NULL, "check", "100"), 0);
    assert_contains(R.out, "no vGPU in the VM config");
    /* pre-start after Proxmox applied it: the file counts */
    fh_vmconf(FH, 100, "hostpci0: 0000:07:00.0,mdev=nvidia-47\n");
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_contains(R.err, "created mdev " U100 " (nvidia-47, GRID P40-2Q) on 0000:07:00.0");
}

/* ---------- 3. check and pre-start decide the same ---------- */

static void test_03_plan_counts_its_own_devices(void **state) {
    (void)state;
    /* 23 running VMs hold 1Q on GPU A: one instance is left */
    for (unsigned long v = 200; v < 223; v++) {
        char uuid[40];
        snprintf(uuid, sizeof(uuid), "00000000-0000-0000-0000-%012lu", v);
        assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-46", uuid), 0);
        fh_run_vm(FH, v, (long)(9000 + v));
    }
    fh_vmconf(
        FH, 100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\nhostpci1: 0000:06:00.0,mdev=nvidia-46\n"
    );
    char *before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "check", "100", NULL), 1);
    assert_contains(R.out, "would NOT start");
    assert_contains(R.out, "cannot place nvidia-46 for hostpci1");
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "cannot place nvidia-46 for hostpci1");
    char *after = fh_snapshot(FH);
    assert_string_equal(before, after); /* nothing created, nothing rolled back */
    free(before);
    free(after);
}

/* ---------- 4. attach and detach are all or nothing ---------- */

static void attach_fault(const char *fault, bool both_as_before, const char *msg) {
    fh_vmconf(FH, 102, "cores: 2\n");
    fh_write(FH, "var/lock/qemu-server/lock-102.conf", "");
    char *before = fh_snapshot(FH);
    char env0[64];
    snprintf(env0, sizeof(env0), "FAKE_FAIL=%s", fault);
    const char *env[] = {env0, NULL};
    assert_int_equal(run(env, "attach", "102", "--type", "P40-1Q", NULL), 1);
    assert_contains(R.err, msg);
    char *after = fh_snapshot(FH);
    if (both_as_before) {
        assert_string_equal(before, after);
    } else {
        assert_string_not_equal(before, after);
    }
    free(before);
    free(after);
}

static void test_04_attach_fails_whole(void **state) {
    (void)state;
    fh_qemu_server_version(FH, "8.0.3"); /* the args form: before 8.0.4 */
    /* the VM config's rename fails after the settings' succeeded: the settings go back */
    attach_fault("rename:2", true, "nothing was changed");
    assert_contains(R.err, "cannot write /etc/pve/qemu-server/102.conf");
    /* a temp file cannot be written, or made durable: nothing renamed at all */
    attach_fault("write:1", true, "nothing was changed");
    attach_fault("write:2", true, "nothing was changed");
    attach_fault("fsync:2", true, "nothing was changed");
    attach_fault("rename:1", true, "nothing was changed");
}

static void test_04_attach_crash_healed(void **state) {
    (void)state;
    fh_qemu_server_version(FH, "8.0.3"); /* the args form: before 8.0.4 */
    /* every rename from the second on fails (quorum lost): the message says what changed */
    attach_fault("rename:2+", false, "/etc/pve/vgpu-hook.json was changed, but");
    assert_contains(R.err, "run the command again");
    assert_contains(R.err, "it completes the change");
    char *conf = fh_read_vmconf(FH, 102);
    assert_string_equal(conf, "cores: 2\n");
    free(conf);
    /* the start is refused meanwhile, with the way out */
    assert_int_equal(run(NULL, "102", "pre-start"), 1);
    assert_contains(R.err, "run 'pve-vgpu-hook attach 102 --type P40-1Q' again");
    /* the same command again completes it, and detach restores both files */
    assert_int_equal(run(NULL, "attach", "102", "--type", "P40-1Q", NULL), 0);
    conf = fh_read_vmconf(FH, 102);
    assert_contains(conf, "sysfsdev=/sys/bus/mdev/devices/00000000-0000-0000-0000-000000000102");
    free(conf);
    assert_int_equal(run(NULL, "detach", "102", NULL), 0);
    conf = fh_read_vmconf(FH, 102);
    assert_string_equal(conf, "cores: 2\n");
    free(conf);
    char *json = fh_read(FH, "etc/pve/vgpu-hook.json");
    assert_string_equal(json, "{\n  \"remove_wait_s\": 0,\n  \"lock_timeout_s\": 1\n}\n");
    free(json);
}

static void test_04_detach_fails_whole(void **state) {
    (void)state;
    fh_vmconf(FH, 102, "args: -cpu host\ncores: 2\n");
    assert_int_equal(run(NULL, "attach", "102", "--type", "P40-1Q", NULL), 0);
    char *before = fh_snapshot(FH);
    const char *once[] = {"FAKE_FAIL=rename:2", NULL};
    assert_int_equal(run(once, "detach", "102", NULL), 1);
    assert_contains(R.err, "nothing was changed");
    char *after = fh_snapshot(FH);
    assert_string_equal(before, after);
    free(after);
    /* the config is written first on detach: a failure after it is healed by detach again */
    const char *onwards[] = {"FAKE_FAIL=rename:2+", NULL};
    assert_int_equal(run(onwards, "detach", "102", NULL), 1);
    assert_contains(R.err, "/etc/pve/qemu-server/102.conf was changed, but");
    assert_int_equal(run(NULL, "detach", "102", NULL), 0);
    char *conf = fh_read_vmconf(FH, 102);
    assert_string_equal(conf, "args: -cpu host\ncores: 2\n");
    free(conf);
    assert_int_equal(run(NULL, "status", NULL), 0);
    assert_not_contains(R.out, "102");
    free(before);
}

static void test_04_attach_restores_hand_edit(void **state) {
    (void)state;
    fh_vmconf(FH, 102, "args: -cpu host\ncores: 2\n");
    assert_int_equal(run(NULL, "attach", "102", "--type", "P40-1Q", NULL), 0);
    char *attached = fh_read_vmconf(FH, 102);
    /* an admin removes our args and the hookscript by hand */
    fh_vmconf(FH, 102, "args: -cpu host\ncores: 2\n");
    assert_int_equal(run(NULL, "check", "102", NULL), 1);
    assert_contains(R.out, "attach 102 --type P40-1Q' again");
    assert_int_equal(run(NULL, "attach", "102", "--type", "P40-1Q", NULL), 0);
    char *again = fh_read_vmconf(FH, 102);
    assert_string_equal(again, attached);
    assert_int_equal(run(NULL, "check", "102", NULL), 0);
    assert_int_equal(run(NULL, "detach", "102", NULL), 0);
    char *after = fh_read_vmconf(FH, 102);
    assert_string_equal(after, "args: -cpu host\ncores: 2\n");
    free(after);
    free(again);
    free(attached);
}

static void test_04_attach_type_validated(void **state) {
    (void)state;
    fh_vmconf(FH, 102, "cores: 2\n");
    fh_write(FH, "var/lock/qemu-server/lock-102.conf", "");
    char *before = fh_snapshot(FH);
    static const char *const bad[] = {"../../nvidia-46", "nvidia-46/x", "a\x1b[31m", "", " P40-1Q"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(run(NULL, "attach", "102", "--type", bad[i], NULL), 1);
        assert_contains(R.err, "is not a vGPU type");
        assert_not_contains(R.err, "\x1b");
    }
    assert_host_unchanged(FH, before);
}

/* ---------- 5. the settings file ---------- */

static void test_05_config_option(void **state) {
    (void)state;
    assert_int_equal(run(NULL, "--config", "/nonexistent/vgpu.json", "types", NULL), 1);
    assert_contains(R.err, "/nonexistent/vgpu.json: it does not exist");
    /* a relative --config is relative to the current directory, not to --root */
    char dir[] = "/tmp/pvh-cwd-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof(cfg), "%s/mine.json", dir);
    FILE *f = fopen(cfg, "w");
    fputs("{\"policy\": \"none\"}\n", f);
    fclose(f);
    char old[PATH_MAX];
    assert_non_null(getcwd(old, sizeof(old)));
    assert_int_equal(chdir(dir), 0);
    run(NULL, "--config", "mine.json", "types", NULL);
    assert_int_equal(chdir(old), 0);
    assert_int_equal(R.status, 0);
    assert_contains(R.out, "policy: none");
    unlink(cfg);
    rmdir(dir);
}

static void test_05_duplicate_keys(void **state) {
    (void)state;
    fh_write(
        FH, "etc/pve/vgpu-hook.json",
        "{\"remove_wait_s\": 0,\n \"vms\": {\"102\": {\"type\": \"P40-1Q\"},\n"
        "          \"102\": {\"type\": \"P40-2Q\"}}}\n"
    );
    fh_vmconf(FH, 102, "cores: 2\n");
    fh_write(FH, "var/lock/qemu-server/lock-102.conf", "");
    char *before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "types", NULL), 1);
    assert_contains(R.err, "/etc/pve/vgpu-hook.json:3:11: the key \"102\" appears twice");
    assert_int_equal(run(NULL, "attach", "102", "--type", "P40-1Q", NULL), 1);
    assert_contains(R.err, "appears twice");
    assert_int_equal(run(NULL, "102", "pre-start"), 1);
    assert_host_unchanged(FH, before);
}

/* ---------- 6. never stricter than the driver by default ---------- */

static void test_06_auto_policy(void **state) {
    (void)state;
    fh_vmconf(FH, 100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    fh_run_vm(FH, 100, 5100);
    /* a 1B next to a 1Q: the driver offers it, so it starts (it was refused by policy) */
    fh_vmconf(FH, 101, "hostpci0: 0000:06:00.0,mdev=nvidia-155\n");
    assert_int_equal(run(NULL, "check", "101", NULL), 0);
    assert_int_equal(run(NULL, "101", "pre-start"), 0);
    assert_true(fh_exists(FH, DEV(GPU_A, U101)));
    /* the admin's explicit rule is still theirs to set, and named as theirs */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0, \"policy\": \"homogeneous\"}");
    fh_vmconf(FH, 102, "hostpci0: 0000:06:00.0,mdev=nvidia-155\n");
    assert_int_equal(run(NULL, "102", "pre-start"), 1);
    assert_contains(R.err, "the homogeneous policy (your settings)");
}

/* ---------- 7. one bad mdev parent does not take the host down ---------- */

static void test_07_bad_parents(void **state) {
    (void)state;
    /* the kernel's mtty sample: a non-PCI parent */
    fh_write(
        FH, "sys/devices/virtual/mtty/mtty/mdev_supported_types/mtty-1/name", "Single port serial\n"
    );
    fh_write(
        FH, "sys/devices/virtual/mtty/mtty/mdev_supported_types/mtty-1/available_instances", "24\n"
    );
    fh_write(
        FH, "sys/devices/virtual/mtty/mtty/mdev_supported_types/mtty-1/device_api", "vfio-pci\n"
    );
    assert_int_equal(
        symlink("../../devices/virtual/mtty/mtty", path_in("sys/class/mdev_bus/mtty")), 0
    );
    /* a parent whose device is gone */
    assert_int_equal(
        symlink(
            "../../devices/pci0000:00/0000:0b:00.0", path_in("sys/class/mdev_bus/0000:0b:00.0")
        ),
        0
    );
    assert_int_equal(run(NULL, "types", NULL), 0);
    assert_contains(R.out, "0000:06:00.0  P40");
    assert_contains(R.err, "mdev parent 'mtty' is not a PCI device");
    assert_contains(R.err, "/sys/class/mdev_bus/0000:0b:00.0 is a dangling link");
    assert_int_equal(run(NULL, "status", NULL), 0);
    assert_int_equal(run(NULL, "status", "--json", NULL), 0);
    /* a managed VM without --gpu is placed among every GPU: still works */
    fh_vmconf(FH, 102, "cores: 2\n");
    assert_int_equal(run(NULL, "attach", "102", "--type", "P40-1Q", NULL), 0);
    assert_int_equal(run(NULL, "102", "pre-start"), 0);
    assert_contains(R.err, "created mdev 00000000-0000-0000-0000-000000000102");
}

/* ---------- 8. status and cleanup agree on busy VMs ---------- */

static void test_08_busy_is_not_leftover(void **state) {
    (void)state;
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-47", U101), 0);
    int fd = open(path_in("var/lock/qemu-server/lock-101.conf"), O_RDWR | O_CREAT, 0644);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    assert_int_equal(run(NULL, "status", NULL), 0);
    assert_contains(R.out, U101 "  nvidia-47   GRID P40-2Q      VM 101       busy");
    assert_not_contains(R.out, "leftover");
    assert_int_equal(run(NULL, "status", "--json", NULL), 0);
    assert_contains(R.out, "\"state\": \"busy\"");
    assert_int_equal(run(NULL, "cleanup", NULL), 0);
    assert_contains(R.out, "kept " U101);
    assert_true(fh_exists(FH, BUS(U101)));
    close(fd);
    assert_int_equal(run(NULL, "status", NULL), 0);
    assert_contains(R.out, "VM 101       leftover");
}

/* ---------- 9. NVIDIA's vendor interface ---------- */

static void test_09_vendor_interface_needs_8_2_5(void **state) {
    (void)state;
    assert_int_equal(
        fh_add_nvidia_iface(
            FH, "0000:81:00.0", 2, "1414  : NVIDIA L40S-2Q\n1415  : NVIDIA L40S-4Q\n"
        ),
        0
    );
    fh_vmconf(FH, 100, "hostpci0: 0000:81:00.4,mdev=nvidia-1414\n");
    fh_qemu_server_version(FH, "8.2.4");
    assert_int_equal(run(NULL, "check", "100", NULL), 1);
    assert_contains(R.out, "qemu-server 8.2.4 cannot use NVIDIA's vendor interface");
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "upgrade Proxmox VE to qemu-server 8.2.5 or later");
    fh_qemu_server_version(FH, "8.2.5");
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
}

static void test_09_attach_refuses_vendor_type(void **state) {
    (void)state;
    assert_int_equal(
        fh_add_nvidia_iface(
            FH, "0000:81:00.0", 2, "1414  : NVIDIA L40S-2Q\n1415  : NVIDIA L40S-4Q\n"
        ),
        0
    );
    fh_vmconf(FH, 102, "cores: 2\n");
    fh_write(FH, "var/lock/qemu-server/lock-102.conf", ""); /* left by any qm set */
    /* attach goes through a resource mapping there (test_vfmap), which this qemu-server
     * cannot use: refused with the upgrade, and a GPU named that does not offer the type */
    fh_qemu_server_version(FH, "8.2.4");
    char *before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "attach", "102", "--type", "L40S-2Q", NULL), 1);
    assert_contains(R.err, "qemu-server 8.2.4 on node pve1 cannot use NVIDIA's vendor interface");
    assert_contains(R.err, "upgrade Proxmox VE to qemu-server 8.2.5 or later");
    assert_int_equal(
        run(NULL, "attach", "102", "--type", "P40-1Q", "--gpu", "0000:81:00.0", NULL), 1
    );
    assert_contains(R.err, "no GPU on node pve1 offers 'P40-1Q' on a free VF now");
    assert_host_unchanged(FH, before);
}

/* ---------- 10. uuid_args "always" on qemu-server >= 7.2-4 ---------- */

static void test_10_uuid_args_always(void **state) {
    (void)state;
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0, \"uuid_args\": \"always\"}");
    const char *conf = "cores: 2\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n";
    fh_vmconf(FH, 100, conf);
    assert_int_equal(run(NULL, "100", "pre-start"), 0); /* no start is failed for nothing */
    assert_contains(R.err, "\"uuid_args\": \"always\" changes nothing on qemu-server 9.2.6");
    char *got = fh_read_vmconf(FH, 100);
    assert_string_equal(got, conf);
    free(got);
    /* where it matters, it still acts */
    assert_int_equal(run(NULL, "100", "post-stop"), 0);
    fh_qemu_server_version(FH, "7.2-3");
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "added '-uuid " U100 "' to args");
}

/* ---------- 11. the host lock ---------- */

static void test_11_host_lock(void **state) {
    (void)state;
    fh_vmconf(FH, 100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    /* anyone can hold a lock in /run/lock (1777): it no longer matters */
    mkdir(path_in("run/lock"), 01777);
    int fd = open(path_in("run/lock/pve-vgpu-hook.lock"), O_RDWR | O_CREAT, 0666);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    close(fd);
    assert_int_equal(run(NULL, "100", "post-stop"), 0);
    /* the lock directory must be root's alone */
    assert_int_equal(chmod(path_in("run/pve-vgpu-hook"), 0777), 0);
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "cannot take the host lock /run/pve-vgpu-hook/host.lock");
    assert_contains(R.err, "must be a directory of root's with mode 0700");
    assert_false(fh_exists(FH, BUS(U100)));
    /* and the lock file is never followed through a link */
    assert_int_equal(chmod(path_in("run/pve-vgpu-hook"), 0700), 0);
    unlink(path_in("run/pve-vgpu-hook/host.lock"));
    assert_int_equal(symlink("/tmp/elsewhere", path_in("run/pve-vgpu-hook/host.lock")), 0);
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "not a link");
    /* missing, it is made root-only */
    unlink(path_in("run/pve-vgpu-hook/host.lock"));
    rmdir(path_in("run/pve-vgpu-hook"));
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    struct stat st;
    assert_int_equal(stat(path_in("run/pve-vgpu-hook"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
}

/* ---------- 12. chained hooks only when only root can change them ---------- */

static void hook_script(const char *name, const char *body, mode_t mode) {
    char rel[256];
    snprintf(rel, sizeof(rel), "etc/pve-vgpu-hook/hooks.d/%s", name);
    fh_write(FH, rel, body);
    assert_int_equal(chmod(path_in(rel), mode), 0);
}

static void test_12_untrusted_hooks(void **state) {
    (void)state;
    fh_vmconf(FH, 100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    char marker[PATH_MAX + 64], body[PATH_MAX + 128];
    snprintf(marker, sizeof(marker), "%s/ran", FH->root);
    snprintf(body, sizeof(body), "#!/bin/sh\necho \"$1 $2\" >>%s\n", marker);
    chmod(path_in("etc"), 0755);
    hook_script("50-mine", body, 0757); /* writable by others */
    chmod(path_in("etc/pve-vgpu-hook"), 0755);
    chmod(path_in("etc/pve-vgpu-hook/hooks.d"), 0755);
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(
        R.err, "chained hook /etc/pve-vgpu-hook/hooks.d/50-mine is not run: it is writable by "
               "group or others"
    );
    assert_contains(R.err, "removed mdev " U100 " again (start refused)");
    assert_int_equal(access(marker, F_OK), -1);
    /* owned by another user */
    assert_int_equal(chmod(path_in("etc/pve-vgpu-hook/hooks.d/50-mine"), 0755), 0);
    assert_int_equal(chown(path_in("etc/pve-vgpu-hook/hooks.d/50-mine"), 65534, 65534), 0);
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "is not run: it is not owned by root");
    assert_int_equal(chown(path_in("etc/pve-vgpu-hook/hooks.d/50-mine"), 0, 0), 0);
    /* in a directory others may write */
    assert_int_equal(chmod(path_in("etc/pve-vgpu-hook/hooks.d"), 0775), 0);
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "hooks.d is writable by group or others");
    assert_int_equal(access(marker, F_OK), -1);
    /* root's alone: it runs */
    assert_int_equal(chmod(path_in("etc/pve-vgpu-hook/hooks.d"), 0755), 0);
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_int_equal(access(marker, F_OK), 0);
}

static void test_12_hook_time_limit(void **state) {
    (void)state;
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0, \"hook_timeout_s\": 1}");
    fh_vmconf(FH, 100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    chmod(path_in("etc"), 0755);
    hook_script("10-hangs", "#!/bin/sh\nsleep 60\n", 0755);
    chmod(path_in("etc/pve-vgpu-hook"), 0755);
    chmod(path_in("etc/pve-vgpu-hook/hooks.d"), 0755);
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "did not finish on pre-start within 1 s and was stopped");
    assert_false(fh_exists(FH, BUS(U100)));
}

/* ---------- 13. control bytes are escaped in everything printed ---------- */

static void test_13_escapes(void **state) {
    (void)state;
    /* Proxmox's mdev pattern [^/.:]+ lets an escape sequence through */
    fh_vmconf(FH, 100, "hostpci0: 0000:06:00.0,mdev=nvidia\x1b[2J\x1b]0;owned\x07-46\n");
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_not_contains(R.err, "\x1b");
    assert_not_contains(R.err, "\x07");
    assert_contains(R.err, "nvidia\\x1b[2J\\x1b]0;owned\\x07-46");
    run(NULL, "check", "100", NULL);
    assert_not_contains(R.out, "\x1b");
    /* sysfs text reaches the types view */
    fh_write(
        FH, "sys/devices/pci0000:00/0000:07:00.0/mdev_supported_types/nvidia-46/name",
        "GRID \x1b[31mP40-1Q\n"
    );
    assert_int_equal(run(NULL, "types", NULL), 0);
    assert_not_contains(R.out, "\x1b");
    assert_not_contains(R.err, "\x1b");
    assert_contains(R.err, "control bytes");
}

/* ---------- 14. nothing under --root escapes it ---------- */

static void test_14_setup_stays_inside(void **state) {
    (void)state;
    char outside[] = "/tmp/pvh-outside-XXXXXX";
    assert_non_null(mkdtemp(outside));
    /* a relative storage path is refused, not resolved against somewhere */
    fh_write(FH, "etc/pve/storage.cfg", "dir: local\n\tpath var/lib/vz\n\tcontent snippets\n");
    char *before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "setup", NULL), 1);
    assert_contains(R.err, "has path 'var/lib/vz', which is not an absolute path");
    assert_host_unchanged(FH, before);
    /* the storage directory is an absolute link: it resolves inside the root */
    fh_write(FH, "etc/pve/storage.cfg", "dir: local\n\tpath /var/lib/vz\n\tcontent snippets\n");
    mkdir(path_in("var/lib"), 0755);
    assert_int_equal(symlink(outside, path_in("var/lib/vz")), 0);
    run(NULL, "setup", NULL);
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof(probe), "%s/snippets", outside);
    assert_int_equal(access(probe, F_OK), -1); /* nothing made outside */
    rmdir(outside);
}

/* ---------- 15. hook mode ignores the environment's root and settings ---------- */

static void test_15_hook_mode_ignores_env(void **state) {
    (void)state;
    char marker[PATH_MAX + 64], body[PATH_MAX + 128];
    snprintf(marker, sizeof(marker), "%s/ran", FH->root);
    snprintf(body, sizeof(body), "#!/bin/sh\necho \"$1 $2\" >>%s\n", marker);
    chmod(path_in("etc"), 0755);
    hook_script("50-mine", body, 0755);
    chmod(path_in("etc/pve-vgpu-hook"), 0755);
    chmod(path_in("etc/pve-vgpu-hook/hooks.d"), 0755);
    /* a leftover export of a test tree: a real start must not use that tree */
    char env0[PATH_MAX + 32], cfg[PATH_MAX + 64];
    snprintf(env0, sizeof(env0), "PVE_VGPU_HOOK_ROOT=%s", FH->root);
    snprintf(cfg, sizeof(cfg), "%s/etc/pve/vgpu-hook.json", FH->root);
    const char *args[] = {"--config", cfg, "100", "post-start", NULL};
    const char *env[] = {env0, NULL};
    fh_runv(FH, &R, env, args);
    assert_int_equal(R.status, 0);
    assert_contains(R.err, "PVE_VGPU_HOOK_ROOT is ignored in hook mode");
    assert_int_equal(access(marker, F_OK), -1);
    /* an explicit --root counts */
    assert_int_equal(run(NULL, "100", "post-start"), 0);
    assert_int_equal(access(marker, F_OK), 0);
}

/* ---------- 16. every hint points at something that exists ---------- */

static void test_16_messages(void **state) {
    (void)state;
    /* every settings error points at `help config`: it exists and explains every key */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"policy\": \"fair\"}");
    assert_int_equal(run(NULL, "types", NULL), 1);
    assert_contains(R.err, "see 'pve-vgpu-hook help config'");
    assert_int_equal(run(NULL, "help", "config", NULL), 0);
    static const char *const keys[] = {
        "policy",        "series_groups", "placement",      "uuid_args",      "uuid_source",
        "remove_wait_s", "reclaim_stale", "lock_timeout_s", "hook_timeout_s", "vms"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        assert_contains(R.out, keys[i]);
    }
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0}");
    /* the suggested command is quoted for the shell */
    fh_qemu_server_version(FH, "7.2-3");
    fh_vmconf(
        FH, 100, "args: -fw_cfg 'name=opt/x,string=it''s'\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n"
    );
    const char *ro[] = {"FAKE_PMXCFS_RO=1", NULL};
    assert_int_equal(run(ro, "100", "pre-start"), 1);
    assert_contains(
        R.err,
        "qm set 100 --args '-fw_cfg '\\''name=opt/x,string=it'\\'''\\''s'\\'' -uuid " U100 "'"
    );
    assert_not_contains(R.err, "writable (");
    /* output that cannot be written is a failure */
    char cmd[PATH_MAX * 2];
    snprintf(
        cmd, sizeof(cmd), "PVE_VGPU_HOOK_ROOT=%s %s types >/dev/full 2>/dev/null", FH->root,
        fh_binary()
    );
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
}

static void test_16_vendor_vf_in_use_hint(void **state) {
    (void)state;
    assert_int_equal(fh_add_nvidia_iface(FH, "0000:81:00.0", 1, "1414  : NVIDIA L40S-2Q\n"), 0);
    /* the VF already holds a type for another VM: nothing is creatable there */
    fh_write(FH, "sys/devices/pci0000:00/0000:81:00.4/nvidia/current_vgpu_type", "1415\n");
    fh_write(
        FH, "sys/devices/pci0000:00/0000:81:00.4/nvidia/creatable_vgpu_types", "ID : vGPU Name\n"
    );
    fh_vmconf(FH, 100, "hostpci0: 0000:81:00.4,mdev=nvidia-1414\n");
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "point hostpci0 at a free VF");
    assert_not_contains(R.err, "load the vGPU driver");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_01_long_args_pre_start),
        T(test_01_long_args_attach_detach),
        T(test_01_long_args_hint),
        T(test_02_second_args_line),
        T(test_02_pending_changes),
        T(test_03_plan_counts_its_own_devices),
        T(test_04_attach_fails_whole),
        T(test_04_attach_crash_healed),
        T(test_04_detach_fails_whole),
        T(test_04_attach_restores_hand_edit),
        T(test_04_attach_type_validated),
        T(test_05_config_option),
        T(test_05_duplicate_keys),
        T(test_06_auto_policy),
        T(test_07_bad_parents),
        T(test_08_busy_is_not_leftover),
        T(test_09_vendor_interface_needs_8_2_5),
        T(test_09_attach_refuses_vendor_type),
        T(test_10_uuid_args_always),
        T(test_11_host_lock),
        T(test_12_untrusted_hooks),
        T(test_12_hook_time_limit),
        T(test_13_escapes),
        T(test_14_setup_stays_inside),
        T(test_15_hook_mode_ignores_env),
        T(test_16_messages),
        T(test_16_vendor_vf_in_use_hint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
