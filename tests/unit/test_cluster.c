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

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_status_cluster, setup, teardown),
    cmocka_unit_test_setup_teardown(test_where_agrees_with_check, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stale_and_offline, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unchanged_status_writes_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_quorum_still_starts, setup, teardown),
    cmocka_unit_test_setup_teardown(test_invalid_node_names, setup, teardown),
};

int main(void) {
    return cmocka_run_group_tests(tests, NULL, NULL);
}
