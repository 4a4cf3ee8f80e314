/*
 * Records of deleted VMs: Proxmox gives a deleted VM's VMID to the next new VM, and our
 * settings' vms.<vmid> record (attach, tune) must never be applied to, or undone on, that new
 * VM. Run on the real binary on a fake host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "testutil.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct fakehost FH_HOST;
static struct fakehost *const FH = &FH_HOST;
static struct fh_result R;
#define run(...) fh_run(FH, &R, NULL, __VA_ARGS__, NULL)
#define SETTINGS "etc/pve/vgpu-hook.json"
#define U180 "00000000-0000-0000-0000-000000000180"
#define OLD_VM                                                                                     \
    "meta: creation-qemu=8.1.2,ctime=1700000000\nmemory: 2048\n"                                   \
    "smbios1: uuid=aaaaaaaa-1111-2222-3333-444444444444\n"
/* the new VM 180: its own hostpci vGPU and hookscript */
#define NEW_VM                                                                                     \
    FH_HOOKSCRIPT "hostpci0: 0000:06:00.0,mdev=nvidia-46\n"                                        \
                  "meta: creation-qemu=8.1.2,ctime=1800000000\nmemory: 4096\n"                     \
                  "smbios1: uuid=bbbbbbbb-1111-2222-3333-444444444444\n"

static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create_p40_pair(FH), 0);
    assert_int_equal(fh_install_hookscript(FH), 0);
    fh_write(FH, "var/lock/qemu-server/lock-180.conf", "");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(FH);
    return 0;
}

/* The old VM 180 attached and tuned, then deleted (its config goes away). */
static void old_vm_attached_and_deleted(void) {
    fh_vmconf(FH, 180, OLD_VM);
    assert_int_equal(run("attach", "180", "--type", "P40-1Q"), 0);
    assert_int_equal(run("tune", "180", "--param", "frame_rate_limiter=0"), 0);
    char *s = fh_read(FH, SETTINGS);
    assert_contains(s, "\"identity\": {\n        \"ctime\": 1700000000,\n");
    assert_contains(s, "\"uuid\": \"aaaaaaaa-1111-2222-3333-444444444444\"");
    free(s);
    char conf[128];
    snprintf(conf, sizeof(conf), "%s/etc/pve/qemu-server/180.conf", FH->root);
    assert_int_equal(unlink(conf), 0);
}

/* The scenario end to end: the new VM 180 is checked, started and detached as itself. */
static void test_new_vm_with_old_vmid(void **state) {
    (void)state;
    old_vm_attached_and_deleted();
    fh_vmconf(FH, 180, NEW_VM);
    assert_int_equal(run("check", "180"), 0);
    assert_not_contains(R.err, "both hostpci0");
    assert_contains(
        R.err, "the record of VM 180 in the settings was written for an earlier VM 180 "
               "(created at ctime 1700000000"
    );
    assert_contains(R.err, "ignored (neither its vGPU nor its tuning applies)");
    assert_int_equal(run("check", "180", "--json"), 0);
    assert_contains(R.out, "\"code\": \"stale-record\"");
    assert_int_equal(run("180", "pre-start"), 0);
    char *params = fh_read(FH, "sys/bus/mdev/devices/" U180 "/nvidia/vgpu_params");
    assert_true(params == NULL || strstr(params, "frame_rate_limiter") == NULL);
    free(params);
    assert_int_equal(run("status", "--json"), 0);
    json_object *o = json_tokener_parse(R.out), *arr, *it, *v;
    assert_true(json_object_object_get_ex(o, "stale_records", &arr));
    assert_int_equal(json_object_array_length(arr), 1);
    it = json_object_array_get_idx(arr, 0);
    assert_true(json_object_object_get_ex(it, "vmid", &v));
    assert_int_equal(json_object_get_int(v), 180);
    assert_true(json_object_object_get_ex(it, "code", &v));
    assert_string_equal(json_object_get_string(v), "vm-replaced");
    json_object_put(o);
    assert_int_equal(run("status"), 0);
    assert_contains(R.out, "Stale VM records in the settings (never applied):");
    assert_int_equal(run("doctor"), 1);
    assert_contains(R.out, "the record is stale, never applied to or undone on it\n");
    assert_contains(R.out, "fix: pve-vgpu-hook cleanup");
    /* detach removes the record only: the new VM keeps its own hookscript, byte for byte */
    assert_int_equal(run("detach", "180"), 0);
    char *conf = fh_read_vmconf(FH, 180);
    assert_string_equal(conf, NEW_VM);
    free(conf);
    assert_contains(R.out, "removing only the record; the VM config was not touched");
    char *s = fh_read(FH, SETTINGS);
    assert_true(s == NULL || strstr(s, "\"180\"") == NULL);
    free(s);
}

/* cleanup --dry-run names stale records (a VM gone, a VM replaced); cleanup removes them and
 * keeps the others. */
static void test_cleanup_removes_stale_records(void **state) {
    (void)state;
    old_vm_attached_and_deleted();
    fh_vmconf(FH, 181, "memory: 1024\n" FH_HOOKSCRIPT);
    fh_write(FH, "var/lock/qemu-server/lock-181.conf", "");
    assert_int_equal(run("attach", "181", "--type", "P40-1Q"), 0);
    assert_int_equal(run("cleanup", "--dry-run"), 0);
    assert_contains(R.out, "would remove the stale record vms.180 (vm-missing)");
    assert_not_contains(R.out, "vms.181");
    char *s = fh_read(FH, SETTINGS);
    assert_contains(s, "\"180\"");
    free(s);
    assert_int_equal(run("cleanup", "--json"), 0);
    assert_contains(R.out, "\"record\": \"vms.180\"");
    assert_contains(R.out, "\"result\": \"removed\"");
    s = fh_read(FH, SETTINGS);
    assert_not_contains(s, "\"180\"");
    assert_contains(s, "\"181\"");
    free(s);
    assert_int_equal(run("cleanup"), 0);
    assert_not_contains(R.out, "stale record");
}

/* A record from before identities (none stored) still applies: existing installs keep working,
 * and the next tune adds the identity. */
static void test_record_without_identity_matches(void **state) {
    (void)state;
    fh_vmconf(FH, 180, OLD_VM FH_HOOKSCRIPT);
    fh_write(FH, SETTINGS, "{\"vms\": {\"180\": {\"params\": {\"frame_rate_limiter\": \"0\"}}}}\n");
    fh_vmconf(FH, 180, OLD_VM FH_HOOKSCRIPT "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    assert_int_equal(run("check", "180"), 0);
    assert_not_contains(R.err, "stale");
    assert_int_equal(run("status", "--json"), 0);
    assert_contains(R.out, "\"stale_records\": [\n  ]");
    assert_int_equal(run("tune", "180", "--param", "disable_vnc=1"), 0);
    char *s = fh_read(FH, SETTINGS);
    assert_contains(s, "\"ctime\": 1700000000");
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_vm_with_old_vmid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleanup_removes_stale_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_without_identity_matches, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
