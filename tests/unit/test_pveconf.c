/* VM config round-trips over Proxmox's own test configs; property strings; hostpci; args. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pveconf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Text with the top section's args line removed: what must stay identical. */
static char *without_top_args(const char *text) {
    char *out = malloc(strlen(text) + 1);
    size_t o = 0;
    bool top = true;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (*p == '[') {
            top = false;
        }
        if (!(top && !strncmp(p, "args:", 5))) {
            memcpy(out + o, p, l);
            o += l;
        }
        p += l;
    }
    out[o] = '\0';
    return out;
}

static void test_corpus_roundtrip(void **state) {
    (void)state;
    DIR *d = opendir(PVH_CORPUS_DIR);
    if (!d) {
        fail_msg("corpus missing: %s", PVH_CORPUS_DIR);
    }
    struct dirent *de;
    int files = 0, had_args = 0, with_sections = 0;
    while ((de = readdir(d))) {
        if (!strstr(de->d_name, ".conf")) {
            continue;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", PVH_CORPUS_DIR, de->d_name);
        size_t len;
        char *text = slurp(path, &len);
        struct pveconf c;
        assert_int_equal(pveconf_parse(text, len, &c), 0);
        size_t outlen;
        char *out = pveconf_serialize(&c, &outlen);
        if (outlen != len || memcmp(out, text, len) != 0) {
            fail_msg("%s does not round-trip byte for byte", de->d_name);
        }
        free(out);

        /* Setting args changes only the args line of the top section. */
        char buf[8192];
        had_args += pveconf_get(&c, "args", buf, sizeof(buf)) != NULL;
        with_sections += strstr(text, "\n[") != NULL;
        assert_int_equal(pveconf_set(&c, "args", "-uuid 00000000-0000-0000-0000-000000000100"), 0);
        out = pveconf_serialize(&c, &outlen);
        assert_non_null(pveconf_get(&c, "args", buf, sizeof(buf)));
        assert_string_equal(buf, "-uuid 00000000-0000-0000-0000-000000000100");
        char *a = without_top_args(text), *b = without_top_args(out);
        if (strcmp(a, b) != 0) {
            fail_msg("%s: setting args changed other lines", de->d_name);
        }
        /* the new line sits in the top section, before any [section] */
        const char *argsline = strstr(out, "args: -uuid 00000000");
        const char *section = strstr(out, "\n[");
        assert_non_null(argsline);
        assert_true(!section || argsline < section);
        free(a);
        free(b);
        free(out);
        pveconf_free(&c);
        free(text);
        files++;
    }
    closedir(d);
    assert_true(files >= 200); /* the whole corpus was read */
    assert_true(had_args > 0 || files > 0);
    assert_true(with_sections > 10); /* snapshots, [PENDING], [special:*] were covered */
}

static void test_set_insert_delete(void **state) {
    (void)state;
    const char *text = "#My VM\n#%3Adescription\nboot: order=scsi0\ncores: 2\n"
                       "scsi0: local:vm-100-disk-0,size=32G\n\n[snap1]\nargs: -old\ncores: 1\n";
    struct pveconf c;
    assert_int_equal(pveconf_parse(text, strlen(text), &c), 0);
    char buf[256];
    assert_null(pveconf_get(&c, "args", buf, sizeof(buf))); /* snapshot's args is not ours */
    assert_int_equal(pveconf_set(&c, "args", "-uuid X"), 0);
    char *out = pveconf_serialize(&c, NULL);
    /* sorted like PVE's writer: args before boot */
    assert_string_equal(
        out, "#My VM\n#%3Adescription\nargs: -uuid X\nboot: order=scsi0\n"
             "cores: 2\nscsi0: local:vm-100-disk-0,size=32G\n\n[snap1]\n"
             "args: -old\ncores: 1\n"
    );
    free(out);
    assert_int_equal(pveconf_set(&c, "hookscript", "local:snippets/x"), 0);
    assert_int_equal(pveconf_set(&c, "args", "-uuid Y"), 0);
    assert_int_equal(pveconf_delete(&c, "args"), 0);
    assert_int_equal(pveconf_delete(&c, "hookscript"), 0);
    assert_int_equal(pveconf_delete(&c, "hookscript"), -ENOENT);
    out = pveconf_serialize(&c, NULL);
    assert_string_equal(out, text);
    free(out);
    assert_int_equal(pveconf_set(&c, "args", "two\nlines"), -EINVAL);
    pveconf_free(&c);

    /* a file without final newline stays valid when a key is appended */
    const char *nonl = "cores: 2";
    assert_int_equal(pveconf_parse(nonl, strlen(nonl), &c), 0);
    assert_int_equal(pveconf_set(&c, "vga", "std"), 0);
    out = pveconf_serialize(&c, NULL);
    assert_string_equal(out, "cores: 2\nvga: std\n");
    free(out);
    pveconf_free(&c);

    /* replacing keeps the line's own spacing: setting the old value back restores it */
    const char *odd = "args:\t-cpu host  \r\ncores: 1\n";
    assert_int_equal(pveconf_parse(odd, strlen(odd), &c), 0);
    assert_int_equal(pveconf_set(&c, "args", "-cpu host -uuid U"), 0);
    out = pveconf_serialize(&c, NULL);
    assert_string_equal(out, "args:\t-cpu host -uuid U  \r\ncores: 1\n");
    free(out);
    assert_int_equal(pveconf_set(&c, "args", "-cpu host"), 0);
    out = pveconf_serialize(&c, NULL);
    assert_string_equal(out, odd);
    free(out);
    pveconf_free(&c);

    /* value trimming as PVE does */
    const char *sp = "args:   -a  -b   \n";
    assert_int_equal(pveconf_parse(sp, strlen(sp), &c), 0);
    assert_string_equal(pveconf_get(&c, "args", buf, sizeof(buf)), "-a  -b");
    pveconf_free(&c);
}

static void test_propstr(void **state) {
    (void)state;
    struct propstr p;
    struct pvh_err e;
    assert_int_equal(propstr_parse("0000:06:00.0,mdev=nvidia-46,pcie=1", "host", &p, &e), 0);
    assert_int_equal(p.n, 3);
    assert_string_equal(propstr_get(&p, "host"), "0000:06:00.0");
    assert_string_equal(propstr_get(&p, "mdev"), "nvidia-46");
    assert_null(propstr_get(&p, "rombar"));
    assert_int_equal(propstr_parse("a=1,a=2", NULL, &p, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "duplicate key 'a'"));
    assert_int_equal(propstr_parse("a=1,,b=2", NULL, &p, &e), -EINVAL);
    assert_int_equal(propstr_parse("novalue", NULL, &p, &e), -EINVAL);
    assert_int_equal(propstr_parse("", NULL, &p, &e), 0);
    assert_int_equal(p.n, 0);
}

static void test_hostpci(void **state) {
    (void)state;
    static const struct {
        const char *value;
        int rc;
        const char *host0, *mapping, *mdev;
        size_t nhost;
        const char *msg;
    } cases[] = {
        {"0000:06:00.0,mdev=nvidia-46", 0, "0000:06:00.0", "", "nvidia-46", 1, NULL},
        {"06:00.0,mdev=nvidia-46,pcie=1", 0, "0000:06:00.0", "", "nvidia-46", 1, NULL},
        {"host=06:00,mdev=nvidia-46", 0, "0000:06:00.0", "", "nvidia-46", 1, NULL},
        {"0001:af:00.4,mdev=nvidia-557", 0, "0001:af:00.4", "", "nvidia-557", 1, NULL},
        {"mapping=vgpu-a40,mdev=nvidia-557", 0, "", "vgpu-a40", "nvidia-557", 0, NULL},
        {"0000:06:00.0;0000:06:00.1", 0, "0000:06:00.0", "", "", 2, NULL},
        {"i915:00:02.0,mdev=i915-GVTg_V5_4", -EINVAL, NULL, NULL, NULL, 0, "not a PCI id"},
        {"06:00.0,mdev=../../etc", -EINVAL, NULL, NULL, NULL, 0, "not a valid type"},
        {"06:00.0,mdev=a/b", -EINVAL, NULL, NULL, NULL, 0, "not a valid type"},
        {"06:00.0,mdev=", -EINVAL, NULL, NULL, NULL, 0, "not a valid type"},
        {"06:00.0,mdev=nvidia 46", -EINVAL, NULL, NULL, NULL, 0, "not a valid type"},
        {"06:00.0,mdev=nvidia-46,mdev=nvidia-47", -EINVAL, NULL, NULL, NULL, 0, "duplicate"},
        {"06:00.0,mapping=x1,mdev=nvidia-46", -EINVAL, NULL, NULL, NULL, 0, "mutually"},
        {"mdev=nvidia-46", -EINVAL, NULL, NULL, NULL, 0, "neither"},
        {"06:00.0A,mdev=nvidia-46", -EINVAL, NULL, NULL, NULL, 0, "not a PCI id"},
        {"06:0.0,mdev=nvidia-46", -EINVAL, NULL, NULL, NULL, 0, "not a PCI id"},
        {"mapping=1bad,mdev=nvidia-46", -EINVAL, NULL, NULL, NULL, 0, "not valid"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hostpci hp;
        struct pvh_err e = {0};
        int rc = hostpci_parse(2, cases[i].value, &hp, &e);
        if (rc != cases[i].rc) {
            fail_msg("'%s': rc %d want %d (%s)", cases[i].value, rc, cases[i].rc, e.msg);
        }
        if (rc == 0) {
            assert_int_equal(hp.index, 2);
            assert_int_equal(hp.nhost, cases[i].nhost);
            if (hp.nhost) {
                assert_string_equal(hp.host[0], cases[i].host0);
            }
            assert_string_equal(hp.mapping, cases[i].mapping);
            assert_string_equal(hp.mdev, cases[i].mdev);
        } else {
            if (!strstr(e.msg, cases[i].msg)) {
                fail_msg("'%s': message '%s' lacks '%s'", cases[i].value, e.msg, cases[i].msg);
            }
            assert_non_null(strstr(e.msg, "hostpci2"));
        }
    }
}

static void test_args_uuid(void **state) {
    (void)state;
    const char *U = "00000000-0000-0000-0000-000000000100";
    static const struct {
        const char *args, *want;
        bool changed;
    } cases[] = {
        {NULL, "-uuid 00000000-0000-0000-0000-000000000100", true},
        {"", "-uuid 00000000-0000-0000-0000-000000000100", true},
        {"-cpu host", "-cpu host -uuid 00000000-0000-0000-0000-000000000100", true},
        {"-cpu host  ", "-cpu host -uuid 00000000-0000-0000-0000-000000000100", true},
        {"-uuid 00000000-0000-0000-0000-000000000100 -cpu host",
         "-uuid 00000000-0000-0000-0000-000000000100 -cpu host", false},
        {"-uuid 00000000-0000-0000-0000-000000000100", "-uuid 00000000-0000-0000-0000-000000000100",
         false},
        {"-UUID X", "-UUID X -uuid 00000000-0000-0000-0000-000000000100", true},
        {"-uuid 00000000-0000-0000-0000-000000000999 -x",
         "-uuid 00000000-0000-0000-0000-000000000100 -x", true},
        {"--uuid 'abc' -x", "--uuid 00000000-0000-0000-0000-000000000100 -x", true},
        {"-fw_cfg 'name=opt/x,string=a b' -uuid",
         "-fw_cfg 'name=opt/x,string=a b' -uuid "
         "00000000-0000-0000-0000-000000000100",
         true},
        /* the last -uuid wins in QEMU: that is the one to fix */
        {"-uuid a -uuid 00000000-0000-0000-0000-000000000100",
         "-uuid a -uuid "
         "00000000-0000-0000-0000-000000000100",
         false},
        {"-uuid 00000000-0000-0000-0000-000000000100 -uuid b",
         "-uuid 00000000-0000-0000-0000-000000000100 -uuid 00000000-0000-0000-0000-000000000100",
         true},
        {"-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/x \"-uuid\" OLD",
         "-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/x \"-uuid\" "
         "00000000-0000-0000-0000-000000000100",
         true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out;
        bool changed;
        assert_int_equal(args_with_uuid(cases[i].args, U, &out, &changed), 0);
        if (strcmp(out, cases[i].want) || changed != cases[i].changed) {
            fail_msg(
                "args '%s': got '%s' (changed %d), want '%s'", cases[i].args, out, changed,
                cases[i].want
            );
        }
        char found[64];
        args_find_uuid(out, found, sizeof(found));
        assert_string_equal(found, U);
        free(out);
    }
}

static void test_args_open_quote(void **state) {
    (void)state;
    char *out = NULL;
    bool changed;
    /* found by fuzzing: an appended -uuid would land inside the open quote */
    assert_int_equal(args_with_uuid("-fw_cfg 'name=x,string=a", "u", &out, &changed), -EINVAL);
    assert_null(out);
    assert_int_equal(args_with_uuid("-a \"b", "u", &out, &changed), -EINVAL);
    assert_true(args_splittable("-a 'b \" c' \"d \\\" e\" f\\'"));
    assert_false(args_splittable("-a \"x\\\""));
    assert_true(args_splittable(""));
    /* also found by fuzzing: a dangling backslash would escape the appended blank */
    assert_false(args_splittable("-a b\\"));
    assert_int_equal(args_with_uuid("-a b\\", "u", &out, &changed), -EINVAL);
    /* and trimming must not strip a blank that a backslash escapes */
    assert_int_equal(args_with_uuid("-a \\ \t\t", "u", &out, &changed), 0);
    assert_string_equal(out, "-a \\  -uuid u");
    free(out);
}

static void test_mapping(void **state) {
    (void)state;
    const char *cfg = "# comment\n"
                      "other\n\tmap node=pve1,path=0000:01:00.0,id=10de:1b38\n\n"
                      "vgpu-a40\n"
                      "\tmap node=pve2,path=0000:81:00.4,id=10de:2235\n"
                      "\tmap node=pve1,path=0000:41:00.4;0000:41:00.5,id=10de:2235,iommugroup=60\n"
                      "\tmdev 1\n"
                      "\tdescription A40 VFs\n\n";
    char paths[8][16];
    size_t n;
    struct pvh_err e;
    assert_int_equal(mapping_paths(cfg, "vgpu-a40", "pve1", paths, 8, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(paths[0], "0000:41:00.4");
    assert_string_equal(paths[1], "0000:41:00.5");
    assert_int_equal(mapping_paths(cfg, "VGPU-A40", "pve2", paths, 8, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(paths[0], "0000:81:00.4");
    assert_int_equal(mapping_paths(cfg, "vgpu-a40", "pve3", paths, 8, &n, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "no device for node 'pve3'"));
    assert_int_equal(mapping_paths(cfg, "nope", "pve1", paths, 8, &n, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "not defined"));
}

static void test_type_id_valid(void **state) {
    (void)state;
    assert_true(mdev_type_id_valid("nvidia-46"));
    assert_true(mdev_type_id_valid("i915-GVTg_V5_4"));
    assert_false(mdev_type_id_valid(".."));
    assert_false(mdev_type_id_valid("a/b"));
    assert_false(mdev_type_id_valid("nvidia-46\n"));
    assert_false(mdev_type_id_valid(""));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_roundtrip), cmocka_unit_test(test_set_insert_delete),
        cmocka_unit_test(test_propstr),          cmocka_unit_test(test_hostpci),
        cmocka_unit_test(test_args_uuid),        cmocka_unit_test(test_args_open_quote),
        cmocka_unit_test(test_mapping),          cmocka_unit_test(test_type_id_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
