/*
 * diagnose: one fake host with real journal files (written by systemd-journal-remote, as
 * journald writes them) and real task logs, where many VMs failed for different reasons,
 * interleaved with other VMs' failures and with older starts: each VM gets its own cause and
 * nothing else. Also the pure parts: UPIDs and task lists, line attribution, the catalogue.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "diagnose.h"
#include "fakehost.h"
#include "pvetask.h"
#include "testutil.h"
#include "vgpulog.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1700000000LL /* 0x6553F100 */

static struct fakehost FH_HOST;
static struct fakehost *const FH = &FH_HOST;
static struct fh_result R;

struct jline {
    char src;        /* 'K' kernel, 'M' nvidia-vgpu-mgr, 'D' nvidia-vgpud; 0 ends the list */
    long ms;         /* after the VM's task start */
    long pid;        /* M and D */
    const char *msg; /* %U: the VM's mdev UUID (index 0) */
};

struct vcase {
    unsigned long vmid;
    long long start;    /* 0: T0 + (vmid - 100) * 100 */
    const char *status; /* NULL: still running (active list) */
    const char *log;    /* %U as above; the TASK line is added from status */
    struct jline j[6];
    const char *outcome;
    const char *causes;   /* codes, comma-separated, in output order */
    const char *warnings; /* the same */
};

#define START_CALL                                                                                 \
    "notice: vmiop_env_log: (0x0): Received start call from nvidia-vgpu-vfio module: mdev uuid "   \
    "%U GPU PCI id 00:06:00.0 config params vgpu_type_id=46"
#define KVM_DEV                                                                                    \
    "kvm: -device "                                                                                \
    "vfio-pci,sysfsdev=/sys/bus/mdev/devices/%U,id=hostpci0,bus=ich9-pcie-port-1,addr=0x0: vfio "  \
    "%U: "
#define QEMU_EXIT "start failed: QEMU exited with code 1"

static const struct vcase cases[] = {
    {101,
     0,
     QEMU_EXIT,
     KVM_DEV
     "error getting device from group 44: Input/output error\n"
     "Verify all devices in group 44 are bound to vfio-<bus> or pci-stub and not already in use\n",
     {{'M', 500, 2101, START_CALL},
      {'M', 600, 2101, "error: vmiop_env_log: Failed to get VM UUID from QEMU command-line 0x57"},
      {'M', 610, 2101,
       "error: vmiop_env_log: (0x0): kvm_plugin_global_init failed with error 0x57"},
      {'K', 700, 0, "[nvidia-vgpu-vfio] %U: start failed. status: 0x1"}},
     "failed",
     "missing-uuid",
     ""},
    {102,
     0,
     QEMU_EXIT,
     KVM_DEV "failed to read device config space: Bad address\n",
     {{0}},
     "failed",
     "bad-profile-override",
     ""},
    {103,
     0,
     QEMU_EXIT,
     KVM_DEV "error getting device from group 45: Input/output error\n",
     {{'M', 400, 2103, START_CALL},
      {'M', 500, 2103, "error: vmiop_log: (0x0): vGPU is supported only on VGX capable boards"},
      {'M', 510, 2103,
       "error: vmiop_log: (0x0): init_device_instance failed for inst 0 with error 1 (vGPU "
       "validation of the GPU failed)"},
      {'K', 600, 0, "[nvidia-vgpu-vfio] %U: start failed. status: 0x1"}},
     "failed",
     "not-vgpu-capable",
     ""},
    {104,
     0,
     QEMU_EXIT,
     "",
     {{'M', 400, 2104, START_CALL},
      {'M', 500, 2104,
       "error: vmiop_log: (0x1): init_device_instance failed for inst 1 with error 1 (multiple "
       "vGPUs in a VM not supported)"}},
     "failed",
     "multiple-vgpus",
     ""},
    {105,
     0,
     "OK",
     "",
     {{'M', 400, 2105, START_CALL},
      {'K', 450, 0, "[nvidia-vgpu-vfio] %U: vGPU migration disabled"},
      {'M', 90000, 2105,
       "error: vmiop_log: (0x0): Incompatible Guest/Host drivers: Guest VGX version is older than "
       "the minimum version supported by the Host. Disabling vGPU."}},
     "failed",
     "guest-driver-mismatch",
     ""},
    {106,
     0,
     QEMU_EXIT,
     KVM_DEV "error getting device from group 46: Input/output error\n",
     {{'K', 20000, 0, "[nvidia-vgpu-vfio] %U: start failed. status: 0x0 Timeout Occured"}},
     "failed",
     "manager-not-answering",
     ""},
    {107,
     0,
     QEMU_EXIT,
     "",
     {{'K', 300, 0,
       "[nvidia-vgpu-vfio] %U: ERESTARTSYS received during open, waiting for 25000 milliseconds"}},
     "failed",
     "device-stuck",
     ""},
    {108,
     0,
     "could not create mediated device",
     "pci device '0000:06:00.0' has no available instances of 'nvidia-46'\n",
     {{0}},
     "failed",
     "no-free-instance",
     ""},
    {109,
     0,
     "could not find a free device for 'hostpci0'",
     "",
     {{0}},
     "failed",
     "vf-unavailable",
     ""},
    {110,
     0,
     "WARNINGS: 1",
     "WARN: vm 110 - unable to clear cdrom\n"
     "kvm: -device vfio-pci,host=0000:06:00.0: vfio: Could not enable error recovery for the "
     "device\n",
     {{'M', 400, 2110, START_CALL},
      {'M', 450, 2110,
       "Parameters size for NVA081_CTRL_CMD_VGPU_CONFIG_GET_VGPU_TYPE_INFO was 312 bytes, expected "
       "344 bytes"},
      {'M', 460, 2110, "notice: vmiop_log: (0x0): vGPU license state: Unlicensed (Unrestricted)"},
      {'K', 470, 0, "[nvidia-vgpu-vfio] %U: vGPU migration disabled"}},
     "ok",
     "",
     "unlock-outdated,task-warning"},
    {111,
     0,
     QEMU_EXIT,
     KVM_DEV "something nobody has seen before\n"
             "kvm: -device vfio-pci,host=0000:06:00.0: vfio: Could not enable error recovery for "
             "the device\n",
     {{0}},
     "failed",
     "unknown",
     ""},
    {112,
     0,
     QEMU_EXIT,
     "",
     {{'K', 2000, 0,
       "NVRM: Xid (PCI:0000:06:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the "
       "bus."}},
     "failed",
     "gpu-fell-off-bus",
     ""},
    {113,
     0,
     "hookscript error for 113 on pre-start: command '/var/lib/vz/snippets/pve-vgpu-hook 113 "
     "pre-start' failed: exit code 1",
     "pve-vgpu-hook: VM 113: error: GPU 0000:06:00.0 has no room for GRID P40-2Q\n",
     {{0}},
     "failed",
     "hook-refused",
     ""},
    {114,
     0,
     QEMU_EXIT,
     "",
     {{'M', 400, 2114, START_CALL},
      {'M', 500, 2114, "error: vmiop_log: NVOS status 0x56"},
      {'M', 510, 2114, "error: vmiop_log: Assertion Failed at 0xb5b1b2d5:293"}},
     "failed",
     "unlock-not-in-kernel",
     ""},
    {115,
     0,
     "OK",
     "",
     {{'M', 400, 2115, START_CALL},
      {'M', 60000, 2115, "error: vmiop_log: (0x0): Failed to get blacklisted pages:0x56"}},
     "failed",
     "consumer-guest-driver",
     ""},
    {116,
     0,
     QEMU_EXIT,
     "",
     {{'D', 300, 1016, "GPU not supported by vGPU at PCI Id: 0:6:0:0 DevID: 0x10de / 0x1b38"},
      {'D', 310, 1016, "error: failed to send vGPU configuration info to RM: 6"}},
     "failed",
     "no-vgpu-types",
     ""},
    {117,
     0,
     QEMU_EXIT,
     "",
     {{'M', 300, 1017, "error: vmiop_env_log: Failed to initialize RM client: 0x26"}},
     "failed",
     "manager-cannot-start",
     ""},
    {118,
     0,
     QEMU_EXIT,
     KVM_DEV "error getting device from group 47: Connection timed out\n",
     {{0}},
     "failed",
     "vgpu-open-timeout",
     ""},
    {119,
     0,
     QEMU_EXIT,
     "kvm: -device vfio-pci,sysfsdev=/sys/bus/pci/devices/0000:06:00.0/%U: vfio %U: failed to get "
     "region 0 info: Input/output error\n",
     {{0}},
     "failed",
     "missing-uuid",
     ""},
    {120, 0, "OK", "", {{'M', 400, 2120, START_CALL}}, "ok", "", ""},
    {121, 0, NULL, "", {{'M', 400, 2121, START_CALL}}, "unknown", "", ""},
    /* Another VM's failures during VM 101's start (its uuid, its manager pid; and a pid whose
     * start call came before the window) and VM 101's own older start: none is VM 101's. */
    {201,
     T0 + 100,
     QEMU_EXIT,
     "",
     {{'M', 200, 3201, START_CALL},
      {'M', 300, 3201, "error: vmiop_env_log: Failed to get VM UUID from QEMU command-line 0x57"},
      {'K', 400, 0,
       "[nvidia-vgpu-vfio] %U: ERESTARTSYS received during open, waiting for 25000 milliseconds"},
      {'M', 450, 3202,
       "error: vmiop_log: (0x0): Incompatible Guest/Host drivers: Guest VGX version is newer than "
       "the maximum version supported by the Host. Disabling vGPU."}},
     "failed",
     "device-stuck,missing-uuid",
     ""},
    /* VM 202 started long before; its manager process logs the guest's driver later */
    {202,
     T0 - 9000,
     "OK",
     "",
     {{'M', 100, 3202, START_CALL}},
     "failed",
     "guest-driver-mismatch",
     ""},
    {101,
     T0 - 5000,
     QEMU_EXIT,
     "",
     {{'K', 100, 0,
       "[nvidia-vgpu-vfio] %U: ERESTARTSYS received during open, waiting for 25000 milliseconds"},
      {'M', 200, 1999, START_CALL},
      {'M', 300, 1999,
       "error: vmiop_log: (0x1): init_device_instance failed for inst 1 with error 1 (multiple "
       "vGPUs in a VM not supported)"}},
     NULL,
     NULL,
     NULL}, /* an older start: judged by VM 101's case above */
};

static long long case_start(const struct vcase *c) {
    return c->start ? c->start : T0 + (long long)(c->vmid - 100) * 100;
}

/* tmpl with %U replaced by the VM's mdev UUID (index 0) */
static char *fill(const char *tmpl, unsigned long vmid) {
    char uuid[40], *out = NULL;
    size_t size;
    snprintf(uuid, sizeof(uuid), "%08d-0000-0000-0000-%012lu", 0, vmid);
    FILE *f = open_memstream(&out, &size);
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '%' && p[1] == 'U') {
            fputs(uuid, f);
            p++;
        } else {
            fputc(*p, f);
        }
    }
    fclose(f);
    return out;
}

struct jent {
    long long usec;
    const struct jline *j;
    unsigned long vmid;
};

static int jent_cmp(const void *a, const void *b) {
    long long x = ((const struct jent *)a)->usec, y = ((const struct jent *)b)->usec;
    return (x > y) - (x < y);
}

/* One entry of journald's export format, as journald stores such a line. */
static void export_entry(FILE *f, const struct jent *e, long mono) {
    const struct jline *j = e->j;
    char *msg = fill(j->msg, e->vmid);
    fprintf(f, "__REALTIME_TIMESTAMP=%lld\n__MONOTONIC_TIMESTAMP=%ld\n", e->usec, mono);
    fprintf(f, "_BOOT_ID=0123456789abcdef0123456789abcdef\n");
    if (j->src == 'K') {
        fprintf(f, "_TRANSPORT=kernel\nSYSLOG_IDENTIFIER=kernel\n");
    } else {
        const char *unit = j->src == 'M' ? "nvidia-vgpu-mgr" : "nvidia-vgpud";
        fprintf(
            f, "_TRANSPORT=stdout\n_PID=%ld\n_SYSTEMD_UNIT=%s.service\nSYSLOG_IDENTIFIER=%s\n",
            j->pid, unit, unit
        );
    }
    fprintf(f, "MESSAGE=%s\n\n", msg);
    free(msg);
}

/* The journal, in a machine-id directory as journald keeps it (in time order, as journald
 * writes), and a line of a source diagnose does not read. */
static void write_journal(void) {
    struct jent all[256];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (const struct jline *j = cases[i].j; j->src; j++) {
            assert_true(n < sizeof(all) / sizeof(all[0]));
            all[n++] =
                (struct jent){case_start(&cases[i]) * 1000000 + j->ms * 1000, j, cases[i].vmid};
        }
    }
    qsort(all, n, sizeof(all[0]), jent_cmp);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        export_entry(f, &all[i], (long)i + 1);
    }
    fprintf(
        f,
        "__REALTIME_TIMESTAMP=%lld999999\n__MONOTONIC_TIMESTAMP=99999\n"
        "_BOOT_ID=0123456789abcdef0123456789abcdef\n_PID=1\n_SYSTEMD_UNIT=cron.service\n"
        "MESSAGE=error: Failed to get VM UUID from QEMU command-line 0x57\n\n",
        T0 + 3000
    );
    assert_int_equal(fclose(f), 0);
    int r = fh_write_journal(FH, text);
    free(text);
    if (r == -ENOENT) {
        fail_msg(
            "%s is missing: install Debian's systemd-journal-remote (scripts/test.sh "
            "installs it); the diagnose tests need real journal files",
            FH_JOURNAL_REMOTE
        );
    }
    assert_int_equal(r, 0);
}

static char *upid_of(const struct vcase *c) {
    char *u;
    assert_true(
        asprintf(
            &u, "UPID:pve1:%08lX:%08X:%08llX:qmstart:%lu:root@pam:", 4000 + c->vmid, 0xABCDE,
            case_start(c), c->vmid
        ) > 0
    );
    return u;
}

/* Each case's task: its log file, and its line in index (the oldest in index.1) or active. */
static void write_tasks(void) {
    char *index = strdup(""), *old = strdup(""), *active = strdup("");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct vcase *c = &cases[i];
        char *upid = upid_of(c), *log = fill(c->log, c->vmid), *path, *text, **list, *grown;
        long long end = case_start(c) + 5;
        const char *st = c->status;
        assert_true(
            asprintf(
                &path, "var/log/pve/tasks/%c/%s",
                upid[strlen("UPID:pve1:00000000:00000000:0000000")], upid
            ) > 0
        );
        assert_true(
            asprintf(
                &text, "%s%s%s%s\n", log, st ? "TASK " : "",
                st && strcmp(st, "OK") && strncmp(st, "WARN", 4) ? "ERROR: " : "", st ? st : ""
            ) > 0
        );
        assert_int_equal(fh_write(FH, path, st ? text : log), 0);
        list = !st || c->vmid == 110 ? &active : c->start && c->start < T0 - 4000 ? &old : &index;
        if (list == &active) {
            if (st) {
                assert_true(asprintf(&grown, "%s%s 1 %08llX %s\n", *list, upid, end, st) > 0);
            } else {
                assert_true(asprintf(&grown, "%s%s 0\n", *list, upid) > 0);
            }
        } else {
            assert_true(asprintf(&grown, "%s%s %08llX %s\n", *list, upid, end, st) > 0);
        }
        free(*list);
        *list = grown;
        free(upid);
        free(log);
        free(path);
        free(text);
    }
    assert_int_equal(fh_write(FH, "var/log/pve/tasks/index", index), 0);
    assert_int_equal(fh_write(FH, "var/log/pve/tasks/index.1", old), 0);
    assert_int_equal(fh_write(FH, "var/log/pve/tasks/active", active), 0);
    free(index);
    free(old);
    free(active);
}

static int setup_host(void **state) {
    (void)state;
    assert_int_equal(fh_create_p40_pair(FH), 0);
    write_journal();
    write_tasks();
    return 0;
}

static int teardown_host(void **state) {
    (void)state;
    fh_destroy(FH);
    return 0;
}

/* The codes of a findings array, comma-separated. */
static void codes_of(json_object *list, char *buf, size_t size) {
    buf[0] = '\0';
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *code = json_object_object_get(json_object_array_get_idx(list, i), "code");
        snprintf(
            buf + strlen(buf), size - strlen(buf), "%s%s", i ? "," : "",
            json_object_get_string(code)
        );
    }
}

/* Every VM names its own cause and nothing else; its evidence is its own. */
static void test_each_vm_gets_its_cause(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct vcase *c = &cases[i];
        if (!c->outcome) {
            continue;
        }
        char vmid[16], got[256];
        snprintf(vmid, sizeof(vmid), "%lu", c->vmid);
        assert_int_equal(fh_run(FH, &R, NULL, "diagnose", vmid, "--json", NULL), 0);
        json_object *o = json_tokener_parse(R.out);
        assert_non_null(o);
        const char *outcome = json_object_get_string(json_object_object_get(o, "outcome"));
        codes_of(json_object_object_get(o, "causes"), got, sizeof(got));
        if (strcmp(outcome, c->outcome) || strcmp(got, c->causes)) {
            fail_msg(
                "VM %lu: outcome %s causes '%s', want %s '%s'\n%s", c->vmid, outcome, got,
                c->outcome, c->causes, R.out
            );
        }
        codes_of(json_object_object_get(o, "warnings"), got, sizeof(got));
        if (strcmp(got, c->warnings)) {
            fail_msg("VM %lu: warnings '%s', want '%s'\n%s", c->vmid, got, c->warnings, R.out);
        }
        json_object *task = json_object_object_get(o, "task");
        char *upid = upid_of(c);
        assert_string_equal(json_object_get_string(json_object_object_get(task, "upid")), upid);
        free(upid);
        assert_true(json_object_get_boolean(
            json_object_object_get(json_object_object_get(o, "journal"), "read")
        ));
        json_object_put(o);
    }
}

static void test_text_names_cause_fix_and_own_evidence(void **state) {
    (void)state;
    const char *env[] = {"TZ=UTC", NULL};
    char *before = fh_snapshot(FH);
    assert_int_equal(fh_run(FH, &R, env, "diagnose", "101", NULL), 0);
    assert_host_unchanged(FH, before); /* read-only */
    assert_contains(R.out, "VM 101: the last start failed\n");
    assert_contains(R.out, "ended 2023-11-14 22:15:05: start failed: QEMU exited with code 1");
    assert_contains(R.out, "cause: QEMU started the vGPU without -uuid [missing-uuid]\n");
    assert_contains(
        R.out, "  fix: upgrade qemu-server to 7.2-4 or later, or qm set 101 --args "
               "'-uuid 00000000-0000-0000-0000-000000000101'"
    );
    assert_contains(
        R.out, "    2023-11-14 22:15:00 nvidia-vgpu-mgr: error: vmiop_env_log: "
               "Failed to get VM UUID from QEMU command-line 0x57\n"
    );
    /* VM 201's lines of the same second, and VM 101's own older start, are not its */
    assert_not_contains(R.out, "000000000201");
    assert_not_contains(R.out, "ERESTARTSYS");
    assert_not_contains(R.out, "multiple vGPUs");
    assert_string_equal(R.err, "");
}

static void test_success_and_unknown_said(void **state) {
    (void)state;
    assert_int_equal(fh_run(FH, &R, NULL, "diagnose", "120", NULL), 0);
    assert_contains(R.out, "VM 120: the last start succeeded\n");
    assert_not_contains(R.out, "cause:");
    assert_int_equal(fh_run(FH, &R, NULL, "diagnose", "121", NULL), 0);
    assert_contains(R.out, "VM 121: the last start has not ended yet\n");
    assert_contains(R.out, "nothing failed so far");
    assert_int_equal(fh_run(FH, &R, NULL, "diagnose", "111", NULL), 0);
    assert_contains(
        R.out, "cause: the start failed in a way the catalogue does not know [unknown]"
    );
    assert_contains(
        R.out, "task log task: kvm: -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/"
               "00000000-0000-0000-0000-000000000111,id=hostpci0"
    );
    assert_contains(R.out, "task log task: TASK ERROR: start failed: QEMU exited with code 1");
    assert_not_contains(R.out, "error recovery"); /* harmless: not even evidence */
}

static void test_not_found_and_usage(void **state) {
    (void)state;
    assert_int_equal(fh_run(FH, &R, NULL, "diagnose", "999", NULL), 1);
    assert_contains(R.err, "VM 999 does not exist on this node");
    assert_string_equal(R.out, "");
    assert_int_equal(fh_vmconf(FH, 998, "memory: 512\n"), 0);
    assert_int_equal(fh_run(FH, &R, NULL, "diagnose", "998", NULL), 1);
    assert_contains(R.err, "VM 998 has no start in this node's task list");
    assert_contains(R.err, "qm start 998");
    assert_int_equal(fh_run(FH, &R, NULL, "diagnose", NULL), 2);
    assert_int_equal(fh_run(FH, &R, NULL, "diagnose", "abc", NULL), 2);
    assert_int_equal(fh_run(FH, &R, NULL, "diagnose", "101", "--bogus", NULL), 2);
    assert_int_equal(fh_run(FH, &R, NULL, "help", "diagnose", NULL), 0);
    assert_contains(R.out, "Usage: pve-vgpu-hook [GLOBAL] diagnose VMID [--json]");
}

/* Without journal files, the task log is still judged, and stderr says what was not read. */
static void test_without_journal(void **state) {
    (void)state;
    char from[4200], to[4200];
    snprintf(from, sizeof(from), "%s/var/log/journal", FH->root);
    snprintf(to, sizeof(to), "%s/var/log/journal.off", FH->root);
    assert_int_equal(rename(from, to), 0);
    int st = fh_run(FH, &R, NULL, "diagnose", "102", NULL);
    assert_int_equal(rename(to, from), 0);
    assert_int_equal(st, 0);
    assert_contains(R.out, "[bad-profile-override]");
    assert_contains(R.err, "cannot read the journal in /var/log/journal");
    assert_contains(R.err, "only the task log was judged");
}

/* ---------- the pure parts ---------- */

static void test_upid_and_task_lines(void **state) {
    (void)state;
    struct pve_upid u;
    const char *ok = "UPID:pve-1:0000ABCD:012345678:6553F10A:qmstart:100:root@pam:";
    assert_int_equal(upid_parse(ok, strlen(ok), &u), 0);
    assert_string_equal(u.node, "pve-1");
    assert_int_equal(u.starttime, 0x6553F10A);
    assert_int_equal(u.subdir, 'A');
    assert_string_equal(u.id, "100");
    static const char *const bad[] = {
        "UPID:pve1:0000ABCD:00123456:6553F10A:qmstart:100:root@pam",    /* no final ':' */
        "UPID:pve1:ABCD:00123456:6553F10A:qmstart:100:root@pam:",       /* pid not 8 digits */
        "UPID:-pve:0000ABCD:00123456:6553F10A:qmstart:100:root@pam:",   /* node */
        "UPID:pve1:0000ABCD:00123456:6553F10A:qmstart:../x:root@pam:",  /* a path */
        "UPID:pve1:0000ABCD:00123456:6553F10G:qmstart:100:root@pam:",   /* not hex */
        "UPID:pve1:0000ABCD:00123456:6553F10A:qmstart:100:root@pam:x:", /* a field more */
        "XPID:pve1:0000ABCD:00123456:6553F10A:qmstart:100:root@pam:",
        "UPID:pve1:0000ABCD:0012345678:6553F10A:qmstart:100:root@pam:", /* pstart 10 digits */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (upid_parse(bad[i], strlen(bad[i]), &u) == 0) {
            fail_msg("accepted %s", bad[i]);
        }
    }
    struct pve_task t;
    const char *idx = "UPID:pve1:0000ABCD:00123456:6553F10A:qmstart:100:root@pam: 6553F10F "
                      "start failed: QEMU exited with code 1";
    assert_int_equal(pve_task_parse(idx, strlen(idx), false, &t), 0);
    assert_true(t.ended);
    assert_int_equal(t.endtime, 0x6553F10F);
    assert_string_equal(t.status, "start failed: QEMU exited with code 1");
    pve_task_free(&t);
    const char *run = "UPID:pve1:0000ABCD:00123456:6553F10A:qmstart:100:root@pam: 0";
    assert_int_equal(pve_task_parse(run, strlen(run), true, &t), 0);
    assert_false(t.ended);
    assert_null(t.status);
    pve_task_free(&t);
    assert_int_equal(pve_task_parse(run, strlen(run), false, &t), -EINVAL);
    char *st = pve_task_log_status("kvm: x\nTASK ERROR: boom\n\n");
    assert_string_equal(st, "ERROR: boom");
    free(st);
    assert_null(pve_task_log_status("still running\n"));
}

static void test_line_parsers(void **state) {
    (void)state;
    char uuid[VGPULOG_UUID_SIZE];
    unsigned long vmid;
    assert_true(vgpulog_kernel_uuid(
        "[nvidia-vgpu-vfio] 00000000-0000-0000-0000-000000000100: start failed", uuid
    ));
    assert_string_equal(uuid, "00000000-0000-0000-0000-000000000100");
    assert_false(
        vgpulog_kernel_uuid("[nvidia-vgpu-vfio] 00000000-0000-0000-0000-0000000001000: x", uuid)
    );
    assert_true(vgpulog_start_call_uuid(
        "notice: vmiop_env_log: (0x0): Received start call from nvidia-vgpu-vfio module: mdev "
        "uuid 00000001-0000-0000-0000-000000000105 GPU PCI id 00:06:00.0",
        uuid
    ));
    assert_string_equal(uuid, "00000001-0000-0000-0000-000000000105");
    assert_true(vgpulog_unlock_vmid("Applying proxmox VMID 105 profile overrides", &vmid));
    assert_int_equal(vmid, 105);
    assert_false(vgpulog_unlock_vmid("Applying proxmox VMID 10x profile overrides", &vmid));
    assert_true(vgpulog_names_pci("nvidia 0000:41:00.4: VF enabled", "0000:41:00.4"));
    assert_true(vgpulog_names_pci("NVRM: Xid (PCI:0000:41:00.4): 79", "0000:41:00.4"));
    assert_false(vgpulog_names_pci("nvidia 0000:41:00.40: x", "0000:41:00.4"));
    assert_false(vgpulog_names_pci("nvidia 0001:41:00.4: x", "0000:41:00.4"));
}

/* The catalogue without a journal file: harmless lines never count; a line of another VM's
 * UUID is not this VM's; a host-wide line counts only in the start's window. */
static void test_catalogue_table(void **state) {
    (void)state;
    struct {
        int src;
        long long sec;
        long pid;
        const char *msg;
        const char *want; /* causes of VM 100, started at 1000, ended at 1005, status failed */
    } rows[] = {
        {JOURNAL_KERNEL, 1001, 0,
         "[nvidia-vgpu-vfio] 00000000-0000-0000-0000-000000000100: vGPU migration disabled",
         "unknown"},
        {JOURNAL_KERNEL, 1001, 0,
         "[nvidia-vgpu-vfio] 00000000-0000-0000-0000-000000000101: ERESTARTSYS received during "
         "open",
         "unknown"},
        {JOURNAL_KERNEL, 1001, 0,
         "[nvidia-vgpu-vfio] 00000001-0000-0000-0000-000000000100: ERESTARTSYS received during "
         "open",
         "device-stuck"},
        {JOURNAL_KERNEL, 999, 0,
         "[nvidia-vgpu-vfio] 00000000-0000-0000-0000-000000000100: ERESTARTSYS received during "
         "open",
         "unknown"},
        {JOURNAL_KERNEL, 1010, 0, "NVRM: Xid (PCI:0000:06:00): 79, GPU has fallen off the bus.",
         "gpu-fell-off-bus"},
        {JOURNAL_KERNEL, 1016, 0, "NVRM: Xid (PCI:0000:06:00): 79, GPU has fallen off the bus.",
         "unknown"},
        {JOURNAL_VGPU_MGR, 1002, 77, "Applying proxmox VMID 100 profile overrides", "unknown"},
        {JOURNAL_VGPU_MGR, 1002, 77, "Failed to decode config: expected '='",
         "bad-profile-override"},
        {JOURNAL_VGPU_MGR, 1002, 78, "Failed to decode config: expected '='", "unknown"},
        {JOURNAL_VGPU_MGR, 1003, 79, "Applying proxmox VMID 101 profile overrides", "unknown"},
        {JOURNAL_VGPU_MGR, 1003, 79, "Failed to decode config: expected '='", "unknown"},
        {JOURNAL_VGPUD, 1002, 9, "GPU not supported by vGPU at PCI Id: 0:6:0:0", "no-vgpu-types"},
    };
    struct journal_entry je[sizeof(rows) / sizeof(rows[0])];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        /* each row alone after the rows before it that only tie (the unlock line) */
        size_t n = 0;
        for (size_t k = 0; k <= i; k++) {
            if (k == i || !strcmp(rows[k].want, "unknown")) {
                je[n++] = (struct journal_entry
                ){(enum journal_source)rows[k].src, (unsigned long long)rows[k].sec * 1000000,
                  rows[k].pid, (char *)rows[k].msg};
            }
        }
        struct diag_input in = {
            .vmid = 100,
            .start = 1000,
            .ended = true,
            .end = 1005,
            .status = "start failed: QEMU exited with code 1",
            .log = "TASK ERROR: start failed: QEMU exited with code 1\n",
            .journal = je,
            .njournal = n};
        struct diag_result r;
        assert_int_equal(diagnose_logs(&in, &r), 0);
        char got[256] = "";
        for (size_t k = 0; k < r.ncauses; k++) {
            snprintf(
                got + strlen(got), sizeof(got) - strlen(got), "%s%s", k ? "," : "", r.causes[k].code
            );
        }
        if (strcmp(got, rows[i].want)) {
            fail_msg("row %zu (%s): got '%s', want '%s'", i, rows[i].msg, got, rows[i].want);
        }
        diag_result_free(&r);
    }
}

int main(void) {
    const struct CMUnitTest host[] = {
        cmocka_unit_test(test_each_vm_gets_its_cause),
        cmocka_unit_test(test_text_names_cause_fix_and_own_evidence),
        cmocka_unit_test(test_success_and_unknown_said),
        cmocka_unit_test(test_not_found_and_usage),
        cmocka_unit_test(test_without_journal),
    };
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_upid_and_task_lines),
        cmocka_unit_test(test_line_parsers),
        cmocka_unit_test(test_catalogue_table),
    };
    return cmocka_run_group_tests(pure, NULL, NULL) |
           cmocka_run_group_tests(host, setup_host, teardown_host);
}
