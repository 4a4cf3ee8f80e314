/* vmconf: VM configs found where Proxmox keeps them, node names checked before they are paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "hostfs.h"
#include "vmconf.h"

#include <errno.h>
#include <stdlib.h>

static void test_paths(void **state) {
    (void)state;
    char buf[128];
    assert_int_equal(vmconf_path(NULL, 100, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/etc/pve/qemu-server/100.conf");
    assert_int_equal(vmconf_path("pve2", 100, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/etc/pve/nodes/pve2/qemu-server/100.conf");
    static const char *const bad[] = {"..", "a/b", "", "a b", "x\n", "-pve"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(vmconf_path(bad[i], 100, buf, sizeof(buf)), -EINVAL);
    }
    assert_true(vmconf_path(NULL, 100, buf, 10) < 0); /* refused, never truncated */
}

static void test_find_and_list(void **state) {
    (void)state;
    struct fakehost fh;
    assert_int_equal(fh_create(&fh), 0);
    assert_int_equal(fh_write(&fh, "etc/pve/qemu-server/100.conf", "cores: 2\n"), 0);
    assert_int_equal(fh_write(&fh, "etc/pve/qemu-server/150.conf", "cores: 1\n"), 0);
    assert_int_equal(fh_write(&fh, "etc/pve/qemu-server/1000.conf", "cores: 4\n"), 0);
    assert_int_equal(fh_write(&fh, "etc/pve/qemu-server/notes.txt", "x\n"), 0);
    assert_int_equal(fh_write(&fh, "etc/pve/nodes/pve2/qemu-server/250.conf", "cores: 8\n"), 0);
    assert_int_equal(fh_write(&fh, "etc/pve/nodes/a b/qemu-server/300.conf", "cores: 8\n"), 0);
    struct hostfs fs;
    assert_int_equal(hostfs_open(&fs, fh.root), 0);

    unsigned long *ids = NULL;
    size_t n = 0;
    assert_int_equal(vmconf_list(&fs, &ids, &n), 0);
    assert_int_equal(n, 3); /* VMID order, as qm list shows them; other files ignored */
    assert_int_equal(ids[0], 100);
    assert_int_equal(ids[1], 150);
    assert_int_equal(ids[2], 1000);
    free(ids);

    struct pveconf conf;
    char node[64];
    assert_int_equal(vmconf_find(&fs, 100, &conf, node, sizeof(node)), 0);
    assert_string_equal(node, "");
    assert_string_equal(pveconf_get(&conf, "cores"), "2");
    pveconf_free(&conf);
    assert_int_equal(vmconf_find(&fs, 250, &conf, node, sizeof(node)), 0);
    assert_string_equal(node, "pve2");
    assert_string_equal(pveconf_get(&conf, "cores"), "8");
    pveconf_free(&conf);
    /* a directory whose name no Proxmox node can have is never read */
    assert_int_equal(vmconf_find(&fs, 300, &conf, node, sizeof(node)), -ENOENT);
    assert_int_equal(vmconf_find(&fs, 301, &conf, NULL, 0), -ENOENT);
    assert_int_equal(vmconf_load(&fs, "pve2", 100, &conf), -ENOENT);
    hostfs_close(&fs);
    fh_destroy(&fh);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_find_and_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
