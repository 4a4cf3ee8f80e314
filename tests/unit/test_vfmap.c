/*
 * Managed mode on NVIDIA's vendor interface, through a resource mapping: the mapping text kept
 * in /etc/pve/mapping/pci.cfg (written as Proxmox writes sections, every other byte kept), the
 * VF order per placement policy, and end to end on a simulated two-node cluster: attach, start
 * on node 1, fail over to node 2, detach restores every file byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "place.h"
#include "sectioncfg.h"
#include "testutil.h"
#include "vfmap.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------- the mapping text ---------- */

#define ADMIN_SECTION                                                                              \
    "a40-passthrough\n"                                                                            \
    "\tmap node=pve1,path=0000:41:00.0,id=10de:2235,iommugroup=12\n\n"

static const struct vfmap_vf VF4 = {"0000:81:00.4", {"10de", "26b9", "10de", "1851", 44}};
static const struct vfmap_vf VF5 = {"0000:81:00.5", {"10de", "26b9", "", "", -1}};

static void test_node_lines(void **state) {
    (void)state;
    struct vfmap_vf two[] = {VF4, VF5};
    char *l = vfmap_node_lines("pve1", two, 2);
    assert_string_equal(
        l, "\tmap node=pve1,path=0000:81:00.4,id=10de:26b9,subsystem-id=10de:1851,iommugroup=44\n"
           "\tmap node=pve1,path=0000:81:00.5,id=10de:26b9\n"
    );
    free(l);
}

/* Appending keeps every byte before the new section, and removing it gives them back. */
static void test_put_and_remove(void **state) {
    (void)state;
    static const struct {
        const char *before;
        unsigned sep;
    } cases[] = {
        {"", 0},                                                      /* no file */
        {ADMIN_SECTION, 0},                                           /* as Proxmox writes it */
        {"a40\n\tmap node=pve1,path=0000:41:00.0,id=10de:2235\n", 1}, /* by hand, no blank line */
        {"# mine\na40\n\tmap node=pve1,path=0000:41:00.0,id=10de:2235", 2}, /* no final newline */
    };
    const char *lines = "\tmap node=pve1,path=0000:81:00.4,id=10de:26b9\n";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL, *back = NULL;
        unsigned sep = 9;
        assert_int_equal(
            vfmap_put(cases[i].before, "vgpu-hook-100", 100, "pve1", lines, &out, &sep), 0
        );
        assert_int_equal(sep, cases[i].sep);
        assert_int_equal(strncmp(out, cases[i].before, strlen(cases[i].before)), 0);
        const char *ours = out + strlen(cases[i].before) + sep;
        assert_string_equal(
            ours, "vgpu-hook-100\n\tmap node=pve1,path=0000:81:00.4,id=10de:26b9\n\tdescription "
                  "vGPU of VM 100, kept by pve-vgpu-hook (detach removes it)\n\tmdev 1\n\n"
        );
        /* what Proxmox reads from it */
        struct sectioncfg cfg;
        assert_int_equal(sectioncfg_parse(out, false, &cfg), 0);
        const struct sectioncfg_section *s = sectioncfg_find(&cfg, "vgpu-hook-100");
        assert_non_null(s);
        assert_string_equal(sectioncfg_get(s, "mdev"), "1");
        sectioncfg_free(&cfg);
        assert_int_equal(vfmap_remove(out, "vgpu-hook-100", sep, &back), 0);
        assert_string_equal(back, cases[i].before);
        free(out);
        free(back);
    }
    char *out = NULL;
    assert_int_equal(vfmap_remove(ADMIN_SECTION, "vgpu-hook-100", 0, &out), -ENOENT);
}

/* Another node's start replaces only its own lines; the section keeps Proxmox's key order. */
static void test_put_node_lines(void **state) {
    (void)state;
    const char *sec = "vgpu-hook-100\n\tdescription d\n"
                      "\tmap node=pve1,path=0000:81:00.4,id=10de:26b9\n"
                      "\tmap node=pve1,path=0000:81:00.5,id=10de:26b9\n"
                      "\tmdev 1\n\n";
    char text[1024], *out = NULL;
    unsigned sep = 9;
    snprintf(text, sizeof(text), "%s%s" ADMIN_SECTION, ADMIN_SECTION, sec);
    /* a new node: after the last map line */
    assert_int_equal(
        vfmap_put(
            text, "vgpu-hook-100", 100, "pve2", "\tmap node=pve2,path=0000:41:00.4,id=1:2\n", &out,
            &sep
        ),
        0
    );
    assert_int_equal(sep, 0);
    char want[1024];
    snprintf(
        want, sizeof(want), "%s%s" ADMIN_SECTION, ADMIN_SECTION,
        "vgpu-hook-100\n\tdescription d\n"
        "\tmap node=pve1,path=0000:81:00.4,id=10de:26b9\n"
        "\tmap node=pve1,path=0000:81:00.5,id=10de:26b9\n"
        "\tmap node=pve2,path=0000:41:00.4,id=1:2\n"
        "\tmdev 1\n\n"
    );
    assert_string_equal(out, want);
    /* the same node again, in another order: in place of its old lines */
    char *out2 = NULL;
    assert_int_equal(
        vfmap_put(
            out, "vgpu-hook-100", 100, "pve1",
            "\tmap node=pve1,path=0000:81:00.5,id=10de:26b9\n"
            "\tmap node=pve1,path=0000:81:00.4,id=10de:26b9\n",
            &out2, &sep
        ),
        0
    );
    assert_non_null(strstr(
        out2, "\tdescription d\n\tmap node=pve1,path=0000:81:00.5,id=10de:26b9\n"
              "\tmap node=pve1,path=0000:81:00.4,id=10de:26b9\n\tmap node=pve2"
    ));
    /* what Proxmox reads for pve1, in order */
    struct sectioncfg cfg;
    char(*paths)[16] = NULL;
    size_t npaths = 0;
    struct pvh_err e;
    assert_int_equal(sectioncfg_parse(out2, false, &cfg), 0);
    assert_int_equal(mapping_paths(&cfg, "vgpu-hook-100", "pve1", &paths, &npaths, &e), 0);
    assert_int_equal(npaths, 2);
    assert_string_equal(paths[0], "0000:81:00.5");
    assert_string_equal(paths[1], "0000:81:00.4");
    free(paths);
    sectioncfg_free(&cfg);
    /* no map line yet: right after the header, where SectionConfig writes the required
     * "map" before the optional keys */
    char *out3 = NULL;
    assert_int_equal(
        vfmap_put(
            "vgpu-hook-7\n\tdescription d\n\tmdev 1\n\n", "vgpu-hook-7", 7, "pve1",
            "\tmap node=pve1,path=0000:81:00.4,id=1:2\n", &out3, &sep
        ),
        0
    );
    assert_string_equal(
        out3, "vgpu-hook-7\n\tmap node=pve1,path=0000:81:00.4,id=1:2\n\tdescription d\n\tmdev 1\n\n"
    );
    /* a header at the end without its newline (found by the fuzzer): lines of their own */
    char *out4 = NULL;
    assert_int_equal(
        vfmap_put(
            "a\n\nvgpu-hook-7", "vgpu-hook-7", 7, "pve1", "\tmap node=pve1,path=0000:81:00.4\n",
            &out4, &sep
        ),
        0
    );
    assert_string_equal(out4, "a\n\nvgpu-hook-7\n\tmap node=pve1,path=0000:81:00.4\n");
    free(out);
    free(out2);
    free(out3);
    free(out4);
}

static void test_span(void **state) {
    (void)state;
    static const struct {
        const char *text, *id;
        int rc;
        size_t start, end;
    } cases[] = {
        {"a\n\tx 1\n\nb\n\ty 2\n\n", "b", 0, 8, 16},
        {"a\n\tx 1\n\nb\n\ty 2\n\n", "a", 0, 0, 8},
        {"a\n\tx 1\nb\n\ty 2\n", "a", 0, 0, 7}, /* the next header ends it */
        {"a\n# c\n\tx 1", "a", 0, 0, 10},       /* comments belong to it, no newline */
        {"a\n\tx 1\n", "c", -ENOENT, 0, 0},
        {"\ta\n", "a", -ENOENT, 0, 0}, /* indented: no header */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t s = 0, e = 0;
        assert_int_equal(sectioncfg_span(cases[i].text, false, cases[i].id, &s, &e), cases[i].rc);
        if (cases[i].rc == 0) {
            assert_int_equal(s, cases[i].start);
            assert_int_equal(e, cases[i].end);
        }
    }
}

/* ---------- the VF order: Proxmox tries the mapping's VFs in order ---------- */

static void test_vf_order(void **state) {
    (void)state;
    struct nvidia_iface_type offers[] = {{7, "NVIDIA L40S-2Q"}};
    char va[2][PCI_ID_LEN] = {"0000:81:00.4", "0000:81:00.5"};
    char vb[2][PCI_ID_LEN] = {"0000:82:00.4", "0000:82:00.5"};
    char vc[1][PCI_ID_LEN] = {"0000:83:00.4"};
    struct vf_holder held = {"0000:81:00.4", 7, 100, VM_RUNNING};
    struct nvidia_gpu gpus[] = {
        {.bdf = "0000:81:00.0",
         .vfs = va,
         .nvfs = 2,
         .used = &held,
         .nused = 1,
         .free_vf = {.creatable = offers, .ncreatable = 1},
         .free_bdf = "0000:81:00.5"},
        {.bdf = "0000:82:00.0",
         .vfs = vb,
         .nvfs = 2,
         .free_vf = {.creatable = offers, .ncreatable = 1},
         .free_bdf = "0000:82:00.4"},
        /* offers nothing now (full with another type): never listed */
        {.bdf = "0000:83:00.0", .vfs = vc, .nvfs = 1},
    };
    char only_b[1][PCI_ID_LEN] = {"0000:82:00.0"};
    static const struct {
        enum pvh_placement placement;
        unsigned type;
        int only_b;
        int rc;
        const char *want;
    } cases[] = {
        {PLACEMENT_PACK, 7, 0, 0, "0000:81:00.4 0000:81:00.5 0000:82:00.4 0000:82:00.5"},
        {PLACEMENT_SPREAD, 7, 0, 0, "0000:82:00.4 0000:82:00.5 0000:81:00.4 0000:81:00.5"},
        {PLACEMENT_PACK, 7, 1, 0, "0000:82:00.4 0000:82:00.5"},
        {PLACEMENT_PACK, 8, 0, -ENODEV, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char **vfs = NULL;
        size_t n = 0;
        assert_int_equal(
            place_vf_order(
                gpus, 3, cases[i].type, cases[i].only_b ? only_b : NULL, cases[i].only_b ? 1 : 0,
                cases[i].placement, &vfs, &n
            ),
            cases[i].rc
        );
        char got[256] = "";
        for (size_t k = 0; k < n; k++) {
            strcat(got, k ? " " : "");
            strcat(got, vfs[k]);
        }
        assert_string_equal(got, cases[i].want);
        free(vfs);
    }
}

/* ---------- end to end: a two-node cluster ---------- */

static struct fakehost *N1, *N2;
static struct fh_result R;

static int setup(void **state) {
    (void)state;
    N1 = calloc(1, sizeof(*N1));
    N2 = calloc(1, sizeof(*N2));
    assert_int_equal(fh_create(N1), 0);
    assert_int_equal(fh_create(N2), 0);
    assert_int_equal(fh_set_node(N2, "pve2"), 0);
    const char *l40s = "1 : NVIDIA L40S-2Q\n2 : NVIDIA L40S-4Q\n";
    assert_int_equal(fh_add_nvidia_iface(N1, "0000:81:00.0", 2, l40s), 0);
    assert_int_equal(fh_add_nvidia_iface(N1, "0000:82:00.0", 2, l40s), 0);
    assert_int_equal(fh_add_nvidia_iface(N2, "0000:41:00.0", 2, l40s), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(N1);
    fh_destroy(N2);
    free(N1);
    free(N2);
    return 0;
}

#define run_on(fh, env, ...) fh_run(fh, &R, env, __VA_ARGS__, NULL)

static const char *path_on(struct fakehost *fh, const char *rel) {
    static char path[PATH_MAX + 256];
    snprintf(path, sizeof(path), "%s/%s", fh->root, rel);
    return path;
}

static void replicate(struct fakehost *from, struct fakehost *to, const char *to_node) {
    assert_int_equal(fh_replicate_pve(from, to, to_node), 0);
}

/* What Proxmox does after pre-start: the first VF of the mapping that can take the type gets
 * it, and QEMU runs with it. */
static void proxmox_starts(struct fakehost *fh, unsigned long vmid, const char *vf) {
    char rel[128];
    snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/nvidia/current_vgpu_type", vf);
    fh_write(fh, rel, "1\n");
    fh_run_vm_on_vf(fh, vmid, 4000 + (long)vmid, vf);
}

static const char CONF[] = "# my VM\nboot: order=scsi0\nmemory: 8192\nname: render1\n"
                           "scsi0: local-lvm:vm-100-disk-0,size=32G\n\n[snap1]\nmemory: 4096\n";

static void test_two_nodes(void **state) {
    (void)state;
    fh_write(N1, "etc/pve/mapping/pci.cfg", ADMIN_SECTION);
    fh_write(N1, "etc/pve/vgpu-hook.json", "{\n  \"placement\": \"pack\"\n}\n");
    fh_vmconf(N1, 100, CONF);
    char *map0 = fh_read(N1, "etc/pve/mapping/pci.cfg");
    char *cfg0 = fh_read(N1, "etc/pve/vgpu-hook.json");
    replicate(N1, N2, "pve2");

    assert_int_equal(run_on(N1, NULL, "attach", "100", "--type", "L40S-2Q"), 0);
    assert_contains(R.out, "hostpci0: mapping=vgpu-hook-100,mdev=nvidia-1");
    assert_contains(R.out, "through resource mapping vgpu-hook-100");
    char *conf = fh_read_vmconf(N1, 100);
    assert_contains(conf, "hostpci0: mapping=vgpu-hook-100,mdev=nvidia-1\n");
    assert_contains(conf, "hookscript: local:snippets/pve-vgpu-hook\n");
    assert_not_contains(conf, "args:");
    assert_contains(conf, "\n[snap1]\nmemory: 4096\n");
    free(conf);
    char *map = fh_read(N1, "etc/pve/mapping/pci.cfg");
    assert_string_equal(
        map,
        ADMIN_SECTION "vgpu-hook-100\n"
                      "\tmap node=pve1,path=0000:81:00.4,id=10de:26b9,subsystem-id=10de:1851,"
                      "iommugroup=44\n"
                      "\tmap node=pve1,path=0000:81:00.5,id=10de:26b9,subsystem-id=10de:1851,"
                      "iommugroup=45\n"
                      "\tmap node=pve1,path=0000:82:00.4,id=10de:26b9,subsystem-id=10de:1851,"
                      "iommugroup=44\n"
                      "\tmap node=pve1,path=0000:82:00.5,id=10de:26b9,subsystem-id=10de:1851,"
                      "iommugroup=45\n"
                      "\tdescription vGPU of VM 100, kept by pve-vgpu-hook (detach removes it)\n"
                      "\tmdev 1\n\n"
    );
    free(map);

    /* node 1: check and pre-start agree, Proxmox takes the first VF */
    assert_int_equal(run_on(N1, NULL, "check", "100"), 0);
    assert_contains(R.out, "VM 100: would start");
    assert_contains(
        R.out, "mapping vgpu-hook-100 on node pve1: 0000:81:00.4 0000:81:00.5 0000:82:00.4 "
               "0000:82:00.5 (tried in this order; as it is now)"
    );
    assert_int_equal(run_on(N1, NULL, "100", "pre-start"), 0);
    proxmox_starts(N1, 100, "0000:81:00.4");
    assert_int_equal(run_on(N1, NULL, "status"), 0);
    assert_contains(R.out, "0000:81:00.4 nvidia-1 (VM 100)");

    /* node 1 fails; HA moves the config and starts the VM on node 2, which has no line of
     * the mapping yet: pre-start adds them before Proxmox reads the mapping */
    replicate(N1, N2, "pve2");
    char *moved = fh_read(N2, "etc/pve/nodes/pve1/qemu-server/100.conf");
    fh_write(N2, "etc/pve/nodes/pve2/qemu-server/100.conf", moved);
    unlink(path_on(N2, "etc/pve/nodes/pve1/qemu-server/100.conf"));
    free(moved);
    assert_int_equal(run_on(N2, NULL, "check", "100"), 0);
    assert_contains(
        R.out, "mapping vgpu-hook-100 on node pve2: 0000:41:00.4 0000:41:00.5 (tried in this "
               "order; pre-start writes it)"
    );
    assert_contains(R.out, "index 0: nvidia-1 on 0000:41:00.4");
    char *before_start = fh_read(N2, "etc/pve/mapping/pci.cfg");
    assert_int_equal(run_on(N2, NULL, "100", "pre-start"), 0);
    assert_contains(R.err, "resource mapping vgpu-hook-100 now lists node pve2's VFs");
    map = fh_read(N2, "etc/pve/mapping/pci.cfg");
    /* node 1's lines are kept, node 2's follow them, nothing else changed */
    const char *pve2_lines =
        "\tmap node=pve2,path=0000:41:00.4,id=10de:26b9,subsystem-id=10de:1851,iommugroup=44\n"
        "\tmap node=pve2,path=0000:41:00.5,id=10de:26b9,subsystem-id=10de:1851,iommugroup=45\n";
    char *mdev_line = strstr(before_start, "\tdescription "); /* the map lines end there */
    assert_non_null(mdev_line);
    char want[4096];
    snprintf(
        want, sizeof(want), "%.*s%s%s", (int)(mdev_line - before_start), before_start, pve2_lines,
        mdev_line
    );
    assert_string_equal(map, want);
    free(map);
    free(before_start);
    /* a second start changes nothing */
    assert_int_equal(run_on(N2, NULL, "check", "100"), 0);
    assert_contains(R.out, "(tried in this order; as it is now)");
    proxmox_starts(N2, 100, "0000:41:00.4");
    fh_stop_vm(N2, 100); /* stopped: a running VM's detach would wait in [PENDING] */
    assert_int_equal(run_on(N2, NULL, "100", "post-stop"), 0);

    /* detach on node 2, where the VM is now: every file as before attach */
    assert_int_equal(run_on(N2, NULL, "detach", "100"), 0);
    assert_contains(R.out, "hostpci0: (removed)");
    assert_contains(R.out, "mapping vgpu-hook-100 (removed)");
    conf = fh_read(N2, "etc/pve/nodes/pve2/qemu-server/100.conf");
    assert_string_equal(conf, CONF);
    free(conf);
    map = fh_read(N2, "etc/pve/mapping/pci.cfg");
    assert_string_equal(map, map0);
    free(map);
    char *cfg = fh_read(N2, "etc/pve/vgpu-hook.json");
    assert_string_equal(cfg, cfg0);
    free(cfg);
    free(map0);
    free(cfg0);
}

/* spread: the GPU with the fewest VFs in use first; pack: the fullest. The mapping without
 * a file before: detach leaves none. */
static void test_policy_order(void **state) {
    (void)state;
    fh_write(N1, "etc/pve/vgpu-hook.json", "{\"placement\": \"spread\"}\n");
    fh_vmconf(N1, 100, "memory: 4096\n");
    fh_vmconf(N1, 101, "memory: 4096\n");
    proxmox_starts(N1, 100, "0000:81:00.4");
    assert_int_equal(run_on(N1, NULL, "attach", "101", "--type", "nvidia-1"), 0);
    assert_int_equal(run_on(N1, NULL, "check", "101"), 0);
    assert_contains(
        R.out, "mapping vgpu-hook-101 on node pve1: 0000:82:00.4 0000:82:00.5 0000:81:00.4 "
               "0000:81:00.5 (tried in this order; as it is now)"
    );
    assert_contains(R.out, "index 0: nvidia-1 on 0000:82:00.4");
    char *map = fh_read(N1, "etc/pve/mapping/pci.cfg");
    assert_non_null(map);
    free(map);
    assert_int_equal(run_on(N1, NULL, "detach", "101"), 0);
    assert_false(fh_exists(N1, "etc/pve/mapping/pci.cfg"));
    /* --gpu: only that GPU's VFs; attaching again with another list changes just them */
    assert_int_equal(
        run_on(N1, NULL, "attach", "101", "--type", "L40S-2Q", "--gpu", "0000:82:00.0"), 0
    );
    assert_int_equal(run_on(N1, NULL, "check", "101"), 0);
    assert_contains(R.out, "on node pve1: 0000:82:00.4 0000:82:00.5 (tried");
    assert_int_equal(
        run_on(N1, NULL, "attach", "101", "--type", "L40S-2Q", "--gpu", "0000:81:00.0"), 0
    );
    assert_int_equal(run_on(N1, NULL, "check", "101"), 0);
    assert_contains(R.out, "on node pve1: 0000:81:00.4 0000:81:00.5 (tried");
    assert_int_equal(run_on(N1, NULL, "detach", "101"), 0);
    assert_false(fh_exists(N1, "etc/pve/mapping/pci.cfg"));
}

/* Refusals change nothing: an admin's mapping of that name, a hostpci slot in use, a failed
 * write in the middle of the three files. */
static void test_refusals(void **state) {
    (void)state;
    fh_write(N1, "var/lock/qemu-server/lock-100.conf", ""); /* as after any qm set */
    fh_vmconf(N1, 100, "memory: 4096\n");
    fh_write(
        N1, "etc/pve/mapping/pci.cfg",
        "vgpu-hook-100\n\tmap node=pve1,path=0000:81:00.4,id=10de:1b38\n\n"
    );
    char *before = fh_snapshot(N1);
    assert_int_equal(run_on(N1, NULL, "attach", "100", "--type", "L40S-2Q"), 1);
    assert_contains(
        R.err, "already has a resource mapping 'vgpu-hook-100' that pve-vgpu-hook did not make"
    );
    assert_host_unchanged(N1, before);
    unlink(path_on(N1, "etc/pve/mapping/pci.cfg"));
    fh_vmconf(N1, 100, "hostpci0: 0000:05:00.0\nmemory: 4096\n");
    before = fh_snapshot(N1);
    assert_int_equal(run_on(N1, NULL, "attach", "100", "--type", "L40S-2Q"), 1);
    assert_contains(R.err, "hostpci0 of VM 100 is in use (0000:05:00.0)");
    assert_contains(R.err, "--index N");
    assert_host_unchanged(N1, before);
    /* the 2nd of three renames fails: the first is undone */
    before = fh_snapshot(N1);
    const char *fail[] = {"FAKE_FAIL=rename:2", NULL};
    assert_int_equal(run_on(N1, fail, "attach", "100", "--type", "L40S-2Q", "--index", "1"), 1);
    assert_contains(R.err, "cannot write /etc/pve/");
    assert_contains(R.err, "nothing was changed");
    assert_host_unchanged(N1, before);
    /* and with index 1 it goes */
    assert_int_equal(run_on(N1, NULL, "attach", "100", "--type", "L40S-2Q", "--index", "1"), 0);
    assert_contains(R.out, "hostpci1: mapping=vgpu-hook-100,mdev=nvidia-1");
}

/* A start refused after the mapping's new lines were ready (here: vgpu_unlock's file cannot be
 * written) leaves pci.cfg as it was: the cluster file is written last. */
static void test_refused_start_keeps_mapping(void **state) {
    (void)state;
    fh_vmconf(N1, 100, "memory: 4096\n");
    for (int i = 0; i < 2; i++) { /* tune refuses unlock settings where they cannot apply */
        fh_write(
            i ? N2 : N1, "etc/systemd/system/nvidia-vgpu-mgr.service.d/vgpu_unlock.conf",
            "[Service]\nEnvironment=LD_PRELOAD=/opt/vgpu_unlock-rs/target/release/"
            "libvgpu_unlock_rs.so\n"
        );
        fh_write(i ? N2 : N1, "opt/vgpu_unlock-rs/target/release/libvgpu_unlock_rs.so", "");
    }
    assert_int_equal(run_on(N1, NULL, "attach", "100", "--type", "L40S-2Q"), 0);
    assert_int_equal(run_on(N1, NULL, "tune", "100", "--unlock", "frl_enabled=0"), 0);
    replicate(N1, N2, "pve2");
    char *moved = fh_read(N2, "etc/pve/nodes/pve1/qemu-server/100.conf");
    fh_write(N2, "etc/pve/nodes/pve2/qemu-server/100.conf", moved);
    unlink(path_on(N2, "etc/pve/nodes/pve1/qemu-server/100.conf"));
    free(moved);
    fh_write(N2, "etc/vgpu_unlock/profile_override.toml", "");
    char *before = fh_snapshot(N2);
    const char *fail[] = {"FAKE_FAIL=rename:2", NULL};
    assert_int_equal(run_on(N2, fail, "100", "pre-start"), 1);
    assert_host_unchanged(N2, before);
    assert_int_equal(run_on(N2, NULL, "100", "pre-start"), 0);
    assert_contains(R.err, "resource mapping vgpu-hook-100 now lists node pve2's VFs");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_node_lines),
    cmocka_unit_test(test_put_and_remove),
    cmocka_unit_test(test_put_node_lines),
    cmocka_unit_test(test_span),
    cmocka_unit_test(test_vf_order),
    cmocka_unit_test_setup_teardown(test_two_nodes, setup, teardown),
    cmocka_unit_test_setup_teardown(test_policy_order, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refused_start_keeps_mapping, setup, teardown),
};

int main(void) {
    return cmocka_run_group_tests(tests, NULL, NULL);
}
