/*
 * Read once: a run gathers the host and each Proxmox file once, however many GPUs, types or
 * VMs ask (DESIGN.md, Architecture). The real binary on fake hosts, with the fake kernel's
 * FAKE_OPEN_LOG naming every file a run opens; and what the run says stays the same.
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
static char LOG[PATH_MAX], LOG_ENV[PATH_MAX + 16];

static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create_p40_pair(FH), 0);
    snprintf(LOG, sizeof(LOG), "%s.opens", FH->root);
    snprintf(LOG_ENV, sizeof(LOG_ENV), "FAKE_OPEN_LOG=%s", LOG);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(LOG);
    fh_destroy(FH);
    return 0;
}

/* Run the binary with args, counting the opens of path (as hostfs names it). */
static int opens_of(const char *path, const char *const *args) {
    unlink(LOG);
    const char *env[] = {LOG_ENV, NULL};
    fh_runv(FH, &R, env, args);
    FILE *f = fopen(LOG, "r");
    int n = 0;
    char line[PATH_MAX + 2];
    while (f && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        n += !strcmp(line, path);
    }
    if (f) {
        fclose(f);
    }
    return n;
}

/* types publishes this node's inventory on the way: one read of the host serves both (before,
 * every type file of every GPU was read twice). */
static void test_types_reads_each_type_once(void **state) {
    (void)state;
    /* each GPU's types are read relative to its mdev_supported_types: one open per GPU */
    const char *types[] = {"types", NULL};
    assert_int_equal(opens_of("nvidia-46/description", types), 2);
    assert_int_equal(R.status, 0);
    assert_contains(R.out, "nvidia-46    GRID P40-1Q");
    assert_int_equal(fh_exists(FH, "etc/pve/nodes/pve1/vgpu-hook.json"), 1);
    assert_int_equal(opens_of("nvidia-46/available_instances", types), 2);
    const char *json[] = {"types", "--json", NULL};
    assert_int_equal(opens_of("nvidia-46/description", json), 2);
    assert_int_equal(R.status, 0);
}

/* status checks every vGPU VM's hookscript against storage.cfg: one read for all of them, and
 * each VM still judged by its own hookscript. */
static void test_status_reads_storage_cfg_once(void **state) {
    (void)state;
    assert_int_equal(fh_install_hookscript(FH), 0);
    fh_vmconf(FH, 100, FH_HOOKSCRIPT "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    fh_vmconf(FH, 101, "hookscript: nosuch:snippets/x\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    fh_vmconf(FH, 102, "hookscript: local:snippets/gone\nhostpci0: 0000:07:00.0,mdev=nvidia-46\n");
    fh_vmconf(FH, 103, FH_HOOKSCRIPT "hostpci0: 0000:07:00.0,mdev=nvidia-47\n");
    const char *status[] = {"status", NULL};
    assert_int_equal(opens_of("etc/pve/storage.cfg", status), 1);
    assert_int_equal(R.status, 0);
    assert_contains(
        R.out, "VM 101's hookscript nosuch:snippets/x cannot run (no storage 'nosuch' with a "
               "directory in /etc/pve/storage.cfg)"
    );
    assert_contains(
        R.out, "VM 102's hookscript local:snippets/gone cannot run "
               "(/var/lib/vz/snippets/gone: No such file or directory)"
    );
    assert_not_contains(R.out, "VM 100's hookscript");
    assert_not_contains(R.out, "VM 103's hookscript");
    const char *doctor[] = {"doctor", NULL};
    assert_int_equal(opens_of("etc/pve/storage.cfg", doctor), 1);
    assert_contains(R.out, "VM 102");
}

/* status --cluster asks ha-sync (a dry run) which HA vGPU VMs HA may move where they cannot
 * start: over the cluster view status read, not a second reading of every node's inventory. */
static void test_status_cluster_reads_inventories_once(void **state) {
    (void)state;
    fh_write(
        FH, "var/lib/dpkg/status",
        "Package: qemu-server\nStatus: install ok installed\nVersion: 8.3.0\n\n"
        "Package: pve-ha-manager\nStatus: install ok installed\nVersion: 5.2.0\n\n"
    );
    fh_vmconf(FH, 100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    fh_write(FH, "etc/pve/ha/resources.cfg", "vm: 100\n\tstate started\n\n");
    const char *publish[] = {"publish", NULL};
    fh_runv(FH, &R, NULL, publish);
    assert_int_equal(R.status, 0);
    const char *status[] = {"status", "--cluster", NULL};
    assert_int_equal(opens_of("etc/pve/nodes/pve1/vgpu-hook.json", status), 1);
    assert_int_equal(R.status, 0);
    assert_contains(R.out, "VM 100 (ha-nodes): HA may recover or relocate VM 100");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_types_reads_each_type_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_reads_storage_cfg_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_status_cluster_reads_inventories_once, setup, teardown
        ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
