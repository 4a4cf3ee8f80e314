#include "tune.h"

#include "cleanup.h"
#include "strutil.h"
#include "toml.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tuning_free(struct vm_tuning *t) {
    for (size_t i = 0; i < t->nparams; i++) {
        free(t->params[i].key);
        free(t->params[i].value);
    }
    for (size_t i = 0; i < t->nunlock; i++) {
        free(t->unlock[i].key);
        free(t->unlock[i].value);
    }
    free(t->params);
    free(t->unlock);
    memset(t, 0, sizeof(*t));
}

bool tuning_empty(const struct vm_tuning *t) {
    return t->nparams == 0 && t->nunlock == 0;
}

/* NVIDIA's documented vgpu_params (vGPU user guide, KVM): each an integer switch, 0 or 1. */
static const struct {
    const char *key;
    const char *example; /* the usual setting, for the hint */
    const char *what;
} KNOWN_PARAMS[] = {
    {"frame_rate_limiter", "0", "0 turns the 60 fps limiter off"},
    {"disable_vnc", "1", "1 turns the plugin's VNC console off"},
    {"enable_uvm", "1", "1 turns CUDA unified memory on"},
    {"enable_debugging", "1", "1 turns CUDA debuggers on"},
    {"enable_profiling", "1", "1 turns CUDA profilers on"},
};

static size_t known_param(const char *key) {
    for (size_t i = 0; i < sizeof(KNOWN_PARAMS) / sizeof(KNOWN_PARAMS[0]); i++) {
        if (!strcmp(KNOWN_PARAMS[i].key, key)) {
            return i;
        }
    }
    return SIZE_MAX;
}

bool tune_param_known(const char *key) {
    return known_param(key) != SIZE_MAX;
}

int tune_param_check(const char *key, const char *value, struct pvh_err *e) {
    bool ok = *key && strlen(key) <= 64;
    for (const char *p = key; ok && *p; p++) {
        ok = islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_';
    }
    if (!ok) {
        err_set(e, -EINVAL, "'%s' is not a vgpu_params key (lowercase letters, digits, '_')", key);
        err_hint(e, "e.g. --param frame_rate_limiter=0; nothing was changed");
        return -EINVAL;
    }
    ok = *value && strlen(value) <= 256;
    for (const char *p = value; ok && *p; p++) {
        ok = isalnum((unsigned char)*p) || strchr("_.:-", *p);
    }
    if (!ok) {
        err_set(
            e, -EINVAL,
            "the value of %s is not one vgpu_params can carry (letters, digits and _.:- only: "
            "',' and '=' separate the parameters)",
            key
        );
        err_hint(e, "e.g. --param %s=0; nothing was changed", key);
        return -EINVAL;
    }
    return 0;
}

int tune_param_value_check(const char *key, const char *value, struct pvh_err *e) {
    size_t k = known_param(key);
    if (k != SIZE_MAX && strcmp(value, "0") != 0 && strcmp(value, "1") != 0) {
        err_set(
            e, -EINVAL,
            "%s takes 0 or 1, not '%s': NVIDIA's plugin reads it as an integer and would refuse "
            "the vGPU at its start",
            key, value
        );
        err_hint(
            e, "e.g. --param %s=%s (%s); nothing was changed", key, KNOWN_PARAMS[k].example,
            KNOWN_PARAMS[k].what
        );
        return -EINVAL;
    }
    return 0;
}

/* vgpu_unlock-rs's VgpuProfileOverride (src/lib.rs), with the driver field each string goes
 * to (NVA081/NVA082 and NV2080 structures). */
static const struct unlock_key UNLOCK_KEYS[] = {
    {"gpu_type", UNLOCK_UINT32, 0, "the vGPU type id (vgpu_type)"},
    {"card_name", UNLOCK_STRING, 31, "the vGPU's name (vgpu_name)"},
    {"vgpu_type", UNLOCK_STRING, 31, "the vGPU class (vgpu_class)"},
    {"features", UNLOCK_STRING, 127, "the license features (license)"},
    {"max_instances", UNLOCK_UINT32, 0, "vGPUs per GPU"},
    {"num_displays", UNLOCK_UINT32, 0, "displays (num_heads)"},
    {"display_width", UNLOCK_UINT32, 0, "maximum display width"},
    {"display_height", UNLOCK_UINT32, 0, "maximum display height"},
    {"max_pixels", UNLOCK_UINT32, 0, "maximum pixels (width x height)"},
    {"frl_config", UNLOCK_UINT32, 0, "the frame rate limit (fps)"},
    {"cuda_enabled", UNLOCK_BOOL01, 0, "CUDA (0 or 1)"},
    {"ecc_supported", UNLOCK_BOOL01, 0, "ECC (0 or 1)"},
    {"mig_instance_size", UNLOCK_UINT32, 0, "the MIG instance size"},
    {"multi_vgpu_supported", UNLOCK_BOOL01, 0, "several vGPUs per VM (0 or 1)"},
    {"pci_id", UNLOCK_UINT64, 0, "the vGPU's PCI id (vdev_id)"},
    {"pci_device_id", UNLOCK_UINT64, 0, "the PCI device id (pdev_id)"},
    {"framebuffer", UNLOCK_SIZE, 0, "the framebuffer size"},
    {"mappable_video_size", UNLOCK_SIZE, 0, "the mappable video size"},
    {"framebuffer_reservation", UNLOCK_SIZE, 0, "the framebuffer reservation"},
    {"encoder_capacity", UNLOCK_UINT32, 0, "the encoder capacity"},
    {"bar1_length", UNLOCK_UINT64, 0, "the BAR1 length"},
    {"frl_enabled", UNLOCK_BOOL01, 0, "the frame rate limiter (0 turns it off)"},
    {"adapter_name", UNLOCK_STRING, 63, "the adapter name"},
    {"short_gpu_name", UNLOCK_STRING, 63, "the short GPU name"},
    {"license_type", UNLOCK_STRING, 127, "the licensed product name"},
};

const struct unlock_key *unlock_key_find(const char *key) {
    for (size_t i = 0; i < sizeof(UNLOCK_KEYS) / sizeof(UNLOCK_KEYS[0]); i++) {
        if (!strcmp(UNLOCK_KEYS[i].key, key)) {
            return &UNLOCK_KEYS[i];
        }
    }
    return NULL;
}

int unlock_size_parse(const char *s, unsigned long long *bytes) {
    while (isspace((unsigned char)*s)) {
        s++;
    }
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) {
        n--;
    }
    size_t num = strspn(s, "0123456789.");
    if (n == 0 || num == 0) {
        return -EINVAL;
    }
    static const struct {
        const char *unit;
        double mult;
    } units[] = {
        {"", 1},
        {"kB", 1e3},
        {"KB", 1e3},
        {"MB", 1e6},
        {"GB", 1e9},
        {"TB", 1e12},
        {"KiB", 1024.0},
        {"MiB", 1048576.0},
        {"GiB", 1073741824.0},
        {"TiB", 1099511627776.0},
    };
    const char *unit = s + num;
    while (isspace((unsigned char)*unit) && unit < s + n) {
        unit++;
    }
    size_t ulen = (size_t)(s + n - unit);
    char numbuf[64];
    if (num >= sizeof(numbuf)) {
        return -EINVAL;
    }
    memcpy(numbuf, s, num);
    numbuf[num] = '\0';
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i].unit) != ulen || strncmp(units[i].unit, unit, ulen) != 0) {
            continue;
        }
        if (ulen == 0) { /* no unit: decimal digits (Rust's u64 parse) */
            char *end;
            errno = 0;
            *bytes = strtoull(numbuf, &end, 10);
            return strchr(numbuf, '.') || errno || *end ? -EINVAL : 0;
        }
        char *end;
        double v = strtod(numbuf, &end);
        if (*end || numbuf[0] == '.' || strchr(numbuf, '.') != strrchr(numbuf, '.')) {
            return -EINVAL;
        }
        double b = v * units[i].mult + 0.5; /* Rust's round(), for v >= 0 */
        if (b >= 18446744073709551616.0) {
            return -EINVAL;
        }
        *bytes = (unsigned long long)b;
        return 0;
    }
    return -EINVAL;
}

/* A text setting: printable, and no longer than the driver's field (31 bytes before driver
 * 580 for the fields that grew to 63). */
static int unlock_string_check(
    const struct unlock_key *k, const char *key, const char *value, unsigned driver_major,
    struct pvh_err *e
) {
    size_t max = k->max_len == 31 && driver_major >= 580 ? 63 : k->max_len;
    size_t len = strlen(value);
    if (str_has_ctl(value, false) || strpbrk(value, "\t\"\\")) {
        err_set(
            e, -EINVAL,
            "%s: the value must be printable UTF-8 without control characters, quotes or "
            "backslashes",
            key
        );
        err_hint(e, "nothing was changed");
        return -EINVAL;
    }
    if (len > max) {
        err_set(
            e, -EINVAL,
            "%s (%s) is %zu bytes; the driver's field holds %zu (vgpu_unlock-rs would fail "
            "the vGPU)",
            key, k->what, len, max
        );
        err_hint(e, "shorten it; nothing was changed");
        return -EINVAL;
    }
    return 0;
}

int unlock_value_check(
    const char *key, const char *value, unsigned driver_major, bool *is_string, struct pvh_err *e
) {
    const struct unlock_key *k = unlock_key_find(key);
    if (!k) {
        err_set(
            e, -EINVAL, "'%s' is not a vgpu_unlock-rs setting (it would ignore it silently)", key
        );
        err_hint(
            e, "'pve-vgpu-hook help tune' lists them: frl_enabled, framebuffer, num_displays, "
               "display_width, display_height, max_pixels, cuda_enabled, ...; nothing was changed"
        );
        return -EINVAL;
    }
    unsigned long long bytes;
    long long v;
    *is_string = false;
    switch (k->kind) {
    case UNLOCK_UINT32:
    case UNLOCK_UINT64:
        /* written into the TOML file as it is: a TOML integer, so at most 2^63-1 */
        if (toml_int(value, &v) < 0 || v < 0 ||
            (k->kind == UNLOCK_UINT32 && v > (long long)UINT_MAX)) {
            err_set(
                e, -EINVAL, "%s (%s) takes an integer from 0 to %s, not '%s'", key, k->what,
                k->kind == UNLOCK_UINT32 ? "4294967295" : "9223372036854775807 (TOML's largest)",
                value
            );
            err_hint(e, "e.g. --unlock %s=1 (0x... for hex); nothing was changed", key);
            return -EINVAL;
        }
        return 0;
    case UNLOCK_BOOL01:
        if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0) {
            err_set(e, -EINVAL, "%s (%s) takes 0 or 1, not '%s'", key, k->what, value);
            err_hint(
                e,
                "vgpu_unlock-rs reads it as a number (true/false would fail the vGPU): "
                "--unlock %s=0; nothing was changed",
                key
            );
            return -EINVAL;
        }
        return 0;
    case UNLOCK_SIZE:
        if (unlock_size_parse(value, &bytes) < 0) {
            err_set(
                e, -EINVAL,
                "%s (%s) takes bytes or a size with a unit (kB, MB, GB, TB, KiB, MiB, GiB, "
                "TiB), not '%s'",
                key, k->what, value
            );
            err_hint(e, "e.g. --unlock %s=896MiB; nothing was changed", key);
            return -EINVAL;
        }
        /* bytes go in as a TOML integer when they are one, else as the string it also reads */
        *is_string = toml_int(value, &v) < 0;
        return 0;
    case UNLOCK_STRING:
        *is_string = unlock_string_check(k, key, value, driver_major, e) == 0;
        return *is_string ? 0 : -EINVAL;
    }
    return -EINVAL;
}

/* head, then each setting as key eq value (strings quoted when quote) with between before all
 * but the first and after each one; malloc'ed. */
static char *kv_list(
    const char *head, const struct tune_kv *kv, size_t n, const char *eq, const char *between,
    const char *after, bool quote
) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) {
        return NULL;
    }
    fputs(head, f);
    for (size_t i = 0; i < n; i++) {
        const char *q = quote && kv[i].is_string ? "\"" : "";
        fprintf(f, "%s%s%s%s%s%s%s", i ? between : "", kv[i].key, eq, q, kv[i].value, q, after);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *tune_params_string(const struct vm_tuning *t) {
    return kv_list("", t->params, t->nparams, "=", ",", "", false);
}

char *tune_unlock_string(const struct vm_tuning *t) {
    return kv_list("", t->unlock, t->nunlock, " = ", ", ", "", true);
}

char *tune_unlock_table(const struct vm_tuning *t, unsigned long vmid) {
    _cleanup_free_ char *head = NULL;
    if (asprintf(
            &head,
            "[vm.%lu]\n" TUNE_TOML_MARKER " (pve-vgpu-hook tune %lu); it rewrites this table at "
            "each start of the VM\n",
            vmid, vmid
        ) < 0) {
        return NULL;
    }
    return kv_list(head, t->unlock, t->nunlock, " = ", "", "\n", true);
}

static int
kv_fail(const struct toml_kv *kv, const char *table, const char *what, struct pvh_err *e) {
    err_set(
        e, -EINVAL, "line %u, column %u: %s in [%s] %s; vgpu_unlock-rs would fail every vGPU",
        kv->line, kv->col, kv->key, table, what
    );
    return -EINVAL;
}

/* One key of an override table, typed as VgpuProfileOverride wants it. */
static int check_override_kv(
    const struct toml_kv *kv, const char *table, unsigned driver_major, struct pvh_warnings *w,
    struct pvh_err *e
) {
    const struct unlock_key *k = unlock_key_find(kv->key);
    unsigned long long bytes;
    if (!k) {
        warn_add(
            w, "line %u: %s in [%s] is no vgpu_unlock-rs setting; it ignores it", kv->line, kv->key,
            table
        );
        return 0;
    }
    switch (k->kind) {
    case UNLOCK_UINT32:
    case UNLOCK_BOOL01:
        if (kv->type != TOML_INT || kv->i < 0 || kv->i > (long long)UINT_MAX) {
            return kv_fail(kv, table, "must be an integer from 0 to 4294967295", e);
        }
        return 0;
    case UNLOCK_UINT64:
        return kv->type == TOML_INT && kv->i >= 0
                   ? 0
                   : kv_fail(kv, table, "must be an integer of 0 or more", e);
    case UNLOCK_SIZE:
        if ((kv->type == TOML_INT && kv->i >= 0) ||
            (kv->type == TOML_STRING && unlock_size_parse(kv->s, &bytes) == 0)) {
            return 0;
        }
        return kv_fail(kv, table, "must be bytes or a size like \"896MiB\"", e);
    case UNLOCK_STRING: {
        size_t max = k->max_len == 31 && driver_major >= 580 ? 63 : k->max_len;
        if (kv->type != TOML_STRING) {
            return kv_fail(kv, table, "must be a string", e);
        }
        if (strlen(kv->s) > max) {
            return kv_fail(kv, table, "is longer than the driver's field", e);
        }
        return 0;
    }
    }
    return 0;
}

static char *path_text(const struct toml_table *t) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) {
        return NULL;
    }
    for (size_t i = 0; i < t->npath; i++) {
        fprintf(f, "%s%s", i ? "." : "", t->path[i]);
    }
    return fclose(f) == 0 ? buf : (free(buf), NULL);
}

/* Is table t our [vm.<vmid>] (its first line after the header is our marker)? */
static bool own_table(const struct toml_table *t, const char *text, unsigned long vmid) {
    char id[24];
    snprintf(id, sizeof(id), "%lu", vmid);
    return vmid && t->npath == 2 && !strcmp(t->path[0], "vm") && !strcmp(t->path[1], id) &&
           !strncmp(text + t->body, TUNE_TOML_MARKER, strlen(TUNE_TOML_MARKER));
}

int unlock_file_check(
    const struct toml_doc *d, const char *text, unsigned long own_vmid, unsigned driver_major,
    struct pvh_warnings *w, struct pvh_err *e
) {
    static const char *const maps[] = {"profile", "mdev", "vm"};
    for (size_t i = 0; i < d->n; i++) {
        const struct toml_table *t = &d->tables[i];
        bool ours = false;
        for (size_t m = 0; t->npath && m < sizeof(maps) / sizeof(maps[0]); m++) {
            ours |= !strcmp(t->path[0], maps[m]);
        }
        if (!ours || own_table(t, text, own_vmid)) {
            continue; /* serde ignores other keys; our own table is rewritten next */
        }
        _cleanup_free_ char *name = path_text(t);
        if (!name) {
            return err_set(e, -ENOMEM, "out of memory");
        }
        if (t->npath == 1 && t->nkvs) {
            return kv_fail(&t->kvs[0], name, "is a value where a table is expected", e);
        }
        if (t->npath > 2) {
            err_set(
                e, -EINVAL,
                "line %u: [%s] nests too deep (vgpu_unlock-rs wants [%s.<name>] with values); "
                "it would fail every vGPU",
                t->line, name, t->path[0]
            );
            return -EINVAL;
        }
        for (size_t k = 0; k < t->nkvs; k++) {
            int r = check_override_kv(&t->kvs[k], name, driver_major, w, e);
            if (r < 0) {
                return r;
            }
        }
    }
    return 0;
}

/* How to hand an admin's [vm.<vmid>] over to tune: the command with its settings, each
 * quoted for the shell; described instead when it is too long to read (never cut). */
static void handover_hint(const struct toml_table *t, unsigned long vmid, struct pvh_err *e) {
    char *cmd = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&cmd, &size);
    for (size_t k = 0; f && k < t->nkvs; k++) {
        const struct toml_kv *kv = &t->kvs[k];
        _cleanup_free_ char *setting = NULL, *quoted = NULL;
        int n = kv->type == TOML_STRING ? asprintf(&setting, "%s=%s", kv->key, kv->s)
                                        : asprintf(&setting, "%s=%lld", kv->key, kv->i);
        /* strings quoted for the shell; an integer's setting too when its key needs it */
        bool plain = n > 0 && kv->type != TOML_STRING &&
                     strspn(setting, "abcdefghijklmnopqrstuvwxyz0123456789_=-") == (size_t)n;
        quoted = n > 0 && !plain ? str_shell_quote(setting) : NULL;
        fprintf(f, " --unlock %s", plain ? setting : quoted ? quoted : "?");
    }
    bool ok = f && fclose(f) == 0;
    if (ok && strlen(cmd) < 400) {
        err_hint(
            e,
            "to hand it over, run: pve-vgpu-hook tune %lu%s; then delete the table from the "
            "file. To keep yours, drop the VM's unlock settings instead (pve-vgpu-hook tune %lu "
            "--clear KEY...)",
            vmid, cmd, vmid
        );
    } else {
        err_hint(
            e,
            "to hand it over, give each of its %zu settings to pve-vgpu-hook tune %lu --unlock "
            "KEY=VALUE, then delete the table from the file. To keep yours, drop the VM's "
            "unlock settings instead (pve-vgpu-hook tune %lu --clear KEY...)",
            t->nkvs, vmid, vmid
        );
    }
    free(cmd);
}

int unlock_file_put(
    const char *text, const struct toml_doc *d, unsigned long vmid, const char *table, char **out,
    struct pvh_err *e
) {
    char id[24];
    snprintf(id, sizeof(id), "%lu", vmid);
    const char *path[] = {"vm", id};
    const struct toml_table *t = toml_find(d, path, 2);
    size_t len = strlen(text);
    *out = NULL;
    if (t && !table && !own_table(t, text, vmid)) {
        return (*out = strdup(text)) ? 0 : -ENOMEM; /* the admin's, and nothing of ours to put */
    }
    if (t) {
        if (!own_table(t, text, vmid)) {
            err_set(
                e, -EEXIST,
                "line %u: [vm.%lu] is your own table in the vgpu_unlock file; pve-vgpu-hook "
                "never overwrites it",
                t->line, vmid
            );
            handover_hint(t, vmid, e);
            return -EEXIST;
        }
        /* ours: [start, end) is replaced, what follows (comments, the next table) stays */
        size_t start = t->start, end = t->end;
        if (!table) {
            /* and the blank line we put before it, when it was the last */
            if (t->next == len && start >= 2 && text[start - 1] == '\n' &&
                text[start - 2] == '\n' && text[end] == '\0') {
                start--;
            }
            return asprintf(out, "%.*s%s", (int)start, text, text + end) < 0 ? -ENOMEM : 0;
        }
        return asprintf(out, "%.*s%s%s", (int)start, text, table, text + end) < 0 ? -ENOMEM : 0;
    }
    if (!table) {
        return (*out = strdup(text)) ? 0 : -ENOMEM;
    }
    const char *sep = len == 0                            ? ""
                      : text[len - 1] != '\n'             ? "\n\n"
                      : len >= 2 && text[len - 2] == '\n' ? ""
                                                          : "\n";
    return asprintf(out, "%s%s%s", text, sep, table) < 0 ? -ENOMEM : 0;
}
