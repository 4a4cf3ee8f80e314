/*
 * Managed mode on classic mdev GPUs (P40s) through the VM's resource mapping, qemu-server
 * 8.0.4 and later: attach writes hostpciN and the mapping (byte for byte as Proxmox writes
 * them), pre-start creates the vGPU with Proxmox's UUID where placement puts it and lists that
 * GPU first so that Proxmox adopts it, check says so, post-stop and detach undo it, and an
 * args-form VM is converted by attaching again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct fakehost FH_HOST;
static struct fakehost *const FH = &FH_HOST;
static struct fh_result R;

#define run(env, ...) fh_run(FH, &R, env, __VA_ARGS__, NULL)

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

static const char CONF[] = "# my VM\nboot: order=scsi0\nmemory: 8192\nname: render1\n"
                           "scsi0: local-lvm:vm-100-disk-0,size=32G\n\n[snap1]\nmemory: 4096\n";

#define ADMIN_SECTION                                                                              \
    "a40-passthrough\n"                                                                            \
    "\tmap node=pve1,path=0000:41:00.0,id=10de:2235,iommugroup=12\n\n"
#define U102 "00000000-0000-0000-0000-000000000102"
#define U102_1 "00000001-0000-0000-0000-000000000102"
#define MAPPED "hostpci0: mapping=vgpu-hook-100,mdev=nvidia-47\n"
/* CONF once attached: the hookscript and hostpci0, in Proxmox's key order, the rest as it was */
#define CONF_MAPPED                                                                                \
    "# my VM\nboot: order=scsi0\nhookscript: local:snippets/pve-vgpu-hook\n" MAPPED                \
    "memory: 8192\nname: render1\nscsi0: local-lvm:vm-100-disk-0,size=32G\n\n[snap1]\n"            \
    "memory: 4096\n"
#define DESC "\tdescription vGPU of VM 100, kept by pve-vgpu-hook (detach removes it)\n"
#define LINE_A                                                                                     \
    "\tmap node=pve1,path=0000:06:00.0,id=10de:1b38,subsystem-id=10de:11d9,iommugroup=30\n"
#define LINE_B                                                                                     \
    "\tmap node=pve1,path=0000:07:00.0,id=10de:1b38,subsystem-id=10de:11d9,iommugroup=31\n"

/* What Proxmox compares with the mapping before a start: subsystem ids and the IOMMU group. */
static void real_ids(const char *bdf, unsigned group) {
    char rel[256], target[128], path[PATH_MAX + 256];
    snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/subsystem_vendor", bdf);
    assert_int_equal(fh_write(FH, rel, "0x10de\n"), 0);
    snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/subsystem_device", bdf);
    assert_int_equal(fh_write(FH, rel, "0x11d9\n"), 0);
    snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%u/type", group);
    assert_int_equal(fh_write(FH, rel, "DMA\n"), 0);
    snprintf(path, sizeof(path), "%s/sys/devices/pci0000:00/%s/iommu_group", FH->root, bdf);
    snprintf(target, sizeof(target), "../../../kernel/iommu_groups/%u", group);
    assert_int_equal(symlink(target, path), 0);
}

static void assert_file(const char *rel, const char *want) {
    char *got = fh_read(FH, rel);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* attach, check, pre-start (the vGPU created with Proxmox's UUID on the GPU placement chose,
 * that GPU's line first), post-stop, detach: every file Proxmox owns byte for byte. */
static void test_attach_start_detach(void **state) {
    (void)state;
    real_ids(GPU_A, 30);
    real_ids(GPU_B, 31);
    fh_write(FH, "etc/pve/mapping/pci.cfg", ADMIN_SECTION);
    fh_vmconf(FH, 100, CONF);
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\n  \"remove_wait_s\": 0\n}\n"); /* as we write it */
    char *cfg0 = fh_read(FH, "etc/pve/vgpu-hook.json");
    assert_int_equal(run(NULL, "attach", "100", "--type", "P40-2Q"), 0);
    assert_contains(R.out, "mapping vgpu-hook-100 lists 2 mdev parents of node pve1");
    assert_contains(R.out, "attached P40-2Q (nvidia-47) through resource mapping vgpu-hook-100");
    assert_file("etc/pve/nodes/pve1/qemu-server/100.conf", CONF_MAPPED);
    assert_file(
        "etc/pve/mapping/pci.cfg", ADMIN_SECTION "vgpu-hook-100\n" LINE_A LINE_B DESC "\tmdev 1\n\n"
    );
    /* VM 102 runs two 1Q vGPUs on GPU A: pack would try A first, but A now takes only 1024
     * MiB vGPUs (equal-size), so 100 goes to B, and B's line goes first for Proxmox to adopt */
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-46", U102), 0);
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-46", U102_1), 0);
    fh_run_vm(FH, 102, 8102);
    assert_int_equal(run(NULL, "check", "100"), 0);
    assert_contains(R.out, "index 0: create " U100 " (nvidia-47, GRID P40-2Q) on 0000:07:00.0");
    assert_contains(
        R.out, "mapping vgpu-hook-100 on node pve1: 0000:07:00.0 0000:06:00.0 (tried in this "
               "order; pre-start writes it)"
    );
    assert_not_contains(R.out, "-uuid " U100);
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_true(fh_exists(FH, DEV(GPU_B, U100)));
    assert_file(
        "etc/pve/mapping/pci.cfg", ADMIN_SECTION "vgpu-hook-100\n" LINE_B LINE_A DESC "\tmdev 1\n\n"
    );
    char *conf = fh_read_vmconf(FH, 100);
    assert_contains(conf, MAPPED); /* no args: Proxmox passes -uuid */
    assert_not_contains(conf, "args:");
    free(conf);
    /* the next start: where it is, nothing to write */
    assert_int_equal(run(NULL, "check", "100"), 0);
    assert_contains(R.out, "index 0: reuse " U100);
    assert_contains(R.out, "(tried in this order; as it is now)");
    assert_int_equal(run(NULL, "100", "post-stop"), 0);
    assert_false(fh_exists(FH, DEV(GPU_B, U100)));
    assert_int_equal(run(NULL, "detach", "100"), 0);
    assert_contains(R.out, "hostpci0: (removed)");
    assert_contains(R.out, "mapping vgpu-hook-100 (removed)");
    assert_file("etc/pve/nodes/pve1/qemu-server/100.conf", CONF);
    assert_file("etc/pve/mapping/pci.cfg", ADMIN_SECTION);
    assert_file("etc/pve/vgpu-hook.json", cfg0);
    free(cfg0);
}

/* An SR-IOV A40 (mdev types on its VFs): a line per VF; pre-start creates the vGPU on the first
 * free VF and lists that VF first, the GPU's other VFs after it. */
static void test_sriov_vfs(void **state) {
    (void)state;
    assert_int_equal(fh_add_a40_sriov(FH, "0000:41:00.0", 3), 0);
    fh_vmconf(FH, 100, "memory: 4096\n");
    assert_int_equal(run(NULL, "attach", "100", "--type", "A40-2Q"), 0);
    assert_contains(R.out, "mapping vgpu-hook-100 lists 3 mdev parents of node pve1");
    char *map = fh_read(FH, "etc/pve/mapping/pci.cfg");
    assert_contains(
        map, "\tmap node=pve1,path=0000:41:00.4,id=10de:1b38\n"
             "\tmap node=pve1,path=0000:41:00.5,id=10de:1b38\n"
             "\tmap node=pve1,path=0000:41:00.6,id=10de:1b38\n" DESC "\tmdev 1\n"
    );
    free(map);
    /* VM 102 holds the first VF */
    assert_int_equal(fh_add_mdev(FH, "0000:41:00.4", "nvidia-558", U102), 0);
    fh_run_vm(FH, 102, 8102);
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_true(fh_exists(FH, DEV("0000:41:00.5", U100)));
    map = fh_read(FH, "etc/pve/mapping/pci.cfg");
    const char *vf5 = strstr(map, "path=0000:41:00.5"), *vf4 = strstr(map, "path=0000:41:00.4"),
               *vf6 = strstr(map, "path=0000:41:00.6");
    assert_true(vf5 && vf4 && vf6 && vf5 < vf4 && vf4 < vf6);
    free(map);
}

/* The first free hostpci slot, and its UUID; attaching again keeps the line's other options. */
static void test_first_free_slot(void **state) {
    (void)state;
    fh_vmconf(FH, 100, "hostpci0: 0000:05:00.0\nmemory: 4096\n");
    assert_int_equal(run(NULL, "attach", "100", "--type", "P40-2Q", "--gpu", GPU_A), 0);
    assert_contains(R.out, "hostpci1: mapping=vgpu-hook-100,mdev=nvidia-47");
    assert_file(
        "etc/pve/mapping/pci.cfg",
        "vgpu-hook-100\n\tmap node=pve1,path=0000:06:00.0,id=10de:1b38\n" DESC "\tmdev 1\n\n"
    );
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_true(fh_exists(FH, DEV(GPU_A, U100_1)));
    assert_int_equal(run(NULL, "100", "post-stop"), 0);
    fh_vmconf(
        FH, 100,
        "hookscript: local:snippets/pve-vgpu-hook\nhostpci0: 0000:05:00.0\nhostpci1: "
        "mapping=vgpu-hook-100,mdev=nvidia-47,pcie=1\nmemory: 4096\n"
    );
    assert_int_equal(run(NULL, "attach", "100", "--type", "P40-1Q"), 0);
    char *conf = fh_read_vmconf(FH, 100);
    assert_contains(conf, "hostpci1: mapping=vgpu-hook-100,mdev=nvidia-46,pcie=1\n");
    free(conf);
}

/* An args-form VM (qemu-server before 8.0.4 keeps that form) converted by attaching again once
 * qemu-server can. */
static void test_conversion(void **state) {
    (void)state;
    fh_vmconf(FH, 100, CONF);
    assert_int_equal(fh_qemu_server_version(FH, "8.0.3"), 0);
    assert_int_equal(run(NULL, "attach", "100", "--type", "P40-2Q"), 0);
    char *conf = fh_read_vmconf(FH, 100);
    assert_contains(
        conf, "args: -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/" U100 " -uuid " U100 "\n"
    );
    assert_not_contains(conf, "hostpci");
    free(conf);
    assert_false(fh_exists(FH, "etc/pve/mapping/pci.cfg"));
    assert_int_equal(fh_qemu_server_version(FH, "8.0.4"), 0);
    assert_int_equal(run(NULL, "attach", "100"), 0);
    assert_contains(R.out, "VM 100: converted from args to a resource mapping");
    assert_file("etc/pve/nodes/pve1/qemu-server/100.conf", CONF_MAPPED);
    assert_file(
        "etc/pve/mapping/pci.cfg",
        "vgpu-hook-100\n\tmap node=pve1,path=0000:06:00.0,id=10de:1b38\n"
        "\tmap node=pve1,path=0000:07:00.0,id=10de:1b38\n" DESC "\tmdev 1\n\n"
    );
    assert_int_equal(run(NULL, "detach", "100"), 0);
    assert_file("etc/pve/nodes/pve1/qemu-server/100.conf", CONF);
    assert_false(fh_exists(FH, "etc/pve/mapping/pci.cfg"));
    /* without --type, a VM that is not attached is refused */
    assert_int_equal(run(NULL, "attach", "100"), 1);
    assert_contains(R.err, "VM 100 is not attached, so attach needs --type");
}

/* pci.cfg created by the first attach of several: it goes once the last of our mappings
 * leaves it, whichever VM is detached last (the host as it was before the first attach). */
static void test_file_goes_with_the_last(void **state) {
    (void)state;
    for (unsigned long v = 100; v <= 102; v++) {
        fh_vmconf(FH, v, "cores: 1\n");
        char id[8];
        snprintf(id, sizeof(id), "%lu", v);
        assert_int_equal(run(NULL, "attach", id, "--type", "P40-1Q"), 0);
    }
    assert_int_equal(fh_exists(FH, "etc/pve/mapping/pci.cfg"), 1);
    assert_int_equal(run(NULL, "detach", "100"), 0);
    assert_int_equal(run(NULL, "detach", "102"), 0);
    assert_int_equal(fh_exists(FH, "etc/pve/mapping/pci.cfg"), 1);
    assert_int_equal(run(NULL, "detach", "101"), 0);
    assert_int_equal(fh_exists(FH, "etc/pve/mapping/pci.cfg"), 0);
}

/* A running args-form VM converted as qm set would: the args removal and hostpci0 in
 * [PENDING] (it keeps its vGPU until it stops), the mapping written at once (Proxmox reads it
 * only at a start). */
static void test_conversion_running(void **state) {
    (void)state;
    fh_vmconf(FH, 100, CONF);
    assert_int_equal(fh_qemu_server_version(FH, "8.0.3"), 0);
    assert_int_equal(run(NULL, "attach", "100", "--type", "P40-2Q"), 0);
    assert_int_equal(fh_qemu_server_version(FH, "8.0.4"), 0);
    fh_run_vm(FH, 100, 8100);
    assert_int_equal(run(NULL, "attach", "100"), 0);
    assert_contains(
        R.out, "VM 100: converted from args to a resource mapping (qemu-server 8.0.4 and later); "
               "it runs with the args form until it stops, the mapping takes effect at its "
               "next start"
    );
    assert_contains(R.out, "pending until VM 100 is stopped and started");
    assert_file(
        "etc/pve/nodes/pve1/qemu-server/100.conf",
        "# my VM\nargs: -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/" U100 " -uuid " U100
        "\nboot: order=scsi0\nhookscript: local:snippets/pve-vgpu-hook\nmemory: 8192\nname: "
        "render1\nscsi0: local-lvm:vm-100-disk-0,size=32G\n\n[PENDING]\ndelete: args\n" MAPPED
        "\n[snap1]\nmemory: 4096\n"
    );
    assert_file(
        "etc/pve/mapping/pci.cfg",
        "vgpu-hook-100\n\tmap node=pve1,path=0000:06:00.0,id=10de:1b38\n"
        "\tmap node=pve1,path=0000:07:00.0,id=10de:1b38\n" DESC "\tmdev 1\n\n"
    );
}

/* attach --live-migration flags the VM's mapping where Proxmox's SectionConfig puts the key
 * (after the map lines, before mdev), attaching again keeps it, --no-live-migration clears it;
 * refused before qemu-server 8.3.9 and for the args form, changing nothing. */
static void test_live_migration_flag(void **state) {
    (void)state;
    real_ids(GPU_A, 30);
    real_ids(GPU_B, 31);
    fh_write(FH, "etc/pve/mapping/pci.cfg", ADMIN_SECTION);
    fh_vmconf(FH, 100, CONF);
    assert_int_equal(fh_qemu_server_version(FH, "8.3.8"), 0);
    fh_write(FH, "var/lock/qemu-server/lock-100.conf", ""); /* Proxmox's VM lock, left as is */
    char *before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "attach", "100", "--type", "P40-2Q", "--live-migration"), 1);
    assert_contains(
        R.err, "cannot mark VM 100's vGPU live-migratable: qemu-server 8.3.8 on node pve1 cannot"
    );
    assert_contains(R.err, "that needs qemu-server 8.3.9 or later");
    assert_contains(R.err, "nothing was changed");
    assert_host_unchanged(FH, before);
    assert_int_equal(fh_qemu_server_version(FH, "8.3.9"), 0);
    assert_int_equal(
        run(NULL, "attach", "100", "--type", "P40-2Q", "--live-migration", "--dry-run", "--json"), 0
    );
    assert_contains(R.out, "mapping vgpu-hook-100 marked live-migration-capable");
    assert_int_equal(run(NULL, "attach", "100", "--type", "P40-2Q", "--live-migration"), 0);
    assert_contains(R.out, "mapping vgpu-hook-100 marked live-migration-capable");
    const char *flagged = ADMIN_SECTION "vgpu-hook-100\n" LINE_A LINE_B DESC
                                        "\tlive-migration-capable 1\n\tmdev 1\n\n";
    assert_file("etc/pve/mapping/pci.cfg", flagged);
    assert_file("etc/pve/nodes/pve1/qemu-server/100.conf", CONF_MAPPED);
    /* kept by a later attach (another type), and by each pre-start's rewrite */
    assert_int_equal(run(NULL, "attach", "100", "--type", "P40-1Q"), 0);
    assert_file("etc/pve/mapping/pci.cfg", flagged);
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_file("etc/pve/mapping/pci.cfg", flagged);
    assert_int_equal(run(NULL, "100", "post-stop"), 0);
    assert_int_equal(run(NULL, "attach", "100", "--no-live-migration"), 0);
    assert_contains(R.out, "mapping vgpu-hook-100 no longer marked live-migration-capable");
    assert_file(
        "etc/pve/mapping/pci.cfg", ADMIN_SECTION "vgpu-hook-100\n" LINE_A LINE_B DESC "\tmdev 1\n\n"
    );
    assert_int_equal(run(NULL, "detach", "100"), 0);
    assert_file("etc/pve/mapping/pci.cfg", ADMIN_SECTION);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_live_migration_flag, setup, teardown),
    cmocka_unit_test_setup_teardown(test_attach_start_detach, setup, teardown),
    cmocka_unit_test_setup_teardown(test_sriov_vfs, setup, teardown),
    cmocka_unit_test_setup_teardown(test_first_free_slot, setup, teardown),
    cmocka_unit_test_setup_teardown(test_conversion, setup, teardown),
    cmocka_unit_test_setup_teardown(test_file_goes_with_the_last, setup, teardown),
    cmocka_unit_test_setup_teardown(test_conversion_running, setup, teardown),
};

int main(void) {
    return cmocka_run_group_tests(tests, NULL, NULL);
}
