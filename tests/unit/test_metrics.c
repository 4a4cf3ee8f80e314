/*
 * metrics: the real binary on fake hosts (a P40 in equal-size mode with running VMs and a
 * leftover, an SR-IOV A40, a GPU on NVIDIA's vendor interface), read as Prometheus would: each
 * sample's value, label values escaped, and Prometheus' own linter (promtool check metrics)
 * finds no problem. --output writes the same text atomically, or says why it cannot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct fakehost FH_HOST;
static struct fakehost *const FH = &FH_HOST;
static struct fh_result R;

#define run(...) fh_run(FH, &R, NULL, __VA_ARGS__, NULL)

static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create(FH), 0);
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"remove_wait_s\": 0}\n");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(FH);
    return 0;
}

/* The sample line (name{labels} value) is in the exposition. */
#define assert_sample(text, line) assert_contains((text), "\n" line "\n")

/* Prometheus' linter on the text: no parse error, no naming problem. A missing promtool is a
 * failure, never a skip (scripts/test.sh installs Debian's prometheus package for it). */
static void assert_promtool_clean(const char *text) {
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fail_msg("promtool is missing: install Debian's 'prometheus' package "
                 "(scripts/deps.sh prometheus); this test needs its 'check metrics'");
    }
    char in[] = "/tmp/pvh-metrics-XXXXXX";
    int fd = mkstemp(in);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char cmd[256], out[8192] = "";
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", in);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    unlink(in);
    if (st != 0 || n != 0) {
        fail_msg("promtool check metrics: status %d\n%s\non:\n%s", st, out, text);
    }
}

/* Two VMs running on a P40 (equal-size, 2 GiB vGPUs) and VM 102's device left over. */
static void test_p40_equal_size(void **state) {
    (void)state;
    assert_int_equal(fh_add_p40(FH, GPU_A), 0);
    assert_int_equal(fh_add_p40(FH, GPU_B), 0);
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-47", U100), 0);
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-47", U101), 0);
    assert_int_equal(
        fh_add_mdev(FH, GPU_A, "nvidia-47", "00000000-0000-0000-0000-000000000102"), 0
    );
    fh_run_vm(FH, 100, 4100);
    fh_run_vm(FH, 101, 4101);
    fh_vmconf(FH, 100, FH_HOOKSCRIPT "hostpci0: 0000:06:00.0,mdev=nvidia-47\n");
    fh_vmconf(FH, 101, FH_HOOKSCRIPT "hostpci0: 0000:06:00.0,mdev=nvidia-47\n");
    fh_vmconf(FH, 102, FH_HOOKSCRIPT "hostpci0: 0000:06:00.0,mdev=nvidia-47\n");
    assert_int_equal(fh_make_ready(FH), 0);
    assert_int_equal(fh_install_hookscript(FH), 0);
    char *before = fh_snapshot(FH);
    assert_int_equal(run("metrics"), 0);
    assert_host_unchanged(FH, before);
    assert_string_equal(R.err, "");
    assert_sample(R.out, "pve_vgpu_scrape_success 1");
    assert_sample(R.out, "pve_vgpu_host_ready 1");
    assert_sample(R.out, "pve_vgpu_host_problems 0");
    assert_sample(
        R.out, "pve_vgpu_gpu_info{gpu=\"0000:06:00.0\",model=\"P40\",kind=\"mdev\","
               "mode=\"equal-size\"} 1"
    );
    assert_sample(
        R.out, "pve_vgpu_gpu_info{gpu=\"0000:07:00.0\",model=\"P40\",kind=\"mdev\",mode=\"idle\"} 1"
    );
    assert_sample(R.out, "pve_vgpu_gpu_framebuffer_bytes{gpu=\"0000:06:00.0\"} 25769803776");
    assert_sample(
        R.out, "pve_vgpu_instances_used{gpu=\"0000:06:00.0\",type=\"nvidia-47\",type_name=\"GRID "
               "P40-2Q\"} 3"
    );
    assert_sample(
        R.out, "pve_vgpu_instances_used{gpu=\"0000:06:00.0\",type=\"nvidia-46\",type_name=\"GRID "
               "P40-1Q\"} 0"
    );
    assert_sample(
        R.out, "pve_vgpu_instances_available{gpu=\"0000:06:00.0\",type=\"nvidia-47\","
               "type_name=\"GRID P40-2Q\"} 9"
    );
    assert_sample(
        R.out, "pve_vgpu_instances_available{gpu=\"0000:07:00.0\",type=\"nvidia-46\","
               "type_name=\"GRID P40-1Q\"} 24"
    );
    assert_sample(
        R.out, "pve_vgpu_vm_info{vmid=\"100\",gpu=\"0000:06:00.0\",type=\"nvidia-47\","
               "type_name=\"GRID P40-2Q\",uuid=\"" U100 "\",state=\"running\"} 1"
    );
    assert_sample(
        R.out, "pve_vgpu_vm_info{vmid=\"102\",gpu=\"0000:06:00.0\",type=\"nvidia-47\","
               "type_name=\"GRID P40-2Q\",uuid=\"00000000-0000-0000-0000-000000000102\","
               "state=\"leftover\"} 1"
    );
    assert_sample(R.out, "pve_vgpu_leftovers 1");
    assert_sample(R.out, "pve_vgpu_vms_without_vgpu 0");
    assert_contains(
        R.out, "\n# TYPE pve_vgpu_scrape_timestamp_seconds gauge\n"
               "pve_vgpu_scrape_timestamp_seconds 1"
    );
    assert_promtool_clean(R.out);
}

/* An SR-IOV A40: one vGPU per VF; the doctor's problems counted. */
static void test_a40_sriov(void **state) {
    (void)state;
    assert_int_equal(fh_add_a40_sriov(FH, "0000:41:00.0", 4), 0);
    assert_int_equal(fh_add_mdev(FH, "0000:41:00.4", "nvidia-560", U100), 0);
    fh_run_vm(FH, 100, 4100);
    fh_vmconf(FH, 100, "hostpci0: 0000:41:00.4,mdev=nvidia-560\n");
    fh_run_vm(FH, 101, 4101); /* runs, but its vGPU is gone */
    fh_vmconf(FH, 101, "hostpci0: 0000:41:00.5,mdev=nvidia-560\n");
    assert_int_equal(run("metrics"), 0);
    assert_sample(R.out, "pve_vgpu_scrape_success 1");
    assert_sample(
        R.out, "pve_vgpu_gpu_info{gpu=\"0000:41:00.0\",model=\"A40\",kind=\"sriov-mdev\","
               "mode=\"equal-size\"} 1"
    );
    assert_sample(R.out, "pve_vgpu_gpu_vfs{gpu=\"0000:41:00.0\"} 4");
    assert_sample(
        R.out, "pve_vgpu_instances_used{gpu=\"0000:41:00.0\",type=\"nvidia-560\","
               "type_name=\"NVIDIA A40-4Q\"} 1"
    );
    assert_sample(
        R.out, "pve_vgpu_instances_available{gpu=\"0000:41:00.0\",type=\"nvidia-560\","
               "type_name=\"NVIDIA A40-4Q\"} 3"
    );
    assert_sample(
        R.out, "pve_vgpu_vm_info{vmid=\"100\",gpu=\"0000:41:00.0\",type=\"nvidia-560\","
               "type_name=\"NVIDIA A40-4Q\",uuid=\"" U100 "\",state=\"running\"} 1"
    );
    assert_sample(R.out, "pve_vgpu_leftovers 0");
    assert_sample(R.out, "pve_vgpu_vms_without_vgpu 1");
    assert_sample(R.out, "pve_vgpu_host_ready 0");
    assert_sample(R.out, "pve_vgpu_host_problems 3");
    assert_promtool_clean(R.out);
    assert_int_equal(run("doctor"), 1); /* the same verdict */
    assert_contains(R.out, "is not ready for vGPUs: 3 problems");
}

/* Each of an A40's VFs says 1 for every type the whole GPU still has room for: the sum over
 * VFs counts free VFs, not room. Per physical GPU, a type is available at most max_instance less
 * what the GPU hosts (A40-48Q: 1, A40-24Q: 2), never the number of free VFs. */
static void test_a40_sriov_capacity(void **state) {
    (void)state;
    assert_int_equal(fh_add_a40_sriov(FH, "0000:41:00.0", 8), 0);
    assert_int_equal(run("metrics"), 0);
    assert_sample(
        R.out, "pve_vgpu_instances_available{gpu=\"0000:41:00.0\",type=\"nvidia-566\","
               "type_name=\"NVIDIA A40-48Q\"} 1"
    );
    assert_sample(
        R.out, "pve_vgpu_instances_available{gpu=\"0000:41:00.0\",type=\"nvidia-565\","
               "type_name=\"NVIDIA A40-24Q\"} 2"
    );
    assert_sample(
        R.out, "pve_vgpu_instances_available{gpu=\"0000:41:00.0\",type=\"nvidia-560\","
               "type_name=\"NVIDIA A40-4Q\"} 8"
    );
    /* one A40-16Q (max 3) in use: 7 free VFs offer it, the GPU has room for 2 more */
    assert_int_equal(fh_add_mdev(FH, "0000:41:00.4", "nvidia-564", U100), 0);
    assert_int_equal(run("metrics"), 0);
    assert_sample(
        R.out, "pve_vgpu_instances_available{gpu=\"0000:41:00.0\",type=\"nvidia-564\","
               "type_name=\"NVIDIA A40-16Q\"} 2"
    );
    assert_sample(
        R.out, "pve_vgpu_instances_used{gpu=\"0000:41:00.0\",type=\"nvidia-564\","
               "type_name=\"NVIDIA A40-16Q\"} 1"
    );
    assert_promtool_clean(R.out);
}

/* NVIDIA's vendor interface: VF 81:00.4 runs VM 300, 81:00.5 keeps a type nobody uses. */
static void test_vendor_interface(void **state) {
    (void)state;
    assert_int_equal(
        fh_add_nvidia_iface(
            FH, "0000:81:00.0", 4,
            "ID    : vGPU Name\n"
            "1\t: NVIDIA L40S-2Q\n"
            "2\t: NVIDIA L40S-4Q\n"
        ),
        0
    );
    fh_write(FH, "sys/devices/pci0000:00/0000:81:00.4/nvidia/current_vgpu_type", "2\n");
    fh_write(FH, "sys/devices/pci0000:00/0000:81:00.5/nvidia/current_vgpu_type", "2\n");
    for (int f = 6; f <= 7; f++) { /* the driver offers free VFs the size in use only */
        char path[128];
        snprintf(
            path, sizeof(path), "sys/devices/pci0000:00/0000:81:00.%d/nvidia/creatable_vgpu_types",
            f
        );
        fh_write(FH, path, "ID    : vGPU Name\n2\t: NVIDIA L40S-4Q\n");
    }
    fh_vmconf(FH, 300, "hostpci0: 0000:81:00.4,mdev=nvidia-2\n");
    fh_run_vm_on_vf(FH, 300, 4300, "0000:81:00.4");
    assert_int_equal(run("metrics"), 0);
    assert_sample(R.out, "pve_vgpu_scrape_success 1");
    assert_sample(
        R.out, "pve_vgpu_gpu_info{gpu=\"0000:81:00.0\",model=\"L40S\",kind=\"vendor-interface\","
               "mode=\"equal-size\"} 1"
    );
    assert_sample(R.out, "pve_vgpu_gpu_vfs{gpu=\"0000:81:00.0\"} 4");
    assert_sample(
        R.out, "pve_vgpu_instances_used{gpu=\"0000:81:00.0\",type=\"nvidia-2\",type_name=\"NVIDIA "
               "L40S-4Q\"} 2"
    );
    assert_sample(
        R.out, "pve_vgpu_type_creatable{gpu=\"0000:81:00.0\",type=\"nvidia-2\",type_name=\"NVIDIA "
               "L40S-4Q\"} 1"
    );
    assert_not_contains(R.out, "type=\"nvidia-1\"");
    assert_sample(
        R.out, "pve_vgpu_vm_info{vmid=\"300\",gpu=\"0000:81:00.0\",type=\"nvidia-2\","
               "type_name=\"NVIDIA L40S-4Q\",uuid=\"\",state=\"running\"} 1"
    );
    assert_sample(R.out, "pve_vgpu_leftovers 1");
    assert_sample(R.out, "pve_vgpu_vms_without_vgpu 0"); /* its vGPU is the VF, not an mdev */
    assert_promtool_clean(R.out);
    assert_int_equal(run("status"), 0);
    assert_not_contains(R.out, "without their vGPU");
}

/* sysfs names are untrusted: a quote and a backslash in a type's name come out as Prometheus'
 * escapes; a newline and a control byte as the \xHH text every output of ours shows for them
 * (the inventory keeps such a name escaped), its backslash escaped in turn. */
static void test_label_escaping(void **state) {
    (void)state;
    assert_int_equal(fh_add_p40(FH, GPU_A), 0);
    fh_write(
        FH, "sys/devices/pci0000:00/" GPU_A "/mdev_supported_types/nvidia-46/name",
        "GRID \"P40\\1Q\"\nsecond\x01line\n"
    );
    assert_int_equal(run("metrics"), 0);
    assert_sample(
        R.out, "pve_vgpu_instances_used{gpu=\"0000:06:00.0\",type=\"nvidia-46\","
               "type_name=\"GRID \\\"P40\\\\1Q\\\"\\\\x0asecond\\\\x01line\"} 0"
    );
    assert_promtool_clean(R.out);
}

/* Settings that cannot be read: what could be read, pve_vgpu_scrape_success 0, the error, exit 1.
 */
static void test_unreadable_settings(void **state) {
    (void)state;
    assert_int_equal(fh_add_p40(FH, GPU_A), 0);
    fh_write(FH, "etc/pve/vgpu-hook.json", "{\"policy\": ");
    assert_int_equal(run("metrics"), 1);
    assert_sample(R.out, "pve_vgpu_scrape_success 0");
    assert_sample(R.out, "pve_vgpu_host_ready 0");
    assert_contains(R.err, "vgpu-hook.json:1:");
    /* the host is still shown, with the defaults, as status shows it */
    assert_contains(R.out, "pve_vgpu_gpu_framebuffer_bytes{gpu=\"0000:06:00.0\"}");
    assert_promtool_clean(R.out);
}

/* A type's available_instances that cannot be read: scrape_success 0 and exit status 1 (a
 * timer's unit shows it failed), stderr names the file, the rest is still exported. */
static void test_unreadable_available(void **state) {
    (void)state;
    assert_int_equal(fh_add_p40(FH, GPU_A), 0);
    fh_write(
        FH, "sys/devices/pci0000:00/" GPU_A "/mdev_supported_types/nvidia-46/available_instances",
        "garbage\n"
    );
    assert_int_equal(run("metrics"), 1);
    assert_sample(R.out, "pve_vgpu_scrape_success 0");
    assert_contains(R.err, "nvidia-46/available_instances");
    assert_sample(
        R.out, "pve_vgpu_instances_available{gpu=\"0000:06:00.0\",type=\"nvidia-47\","
               "type_name=\"GRID P40-2Q\"} 12"
    );
    assert_promtool_clean(R.out);
}

/* Every line but the scrape time. */
static char *without_timestamp(const char *text) {
    char *s = strdup(text), *t = strstr(s, "\npve_vgpu_scrape_timestamp_seconds ");
    assert_non_null(t);
    char *end = strchr(t + 1, '\n');
    memmove(t, end, strlen(end) + 1);
    return s;
}

/* --output FILE, relative to the current directory like --config: the same text as stdout,
 * written by a rename (no temp file stays), readable by node-exporter. */
static void test_output(void **state) {
    (void)state;
    assert_int_equal(fh_add_p40(FH, GPU_A), 0);
    assert_int_equal(run("metrics"), 0);
    char *want = without_timestamp(R.out);
    char dir[] = "/tmp/pvh-textfile-XXXXXX", cwd[4096];
    assert_non_null(mkdtemp(dir));
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    fh_run(FH, &R, NULL, "metrics", "--output", "pve-vgpu-hook.prom", NULL);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(R.status, 0);
    assert_string_equal(R.out, "");
    assert_string_equal(R.err, "");
    char path[4200];
    snprintf(path, sizeof(path), "%s/pve-vgpu-hook.prom", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char got[65536];
    got[fread(got, 1, sizeof(got) - 1, f)] = '\0';
    fclose(f);
    char *got_cut = without_timestamp(got);
    assert_string_equal(got_cut, want);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t entries = 0;
    while ((de = readdir(d))) {
        entries += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    }
    closedir(d);
    assert_int_equal(entries, 1); /* no temp file left */
    unlink(path);
    rmdir(dir);
    free(want);
    free(got_cut);
}

/* A directory that does not exist: what, why, what to do; nothing created. */
static void test_output_missing_dir(void **state) {
    (void)state;
    assert_int_equal(fh_add_p40(FH, GPU_A), 0);
    assert_int_equal(
        run("metrics", "--output", "/tmp/pvh-no-such-dir/node-exporter/pve-vgpu-hook.prom"), 1
    );
    assert_string_equal(R.out, "");
    assert_contains(
        R.err, "cannot write the metrics to '/tmp/pvh-no-such-dir/node-exporter/pve-vgpu-hook.prom'"
               ": No such file or directory"
    );
    assert_contains(R.err, "its directory does not exist: create it");
    assert_int_equal(access("/tmp/pvh-no-such-dir", F_OK), -1);
}

static void test_usage(void **state) {
    (void)state;
    assert_int_equal(run("metrics", "extra"), 2);
    assert_contains(R.err, "unexpected argument 'extra'");
    assert_int_equal(run("metrics", "--output"), 2);
    assert_contains(R.err, "--output needs a value");
    assert_int_equal(run("help", "metrics"), 0);
    assert_contains(R.out, "Usage: pve-vgpu-hook [GLOBAL] metrics [--output FILE]");
    assert_int_equal(run("--help"), 0);
    assert_contains(R.out, "metrics [--output FILE]");
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_p40_equal_size),       T(test_a40_sriov),
        T(test_a40_sriov_capacity),   T(test_vendor_interface),
        T(test_label_escaping),       T(test_unreadable_settings),
        T(test_unreadable_available), T(test_output),
        T(test_output_missing_dir),   T(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
