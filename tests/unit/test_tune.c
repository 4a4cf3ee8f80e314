/*
 * Per-VM tuning: the TOML subset (what it reads, what it refuses and where), vgpu_unlock-rs's
 * keys, types and units, our table spliced into someone else's file byte for byte, and on a
 * fake host: tune, then pre-start writing vgpu_params before QEMU opens the device, the driver
 * refusing once it is open, and every refusal leaving the host as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "testutil.h"
#include "toml.h"
#include "tune.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------- the TOML subset ---------- */

/* Files as vgpu_unlock-rs users write them: its README's example, the seed guide's hand edit,
 * and the forms TOML allows for the same tables. */
static const char README_EXAMPLE[] = "[profile.nvidia-55]\n"
                                     "num_displays = 1\n"
                                     "display_width = 1920\n"
                                     "display_height = 1080\n"
                                     "max_pixels = 2073600\n"
                                     "cuda_enabled = 1\n"
                                     "frl_enabled = 0\n";
static const char SEED_GUIDE[] = "[profile.nvidia-46]\n"
                                 "num_displays = 1\n"
                                 "display_width = 1920\n"
                                 "display_height = 1080\n"
                                 "max_pixels = 2073600\n"
                                 "cuda_enabled = 1\n"
                                 "frl_enabled = 0\n"
                                 "framebuffer = 939524096\n";
static const char MIXED[] = "# vGPU overrides for this host\r\n"
                            "\n"
                            "[profile.nvidia-46]   # P40-1Q\n"
                            "framebuffer = \"896MiB\"\n"
                            "card_name = 'GRID P40-1Q custom'\n"
                            "\n"
                            "[ mdev . \"00000000-0000-0000-0000-000000000100\" ]\n"
                            "pci_id = 0x1B3810DE\n"
                            "max_pixels = 8_294_400\n"
                            "\n"
                            "[vm.101]\n"
                            "frl_enabled = 0 # no limiter\n"
                            "adapter_name = \"Tesla \\u00e9\\\"x\\\"\"\n";

static void test_toml_reads(void **state) {
    (void)state;
    static const struct {
        const char *text;
        size_t ntables;
    } cases[] = {
        {"", 1},    {README_EXAMPLE, 2},       {SEED_GUIDE, 2},
        {MIXED, 4}, {"a = \"\xc2\x85\"\n", 1}, /* TOML allows C1 characters in strings */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct toml_doc d;
        struct pvh_err e = {0};
        assert_int_equal(toml_parse(cases[i].text, strlen(cases[i].text), &d, &e), 0);
        assert_int_equal(d.n, cases[i].ntables);
        struct pvh_warnings w = {0};
        assert_int_equal(unlock_file_check(&d, cases[i].text, 0, 0, &w, &e), 0);
        assert_int_equal(w.n, 0);
        warn_free(&w);
        toml_free(&d);
    }
    struct toml_doc d;
    struct pvh_err e = {0};
    assert_int_equal(toml_parse(MIXED, strlen(MIXED), &d, &e), 0);
    const char *mdev[] = {"mdev", "00000000-0000-0000-0000-000000000100"};
    const struct toml_table *t = toml_find(&d, mdev, 2);
    assert_non_null(t);
    assert_int_equal(t->nkvs, 2);
    assert_int_equal(t->kvs[0].i, 0x1B3810DE);
    assert_int_equal(t->kvs[1].i, 8294400);
    const char *vm[] = {"vm", "101"};
    t = toml_find(&d, vm, 2);
    assert_string_equal(t->kvs[1].s, "Tesla \xc3\xa9\"x\"");
    assert_string_equal(
        toml_find(&d, (const char *[]){"profile", "nvidia-46"}, 2)->kvs[1].s, "GRID P40-1Q custom"
    );
    toml_free(&d);
}

/* Beyond the subset, or not TOML: refused with where and why, never guessed. */
static void test_toml_refuses(void **state) {
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[a]\nx = 1.5\n", "line 2, column 5: floats and dates"},
        {"[a]\nx = [1, 2]\n", "line 2, column 5: arrays and inline tables"},
        {"[a]\nx = {y = 1}\n", "line 2, column 5: arrays and inline tables"},
        {"[[a]]\n", "line 1, column 1: arrays of tables"},
        {"[a]\nx = \"\"\"long\"\"\"\n", "line 2, column 5: multi-line strings"},
        {"[a]\nb.c = 1\n", "line 2, column 2: dotted keys"},
        {"[a]\nx = 1\nx = 2\n", "line 3, column 1: this key is defined twice"},
        {"[a]\n[a]\n", "line 2, column 4: this table is defined twice"},
        {"[a]\nx = \"open\n", "line 2, column 10: the string is not closed"},
        {"[a]\nx = 1979-05-27\n", "line 2, column 5: floats and dates"},
        {"[a]\nx = 012\n", "line 2, column 5: an integer with a leading zero"},
        {"[a]\nx = 99999999999999999999\n", "line 2, column 5: the integer does not fit"},
        {"[a]\nx = \"\\q\"\n", "line 2, column 6: an unknown escape"},
        {"[a]\nx = 1 y\n", "line 2, column 7: unexpected text after the value"},
        {"[a\n", "line 1, column 3: expected '.' or ']'"},
        {"x\n", "line 1, column 2: expected '='"},
        {"[a]\nx = 1\n[a.x]\n", "line 3, column 6: this table has the name of a key"},
        {"a = 1\n[b]\nc = \xff\n", "line 3, column 5: the file is not UTF-8"},
        {"a = \"\xc0\xaf\"\n", "line 1, column 6: the file is not UTF-8"}, /* overlong '/' */
        {"[a]\nx = tru\n", "line 2, column 5: not a value"},
        {"[a]\nx = ", "line 2, column 5: not a value"}, /* at the end (found by the fuzzer) */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct toml_doc d;
        struct pvh_err e = {0};
        int r = toml_parse(cases[i].text, strlen(cases[i].text), &d, &e);
        if (r != -EINVAL || !strstr(e.msg, cases[i].want)) {
            fail_msg("case %zu: rc %d, '%s' lacks '%s'", i, r, e.msg, cases[i].want);
        }
    }
}

/* What vgpu_unlock-rs would fail on (a wrong type anywhere) or ignore (an unknown key). */
static void test_unlock_file_check(void **state) {
    (void)state;
    static const struct {
        const char *text, *want;
        size_t nwarn;
    } cases[] = {
        {"[vm.100]\nfrl_enabled = false\n",
         "line 2, column 15: frl_enabled in [vm.100] must be an integer", 0},
        {"[profile.nvidia-46]\nframebuffer = \"1 XB\"\n", "must be bytes or a size", 0},
        {"[profile.nvidia-46]\nnum_displays = -1\n", "must be an integer from 0", 0},
        {"[vm.100]\ncard_name = 'this name is longer than thirty one bytes'\n",
         "longer than the driver's field", 0},
        {"[profile]\nx = 1\n", "is a value where a table is expected", 0},
        {"[vm.100]\nfps = 1\n", NULL, 1},
        {"[other]\nx = 1.0e0\n", "floats", 0}, /* the file must be TOML at all */
        {"[settings]\nanything = 'goes'\n", NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct toml_doc d;
        struct pvh_err e = {0};
        struct pvh_warnings w = {0};
        int r = toml_parse(cases[i].text, strlen(cases[i].text), &d, &e);
        if (r == 0) {
            r = unlock_file_check(&d, cases[i].text, 0, 0, &w, &e);
            toml_free(&d);
        }
        if (cases[i].want ? (r == 0 || !strstr(e.msg, cases[i].want)) : r != 0) {
            fail_msg("case %zu: rc %d, '%s'", i, r, e.msg);
        }
        assert_int_equal(w.n, cases[i].nwarn);
        warn_free(&w);
    }
}

static void test_unlock_values(void **state) {
    (void)state;
    static const struct {
        const char *key, *value;
        int rc;
        bool is_string;
    } cases[] = {
        {"frl_enabled", "0", 0, false},
        {"frl_enabled", "true", -EINVAL, false},
        {"frl_enabled", "2", -EINVAL, false},
        {"framebuffer", "896MiB", 0, true},
        {"framebuffer", "939524096", 0, false},
        {"framebuffer", "1.5 GiB", 0, true},
        {"framebuffer", "2XB", -EINVAL, false},
        {"framebuffer", "0x10", -EINVAL, false},
        {"num_displays", "4", 0, false},
        {"num_displays", "-1", -EINVAL, false},
        {"num_displays", "4294967296", -EINVAL, false},
        {"pci_id", "0x1B3810DE", 0, false},
        {"card_name", "GRID P40-1Q", 0, true},
        {"card_name", "0123456789012345678901234567890123", -EINVAL, false},
        {"license_type", "GRID-Virtual-WS,2.0;Quadro-Virtual-DWS,5.0", 0, true},
        {"fps", "60", -EINVAL, false},
        {"card_name", "a\x01b", -EINVAL, false},
        {"card_name",
         "a\xc2\x85"
         "b",
         -EINVAL, false}, /* a C1 control */
        {"card_name", "caf\xc3\xa9", 0, true},
        {"card_name", "say \"hi\"", -EINVAL, false},
        {"max_pixels", "8_294_400", 0, false},
        /* a TOML integer has 63 bits: a larger one would make the file unreadable */
        {"pci_id", "18446744073709551615", -EINVAL, false},
        {"pci_id", "9223372036854775807", 0, false},
        /* a size that large is still fine as the string vgpu_unlock-rs also reads */
        {"framebuffer", "18446744073709551615", 0, true},
        {"framebuffer", "007", 0, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pvh_err e = {0};
        bool s = false;
        int r = unlock_value_check(cases[i].key, cases[i].value, 0, &s, &e);
        if (r != cases[i].rc || (r == 0 && s != cases[i].is_string)) {
            fail_msg(
                "case %zu (%s=%s): rc %d string %d (%s)", i, cases[i].key, cases[i].value, r, s,
                e.msg
            );
        }
    }
    /* R580 doubled the name fields */
    struct pvh_err e = {0};
    bool s;
    assert_int_equal(
        unlock_value_check("card_name", "0123456789012345678901234567890123", 580, &s, &e), 0
    );
    static const struct {
        const char *s;
        unsigned long long bytes;
    } sizes[] = {
        {"896MiB", 939524096ULL},   {"1GiB", 1073741824ULL}, {"2GB", 2000000000ULL},
        {"1.5 GiB", 1610612736ULL}, {" 4096 ", 4096ULL},     {"1kB", 1000ULL},
        {"3TiB", 3298534883328ULL},
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned long long b = 0;
        assert_int_equal(unlock_size_parse(sizes[i].s, &b), 0);
        assert_true(b == sizes[i].bytes);
    }
}

static char *put(const char *text, unsigned long vmid, const char *table, int want_rc) {
    struct toml_doc d;
    struct pvh_err e = {0};
    char *out = NULL;
    assert_int_equal(toml_parse(text, strlen(text), &d, &e), 0);
    assert_int_equal(unlock_file_put(text, &d, vmid, table, &out, &e), want_rc);
    toml_free(&d);
    return out;
}

/* Our table goes in and out of someone else's file; every byte of theirs stays. */
static void test_unlock_file_put(void **state) {
    (void)state;
    struct tune_kv kv[] = {{"frl_enabled", "0", false}, {"framebuffer", "896MiB", true}};
    struct vm_tuning t = {.unlock = kv, .nunlock = 2};
    char *table = tune_unlock_table(&t, 100);
    assert_string_equal(
        table, "[vm.100]\n" TUNE_TOML_MARKER " (pve-vgpu-hook tune 100); it rewrites this table "
               "at each start of the VM\nfrl_enabled = 0\nframebuffer = \"896MiB\"\n"
    );
    static const char *const files[] = {"", README_EXAMPLE, SEED_GUIDE, MIXED};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *with = put(files[i], 100, table, 0);
        assert_int_equal(strncmp(with, files[i], strlen(files[i])), 0);
        assert_non_null(strstr(with, table));
        char *without = put(with, 100, NULL, 0);
        assert_string_equal(without, files[i]);
        /* ours again, with other values: only our table changes */
        struct tune_kv kv2[] = {{"frl_enabled", "1", false}};
        struct vm_tuning t2 = {.unlock = kv2, .nunlock = 1};
        char *table2 = tune_unlock_table(&t2, 100);
        char *again = put(with, 100, table2, 0);
        assert_int_equal(strncmp(again, files[i], strlen(files[i])), 0);
        assert_non_null(strstr(again, "frl_enabled = 1\n"));
        assert_null(strstr(again + strlen(files[i]), "896MiB"));
        free(table2);
        free(again);
        free(with);
        free(without);
    }
    /* our table in the middle: what follows it stays, comments included */
    char mid[1024];
    snprintf(mid, sizeof(mid), "%s\n# the P40 profile\n%s", table, SEED_GUIDE);
    struct tune_kv kv3[] = {{"num_displays", "2", false}};
    struct vm_tuning t3 = {.unlock = kv3, .nunlock = 1};
    char *table3 = tune_unlock_table(&t3, 100);
    char *out = put(mid, 100, table3, 0);
    char want[1024];
    snprintf(want, sizeof(want), "%s\n# the P40 profile\n%s", table3, SEED_GUIDE);
    assert_string_equal(out, want);
    free(out);
    free(table3);
    /* the admin's own [vm.100]: refused, with the tune command that hands it over */
    struct toml_doc d;
    struct pvh_err e = {0};
    const char *admins = "[vm.100]\nfrl_enabled = 0\ncard_name = \"x\"\n";
    assert_int_equal(toml_parse(admins, strlen(admins), &d, &e), 0);
    assert_int_equal(unlock_file_put(admins, &d, 100, table, &out, &e), -EEXIST);
    assert_non_null(strstr(e.msg, "line 1: [vm.100] is your own table"));
    assert_non_null(
        strstr(e.hint, "pve-vgpu-hook tune 100 --unlock frl_enabled=0 --unlock 'card_name=x'")
    );
    /* nothing of ours to put: the admin's table stays, byte for byte */
    assert_int_equal(unlock_file_put(admins, &d, 100, NULL, &out, &e), 0);
    assert_string_equal(out, admins);
    free(out);
    toml_free(&d);
    /* a value with a quote is quoted for the shell; a table too long to paste is described */
    const char *quote = "[vm.100]\ncard_name = \"it's\"\n";
    assert_int_equal(toml_parse(quote, strlen(quote), &d, &e), 0);
    assert_int_equal(unlock_file_put(quote, &d, 100, table, &out, &e), -EEXIST);
    assert_non_null(
        strstr(e.hint, "run: pve-vgpu-hook tune 100 --unlock 'card_name=it'\\''s'; then delete")
    );
    toml_free(&d);
    char big[4096] = "[vm.100]\n";
    for (int k = 0; k < 12; k++) {
        snprintf(big + strlen(big), sizeof(big) - strlen(big), "k%02d = \"%040d\"\n", k, k);
    }
    assert_int_equal(toml_parse(big, strlen(big), &d, &e), 0);
    assert_int_equal(unlock_file_put(big, &d, 100, table, &out, &e), -EEXIST);
    assert_non_null(
        strstr(e.hint, "give each of its 12 settings to pve-vgpu-hook tune 100 --unlock")
    );
    toml_free(&d);
    free(table);
}

/* ---------- on a fake host ---------- */

static struct fakehost FH_HOST;
static struct fakehost *const FH = &FH_HOST; /* one host per test */
static struct fh_result R;
#define run(env, ...) fh_run(FH, &R, env, __VA_ARGS__, NULL)
#define VMCONF "hostpci0: 0000:06:00.0,mdev=nvidia-46\nmemory: 4096\n"
#define TOML "etc/vgpu_unlock/profile_override.toml"
#define PARAMS(uuid) "sys/bus/mdev/devices/" uuid "/nvidia/vgpu_params"

static void install_vgpu_unlock(void) {
    fh_write(
        FH, "etc/systemd/system/nvidia-vgpu-mgr.service.d/vgpu_unlock.conf",
        "[Service]\nEnvironment=LD_PRELOAD=/opt/vgpu_unlock-rs/target/release/"
        "libvgpu_unlock_rs.so\n"
    );
    fh_write(FH, "opt/vgpu_unlock-rs/target/release/libvgpu_unlock_rs.so", "");
    fh_write(FH, TOML, SEED_GUIDE);
}

static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create_p40_pair(FH), 0);
    fh_vmconf(FH, 100, VMCONF);
    fh_write(FH, "var/lock/qemu-server/lock-100.conf", "");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(FH);
    return 0;
}

static const char *path_in(const char *rel) {
    static char path[PATH_MAX + 256];
    snprintf(path, sizeof(path), "%s/%s", FH->root, rel);
    return path;
}

static void assert_file(const char *rel, const char *want) {
    char *got = fh_read(FH, rel);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* The seed guide's frame-rate hand edit, the new way; applied before QEMU opens the device. */
static void test_tune_and_start(void **state) {
    (void)state;
    install_vgpu_unlock();
    assert_int_equal(run(NULL, "tune", "100", "--param", "frame_rate_limiter=0"), 0);
    assert_int_equal(
        run(NULL, "tune", "100", "--unlock", "frl_enabled=0", "--unlock", "framebuffer=896MiB"), 0
    );
    assert_int_equal(run(NULL, "tune", "100"), 0);
    assert_contains(R.out, "vgpu_params: frame_rate_limiter=0");
    assert_contains(R.out, "vgpu_unlock: frl_enabled = 0, framebuffer = \"896MiB\"");
    assert_int_equal(run(NULL, "check", "100"), 0);
    assert_contains(
        R.out, "tuning: [vm.100] in /etc/vgpu_unlock/profile_override.toml (pre-start writes it)"
    );
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_file(PARAMS(U100), "frame_rate_limiter=0");
    char *toml = fh_read(FH, TOML);
    assert_int_equal(strncmp(toml, SEED_GUIDE, strlen(SEED_GUIDE)), 0);
    assert_string_equal(
        toml + strlen(SEED_GUIDE), "\n[vm.100]\n" TUNE_TOML_MARKER " (pve-vgpu-hook tune 100); "
                                   "it rewrites this table at each start of the VM\n"
                                   "frl_enabled = 0\nframebuffer = \"896MiB\"\n"
    );
    free(toml);
    assert_int_equal(run(NULL, "check", "100"), 0);
    assert_contains(R.out, "(as it is now)");
    assert_int_equal(run(NULL, "status"), 0);
    assert_contains(R.out, "VM 100");
    assert_contains(R.out, "      tuning: vgpu_params: frame_rate_limiter=0\n");
    assert_int_equal(run(NULL, "status", "--json"), 0);
    assert_contains(R.out, "\"frame_rate_limiter\": \"0\"");
    /* QEMU has the device open now: the driver refuses parameters; the start is refused,
     * the file comes back as it was */
    fh_write(FH, "sys/devices/pci0000:00/" GPU_A "/" U100 "/.open", "");
    assert_int_equal(run(NULL, "tune", "100", "--unlock", "frl_enabled=1"), 0);
    char *before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "the driver refused vgpu_params 'frame_rate_limiter=0' for mdev " U100);
    assert_contains(R.err, "Device or resource busy");
    assert_contains(R.err, "the device is open already");
    assert_host_unchanged(FH, before);
    /* clearing the unlock settings removes our table at the next start: the file as it was;
     * clearing the params clears them on the device that start reuses */
    unlink(path_in("sys/devices/pci0000:00/" GPU_A "/" U100 "/.open"));
    assert_int_equal(run(NULL, "tune", "100", "--clear"), 0);
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_file(TOML, SEED_GUIDE);
    assert_file(PARAMS(U100), " ");
    assert_contains(R.err, "vgpu_params cleared on mdev " U100);
}

/* The driver refuses the parameters of a device this start created (a key it does not know):
 * refused, the device removed again, the file as it was. */
static void test_driver_refuses(void **state) {
    (void)state;
    install_vgpu_unlock();
    assert_int_equal(
        run(NULL, "tune", "100", "--param", "no_such=1", "--unlock", "frl_enabled=0"), 0
    );
    assert_contains(R.err, "no_such is not one of NVIDIA's documented vgpu_params");
    char *before = fh_snapshot(FH);
    const char *refuse[] = {"FAKE_VGPU_PARAMS_ERRNO=22", NULL};
    assert_int_equal(run(refuse, "100", "pre-start"), 1);
    assert_contains(R.err, "the driver refused vgpu_params 'no_such=1'");
    assert_contains(R.err, "Invalid argument");
    assert_contains(R.err, "removed mdev " U100 " again");
    assert_host_unchanged(FH, before);
    /* a failed write of the file itself: nothing is created either */
    assert_int_equal(run(NULL, "tune", "100", "--clear", "no_such"), 0);
    before = fh_snapshot(FH);
    const char *fail[] = {"FAKE_FAIL=rename:1", NULL};
    assert_int_equal(run(fail, "100", "pre-start"), 1);
    assert_contains(R.err, "cannot write /etc/vgpu_unlock/profile_override.toml");
    assert_host_unchanged(FH, before);
}

/* Refusals at start and at tune: each says why and what to do, and changes nothing. */
static void test_refusals(void **state) {
    (void)state;
    /* unlock settings on a node without vgpu_unlock-rs: tune refuses them at once */
    char *before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "tune", "100", "--unlock", "frl_enabled=0"), 1);
    assert_contains(
        R.err, "vgpu_unlock settings need vgpu_unlock-rs, but on node pve1 nvidia-vgpu-mgr does "
               "not preload vgpu_unlock-rs"
    );
    assert_contains(R.err, "VM 100 would not start on this node with them");
    assert_contains(R.err, "--param frame_rate_limiter=0 for frl_enabled=0); nothing was changed");
    assert_host_unchanged(FH, before);
    /* ... and pre-start refuses those another node stored; params alone still work here */
    fh_write(
        FH, "etc/pve/vgpu-hook.json",
        "{\"remove_wait_s\": 0, \"vms\": {\"100\": {\"unlock\": {\"frl_enabled\": 0}}}}\n"
    );
    before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "nvidia-vgpu-mgr does not preload vgpu_unlock-rs");
    assert_contains(R.err, "pve-vgpu-hook tune 100 --clear frl_enabled");
    assert_host_unchanged(FH, before);
    assert_int_equal(run(NULL, "tune", "100", "--clear"), 0);
    assert_int_equal(run(NULL, "tune", "100", "--param", "disable_vnc=1"), 0);
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_file(PARAMS(U100), "disable_vnc=1");
    assert_int_equal(run(NULL, "100", "post-stop"), 0);

    /* a file vgpu_unlock-rs would fail on: refused with its line and column */
    install_vgpu_unlock();
    fh_write(FH, TOML, "[profile.nvidia-46]\nframebuffer = 1.5\n");
    before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "/etc/vgpu_unlock/profile_override.toml: line 2, column 15: floats");
    assert_host_unchanged(FH, before);
    assert_int_equal(run(NULL, "doctor"), 1);
    assert_contains(R.out, "line 2, column 15");

    /* the admin's own [vm.100] */
    fh_write(FH, TOML, "[vm.100]\nframebuffer = 939524096\n");
    assert_int_equal(run(NULL, "tune", "100", "--unlock", "frl_enabled=0"), 0);
    before = fh_snapshot(FH);
    assert_int_equal(run(NULL, "check", "100"), 1);
    assert_contains(R.out, "[vm.100] is your own table");
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "pve-vgpu-hook tune 100 --unlock framebuffer=939524096");
    assert_host_unchanged(FH, before);

    /* bad input to tune */
    before = fh_snapshot(FH);
    static const struct {
        const char *opt, *value, *want;
    } bad[] = {
        {"--unlock", "fps=60", "'fps' is not a vgpu_unlock-rs setting"},
        {"--unlock", "frl_enabled=false", "takes 0 or 1"},
        {"--unlock", "framebuffer=1 XB", "takes bytes or a size with a unit"},
        {"--unlock", "card_name=0123456789012345678901234567890123", "the driver's field holds 31"},
        {"--unlock", "frl_enabled", "is not KEY=VALUE"},
        {"--param", "frame_rate_limiter=0,disable_vnc=1", "not one vgpu_params can carry"},
        {"--param", "Bad-Key=1", "is not a vgpu_params key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(run(NULL, "tune", "100", bad[i].opt, bad[i].value), 1);
        assert_contains(R.err, bad[i].want);
        assert_contains(R.err, "nothing was changed");
    }
    assert_int_equal(run(NULL, "tune", "100", "--clear", "nope"), 1);
    assert_contains(R.err, "VM 100 has no setting nope");
    assert_int_equal(run(NULL, "tune", "100", "nope"), 2);
    assert_host_unchanged(FH, before);
}

/* NVIDIA's documented parameters take 0 or 1: anything else would fail the start. */
static void test_param_values(void **state) {
    (void)state;
    char *before = fh_snapshot(FH);
    static const struct {
        const char *setting, *want;
    } bad[] = {
        {"frame_rate_limiter=off", "frame_rate_limiter takes 0 or 1, not 'off'"},
        {"enable_uvm=2", "enable_uvm takes 0 or 1, not '2'"},
        {"disable_vnc=true", "disable_vnc takes 0 or 1, not 'true'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(run(NULL, "tune", "100", "--param", bad[i].setting), 1);
        assert_contains(R.err, bad[i].want);
        assert_contains(R.err, "NVIDIA's plugin reads it as an integer");
        assert_contains(R.err, "nothing was changed");
    }
    assert_contains(R.err, "e.g. --param disable_vnc=1 (1 turns the plugin's VNC console off)");
    assert_host_unchanged(FH, before);
    /* an undocumented key still reaches the driver, with the warning */
    assert_int_equal(run(NULL, "tune", "100", "--param", "my_key=off"), 0);
    assert_contains(R.err, "my_key is not one of NVIDIA's documented vgpu_params");
    /* a value an older tune stored stays readable: the driver has the last word */
    fh_write(
        FH, "etc/pve/vgpu-hook.json",
        "{\"vms\": {\"100\": {\"params\": {\"frame_rate_limiter\": \"off\"}}}}\n"
    );
    assert_int_equal(run(NULL, "tune", "100"), 0);
    assert_contains(R.out, "vgpu_params: frame_rate_limiter=off");
}

/* A VMID without a VM here: one refusal, the same for every command, nothing written. */
static void test_no_such_vm(void **state) {
    (void)state;
    fh_write(FH, "etc/pve/nodes/pve1/lxc/300.conf", "arch: amd64\n");
    char *before = fh_snapshot(FH);
    static const char *const cmds[][6] = {
        {"tune", "999"},
        {"tune", "999", "--json"},
        {"tune", "999", "--clear"},
        {"tune", "999", "--param", "frame_rate_limiter=0"},
        {"tune", "999", "--unlock", "frl_enabled=0"},
        {"attach", "999", "--type", "P40-1Q"},
        {"detach", "999"},
        {"attach", "999", "--type", "P40-1Q", "--json"},
        {"detach", "999", "--json", "--dry-run"},
        {"tune", "999", "--param", "frame_rate_limiter=0", "--json"},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        fh_runv(FH, &R, NULL, cmds[i]);
        bool json = false; /* --json: the same refusal as an error object on stdout */
        for (size_t k = 0; cmds[i][k]; k++) {
            json |= !strcmp(cmds[i][k], "--json");
        }
        if (json) {
            assert_contains(R.out, "\"result\": \"refused\"");
            assert_contains(R.out, "\"code\": \"vm-missing\"");
            assert_contains(R.out, "\"message\": \"no VM 999 on this node");
            R.out[0] = '\0';
        }
        if (R.status != 1 ||
            !strstr(
                R.err, "no VM 999 on this node (/etc/pve/qemu-server/999.conf "
                       "does not exist)"
            ) ||
            !strstr(
                R.err, "run the command on the node the VM belongs to ('qm list'; this node "
                       "is pve1); nothing was changed"
            ) ||
            R.out[0]) {
            fail_msg("%s %s: status %d\n%s%s", cmds[i][0], cmds[i][2], R.status, R.out, R.err);
        }
    }
    assert_int_equal(run(NULL, "tune", "300"), 1);
    assert_contains(R.err, "300 is a container; vGPUs are for VMs");
    assert_host_unchanged(FH, before);
}

/* The admin's own [vm.N] of a VM we do not tune is theirs: the VM starts, the file stays. */
static void test_admin_table_left_alone(void **state) {
    (void)state;
    install_vgpu_unlock();
    static const char admins[] = "[vm.100]\n# my settings\nframebuffer = 939524096\n";
    fh_write(FH, TOML, admins);
    assert_int_equal(run(NULL, "check", "100"), 0);
    assert_not_contains(R.out, "your own table");
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_not_contains(R.err, "your own table");
    assert_file(TOML, admins);
    assert_int_equal(run(NULL, "100", "post-stop"), 0);
    /* params of ours do not touch it either */
    assert_int_equal(run(NULL, "tune", "100", "--param", "frame_rate_limiter=0"), 0);
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_file(TOML, admins);
    assert_file(PARAMS(U100), "frame_rate_limiter=0");
}

/* What vgpu_unlock-rs may get wrong is said, at tune and at every start. */
static void test_warnings(void **state) {
    (void)state;
    install_vgpu_unlock();
    fh_vmconf(
        FH, 100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\nhostpci1: 0000:07:00.0,mdev=nvidia-46\n"
    );
    assert_int_equal(run(NULL, "tune", "100", "--unlock", "frl_enabled=0"), 0);
    assert_contains(R.err, "VM 100 has 2 vGPUs; vgpu_unlock-rs keys [vm.100] by the last vGPU");
    assert_int_equal(run(NULL, "check", "100"), 0);
    assert_contains(R.err, "VM 100 has 2 vGPUs");
    fh_vmconf(FH, 100, "hostpci2: 0000:07:00.0,mdev=nvidia-46\n");
    assert_int_equal(run(NULL, "tune", "100", "--unlock", "frl_enabled=0"), 0);
    assert_contains(
        R.err, "hostpci index 2: vgpu_unlock-rs before 2.4.1 applies [vm.100] to index 0"
    );
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_contains(R.err, "vgpu_unlock-rs before 2.4.1");
    /* a name R580 takes, on a node whose driver is older: tune takes it there, the start
     * on the older node says why not */
    fh_vmconf(FH, 100, VMCONF);
    fh_write(FH, "sys/module/nvidia/version", "580.65.05\n");
    assert_int_equal(
        run(NULL, "tune", "100", "--unlock", "card_name=0123456789012345678901234567890123"), 0
    );
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    fh_write(FH, "sys/module/nvidia/version", "535.230.02\n");
    assert_int_equal(run(NULL, "100", "pre-start"), 1);
    assert_contains(R.err, "VM 100's vgpu_unlock setting on node pve1: card_name");
    assert_contains(R.err, "the driver's field holds 31");
    /* cleared: our old table (too long for this driver) is not held against the start */
    assert_int_equal(run(NULL, "tune", "100", "--clear"), 0);
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_contains(R.err, "removed [vm.100] in /etc/vgpu_unlock/profile_override.toml");
    assert_file(TOML, SEED_GUIDE);
    /* no vGPU at all yet */
    fh_vmconf(FH, 100, "memory: 4096\n");
    assert_int_equal(run(NULL, "tune", "100", "--param", "frame_rate_limiter=0"), 0);
    assert_contains(R.err, "VM 100 has no vGPU yet");
}

/* vgpu_unlock-rs told (in the drop-in) to read another file: that one gets our table. */
static void test_override_path(void **state) {
    (void)state;
    install_vgpu_unlock();
    fh_write(
        FH, "etc/systemd/system/nvidia-vgpu-mgr.service.d/vgpu_unlock.conf",
        "[Service]\nEnvironment=LD_PRELOAD=/opt/vgpu_unlock-rs/target/release/"
        "libvgpu_unlock_rs.so\n"
        "Environment=\"VGPU_UNLOCK_PROFILE_OVERRIDE_CONFIG_PATH=/etc/vgpu_unlock/vms.toml\"\n"
    );
    assert_int_equal(run(NULL, "tune", "100", "--unlock", "frl_enabled=0"), 0);
    assert_int_equal(run(NULL, "check", "100"), 0);
    assert_contains(R.out, "[vm.100] in /etc/vgpu_unlock/vms.toml (pre-start writes it)");
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    assert_file(TOML, SEED_GUIDE);
    char *t = fh_read(FH, "etc/vgpu_unlock/vms.toml");
    assert_non_null(t);
    assert_contains(t, "[vm.100]\n" TUNE_TOML_MARKER);
    free(t);
    /* a path longer than any buffer once was: used whole, never replaced by the default */
    char dir[700] = "etc/vgpu_unlock", conf[1200];
    for (int k = 0; k < 3; k++) {
        snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/%0200d", k);
    }
    char rel[800];
    snprintf(rel, sizeof(rel), "%s/vms.toml", dir);
    fh_write(FH, rel, "");
    snprintf(
        conf, sizeof(conf),
        "[Service]\nEnvironment=LD_PRELOAD=/opt/vgpu_unlock-rs/target/release/libvgpu_unlock_rs.so"
        " VGPU_UNLOCK_PROFILE_OVERRIDE_CONFIG_PATH=/%s\n",
        rel
    );
    fh_write(FH, "etc/systemd/system/nvidia-vgpu-mgr.service.d/vgpu_unlock.conf", conf);
    assert_int_equal(run(NULL, "tune", "100", "--unlock", "frl_enabled=1"), 0);
    assert_int_equal(run(NULL, "100", "pre-start"), 0);
    t = fh_read(FH, rel);
    assert_non_null(t);
    assert_contains(t, "frl_enabled = 1\n");
    free(t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_toml_reads),
    cmocka_unit_test(test_toml_refuses),
    cmocka_unit_test(test_unlock_file_check),
    cmocka_unit_test(test_unlock_values),
    cmocka_unit_test(test_unlock_file_put),
    cmocka_unit_test_setup_teardown(test_tune_and_start, setup, teardown),
    cmocka_unit_test_setup_teardown(test_driver_refuses, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    cmocka_unit_test_setup_teardown(test_param_values, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_such_vm, setup, teardown),
    cmocka_unit_test_setup_teardown(test_admin_table_left_alone, setup, teardown),
    cmocka_unit_test_setup_teardown(test_warnings, setup, teardown),
    cmocka_unit_test_setup_teardown(test_override_path, setup, teardown),
};

int main(void) {
    return cmocka_run_group_tests(tests, NULL, NULL);
}
