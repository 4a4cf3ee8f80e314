/*
 * doctor: host readiness on fake hosts, one broken state at a time and a healthy host; a
 * pre-start refusal caused by such a state names the cause and the fix. And VF types of
 * NVIDIA's vendor interface left set: cleanup and post-stop reset them, never one in use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct fakehost FH_HOST;
static struct fakehost *const FH = &FH_HOST; /* one host per test */
static struct fh_result R;

#define run(env, ...) fh_run(FH, &R, env, __VA_ARGS__, NULL)

static char *path_in(const char *rel) {
    static char buf[4200];
    snprintf(buf, sizeof(buf), "%s/%s", FH->root, rel);
    return buf;
}

/* Two P40s, the vGPU driver loaded and running, the IOMMU on: ready. */
static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create_p40_pair(FH), 0);
    assert_int_equal(fh_make_ready(FH), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(FH);
    return 0;
}

/* doctor changes nothing, exits with want, and prints every text */
static void doctor(int want, const char *const *texts) {
    char *before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "doctor"), want);
    for (size_t i = 0; texts && texts[i]; i++) {
        assert_contains(R.out, texts[i]);
    }
    assert_host_unchanged(FH, before);
}

static void test_ready(void **state) {
    (void)state;
    doctor(0, (const char *const[]){"node pve1 is ready: 2 NVIDIA GPUs offering", NULL});
    assert_int_equal(run(NULL, "doctor", "--json"), 0);
    assert_contains(R.out, "\"ready\": true");
    assert_contains(R.out, "\"problems\": [\n  ]");
}

/* An A40 with 32 VFs offers its 29 types once, not 29 per VF (928); the P40s 2 x 16. */
static void test_sriov_types_counted_per_gpu(void **state) {
    (void)state;
    assert_int_equal(fh_add_a40_sriov(FH, "0000:41:00.0", 32), 0);
    doctor(
        0, (const char *const[]){"node pve1 is ready: 3 NVIDIA GPUs offering 61 vGPU types", NULL}
    );
}

static void test_vfio_module_not_loaded(void **state) {
    (void)state;
    fh_add_pci(FH, "0000:0a:00.0", 0x10de, "nvidia"); /* bound to nvidia, no vGPU type */
    unlink(path_in("sys/module/nvidia_vgpu_vfio/refcnt"));
    rmdir(path_in("sys/module/nvidia_vgpu_vfio"));
    doctor(
        1, (const char *const[]
           ){"problem: NVIDIA GPU 0000:0a:00.0 offers no vGPU type: the "
             "nvidia_vgpu_vfio module is not loaded",
             "fix: modprobe nvidia_vgpu_vfio", "1 problem", NULL}
    );
    /* a VM on that GPU is refused with the cause, not a bare "not an mdev parent" */
    fh_vmconf(FH, 100, "hostpci0: 0000:0a:00.0,mdev=nvidia-46\n");
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "the nvidia_vgpu_vfio module is not loaded");
    assert_contains(R.err, "what to do: modprobe nvidia_vgpu_vfio");
    assert_contains(R.err, "'pve-vgpu-hook doctor' checks the whole host");
}

static void test_vfio_module_missing(void **state) {
    (void)state;
    fh_add_pci(FH, "0000:0a:00.0", 0x10de, "nvidia");
    unlink(path_in("sys/module/nvidia_vgpu_vfio/refcnt"));
    rmdir(path_in("sys/module/nvidia_vgpu_vfio"));
    fh_write(FH, "lib/modules/6.8.12-4-pve/modules.dep", "kernel/drivers/vfio/vfio.ko:\n");
    doctor(
        1, (const char *const[]
           ){"there is no nvidia_vgpu_vfio module for the running kernel "
             "6.8.12-4-pve",
             "dkms autoinstall", NULL}
    );
}

/* An upgrade installed kernel 6.8.12-10-pve (newer than 6.8.12-9-pve in version order, not in
 * byte order) without the vGPU module: doctor names it before the reboot. */
static void test_module_next_kernel(void **state) {
    (void)state;
    fh_write(FH, "boot/vmlinuz-6.8.12-4-pve", "");
    fh_write(FH, "boot/vmlinuz-6.8.12-9-pve", "");
    fh_write(FH, "lib/modules/6.8.12-9-pve/modules.dep", "updates/dkms/nvidia-vgpu-vfio.ko:\n");
    fh_write(FH, "boot/vmlinuz-6.8.12-10-pve", "");
    fh_write(FH, "lib/modules/6.8.12-10-pve/modules.dep", "kernel/drivers/vfio/vfio.ko:\n");
    fh_write(FH, "lib/modules/6.8.12-11-pve/modules.dep", ""); /* removed: no image in /boot */
    doctor(
        1, (const char *const[]
           ){"the kernel the node boots next, 6.8.12-10-pve, has no nvidia_vgpu_vfio module "
             "(running: 6.8.12-4-pve)",
             "fix: dkms autoinstall -k 6.8.12-10-pve", NULL}
    );
    assert_int_equal(run(NULL, "doctor", "--json"), 1);
    assert_contains(R.out, "\"check\": \"module-next-kernel\"");
    /* built for it: ready again */
    fh_write(FH, "lib/modules/6.8.12-10-pve/modules.dep", "updates/dkms/nvidia-vgpu-vfio.ko:\n");
    doctor(0, (const char *const[]){"is ready", NULL});
}

static void test_no_types_with_module(void **state) {
    (void)state;
    fh_add_pci(FH, "0000:0a:00.0", 0x10de, "nvidia");
    doctor(
        1, (const char *const[]
           ){"nvidia_vgpu_vfio is loaded, but it offers no vGPU type",
             "journalctl -u nvidia-vgpu-mgr", NULL}
    );
}

static void test_sriov_off(void **state) {
    (void)state;
    fh_add_pci(FH, "0000:41:00.0", 0x10de, "nvidia");
    fh_write(FH, "sys/devices/pci0000:00/0000:41:00.0/sriov_totalvfs", "32\n");
    fh_write(FH, "sys/devices/pci0000:00/0000:41:00.0/sriov_numvfs", "0\n");
    doctor(
        1, (const char *const[]
           ){"NVIDIA GPU 0000:41:00.0 can have 32 SR-IOV virtual functions, "
             "but none are enabled",
             "fix: systemctl enable --now pve-nvidia-sriov@ALL.service (or "
             "/usr/lib/nvidia/sriov-manage -e 0000:41:00.0)",
             NULL}
    );
    /* attach of a type no GPU offers now: refused, the reason is the VFs, and the fix */
    fh_vmconf(FH, 102, "cores: 2\n");
    assert_int_equal(run(NULL, "attach", "102", "--type", "nvidia-558"), 1);
    assert_contains(R.err, "no GPU on node pve1 offers type 'nvidia-558' now: NVIDIA GPU");
    assert_contains(R.err, "none are enabled");
    assert_contains(R.err, "what to do: systemctl enable --now pve-nvidia-sriov@ALL.service");
    /* a managed VM whose type no GPU offers now: pre-start says the same */
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"vms\": {\"102\": {\"type\": \"nvidia-558\"}}}\n");
    assert_int_equal(run(NULL, "102", "pre-start"), 1);
    assert_contains(R.err, "none are enabled");
    assert_contains(R.err, "what to do: systemctl enable --now pve-nvidia-sriov@ALL.service");
}

static void test_iommu_off(void **state) {
    (void)state;
    unlink(path_in("sys/kernel/iommu_groups/0/type"));
    rmdir(path_in("sys/kernel/iommu_groups/0"));
    doctor(1, (const char *const[]){"the IOMMU is off", "intel_iommu=on", NULL});
}

static void test_vgpu_mgr_down(void **state) {
    (void)state;
    unlink(path_in("proc/777/comm"));
    doctor(
        1,
        (const char *const[]
        ){"nvidia-vgpu-mgr is not running", "systemctl enable --now nvidia-vgpu-mgr.service", NULL}
    );
}

/* P40s (Pascal, no SR-IOV) offer vGPU types only with nvidia-vgpud running. */
static void test_vgpud_not_running(void **state) {
    (void)state;
    unlink(path_in("proc/778/comm"));
    doctor(
        1, (const char *const[]
           ){"nvidia-vgpud is not running: GPUs before Ampere",
             "fix: systemctl enable --now nvidia-vgpud.service", NULL}
    );
    assert_int_equal(run(NULL, "doctor", "--json"), 1);
    assert_contains(R.out, "\"check\": \"vgpud-not-running\"");
}

/* nvidia-vgpu-mgr logged an hour ago that vgpu_unlock-rs patched a structure of the wrong size;
 * a line of two days ago is not reported. */
static void test_unlock_outdated(void **state) {
    (void)state;
    char text[2048];
    long long now = (long long)time(NULL) * 1000000;
    snprintf(
        text, sizeof(text),
        "__REALTIME_TIMESTAMP=%lld\n__MONOTONIC_TIMESTAMP=1\n"
        "_BOOT_ID=0123456789abcdef0123456789abcdef\n_TRANSPORT=stdout\n_PID=900\n"
        "_SYSTEMD_UNIT=nvidia-vgpu-mgr.service\nSYSLOG_IDENTIFIER=nvidia-vgpu-mgr\n"
        "MESSAGE=Parameters size for VGPU_CONFIG was 1024 bytes, expected 1056 bytes\n\n",
        now - 48LL * 3600 * 1000000
    );
    assert_int_equal(fh_write_journal(FH, text), 0);
    doctor(0, (const char *const[]){"is ready", NULL});
    snprintf(
        text, sizeof(text),
        "__REALTIME_TIMESTAMP=%lld\n__MONOTONIC_TIMESTAMP=2\n"
        "_BOOT_ID=0123456789abcdef0123456789abcdef\n_TRANSPORT=stdout\n_PID=901\n"
        "_SYSTEMD_UNIT=nvidia-vgpu-mgr.service\nSYSLOG_IDENTIFIER=nvidia-vgpu-mgr\n"
        "MESSAGE=Parameters size for VGPU_CONFIG was 1024 bytes, expected 1056 bytes\n\n",
        now - 3600LL * 1000000
    );
    assert_int_equal(fh_write_journal(FH, text), 0);
    doctor(
        1, (const char *const[]
           ){"vgpu_unlock-rs is older than the NVIDIA driver: its overrides are silently ignored",
             "Parameters size for VGPU_CONFIG was 1024 bytes, expected 1056 bytes",
             "fix: rebuild vgpu_unlock-rs from a release that matches the driver branch", NULL}
    );
    assert_int_equal(run(NULL, "doctor", "--json"), 1);
    assert_contains(R.out, "\"check\": \"unlock-outdated\"");
}

static void test_clock_unsynced(void **state) {
    (void)state;
    setenv("FAKE_CLOCK_UNSYNC", "1", 1);
    doctor(
        1, (const char *const[]
           ){"the host clock is not synchronised",
             "fix: systemctl enable --now chrony (Proxmox VE 8's default), then check 'chronyc "
             "tracking'",
             NULL}
    );
    assert_int_equal(run(NULL, "doctor", "--json"), 1);
    unsetenv("FAKE_CLOCK_UNSYNC");
    assert_contains(R.out, "\"check\": \"clock-unsynced\"");
}

static void test_qemu_server_old(void **state) {
    (void)state;
    assert_int_equal(fh_add_nvidia_iface(FH, "0000:81:00.0", 2, "1414  : NVIDIA L40S-2Q\n"), 0);
    fh_qemu_server_version(FH, "8.2.4");
    doctor(
        1, (const char *const[]){"qemu-server 8.2.4 cannot use NVIDIA's vendor interface", NULL}
    );
    fh_qemu_server_version(FH, "8.2.5");
    doctor(0, NULL);
}

static void test_settings(void **state) {
    (void)state;
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"policy\": \"auto\",}\n");
    doctor(1, (const char *const[]){"/etc/pve/vgpu-hook.json:1:19: invalid JSON", NULL});
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0}\n");
    mkdir(path_in("etc/vgpu_unlock"), 0755);
    mkdir(path_in("etc/vgpu_unlock/config.toml"), 0755); /* not a file */
    doctor(1, (const char *const[]){"/etc/vgpu_unlock/config.toml cannot be read", NULL});
    assert_int_equal(run(NULL, "doctor", "--json"), 1);
    assert_contains(R.out, "\"check\": \"unlock-unreadable\"");
    assert_contains(R.out, "\"ready\": false");
}

/* ---------- VF types left set (NVIDIA's vendor interface) ---------- */

static char *vf_type(const char *vf) {
    char rel[128];
    snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/nvidia/current_vgpu_type", vf);
    return fh_read(FH, rel);
}

static void set_vf_type(const char *vf, const char *type) {
    char rel[128];
    snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/nvidia/current_vgpu_type", vf);
    fh_write(FH, rel, type);
}

static void test_vf_types_left_set(void **state) {
    (void)state;
    assert_int_equal(fh_add_nvidia_iface(FH, "0000:81:00.0", 3, "1414  : NVIDIA L40S-2Q\n"), 0);
    fh_vmconf(FH, 100, "hostpci0: 0000:81:00.4,mdev=nvidia-1414\n");
    fh_vmconf(FH, 101, "hostpci0: 0000:81:00.5,mdev=nvidia-1414\n");
    set_vf_type("0000:81:00.4", "1414\n"); /* Proxmox set it for VM 100, whose QEMU runs */
    set_vf_type("0000:81:00.5", "1414\n"); /* VM 101 is being started: its lock is held */
    set_vf_type("0000:81:00.6", "1414\n"); /* no VM names it, no QEMU uses it: left over */
    fh_run_vm_on_vf(FH, 100, 6100, "0000:81:00.4");
    int fd = open(path_in("var/lock/qemu-server/lock-101.conf"), O_RDWR | O_CREAT, 0644);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    char *before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "cleanup", "--dry-run"), 0);
    assert_contains(
        R.out, "kept the type of VF 0000:81:00.4 (nvidia-1414, VM 100): its VM is running"
    );
    assert_contains(R.out, "kept the type of VF 0000:81:00.5 (nvidia-1414, VM 101): Proxmox holds");
    assert_contains(R.out, "would reset the type of VF 0000:81:00.6 (nvidia-1414)");
    assert_contains(R.out, "0 leftover mdevs and 1 VF type; run without --dry-run");
    assert_host_unchanged(FH, before);
    /* the JSON says what the text says: a VF's type is reset, not removed */
    assert_int_equal(run(NULL, "cleanup", "--dry-run", "--json"), 0);
    assert_contains(
        R.out, "\"kind\": \"vf-type\",\n      \"uuid\": null,\n      \"pci\": \"0000:81:00.6\",\n"
               "      \"type\": \"nvidia-1414\",\n      \"vmid\": null,\n"
               "      \"action\": \"reset-type\",\n      \"result\": \"would-reset\",\n"
               "      \"message\": \"would reset the type of VF 0000:81:00.6 (nvidia-1414)\""
    );
    assert_not_contains(R.out, "would remove");
    before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "cleanup", "--dry-run"), 0);
    assert_host_unchanged(FH, before);
    assert_int_equal(run(NULL, "cleanup"), 0);
    assert_contains(R.out, "reset the type of VF 0000:81:00.6 (nvidia-1414)");
    char *t = vf_type("0000:81:00.6");
    assert_string_equal(t, "0");
    free(t);
    t = vf_type("0000:81:00.4");
    assert_string_equal(t, "1414\n");
    free(t);
    assert_int_equal(run(NULL, "cleanup", "--json"), 0);
    assert_contains(R.out, "\"pci\": \"0000:81:00.5\"");
    assert_contains(R.out, "\"result\": \"kept-busy\"");
    /* status says who has each VF */
    assert_int_equal(run(NULL, "status"), 0);
    assert_contains(R.out, "0000:81:00.4 nvidia-1414 (VM 100)");
    assert_contains(R.out, "0000:81:00.5 nvidia-1414 (VM 101, busy)");
    close(fd);
    /* another VM on the VF VM 100's QEMU uses: refused, as Proxmox would skip it */
    fh_vmconf(FH, 102, "hostpci0: 0000:81:00.4,mdev=nvidia-1414\n");
    assert_int_equal(run(NULL, "check", "102"), 1);
    assert_contains(R.out, "0000:81:00.4 (NVIDIA's vendor interface) is in use by VM 100");

    /* post-stop: QEMU is gone and Proxmox left the type (9.0.x without D-Bus): reset */
    unlink(path_in("run/qemu-server/100.pid"));
    unlink(path_in("proc/6100/cmdline"));
    assert_int_equal(run(NULL, "100", "post-stop"), 0);
    assert_contains(
        R.err, "reset the type of VF 0000:81:00.4 (nvidia-1414), which Proxmox left set"
    );
    t = vf_type("0000:81:00.4");
    assert_string_equal(t, "0");
    free(t);
    /* never another VM's VF: 101's type stays */
    t = vf_type("0000:81:00.5");
    assert_string_equal(t, "1414\n");
    free(t);
}

/* The vendor-interface view: sizes from the type names, and the GPU's mode as the types a
 * free VF may take reveal it. */
static void test_vendor_views(void **state) {
    (void)state;
    assert_int_equal(
        fh_add_nvidia_iface(FH, "0000:81:00.0", 2, "1  : NVIDIA L40S-2Q\n2  : NVIDIA L40S-4Q\n"), 0
    );
    assert_int_equal(run(NULL, "status"), 0);
    assert_contains(R.out, "idle; VFs in use: 0 of 2");
    assert_contains(R.out, "nvidia-2        NVIDIA L40S-4Q               4096 MiB");
    set_vf_type("0000:81:00.4", "1\n");
    /* the driver, in equal-size mode, offers only the hosted size on the free VF */
    fh_write(
        FH, "sys/devices/pci0000:00/0000:81:00.5/nvidia/creatable_vgpu_types",
        "ID : vGPU Name\n1 : NVIDIA L40S-2Q\n"
    );
    assert_int_equal(run(NULL, "status"), 0);
    assert_contains(R.out, "equal-size mode, 2048 MiB vGPUs; VFs in use: 1 of 2");
    /* types --dumpjson: the free VF, as an mdev parent would be, with what it can take now */
    assert_int_equal(run(NULL, "types", "--dumpjson"), 0);
    assert_contains(
        R.out, "\"0000:81:00.5\": [\n      {\n        \"nvidia-1\": {\n"
               "          \"available_instances\": 1,\n"
               "          \"device_api\": \"vfio-pci\",\n"
               "          \"name\": \"NVIDIA L40S-2Q\",\n"
    );
    assert_contains(
        R.out, "\"framebuffer_mib\": 2048,\n          \"mig_backed\": false,\n"
               "          \"physical_gpu\": \"0000:81:00.0\""
    );
    assert_not_contains(R.out, "L40S-4Q");
    fh_write(
        FH, "sys/devices/pci0000:00/0000:81:00.5/nvidia/creatable_vgpu_types",
        "ID : vGPU Name\n1 : NVIDIA L40S-2Q\n2 : NVIDIA L40S-4Q\n"
    );
    assert_int_equal(run(NULL, "status", "--json"), 0);
    assert_contains(R.out, "\"mode\": \"mixed-size\"");
    assert_contains(R.out, "\"message\": \"mixed-size mode\"");
    assert_contains(R.out, "\"framebuffer_mib\": 4096");
    /* a VF in use is an object, never a sentence */
    assert_contains(
        R.out, "\"pci\": \"0000:81:00.4\",\n          \"type\": \"nvidia-1\",\n          \"vmid\""
    );
}

/* status lists every VF that holds a type, however many (an L40S has 32, newer GPUs more),
 * and says which of them no VM runs. */
static void test_status_lists_every_vf(void **state) {
    (void)state;
    assert_int_equal(fh_add_nvidia_iface(FH, "0000:81:00.0", 40, "1 : NVIDIA L40S-1Q\n"), 0);
    for (unsigned i = 0; i < 40; i++) {
        char vf[16];
        snprintf(vf, sizeof(vf), "0000:81:%02x.%u", (4 + i) / 8, (4 + i) % 8);
        set_vf_type(vf, "1\n");
    }
    assert_int_equal(run(NULL, "status"), 0);
    assert_contains(
        R.out, "VFs in use: 40 of 40: 0000:81:00.4 nvidia-1 (no VM runs it: left over)"
    );
    assert_contains(R.out, ", 0000:81:05.3 nvidia-1 (no VM runs it: left over)\n");
    assert_int_equal(run(NULL, "status", "--json"), 0);
    assert_contains(R.out, "\"0000:81:05.3 nvidia-1 (no VM runs it: left over)\"");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_ready),
        T(test_status_lists_every_vf),
        T(test_vfio_module_not_loaded),
        T(test_vfio_module_missing),
        T(test_module_next_kernel),
        T(test_no_types_with_module),
        T(test_sriov_off),
        T(test_sriov_types_counted_per_gpu),
        T(test_iommu_off),
        T(test_vgpu_mgr_down),
        T(test_vgpud_not_running),
        T(test_unlock_outdated),
        T(test_clock_unsynced),
        T(test_qemu_server_old),
        T(test_settings),
        T(test_vf_types_left_set),
        T(test_vendor_views),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
