/*
 * The cluster view on a simulated two-node cluster (each node its own sysfs, /etc/pve copied
 * between them as pmxcfs replicates it): each node publishes its inventory, status --cluster
 * and where on one node show the other's GPUs and decide as pre-start there would, an
 * unchanged status writes nothing, a node without quorum still starts VMs, and node names
 * from files and the environment are refused before they become paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "nodeinv.h"
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct fakehost *N1, *N2;
static struct fh_result R;

#define run_on(fh, env, ...) fh_run(fh, &R, env, __VA_ARGS__, NULL)

static void replicate(struct fakehost *from, struct fakehost *to, const char *to_node) {
    assert_int_equal(fh_replicate_pve(from, to, to_node), 0);
}

/* pve1: two P40s, VM 100 holds GPU_A whole (P40-24Q). pve2: one idle P40. Both published. */
static int setup(void **state) {
    (void)state;
    N1 = calloc(1, sizeof(*N1));
    N2 = calloc(1, sizeof(*N2));
    assert_int_equal(fh_create_p40_pair(N1), 0);
    assert_int_equal(fh_create(N2), 0);
    assert_int_equal(fh_add_p40(N2, GPU_A), 0);
    assert_int_equal(fh_qemu_server_version(N1, "8.3.0"), 0);
    assert_int_equal(fh_qemu_server_version(N2, "8.3.0"), 0);
    fh_vmconf(N1, 100, "hostpci0: " GPU_A ",mdev=nvidia-53\n");
    fh_vmconf(N1, 101, "hostpci0: " GPU_A ",mdev=nvidia-47\n");
    assert_int_equal(run_on(N1, NULL, "100", "pre-start"), 0);
    /* the start does not wait for the cluster: post-start publishes what pre-start created */
    assert_int_equal(fh_exists(N1, "etc/pve/nodes/pve1/vgpu-hook.json"), 0);
    fh_run_vm(N1, 100, 5100);
    assert_int_equal(run_on(N1, NULL, "100", "post-start"), 0);
    assert_int_equal(fh_exists(N1, "etc/pve/nodes/pve1/vgpu-hook.json"), 1);
    assert_int_equal(run_on(N1, NULL, "publish"), 0); /* as the timer does: VM 100 runs now */
    replicate(N1, N2, "pve2");
    assert_int_equal(run_on(N2, NULL, "publish"), 0);
    replicate(N2, N1, "pve1");
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

/* Make a node's published data `age` seconds old, as if it had been taken then. */
static void backdate(struct fakehost *fh, const char *node, long age) {
    char rel[128], *text, *out;
    snprintf(rel, sizeof(rel), "etc/pve/nodes/%s/vgpu-hook.json", node);
    assert_non_null(text = fh_read(fh, rel));
    struct node_inv inv;
    char why[256];
    assert_int_equal(nodeinv_parse(text, strlen(text), &inv, why, sizeof(why)), 0);
    inv.taken = (long long)time(NULL) - age;
    assert_non_null(out = nodeinv_write(&inv, true));
    fh_write(fh, rel, out);
    nodeinv_free(&inv);
    free(out);
    free(text);
}

static void test_status_cluster(void **state) {
    (void)state;
    assert_int_equal(run_on(N1, NULL, "status", "--cluster"), 0);
    assert_contains(R.out, "Node pve1 (this node): published");
    assert_contains(R.out, "Node pve2: published");
    assert_contains(R.out, "hosts VM 100: nvidia-53 on " GPU_A " (running)");
    assert_int_equal(run_on(N1, NULL, "status", "--cluster", "--json"), 0);
    assert_contains(R.out, "\"node\": \"pve2\"");
    assert_contains(R.out, "\"state\": \"current\"");
    /* pve2's GPU, as pve2 published it: P40-2Q, 12 free */
    char *pub = fh_read(N1, "etc/pve/nodes/pve2/vgpu-hook.json");
    assert_non_null(pub);
    struct node_inv inv;
    char why[256];
    assert_int_equal(nodeinv_parse(pub, strlen(pub), &inv, why, sizeof(why)), 0);
    assert_string_equal(inv.node, "pve2");
    assert_int_equal(inv.ngpus, 1);
    assert_string_equal(inv.gpus[0].pci, GPU_A);
    assert_string_equal(inv.qemu_server, "8.3.0");
    assert_int_equal(inv.gpus[0].types[1].free, 12);
    nodeinv_free(&inv);
    free(pub);
}

/* The ids a map line needs, as pve2 published them for its P40 (no subsystem ids, no IOMMU
 * group in the fixture), and each malformed form refusing the whole file. */
static void test_inventory_function_ids(void **state) {
    (void)state;
    char *pub = fh_read(N1, "etc/pve/nodes/pve2/vgpu-hook.json"), why[256];
    assert_non_null(pub);
    const char *ids = "\"function_ids\": [\n        {\n          \"pci\": \"" GPU_A
                      "\",\n          \"id\": \"10de:1b38\",\n          \"subsystem_id\": \"\",\n"
                      "          \"iommugroup\": null\n        }\n      ]";
    assert_contains(pub, ids);
    struct node_inv inv;
    assert_int_equal(nodeinv_parse(pub, strlen(pub), &inv, why, sizeof(why)), 0);
    assert_non_null(inv.gpus[0].idents);
    assert_string_equal(inv.gpus[0].idents[0].device, "1b38");
    assert_int_equal(inv.gpus[0].idents[0].iommu_group, -1);
    nodeinv_free(&inv);
    static const struct {
        const char *from, *to, *why;
    } bad[] = {
        {"\"id\": \"10de:1b38\"", "\"id\": \"10DE:1b38\"",
         "gpus[0].function_ids[0].id is not a PCI id like 10de:1b38"},
        {"\"subsystem_id\": \"\"", "\"subsystem_id\": \"10de\"",
         "gpus[0].function_ids[0].subsystem_id is not a PCI id"},
        {"\"iommugroup\": null", "\"iommugroup\": -2",
         "gpus[0].function_ids[0].iommugroup is not null or a group number"},
        {"\"iommugroup\": null", "\"iommu\": 1", "gpus[0].function_ids[0].iommugroup is missing"},
        {"\"pci\": \"" GPU_A "\",\n          \"id\"", "\"pci\": \"" GPU_B "\",\n          \"id\"",
         "gpus[0].function_ids[0].pci is not the function"},
        {"\"function_ids\": [", "\"function_ids\": [ {}, ",
         "gpus[0].function_ids is not an array with one entry per function"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *at = strstr(pub, bad[i].from);
        assert_non_null(at);
        char text[16384];
        snprintf(
            text, sizeof(text), "%.*s%s%s", (int)(at - pub), pub, bad[i].to,
            at + strlen(bad[i].from)
        );
        assert_int_equal(nodeinv_parse(text, strlen(text), &inv, why, sizeof(why)), -EINVAL);
        assert_contains(why, bad[i].why);
    }
    free(pub);
}

/* where decides as pre-start on each node would: compare with check there. */
static void test_where_agrees_with_check(void **state) {
    (void)state;
    assert_int_equal(run_on(N1, NULL, "where", "101"), 0);
    assert_contains(R.out, "pve1: no (no-room): cannot place nvidia-47");
    assert_contains(R.out, "pve2: yes, nvidia-47 on " GPU_A);
    assert_int_equal(run_on(N1, NULL, "check", "101"), 1); /* pve1 itself: full */
    assert_contains(R.out, "cannot place nvidia-47");
    /* pve2 would start it there: its config moved to pve2 */
    char *conf = fh_read(N1, "etc/pve/nodes/pve1/qemu-server/101.conf");
    fh_write(N2, "etc/pve/nodes/pve2/qemu-server/101.conf", conf);
    free(conf);
    assert_int_equal(run_on(N2, NULL, "check", "101"), 0);
    assert_contains(R.out, GPU_A);
    assert_int_equal(run_on(N1, NULL, "where", "101", "--json"), 0);
    assert_contains(R.out, "\"can_start\": true");
    assert_contains(R.out, "\"code\": \"no-room\"");
    /* pve2 full too (as published): nobody can, exit 1 */
    fh_vmconf(N1, 102, "hostpci0: " GPU_A ",mdev=nvidia-53\nhostpci1: " GPU_A ",mdev=nvidia-53\n");
    assert_int_equal(run_on(N1, NULL, "where", "102"), 1);
    assert_contains(R.out, "pve2: no (no-room)");
}

static void test_stale_and_offline(void **state) {
    (void)state;
    backdate(N1, "pve2", 3 * 300 + 30); /* just past 3 refresh intervals */
    assert_int_equal(run_on(N1, NULL, "status", "--cluster"), 0);
    assert_contains(R.out, "Node pve2: STALE: published");
    assert_int_equal(run_on(N1, NULL, "where", "101"), 1);
    assert_contains(R.out, "pve2: no (stale)");
    fh_write(
        N1, "etc/pve/.members",
        "{\"nodename\": \"pve1\", \"version\": 5, \"cluster\": {\"name\": \"c\", \"version\": 2, "
        "\"nodes\": 2, \"quorate\": 1}, \"nodelist\": {\"pve1\": {\"id\": 1, \"online\": 1, "
        "\"ip\": \"10.0.0.1\"}, \"pve2\": {\"id\": 2, \"online\": 0, \"ip\": \"10.0.0.2\"}}}\n"
    );
    assert_int_equal(run_on(N1, NULL, "status", "--cluster", "--json"), 0);
    assert_contains(R.out, "\"state\": \"offline\"");
    assert_int_equal(run_on(N1, NULL, "where", "101"), 1);
    assert_contains(R.out, "pve2: no (offline)");
    /* a node only .members knows is shown (unpublished); a name that is no node name is not */
    fh_write(
        N1, "etc/pve/.members",
        "{\"nodelist\": {\"pve3\": {\"id\": 3, \"online\": 1}, \"../x\": {\"online\": 1}}}\n"
    );
    assert_int_equal(run_on(N1, NULL, "status", "--cluster"), 0);
    assert_contains(R.out, "Node pve3: ");
    assert_not_contains(R.out, "../x");
    assert_contains(R.out, "Node pve2: STALE");
    /* a standalone node's pmxcfs writes no nodelist: nothing to warn about */
    fh_write(N1, "etc/pve/.members", "{\n\"nodename\": \"pve1\",\n\"version\": 0\n}\n");
    assert_int_equal(run_on(N1, NULL, "status", "--cluster"), 0);
    assert_not_contains(R.err, ".members");
    assert_contains(R.out, "Node pve2: STALE");
    /* not what pmxcfs writes: said, and the nodes' own files decide */
    fh_write(N1, "etc/pve/.members", "{\"nodelist\": [1]}\n");
    assert_int_equal(run_on(N1, NULL, "status", "--cluster"), 0);
    assert_contains(
        R.err, "/etc/pve/.members is not what pmxcfs writes: nodes' online state unknown"
    );
    assert_contains(R.out, "Node pve2: STALE");
}

static void test_unchanged_status_writes_nothing(void **state) {
    (void)state;
    assert_int_equal(run_on(N1, NULL, "status"), 0);
    backdate(N1, "pve1", 60); /* so that a rewrite within the same second shows */
    char *before = fh_snapshot(N1);
    assert_int_equal(run_on(N1, NULL, "status"), 0);
    assert_int_equal(run_on(N1, NULL, "types"), 0);
    assert_int_equal(run_on(N1, NULL, "publish"), 0);
    assert_host_unchanged(N1, before);
}

static void test_no_quorum_still_starts(void **state) {
    (void)state;
    const char *ro[] = {"FAKE_PMXCFS_RO=1", NULL};
    char *before = fh_read(N1, "etc/pve/nodes/pve1/vgpu-hook.json");
    fh_vmconf(N1, 103, "hostpci0: " GPU_B ",mdev=nvidia-47\n");
    assert_int_equal(run_on(N1, ro, "103", "pre-start"), 0);
    assert_int_equal(fh_exists(N1, "sys/bus/mdev/devices/00000000-0000-0000-0000-000000000103"), 1);
    assert_int_equal(run_on(N1, ro, "103", "post-start"), 0);
    assert_contains(R.err, "cannot publish this node's vGPU inventory");
    assert_contains(R.err, "the start is not affected");
    char *after = fh_read(N1, "etc/pve/nodes/pve1/vgpu-hook.json");
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(run_on(N1, ro, "status"), 0);
    assert_contains(R.err, "cannot publish this node's vGPU inventory");
    assert_int_equal(run_on(N1, ro, "publish"), 1);
    assert_contains(R.err, "without quorum");
}

static void test_invalid_node_names(void **state) {
    (void)state;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/etc/pve/nodes/.hidden", N1->root);
    assert_int_equal(mkdir(path, 0755), 0);
    fh_write(N1, "etc/pve/nodes/.hidden/vgpu-hook.json", "{}");
    snprintf(path, sizeof(path), "%s/etc/pve/nodes/bad\001name", N1->root);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(run_on(N1, NULL, "status", "--cluster"), 0);
    assert_contains(R.err, "/etc/pve/nodes/.hidden is not a node name: ignored");
    assert_contains(R.err, "/etc/pve/nodes/bad\\x01name is not a node name: ignored");
    assert_null(strstr(R.out, "hidden"));
    /* a migration source that is no node name never becomes a path */
    const char *dots[] = {"PVE_MIGRATED_FROM=..", NULL};
    assert_int_equal(run_on(N1, dots, "101", "pre-start"), 1);
    assert_contains(R.err, "PVE_MIGRATED_FROM='..' is not a node name");
    const char *up[] = {"PVE_MIGRATED_FROM=../pve2", NULL};
    assert_int_equal(run_on(N1, up, "101", "pre-start"), 1);
    assert_contains(R.err, "is not a node name");
    /* a published file that names another node is refused */
    char *pub = fh_read(N1, "etc/pve/nodes/pve1/vgpu-hook.json");
    snprintf(path, sizeof(path), "%s/etc/pve/nodes/pve3", N1->root);
    assert_int_equal(mkdir(path, 0755), 0);
    fh_write(N1, "etc/pve/nodes/pve3/vgpu-hook.json", pub);
    free(pub);
    assert_int_equal(run_on(N1, NULL, "status", "--cluster"), 0);
    assert_contains(R.out, "Node pve3: STALE: its inventory is refused: it names node 'pve1'");
}

/* ha-sync: an HA cluster's files on every node (pmxcfs), this node's pve-ha-manager version. */
#define HA_RESOURCES                                                                               \
    "vm: 100\n\tstate started\n\nct: 200\n\tstate started\n\nvm: 101\n\tstate started\n\n"
#define ADMIN_RULE                                                                                 \
    "node-affinity: fast-nodes\n\tcomment keep on fast nodes\n\tnodes pve1:2,pve2\n\tresources "   \
    "vm:300\n\tstrict 1\n\n"
#define OUR_COMMENT                                                                                \
    "\tcomment kept by pve-vgpu-hook ha-sync (the nodes that can start the VM's vGPU)\n"
/* Exactly what PVE::SectionConfig writes for these rules (comment first, keys sorted, nodes
 * sorted and comma-joined), so HA's parser reads them and a rewrite by Proxmox keeps them. */
#define OUR_RULE(vmid, nodes)                                                                      \
    "node-affinity: vgpu-hook-" vmid "\n" OUR_COMMENT "\tnodes " nodes "\n\tresources vm:" vmid    \
    "\n\tstrict 1\n\n"
#define RULE_100 OUR_RULE("100", "pve1,pve2")
#define RULE_101 OUR_RULE("101", "pve2")

static void ha_cluster(const char *ha_manager, const char *rules) {
    char status[512];
    snprintf(
        status, sizeof(status),
        "Package: qemu-server\nStatus: install ok installed\nVersion: 8.3.0\n\n"
        "Package: pve-ha-manager\nStatus: install ok installed\nVersion: %s\n\n",
        ha_manager
    );
    fh_write(N1, "var/lib/dpkg/status", status);
    fh_write(N1, "etc/pve/ha/resources.cfg", HA_RESOURCES);
    if (rules) {
        fh_write(N1, "etc/pve/ha/rules.cfg", rules);
    }
}

static ino_t inode_of(struct fakehost *fh, const char *rel) {
    char path[PATH_MAX + 64];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", fh->root, rel);
    assert_int_equal(stat(path, &st), 0);
    return st.st_ino;
}

static void assert_file(struct fakehost *fh, const char *rel, const char *want) {
    char *got = fh_read(fh, rel);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_ha_sync_rules(void **state) {
    (void)state;
    ha_cluster("5.2.0", ADMIN_RULE);
    char *res_before = fh_read(N1, "etc/pve/ha/resources.cfg");
    assert_int_equal(run_on(N1, NULL, "ha-sync", "--dry-run"), 0);
    assert_contains(R.out, "create vgpu-hook-100: HA runs vm:100 only on pve1,pve2");
    assert_contains(R.out, "would be written");
    assert_file(N1, "etc/pve/ha/rules.cfg", ADMIN_RULE);
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 0);
    /* VM 101 is pinned to GPU_A, full on pve1: only pve2 can start it; the admin's rule and
     * resources.cfg stay byte for byte */
    assert_file(N1, "etc/pve/ha/rules.cfg", ADMIN_RULE RULE_100 RULE_101);
    assert_file(N1, "etc/pve/ha/resources.cfg", res_before);
    free(res_before);
    assert_int_equal(fh_exists(N1, "etc/pve/priv/lock/domain-ha"), 0);
    /* a second run writes nothing */
    ino_t ino = inode_of(N1, "etc/pve/ha/rules.cfg");
    assert_int_equal(run_on(N1, NULL, "ha-sync", "--json"), 0);
    assert_contains(R.out, "\"action\": \"unchanged\"");
    assert_contains(R.out, "\"changed\": false");
    assert_contains(R.out, "\"form\": \"rules\"");
    assert_int_equal(inode_of(N1, "etc/pve/ha/rules.cfg"), ino);
    /* a VM no HA resource any more, and one without a vGPU, lose their rules */
    fh_write(N1, "etc/pve/ha/resources.cfg", "vm: 100\n\tstate started\n\n");
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 0);
    assert_contains(R.out, "remove vgpu-hook-101: vm:101 is no HA resource any more");
    assert_file(N1, "etc/pve/ha/rules.cfg", ADMIN_RULE RULE_100);
    fh_vmconf(N1, 100, "memory: 2048\n");
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 0);
    assert_contains(R.out, "remove vgpu-hook-100: VM 100 has no vGPU");
    assert_file(N1, "etc/pve/ha/rules.cfg", ADMIN_RULE);
}

/* A node whose data is old stays allowed when it offered the type when last seen. */
static void test_ha_sync_stale_node_kept(void **state) {
    (void)state;
    ha_cluster("5.2.0", NULL);
    backdate(N1, "pve2", 3 * 300 + 30);
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 0);
    assert_file(N1, "etc/pve/ha/rules.cfg", RULE_100 RULE_101);
}

/* The VM's own node stays in its rule while its inventory cannot tell (a strict rule without
 * it makes HA move the VM away at once); a node that published it cannot stays out. */
static void test_ha_sync_own_node_kept(void **state) {
    (void)state;
    ha_cluster("5.2.0", NULL);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/etc/pve/nodes/pve1/vgpu-hook.json", N1->root);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 0);
    assert_contains(
        R.out, "create vgpu-hook-100: HA runs vm:100 only on pve1,pve2: the nodes that can start "
               "its nvidia-53 vGPU; pve1, the VM's node, kept: the node has published no vGPU "
               "inventory (is pve-vgpu-hook installed there? 'systemctl start "
               "pve-vgpu-hook-publish' there)"
    );
    assert_file(N1, "etc/pve/ha/rules.cfg", RULE_100 OUR_RULE("101", "pve1,pve2"));
    /* a refused inventory cannot tell either */
    fh_write(N1, "etc/pve/nodes/pve1/vgpu-hook.json", "{}");
    assert_int_equal(run_on(N1, NULL, "ha-sync", "--dry-run"), 0);
    assert_contains(R.out, "pve1, the VM's node, kept: its published inventory is refused");
    /* published again (full for VM 101's type): pve1 leaves VM 101's rule */
    assert_int_equal(run_on(N1, NULL, "publish"), 0);
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 0);
    assert_file(N1, "etc/pve/ha/rules.cfg", RULE_100 RULE_101);
    assert_not_contains(R.out, "the VM's node, kept");
}

/* Never an admin's section, and never a second rule for a resource. */
static void test_ha_sync_others_left_alone(void **state) {
    (void)state;
    const char *theirs = "node-affinity: vgpu-hook-100\n\tnodes pve1\n\tresources vm:100\n\n"
                         "node-affinity: pin\n\tnodes pve1\n\tresources vm:101,vm:300\n\n";
    ha_cluster("5.2.0", theirs);
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 1);
    assert_contains(
        R.out, "skip vgpu-hook-100: /etc/pve/ha/rules.cfg has a section vgpu-hook-100 "
               "that ha-sync did not write"
    );
    assert_contains(R.out, "skip vgpu-hook-101: vm:101 is in node-affinity rule pin already");
    assert_file(N1, "etc/pve/ha/rules.cfg", theirs);
}

/* What Proxmox writes for our group vgpu-hook-<vmid> when it migrates groups to rules
 * (PVE::HA::Groups::migrate_groups_to_rules: ha-group-<group>, the group's comment, strict from
 * restricted, the group's members as resources). */
#define MIGRATED_RULE(vmid, nodes)                                                                 \
    "node-affinity: ha-group-vgpu-hook-" vmid "\n" OUR_COMMENT "\tnodes " nodes                    \
    "\n\tresources vm:" vmid "\n\tstrict 1\n\n"

/* Our groups as Proxmox migrated them are ours: renamed back in place, never a second rule; a
 * migrated rule without our comment is the admin's. */
static void test_ha_sync_migrated_groups(void **state) {
    (void)state;
    ha_cluster("5.2.0", ADMIN_RULE MIGRATED_RULE("100", "pve1,pve2") MIGRATED_RULE("101", "pve1"));
    /* 100's migrated rule names the right nodes: HA behaves, nothing to flag; 101's does not */
    assert_int_equal(run_on(N1, NULL, "doctor"), 1);
    assert_not_contains(R.out, "relocate VM 100");
    assert_contains(R.out, "relocate VM 101 to a node that cannot start its vGPU");
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 0);
    assert_contains(
        R.out, "update vgpu-hook-100: HA runs vm:100 only on pve1,pve2: the nodes that can start "
               "its nvidia-53 vGPU; renamed from ha-group-vgpu-hook-100, the rule Proxmox made of "
               "ha-sync's HA group vgpu-hook-100"
    );
    assert_contains(R.out, "update vgpu-hook-101: HA runs vm:101 only on pve2");
    assert_file(N1, "etc/pve/ha/rules.cfg", ADMIN_RULE RULE_100 RULE_101);
    /* ours beside Proxmox's migrated one: the migrated one goes */
    fh_write(N1, "etc/pve/ha/rules.cfg", RULE_100 MIGRATED_RULE("100", "pve1") RULE_101);
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 0);
    assert_contains(R.out, "update vgpu-hook-100: HA runs vm:100 only on pve1,pve2");
    assert_contains(
        R.out, "ha-group-vgpu-hook-100, the rule Proxmox made of ha-sync's HA group, "
               "removed"
    );
    assert_file(N1, "etc/pve/ha/rules.cfg", RULE_100 RULE_101);
    /* a VM out of HA loses the migrated rule too */
    fh_write(N1, "etc/pve/ha/rules.cfg", MIGRATED_RULE("100", "pve1,pve2") RULE_101);
    fh_write(N1, "etc/pve/ha/resources.cfg", "vm: 101\n\tstate started\n\n");
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 0);
    assert_contains(R.out, "remove vgpu-hook-100: vm:100 is no HA resource any more");
    assert_file(N1, "etc/pve/ha/rules.cfg", RULE_101);
    /* the admin's: our group the admin also put vm:300 into (renaming would drop vm:300), and
     * a rule migrated from an admin's group (Proxmox's own comment) */
    static const char *const admins[] = {
        "node-affinity: ha-group-vgpu-hook-101\n" OUR_COMMENT
        "\tnodes pve1\n\tresources vm:101,vm:300\n\tstrict 1\n\n",
        "node-affinity: ha-group-vgpu-hook-101\n\tcomment Generated from HA group "
        "'vgpu-hook-101'.\n\tnodes pve1\n\tresources vm:101\n\tstrict 1\n\n",
    };
    for (size_t i = 0; i < sizeof(admins) / sizeof(admins[0]); i++) {
        fh_write(N1, "etc/pve/ha/rules.cfg", admins[i]);
        assert_int_equal(run_on(N1, NULL, "ha-sync"), 1);
        assert_contains(
            R.out, "skip vgpu-hook-101: vm:101 is in node-affinity rule ha-group-vgpu-hook-101"
        );
        assert_file(N1, "etc/pve/ha/rules.cfg", admins[i]);
    }
}

static void test_ha_sync_groups(void **state) {
    (void)state;
    ha_cluster("4.0.7", NULL);
    fh_write(N1, "etc/pve/ha/groups.cfg", "group: mine\n\tnodes pve2,pve1\n\trestricted 1\n\n");
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 0);
    assert_contains(R.out, "'ha-manager set vm:100 --group vgpu-hook-100'");
    assert_file(
        N1, "etc/pve/ha/groups.cfg",
        "group: mine\n\tnodes pve2,pve1\n\trestricted 1\n\n"
        "group: vgpu-hook-100\n" OUR_COMMENT "\tnodes pve1,pve2\n\trestricted 1\n\n"
        "group: vgpu-hook-101\n" OUR_COMMENT "\tnodes pve2\n\trestricted 1\n\n"
    );
    assert_file(N1, "etc/pve/ha/resources.cfg", HA_RESOURCES);
    assert_int_equal(fh_exists(N1, "etc/pve/ha/rules.cfg"), 0);
}

/* pve-ha-manager 5.x with groups Proxmox has not migrated yet: its own API allows only groups,
 * so ha-sync keeps groups and says why; once groups.cfg has no group, rules. */
static void test_ha_sync_form_follows_migration(void **state) {
    (void)state;
    ha_cluster("5.2.0", NULL);
    fh_write(N1, "etc/pve/ha/groups.cfg", "group: mine\n\tnodes pve2,pve1\n\trestricted 1\n\n");
    assert_int_equal(run_on(N1, NULL, "ha-sync", "--json"), 0);
    assert_contains(R.out, "\"form\": \"groups\"");
    assert_contains(R.out, "\"form_reason\": \"groups-not-migrated\"");
    assert_int_equal(fh_exists(N1, "etc/pve/ha/rules.cfg"), 0);
    assert_file(
        N1, "etc/pve/ha/groups.cfg",
        "group: mine\n\tnodes pve2,pve1\n\trestricted 1\n\n"
        "group: vgpu-hook-100\n" OUR_COMMENT "\tnodes pve1,pve2\n\trestricted 1\n\n"
        "group: vgpu-hook-101\n" OUR_COMMENT "\tnodes pve2\n\trestricted 1\n\n"
    );
    /* Proxmox migrated them (groups.cfg gone): rules from now on */
    fh_write(N1, "etc/pve/ha/groups.cfg", "");
    assert_int_equal(run_on(N1, NULL, "ha-sync", "--dry-run"), 0);
    assert_contains(
        R.out, "HA rules: pve-ha-manager 5.2.0 here, and no HA group left in "
               "/etc/pve/ha/groups.cfg"
    );
    assert_contains(R.out, "/etc/pve/ha/rules.cfg: would be written");
    /* before 5.0.2 there are no rules at all */
    ha_cluster("4.0.7", NULL);
    assert_int_equal(run_on(N1, NULL, "ha-sync", "--dry-run"), 0);
    assert_contains(R.out, "HA groups: pve-ha-manager 4.0.7 here predates HA rules (5.0.2)");
}

/* "ha_rules": true makes the publish timer keep the rules; off by default. */
static void test_ha_rules_setting(void **state) {
    (void)state;
    ha_cluster("5.2.0", NULL);
    assert_int_equal(run_on(N1, NULL, "publish"), 0);
    assert_int_equal(fh_exists(N1, "etc/pve/ha/rules.cfg"), 0);
    fh_write(N1, "etc/pve/vgpu-hook.json", "{\"ha_rules\": true}");
    assert_int_equal(run_on(N1, NULL, "publish"), 0);
    assert_file(N1, "etc/pve/ha/rules.cfg", RULE_100 RULE_101);
}

/* Another holder of HA's lock, or no quorum: refused with why, nothing written. */
static void test_ha_sync_lock_and_quorum(void **state) {
    (void)state;
    ha_cluster("5.2.0", ADMIN_RULE);
    fh_write(N1, "etc/pve/vgpu-hook.json", "{\"lock_timeout_s\": 1}");
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/etc/pve/priv/lock/domain-ha", N1->root);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 1);
    assert_contains(
        R.err, "another node or command is editing /etc/pve/ha/rules.cfg (the cluster "
               "lock /etc/pve/priv/lock/domain-ha is held)"
    );
    assert_file(N1, "etc/pve/ha/rules.cfg", ADMIN_RULE);
    assert_int_equal(rmdir(path), 0);
    const char *ro[] = {"FAKE_PMXCFS_RO=1", NULL};
    assert_int_equal(run_on(N1, ro, "ha-sync", "--json"), 1);
    assert_contains(R.err, "cannot write /etc/pve/ha/rules.cfg: Permission denied");
    assert_contains(R.err, "read-only without cluster quorum");
    assert_contains(R.out, "\"error\": {");
    assert_file(N1, "etc/pve/ha/rules.cfg", ADMIN_RULE);
    assert_int_equal(fh_exists(N1, "etc/pve/priv/lock/domain-ha"), 0);
}

/* attach knows the cluster: a type only another node offers is accepted and names it; --gpu
 * NODE:PCI is checked against that node's published inventory and stored under that node. */
static void test_attach_knows_cluster(void **state) {
    (void)state;
    assert_int_equal(fh_add_a40_sriov(N2, "0000:41:00.0", 4), 0);
    assert_int_equal(run_on(N2, NULL, "publish"), 0);
    replicate(N2, N1, "pve1");
    fh_vmconf(N1, 102, "cores: 2\n");
    char *before = fh_read(N1, "etc/pve/vgpu-hook.json");

    assert_int_equal(run_on(N1, NULL, "attach", "102", "--type", "A40-99Q"), 1);
    assert_non_null(strstr(R.err, "no GPU on node pve1 offers type 'A40-99Q'"));
    assert_int_equal(
        run_on(N1, NULL, "attach", "102", "--type", "P40-2Q", "--gpu", "pve9:" GPU_A), 1
    );
    assert_non_null(strstr(R.err, "there is no node pve9 in the cluster (nodes: pve1, pve2)"));
    /* an FQDN is no node name: said so, with Proxmox's rule */
    assert_int_equal(
        run_on(N1, NULL, "attach", "102", "--type", "P40-2Q", "--gpu", "pve2.lan:" GPU_A), 2
    );
    assert_non_null(strstr(
        R.err, "'pve2.lan' in '--gpu pve2.lan:" GPU_A "' is no node name: a Proxmox node name has "
               "letters, digits and '-' only (no '.': the short host name, as in /etc/pve/nodes)"
    ));
    assert_int_equal(
        run_on(N1, NULL, "attach", "102", "--type", "P40-2Q", "--gpu", "pve2:0000:99:00.0"), 1
    );
    assert_non_null(strstr(R.err, "node pve2 has no GPU 0000:99:00.0"));
    assert_non_null(strstr(R.err, "GPUs of pve2 offering P40-2Q: " GPU_A));
    assert_int_equal(
        run_on(N1, NULL, "attach", "102", "--type", "P40-2Q", "--gpu", "pve2:0000:41:00.0"), 1
    );
    assert_non_null(strstr(R.err, "GPU 0000:41:00.0 on node pve2 does not offer type P40-2Q"));
    assert_int_equal(
        run_on(N1, NULL, "attach", "102", "--type", "P40-2Q", "--gpu", "a_b:06:00.0"), 2
    );
    char *after = fh_read(N1, "etc/pve/vgpu-hook.json");
    assert_true((!before && !after) || (before && after && !strcmp(before, after)));
    free(after);

    assert_int_equal(run_on(N1, NULL, "attach", "102", "--type", "A40-2Q"), 0);
    assert_non_null(strstr(R.err, "no GPU on node pve1 offers A40-2Q; pve2 offers it"));
    assert_int_equal(
        run_on(
            N1, NULL, "attach", "102", "--type", "P40-2Q", "--gpu", "pve2:06:00.0", "--gpu", GPU_B,
            "--gpu", "pve2:" GPU_A
        ),
        0
    );
    assert_non_null(strstr(R.out, "one of pve2:" GPU_A ", pve1:" GPU_B));
    after = fh_read(N1, "etc/pve/vgpu-hook.json");
    assert_non_null(strstr(
        after, "\"gpus\": {\n        \"pve2\": [\n          \"" GPU_A
               "\"\n        ],\n        \"pve1\": [\n          \"" GPU_B "\"\n        ]\n      }"
    ));
    free(after);
    free(before);
}

#define MAP_ADMIN "a40-passthrough\n\tmap node=pve1,path=0000:41:00.0,id=10de:2235\n\n"
/* named like ours, but not our description: an admin's */
#define MAP_LOOKALIKE                                                                              \
    "vgpu-hook-999\n\tdescription mine\n\tmap node=pve1,path=" GPU_B ",id=10de:1b38\n\n"
#define MAP_DESC(vmid)                                                                             \
    "\tdescription vGPU of VM " vmid ", kept by pve-vgpu-hook (detach removes it)\n"
#define MAP_P40(node, bdf) "\tmap node=" node ",path=" bdf ",id=10de:1b38\n"

static struct stat stat_of(struct fakehost *fh, const char *rel) {
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", fh->root, rel);
    assert_int_equal(stat(path, &st), 0);
    return st;
}

/* A VM attached on pve1 through its mapping: pve2's publish adds pve2's line (so Proxmox no
 * longer reports pve2 as missing the mapping), a stale line of pve2 is replaced, a second
 * publish writes nothing, other sections stay byte for byte. */
static void test_publish_keeps_node_lines(void **state) {
    (void)state;
    fh_write(N1, "etc/pve/mapping/pci.cfg", MAP_ADMIN MAP_LOOKALIKE);
    fh_vmconf(N1, 105, "memory: 4096\n");
    assert_int_equal(run_on(N1, NULL, "attach", "105", "--type", "P40-2Q"), 0);
    const char *pve1_only = MAP_ADMIN MAP_LOOKALIKE "vgpu-hook-105\n" MAP_P40("pve1", GPU_A)
        MAP_P40("pve1", GPU_B) MAP_DESC("105") "\tmdev 1\n\n";
    assert_file(N1, "etc/pve/mapping/pci.cfg", pve1_only);
    replicate(N1, N2, "pve2");
    assert_int_equal(run_on(N2, NULL, "publish"), 0);
    const char *both = MAP_ADMIN MAP_LOOKALIKE "vgpu-hook-105\n" MAP_P40("pve1", GPU_A)
        MAP_P40("pve1", GPU_B) MAP_P40("pve2", GPU_A) MAP_DESC("105") "\tmdev 1\n\n";
    assert_file(N2, "etc/pve/mapping/pci.cfg", both);
    assert_int_equal(fh_exists(N2, "etc/pve/priv/lock/file-mapping_pci_cfg"), 0);
    /* nothing changed: no write, not even the lock (pmxcfs replicates both) */
    struct stat st1 = stat_of(N2, "etc/pve/mapping/pci.cfg");
    char *before = fh_snapshot(N2);
    assert_int_equal(run_on(N2, NULL, "publish"), 0);
    assert_int_equal(run_on(N2, NULL, "status"), 0);
    assert_host_unchanged(N2, before);
    struct stat st2 = stat_of(N2, "etc/pve/mapping/pci.cfg");
    assert_int_equal(st1.st_ino, st2.st_ino);
    assert_int_equal(st1.st_mtime, st2.st_mtime);
    /* a line of pve2 for a device it does not have is replaced by what it has */
    fh_write(
        N2, "etc/pve/mapping/pci.cfg",
        MAP_ADMIN MAP_LOOKALIKE "vgpu-hook-105\n" MAP_P40("pve1", GPU_A)
            MAP_P40("pve2", "0000:99:00.0") MAP_P40("pve1", GPU_B) MAP_DESC("105") "\tmdev 1\n\n"
    );
    assert_int_equal(run_on(N2, NULL, "publish"), 0);
    assert_file(
        N2, "etc/pve/mapping/pci.cfg",
        MAP_ADMIN MAP_LOOKALIKE "vgpu-hook-105\n" MAP_P40("pve1", GPU_A) MAP_P40("pve2", GPU_A)
            MAP_P40("pve1", GPU_B) MAP_DESC("105") "\tmdev 1\n\n"
    );
    /* without quorum: said, and the start goes on */
    const char *ro[] = {"FAKE_PMXCFS_RO=1", NULL};
    fh_write(N2, "etc/pve/mapping/pci.cfg", pve1_only);
    assert_int_equal(run_on(N2, ro, "publish"), 1);
    assert_contains(R.err, "cannot keep node pve2's map lines in the vGPU mappings");
    assert_contains(R.err, "read-only without cluster quorum");
    assert_file(N2, "etc/pve/mapping/pci.cfg", pve1_only);
}

/* A running VM converted from the args form: its hostpci line waits in [PENDING] until it
 * stops, and another node's publish already adds that node's lines to its mapping (so its next
 * start, a migration or HA may go there). */
static void test_publish_pending_conversion(void **state) {
    (void)state;
    fh_vmconf(N1, 106, "memory: 4096\n");
    assert_int_equal(fh_qemu_server_version(N1, "8.0.3"), 0);
    assert_int_equal(run_on(N1, NULL, "attach", "106", "--type", "P40-2Q"), 0);
    assert_int_equal(fh_qemu_server_version(N1, "8.3.0"), 0);
    fh_run_vm(N1, 106, 5106);
    assert_int_equal(run_on(N1, NULL, "attach", "106"), 0);
    assert_contains(R.out, "pending until VM 106 is stopped and started");
    char *conf = fh_read(N1, "etc/pve/nodes/pve1/qemu-server/106.conf");
    assert_non_null(conf);
    assert_contains(
        conf, "[PENDING]\ndelete: args\nhostpci0: mapping=vgpu-hook-106,mdev=nvidia-47\n"
    );
    free(conf);
    const char *pve1_only = "vgpu-hook-106\n" MAP_P40("pve1", GPU_A) MAP_P40("pve1", GPU_B)
        MAP_DESC("106") "\tmdev 1\n\n";
    assert_file(N1, "etc/pve/mapping/pci.cfg", pve1_only);
    replicate(N1, N2, "pve2");
    assert_int_equal(run_on(N2, NULL, "publish"), 0);
    assert_file(
        N2, "etc/pve/mapping/pci.cfg",
        "vgpu-hook-106\n" MAP_P40("pve1", GPU_A) MAP_P40("pve1", GPU_B) MAP_P40("pve2", GPU_A)
            MAP_DESC("106") "\tmdev 1\n\n"
    );
}

/* cleanup removes our mappings no VM needs (its VM exists on no node; no record names it and
 * its config does not use it), --dry-run only lists them, an admin's stays. */
static void test_cleanup_stale_mappings(void **state) {
    (void)state;
    const char *ours777 = "vgpu-hook-777\n" MAP_P40("pve1", GPU_B) MAP_DESC("777") "\tmdev 1\n\n";
    const char *ours101 = "vgpu-hook-101\n" MAP_P40("pve1", GPU_B) MAP_DESC("101") "\tmdev 1\n\n";
    char text[2048];
    snprintf(text, sizeof(text), "%s%s%s%s", MAP_ADMIN, ours777, MAP_LOOKALIKE, ours101);
    fh_write(N1, "etc/pve/mapping/pci.cfg", text);
    assert_int_equal(run_on(N1, NULL, "cleanup", "--dry-run"), 0);
    assert_contains(
        R.out, "would remove the stale mapping vgpu-hook-777 (vm-missing): mapping vgpu-hook-777 "
               "of /etc/pve/mapping/pci.cfg belongs to VM 777, which exists on no node"
    );
    assert_contains(R.out, "would remove the stale mapping vgpu-hook-101 (record-missing)");
    assert_file(N1, "etc/pve/mapping/pci.cfg", text);
    assert_int_equal(run_on(N1, NULL, "cleanup", "--json"), 0);
    assert_contains(
        R.out, "\"mapping\": \"vgpu-hook-777\",\n      \"vmid\": 777,\n      \"code\": "
               "\"vm-missing\""
    );
    assert_contains(R.out, "\"result\": \"removed\"");
    assert_file(N1, "etc/pve/mapping/pci.cfg", MAP_ADMIN MAP_LOOKALIKE);
    assert_int_equal(fh_exists(N1, "etc/pve/priv/lock/file-mapping_pci_cfg"), 0);
    assert_int_equal(run_on(N1, NULL, "cleanup", "--dry-run", "--json"), 0);
    assert_contains(R.out, "\"mappings\": [\n  ]");
}

/* Publish node fh's inventory (after a change there) and copy /etc/pve to the other node. */
static void republish(struct fakehost *fh, struct fakehost *to, const char *to_node) {
    assert_int_equal(run_on(fh, NULL, "publish"), 0);
    replicate(fh, to, to_node);
}

/* node's inventory (copy on fh) as a version before "function_ids" wrote it. */
static void publish_as_older(struct fakehost *fh, const char *node) {
    char rel[128], *text, *out, why[256];
    snprintf(rel, sizeof(rel), "etc/pve/nodes/%s/vgpu-hook.json", node);
    assert_non_null(text = fh_read(fh, rel));
    assert_non_null(strstr(text, "\"function_ids\": ["));
    struct node_inv inv;
    assert_int_equal(nodeinv_parse(text, strlen(text), &inv, why, sizeof(why)), 0);
    for (size_t g = 0; g < inv.ngpus; g++) {
        free(inv.gpus[g].idents);
        inv.gpus[g].idents = NULL;
    }
    assert_non_null(out = nodeinv_write(&inv, true));
    assert_null(strstr(out, "function_ids"));
    fh_write(fh, rel, out);
    /* an older version's file parses, its GPUs without ids */
    nodeinv_free(&inv);
    assert_int_equal(nodeinv_parse(out, strlen(out), &inv, why, sizeof(why)), 0);
    assert_null(inv.gpus[0].idents);
    nodeinv_free(&inv);
    free(out);
    free(text);
}

#define MAP_A40(fn)                                                                                \
    "\tmap node=pve2,path=0000:41:00." fn ",id=10de:2235,subsystem-id=10de:145a,iommugroup=4" fn   \
    "\n"

/* VM 102's config once attach gave it A40-2Q through its mapping */
#define CONF_102_MAPPED                                                                            \
    "cores: 2\nhookscript: local:snippets/pve-vgpu-hook\nhostpci0: mapping=vgpu-hook-102,"         \
    "mdev=nvidia-558\n"

/* The ids an A40's VFs have (the fixture gives them only a vendor and a device). */
static void a40_vf_ids(struct fakehost *fh) {
    char rel[128], path[PATH_MAX], target[64];
    for (unsigned fn = 4; fn < 8; fn++) {
        snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/0000:41:00.%u/device", fn);
        fh_write(fh, rel, "0x2235\n");
        snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/0000:41:00.%u/subsystem_vendor", fn);
        fh_write(fh, rel, "0x10de\n");
        snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/0000:41:00.%u/subsystem_device", fn);
        fh_write(fh, rel, "0x145a\n");
        snprintf(
            path, sizeof(path), "%s/sys/devices/pci0000:00/0000:41:00.%u/iommu_group", fh->root, fn
        );
        snprintf(target, sizeof(target), "../../../kernel/iommu_groups/4%u", fn);
        assert_int_equal(symlink(target, path), 0);
    }
}

/* pve1's pci.cfg copied to pve2: pve2 keeps its own lines from then on, and they are the same,
 * so its publish writes nothing, not even the lock. */
static void pve2_publish_keeps(const char *want) {
    replicate(N1, N2, "pve2");
    struct stat st1 = stat_of(N2, "etc/pve/mapping/pci.cfg");
    assert_int_equal(run_on(N2, NULL, "publish"), 0);
    assert_file(N2, "etc/pve/mapping/pci.cfg", want);
    struct stat st2 = stat_of(N2, "etc/pve/mapping/pci.cfg");
    assert_int_equal(st1.st_ino, st2.st_ino);
    assert_int_equal(fh_exists(N2, "etc/pve/priv/lock/file-mapping_pci_cfg"), 0);
}

/* A type only pve2 offers (an SR-IOV A40): attach on pve1 writes the mapping form with pve2's
 * lines as pve2 published them; pve2's own publish then leaves pci.cfg as it is, byte for
 * byte and not even rewritten; pve1 still refuses to start it (no GPU there offers it). */
static void test_attach_type_elsewhere_mapping(void **state) {
    (void)state;
    assert_int_equal(fh_add_a40_sriov(N2, "0000:41:00.0", 4), 0);
    a40_vf_ids(N2);
    republish(N2, N1, "pve1");
    fh_vmconf(N1, 102, "cores: 2\n");
    assert_int_equal(run_on(N1, NULL, "attach", "102", "--type", "A40-2Q"), 0);
    assert_contains(R.err, "no GPU on node pve1 offers A40-2Q; pve2 offers it");
    assert_contains(
        R.out, "mapping vgpu-hook-102 lists 4 mdev parents of node pve2 (as it "
               "published them)"
    );
    assert_contains(
        R.out, "VM 102: attached A40-2Q (nvidia-558) through resource mapping vgpu-hook-102 in "
               "hostpci0; each start creates mdev 00000000-0000-0000-0000-000000000102 on any GPU "
               "offering it (GPUs of pve2 as published; node pve1 has none)"
    );
    const char *want = "vgpu-hook-102\n" MAP_A40("4") MAP_A40("5") MAP_A40("6") MAP_A40("7")
        MAP_DESC("102") "\tmdev 1\n\n";
    assert_file(N1, "etc/pve/mapping/pci.cfg", want);
    assert_file(N1, "etc/pve/nodes/pve1/qemu-server/102.conf", CONF_102_MAPPED);
    pve2_publish_keeps(want);
    /* pve1 still cannot start it */
    char *before = fh_snapshot(N1);
    assert_int_equal(run_on(N1, NULL, "102", "pre-start"), 1);
    assert_contains(R.err, "no GPU on node pve1 can take A40-2Q (nvidia-558) now");
    assert_host_unchanged(N1, before);
}

/* A type id another node published that is no sysfs type id (a blank: no mdev type has one)
 * never reaches a VM config: that node's inventory is refused, so attach finds no node offering
 * the type and changes nothing. */
static void test_attach_refuses_published_bad_type_id(void **state) {
    (void)state;
    assert_int_equal(fh_add_a40_sriov(N2, "0000:41:00.0", 4), 0);
    a40_vf_ids(N2);
    republish(N2, N1, "pve1");
    char *text = fh_read(N1, "etc/pve/nodes/pve2/vgpu-hook.json"), *at;
    assert_non_null(text);
    assert_non_null(at = strstr(text, "\"id\": \"nvidia-558\""));
    at[strlen("\"id\": \"nvidia")] = ' ';
    fh_write(N1, "etc/pve/nodes/pve2/vgpu-hook.json", text);
    free(text);
    fh_vmconf(N1, 102, "cores: 2\n");
    fh_write(N1, "var/lock/qemu-server/lock-102.conf", ""); /* Proxmox's VM lock, left as is */
    char *before = fh_snapshot(N1);
    assert_int_equal(run_on(N1, NULL, "attach", "102", "--type", "A40-2Q"), 1);
    assert_contains(R.err, "no GPU on node pve1 offers type 'A40-2Q'");
    assert_host_unchanged(N1, before);
    assert_int_equal(run_on(N1, NULL, "status", "--cluster"), 0);
    assert_contains(R.out, "gpus[1].types[");
    assert_contains(R.out, "].id is not a type id");
}

/* attach --live-migration needs the mapping form: a type only another node offers gets the
 * args form here when that node published no PCI ids (an older version there), so it is
 * refused, changing nothing; without --live-migration the message says why the args form. */
static void test_live_migration_args_form(void **state) {
    (void)state;
    assert_int_equal(fh_add_a40_sriov(N2, "0000:41:00.0", 4), 0);
    assert_int_equal(run_on(N2, NULL, "publish"), 0);
    publish_as_older(N2, "pve2");
    replicate(N2, N1, "pve1");
    assert_int_equal(fh_qemu_server_version(N1, "9.2.6"), 0);
    fh_vmconf(N1, 102, "cores: 2\n");
    fh_write(N1, "var/lock/qemu-server/lock-102.conf", ""); /* Proxmox's VM lock, left as is */
    char *before = fh_snapshot(N1);
    assert_int_equal(
        run_on(N1, NULL, "attach", "102", "--type", "A40-2Q", "--live-migration", "--json"), 1
    );
    assert_contains(R.out, "\"code\": \"args-form\"");
    assert_contains(R.out, "live migration needs the mapping form, qemu-server 8.0.4 and later");
    assert_contains(
        R.out, "passes the vGPU through args (pve2 published no PCI ids of its GPUs (an older "
               "pve-vgpu-hook there)"
    );
    assert_contains(R.out, "nothing was changed");
    assert_host_unchanged(N1, before);
    /* without it: the args form, and why */
    assert_int_equal(run_on(N1, NULL, "attach", "102", "--type", "A40-2Q"), 0);
    assert_contains(
        R.out, "VM 102: attached A40-2Q as mdev 00000000-0000-0000-0000-000000000102; each start "
               "places it on any GPU offering it (node pve1); the args form, not a resource "
               "mapping: pve2 published no PCI ids of its GPUs (an older pve-vgpu-hook there), "
               "and a mapping needs them; attach again once it has published with this version"
    );
    assert_int_equal(fh_exists(N1, "etc/pve/mapping/pci.cfg"), 0);
    char *conf = fh_read(N1, "etc/pve/nodes/pve1/qemu-server/102.conf");
    assert_non_null(strstr(conf, "args: -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/"));
    assert_null(strstr(conf, "hostpci"));
    free(conf);
    /* pve2 updated publishes its ids: attach again converts the VM to the mapping form */
    assert_int_equal(run_on(N2, NULL, "publish"), 0);
    char *inv = fh_read(N2, "etc/pve/nodes/pve2/vgpu-hook.json");
    fh_write(N1, "etc/pve/nodes/pve2/vgpu-hook.json", inv);
    free(inv);
    assert_int_equal(run_on(N1, NULL, "attach", "102"), 0);
    assert_contains(R.out, "VM 102: converted from args to a resource mapping");
    assert_file(N1, "etc/pve/nodes/pve1/qemu-server/102.conf", CONF_102_MAPPED);
}

#define MAP_L40S(bus, fn)                                                                          \
    "\tmap node=pve2,path=0000:" bus ":00." fn                                                     \
    ",id=10de:26b9,subsystem-id=10de:1851,iommugroup=4" fn "\n"

/* pve2: two L40S on NVIDIA's vendor interface, two VFs each; VF 81:00.4 holds L40S-2Q (a VM
 * that stopped), so placement (pack) lists GPU 81 first. Published, and copied to pve1. */
static void vendor_gpus_on_pve2(void) {
    assert_int_equal(
        fh_add_nvidia_iface(N2, "0000:41:00.0", 2, "1 : NVIDIA L40S-2Q\n2 : NVIDIA L40S-4Q\n"), 0
    );
    assert_int_equal(
        fh_add_nvidia_iface(N2, "0000:81:00.0", 2, "1 : NVIDIA L40S-2Q\n2 : NVIDIA L40S-4Q\n"), 0
    );
    fh_write(N2, "sys/devices/pci0000:00/0000:81:00.4/nvidia/current_vgpu_type", "1\n");
    republish(N2, N1, "pve1");
}

/* A type only pve2 offers, on NVIDIA's vendor interface: attach on pve1 writes the mapping
 * form with pve2's VFs as pve2's own attach would list them (placement order, the ids it
 * published); pve2's publish then leaves pci.cfg as it is, not even rewritten. */
static void test_attach_vendor_elsewhere_mapping(void **state) {
    (void)state;
    vendor_gpus_on_pve2();
    fh_vmconf(N1, 106, "cores: 2\n");
    assert_int_equal(run_on(N1, NULL, "attach", "106", "--type", "L40S-2Q"), 0);
    assert_contains(
        R.err, "no GPU on node pve1 offers L40S-2Q; pve2 offers it on NVIDIA's vendor interface"
    );
    assert_contains(R.out, "mapping vgpu-hook-106 lists 4 VFs of node pve2 (as it published them)");
    assert_contains(
        R.out, "VM 106: attached L40S-2Q (nvidia-1) through resource mapping vgpu-hook-106 in "
               "hostpci0; each start lists the VFs of every GPU offering it (GPUs of pve2 as "
               "published; node pve1 has none) in placement order, and Proxmox takes the first "
               "that can"
    );
    const char *want = "vgpu-hook-106\n" MAP_L40S("81", "4") MAP_L40S("81", "5") MAP_L40S("41", "4")
        MAP_L40S("41", "5") MAP_DESC("106") "\tmdev 1\n\n";
    assert_file(N1, "etc/pve/mapping/pci.cfg", want);
    assert_file(
        N1, "etc/pve/nodes/pve1/qemu-server/106.conf",
        "cores: 2\nhookscript: local:snippets/pve-vgpu-hook\nhostpci0: mapping=vgpu-hook-106,"
        "mdev=nvidia-1\n"
    );
    pve2_publish_keeps(want);
}

/* --gpu pve2:VF names that VF's GPU, on pve1 as on pve2: attach lists the GPU's VFs, and
 * pve2's publish and pre-start read its list the same way (no other GPU, none dropped). */
static void test_attach_vendor_elsewhere_gpu_vf(void **state) {
    (void)state;
    vendor_gpus_on_pve2();
    fh_vmconf(N1, 106, "cores: 2\n");
    assert_int_equal(
        run_on(N1, NULL, "attach", "106", "--type", "L40S-2Q", "--gpu", "pve2:0000:41:00.5"), 0
    );
    const char *want =
        "vgpu-hook-106\n" MAP_L40S("41", "4") MAP_L40S("41", "5") MAP_DESC("106") "\tmdev 1\n\n";
    assert_file(N1, "etc/pve/mapping/pci.cfg", want);
    pve2_publish_keeps(want);
    /* the VM moved to pve2 (offline): its start lists the same VFs */
    char *conf = fh_read(N2, "etc/pve/nodes/pve1/qemu-server/106.conf");
    assert_non_null(conf);
    assert_int_equal(fh_write(N2, "etc/pve/nodes/pve2/qemu-server/106.conf", conf), 0);
    free(conf);
    assert_int_equal(run_on(N2, NULL, "106", "pre-start"), 0);
    assert_file(N2, "etc/pve/mapping/pci.cfg", want);
}

/* The same when pve2 runs a version that published no PCI ids: no args form exists on the
 * vendor interface, so attach refuses, says why and what to do, and changes nothing. */
static void test_attach_vendor_elsewhere_older(void **state) {
    (void)state;
    vendor_gpus_on_pve2();
    publish_as_older(N1, "pve2");
    fh_vmconf(N1, 106, "cores: 2\n");
    fh_write(N1, "var/lock/qemu-server/lock-106.conf", ""); /* Proxmox's VM lock, left as is */
    char *before = fh_snapshot(N1);
    assert_int_equal(run_on(N1, NULL, "attach", "106", "--type", "L40S-2Q", "--json"), 1);
    assert_contains(R.out, "\"code\": \"no-function-ids\"");
    assert_contains(
        R.out, "cannot attach L40S-2Q to VM 106: no GPU on node pve1 offers it, and pve2, which "
               "offers it on NVIDIA's vendor interface, published no PCI ids of its VFs (an older "
               "pve-vgpu-hook there); the VM's resource mapping needs them"
    );
    assert_contains(
        R.out, "upgrade pve-vgpu-hook on pve2 and let it publish ('pve-vgpu-hook publish' there, "
               "or wait for its timer), then attach again; or attach on that node; nothing was "
               "changed"
    );
    assert_host_unchanged(N1, before);
}

/* where --migrate: per node, would a live migration of the VM work, each failing condition a
 * code: the VM's own node, a mapping without the node, different drivers, a mapping without
 * the flag, qemu-server before 8.3.9 there, no room there; exit 0 once one node can. */
static void test_where_migrate(void **state) {
    (void)state;
    fh_write(N1, "sys/module/nvidia/version", "550.90.05\n");
    fh_write(N2, "sys/module/nvidia/version", "550.90.05\n");
    fh_vmconf(N1, 103, "memory: 4096\n");
    assert_int_equal(run_on(N1, NULL, "attach", "103", "--type", "P40-2Q"), 0);
    /* pve2 published before the attach: the mapping has no line of it yet */
    assert_int_equal(run_on(N1, NULL, "where", "103", "--migrate"), 1);
    assert_contains(R.out, "Live migration of VM 103 from pve1:\n");
    assert_contains(R.out, "pve1: no (current-node): the VM is on this node\n");
    assert_contains(
        R.out, "pve2: no (not-mapped): hostpci0: PCI mapping 'vgpu-hook-103' has no device for "
               "node 'pve2'"
    );
    /* pve2's publish puts its line into the mapping */
    republish(N1, N2, "pve2");
    republish(N2, N1, "pve1");
    char *map = fh_read(N1, "etc/pve/mapping/pci.cfg");
    assert_non_null(strstr(map, "\tmap node=pve2,path=" GPU_A ",id=10de:1b38\n"));
    free(map);
    assert_int_equal(run_on(N1, NULL, "where", "103", "--migrate"), 1);
    assert_contains(R.out, "pve2: no (not-live-capable): mapping vgpu-hook-103 is not marked");
    fh_write(N2, "sys/module/nvidia/version", "550.127.06\n");
    republish(N2, N1, "pve1");
    assert_int_equal(run_on(N1, NULL, "where", "103", "--migrate"), 1);
    assert_contains(
        R.out, "pve2: no (driver-mismatch): NVIDIA driver 550.127.06 there, 550.90.05 on pve1"
    );
    fh_write(N2, "sys/module/nvidia/version", "550.90.05\n");
    republish(N2, N1, "pve1");
    assert_int_equal(fh_qemu_server_version(N1, "8.3.9"), 0);
    assert_int_equal(run_on(N1, NULL, "attach", "103", "--live-migration"), 0);
    replicate(N1, N2, "pve2");
    assert_int_equal(run_on(N1, NULL, "where", "103", "--migrate"), 1);
    assert_contains(R.out, "pve2: no (qemu-server-old): there qemu-server 8.3.0 cannot");
    assert_int_equal(fh_qemu_server_version(N2, "8.3.9"), 0);
    republish(N2, N1, "pve1");
    assert_int_equal(run_on(N1, NULL, "where", "103", "--migrate", "--json"), 0);
    assert_contains(R.out, "\"node\": \"pve1\",\n  \"migrate\": true");
    assert_contains(
        R.out, "\"node\": \"pve2\",\n      \"can_start\": true,\n      \"code\": \"ok\""
    );
    assert_contains(R.out, "\"type\": \"nvidia-47\"");
    /* pve2's GPU taken whole by another VM: no room */
    assert_int_equal(
        fh_add_mdev(N2, GPU_A, "nvidia-53", "00000000-0000-0000-0000-000000000150"), 0
    );
    fh_run_vm(N2, 150, 8150);
    republish(N2, N1, "pve1");
    assert_int_equal(run_on(N1, NULL, "where", "103", "--migrate"), 1);
    assert_contains(R.out, "pve2: no (no-room): cannot place nvidia-47");
}

/* The sysfs type of the mdev uuid under parent bdf on fh ("" when there is none). */
static void mdev_type_of(struct fakehost *fh, const char *bdf, const char *uuid, char *out) {
    char path[PATH_MAX], target[PATH_MAX];
    snprintf(path, sizeof(path), "%s/sys/devices/pci0000:00/%s/%s/mdev_type", fh->root, bdf, uuid);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    target[n > 0 ? n : 0] = '\0';
    strcpy(out, n > 0 ? strrchr(target, '/') + 1 : "");
}

/* pre-start on a live migration's target (PVE_MIGRATED_FROM): the type the VM's hostpci names
 * (never the settings' friendly name resolved again), or a refusal with the reason: the
 * mapping has no line for this node, no room, the type not offered here; check says the same. */
static void test_migration_target_mapping(void **state) {
    (void)state;
    const char *mig[] = {"PVE_MIGRATED_FROM=pve1", NULL};
    char type[64];
    fh_vmconf(N1, 103, "memory: 4096\n");
    assert_int_equal(run_on(N1, NULL, "attach", "103", "--type", "P40-2Q"), 0);
    replicate(N1, N2, "pve2");
    char *before = fh_snapshot(N2);
    assert_int_equal(run_on(N2, mig, "103", "pre-start"), 1);
    assert_contains(
        R.err, "VM 103 is live-migrating from pve1 with vGPU type nvidia-47, and node pve2 cannot "
               "take it: PCI mapping 'vgpu-hook-103' has no device for node 'pve2'"
    );
    assert_contains(R.err, "the migration fails and VM 103 keeps running on pve1");
    assert_host_unchanged(N2, before);
    assert_int_equal(run_on(N2, mig, "check", "103"), 1);
    assert_contains(R.out, "has no device for node 'pve2'");
    /* pve2's line; the VM's hostpci says nvidia-46 (its settings still say P40-2Q) */
    char *map = fh_read(N2, "etc/pve/mapping/pci.cfg"), *at = strstr(map, "\tmdev 1\n");
    char text[4096];
    snprintf(
        text, sizeof(text), "%.*s\tmap node=pve2,path=" GPU_A ",id=10de:1b38\n%s", (int)(at - map),
        map, at
    );
    free(map);
    fh_write(N2, "etc/pve/mapping/pci.cfg", text);
    fh_write(
        N2, "etc/pve/nodes/pve1/qemu-server/103.conf",
        "hookscript: local:snippets/pve-vgpu-hook\n"
        "hostpci0: mapping=vgpu-hook-103,mdev=nvidia-46\nmemory: 4096\n"
    );
    assert_int_equal(run_on(N2, mig, "check", "103"), 0);
    assert_int_equal(run_on(N2, mig, "103", "pre-start"), 0);
    mdev_type_of(N2, GPU_A, "00000000-0000-0000-0000-000000000103", type);
    assert_string_equal(type, "nvidia-46");
    assert_int_equal(run_on(N2, NULL, "103", "post-stop"), 0);
    /* a type this node does not offer */
    fh_write(
        N2, "etc/pve/nodes/pve1/qemu-server/103.conf",
        "hookscript: local:snippets/pve-vgpu-hook\n"
        "hostpci0: mapping=vgpu-hook-103,mdev=nvidia-558\nmemory: 4096\n"
    );
    assert_int_equal(run_on(N2, mig, "103", "pre-start"), 1);
    assert_contains(
        R.err, "VM 103 is live-migrating from pve1 with vGPU type nvidia-558, and node "
               "pve2 cannot take it: no GPU on node pve2 can take"
    );
    /* no room: pve2's GPU taken whole by another VM */
    fh_write(
        N2, "etc/pve/nodes/pve1/qemu-server/103.conf",
        "hookscript: local:snippets/pve-vgpu-hook\n"
        "hostpci0: mapping=vgpu-hook-103,mdev=nvidia-47\nmemory: 4096\n"
    );
    assert_int_equal(
        fh_add_mdev(N2, GPU_A, "nvidia-53", "00000000-0000-0000-0000-000000000150"), 0
    );
    fh_run_vm(N2, 150, 8150);
    assert_int_equal(run_on(N2, mig, "103", "pre-start"), 1);
    assert_contains(
        R.err, "VM 103 is live-migrating from pve1 with vGPU type nvidia-47, and node "
               "pve2 cannot take it: cannot place nvidia-47 for the managed vGPU"
    );
    assert_int_equal(run_on(N2, mig, "check", "103"), 1);
    assert_contains(R.out, "cannot place nvidia-47 for the managed vGPU");
}

/* doctor flags an HA vGPU VM that HA may move where its start is refused (no ha-sync rule yet),
 * and no longer once ha-sync keeps it. */
static void test_doctor_flags_ha(void **state) {
    (void)state;
    ha_cluster("5.2.0", ADMIN_RULE);
    char *rules = fh_read(N1, "etc/pve/ha/rules.cfg");
    assert_int_equal(run_on(N1, NULL, "doctor"), 1);
    assert_contains(
        R.out, "HA may recover or relocate VM 100 to a node that cannot start its vGPU: rule "
               "vgpu-hook-100 in /etc/pve/ha/rules.cfg is missing (nodes that can: pve1,pve2)"
    );
    assert_contains(R.out, "pve-vgpu-hook ha-sync");
    assert_file(N1, "etc/pve/ha/rules.cfg", rules); /* doctor writes nothing */
    assert_int_equal(fh_exists(N1, "etc/pve/priv/lock/domain-ha"), 0);
    free(rules);
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 0);
    assert_int_equal(run_on(N1, NULL, "doctor", "--json"), 1);
    assert_not_contains(R.out, "\"ha-nodes\"");
}

/* status --cluster lists, after the nodes, the HA vGPU VMs HA may move where they cannot start,
 * as doctor does; nothing without HA or once ha-sync keeps them. */
static void test_status_cluster_flags_ha(void **state) {
    (void)state;
    assert_int_equal(run_on(N1, NULL, "status", "--cluster", "--json"), 0);
    assert_contains(R.out, "\"ha\": [\n  ],"); /* no pve-ha-manager: no HA */
    assert_contains(R.out, "\"ha_unknown\": null,");
    /* no pve-ha-manager: nothing about HA to tell, even when our settings are unusable */
    char *settings = fh_read(N1, "etc/pve/vgpu-hook.json"), path[PATH_MAX];
    fh_write(N1, "etc/pve/vgpu-hook.json", "{");
    assert_int_equal(run_on(N1, NULL, "status", "--cluster", "--json"), 0);
    assert_contains(R.out, "\"ha_unknown\": null,");
    run_on(N1, NULL, "doctor");
    assert_not_contains(R.out, "ha-unknown");
    assert_not_contains(R.out, "cannot tell whether HA");
    if (settings) {
        fh_write(N1, "etc/pve/vgpu-hook.json", settings);
        free(settings);
    } else {
        snprintf(path, sizeof(path), "%s/etc/pve/vgpu-hook.json", N1->root);
        assert_int_equal(unlink(path), 0);
    }
    ha_cluster("5.2.0", ADMIN_RULE);
    fh_vmconf(N1, 101, "hostpci0: " GPU_A ",mdev=nvidia-11\n"); /* a type no P40 offers */
    assert_int_equal(run_on(N1, NULL, "status", "--cluster"), 0);
    assert_contains(
        R.out, "HA vGPU VMs that HA may move where they cannot start:\n  VM 100 (ha-nodes): HA "
               "may recover or relocate VM 100 to a node that cannot start its vGPU: rule "
               "vgpu-hook-100 in /etc/pve/ha/rules.cfg is missing (nodes that can: pve1,pve2)\n"
               "    fix: pve-vgpu-hook ha-sync"
    );
    assert_contains(R.out, "  VM 101 (ha-no-node): no node can start VM 101's nvidia-11 vGPU");
    assert_contains(R.out, "    fix: pve-vgpu-hook where 101 says why each node cannot\n");
    assert_int_equal(run_on(N1, NULL, "status", "--cluster", "--json"), 0);
    assert_contains(R.out, "\"code\": \"ha-nodes\"");
    assert_contains(R.out, "\"nodes\": [\n        \"pve1\",\n        \"pve2\"\n      ],");
    assert_contains(R.out, "\"code\": \"ha-no-node\"");
    assert_file(N1, "etc/pve/ha/rules.cfg", ADMIN_RULE); /* status writes nothing */
    assert_int_equal(fh_exists(N1, "etc/pve/priv/lock/domain-ha"), 0);
    assert_int_equal(run_on(N1, NULL, "ha-sync"), 1); /* VM 101 skipped: no node */
    assert_int_equal(run_on(N1, NULL, "status", "--cluster"), 0);
    assert_not_contains(R.out, "VM 100 (ha-nodes)");
    assert_contains(R.out, "VM 101 (ha-no-node)");
    /* HA runs but ha-sync cannot tell (our settings unusable): said, not an empty list */
    fh_write(N1, "etc/pve/vgpu-hook.json", "{");
    assert_int_equal(run_on(N1, NULL, "status", "--cluster", "--json"), 0);
    assert_contains(R.out, "\"ha\": [\n  ],\n  \"ha_unknown\": {\n    \"code\": \"ha-unknown\"");
    assert_int_equal(run_on(N1, NULL, "doctor"), 1);
    assert_contains(
        R.out, "cannot tell whether HA may move vGPU VMs to nodes that cannot start them: "
    );
    assert_contains(R.out, "pve-vgpu-hook ha-sync --dry-run says why");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_migration_target_mapping, setup, teardown),
    cmocka_unit_test_setup_teardown(test_where_migrate, setup, teardown),
    cmocka_unit_test_setup_teardown(test_live_migration_args_form, setup, teardown),
    cmocka_unit_test_setup_teardown(test_attach_type_elsewhere_mapping, setup, teardown),
    cmocka_unit_test_setup_teardown(test_attach_refuses_published_bad_type_id, setup, teardown),
    cmocka_unit_test_setup_teardown(test_attach_vendor_elsewhere_mapping, setup, teardown),
    cmocka_unit_test_setup_teardown(test_attach_vendor_elsewhere_older, setup, teardown),
    cmocka_unit_test_setup_teardown(test_attach_vendor_elsewhere_gpu_vf, setup, teardown),
    cmocka_unit_test_setup_teardown(test_status_cluster, setup, teardown),
    cmocka_unit_test_setup_teardown(test_inventory_function_ids, setup, teardown),
    cmocka_unit_test_setup_teardown(test_where_agrees_with_check, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stale_and_offline, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unchanged_status_writes_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_quorum_still_starts, setup, teardown),
    cmocka_unit_test_setup_teardown(test_invalid_node_names, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ha_sync_rules, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ha_sync_stale_node_kept, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ha_sync_own_node_kept, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ha_sync_others_left_alone, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ha_sync_groups, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ha_sync_migrated_groups, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ha_sync_lock_and_quorum, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ha_rules_setting, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ha_sync_form_follows_migration, setup, teardown),
    cmocka_unit_test_setup_teardown(test_attach_knows_cluster, setup, teardown),
    cmocka_unit_test_setup_teardown(test_publish_keeps_node_lines, setup, teardown),
    cmocka_unit_test_setup_teardown(test_publish_pending_conversion, setup, teardown),
    cmocka_unit_test_setup_teardown(test_cleanup_stale_mappings, setup, teardown),
    cmocka_unit_test_setup_teardown(test_doctor_flags_ha, setup, teardown),
    cmocka_unit_test_setup_teardown(test_status_cluster_flags_ha, setup, teardown),
};

int main(void) {
    return cmocka_run_group_tests(tests, NULL, NULL);
}
