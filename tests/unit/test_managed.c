/*
 * Managed mode: attach/detach on the real binary (every corpus config must come back byte for
 * byte), placement by pack and spread, refusals that name every candidate, parallel starts
 * that never break the rule, and multi-node GPU lists with a migration target.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct fakehost FH_HOST;
static struct fakehost *const FH = &FH_HOST; /* one host per test */
static struct fh_result R;

static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create_p40_pair(FH), 0);
    /* these tests pin the args form, which managed mode keeps before qemu-server 8.0.4 (the
     * mapping form: test_mdevmap.c) */
    assert_int_equal(fh_qemu_server_version(FH, "8.0.3"), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(FH);
    return 0;
}

/* Proxmox leaves lock-<vmid>.conf behind once a VM was locked; so does attach, like qm set. */
static void lock_files_exist(void) {
    static const int ids[] = {100, 101, 102, 103, 200};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "var/lock/qemu-server/lock-%d.conf", ids[i]);
        fh_write(FH, rel, "");
    }
}

/* Run the binary on the fake host; the exit status (output in R). */
#define run(env, ...) fh_run(FH, &R, env, __VA_ARGS__)

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

/* ---------- attach / detach ---------- */

static void test_corpus_roundtrip(void **state) {
    (void)state;
    const char *cfg = "{\n  \"policy\": \"equal-size\",\n  \"vms\": {\n    \"555\": { \"type\": "
                      "\"P40-1Q\" }\n  }\n}\n";
    fh_write(FH, "etc/pve/vgpu-hook.json", cfg);
    DIR *d = opendir(PVH_CORPUS_DIR);
    assert_non_null(d);
    struct dirent *de;
    int attached = 0, refused = 0;
    while ((de = readdir(d))) {
        if (!strstr(de->d_name, ".conf")) {
            continue;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", PVH_CORPUS_DIR, de->d_name);
        char *orig = slurp(path);
        fh_vmconf(FH, 100, orig);
        json_object *before = json_tokener_parse(cfg);
        if (run(NULL, "attach", "100", "--type", "P40-2Q", NULL) == 0) {
            char *mid = fh_read_vmconf(FH, 100);
            assert_contains(
                mid, "args: -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/"
                     "00000000-0000-0000-0000-000000000100 -uuid "
                     "00000000-0000-0000-0000-000000000100\n"
            );
            free(mid);
            if (run(NULL, "detach", "100", NULL) != 0) {
                fail_msg("%s: detach failed:\n%s", de->d_name, R.err);
            }
            attached++;
        } else {
            refused++; /* a hostpci mdev= entry: refused without a change */
            assert_contains(R.err, "hostpci mode");
        }
        char *after = fh_read_vmconf(FH, 100);
        if (strcmp(orig, after)) {
            fail_msg("%s: the VM config is not byte-identical after attach+detach", de->d_name);
        }
        char *json = fh_read(FH, "etc/pve/vgpu-hook.json");
        json_object *now = json_tokener_parse(json);
        if (!json_object_equal(before, now)) {
            fail_msg("%s: vgpu-hook.json changed:\n%s", de->d_name, json);
        }
        json_object_put(before);
        json_object_put(now);
        free(json);
        free(after);
        free(orig);
    }
    closedir(d);
    assert_true(attached >= 200);
    assert_int_equal(refused, 1); /* q35-linux-hostpci-mapping has mdev= */
}

static void test_attach_keeps_args_and_hookscript(void **state) {
    (void)state;
    const char *conf =
        "#desc\nargs:  -cpu host,kvm=off -uuid 11111111-2222-3333-4444-555555555555\n"
        "cores: 2\nhookscript: local:snippets/pve-vgpu-hook\nmemory: 4096\n";
    fh_vmconf(FH, 100, conf);
    if (run(NULL, "attach", "100", "--type", "GRID P40-1Q", "--gpu", "07:00.0", "--index", "2",
            NULL) != 0) {
        fail_msg("attach failed:\n%s", R.err);
    }
    char *mid = fh_read_vmconf(FH, 100);
    /* QEMU takes one -uuid: the other one is replaced where it was, and the user told */
    assert_contains(
        mid, "args:  -cpu host,kvm=off -uuid 00000002-0000-0000-0000-000000000100 "
             "-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/"
             "00000002-0000-0000-0000-000000000100\n"
    );
    assert_contains(
        R.err, "args of VM 100 passed -uuid 11111111-2222-3333-4444-555555555555; replaced by "
               "00000002-0000-0000-0000-000000000100, since QEMU takes one -uuid"
    );
    assert_contains(R.err, "(detach puts 11111111-2222-3333-4444-555555555555 back)");
    assert_contains(mid, "hookscript: local:snippets/pve-vgpu-hook\n");
    free(mid);
    char *json = fh_read(FH, "etc/pve/vgpu-hook.json");
    assert_contains(json, "\"pve1\": [\n          \"0000:07:00.0\"");
    assert_contains(json, "\"index\": 2");
    free(json);
    /* attach again: the type changes, args stay */
    if (run(NULL, "attach", "100", "--type", "P40-2Q", NULL) != 0) {
        fail_msg("attach again failed:\n%s", R.err);
    }
    json = fh_read(FH, "etc/pve/vgpu-hook.json");
    assert_contains(json, "\"type\": \"P40-2Q\"");
    assert_contains(json, "\"0000:07:00.0\""); /* this node's list kept without --gpu */
    free(json);
    assert_int_equal(run(NULL, "attach", "100", "--type", "P40-2Q", "--index", "0", NULL), 1);
    assert_contains(R.err, "is attached with index 2");
    assert_int_equal(run(NULL, "detach", "100", NULL), 0);
    char *after = fh_read_vmconf(FH, 100);
    assert_string_equal(after, conf);
    free(after);
    json = fh_read(FH, "etc/pve/vgpu-hook.json");
    assert_string_equal(json, "{\n  \"remove_wait_s\": 0\n}\n");
    free(json);
    /* a settings file that only held this VM goes away: missing means defaults */
    unlink(strcat(strcpy((char[4200]){0}, FH->root), "/etc/pve/vgpu-hook.json"));
    assert_int_equal(run(NULL, "attach", "100", "--type", "P40-2Q", NULL), 0);
    assert_true(fh_exists(FH, "etc/pve/vgpu-hook.json"));
    assert_int_equal(run(NULL, "detach", "100", NULL), 0);
    assert_false(fh_exists(FH, "etc/pve/vgpu-hook.json"));
}

static void test_attach_refusals(void **state) {
    (void)state;
    fh_vmconf(FH, 100, "cores: 2\nhookscript: local:snippets/other.pl\n");
    fh_vmconf(FH, 101, "cores: 2\nhostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    fh_vmconf(FH, 102, "cores: 2\n");
    fh_write(FH, "etc/pve/nodes/pve1/lxc/200.conf", "arch: amd64\n");
    lock_files_exist();
    static const struct {
        const char *args[10];
        int status;
        const char *msg, *hint; /* hint: NULL when any */
    } cases[] = {
        {{"attach", "100", "--type", "P40-1Q", NULL},
         1,
         "VM 100 already has hookscript local:snippets/other.pl, and Proxmox runs one hookscript "
         "per VM",
         NULL},
        {{"attach", "101", "--type", "P40-1Q"},
         1,
         "already has a vGPU in hostpci0 (hostpci mode)",
         NULL},
        {{"attach", "103", "--type", "P40-1Q"}, 1, "no VM 103 on this node", NULL},
        {{"attach", "200", "--type", "P40-1Q"}, 1, "200 is a container", NULL},
        {{"attach", "102", "--type", "P40-1Q", "--hookscript", "../../etc/x", NULL},
         1,
         "is not a snippets volume id",
         NULL},
        {{"attach", "102"}, 1, "VM 102 is not attached, so attach needs --type", NULL},
        {{"attach", "102", "--type", "P40-1Q", "--index", "16"}, 2, "--index takes a number", NULL},
        {{"attach", "102", "--type", "P40-1Q", "--gpu", "gpu1"}, 2, "'gpu1' is not a PCI id", NULL},
        {{"detach", "102"}, 1, "VM 102 is not attached", NULL},
        /* a type or GPU this node does not have would cost a start: the nearest types it
         * offers, the GPUs that offer the type */
        {{"attach", "102", "--type", "P40-99Q"},
         1,
         "no GPU on node pve1 offers type 'P40-99Q', so the VM could not start here",
         "did you mean P40-1Q, P40-2Q, P40-3Q, P40-4Q, P40-6Q? ('pve-vgpu-hook types' lists"},
        {{"attach", "102", "--type", "P40 1Q"},
         1,
         "no GPU on node pve1 offers type 'P40 1Q'",
         "did you mean P40-1Q, "},
        {{"attach", "102", "--type", "GRID P40-1X"},
         1,
         "offers type 'GRID P40-1X'",
         "did you mean P40-1A, P40-1B, P40-1Q, P40-2B, P40-2Q? "},
        {{"attach", "102", "--type", "nvidia-45"},
         1,
         "offers type 'nvidia-45'",
         "did you mean nvidia-46, "},
        {{"attach", "102", "--type", "A40-2Q"}, 1, "offers type 'A40-2Q'", "did you mean P40-2Q, "},
        {{"attach", "102", "--type", "P40-1Q", "--gpu", "0000:99:00.0"},
         1,
         "there is no PCI device 0000:99:00.0 on node pve1",
         "GPUs offering P40-1Q here: " GPU_A ", " GPU_B " (or leave --gpu out"},
        {{"attach", "102", "--type", "P40-1Q", "--gpu", GPU_A, "--gpu", "00:1f.0"},
         1,
         "there is no PCI device 0000:00:1f.0 on node pve1",
         "nothing was changed"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *before = fh_snapshot(FH);
        fh_runv(FH, &R, NULL, cases[i].args);
        if (R.status != cases[i].status || !strstr(R.err, cases[i].msg) ||
            (cases[i].hint && !strstr(R.err, cases[i].hint)) || strstr(R.out, "attached")) {
            fail_msg(
                "case %zu: status %d, stderr lacks '%s':\n%s", i, R.status, cases[i].msg, R.err
            );
        }
        char *after = fh_snapshot(FH);
        if (strcmp(before, after)) {
            fail_msg("case %zu changed the host", i);
        }
        free(before);
        free(after);
    }
    /* the hookscript volume does not exist yet: told how to fix it */
    fh_write(FH, "etc/pve/storage.cfg", "dir: local\n\tpath /var/lib/vz\n\tcontent snippets\n");
    assert_int_equal(run(NULL, "attach", "102", "--type", "P40-1Q", NULL), 0);
    assert_contains(
        R.err, "hookscript local:snippets/pve-vgpu-hook (/var/lib/vz/snippets/pve-vgpu-hook) does "
               "not exist yet"
    );
    assert_contains(R.err, "run 'pve-vgpu-hook setup --storage local' on every node");
    fh_write(FH, "var/lib/vz/snippets/pve-vgpu-hook", "#!/bin/sh\n");
    assert_int_equal(run(NULL, "attach", "102", "--type", "P40-1Q", NULL), 0);
    assert_not_contains(R.err, "does not exist yet");
    assert_int_equal(run(NULL, "detach", "102", NULL), 0);
    /* a running VM is told when it gets the vGPU: the args wait in [PENDING] */
    fh_run_vm(FH, 102, 7102);
    assert_int_equal(run(NULL, "attach", "102", "--type", "P40-1Q", NULL), 0);
    assert_contains(R.out, "; pending until VM 102 is stopped and started");
}

/* --gpu names a GPU that offers the type (else refused with those that do), each one once. */
static void test_attach_gpus_checked(void **state) {
    (void)state;
    fh_vmconf(FH, 102, "cores: 2\n");
    lock_files_exist();
    /* a PCI device that is there but offers no vGPU type */
    fh_write(FH, "sys/bus/pci/devices/0000:00:02.0/vendor", "0x8086\n");
    assert_int_equal(
        run(NULL, "attach", "102", "--type", "P40-1Q", "--gpu", "0000:00:02.0", NULL), 1
    );
    assert_contains(R.err, "GPU 0000:00:02.0 on node pve1 does not offer type 'P40-1Q'");
    assert_contains(R.err, "GPUs offering P40-1Q here: " GPU_A ", " GPU_B);
    /* the same GPU twice is stored once */
    assert_int_equal(
        run(NULL, "attach", "102", "--type", "P40-1Q", "--gpu", GPU_B, "--gpu", "07:00.0", NULL), 0
    );
    char *json = fh_read(FH, "etc/pve/vgpu-hook.json");
    assert_contains(json, "\"pve1\": [\n          \"" GPU_B "\"\n        ]");
    free(json);
}

static void test_attach_writes_nothing_half(void **state) {
    (void)state;
    fh_vmconf(FH, 102, "cores: 2\n");
    lock_files_exist();
    char *before = fh_snapshot(FH);
    const char *ro[] = {"FAKE_PMXCFS_RO=1", NULL};
    assert_int_equal(run(ro, "attach", "102", "--type", "P40-1Q", NULL), 1);
    assert_contains(R.err, "cannot write /etc/pve/vgpu-hook.json: Permission denied");
    assert_contains(R.err, "read-only without cluster quorum");
    char *after = fh_snapshot(FH);
    assert_string_equal(before, after);
    free(after);
    /* a settings file we cannot parse is never overwritten */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{ \"policy\": ");
    free(before);
    before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "attach", "102", "--type", "P40-1Q", NULL), 1);
    assert_contains(R.err, "invalid JSON");
    after = fh_snapshot(FH);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* Names in /etc/pve/nodes/pve1/qemu-server and /etc/pve that are temp or undo copies. */
static size_t temp_copies(void) {
    static const char *const dirs[] = {"etc/pve", "etc/pve/nodes/pve1/qemu-server"};
    size_t n = 0;
    for (size_t i = 0; i < 2; i++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", FH->root, dirs[i]);
        DIR *d = opendir(path);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d))) {
            n += strstr(de->d_name, ".undo.") || strstr(de->d_name, ".tmp.");
        }
        closedir(d);
    }
    return n;
}

/* A copy attach could not delete (pmxcfs replicates it to every node) is retried, reported,
 * and removed by the next change of that file. */
static void test_undo_copy_left_behind(void **state) {
    (void)state;
    fh_vmconf(FH, 102, "cores: 2\n");
    lock_files_exist();
    const char *stuck[] = {"FAKE_FAIL=unlink-temp:1+", NULL};
    assert_int_equal(run(stuck, "attach", "102", "--type", "P40-1Q", NULL), 0);
    /* the undo copies of the settings and of the VM config */
    assert_contains(R.err, "2 temporary copies could not be deleted (the first: /etc/pve/");
    assert_contains(R.err, "the next attach, detach or tune removes them");
    assert_int_equal(temp_copies(), 2);
    char *conf = fh_read_vmconf(FH, 102);
    assert_non_null(strstr(conf, "args: "));
    free(conf);
    /* the next change of the files removes what the last one left */
    assert_int_equal(run(NULL, "tune", "102", "--param", "frame_rate_limiter=0", NULL), 0);
    assert_not_contains(R.err, "could not be deleted");
    assert_int_equal(temp_copies(), 0);
    /* one failed delete is retried, and nothing is left or said */
    const char *once[] = {"FAKE_FAIL=unlink-temp:1", NULL};
    assert_int_equal(run(once, "detach", "102", NULL), 0);
    assert_not_contains(R.err, "could not be deleted");
    assert_int_equal(temp_copies(), 0);
}

static void test_vm_lock(void **state) {
    (void)state;
    /* the timeout is a setting (default 10 s like qm set): a second here */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0, \"lock_timeout_s\": 1}");
    fh_vmconf(FH, 102, "cores: 2\n");
    char lock[4200];
    snprintf(lock, sizeof(lock), "%s/var/lock/qemu-server/lock-102.conf", FH->root);
    int fd = open(lock, O_RDWR | O_CREAT, 0644);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    char *before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "attach", "102", "--type", "P40-1Q", NULL), 1);
    assert_contains(R.err, "VM 102 is locked by another Proxmox task (");
    assert_contains(R.err, "held for 1 s)");
    close(fd);
    char *after = fh_snapshot(FH);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_cluster_lock(void **state) {
    (void)state;
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0, \"lock_timeout_s\": 2}");
    fh_vmconf(FH, 102, "cores: 2\n");
    lock_files_exist();
    /* another node's attach holds pmxcfs' lock on vgpu-hook.json for a second: we wait */
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/etc/pve/priv/lock/file-vgpu-hook_json", FH->root);
    assert_int_equal(mkdir(dir, 0700), 0);
    pid_t pid = fork();
    if (pid == 0) {
        sleep(1);
        rmdir(dir);
        _exit(0);
    }
    assert_int_equal(run(NULL, "attach", "102", "--type", "P40-1Q", NULL), 0);
    waitpid(pid, NULL, 0);
    assert_false(fh_exists(FH, "etc/pve/priv/lock/file-vgpu-hook_json")); /* released */
    /* held for good: refused after lock_timeout_s, nothing changed */
    assert_int_equal(mkdir(dir, 0700), 0);
    char *before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "detach", "102", NULL), 1);
    assert_contains(R.err, "another node or command is editing /etc/pve/vgpu-hook.json");
    char *after = fh_snapshot(FH);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* ---------- placement ---------- */

/* The parent a VM's mdev sits on, "" when it has none. */
static const char *placed_on(unsigned long vmid) {
    static char parent[64];
    char rel[128], target[512], path[4200];
    snprintf(rel, sizeof(rel), "sys/bus/mdev/devices/00000000-0000-0000-0000-%012lu", vmid);
    snprintf(path, sizeof(path), "%s/%s", FH->root, rel);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    parent[0] = '\0';
    if (n > 0) {
        target[n] = '\0';
        *strrchr(target, '/') = '\0';
        snprintf(parent, sizeof(parent), "%s", strrchr(target, '/') + 1);
    }
    return parent;
}

static void attach_three(void) {
    static const char *const types[] = {"P40-1Q", "P40-1Q", "P40-2Q"};
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "%d", 100 + i);
        fh_vmconf(FH, 100 + (unsigned long)i, "cores: 2\n");
        assert_int_equal(run(NULL, "attach", id, "--type", types[i], NULL), 0);
    }
}

static void test_pack_and_spread(void **state) {
    (void)state;
    attach_three();
    /* pack (default): same size together, keeping the other GPU free for another size */
    for (int round = 0; round < 2; round++) {
        /* round 0: the VMs run after their start; round 1: they stay stopped (leftovers),
         * which must not make pack destroy 100's and 101's devices for 102 */
        assert_int_equal(run(NULL, "100", "pre-start", NULL), 0);
        assert_int_equal(run(NULL, "101", "pre-start", NULL), 0);
        if (round == 0) {
            fh_run_vm(FH, 100, 8100);
            fh_run_vm(FH, 101, 8101);
        }
        assert_int_equal(run(NULL, "102", "pre-start", NULL), 0);
        assert_string_equal(placed_on(100), GPU_A);
        assert_string_equal(placed_on(101), GPU_A);
        assert_string_equal(placed_on(102), GPU_B);
        for (int v = 100; v <= 102; v++) { /* stop all; the next round must place the same */
            char id[8];
            snprintf(id, sizeof(id), "%d", v);
            fh_stop_vm(FH, (unsigned long)v);
            assert_int_equal(run(NULL, id, "post-stop", NULL), 0);
        }
    }
    /* spread: one per GPU, so the 2Q finds no GPU; the refusal names every candidate */
    char *json = fh_read(FH, "etc/pve/vgpu-hook.json");
    json_object *doc = json_tokener_parse(json);
    json_object_object_add(doc, "placement", json_object_new_string("spread"));
    json_object_object_add(doc, "remove_wait_s", json_object_new_int(0));
    fh_write(FH, "etc/pve/vgpu-hook.json", json_object_to_json_string(doc));
    json_object_put(doc);
    free(json);
    assert_int_equal(run(NULL, "100", "pre-start", NULL), 0);
    assert_int_equal(run(NULL, "101", "pre-start", NULL), 0);
    assert_string_equal(placed_on(100), GPU_A);
    assert_string_equal(placed_on(101), GPU_B);
    fh_run_vm(FH, 100, 8100);
    fh_run_vm(FH, 101, 8101);
    assert_int_equal(run(NULL, "check", "102", NULL), 1);
    assert_int_equal(run(NULL, "102", "pre-start", NULL), 1);
    assert_contains(
        R.err, "cannot place P40-2Q for the managed vGPU: no candidate GPU can take it:"
    );
    /* every candidate GPU with the driver's no and why it says so */
    assert_contains(
        R.err, "0000:06:00.0: 0000:06:00.0 has no available instances of GRID P40-2Q (the "
               "driver says no"
    );
    assert_contains(R.err, "0000:07:00.0: 0000:07:00.0 has no available instances of GRID P40-2Q");
    assert_contains(R.err, "the GPU is in equal-size mode: it takes only 1024 MiB vGPUs");
    assert_contains(R.err, "1 x GRID P40-1Q (1024 MiB) for VM 101");
}

static void test_managed_reclaim_and_gpus(void **state) {
    (void)state;
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0}");
    fh_vmconf(FH, 100, "cores: 2\n");
    assert_int_equal(run(NULL, "attach", "100", "--type", "P40-2Q", "--gpu", GPU_B, NULL), 0);
    /* a stopped VM's 1Q leftover on the only candidate: reclaimed */
    assert_int_equal(
        fh_add_mdev(FH, GPU_B, "nvidia-46", "00000000-0000-0000-0000-000000000777"), 0
    );
    assert_int_equal(run(NULL, "100", "pre-start", NULL), 0);
    assert_contains(
        R.err, "removed leftover mdev 00000000-0000-0000-0000-000000000777 of stopped "
               "VM 777"
    );
    assert_string_equal(placed_on(100), GPU_B);
    /* args were edited by hand and lost the device: refused with a way out */
    fh_vmconf(FH, 100, "args: -cpu host\ncores: 2\n");
    assert_int_equal(run(NULL, "100", "pre-start", NULL), 1);
    assert_contains(R.err, "its args do not pass /sys/bus/mdev/devices/");
}

/* ---------- concurrency ---------- */

static void parallel_prestart(int first, int n, int *ok) {
    pid_t pids[16];
    struct fh_result *res = calloc((size_t)n, sizeof(*res));
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            /* As Proxmox does: the VM's lock is held from before pre-start until QEMU runs. */
            char id[8], lock[4200];
            snprintf(id, sizeof(id), "%d", first + i);
            snprintf(
                lock, sizeof(lock), "%s/var/lock/qemu-server/lock-%d.conf", FH->root, first + i
            );
            int fd = open(lock, O_RDWR | O_CREAT, 0644);
            flock(fd, LOCK_EX);
            struct fh_result *r = malloc(sizeof(*r));
            fh_run(FH, r, NULL, id, "pre-start", NULL);
            if (r->status == 0) {
                fh_run_vm(FH, (unsigned long)(first + i), 20000 + first + i);
            }
            close(fd);
            /* report: status, then whether the failure explains itself */
            bool explained =
                r->status == 0 || (strstr(r->err, "cannot place") && strstr(r->err, "what to do:"));
            _exit(r->status == 0 ? 0 : explained ? 1 : 2);
        }
    }
    *ok = 0;
    for (int i = 0; i < n; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) == 2) {
            fail_msg("VM %d failed without an explanation", first + i);
        }
        *ok += WEXITSTATUS(st) == 0;
    }
    free(res);
}

/* Every GPU's mdevs have one framebuffer size (equal-size). */
static void assert_rule_holds(void) {
    static const char *const gpus[] = {GPU_A, GPU_B};
    for (size_t g = 0; g < 2; g++) {
        char dir[4200];
        snprintf(dir, sizeof(dir), "%s/sys/devices/pci0000:00/%s", FH->root, gpus[g]);
        DIR *d = opendir(dir);
        struct dirent *de;
        char first[64] = "";
        while ((de = readdir(d))) {
            if (strlen(de->d_name) != 36) {
                continue;
            }
            char link[4300], target[256];
            snprintf(link, sizeof(link), "%s/%s/mdev_type", dir, de->d_name);
            ssize_t n = readlink(link, target, sizeof(target) - 1);
            target[n] = '\0';
            const char *type = strrchr(target, '/') + 1;
            /* nvidia-46 1Q and nvidia-47 2Q are the only types used here */
            if (!first[0]) {
                snprintf(first, sizeof(first), "%s", type);
            } else if (strcmp(first, type)) {
                fail_msg("GPU %s hosts both %s and %s", gpus[g], first, type);
            }
        }
        closedir(d);
    }
}

static void test_parallel_starts(void **state) {
    (void)state;
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0}");
    /* eight managed VMs, two sizes, two GPUs: pack puts each size on its own GPU */
    for (int i = 0; i < 8; i++) {
        char id[8];
        snprintf(id, sizeof(id), "%d", 300 + i);
        fh_vmconf(FH, 300 + (unsigned long)i, "cores: 1\n");
        assert_int_equal(run(NULL, "attach", id, "--type", i % 2 ? "P40-2Q" : "P40-1Q", NULL), 0);
    }
    int ok;
    parallel_prestart(300, 8, &ok);
    assert_rule_holds();
    assert_int_equal(ok, 8);
    /* eight hostpci-mode VMs of two sizes on ONE GPU: one size wins, the rest explain */
    for (int i = 0; i < 8; i++) {
        char conf[128];
        snprintf(
            conf, sizeof(conf), "hostpci0: %s,mdev=%s\n", GPU_A, i % 2 ? "nvidia-47" : "nvidia-46"
        );
        fh_vmconf(FH, 400 + (unsigned long)i, conf);
    }
    for (int i = 300; i < 308; i++) { /* stop them all: GPU A is free again */
        char id[8];
        snprintf(id, sizeof(id), "%d", i);
        fh_stop_vm(FH, (unsigned long)i);
        assert_int_equal(run(NULL, id, "post-stop", NULL), 0);
    }
    parallel_prestart(400, 8, &ok);
    assert_rule_holds();
    assert_int_equal(ok, 4);
    /* and the winners still have their devices: nobody reclaimed a starting VM's vGPU */
    int present = 0;
    for (unsigned long v = 400; v < 408; v++) {
        present += placed_on(v)[0] != '\0';
    }
    assert_int_equal(present, 4);
}

/* ---------- several nodes ---------- */

static void test_nodes_and_migration(void **state) {
    (void)state;
    fh_write(
        FH, "etc/pve/vgpu-hook.json",
        "{\"remove_wait_s\": 0, \"vms\": {\"100\": {\"type\": \"P40-1Q\", \"index\": 0,"
        " \"gpus\": {\"pve1\": [\"0000:07:00.0\"], \"pve2\": [\"0000:81:00.0\"]}}}}"
    );
    const char *args = "args: -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/"
                       "00000000-0000-0000-0000-000000000100 -uuid "
                       "00000000-0000-0000-0000-000000000100\ncores: 2\n";
    /* live migration from pve2: the config is still in pve2's directory */
    fh_write(FH, "etc/pve/nodes/pve2/qemu-server/100.conf", args);
    const char *mig[] = {"PVE_MIGRATED_FROM=pve2", NULL};
    assert_int_equal(run(mig, "100", "pre-start", NULL), 0);
    assert_string_equal(placed_on(100), GPU_B); /* pve1's list, not pve2's */
    assert_int_equal(run(NULL, "100", "post-stop", NULL), 0);
    /* this node has no list of its own: any GPU offering the type */
    fh_write(
        FH, "etc/pve/vgpu-hook.json",
        "{\"remove_wait_s\": 0, \"vms\": {\"100\": {\"type\": \"P40-1Q\","
        " \"gpus\": {\"pve2\": [\"0000:81:00.0\"]}}}}"
    );
    fh_vmconf(FH, 100, args);
    assert_int_equal(run(NULL, "100", "pre-start", NULL), 0);
    assert_string_equal(placed_on(100), GPU_A);
    /* attach on this node keeps the other node's list */
    assert_int_equal(run(NULL, "100", "post-stop", NULL), 0);
    fh_write(
        FH, "etc/pve/vgpu-hook.json",
        "{\"vms\": {\"100\": {\"type\": \"P40-1Q\", \"gpus\": {\"pve2\": [\"0000:81:00.0\"]},"
        " \"attached\": {\"args_before\": null, \"hookscript_added\": null}}}}"
    );
    assert_int_equal(run(NULL, "attach", "100", "--type", "P40-1Q", "--gpu", GPU_A, NULL), 0);
    char *json = fh_read(FH, "etc/pve/vgpu-hook.json");
    assert_contains(json, "\"pve2\": [\n          \"0000:81:00.0\"\n        ]");
    assert_contains(json, "\"pve1\": [\n          \"0000:06:00.0\"\n        ]");
    free(json);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_corpus_roundtrip),
        T(test_attach_keeps_args_and_hookscript),
        T(test_attach_refusals),
        T(test_attach_gpus_checked),
        T(test_attach_writes_nothing_half),
        T(test_undo_copy_left_behind),
        T(test_vm_lock),
        T(test_cluster_lock),
        T(test_pack_and_spread),
        T(test_managed_reclaim_and_gpus),
        T(test_parallel_starts),
        T(test_nodes_and_migration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
