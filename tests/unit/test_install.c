/* Living with other hookscripts: `setup` on Proxmox storages, and chained hooks in hooks.d. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct fakehost FH;
static struct fh_result R;

static const char *STORAGE_CFG = "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\n"
                                 "dir: snip\n\tpath /srv/snip\n\tcontent snippets\n\tshared 0\n\n"
                                 "cifs: smb\n\tpath /mnt/pve/smb\n\tserver 10.0.0.9\n"
                                 "\tshare pve\n\tcontent snippets,iso\n\n"
                                 "lvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n"
                                 "\tcontent rootdir,images\n";

static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create(&FH), 0);
    assert_int_equal(fh_add_p40(&FH, "0000:06:00.0"), 0);
    fh_write(&FH, "etc/pve/storage.cfg", STORAGE_CFG);
    fh_write(&FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0}\n");
    fh_write(&FH, "var/lib/vz/.keep", "");
    fh_write(&FH, "srv/snip/.keep", "");
    fh_write(&FH, "mnt/pve/smb/.keep", "");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(&FH);
    return 0;
}

/* The snippet setup writes on storage snip. */
static const char *link_path(struct fakehost *fh) {
    static char path[4200];
    snprintf(path, sizeof(path), "%s/srv/snip/snippets/pve-vgpu-hook", fh->root);
    return path;
}

static void test_setup(void **state) {
    (void)state;
    fh_vmconf(&FH, 100, "cores: 1\nhookscript: local:snippets/gpu-fan.pl\n");
    /* the snippet runs the installed binary: without one, refused, nothing written */
    char *before = fh_snapshot(&FH);
    fh_run(&FH, &R, NULL, "setup", "--storage", "snip", NULL);
    assert_int_equal(R.status, 1);
    assert_contains(R.err, "/usr/bin/pve-vgpu-hook, which the snippet runs, No such file");
    assert_contains(R.err, "install pve-vgpu-hook on this node first");
    assert_host_unchanged(&FH, before);
    fh_write(&FH, "usr/bin/pve-vgpu-hook", "#!/bin/sh\n# the installed binary\n");
    char bin[4200];
    snprintf(bin, sizeof(bin), "%s/usr/bin/pve-vgpu-hook", FH.root);
    assert_int_equal(chmod(bin, 0755), 0);
    /* local does not allow snippets: the exact pvesm command, nothing written */
    before = fh_snapshot(&FH);
    fh_run(&FH, &R, NULL, "setup", NULL);
    assert_int_equal(R.status, 1);
    assert_contains(R.err, "storage 'local' does not allow snippets (content: iso,vztmpl,backup)");
    assert_contains(R.err, "pvesm set local --content iso,vztmpl,backup,snippets");
    char *after = fh_snapshot(&FH);
    assert_string_equal(before, after);
    free(before);
    free(after);
    fh_run(&FH, &R, NULL, "setup", "--storage", "local-lvm", NULL);
    assert_int_equal(R.status, 1);
    assert_contains(R.err, "(type lvmthin) has no directory for snippets");
    fh_run(&FH, &R, NULL, "setup", "--storage", "nope", NULL);
    assert_contains(R.err, "there is no storage 'nope'");
    fh_run(&FH, &R, NULL, "setup", "--storage", "a/b", NULL);
    assert_int_equal(R.status, 2);

    /* --dry-run: what it would create, nothing written (not even the snippets directory) */
    before = fh_snapshot(&FH);
    assert_int_equal(fh_run(&FH, &R, NULL, "setup", "--storage", "snip", "--dry-run", NULL), 0);
    assert_contains(
        R.out, "Dry run: nothing was written. It would:\n"
               "  create /srv/snip/snippets/pve-vgpu-hook\n"
    );
    assert_contains(R.out, "would link /srv/snip/snippets/pve-vgpu-hook -> /usr/bin/pve-vgpu-hook");
    fh_run(&FH, &R, NULL, "setup", "--storage", "snip", "--dry-run", "--json", NULL);
    assert_int_equal(R.status, 0);
    assert_contains(R.out, "\"dry_run\": true");
    assert_contains(R.out, "\"result\": \"installed\"");
    assert_contains(
        R.out, "{\n      \"file\": \"/srv/snip/snippets/pve-vgpu-hook\",\n      \"action\": "
               "\"create\"\n    }"
    );
    fh_run(&FH, &R, NULL, "setup", "--storage", "nope", "--json", NULL);
    assert_int_equal(R.status, 1);
    assert_contains(R.out, "\"message\": \"there is no storage 'nope'");
    assert_host_unchanged(&FH, before);

    /* a directory storage: a symlink to the binary, created once */
    fh_run(&FH, &R, NULL, "setup", "--storage", "snip", "--json", NULL);
    assert_int_equal(R.status, 0);
    assert_contains(R.out, "\"dry_run\": false");
    assert_contains(R.out, "\"action\": \"create\"");
    unlink(link_path(&FH));
    fh_run(&FH, &R, NULL, "setup", "--storage", "snip", NULL);
    assert_int_equal(R.status, 0);
    assert_contains(R.out, "linked /srv/snip/snippets/pve-vgpu-hook -> ");
    assert_contains(R.out, "next: qm set VMID --hookscript snip:snippets/pve-vgpu-hook");
    assert_contains(
        R.out, "VM 100 has hookscript local:snippets/gpu-fan.pl: to keep it, copy "
               "that script to /etc/pve-vgpu-hook/hooks.d/50-gpu-fan on every node"
    );
    char link[4200], target[4200];
    snprintf(link, sizeof(link), "%s/srv/snip/snippets/pve-vgpu-hook", FH.root);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "/usr/bin/pve-vgpu-hook"); /* never the binary that ran setup */
    fh_run(&FH, &R, NULL, "setup", "--storage", "snip", NULL);
    assert_int_equal(R.status, 0);
    assert_contains(R.out, "already links to");

    /* shared storage: the wrapper script, the same as hooks/snippet-wrapper; a VM whose
     * hookscript is the snippet of the first setup is this tool, never a hook to chain */
    fh_vmconf(&FH, 101, "cores: 1\nhookscript: snip:snippets/pve-vgpu-hook\n");
    fh_run(&FH, &R, NULL, "setup", "--storage", "smb", NULL);
    assert_int_equal(R.status, 0);
    assert_contains(
        R.out, "VM 101 has hookscript snip:snippets/pve-vgpu-hook, which is pve-vgpu-hook already"
    );
    assert_not_contains(R.out, "hooks.d/50-pve-vgpu-hook");
    char *wrapper = fh_read(&FH, "mnt/pve/smb/snippets/pve-vgpu-hook");
    FILE *f = fopen(PVH_SOURCE_DIR "/hooks/snippet-wrapper", "r");
    assert_non_null(f);
    char shipped[4096];
    shipped[fread(shipped, 1, sizeof(shipped) - 1, f)] = '\0';
    fclose(f);
    assert_string_equal(wrapper, shipped);
    free(wrapper);
    struct stat st;
    snprintf(link, sizeof(link), "%s/mnt/pve/smb/snippets/pve-vgpu-hook", FH.root);
    assert_int_equal(stat(link, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755);
    /* someone else's file there is never overwritten */
    fh_write(&FH, "mnt/pve/smb/snippets/pve-vgpu-hook", "#!/bin/sh\necho mine\n");
    fh_run(&FH, &R, NULL, "setup", "--storage", "smb", NULL);
    assert_int_equal(R.status, 1);
    assert_contains(R.err, "exists and is not pve-vgpu-hook's");
    char *kept = fh_read(&FH, "mnt/pve/smb/snippets/pve-vgpu-hook");
    assert_string_equal(kept, "#!/bin/sh\necho mine\n");
    free(kept);
}

/* A chained hook that records its arguments and PVE_MIGRATED_FROM, and exits with `code`. */
static void chained(const char *name, int code) {
    char rel[256], script[512];
    snprintf(rel, sizeof(rel), "etc/pve-vgpu-hook/hooks.d/%s", name);
    snprintf(
        script, sizeof(script),
        "#!/bin/sh\necho \"%s $1 $2 ${PVE_MIGRATED_FROM-unset}\" >>\"%s/chain.log\"\n"
        "exit %d\n",
        name, FH.root, code
    );
    fh_write(&FH, rel, script);
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", FH.root, rel);
    chmod(path, 0755);
}

static void test_chained_hooks(void **state) {
    (void)state;
    fh_vmconf(&FH, 100, "cores: 1\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    chained("20-second", 0);
    chained("10-first", 0);
    chained("30-not.run", 0); /* not a run-parts name */
    fh_write(&FH, "etc/pve-vgpu-hook/hooks.d/40-not-executable", "#!/bin/sh\nexit 1\n");
    const char *env[] = {"PVE_MIGRATED_FROM=", NULL};
    fh_run(&FH, &R, env, "100", "pre-start", NULL);
    assert_int_equal(R.status, 0);
    char *log = fh_read(&FH, "chain.log");
    assert_string_equal(log, "10-first 100 pre-start \n20-second 100 pre-start \n");
    free(log);
    fh_run(&FH, &R, NULL, "100", "post-start", NULL);
    assert_int_equal(R.status, 0);

    /* in pre-start a failing hook stops the start: our vGPU of this start is removed again */
    fh_run(&FH, &R, NULL, "100", "post-stop", NULL);
    unlink(strcat(strcpy((char[4200]){0}, FH.root), "/chain.log"));
    chained("15-fails", 3);
    fh_run(&FH, &R, NULL, "100", "pre-start", NULL);
    assert_int_equal(R.status, 1);
    assert_contains(
        R.err, "chained hook /etc/pve-vgpu-hook/hooks.d/15-fails failed on pre-start "
               "(exit status 3)"
    );
    assert_contains(
        R.err, "removed mdev 00000000-0000-0000-0000-000000000100 again (start refused)"
    );
    assert_false(fh_exists(&FH, "sys/bus/mdev/devices/00000000-0000-0000-0000-000000000100"));
    log = fh_read(&FH, "chain.log");
    assert_string_equal(log, "10-first 100 pre-start unset\n15-fails 100 pre-start unset\n");
    free(log);

    /* in other phases it is reported, the rest still run, and the exit status says so */
    unlink(strcat(strcpy((char[4200]){0}, FH.root), "/chain.log"));
    fh_run(&FH, &R, NULL, "100", "pre-stop", NULL);
    assert_int_equal(R.status, 1);
    log = fh_read(&FH, "chain.log");
    assert_string_equal(
        log, "10-first 100 pre-stop unset\n15-fails 100 pre-stop unset\n"
             "20-second 100 pre-stop unset\n"
    );
    free(log);

    /* a VM without a vGPU and a container still get their chained hooks */
    unlink(strcat(strcpy((char[4200]){0}, FH.root), "/chain.log"));
    unlink(strcat(strcpy((char[4200]){0}, FH.root), "/etc/pve-vgpu-hook/hooks.d/15-fails"));
    fh_vmconf(&FH, 101, "cores: 1\n");
    fh_write(&FH, "etc/pve/nodes/pve1/lxc/200.conf", "arch: amd64\n");
    fh_run(&FH, &R, NULL, "101", "pre-start", NULL);
    assert_int_equal(R.status, 0);
    fh_run(&FH, &R, NULL, "200", "pre-start", NULL);
    assert_int_equal(R.status, 0);
    log = fh_read(&FH, "chain.log");
    assert_string_equal(
        log, "10-first 101 pre-start unset\n20-second 101 pre-start unset\n"
             "10-first 200 pre-start unset\n20-second 200 pre-start unset\n"
    );
    free(log);
}

/* An executable file below the root with this content. */
static void write_exec(const char *rel, const char *content) {
    fh_write(&FH, rel, content);
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", FH.root, rel);
    assert_int_equal(chmod(path, 0755), 0);
}

/* The snippet copied into hooks.d, as setup once advised: never run (it would run hooks.d
 * again); a wrapper in hooks.d that runs pve-vgpu-hook: the nested run refuses, naming it. The
 * wrapper stops itself after 3 levels and each level has a 2 s limit, so the test cannot hang
 * when the refusal is broken. */
static void test_chained_hook_is_never_ourselves(void **state) {
    (void)state;
    char script[8192];
    fh_write(&FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0, \"hook_timeout_s\": 2}\n");
    fh_vmconf(&FH, 100, "cores: 1\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    snprintf(script, sizeof(script), "#!/bin/sh\necho ran >>\"%s/copy.log\"\n", FH.root);
    write_exec("usr/bin/pve-vgpu-hook", script);
    write_exec("etc/pve-vgpu-hook/hooks.d/60-pve-vgpu-hook", script);
    snprintf(
        script, sizeof(script),
        "#!/bin/sh\necho \"$1 $2\" >>\"%s/nest.log\"\n"
        "[ \"$(wc -l <\"%s/nest.log\")\" -ge 3 ] && exit 0\n"
        "exec \"%s\" --root \"%s\" \"$1\" \"$2\"\n",
        FH.root, FH.root, fh_binary(), FH.root
    );
    write_exec("etc/pve-vgpu-hook/hooks.d/50-nest", script);
    fh_run(&FH, &R, NULL, "100", "pre-start", NULL);
    assert_int_equal(R.status, 0);
    assert_true(fh_exists(&FH, "sys/bus/mdev/devices/00000000-0000-0000-0000-000000000100"));
    char *log = fh_read(&FH, "nest.log");
    assert_string_equal(log, "100 pre-start\n");
    free(log);
    assert_contains(
        R.err, "pve-vgpu-hook was run by chained hook /etc/pve-vgpu-hook/hooks.d/50-nest "
               "(PVE_VGPU_HOOK_DEPTH is set): skipped"
    );
    assert_contains(
        R.err, "chained hook /etc/pve-vgpu-hook/hooks.d/60-pve-vgpu-hook is pve-vgpu-hook itself"
    );
    assert_false(fh_exists(&FH, "copy.log"));
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_setup), T(test_chained_hooks), T(test_chained_hook_is_never_ourselves)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
