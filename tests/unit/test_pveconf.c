/* VM config round-trips over Proxmox's own test configs; property strings; hostpci; args. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pveconf.h"
#include "qemu_args.h"
#include "sectioncfg.h"

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
        had_args += pveconf_get(&c, "args") != NULL;
        with_sections += strstr(text, "\n[") != NULL;
        assert_int_equal(pveconf_set(&c, "args", "-uuid 00000000-0000-0000-0000-000000000100"), 0);
        out = pveconf_serialize(&c, &outlen);
        assert_non_null(pveconf_get(&c, "args"));
        assert_string_equal(pveconf_get(&c, "args"), "-uuid 00000000-0000-0000-0000-000000000100");
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
    assert_null(pveconf_get(&c, "args")); /* snapshot's args is not ours */
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
    assert_string_equal(pveconf_get(&c, "args"), "-a  -b");
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
    propstr_free(&p);
    assert_int_equal(propstr_parse("a=1,a=2", NULL, &p, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "duplicate key 'a'"));
    /* parse_property_string skips blank parts */
    assert_int_equal(propstr_parse("a=1,,b=2, ", NULL, &p, &e), 0);
    assert_int_equal(p.n, 2);
    propstr_free(&p);
    assert_int_equal(propstr_parse("novalue", NULL, &p, &e), -EINVAL);
    assert_int_equal(propstr_parse("a=", NULL, &p, &e), -EINVAL);
    assert_int_equal(propstr_parse("=b", NULL, &p, &e), -EINVAL);
    assert_int_equal(propstr_parse("x,y", "host", &p, &e), -EINVAL); /* two bare values */
    assert_int_equal(propstr_parse("k=v=w", NULL, &p, &e), 0);       /* the value keeps '=' */
    assert_string_equal(propstr_get(&p, "k"), "v=w");
    propstr_free(&p);
    assert_int_equal(propstr_parse("", NULL, &p, &e), 0);
    assert_int_equal(p.n, 0);
    propstr_free(&p);
    /* no value is cut: a 3000-byte romfile comes back whole */
    char big[3100];
    memset(big, 'r', 3000);
    strcpy(big + 3000, ",mdev=nvidia-46");
    char value[3200];
    snprintf(value, sizeof(value), "06:00.0,romfile=%s", big);
    assert_int_equal(propstr_parse(value, "host", &p, &e), 0);
    assert_int_equal(strlen(propstr_get(&p, "romfile")), 3000);
    propstr_free(&p);
}

/* What Proxmox reads: the last line of a key whose value it accepts. */
static void test_proxmox_reading(void **state) {
    (void)state;
    static const struct {
        const char *conf;
        const char *key;
        const char *want; /* NULL: Proxmox sees no value */
        size_t warnings;
    } cases[] = {
        {"hostpci0: 06:00.0,mdev=nvidia-46\nhostpci0: 07:00.0,mdev=nvidia-47\n", "hostpci0",
         "07:00.0,mdev=nvidia-47", 1},
        {"hostpci0: 06:00.0,mdev=nvidia-46\nhostpci0: 07:00.0,mdev=nvidia-47,bogus=1\n", "hostpci0",
         "06:00.0,mdev=nvidia-46", 1},
        {"hostpci0: 06:00.0,mdev=nvidia-46,bogus=1\n", "hostpci0", NULL, 1},
        {"hostpci0: 06:00.0,mdev=../x\n", "hostpci0", NULL, 1},
        {"hostpci0: 06:00.0,mdev=nvidia-46,pcie=maybe\n", "hostpci0", NULL, 1},
        {"hostpci0: 06:00.0,mdev=nvidia-46,pcie=on,rombar=0,x-vga=yes\n", "hostpci0",
         "06:00.0,mdev=nvidia-46,pcie=on,rombar=0,x-vga=yes", 0},
        {"hostpci0: 06:00.0,mdev=nvidia-46,vendor-id=0x10DE,driver=keep\n", "hostpci0",
         "06:00.0,mdev=nvidia-46,vendor-id=0x10DE,driver=keep", 0},
        {"hostpci0: 06:00.0,mdev=nvidia-46,driver=other\n", "hostpci0", NULL, 1},
        {"hostpci0: mapping=1x,mdev=nvidia-46\n", "hostpci0", NULL, 1},
        {"args: -a\nargs: -b\n", "args", "-b", 0},
        /* "[oops" is no section header: the main section goes on */
        {"cores: 1\n[oops\nargs: -c\n", "args", "-c", 0},
        {"cores: 1\n[snap]\nargs: -c\n", "args", NULL, 0},
        {"hostpci16: 06:00.0,mdev=nvidia-46\n", "hostpci16", NULL, 1},
        /* a carriage return inside a value is a line feed to qemu-server: rejected */
        {"hostpci0: 06:00.0,mdev=nvidia\r-46\n", "hostpci0", NULL, 1},
        {"hostpci0: 06:00.0,mdev=nvidia-46\r\n", "hostpci0", "06:00.0,mdev=nvidia-46", 0},
        /* smbios1 (uuid_source smbios) as Proxmox reads it */
        {"smbios1: uuid=5d5f2b7e-1a33-4c7e-9c9d-abcdef012345,manufacturer=QUNNRQ==,base64=1\n",
         "smbios1", "uuid=5d5f2b7e-1a33-4c7e-9c9d-abcdef012345,manufacturer=QUNNRQ==,base64=1", 0},
        {"smbios1: uuid=5d5f2b7e-1a33-4c7e-9c9d-abcdef012345\nsmbios1: uuid=nope\n", "smbios1",
         "uuid=5d5f2b7e-1a33-4c7e-9c9d-abcdef012345", 1},
        {"smbios1: uuid=5d5f2b7e-1a33-4c7e-9c9d-abcdef012345,color=red\n", "smbios1", NULL, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pveconf c;
        struct pvh_warnings w = {0};
        assert_int_equal(pveconf_parse(cases[i].conf, strlen(cases[i].conf), &c), 0);
        const char *got = pveconf_get(&c, cases[i].key);
        pveconf_warn_ignored(&c, "100.conf", &w);
        if ((got == NULL) != (cases[i].want == NULL) || (got && strcmp(got, cases[i].want)) ||
            w.n != cases[i].warnings) {
            fail_msg(
                "case %zu: got '%s' with %zu warnings, want '%s' with %zu", i, got ? got : "(none)",
                w.n, cases[i].want ? cases[i].want : "(none)", cases[i].warnings
            );
        }
        pveconf_free(&c);
        warn_free(&w);
    }
    /* the hostpci entries are what Proxmox uses; an ignored line is no entry */
    const char *conf =
        "hostpci0: 06:00.0,mdev=nvidia-46,bogus=1\nhostpci1: 07:00.0,mdev=nvidia-47\n"
        "hostpci1: 07:00.0,mdev=nvidia-48\n";
    struct pveconf c;
    struct hostpci hps[HOSTPCI_MAX];
    size_t n;
    struct pvh_err e = {0};
    assert_int_equal(pveconf_parse(conf, strlen(conf), &c), 0);
    assert_int_equal(hostpci_mdev_entries(&c, hps, &n, NULL, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(hps[0].index, 1);
    assert_string_equal(hps[0].mdev, "nvidia-48");
    /* setting a key edits the line Proxmox reads, and deleting leaves none behind */
    const char *two = "args: -a\ncores: 1\nargs: -b\n";
    pveconf_free(&c);
    assert_int_equal(pveconf_parse(two, strlen(two), &c), 0);
    assert_int_equal(pveconf_set(&c, "args", "-b -uuid U"), 0);
    char *out = pveconf_serialize(&c, NULL);
    assert_string_equal(out, "args: -a\ncores: 1\nargs: -b -uuid U\n");
    free(out);
    assert_int_equal(pveconf_delete(&c, "args"), 0);
    assert_null(pveconf_get(&c, "args"));
    out = pveconf_serialize(&c, NULL);
    assert_string_equal(out, "cores: 1\n");
    free(out);
    pveconf_free(&c);
}

static void test_apply_pending(void **state) {
    (void)state;
    const char *text = "args: -a\ncores: 2\nhostpci0: 06:00.0,mdev=nvidia-46\n\n[PENDING]\n"
                       "cores: 4\ndelete: !hostpci0 args\nhostpci1: 07:00.0,mdev=nvidia-47\n"
                       "\n[snap1]\ncores: 8\n";
    struct pveconf c;
    assert_int_equal(pveconf_parse(text, strlen(text), &c), 0);
    assert_int_equal(pveconf_apply_pending(&c), 1);
    assert_string_equal(pveconf_get(&c, "cores"), "4");
    assert_null(pveconf_get(&c, "hostpci0"));
    assert_null(pveconf_get(&c, "args"));
    assert_string_equal(pveconf_get(&c, "hostpci1"), "07:00.0,mdev=nvidia-47");
    pveconf_free(&c);
    const char *none = "cores: 2\n[snap1]\ncores: 8\n";
    assert_int_equal(pveconf_parse(none, strlen(none), &c), 0);
    assert_int_equal(pveconf_apply_pending(&c), 0);
    assert_string_equal(pveconf_get(&c, "cores"), "2");
    pveconf_free(&c);
}

/* A 12 KiB args value survives get, the -uuid edit and set byte for byte. */
static void test_long_values(void **state) {
    (void)state;
    size_t n = 12 * 1024;
    char *args = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        args[i] = i % 50 == 49 ? ' ' : (char)('a' + i % 26);
    }
    args[0] = '-';
    args[n] = '\0';
    size_t tl = n + 64;
    char *text = malloc(tl);
    snprintf(text, tl, "args: %s\ncores: 2\n", args);
    struct pveconf c;
    assert_int_equal(pveconf_parse(text, strlen(text), &c), 0);
    assert_string_equal(pveconf_get(&c, "args"), args);
    char *edited;
    bool changed;
    assert_int_equal(args_with_uuid(pveconf_get(&c, "args"), "U", &edited, &changed), 0);
    assert_true(changed);
    assert_int_equal(strncmp(edited, args, n), 0);
    assert_string_equal(edited + n, " -uuid U");
    assert_int_equal(pveconf_set(&c, "args", edited), 0);
    char *removed;
    bool found;
    assert_int_equal(args_remove_pair(pveconf_get(&c, "args"), "-uuid", "U", &removed, &found), 0);
    assert_true(found);
    assert_string_equal(removed, args);
    assert_int_equal(pveconf_set(&c, "args", removed), 0);
    char *out = pveconf_serialize(&c, NULL);
    assert_string_equal(out, text);
    free(out);
    free(removed);
    free(edited);
    pveconf_free(&c);
    free(text);
    free(args);
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
        {"i915:00:02.0,mdev=i915-GVTg_V5_4", -EINVAL, NULL, NULL, NULL, 0, "Proxmox rejects"},
        {"06:00.0,mdev=../../etc", -EINVAL, NULL, NULL, NULL, 0, "Proxmox rejects"},
        {"06:00.0,mdev=a/b", -EINVAL, NULL, NULL, NULL, 0, "Proxmox rejects"},
        {"06:00.0,mdev=", -EINVAL, NULL, NULL, NULL, 0, "Proxmox rejects"},
        /* Proxmox accepts a blank in mdev=, but it is no type a start can use */
        {"06:00.0,mdev=nvidia 46", -EINVAL, NULL, NULL, NULL, 0, "not a valid type"},
        {"06:00.0,mdev=nvidia-46,mdev=nvidia-47", -EINVAL, NULL, NULL, NULL, 0, "duplicate"},
        {"06:00.0,mapping=x1,mdev=nvidia-46", -EINVAL, NULL, NULL, NULL, 0, "mutually"},
        {"mdev=nvidia-46", -EINVAL, NULL, NULL, NULL, 0, "neither"},
        {"06:00.0A,mdev=nvidia-46", -EINVAL, NULL, NULL, NULL, 0, "Proxmox rejects"},
        {"06:0.0,mdev=nvidia-46", -EINVAL, NULL, NULL, NULL, 0, "Proxmox rejects"},
        {"mapping=1bad,mdev=nvidia-46", -EINVAL, NULL, NULL, NULL, 0, "Proxmox rejects"},
        {"06:00.0,bogus=1,mdev=nvidia-46", -EINVAL, NULL, NULL, NULL, 0, "unknown key 'bogus'"},
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
        /* the result ends with our -uuid in force: a second edit changes nothing */
        char *again;
        assert_int_equal(args_with_uuid(out, U, &again, &changed), 0);
        assert_false(changed);
        assert_string_equal(again, out);
        free(again);
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
    const char *text = "# comment\n"
                       "other\n\tmap node=pve1,path=0000:01:00.0,id=10de:1b38\n\n"
                       "vgpu-a40\n"
                       "\tmap node=pve2,path=0000:81:00.4,id=10de:2235\n"
                       "\tmap node=pve1,path=0000:41:00.4;0000:41:00.5,id=10de:2235,iommugroup=60\n"
                       "\tmdev 1\n"
                       "\tdescription A40 VFs\n\n";
    struct sectioncfg cfg;
    assert_int_equal(sectioncfg_parse(text, false, &cfg), 0);
    char(*paths)[16];
    size_t n;
    struct pvh_err e;
    assert_int_equal(mapping_paths(&cfg, "vgpu-a40", "pve1", &paths, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(paths[0], "0000:41:00.4");
    assert_string_equal(paths[1], "0000:41:00.5");
    free(paths);
    assert_int_equal(mapping_paths(&cfg, "vgpu-a40", "pve2", &paths, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(paths[0], "0000:81:00.4");
    free(paths);
    /* ids are hash keys to Proxmox: case matters */
    assert_int_equal(mapping_paths(&cfg, "VGPU-A40", "pve2", &paths, &n, &e), -ENOENT);
    assert_int_equal(mapping_paths(&cfg, "vgpu-a40", "pve3", &paths, &n, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "no device for node 'pve3'"));
    assert_int_equal(mapping_paths(&cfg, "nope", "pve1", &paths, &n, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "not defined"));
    sectioncfg_free(&cfg);

    /* a mapping over many VFs is not cut at some count */
    char big[8192] = "many\n\tmap node=pve1,path=";
    for (int f = 0; f < 32; f++) {
        size_t l = strlen(big);
        snprintf(big + l, sizeof(big) - l, "%s0000:41:%02x.%x", f ? ";" : "", 1 + f / 8, f % 8);
    }
    strcat(big, ",id=10de:2235\n");
    assert_int_equal(sectioncfg_parse(big, false, &cfg), 0);
    assert_int_equal(mapping_paths(&cfg, "many", "pve1", &paths, &n, &e), 0);
    assert_int_equal(n, 32);
    assert_string_equal(paths[31], "0000:41:04.7");
    free(paths);
    sectioncfg_free(&cfg);
}

static void test_storage_cfg(void **state) {
    (void)state;
    char path[2100] = "/";
    memset(path + 1, 'p', 2000);
    path[2001] = '\0';
    char text[4096];
    snprintf(
        text, sizeof(text),
        "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\n"
        "# a comment\nnfs: shared\n\tpath %s\n\tcontent snippets,images\n"
        "\n  \nlvmthin: local-lvm\n\tthinpool data\n",
        path
    );
    struct sectioncfg cfg;
    struct storage_info st;
    assert_int_equal(sectioncfg_parse(text, true, &cfg), 0);
    assert_int_equal(storage_find(&cfg, "local", &st), 0);
    assert_string_equal(st.type, "dir");
    assert_string_equal(st.path, "/var/lib/vz");
    assert_false(list_has(st.content, "snippets"));
    assert_int_equal(storage_find(&cfg, "shared", &st), 0);
    assert_string_equal(st.path, path); /* whole, not cut at some buffer size */
    assert_true(list_has(st.content, "snippets"));
    assert_int_equal(storage_find(&cfg, "local-lvm", &st), 0);
    assert_null(st.path);
    assert_int_equal(storage_find(&cfg, "LOCAL", &st), -ENOENT);
    sectioncfg_free(&cfg);
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
        cmocka_unit_test(test_proxmox_reading),  cmocka_unit_test(test_long_values),
        cmocka_unit_test(test_storage_cfg),      cmocka_unit_test(test_apply_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
