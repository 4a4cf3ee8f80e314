#include "config.h"

#include "cleanup.h"
#include "hostfs.h"
#include "mdev_uuid.h"
#include "pveconf.h"
#include "strutil.h"
#include "toml.h"
#include "vgpu_type.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const policy_names[] = {
    [POLICY_AUTO] = "auto",
    [POLICY_EQUAL_SIZE] = "equal-size",
    [POLICY_HOMOGENEOUS] = "homogeneous",
    [POLICY_MIXED_SIZE] = "mixed-size",
    [POLICY_NONE] = "none",
};
static const char *const placement_names[] = {"pack", "spread"};
static const char *const uuid_args_names[] = {"auto", "always", "never"};
static const char *const uuid_source_names[] = {"mdev", "smbios"};

const char *policy_name(enum pvh_policy p) {
    return policy_names[p];
}

void config_defaults(struct pvh_config *c) {
    memset(c, 0, sizeof(*c));
    c->policy = POLICY_AUTO;
    /* NVIDIA: equal-size vGPUs of A, B and Q series may share a GPU; the seeds saw C with Q. */
    strcpy(c->series_groups[0], "ABCQ");
    c->nseries_groups = 1;
    c->placement = PLACEMENT_PACK;
    c->uuid_args = UUID_ARGS_AUTO;
    c->uuid_source = UUID_SOURCE_MDEV;
    c->remove_wait_s = 10;
    c->lock_timeout_s = 10; /* like qm set */
    c->hook_timeout_s = 120;
    c->reclaim_stale = true;
}

void config_free(struct pvh_config *c) {
    for (size_t i = 0; i < c->nvms; i++) {
        for (size_t j = 0; j < c->vms[i].nlists; j++) {
            free(c->vms[i].lists[j].gpus);
        }
        free(c->vms[i].lists);
        free(c->vms[i].args_before);
        free(c->vms[i].hookscript_added);
        free(c->vms[i].mapping);
        tuning_free(&c->vms[i].tuning);
    }
    free(c->vms);
    c->vms = NULL;
    c->nvms = 0;
}

const struct vm_settings *config_managed_vm(const struct pvh_config *c, unsigned long vmid) {
    const struct vm_settings *vs = config_vm(c, vmid);
    return vs && vs->type[0] ? vs : NULL;
}

bool config_record_stale(
    const struct vm_settings *vs, const struct pveconf *conf, char *why, size_t whysize
) {
    struct vm_identity now;
    pveconf_identity(conf, &now);
    if (vm_identity_matches(&vs->identity, &now)) {
        return false;
    }
    char was[96], is[96];
    vm_identity_describe(&vs->identity, was, sizeof(was));
    vm_identity_describe(&now, is, sizeof(is));
    snprintf(
        why, whysize,
        "the record of VM %lu in the settings was written for an earlier VM %lu (%s); VM %lu "
        "now is another VM (%s)",
        vs->vmid, vs->vmid, was, vs->vmid, is
    );
    return true;
}

const struct vm_settings *
config_vm_for(const struct pvh_config *c, unsigned long vmid, const struct pveconf *conf) {
    const struct vm_settings *vs = config_vm(c, vmid);
    char why[8];
    return vs && !config_record_stale(vs, conf, why, sizeof(why)) ? vs : NULL;
}

const struct vm_settings *
config_managed_vm_for(const struct pvh_config *c, unsigned long vmid, const struct pveconf *conf) {
    const struct vm_settings *vs = config_vm_for(c, vmid, conf);
    return vs && vs->type[0] ? vs : NULL;
}

const struct vm_settings *config_vm(const struct pvh_config *c, unsigned long vmid) {
    for (size_t i = 0; i < c->nvms; i++) {
        if (c->vms[i].vmid == vmid) {
            return &c->vms[i];
        }
    }
    return NULL;
}

/* JSON text that json-c accepted, scanned once for two things json-c does not tell: where an
 * object repeats a key (json-c keeps the last one silently) and where a key is (for the line and
 * column of a bad value). A scanner for strings and nesting is enough, the syntax is valid. */
struct key_seen {
    size_t depth;
    size_t start; /* raw key bytes, escapes undecoded: "a" and "\u0061" differ, an edge */
    size_t len;
};

/* Is the key just seen (keys[n-1]) at the dotted path `want` ("vms.100.index")? Its enclosing
 * keys are, going back, the first ones of a smaller depth. */
static bool key_is_at(const char *text, const struct key_seen *keys, size_t n, const char *want) {
    const char *end = want + strlen(want);
    size_t depth = SIZE_MAX;
    for (size_t k = n; k-- > 0;) {
        if (keys[k].depth >= depth) {
            continue;
        }
        depth = keys[k].depth;
        const char *dot = end;
        while (dot > want && dot[-1] != '.') {
            dot--;
        }
        if ((size_t)(end - dot) != keys[k].len || memcmp(dot, text + keys[k].start, keys[k].len)) {
            return false;
        }
        if (dot == want) {
            return depth == 1;
        }
        end = dot - 1;
    }
    return false;
}

/* *dup: the offset of the first repeated key, or -1; *at: the offset of the key `want` (NULL:
 * none wanted), or -1. */
static void scan_keys(const char *text, size_t len, const char *want, long *dup, long *at) {
    struct key_seen *keys = NULL;
    size_t nkeys = 0, depth = 0;
    /* per depth: is it an object, and is the next string a key? */
    char kind[256];
    bool expect_key[256];
    *dup = *at = -1;
    for (size_t i = 0; i < len && *dup < 0 && !(want && *at >= 0); i++) {
        char c = text[i];
        if (c == '{' || c == '[') {
            if (++depth >= sizeof(kind)) {
                break; /* json-c's own depth limit is lower */
            }
            kind[depth] = c;
            expect_key[depth] = c == '{';
        } else if (c == '}' || c == ']') {
            while (nkeys && keys[nkeys - 1].depth == depth) {
                nkeys--;
            }
            depth--;
        } else if (c == ',' && depth && kind[depth] == '{') {
            expect_key[depth] = true;
        } else if (c == '"') {
            size_t start = ++i;
            while (i < len && text[i] != '"') {
                i += text[i] == '\\' ? 2 : 1;
            }
            if (depth && kind[depth] == '{' && expect_key[depth]) {
                expect_key[depth] = false;
                for (size_t k = nkeys; k-- > 0 && keys[k].depth == depth;) {
                    if (keys[k].len == i - start &&
                        !memcmp(text + keys[k].start, text + start, i - start)) {
                        *dup = (long)start - 1;
                    }
                }
                struct key_seen *nk = realloc(keys, (nkeys + 1) * sizeof(*nk));
                if (!nk) {
                    break;
                }
                keys = nk;
                keys[nkeys++] = (struct key_seen){.depth = depth, .start = start, .len = i - start};
                if (want && key_is_at(text, keys, nkeys, want)) {
                    *at = (long)start - 1;
                }
            }
        }
    }
    free(keys);
}

static void position(const char *text, size_t off, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* One parse: the file's name and text, and where its error goes. */
struct parse_ctx {
    const char *path;
    const char *text; /* NULL: values of no file (tune's own), so no line and column */
    size_t len;
    struct config_error *ce;
};

/* Every settings error is made here, so that each names its file, line:column and key alike:
 * "FILE:LINE:COLUMN: what" (off: where in the text, -1 when unknown). */
static int __attribute__((format(printf, 6, 7))) parse_error(
    struct parse_ctx *px, int code, long off, const char *key, const char *hint, const char *fmt,
    ...
) {
    struct config_error *ce = px->ce;
    ce->code = code == -EINVAL ? "settings-invalid" : "settings-unreadable";
    snprintf(ce->file, sizeof(ce->file), "%s", px->path);
    snprintf(ce->key, sizeof(ce->key), "%s", key);
    ce->line = ce->column = 0;
    if (px->text && off >= 0) {
        position(px->text, (size_t)off, &ce->line, &ce->column);
    }
    char what[sizeof(ce->err.msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (ce->line) {
        err_set(&ce->err, code, "%s:%d:%d: %s", px->path, ce->line, ce->column, what);
    } else {
        err_set(&ce->err, code, "%s: %s", px->path, what);
    }
    err_hint(&ce->err, "%s", hint);
    return code;
}

static int bad_value(struct parse_ctx *px, const char *key, const char *why) {
    long dup, at = -1;
    if (px->text) {
        scan_keys(px->text, px->len, key, &dup, &at);
    }
    return parse_error(
        px, -EINVAL, at, key, "fix the value (see 'pve-vgpu-hook help config')", "\"%s\" %s", key,
        why
    );
}

static int parse_enum(
    json_object *v, const char *const *names, size_t n, int *out, struct parse_ctx *px,
    const char *key
) {
    char why[256];
    int w = snprintf(why, sizeof(why), "must be one of:");
    for (size_t i = 0; i < n && w > 0 && (size_t)w < sizeof(why); i++) {
        w += snprintf(why + w, sizeof(why) - (size_t)w, " \"%s\"", names[i]);
    }
    if (!json_object_is_type(v, json_type_string)) {
        return bad_value(px, key, why);
    }
    const char *s = json_object_get_string(v);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(s, names[i])) {
            *out = (int)i;
            return 0;
        }
    }
    return bad_value(px, key, why);
}

static int
parse_seconds(json_object *v, int min, int max, int *out, struct parse_ctx *px, const char *key) {
    char why[96];
    snprintf(why, sizeof(why), "must be a whole number of seconds from %d to %d", min, max);
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < min ||
        json_object_get_int64(v) > max) {
        return bad_value(px, key, why);
    }
    *out = (int)json_object_get_int64(v);
    return 0;
}

static int parse_series_groups(json_object *v, struct pvh_config *c, struct parse_ctx *px) {
    static const char *why =
        "must be a list of lists of series letters, e.g. [[\"A\", \"B\", \"C\", \"Q\"]]";
    if (!json_object_is_type(v, json_type_array) ||
        json_object_array_length(v) > SERIES_GROUPS_MAX) {
        return bad_value(px, "series_groups", why);
    }
    c->nseries_groups = 0;
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        json_object *g = json_object_array_get_idx(v, i);
        if (!json_object_is_type(g, json_type_array) || json_object_array_length(g) > 4) {
            return bad_value(px, "series_groups", why);
        }
        char *dst = c->series_groups[c->nseries_groups];
        size_t k = 0;
        dst[0] = '\0';
        for (size_t j = 0; j < json_object_array_length(g); j++) {
            json_object *s = json_object_array_get_idx(g, j);
            const char *str =
                json_object_is_type(s, json_type_string) ? json_object_get_string(s) : "";
            if (strlen(str) != 1 || !strchr("ABCQ", str[0]) || strchr(dst, str[0])) {
                return bad_value(px, "series_groups", why);
            }
            dst[k++] = str[0];
            dst[k] = '\0';
        }
        dst[k] = '\0';
        c->nseries_groups++;
    }
    return 0;
}

static int
parse_gpu_array(json_object *a, struct vm_gpu_list *l, struct parse_ctx *px, const char *key) {
    if (!json_object_is_type(a, json_type_array)) {
        return bad_value(px, key, "must be a list of PCI ids like \"0000:06:00.0\"");
    }
    size_t n = json_object_array_length(a);
    l->gpus = calloc(n ? n : 1, sizeof(*l->gpus));
    if (!l->gpus) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(a, i);
        if (!json_object_is_type(s, json_type_string) ||
            pci_id_normalize(json_object_get_string(s), l->gpus[l->n], sizeof(l->gpus[0])) < 0) {
            return bad_value(px, key, "must be a list of PCI ids like \"0000:06:00.0\"");
        }
        l->n++;
    }
    return 0;
}

/* One value of vms.<vmid>.attached: a VM config line's value (one line, not empty), or absent. */
static int attached_value(
    json_object *val, const char *key, char **out, struct parse_ctx *px, const char *sub
) {
    json_object *v;
    if (!json_object_object_get_ex(val, key, &v) || !json_object_is_type(v, json_type_string)) {
        return 0;
    }
    const char *s = json_object_get_string(v);
    if (!*s || strpbrk(s, "\r\n")) {
        return bad_value(px, sub, "is written by attach; do not edit it");
    }
    return (*out = strdup(s)) ? 0 : -ENOMEM;
}

/* vms.<vmid>.attached: what attach changed in the VM config, so that detach can undo exactly
 * that. */
static int
parse_attached(json_object *val, struct vm_settings *vm, struct parse_ctx *px, const char *sub) {
    if (!json_object_is_type(val, json_type_object)) {
        return bad_value(px, sub, "is written by attach; do not edit it");
    }
    vm->attached = true;
    int r = attached_value(val, "args_before", &vm->args_before, px, sub);
    if (r == 0) {
        r = attached_value(val, "hookscript_added", &vm->hookscript_added, px, sub);
    }
    if (r == 0) {
        r = attached_value(val, "mapping", &vm->mapping, px, sub);
    }
    if (r < 0 || !vm->mapping) {
        return r;
    }
    /* it becomes a section name in /etc/pve/mapping/pci.cfg: Proxmox's pve-configid */
    for (const char *p = vm->mapping; *p; p++) {
        if (!(islower((unsigned char)*p) ||
              (p > vm->mapping && (isdigit((unsigned char)*p) || *p == '-' || *p == '_')))) {
            return bad_value(px, sub, "is written by attach; do not edit it");
        }
    }
    json_object *v;
    if (json_object_object_get_ex(val, "mapping_sep_nl", &v)) {
        int64_t n = json_object_get_int64(v);
        if (!json_object_is_type(v, json_type_int) || n < 0 || n > 2) {
            return bad_value(px, sub, "is written by attach; do not edit it");
        }
        vm->mapping_sep_nl = (unsigned)n;
    }
    if (json_object_object_get_ex(val, "mapping_file_created", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) {
            return bad_value(px, sub, "is written by attach; do not edit it");
        }
        vm->mapping_file_created = json_object_get_boolean(v);
    }
    if (json_object_object_get_ex(val, "live_migration", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) {
            return bad_value(px, sub, "is written by attach; do not edit it");
        }
        vm->live_migration = json_object_get_boolean(v);
    }
    return 0;
}

/* vms.<vmid>.params (strings) or .unlock (integers or strings), checked as tune checks them. */
static int parse_tuning(
    json_object *val, bool unlock, struct vm_tuning *t, struct parse_ctx *px, const char *sub
) {
    if (!json_object_is_type(val, json_type_object)) {
        return bad_value(px, sub, "must be an object of settings (see 'help tune')");
    }
    json_object_object_foreach(val, k, v) {
        char valbuf[64];
        const char *value = NULL;
        if (json_object_is_type(v, json_type_string)) {
            value = json_object_get_string(v);
        } else if (unlock && json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0) {
            snprintf(valbuf, sizeof(valbuf), "%" PRId64, json_object_get_int64(v));
            value = valbuf;
        }
        struct pvh_err le = {0};
        bool is_string = false;
        int r =
            !value ? -EINVAL
            : unlock
                ? unlock_value_check(k, value, UINT_MAX, &is_string, &le) /* per node at start */
                : tune_param_check(k, value, &le);
        if (r < 0) {
            char what[sizeof(le.msg) + 64];
            snprintf(
                what, sizeof(what), "has a bad setting %s (%s)", k, value ? le.msg : "wrong type"
            );
            return bad_value(px, sub, what);
        }
        struct tune_kv **arr = unlock ? &t->unlock : &t->params;
        size_t *n = unlock ? &t->nunlock : &t->nparams;
        struct tune_kv *na = realloc(*arr, (*n + 1) * sizeof(*na));
        if (!na) {
            return -ENOMEM;
        }
        *arr = na;
        na[*n] = (struct tune_kv
        ){.key = strdup(k),
          .value = strdup(value),
          .is_string = json_object_is_type(v, json_type_string) && (!unlock || is_string)};
        if (!na[*n].key || !na[*n].value) {
            free(na[*n].key);
            free(na[*n].value);
            return -ENOMEM;
        }
        (*n)++;
    }
    return 0;
}

int config_tuning_set(json_object *obj, const char *key, const char *value, bool number) {
    long long n = 0;
    number = number && toml_int(value, &n) == 0; /* "8_294_400", "0x1B38": the number */
    json_object *v = number ? json_object_new_int64(n) : json_object_new_string(value);
    return v && json_object_object_add(obj, key, v) == 0 ? 0 : -ENOMEM;
}

json_object *config_tuning_json(const struct tune_kv *kv, size_t n, bool unlock) {
    json_object *o = json_object_new_object();
    for (size_t i = 0; o && i < n; i++) {
        if (config_tuning_set(o, kv[i].key, kv[i].value, unlock && !kv[i].is_string) < 0) {
            json_object_put(o);
            return NULL;
        }
    }
    return o;
}

int config_tuning_parse(json_object *params, json_object *unlock, struct vm_tuning *t) {
    struct config_error ce;
    struct parse_ctx px = {.path = "tune", .ce = &ce};
    memset(t, 0, sizeof(*t));
    int r = parse_tuning(params, false, t, &px, "params");
    if (r == 0) {
        r = parse_tuning(unlock, true, t, &px, "unlock");
    }
    if (r < 0) {
        tuning_free(t);
    }
    return r;
}

/* vms.<vmid>.identity: {"ctime": N, "uuid": "..."}, either part optional, as attach and tune
 * wrote them. */
static int
parse_identity(json_object *val, struct vm_settings *vm, struct parse_ctx *px, const char *sub) {
    static const char why[] =
        "is written by attach and tune ({\"ctime\": N, \"uuid\": \"...\"}); do not edit it";
    if (!json_object_is_type(val, json_type_object)) {
        return bad_value(px, sub, why);
    }
    json_object_object_foreach(val, k, v) {
        if (!strcmp(k, "ctime") && json_object_is_type(v, json_type_int) &&
            json_object_get_int64(v) > 0) {
            vm->identity.ctime = json_object_get_int64(v);
        } else if (!strcmp(k, "uuid") && json_object_is_type(v, json_type_string) && uuid_is_canonical(json_object_get_string(v))) {
            snprintf(vm->identity.uuid, sizeof(vm->identity.uuid), "%s", json_object_get_string(v));
        } else {
            return bad_value(px, sub, why);
        }
    }
    return 0;
}

/* vms.N.type: a string that names a vGPU type, never cut. A value that is there but unusable is
 * named as invalid, with the value, not reported as missing. */
static int
parse_vm_type(json_object *t, struct vm_settings *vm, struct parse_ctx *px, const char *key) {
    char sub[200];
    snprintf(sub, sizeof(sub), "%s.type", key);
    if (!json_object_is_type(t, json_type_string)) {
        return bad_value(px, sub, "must be a string: a vGPU type like \"GRID P40-2Q\"");
    }
    const char *val = json_object_get_string(t);
    if (!vgpu_type_query_valid(val) || strlen(val) >= sizeof(vm->type)) {
        _cleanup_free_ char *shown = str_escape_ctl(val, strlen(val), false);
        char why[1024]; /* an escaped byte is 4 characters: 127 of them fit whole */
        str_msg(
            why, sizeof(why),
            "is \"%s\", which is not a vGPU type: a type id (nvidia-46) or name (GRID P40-2Q) has "
            "letters, digits, blanks, '-', '_' and '+' only, at most %zu bytes",
            shown ? shown : "?", sizeof(vm->type) - 1
        );
        return bad_value(px, sub, why);
    }
    memcpy(vm->type, val, strlen(val) + 1);
    return 0;
}

_Static_assert(NODE_NAME_MAX == 64, "NODE_NAME_RULE says at most 63");

/* A "gpus" key that is no node name: which, and Proxmox's rule (an FQDN is the usual one). */
static int bad_node_key(struct parse_ctx *px, const char *key, const char *node) {
    _cleanup_free_ char *esc = str_escape_ctl(node, strlen(node), false);
    char why[512];
    if (!esc || strlen(esc) > NODE_NAME_MAX * 2 ||
        str_fmt(
            why, sizeof(why), "must be keyed by node names, and \"%s\" is none: " NODE_NAME_RULE,
            esc
        ) < 0) {
        snprintf(
            why, sizeof(why), "must be keyed by node names, and a key of %zu bytes is none",
            strlen(node)
        );
    }
    return bad_value(px, key, why);
}

/* "gpus": one list for every node, or an object of lists keyed by node name. */
static int
parse_vm_gpus(json_object *val, struct vm_settings *vm, struct parse_ctx *px, const char *sub) {
    size_t n = json_object_is_type(val, json_type_object) ? json_object_object_length(val) : 1;
    vm->lists = calloc(n ? n : 1, sizeof(*vm->lists));
    if (!vm->lists) {
        return -ENOMEM;
    }
    if (!json_object_is_type(val, json_type_object)) {
        return parse_gpu_array(val, &vm->lists[vm->nlists++], px, sub);
    }
    json_object_object_foreach(val, node, arr) {
        struct vm_gpu_list *l = &vm->lists[vm->nlists++];
        if (!node_name_valid(node)) {
            return bad_node_key(px, sub, node);
        }
        snprintf(l->node, sizeof(l->node), "%s", node);
        int r = parse_gpu_array(arr, l, px, sub);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

static int parse_vm(
    const char *id, json_object *v, struct vm_settings *vm, struct parse_ctx *px,
    struct pvh_warnings *w
) {
    char key[160];
    snprintf(key, sizeof(key), "vms.%s", id);
    if (!vmid_parse(id, &vm->vmid)) {
        return bad_value(px, key, "is not a VMID (a number from 100 to 999999999)");
    }
    if (!json_object_is_type(v, json_type_object)) {
        return bad_value(px, key, "must be an object with \"type\" (and \"gpus\", \"index\")");
    }
    json_object *t;
    if (json_object_object_get_ex(v, "type", &t)) {
        int r = parse_vm_type(t, vm, px, key);
        if (r < 0) {
            return r;
        }
    }
    json_object_object_foreach(v, k, val) {
        char sub[200];
        snprintf(sub, sizeof(sub), "%s.%s", key, k);
        if (!strcmp(k, "type")) {
            continue;
        } else if (!strcmp(k, "params") || !strcmp(k, "unlock")) {
            int r = parse_tuning(val, !strcmp(k, "unlock"), &vm->tuning, px, sub);
            if (r < 0) {
                return r;
            }
        } else if (!strcmp(k, "index")) {
            if (!json_object_is_type(val, json_type_int) || json_object_get_int64(val) < 0 ||
                json_object_get_int64(val) > 15) {
                return bad_value(px, sub, "must be a hostpci-style index from 0 to 15");
            }
            vm->index = (unsigned)json_object_get_int64(val);
        } else if (!strcmp(k, "gpus")) {
            int r = parse_vm_gpus(val, vm, px, sub);
            if (r < 0) {
                return r;
            }
        } else if (!strcmp(k, "attached") || !strcmp(k, "identity")) {
            int r = !strcmp(k, "identity") ? parse_identity(val, vm, px, sub)
                                           : parse_attached(val, vm, px, sub);
            if (r < 0) {
                return r;
            }
        } else {
            warn_add(w, "%s: unknown key \"%s\" ignored", px->path, sub);
        }
    }
    bool managed_keys = json_object_object_get_ex(v, "gpus", NULL) ||
                        json_object_object_get_ex(v, "index", NULL) ||
                        json_object_object_get_ex(v, "attached", NULL);
    if (!vm->type[0] && (managed_keys || tuning_empty(&vm->tuning))) {
        return bad_value(
            px, key,
            "needs \"type\": a vGPU type like \"GRID P40-2Q\" (or only \"params\"/\"unlock\" "
            "from tune)"
        );
    }
    return 0;
}

bool node_name_valid(const char *s) {
    /* Proxmox's pve-node format (pve_verify_node_name): letters, digits and '-', a letter or
     * digit at both ends; so never ".", ".." or a hidden name once it is a path */
    size_t len = strlen(s);
    if (len == 0 || len >= NODE_NAME_MAX || !isalnum((unsigned char)s[0]) ||
        !isalnum((unsigned char)s[len - 1])) {
        return false;
    }
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '-') {
            return false;
        }
    }
    return true;
}

static int
parse_root(json_object *root, struct parse_ctx *px, struct pvh_config *c, struct pvh_warnings *w) {
    if (!json_object_is_type(root, json_type_object)) {
        return bad_value(px, "(top level)", "must be a JSON object { ... }");
    }
    int r = 0;
    json_object_object_foreach(root, key, v) {
        int iv;
        if (!strcmp(key, "policy")) {
            r = parse_enum(v, policy_names, ARRAY_SIZE(policy_names), &iv, px, key);
            c->policy = (enum pvh_policy)iv;
        } else if (!strcmp(key, "placement")) {
            r = parse_enum(v, placement_names, ARRAY_SIZE(placement_names), &iv, px, key);
            c->placement = (enum pvh_placement)iv;
        } else if (!strcmp(key, "uuid_args")) {
            r = parse_enum(v, uuid_args_names, ARRAY_SIZE(uuid_args_names), &iv, px, key);
            c->uuid_args = (enum pvh_uuid_args)iv;
        } else if (!strcmp(key, "uuid_source")) {
            r = parse_enum(v, uuid_source_names, ARRAY_SIZE(uuid_source_names), &iv, px, key);
            c->uuid_source = (enum pvh_uuid_source)iv;
        } else if (!strcmp(key, "series_groups")) {
            r = parse_series_groups(v, c, px);
        } else if (!strcmp(key, "remove_wait_s")) {
            r = parse_seconds(v, 0, 600, &c->remove_wait_s, px, key);
        } else if (!strcmp(key, "lock_timeout_s")) {
            r = parse_seconds(v, 1, 600, &c->lock_timeout_s, px, key);
        } else if (!strcmp(key, "hook_timeout_s")) {
            r = parse_seconds(v, 1, 3600, &c->hook_timeout_s, px, key);
        } else if (!strcmp(key, "reclaim_stale")) {
            if (!json_object_is_type(v, json_type_boolean)) {
                return bad_value(px, key, "must be true or false");
            }
            c->reclaim_stale = json_object_get_boolean(v);
        } else if (!strcmp(key, "ha_rules")) {
            if (!json_object_is_type(v, json_type_boolean)) {
                return bad_value(px, key, "must be true or false");
            }
            c->ha_rules = json_object_get_boolean(v);
        } else if (!strcmp(key, "vms")) {
            if (!json_object_is_type(v, json_type_object)) {
                return bad_value(px, key, "must be an object keyed by VMID");
            }
            size_t n = json_object_object_length(v);
            c->vms = calloc(n ? n : 1, sizeof(*c->vms));
            if (!c->vms) {
                return -ENOMEM;
            }
            json_object_object_foreach(v, id, vmv) {
                r = parse_vm(id, vmv, &c->vms[c->nvms++], px, w);
                if (r < 0) {
                    return r;
                }
            }
        } else {
            warn_add(w, "%s: unknown key \"%s\" ignored", px->path, key);
        }
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/* The document, strictly: valid JSON, no key twice. */
static int parse_doc(struct parse_ctx *px, json_object **root) {
    const char *text = px->text;
    size_t len = px->len;
    *root = NULL;
    if (len > CONFIG_MAX_BYTES) {
        return parse_error(
            px, -EFBIG, -1, "", "make it smaller", "larger than 1 MiB, the pmxcfs limit"
        );
    }
    struct json_tokener *tok = json_tokener_new();
    if (!tok) {
        return -ENOMEM;
    }
    /* Strict: a trailing comma or a comment is an error, not something to guess around. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *doc = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    const char *why = NULL;
    if (!doc) {
        why = jerr == json_tokener_continue ? "unexpected end of file"
                                            : json_tokener_error_desc(jerr);
    } else {
        while (end < len && strchr(" \t\r\n", text[end])) {
            end++;
        }
        if (end < len) {
            why = "unexpected text after the JSON value";
        }
    }
    if (why) {
        json_object_put(doc);
        return parse_error(
            px, -EINVAL, (long)end, "", "fix the JSON syntax (an example is in the README)",
            "invalid JSON: %s", why
        );
    }
    long dup, at;
    scan_keys(text, len, NULL, &dup, &at);
    if (dup >= 0) {
        char key[192];
        snprintf(key, sizeof(key), "%.*s", (int)strcspn(text + dup + 1, "\""), text + dup + 1);
        json_object_put(doc);
        return parse_error(
            px, -EINVAL, dup, key, "keep one of them (json-c would silently use the last)",
            "the key \"%s\" appears twice in one object", key
        );
    }
    *root = doc;
    return 0;
}

int config_parse(
    const char *text, size_t len, const char *path, struct pvh_config *c, json_object **doc,
    struct pvh_warnings *w, struct config_error *ce
) {
    struct parse_ctx px = {.path = path, .text = text, .len = len, .ce = ce};
    json_object *root;
    config_defaults(c);
    if (doc) {
        *doc = NULL;
    }
    int r = parse_doc(&px, &root);
    if (r == 0) {
        r = parse_root(root, &px, c, w);
    }
    if (r < 0) {
        /* never half a file: what was parsed before the error does not count */
        config_free(c);
        config_defaults(c);
        json_object_put(root);
        return r;
    }
    if (doc) {
        *doc = root;
    } else {
        json_object_put(root);
    }
    return 0;
}

int config_doc_set_vm(json_object *root, unsigned long vmid, json_object *entry) {
    char key[16];
    snprintf(key, sizeof(key), "%lu", vmid);
    json_object *vms;
    if (!json_object_object_get_ex(root, "vms", &vms)) {
        if (!entry) {
            return 0;
        }
        vms = json_object_new_object();
        if (!vms || json_object_object_add(root, "vms", vms) < 0) {
            json_object_put(entry);
            return -ENOMEM;
        }
    }
    if (!entry) {
        json_object_object_del(vms, key);
        if (json_object_object_length(vms) == 0) {
            json_object_object_del(root, "vms");
        }
        return 0;
    }
    return json_object_object_add(vms, key, entry) < 0 ? -ENOMEM : 0;
}

static json_object *doc_vm_entry(json_object *root, unsigned long vmid) {
    char key[16];
    json_object *vms, *entry;
    snprintf(key, sizeof(key), "%lu", vmid);
    return json_object_object_get_ex(root, "vms", &vms) &&
                   json_object_object_get_ex(vms, key, &entry) &&
                   json_object_is_type(entry, json_type_object)
               ? entry
               : NULL;
}

/* What attach and detach keep of an entry: the tuning, and (with something kept) whose it is. */
static const char *const TUNING_KEYS[] = {"params", "unlock", "identity"};

int config_doc_set_managed(json_object *root, unsigned long vmid, json_object *entry) {
    json_object *old = doc_vm_entry(root, vmid);
    for (size_t i = 0; old && i < sizeof(TUNING_KEYS) / sizeof(TUNING_KEYS[0]); i++) {
        json_object *t;
        bool owner = !strcmp(TUNING_KEYS[i], "identity");
        if (json_object_object_get_ex(old, TUNING_KEYS[i], &t) && !(owner && !entry)) {
            if (!entry && !(entry = json_object_new_object())) {
                return -ENOMEM;
            }
            json_object_object_add(entry, TUNING_KEYS[i], json_object_get(t));
        }
    }
    return config_doc_set_vm(root, vmid, entry);
}

int config_doc_set_tuning(
    json_object *root, unsigned long vmid, json_object *params, json_object *unlock
) {
    json_object *old = doc_vm_entry(root, vmid);
    json_object *entry = json_object_new_object();
    if (!entry) {
        json_object_put(params);
        json_object_put(unlock);
        return -ENOMEM;
    }
    json_object_object_foreach(old ? old : entry, k, v) {
        if (strcmp(k, "params") != 0 && strcmp(k, "unlock") != 0) {
            json_object_object_add(entry, k, json_object_get(v));
        }
    }
    if (params) {
        json_object_object_add(entry, "params", params);
    }
    if (unlock) {
        json_object_object_add(entry, "unlock", unlock);
    }
    size_t keys = json_object_object_length(entry);
    if (keys == 0 || (keys == 1 && json_object_object_get_ex(entry, "identity", NULL))) {
        json_object_put(entry); /* whose record it is, with no record left */
        entry = NULL;
    }
    return config_doc_set_vm(root, vmid, entry);
}

int config_doc_set_identity(json_object *root, unsigned long vmid, const struct vm_identity *id) {
    json_object *entry = doc_vm_entry(root, vmid);
    if (!entry || vm_identity_empty(id)) {
        return 0;
    }
    json_object *o = json_object_new_object();
    if (!o) {
        return -ENOMEM;
    }
    if (id->ctime) {
        json_object_object_add(o, "ctime", json_object_new_int64(id->ctime));
    }
    if (id->uuid[0]) {
        json_object_object_add(o, "uuid", json_object_new_string(id->uuid));
    }
    return json_object_object_add(entry, "identity", o) < 0 ? -ENOMEM : 0;
}

char *config_doc_serialize(json_object *root, size_t *len, bool *empty) {
    const char *s = json_object_to_json_string_ext(
        root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE
    );
    size_t l = strlen(s);
    char *out = malloc(l + 2);
    if (!out) {
        return NULL;
    }
    memcpy(out, s, l);
    out[l] = '\n';
    out[l + 1] = '\0';
    *len = l + 1;
    *empty = json_object_object_length(root) == 0;
    return out;
}

void config_where(const struct hook_env *env, const struct hostfs **fs, const char **path) {
    *fs = env->config_path ? env->config_fs : env->fs;
    *path = env->config_path ? env->config_path : CONFIG_DEFAULT_PATH;
}

/* What the command does while the settings cannot be used: the one rule of DESIGN.md "Settings
 * that cannot be read", said after what to do about the file. */
static void config_consequence(struct config_error *ce, enum config_use use) {
    static const char *const then[] = {
        [CONFIG_USE_SHOW] = "shown with the default settings meanwhile; every vGPU start is "
                            "refused until 'pve-vgpu-hook config check' says the file is valid",
        [CONFIG_USE_ACT] = "nothing was changed; every vGPU start is refused until "
                           "'pve-vgpu-hook config check' says the file is valid",
        [CONFIG_USE_TEARDOWN] = "going on with the default settings meanwhile (post-stop "
                                "still removes the VM's vGPUs, after the default wait)",
        [CONFIG_USE_CHECK] = "",
    };
    if (then[use][0]) {
        char hint[sizeof(ce->err.hint)];
        snprintf(hint, sizeof(hint), "%s", ce->err.hint);
        err_hint(&ce->err, "%s; %s", hint, then[use]);
    }
}

static int read_error(struct parse_ctx *px, int r, bool named) {
    if (r == -ENOENT) {
        return parse_error(
            px, r, -1, "",
            "name an existing file, or leave --config out to use " CONFIG_DEFAULT_PATH
            " (missing means defaults)",
            "it does not exist (a settings file named on the command line must)"
        );
    }
    if (r == -EFBIG) {
        return parse_error(px, r, -1, "", "make it smaller", "larger than 1 MiB, the pmxcfs limit");
    }
    return parse_error(
        px, r, -1, "",
        named ? "make it a readable file"
              : "without quorum /etc/pve may be unreadable; check 'pvecm status'",
        "cannot read it: %s", strerror(-r)
    );
}

int config_load_edit(
    const struct hook_env *env, enum config_use use, struct pvh_config *cfg, json_object **doc,
    char **text, size_t *len, struct pvh_warnings *w, struct config_error *ce
) {
    const struct hostfs *fs;
    const char *path;
    config_where(env, &fs, &path);
    struct parse_ctx px = {.path = path, .ce = ce};
    memset(ce, 0, sizeof(*ce));
    config_defaults(cfg);
    if (doc) {
        *doc = NULL;
    }
    *text = NULL;
    *len = 0;
    int r = hostfs_read_alloc(fs, path, CONFIG_MAX_BYTES, text, len);
    if (r == -ENOENT && !env->config_path) {
        /* the default file may be missing: every default applies */
        return config_parse("{}", 2, path, cfg, doc, w, ce);
    }
    if (r == 0) {
        r = config_parse(*text, *len, path, cfg, doc, w, ce);
    } else {
        r = read_error(&px, r, env->config_path != NULL);
    }
    if (r < 0 && !ce->err.msg[0]) { /* out of memory */
        parse_error(&px, r, -1, "", "run it again", "cannot parse it: %s", strerror(-r));
    }
    if (r < 0) {
        free(*text);
        *text = NULL;
        config_consequence(ce, use);
    }
    return r;
}

int config_load(
    const struct hook_env *env, enum config_use use, struct pvh_config *cfg, struct pvh_warnings *w,
    struct config_error *ce
) {
    _cleanup_free_ char *text = NULL;
    size_t len;
    return config_load_edit(env, use, cfg, NULL, &text, &len, w, ce);
}

int config_load_to_act(
    const struct hook_env *env, struct pvh_config *cfg, struct pvh_warnings *w, struct pvh_err *e
) {
    struct config_error ce;
    int r = config_load(env, CONFIG_USE_ACT, cfg, w, &ce);
    if (r < 0 && e) {
        *e = ce.err;
    }
    return r;
}

const char CONFIG_HELP[] =
    "Settings: " CONFIG_DEFAULT_PATH " (JSON; cluster-wide through pmxcfs, so every node\n"
    "reads the same file). A missing file means every default below; --config FILE (or\n"
    "PVE_VGPU_HOOK_CONFIG) names another file, which must exist. Invalid JSON, a key given\n"
    "twice or a bad value is an error with file:line:column (and the key), and every vGPU\n"
    "start is refused until it is fixed: nothing is guessed. Unknown keys are warned about.\n"
    "'pve-vgpu-hook config check [FILE]' validates a file before it goes live.\n"
    "\n"
    "  policy          how vGPUs may share one physical GPU (default \"auto\"):\n"
    "                    auto         the driver decides (available_instances); never stricter\n"
    "                                 than the driver. Refusals are explained with the\n"
    "                                 equal-size rule while the GPU behaves that way.\n"
    "                    equal-size   all vGPUs on a GPU have one framebuffer size; series mix\n"
    "                                 only within a series_groups group\n"
    "                    homogeneous  all vGPUs on a GPU are the same type\n"
    "                    mixed-size   sizes may differ; framebuffers add up to the GPU's\n"
    "                    none         only available_instances\n"
    "                  The driver's available_instances = 0 refuses under every policy;\n"
    "                  MIG-backed types are exempt from the rules.\n"
    "  series_groups   with equal-size: series that may share a GPU at the same size\n"
    "                  (default [[\"A\", \"B\", \"C\", \"Q\"]])\n"
    "  placement       managed mode: \"pack\" (default; GPUs already hosting that size first,\n"
    "                  then by PCI address) or \"spread\" (fewest vGPUs first)\n"
    "  uuid_args       -uuid in args for hostpci-mode VMs: \"auto\" (default; only on\n"
    "                  qemu-server older than 7.2-4, which passes no -uuid itself), \"always\"\n"
    "                  (also for non-NVIDIA parents and when the version is unknown; on 7.2-4\n"
    "                  and later Proxmox's own -uuid comes after args and wins, so nothing is\n"
    "                  changed there and a warning says so), \"never\"\n"
    "  uuid_source     the -uuid value: \"mdev\" (default; the mdev UUID, as vgpu_unlock-rs\n"
    "                  expects) or \"smbios\" (the VM's smbios1 uuid)\n"
    "  remove_wait_s   post-stop: seconds to wait for the NVIDIA driver to remove a vGPU\n"
    "                  before removing it ourselves (default 10, 0..600)\n"
    "  reclaim_stale   pre-start may remove leftover vGPUs of stopped VMs when nothing else\n"
    "                  fits (default true)\n"
    "  ha_rules        true: the publish timer also runs ha-sync, keeping HA rules that\n"
    "                  restrict HA vGPU VMs to nodes able to start them (default false)\n"
    "  lock_timeout_s  attach/detach: seconds to wait for the VM's lock and the cluster lock\n"
    "                  (default 10, like qm set; 1..600)\n"
    "  hook_timeout_s  seconds each chained hook in " HOOKS_DIR " may run\n"
    "                  before it is stopped and counted as failed (default 120, 1..3600)\n"
    "  vms             written by attach/detach: per VMID the managed vGPU's \"type\", the\n"
    "                  candidate \"gpus\" per node, the \"index\" (0..15) and what attach\n"
    "                  changed (\"attached\"); by tune: \"params\" (vgpu_params) and\n"
    "                  \"unlock\" (vgpu_unlock-rs overrides), for either mode; and\n"
    "                  \"identity\": the VM's meta ctime and smbios1 uuid when attach or tune\n"
    "                  wrote it. Proxmox gives a deleted VM's VMID to the next new VM: a\n"
    "                  record whose identity is not the VM's now (or whose VM is gone) is\n"
    "                  stale, never applied or undone on the new VM, shown by status and\n"
    "                  doctor, and removed by cleanup. Edit vms with attach/detach/tune, not\n"
    "                  by hand\n"
    "\n"
    "Example:\n"
    "  {\"policy\": \"auto\", \"placement\": \"spread\", \"remove_wait_s\": 10}\n";
