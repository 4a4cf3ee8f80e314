/*
 * Mistakes caught before they cost a start: the pure checks (tables), and the real binary's
 * `check`, `pre-start`, `status` and `doctor` on fake hosts: exit status, messages with the fix,
 * `check --json` codes, and sysfs unchanged when pre-start refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "confcheck.h"
#include "fakehost.h"
#include "pveconf.h"
#include "qemu_args.h"
#include "testutil.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct fakehost FH_HOST;
static struct fakehost *const FH = &FH_HOST;
static struct fh_result R;

#define HOOKSCRIPT FH_HOOKSCRIPT
#define SNIPPET FH_SNIPPET

/* A P40 pair where `setup` was run from the installed binary: the snippet links to it. */
static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create_p40_pair(FH), 0);
    assert_int_equal(fh_install_hookscript(FH), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(FH);
    return 0;
}

/* ---------- pure ---------- */

static void test_q35_after_7_2(void **state) {
    (void)state;
    static const struct {
        const char *bios, *machine;
        bool newer, warn;
    } t[] = {
        {NULL, NULL, false, false},
        {NULL, "pc-i440fx-8.1", false, false},
        {NULL, "q35", true, true},
        {NULL, "pc-q35-8.0", true, true},
        {NULL, "pc-q35-7.2", false, false},
        {NULL, "pc-q35-7.1+pve0", false, false},
        {NULL, "pc-q35-9.2+pve1", true, true},
        {NULL, "type=pc-q35-8.1,viommu=intel", true, true},
        {"seabios", "pc-q35-8.0", true, true},
        {"ovmf", "pc-q35-8.0", true, false},
        {"ovmf", "q35", true, false},
        {NULL, "pc-q35-10.0", true, true},
        {NULL, "garbage=,", false, false},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (confcheck_q35_after_7_2(t[i].machine) != t[i].newer ||
            confcheck_seabios_q35(t[i].bios, t[i].machine) != t[i].warn) {
            fail_msg("row %zu: bios %s machine %s", i, t[i].bios, t[i].machine);
        }
    }
}

static void test_x_vga(void **state) {
    (void)state;
    static const struct {
        const char *value;
        bool warn;
    } t[] = {
        {"0000:06:00.0,mdev=nvidia-46,x-vga=1", true},
        {"0000:06:00.0,x-vga=on,mdev=nvidia-46", true},
        {"mapping=gpu,mdev=nvidia-46,x-vga=true", true},
        {"0000:06:00.0,mdev=nvidia-46,x-vga=0", false},
        {"0000:06:00.0,mdev=nvidia-46", false},
        {"0000:06:00.0,x-vga=1", false}, /* a whole GPU: its console is the point */
        {NULL, false},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (confcheck_x_vga_on_vgpu(t[i].value) != t[i].warn) {
            fail_msg("row %zu: %s", i, t[i].value);
        }
    }
}

static void test_propstr_with(void **state) {
    (void)state;
    static const struct {
        const char *value, *key, *newval, *want;
    } t[] = {
        {"0000:06:00.0,mdev=P40-1Q", "mdev", "nvidia-46", "0000:06:00.0,mdev=nvidia-46"},
        {"mdev=P40-1Q,host=06:00.0,pcie=1", "mdev", "nvidia-46",
         "mdev=nvidia-46,host=06:00.0,pcie=1"},
        {"06:00.0,mdev=nvidia-46,x-vga=1", "x-vga", NULL, "06:00.0,mdev=nvidia-46"},
        {"x-vga=1,06:00.0,mdev=nvidia-46", "x-vga", NULL, "06:00.0,mdev=nvidia-46"},
        {"06:00.0,x-vga=1,mdev=nvidia-46", "x-vga", NULL, "06:00.0,mdev=nvidia-46"},
        {"uuid=abc,manufacturer=X", "uuid", "new", "uuid=new,manufacturer=X"},
        {"manufacturer=X", "uuid", "new", "manufacturer=X,uuid=new"},
        {"xmdev=1,mdev=a", "mdev", "b", "xmdev=1,mdev=b"},
        {"a=1", "b", NULL, "a=1"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char *got = propstr_with(t[i].value, t[i].key, t[i].newval);
        assert_non_null(got);
        if (strcmp(got, t[i].want)) {
            fail_msg("row %zu: got '%s', want '%s'", i, got, t[i].want);
        }
        free(got);
    }
}

static void test_args_uuid(void **state) {
    (void)state;
    static const struct {
        const char *args, *want;
        int rc;
    } t[] = {
        {"-uuid 00000000-0000-0000-0000-000000000101", "00000000-0000-0000-0000-000000000101", 0},
        {"-uuid a -cpu host --uuid 'b'", "b", 0},
        {"-cpu host", NULL, -ENOENT},
        {NULL, NULL, -ENOENT},
        {"-uuid 'open", NULL, -EINVAL},
        {"-uuid", NULL, -ENOENT},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char *got = NULL;
        int rc = args_uuid(t[i].args, &got);
        if (rc != t[i].rc || (t[i].want && (!got || strcmp(got, t[i].want)))) {
            fail_msg("row %zu: rc %d got '%s'", i, rc, got ? got : "(null)");
        }
        free(got);
    }
}

/* ---------- the binary ---------- */

static void vm(unsigned long vmid, const char *lines) {
    char conf[4096];
    snprintf(
        conf, sizeof(conf),
        "cores: 4\n%smemory: 8192\nname: vm%lu\nsmbios1: uuid=%08lu-1111-4222-8333-444455556666\n",
        lines, vmid, vmid
    );
    assert_int_equal(fh_vmconf(FH, vmid, conf), 0);
}

/* check --json's warning codes, space-separated ("" when none); e: the error's code. */
static void check_codes(const char *vmid, char *codes, size_t size, char *ecode, size_t esize) {
    fh_run(FH, &R, NULL, "check", vmid, "--json", NULL);
    json_object *o = json_tokener_parse(R.out), *w, *err, *c;
    if (!o) {
        fail_msg("no JSON: %s\n%s", R.out, R.err);
    }
    codes[0] = ecode[0] = '\0';
    assert_true(json_object_object_get_ex(o, "warnings", &w));
    for (size_t i = 0; i < json_object_array_length(w); i++) {
        json_object *m;
        assert_true(json_object_object_get_ex(json_object_array_get_idx(w, i), "code", &c));
        assert_true(json_object_object_get_ex(json_object_array_get_idx(w, i), "message", &m));
        size_t l = strlen(codes);
        snprintf(codes + l, size - l, "%s%s", l ? " " : "", json_object_get_string(c));
    }
    if (json_object_object_get_ex(o, "error", &err) && json_object_object_get_ex(err, "code", &c)) {
        snprintf(ecode, esize, "%s", json_object_get_string(c));
    }
    json_object_put(o);
}

static void test_mdev_type_name_refused(void **state) {
    (void)state;
    vm(100, HOOKSCRIPT "hostpci0: 0000:06:00.0,mdev=P40-1Q\n");
    char *before = fh_snapshot(FH);
    assert_int_equal(fh_run(FH, &R, NULL, "check", "100", NULL), 1);
    assert_contains(R.out, "would NOT start");
    assert_contains(R.out, "mdev=P40-1Q is the name of type nvidia-46 (GRID P40-1Q), not its id");
    assert_contains(R.out, "qm set 100 --hostpci0 0000:06:00.0,mdev=nvidia-46");
    char codes[512], ecode[64];
    check_codes("100", codes, sizeof(codes), ecode, sizeof(ecode));
    assert_string_equal(ecode, "mdev-type-name");
    assert_int_equal(fh_run(FH, &R, NULL, "100", "pre-start", NULL), 1);
    assert_contains(R.err, "mdev_supported_types/P40-1Q");
    assert_contains(R.err, "qm set 100 --hostpci0 0000:06:00.0,mdev=nvidia-46");
    assert_host_unchanged(FH, before); /* nothing created */
    /* the id itself, and a mapping's line keeps its other keys */
    vm(100, HOOKSCRIPT "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    assert_int_equal(fh_run(FH, &R, NULL, "check", "100", NULL), 0);
    vm(100, HOOKSCRIPT "hostpci0: host=06:00.0,mdev=p40-2q,pcie=1\n");
    assert_int_equal(fh_run(FH, &R, NULL, "check", "100", NULL), 1);
    assert_contains(R.out, "qm set 100 --hostpci0 host=06:00.0,mdev=nvidia-47,pcie=1");
}

static void test_hookscript(void **state) {
    (void)state;
    char codes[512], ecode[64];
    vm(100, HOOKSCRIPT "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    check_codes("100", codes, sizeof(codes), ecode, sizeof(ecode));
    assert_string_equal(codes, ""); /* the link setup makes */
    assert_int_equal(fh_run(FH, &R, NULL, "status", NULL), 0);
    assert_not_contains(R.out, "will not run pve-vgpu-hook");

    vm(100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    assert_int_equal(fh_run(FH, &R, NULL, "check", "100", NULL), 0);
    assert_contains(R.err, "VM 100 has a vGPU but no hookscript");
    assert_contains(R.err, "qm set 100 --hookscript local:snippets/pve-vgpu-hook");
    check_codes("100", codes, sizeof(codes), ecode, sizeof(ecode));
    assert_string_equal(codes, "no-hookscript");
    assert_int_equal(fh_run(FH, &R, NULL, "status", "--json", NULL), 0);
    assert_contains(R.out, "\"hookscript_problems\"");
    assert_contains(R.out, "\"vmid\": 100");
    assert_int_equal(fh_run(FH, &R, NULL, "status", NULL), 0);
    assert_contains(R.out, "vGPU VMs whose start will not run pve-vgpu-hook:\n  VM 100 has");
    fh_run(FH, &R, NULL, "doctor", NULL);
    assert_contains(R.out, "1 vGPU VM will not run pve-vgpu-hook at start: VM 100 (no-hookscript)");

    vm(100, "hookscript: local:snippets/gone.sh\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    check_codes("100", codes, sizeof(codes), ecode, sizeof(ecode));
    assert_string_equal(codes, "hookscript-missing");
    vm(100, "hookscript: nosuch:snippets/x\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    check_codes("100", codes, sizeof(codes), ecode, sizeof(ecode));
    assert_string_equal(codes, "hookscript-missing");

    fh_write(FH, "var/lib/vz/snippets/other.sh", "#!/bin/sh\nexit 0\n");
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/var/lib/vz/snippets/other.sh", FH->root);
    chmod(p, 0755);
    vm(100, "hookscript: local:snippets/other.sh\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    check_codes("100", codes, sizeof(codes), ecode, sizeof(ecode));
    assert_string_equal(codes, "hookscript-not-ours");
    /* a copy of the binary is ours */
    fh_write(FH, "var/lib/vz/snippets/other.sh", "#!/bin/sh\n# the binary\n");
    check_codes("100", codes, sizeof(codes), ecode, sizeof(ecode));
    assert_string_equal(codes, "");
    /* a VM without a vGPU is none of our business */
    vm(100, "");
    check_codes("100", codes, sizeof(codes), ecode, sizeof(ecode));
    assert_string_equal(codes, "");
}

static void test_x_vga_and_seabios_warn_only(void **state) {
    (void)state;
    char codes[512], ecode[64];
    vm(100, HOOKSCRIPT "hostpci0: 0000:06:00.0,mdev=nvidia-46,x-vga=1\nmachine: pc-q35-8.0\n");
    assert_int_equal(fh_run(FH, &R, NULL, "check", "100", NULL), 0);
    assert_contains(R.err, "hostpci0 has x-vga=1 on a vGPU");
    assert_contains(R.err, "qm set 100 --hostpci0 0000:06:00.0,mdev=nvidia-46,");
    assert_contains(R.err, "machine pc-q35-8.0, a q35 newer than 7.2");
    assert_contains(R.err, "qm set 100 --bios ovmf");
    assert_contains(R.err, "qm set 100 --machine pc-q35-7.2");
    check_codes("100", codes, sizeof(codes), ecode, sizeof(ecode));
    assert_string_equal(codes, "x-vga-console seabios-q35-licensing");
    /* pre-start: one line each on stderr, and the start goes on */
    assert_int_equal(fh_run(FH, &R, NULL, "100", "pre-start", NULL), 0);
    assert_true(fh_exists(FH, DEV(GPU_A, U100)));
    assert_contains(R.err, "warning: hostpci0 has x-vga=1");
    assert_contains(R.err, "warning: VM 100 boots SeaBIOS");
    assert_int_equal(fh_run(FH, &R, NULL, "100", "post-stop", NULL), 0);

    vm(100, HOOKSCRIPT "bios: ovmf\nhostpci0: 0000:06:00.0,mdev=nvidia-46\nmachine: q35\n");
    check_codes("100", codes, sizeof(codes), ecode, sizeof(ecode));
    assert_string_equal(codes, "");
    vm(100, HOOKSCRIPT "hostpci0: 0000:06:00.0,mdev=nvidia-46\nmachine: pc-q35-7.2\n");
    check_codes("100", codes, sizeof(codes), ecode, sizeof(ecode));
    assert_string_equal(codes, "");
}

static void test_clones(void **state) {
    (void)state;
    char codes[512], ecode[64];
    /* VM 101 on node pve2, a vGPU VM whose smbios1 uuid VM 100 copied */
    fh_write(
        FH, "etc/pve/nodes/pve2/qemu-server/101.conf",
        "hostpci0: 0000:07:00.0,mdev=nvidia-46\nsmbios1: "
        "uuid=00000100-1111-4222-8333-444455556666\n"
    );
    /* a directory no node can have: never read */
    fh_write(
        FH, "etc/pve/nodes/bad name/qemu-server/102.conf",
        "hostpci0: 0000:07:00.0,mdev=nvidia-46\nsmbios1: "
        "uuid=00000100-1111-4222-8333-444455556666\n"
    );
    vm(100, HOOKSCRIPT "args: -cpu host -uuid 00000000-0000-0000-0000-000000000101\n"
                       "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    assert_int_equal(fh_run(FH, &R, NULL, "check", "100", NULL), 0);
    assert_contains(
        R.err,
        "has the smbios1 uuid 00000100-1111-4222-8333-444455556666 of vGPU VM 101 (node pve2)"
    );
    assert_contains(R.err, "qm set 100 --smbios1 uuid=$(cat /proc/sys/kernel/random/uuid)");
    assert_contains(R.err, "the vGPU UUID of VM 101 (node pve2)");
    assert_contains(R.err, "qm set 100 --args '-cpu host'");
    assert_not_contains(R.err, "VM 102");
    check_codes("100", codes, sizeof(codes), ecode, sizeof(ecode));
    assert_string_equal(codes, "cloned-smbios-uuid cloned-args-uuid");
    /* a start does not scan the cluster's configs for a warning: check is where it is said */
    assert_int_equal(fh_run(FH, &R, NULL, "100", "pre-start", NULL), 0);
    assert_not_contains(R.err, "smbios1 uuid");
    /* its own UUID, and a VM without a vGPU sharing the uuid, are fine */
    fh_write(
        FH, "etc/pve/nodes/pve2/qemu-server/101.conf",
        "smbios1: uuid=00000100-1111-4222-8333-444455556666\n"
    );
    vm(100, HOOKSCRIPT "args: -uuid 00000000-0000-0000-0000-000000000100\n"
                       "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    check_codes("100", codes, sizeof(codes), ecode, sizeof(ecode));
    assert_string_equal(codes, "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q35_after_7_2),
        cmocka_unit_test(test_x_vga),
        cmocka_unit_test(test_propstr_with),
        cmocka_unit_test(test_args_uuid),
        cmocka_unit_test_setup_teardown(test_mdev_type_name_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hookscript, setup, teardown),
        cmocka_unit_test_setup_teardown(test_x_vga_and_seabios_warn_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clones, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
