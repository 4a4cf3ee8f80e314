/*
 * Admin commands on fixture hosts, against golden files in tests/expected/
 * (regenerate with PVH_REGENERATE=1 after an intended change, and review the diff).
 * Hosts: a P40 pair, an SR-IOV A40, and a mixed host with a running VM, a leftover, a foreign
 * mdev and a dangling link. Also: our types --dumpjson agrees with mdevctl's on every shared key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "mdevjson.h"
#include "testutil.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PVH_EXPECTED_DIR
#define PVH_EXPECTED_DIR "tests/expected"
#endif

static struct fakehost FH;
static struct fh_result R;

static void p40_pair(void) {
    assert_int_equal(fh_add_p40(&FH, "0000:06:00.0"), 0);
    assert_int_equal(fh_add_p40(&FH, "0000:07:00.0"), 0);
    assert_int_equal(
        fh_add_mdev(&FH, "0000:06:00.0", "nvidia-47", "00000000-0000-0000-0000-000000000100"), 0
    );
    assert_int_equal(
        fh_add_mdev(&FH, "0000:06:00.0", "nvidia-47", "00000000-0000-0000-0000-000000000101"), 0
    );
    fh_run_vm(&FH, 100, 4100);
    fh_run_vm(&FH, 101, 4101);
    fh_vmconf(&FH, 100, "hostpci0: 0000:06:00.0,mdev=nvidia-47\n");
    fh_vmconf(&FH, 101, "hostpci0: 0000:06:00.0,mdev=nvidia-47\n");
    fh_vmconf(&FH, 102, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
}

static void a40_sriov(void) {
    assert_int_equal(fh_add_a40_sriov(&FH, "0000:41:00.0", 4), 0);
    assert_int_equal(
        fh_add_mdev(&FH, "0000:41:00.4", "nvidia-560", "00000000-0000-0000-0000-000000000200"), 0
    );
    fh_run_vm(&FH, 200, 4200);
    fh_vmconf(&FH, 200, "hostpci0: 0000:41:00.4,mdev=nvidia-560\n");
    fh_vmconf(&FH, 201, "hostpci0: 0000:41:00.5,mdev=nvidia-560\n");
}

static void mixed(void) {
    assert_int_equal(fh_add_p40(&FH, "0000:06:00.0"), 0);
    assert_int_equal(fh_add_a40_sriov(&FH, "0000:41:00.0", 2), 0);
    /* VM 300 runs; VM 301's device is a leftover; a foreign UUID; a dangling link */
    assert_int_equal(
        fh_add_mdev(&FH, "0000:06:00.0", "nvidia-49", "00000000-0000-0000-0000-000000000300"), 0
    );
    assert_int_equal(
        fh_add_mdev(&FH, "0000:06:00.0", "nvidia-283", "00000000-0000-0000-0000-000000000301"), 0
    );
    assert_int_equal(
        fh_add_mdev(&FH, "0000:41:00.4", "nvidia-557", "6e1f2f1c-7d2a-4c55-8f0e-5a1c3b9d0e77"), 0
    );
    fh_add_dangling(&FH, "00000000-0000-0000-0000-000000000999");
    fh_run_vm(&FH, 300, 4300);
    fh_run_vm(&FH, 302, 4302); /* runs, but its vGPU is gone */
    fh_vmconf(&FH, 300, "hostpci0: 0000:06:00.0,mdev=nvidia-49\n");
    fh_vmconf(&FH, 301, "hostpci0: 0000:06:00.0,mdev=nvidia-283\n");
    fh_vmconf(&FH, 302, "hostpci1: 0000:41:00.5,mdev=nvidia-557\n");
}

static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create(&FH), 0);
    fh_write(&FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0}\n");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(&FH);
    return 0;
}

/* Run a command and compare stdout (and stderr, when present) with the golden file. */
static void golden(const char *name, int want_status, ...) {
    const char *args[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, want_status);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 15) {
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    fh_runv(&FH, &R, NULL, args);
    if (R.status != want_status) {
        fail_msg("%s: status %d, want %d\n%s%s", name, R.status, want_status, R.out, R.err);
    }
    char got[sizeof(R.out) + sizeof(R.err) + 32];
    snprintf(got, sizeof(got), "%s%s%s", R.out, R.err[0] ? "--- stderr\n" : "", R.err);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", PVH_EXPECTED_DIR, name);
    if (getenv("PVH_REGENERATE")) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(got, f);
        fclose(f);
        return;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        fail_msg("missing golden file %s (run with PVH_REGENERATE=1); output:\n%s", path, got);
    }
    static char want[sizeof(got)];
    size_t len = fread(want, 1, sizeof(want) - 1, f);
    want[len] = '\0';
    fclose(f);
    if (strcmp(got, want)) {
        fail_msg("%s differs from the golden file.\n--- got:\n%s\n--- want:\n%s", name, got, want);
    }
}

static void test_p40_pair(void **state) {
    (void)state;
    p40_pair();
    golden("p40-types.txt", 0, "types", NULL);
    golden("p40-types.json", 0, "types", "--json", NULL);
    golden("p40-types-dump.json", 0, "types", "--dumpjson", NULL);
    golden("p40-types-parent.txt", 0, "types", "--parent", "07:00.0", NULL);
    golden("p40-status.txt", 0, "status", NULL);
    golden("p40-status.json", 0, "status", "--json", NULL);
    golden("p40-check-102.txt", 1, "check", "102", NULL);
    golden("p40-check-102.json", 1, "check", "102", "--json", NULL);
    golden("p40-cleanup.txt", 0, "cleanup", "--dry-run", NULL);
}

static void test_a40_sriov(void **state) {
    (void)state;
    a40_sriov();
    golden("a40-types.txt", 0, "types", NULL);
    golden("a40-types-vf-dump.json", 0, "types", "--parent", "0000:41:00.5", "--dumpjson", NULL);
    golden("a40-types.json", 0, "types", "--json", NULL);
    golden("a40-status.txt", 0, "status", NULL);
    golden("a40-check-201.txt", 0, "check", "201", NULL);
}

/* The line of a type in the text of `types` (the first one naming it), cut at its end. */
static const char *type_line(const char *out, const char *type_id) {
    static char line[256];
    const char *p = strstr(out, type_id);
    assert_non_null(p);
    size_t n = strcspn(p, "\n");
    snprintf(line, sizeof(line), "%.*s", (int)n, p);
    return line;
}

/* 32 VFs each say "1 available" for every type, but they share one GPU: types counts what the
 * physical GPU still takes (an A40 takes one 48Q), and what fits is what the driver says. */
static void test_sriov_capacity_per_gpu(void **state) {
    (void)state;
    assert_int_equal(fh_add_a40_sriov(&FH, "0000:41:00.0", 32), 0);
    assert_int_equal(fh_run(&FH, &R, NULL, "types", NULL), 0);
    assert_contains(type_line(R.out, "nvidia-566 "), "49152 MiB    1         1  yes");
    assert_contains(type_line(R.out, "nvidia-565 "), "24576 MiB    2         2  yes");
    assert_contains(type_line(R.out, "nvidia-557 "), " 1024 MiB   32        32  yes");
    /* one 24Q hosted: one more 24Q, nothing of another size */
    assert_int_equal(
        fh_add_mdev(&FH, "0000:41:00.4", "nvidia-565", "00000000-0000-0000-0000-000000000300"), 0
    );
    assert_int_equal(fh_run(&FH, &R, NULL, "types", NULL), 0);
    assert_contains(type_line(R.out, "nvidia-565 "), "24576 MiB    2         1  yes");
    assert_contains(type_line(R.out, "nvidia-566 "), "49152 MiB    1         0  no");
}

static void test_mixed(void **state) {
    (void)state;
    mixed();
    golden("mixed-status.txt", 0, "status", NULL);
    golden("mixed-status.json", 0, "status", "--json", NULL);
    golden("mixed-cleanup-dry.txt", 0, "cleanup", "--dry-run", NULL);
    golden("mixed-cleanup.txt", 0, "cleanup", NULL);
    golden("mixed-cleanup-again.json", 0, "cleanup", "--json", NULL);
    golden("mixed-status-after.txt", 0, "status", NULL);
}

static void test_vendor_interface(void **state) {
    (void)state;
    /* NVIDIA's vendor interface (kernel >= 6.8) next to a classic mdev GPU */
    assert_int_equal(fh_add_p40(&FH, "0000:06:00.0"), 0);
    assert_int_equal(
        fh_add_nvidia_iface(
            &FH, "0000:81:00.0", 3,
            "1414  : NVIDIA H200X-1-18C\n"
            "1415  : NVIDIA H200X-2-35C\n"
        ),
        0
    );
    fh_write(&FH, "sys/devices/pci0000:00/0000:81:00.4/nvidia/current_vgpu_type", "1414\n");
    golden("vendor-types.txt", 0, "types", NULL);
    golden("vendor-status.txt", 0, "status", NULL);
    golden("vendor-status.json", 0, "status", "--json", NULL);
    /* the GPU is named by its PF or any of its VFs, as plain `types` lists it */
    golden("vendor-types-parent.txt", 0, "types", "--parent", "0000:81:00.0", NULL);
    assert_int_equal(fh_run(&FH, &R, NULL, "types", "--parent", "0000:81:00.5", NULL), 0);
    assert_contains(R.out, "0000:81:00.0  NVIDIA vendor interface");
    /* a VM that runs on a VF: Proxmox set its type; no mdev exists there, by design */
    fh_write(&FH, "sys/devices/pci0000:00/0000:81:00.5/nvidia/current_vgpu_type", "1415\n");
    fh_vmconf(&FH, 300, "hostpci0: 0000:81:00.5,mdev=nvidia-1415\n");
    assert_int_equal(fh_run_vm_on_vf(&FH, 300, 5300, "0000:81:00.5"), 0);
    assert_int_equal(fh_run(&FH, &R, NULL, "status", NULL), 0);
    assert_contains(R.out, "0000:81:00.5 nvidia-1415 (VM 300)");
    assert_not_contains(R.out, "without their vGPU");
    assert_int_equal(fh_run(&FH, &R, NULL, "status", "--json", NULL), 0);
    assert_contains(R.out, "\"running_without_vgpu\": [\n  ]");
}

static void test_usage(void **state) {
    (void)state;
    golden("usage-types-bad.txt", 2, "types", "--bogus", NULL);
    golden("usage-types-parent.txt", 2, "types", "--parent", "gpu0", NULL);
    golden("usage-check.txt", 2, "check", NULL);
    golden("help-check.txt", 0, "help", "check", NULL);
    golden("help-cleanup.txt", 0, "cleanup", "--help", NULL);
    golden("empty-types.txt", 0, "types", NULL);
    golden("empty-status.json", 0, "status", "--json", NULL);
    fh_write(&FH, "etc/pve/vgpu-hook.json", "{\"policy\": ");
    golden("bad-config-types.txt", 1, "types", NULL);
}

/* Debian's mdevctl 1.2 ignores MDEVCTL_ENV_ROOT: run it with the fake sys bind-mounted over
 * /sys in a private mount namespace (needs root and unshare). */
static json_object *mdevctl_types(void) {
    const char *mdevctl = access("/usr/bin/mdevctl", X_OK) == 0    ? "/usr/bin/mdevctl"
                          : access("/usr/sbin/mdevctl", X_OK) == 0 ? "/usr/sbin/mdevctl"
                                                                   : NULL;
    if (geteuid() != 0 || !mdevctl || access("/usr/bin/unshare", X_OK) != 0) {
        return NULL;
    }
    char cmd[8192];
    snprintf(
        cmd, sizeof(cmd),
        "unshare --mount sh -c 'mount --bind \"%s/sys\" /sys && %s types --dumpjson' "
        "2>/dev/null",
        FH.root, mdevctl
    );
    FILE *p = popen(cmd, "r");
    if (!p) {
        return NULL;
    }
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    int st = pclose(p);
    return st == 0 ? json_tokener_parse(buf) : NULL;
}

static void test_agrees_with_mdevctl(void **state) {
    (void)state;
    mixed();
    json_object *theirs = mdevctl_types();
    if (!theirs) {
        fprintf(
            stderr, "SKIPPED: mdevctl or a private mount namespace is not available here "
                    "(needs root, unshare and Debian's mdevctl)\n"
        );
        skip();
    }
    fh_run(&FH, &R, NULL, "types", "--dumpjson", NULL);
    assert_int_equal(R.status, 0);
    char why[1024];
    const char *text = json_object_to_json_string(theirs);
    int compared = mdevjson_compare(R.out, text, why, sizeof(why));
    if (compared < 0) {
        fail_msg("%s", why);
    }
    assert_true(compared > 100);
    json_object_put(theirs);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_p40_pair),
        T(test_a40_sriov),
        T(test_mixed),
        T(test_vendor_interface),
        T(test_sriov_capacity_per_gpu),
        T(test_usage),
        T(test_agrees_with_mdevctl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
