#include "report.h"

#include "admin.h"

#include "cleanup.h"
#include "leftover.h"
#include "rules.h"
#include "sectioncfg.h"
#include "strutil.h"
#include "vfmap.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------- shared helpers ---------- */

static json_object *tuning_json_of(const struct vm_tuning *t);
static void tuning_text(FILE *out, const struct vm_tuning *t, const char *indent);

void report_print_json(FILE *out, json_object *o) {
    fprintf(
        out, "%s\n",
        json_object_to_json_string_ext(
            o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE
        )
    );
    json_object_put(o);
}

static json_object *jstr(const char *s) {
    return json_object_new_string(s ? s : "");
}

/* A settings file that cannot be used, as every --json output names it. */
static json_object *settings_error_json(const struct config_error *ce) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "code", jstr(ce->code));
    json_object_object_add(o, "file", jstr(ce->file));
    json_object_object_add(o, "line", ce->line ? json_object_new_int(ce->line) : NULL);
    json_object_object_add(o, "column", ce->line ? json_object_new_int(ce->column) : NULL);
    json_object_object_add(o, "key", ce->key[0] ? jstr(ce->key) : NULL);
    json_object_object_add(o, "message", jstr(ce->err.msg));
    json_object_object_add(o, "hint", jstr(ce->err.hint));
    return o;
}

static void add_settings_error(json_object *o, bool bad, const struct config_error *ce) {
    if (bad) {
        json_object_object_add(o, "settings_error", settings_error_json(ce));
    }
}

/* "nvidia-46" before "nvidia-155": compare the text, then the trailing number. */
static int natural_cmp(const char *a, const char *b) {
    size_t la = strcspn(a, "0123456789"), lb = strcspn(b, "0123456789");
    int c = strncmp(a, b, la < lb ? la : lb);
    if (c || la != lb) {
        return c ? c : (la < lb ? -1 : 1);
    }
    unsigned long na = strtoul(a + la, NULL, 10), nb = strtoul(b + lb, NULL, 10);
    if (na != nb) {
        return na < nb ? -1 : 1;
    }
    return strcmp(a, b);
}

static const struct host *sort_host;
static int cmp_type(const void *x, const void *y) {
    const struct inv_type *a = x, *b = y;
    return natural_cmp(sort_host->defs[a->def].id, sort_host->defs[b->def].id);
}

const char *report_gpu_model(const struct host *h, size_t gpu) {
    for (size_t i = 0; i < h->ndefs; i++) {
        if (h->defs[i].gpu == gpu && h->defs[i].info.gpu[0]) {
            return h->defs[i].info.gpu;
        }
    }
    return "GPU";
}

static char series_str(const struct inv_typedef *d) {
    return d->info.series ? d->info.series : '-';
}

/* A type of a GPU: instances available over its parents, and one parent's entry. */
struct gpu_type {
    const struct inv_typedef *def;
    long available;
    bool readable;
    bool fits; /* policy allows it now and some parent has an instance */
    bool policy_ok;
};

static size_t gpu_types(
    const struct pvh_config *cfg, const struct host *h, size_t gpu, struct gpu_type *out, size_t max
) {
    size_t n = 0;
    for (size_t p = 0; p < h->nparents; p++) {
        if (h->parents[p].gpu != gpu) {
            continue;
        }
        for (size_t t = 0; t < h->parents[p].ntypes; t++) {
            const struct inv_type *ty = &h->parents[p].types[t];
            size_t k;
            for (k = 0; k < n && out[k].def != &h->defs[ty->def]; k++) {
            }
            if (k == n) {
                if (n == max) {
                    continue;
                }
                out[n++] = (struct gpu_type){.def = &h->defs[ty->def]};
            }
            out[k].readable |= ty->available >= 0;
        }
    }
    for (size_t k = 0; k < n; k++) {
        out[k].available = rules_gpu_available(h, gpu, out[k].def, NULL);
        out[k].policy_ok = rules_type_fits(cfg, h, gpu, out[k].def, NULL, NULL, 0);
        out[k].fits = out[k].policy_ok && out[k].available > 0;
    }
    return n;
}

static int cmp_gpu_type(const void *x, const void *y) {
    const struct gpu_type *a = x, *b = y;
    return natural_cmp(a->def->id, b->def->id);
}

void report_gpu_vf_counts(const struct host *h, size_t gpu, size_t *vfs, size_t *free_vfs) {
    *vfs = *free_vfs = 0;
    for (size_t p = 0; p < h->nparents; p++) {
        if (h->parents[p].gpu != gpu || !h->parents[p].is_vf) {
            continue;
        }
        (*vfs)++;
        bool used = false;
        for (size_t m = 0; m < h->nmdevs; m++) {
            used |= h->mdevs[m].parent == p;
        }
        *free_vfs += !used;
    }
}

static size_t gpu_mdev_count(const struct host *h, size_t gpu) {
    size_t n = 0;
    for (size_t m = 0; m < h->nmdevs; m++) {
        n += h->mdevs[m].parent != NO_INDEX && h->parents[h->mdevs[m].parent].gpu == gpu;
    }
    return n;
}

/* ---------- types ---------- */

/* JSON string, escaped (C0 and C1 control bytes, DEL, quote, backslash). */
static void json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            fprintf(out, "\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\u%04x", *p);
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            fprintf(out, "\\u%04x", *++p); /* a C1 control, as a terminal would take it */
        } else {
            fputc(*p, out);
        }
    }
    fputc('"', out);
}

/* One type of a parent, in `mdevctl types --dumpjson`'s keys, then ours. */
struct json_type_row {
    const char *id, *device_api, *name, *description, *physical_gpu;
    long available;
    const struct vgpu_type_info *info;
    bool fits;
};

static void json_type_entry(FILE *out, const struct json_type_row *t, const char *sep) {
    fprintf(out, "%s      {\n        ", sep);
    json_string(out, t->id);
    fprintf(
        out, ": {\n          \"available_instances\": %ld,\n", t->available < 0 ? 0 : t->available
    );
    fprintf(out, "          \"device_api\": ");
    json_string(out, t->device_api);
    if (t->name[0]) {
        fprintf(out, ",\n          \"name\": ");
        json_string(out, t->name);
    }
    if (t->description[0]) {
        fprintf(out, ",\n          \"description\": ");
        json_string(out, t->description);
    }
    if (t->info->named) {
        fprintf(out, ",\n          \"short_name\": ");
        json_string(out, t->info->short_name);
        fprintf(out, ",\n          \"series\": \"%c\"", t->info->series);
    }
    if (t->info->fb_mib) {
        fprintf(out, ",\n          \"framebuffer_mib\": %u", t->info->fb_mib);
    }
    if (t->info->max_instance) {
        fprintf(out, ",\n          \"max_instance\": %u", t->info->max_instance);
    }
    fprintf(
        out, ",\n          \"mig_backed\": %s,\n          \"physical_gpu\": ",
        t->info->mig ? "true" : "false"
    );
    json_string(out, t->physical_gpu);
    fprintf(out, ",\n          \"fits\": %s\n        }\n      }", t->fits ? "true" : "false");
}

static void json_parent_open(FILE *out, const char *bdf, const char *sep) {
    fprintf(out, "%s  {\n    ", sep);
    json_string(out, bdf);
    fprintf(out, ": [");
}

/* A GPU on NVIDIA's vendor interface, as mdevctl would show its first free VF if the VF were
 * an mdev parent: the types the driver lets that VF take now, one instance each (the VF). */
static void json_nvidia_gpu(FILE *out, const struct nvidia_gpu *g, const char *sep) {
    json_parent_open(out, g->free_bdf, sep);
    const char *tsep = "\n";
    for (size_t i = 0; i < g->free_vf.ncreatable; i++) {
        const struct nvidia_iface_type *ct = &g->free_vf.creatable[i];
        char id[24];
        snprintf(id, sizeof(id), "nvidia-%u", ct->id);
        struct vgpu_type_info info;
        vgpu_type_describe(ct->name, "", &info);
        struct json_type_row t = {
            .id = id,
            .device_api = "vfio-pci",
            .name = ct->name,
            .description = "",
            .physical_gpu = g->bdf,
            .available = 1,
            .info = &info,
            .fits = true,
        };
        json_type_entry(out, &t, tsep);
        tsep = ",\n";
    }
    fprintf(out, "%s]\n  }", g->free_vf.ncreatable ? "\n    " : "");
}

/* types --dumpjson. Streamed, not built as a json-c tree: on a large SR-IOV host that tree
 * alone would take several MiB. Layout and keys follow `mdevctl types --dumpjson`, then ours. */
static void types_dumpjson(
    FILE *out, const struct pvh_config *cfg, const struct host *h, const struct nvidia_gpu *nv,
    size_t nnv, const char *only
) {
    fprintf(out, "[");
    const char *psep = "\n";
    for (size_t p = 0; p < h->nparents; p++) {
        const struct inv_parent *par = &h->parents[p];
        if (only && strcmp(par->bdf, only) != 0) {
            continue;
        }
        struct inv_type *sorted = malloc((par->ntypes ? par->ntypes : 1) * sizeof(*sorted));
        if (!sorted) {
            break;
        }
        memcpy(sorted, par->types, par->ntypes * sizeof(*sorted));
        sort_host = h;
        qsort(sorted, par->ntypes, sizeof(*sorted), cmp_type);
        json_parent_open(out, par->bdf, psep);
        const char *tsep = "\n";
        for (size_t t = 0; t < par->ntypes; t++) {
            const struct inv_type *ty = &sorted[t];
            const struct inv_typedef *d = &h->defs[ty->def];
            struct json_type_row jt = {
                .id = d->id,
                .device_api = d->device_api,
                .name = d->name,
                .description = d->description,
                .physical_gpu = h->gpus[par->gpu].bdf,
                .available = ty->available,
                .info = &d->info,
                .fits = ty->available > 0 && rules_type_fits(cfg, h, par->gpu, d, NULL, NULL, 0),
            };
            json_type_entry(out, &jt, tsep);
            tsep = ",\n";
        }
        fprintf(out, "%s]\n  }", par->ntypes ? "\n    " : "");
        psep = ",\n";
        free(sorted);
    }
    for (size_t g = 0; g < nnv && !only; g++) {
        if (nv[g].free_bdf[0]) {
            json_nvidia_gpu(out, &nv[g], psep);
            psep = ",\n";
        }
    }
    fprintf(out, "%s]\n", psep[0] == ',' ? "\n" : "");
}

/* A vendor-interface type's framebuffer from its name (newer drivers give no description):
 * "NVIDIA L40S-4Q" is 4096 MiB, a MIG name "...-1-5C" 5 GB. 0 when the name does not tell;
 * *mig (may be NULL): MIG-backed, exempt from the time-sliced sizes. */
static unsigned iface_type_mib_mig(const struct nvidia_iface_type *t, bool *mig) {
    struct vgpu_type_info info;
    vgpu_type_describe(t->name, "", &info);
    if (mig) {
        *mig = info.mig;
    }
    return info.fb_mib;
}

static unsigned iface_type_mib(const struct nvidia_iface_type *t) {
    return iface_type_mib_mig(t, NULL);
}

const char *report_iface_mode(const struct nvidia_gpu *g, unsigned *size_mib) {
    unsigned size = 0;
    bool several = false;
    for (size_t i = 0; i < g->free_vf.ncreatable; i++) {
        bool mig;
        unsigned mib = iface_type_mib_mig(&g->free_vf.creatable[i], &mig);
        mib = mig ? 0 : mib; /* MIG-backed types do not tell the time-sliced mode */
        several |= size && mib && mib != size;
        size = size ? size : mib;
    }
    *size_mib = size;
    return g->nused == 0                                   ? "idle"
           : !g->free_bdf[0] || g->free_vf.ncreatable == 0 ? "full"
           : several                                       ? "mixed-size"
           : size                                          ? "equal-size"
                                                           : "mig-only";
}

/* How the GPU behaves, as the types a free VF may take reveal it, in words. */
static void iface_mode(const struct nvidia_gpu *g, char *buf, size_t size) {
    unsigned size_mib;
    const char *mode = report_iface_mode(g, &size_mib);
    if (!strcmp(mode, "equal-size")) {
        snprintf(buf, size, "equal-size mode, %u MiB vGPUs", size_mib);
    } else if (!strcmp(mode, "mixed-size")) {
        snprintf(buf, size, "mixed-size mode");
    } else if (!strcmp(mode, "mig-only")) {
        snprintf(buf, size, "in use (only MIG-backed types offered)");
    } else {
        snprintf(buf, size, "%s", mode);
    }
}

/* PCI id, type id, the longest VM note, and the NUL */
#define VF_USE_TEXT_MAX (PCI_ID_LEN + 20 + 48)

/* "0000:81:00.4 nvidia-1414", then who has it when status looked: "(VM 300)",
 * "(VM 300, busy)" or "(no VM runs it: left over)". */
static void
vf_use_text(const struct nvidia_gpu *g, const struct vf_holder *v, char *buf, size_t size) {
    const char *who = "";
    char vm[48] = "";
    enum leftover_verdict lv = leftover_verdict(true, v->state, v->vmid, 0);
    if (g->users_known && lv == LEFTOVER_RUNNING && v->vmid) {
        snprintf(vm, sizeof(vm), " (VM %lu)", v->vmid);
    } else if (g->users_known && lv == LEFTOVER_BUSY) {
        snprintf(vm, sizeof(vm), " (VM %lu, busy)", v->vmid);
    } else if (g->users_known && lv == LEFTOVER_STALE) {
        who = " (no VM runs it: left over)";
    }
    snprintf(buf, size, "%s nvidia-%u%s%s", v->bdf, v->type, vm, who);
}

/* A GPU on NVIDIA's vendor interface: its VFs in use and what a free one can take now. */
static void print_nvidia_gpu(FILE *out, const struct nvidia_gpu *g, bool gap) {
    fprintf(
        out,
        "%s%s  NVIDIA vendor interface (nvidia/current_vgpu_type): Proxmox sets each "
        "VF's type itself\n",
        gap ? "\n" : "", g->bdf
    );
    char mode[64];
    iface_mode(g, mode, sizeof(mode));
    fprintf(out, "  %s; VFs in use: %zu of %zu", mode, g->nused, g->nvfs);
    for (size_t i = 0; i < g->nused; i++) {
        char use[VF_USE_TEXT_MAX];
        vf_use_text(g, &g->used[i], use, sizeof(use));
        fprintf(out, "%s%s", i ? ", " : ": ", use);
    }
    fprintf(out, "\n");
    if (!g->free_bdf[0]) {
        fprintf(out, "  no VF free\n");
        return;
    }
    fprintf(out, "  creatable now on %s:%s\n", g->free_bdf, g->free_vf.ncreatable ? "" : " none");
    for (size_t i = 0; i < g->free_vf.ncreatable; i++) {
        const struct nvidia_iface_type *t = &g->free_vf.creatable[i];
        char mib[24] = "";
        if (iface_type_mib(t)) {
            snprintf(mib, sizeof(mib), "%u MiB", iface_type_mib(t));
        }
        fprintf(out, "    nvidia-%-8u %-28s %s\n", t->id, t->name, mib);
    }
}

static void
lock_text(const struct pvh_config *cfg, const struct host *h, size_t g, char *buf, size_t size);

/* A GPU's mode as a code with its vGPU size and the sentence status prints beside it. */
static void
gpu_mode_json(json_object *o, const struct pvh_config *cfg, const struct host *h, size_t g) {
    static const char *const codes[] = {
        [GPU_MODE_IDLE] = "idle",
        [GPU_MODE_EQUAL_SIZE] = "equal-size",
        [GPU_MODE_MIXED_SIZE] = "mixed-size",
    };
    char text[128];
    lock_text(cfg, h, g, text, sizeof(text));
    unsigned size = rules_hosted_size(h, g, NULL);
    json_object_object_add(o, "mode", jstr(codes[rules_gpu_mode(h, g, NULL)]));
    json_object_object_add(o, "size_mib", size ? json_object_new_int64(size) : NULL);
    json_object_object_add(o, "message", jstr(text));
}

/* What a VF of NVIDIA's vendor interface holds, as an object: its type and who has it. */
static json_object *vf_use_json(const struct nvidia_gpu *g, const struct vf_holder *v) {
    const char *state = leftover_state_name(leftover_verdict(true, v->state, v->vmid, 0));
    char type[32], text[VF_USE_TEXT_MAX];
    snprintf(type, sizeof(type), "nvidia-%u", v->type);
    vf_use_text(g, v, text, sizeof(text));
    json_object *o = json_object_new_object();
    json_object_object_add(o, "pci", jstr(v->bdf));
    json_object_object_add(o, "type", jstr(type));
    json_object_object_add(
        o, "vmid", g->users_known && v->vmid ? json_object_new_int64((int64_t)v->vmid) : NULL
    );
    json_object_object_add(o, "state", g->users_known ? jstr(state) : NULL);
    json_object_object_add(o, "message", jstr(text));
    return o;
}

/* A GPU on NVIDIA's vendor interface: the same object in types and status. */
static json_object *vendor_gpu_json(const struct nvidia_gpu *nv) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "pci", jstr(nv->bdf));
    json_object_object_add(o, "vfs", json_object_new_int64((int64_t)nv->nvfs));
    json_object_object_add(o, "vfs_in_use", json_object_new_int64((int64_t)nv->nused));
    unsigned size;
    char text[64];
    json_object_object_add(o, "mode", jstr(report_iface_mode(nv, &size)));
    json_object_object_add(o, "size_mib", size ? json_object_new_int64(size) : NULL);
    iface_mode(nv, text, sizeof(text));
    json_object_object_add(o, "message", jstr(text));
    json_object *used = json_object_new_array();
    for (size_t i = 0; i < nv->nused; i++) {
        json_object_array_add(used, vf_use_json(nv, &nv->used[i]));
    }
    json_object_object_add(o, "in_use", used);
    json_object_object_add(o, "free_vf", nv->free_bdf[0] ? jstr(nv->free_bdf) : NULL);
    json_object *cre = json_object_new_array();
    for (size_t i = 0; i < nv->free_vf.ncreatable; i++) {
        char id[32];
        snprintf(id, sizeof(id), "nvidia-%u", nv->free_vf.creatable[i].id);
        json_object *t = json_object_new_object();
        json_object_object_add(t, "type", jstr(id));
        json_object_object_add(t, "name", jstr(nv->free_vf.creatable[i].name));
        unsigned mib = iface_type_mib(&nv->free_vf.creatable[i]);
        json_object_object_add(t, "framebuffer_mib", mib ? json_object_new_int64(mib) : NULL);
        json_object_array_add(cre, t);
    }
    json_object_object_add(o, "creatable_now", cre);
    return o;
}

/* One type of a GPU, from the model the text view prints. */
static json_object *gpu_type_json(const struct gpu_type *t) {
    const struct inv_typedef *d = t->def;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", jstr(d->id));
    json_object_object_add(o, "name", d->name[0] ? jstr(d->name) : NULL);
    json_object_object_add(o, "short_name", d->info.named ? jstr(d->info.short_name) : NULL);
    char series[2] = {d->info.series, '\0'};
    json_object_object_add(o, "series", d->info.series ? jstr(series) : NULL);
    json_object_object_add(
        o, "framebuffer_mib", d->info.fb_mib ? json_object_new_int64(d->info.fb_mib) : NULL
    );
    json_object_object_add(
        o, "max_instances",
        d->info.max_instance ? json_object_new_int64(d->info.max_instance) : NULL
    );
    json_object_object_add(
        o, "available", t->readable ? json_object_new_int64(t->available) : NULL
    );
    json_object_object_add(o, "mig_backed", json_object_new_boolean(d->info.mig));
    json_object_object_add(o, "fits", json_object_new_boolean(t->fits));
    json_object_object_add(
        o, "reason", t->fits ? NULL : jstr(!t->policy_ok ? "policy" : "driver-none-available")
    );
    return o;
}

/* types --json: one object, per physical GPU, as the text view shows it. */
static void types_json(
    FILE *out, const struct pvh_config *cfg, const struct host *h, const struct nvidia_gpu *nv,
    size_t nnv, const struct config_error *settings
) {
    json_object *root = json_object_new_object();
    json_object_object_add(root, "policy", jstr(policy_name(cfg->policy)));
    json_object *gpus = json_object_new_array();
    struct gpu_type *types = calloc(h->ndefs ? h->ndefs : 1, sizeof(*types));
    for (size_t g = 0; types && g < h->ngpus; g++) {
        json_object *o = json_object_new_object();
        size_t vfs, free_vfs;
        report_gpu_vf_counts(h, g, &vfs, &free_vfs);
        json_object_object_add(o, "pci", jstr(h->gpus[g].bdf));
        json_object_object_add(o, "model", jstr(report_gpu_model(h, g)));
        json_object_object_add(o, "kind", jstr(vfs ? "sriov-mdev" : "mdev"));
        json_object_object_add(o, "framebuffer_mib", json_object_new_int64(h->gpus[g].fb_mib));
        json_object_object_add(o, "vfs", vfs ? json_object_new_int64((int64_t)vfs) : NULL);
        json_object_object_add(
            o, "vfs_free", vfs ? json_object_new_int64((int64_t)free_vfs) : NULL
        );
        gpu_mode_json(o, cfg, h, g);
        size_t n = gpu_types(cfg, h, g, types, h->ndefs);
        qsort(types, n, sizeof(*types), cmp_gpu_type);
        json_object *list = json_object_new_array();
        for (size_t k = 0; k < n; k++) {
            json_object_array_add(list, gpu_type_json(&types[k]));
        }
        json_object_object_add(o, "types", list);
        json_object_array_add(gpus, o);
    }
    free(types);
    json_object_object_add(root, "gpus", gpus);
    json_object *vend = json_object_new_array();
    for (size_t g = 0; g < nnv; g++) {
        json_object_array_add(vend, vendor_gpu_json(&nv[g]));
    }
    json_object_object_add(root, "vendor_interface_gpus", vend);
    json_object *warn = json_object_new_array();
    for (size_t i = 0; i < h->warnings.n; i++) {
        json_object_array_add(warn, jstr(h->warnings.items[i]));
    }
    json_object_object_add(root, "warnings", warn);
    add_settings_error(root, settings != NULL, settings);
    report_print_json(out, root);
}

void report_types(
    FILE *out, const struct pvh_config *cfg, const struct host *h, const struct nvidia_gpu *nv,
    size_t nnv, const char *only_parent, const struct config_error *settings,
    enum report_format format
) {
    if (format == REPORT_DUMPJSON) {
        types_dumpjson(out, cfg, h, nv, nnv, only_parent);
        return;
    }
    if (format == REPORT_JSON) {
        types_json(out, cfg, h, nv, nnv, settings);
        return;
    }
    for (size_t g = 0; g < nnv; g++) {
        print_nvidia_gpu(out, &nv[g], g > 0);
    }
    if (h->ngpus == 0 && nnv == 0) {
        fprintf(
            out, "No mediated-device GPU on this host (/sys/class/mdev_bus is empty).\n"
                 "Is the vGPU driver loaded (nvidia-vgpu-mgr), and on Ampere or newer, are "
                 "the VFs enabled (sriov-manage -e ALL)?\n"
        );
        return;
    }
    struct gpu_type *types = calloc(h->ndefs ? h->ndefs : 1, sizeof(*types));
    if (!types) {
        return;
    }
    for (size_t g = 0; g < h->ngpus; g++) {
        const struct inv_gpu *G = &h->gpus[g];
        size_t vfs, free_vfs;
        report_gpu_vf_counts(h, g, &vfs, &free_vfs);
        char hosts[512];
        rules_describe_residents(h, g, NULL, hosts, sizeof(hosts));
        fprintf(
            out, "%s%s  %s, %u MiB, vendor %04x, driver %s\n", g || nnv ? "\n" : "", G->bdf,
            report_gpu_model(h, g), G->fb_mib, G->vendor, G->driver[0] ? G->driver : "-"
        );
        if (vfs) {
            fprintf(out, "  SR-IOV: %zu of %zu VFs free (one vGPU per VF)\n", free_vfs, vfs);
        }
        fprintf(out, "  hosts: %s\n", hosts);
        size_t n = gpu_types(cfg, h, g, types, h->ndefs);
        qsort(types, n, sizeof(*types), cmp_gpu_type);
        fprintf(
            out, "  %-12s %-22s %-6s %11s %4s %9s  %s\n", "TYPE", "NAME", "SERIES", "FRAMEBUFFER",
            "MAX", "AVAILABLE", "FITS NOW"
        );
        for (size_t k = 0; k < n; k++) {
            const struct inv_typedef *d = types[k].def;
            char fb[16] = "-", max[16] = "-", avail[24] = "?";
            if (d->info.fb_mib) {
                snprintf(fb, sizeof(fb), "%u MiB", d->info.fb_mib);
            }
            if (d->info.max_instance) {
                snprintf(max, sizeof(max), "%u", d->info.max_instance);
            }
            if (types[k].readable) {
                snprintf(avail, sizeof(avail), "%ld", types[k].available);
            }
            const char *fits = types[k].fits         ? "yes"
                               : !types[k].policy_ok ? "no (policy)"
                                                     : "no (driver: none available)";
            fprintf(
                out, "  %-12s %-22s %-6c %11s %4s %9s  %s%s\n", d->id, d->name[0] ? d->name : "-",
                series_str(d), fb, max, avail, fits, d->info.mig ? " [MIG-backed]" : ""
            );
        }
    }
    free(types);
    fprintf(out, "\npolicy: %s (change it in /etc/pve/vgpu-hook.json)\n", policy_name(cfg->policy));
}

/* ---------- status ---------- */

static void
lock_text(const struct pvh_config *cfg, const struct host *h, size_t g, char *buf, size_t size) {
    const struct inv_typedef *first = NULL;
    unsigned used = 0;
    for (size_t m = 0; m < h->nmdevs; m++) {
        const struct inv_mdev *md = &h->mdevs[m];
        if (md->parent == NO_INDEX || h->parents[md->parent].gpu != g) {
            continue;
        }
        const struct inv_typedef *d = inv_gpu_typedef(h, g, md->type_id);
        if (d && !d->info.mig) {
            first = first ? first : d;
            used += d->info.fb_mib;
        }
    }
    if (!first) {
        snprintf(buf, size, "free");
        return;
    }
    switch (cfg->policy) {
    case POLICY_EQUAL_SIZE: {
        char group[16] = "";
        group[0] = series_str(first);
        for (size_t i = 0; i < cfg->nseries_groups; i++) {
            const char *grp = cfg->series_groups[i];
            if (first->info.series && strchr(grp, first->info.series)) {
                for (size_t k = 0; grp[k]; k++) { /* "QC" reads "Q/C" */
                    group[2 * k] = grp[k];
                    group[2 * k + 1] = grp[k + 1] ? '/' : '\0';
                }
            }
        }
        snprintf(buf, size, "locked to %u MiB, series %s", first->info.fb_mib, group);
        break;
    }
    case POLICY_HOMOGENEOUS:
        str_msg(buf, size, "locked to %s", first->name[0] ? first->name : first->id);
        break;
    case POLICY_MIXED_SIZE:
        snprintf(buf, size, "%u of %u MiB in use", used, h->gpus[g].fb_mib);
        break;
    case POLICY_NONE:
        snprintf(buf, size, "in use (policy none)");
        break;
    case POLICY_AUTO:
        /* the driver decides; say how the GPU behaves */
        if (rules_gpu_mode(h, g, NULL) == GPU_MODE_MIXED_SIZE) {
            snprintf(buf, size, "mixed-size mode, %u of %u MiB in use", used, h->gpus[g].fb_mib);
        } else {
            snprintf(buf, size, "equal-size mode, %u MiB vGPUs", first->info.fb_mib);
        }
        break;
    }
}

static const char *owner_state(const struct host_status *st, size_t m) {
    return leftover_state_name(leftover_of_mdev(&st->host.mdevs[m], 0));
}

/* Stale records as objects {vmid, code, message} (and, when cleanup acted on them, what it
 * removed as name_key: name_prefix and the VMID, and result). */
static json_object *stale_records_json(
    const struct vm_warnings *s, const char *result, const char *name_key, const char *name_prefix
) {
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < s->w.n; i++) {
        json_object *o = json_object_new_object();
        if (result) {
            char rec[64];
            snprintf(rec, sizeof(rec), "%s%lu", name_prefix, s->vmids[i]);
            json_object_object_add(o, name_key, jstr(rec));
        }
        json_object_object_add(o, "vmid", json_object_new_int64((int64_t)s->vmids[i]));
        json_object_object_add(o, "code", jstr(warn_code(&s->w, i)));
        json_object_object_add(o, "message", jstr(s->w.items[i]));
        if (result) {
            json_object_object_add(o, "result", jstr(result));
        }
        json_object_array_add(arr, o);
    }
    return arr;
}

/* Over 80 lines on purpose: one flat list of the JSON keys, in output order, reads better than
 * the same keys spread over helpers. */
static void status_json(FILE *out, const struct host_status *st) {
    const struct host *h = &st->host;
    json_object *root = json_object_new_object();
    json_object_object_add(root, "node", jstr(st->node));
    json_object_object_add(root, "policy", jstr(policy_name(st->cfg.policy)));
    json_object *gpus = json_object_new_array();
    for (size_t g = 0; g < h->ngpus; g++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "pci", jstr(h->gpus[g].bdf));
        json_object_object_add(o, "model", jstr(report_gpu_model(h, g)));
        json_object_object_add(o, "framebuffer_mib", json_object_new_int64(h->gpus[g].fb_mib));
        gpu_mode_json(o, &st->cfg, h, g);
        size_t vfs, free_vfs;
        report_gpu_vf_counts(h, g, &vfs, &free_vfs);
        json_object_object_add(o, "kind", jstr(vfs ? "sriov-mdev" : "mdev"));
        json_object_object_add(o, "vfs", vfs ? json_object_new_int64((int64_t)vfs) : NULL);
        json_object_object_add(
            o, "vfs_free", vfs ? json_object_new_int64((int64_t)free_vfs) : NULL
        );
        json_object *list = json_object_new_array();
        for (size_t m = 0; m < h->nmdevs; m++) {
            const struct inv_mdev *md = &h->mdevs[m];
            if (md->parent == NO_INDEX || h->parents[md->parent].gpu != g) {
                continue;
            }
            const struct inv_typedef *d = inv_gpu_typedef(h, g, md->type_id);
            json_object *mo = json_object_new_object();
            json_object_object_add(mo, "uuid", jstr(md->uuid));
            json_object_object_add(mo, "parent", jstr(md->parent_bdf));
            json_object_object_add(mo, "type", jstr(md->type_id));
            json_object_object_add(mo, "name", jstr(d ? d->name : ""));
            json_object_object_add(
                mo, "vmid", md->owned ? json_object_new_int64((int64_t)md->vmid) : NULL
            );
            json_object_object_add(mo, "state", jstr(owner_state(st, m)));
            const struct vm_settings *vs = md->owned ? config_vm(&st->cfg, md->vmid) : NULL;
            if (vs && !tuning_empty(&vs->tuning)) {
                json_object_object_add(mo, "tuning", tuning_json_of(&vs->tuning));
            }
            json_object_array_add(list, mo);
        }
        json_object_object_add(o, "mdevs", list);
        json_object_array_add(gpus, o);
    }
    json_object_object_add(root, "gpus", gpus);
    json_object *vend = json_object_new_array();
    for (size_t g = 0; g < st->nnvidia; g++) {
        json_object_array_add(vend, vendor_gpu_json(&st->nvidia[g]));
    }
    json_object_object_add(root, "vendor_interface_gpus", vend);
    json_object *miss = json_object_new_array();
    for (size_t i = 0; i < st->nmissing; i++) {
        json_object *mo = json_object_new_object();
        json_object_object_add(mo, "vmid", json_object_new_int64((int64_t)st->missing[i].vmid));
        json_object_object_add(mo, "index", json_object_new_int64(st->missing[i].index));
        json_object_object_add(mo, "uuid", jstr(st->missing[i].uuid));
        json_object_object_add(mo, "type", jstr(st->missing[i].type));
        json_object_array_add(miss, mo);
    }
    json_object_object_add(root, "running_without_vgpu", miss);
    json_object *hooks = json_object_new_array();
    for (size_t i = 0; i < st->hookscripts.w.n; i++) {
        json_object *ho = json_object_new_object();
        json_object_object_add(
            ho, "vmid", json_object_new_int64((int64_t)st->hookscripts.vmids[i])
        );
        json_object_object_add(ho, "code", jstr(warn_code(&st->hookscripts.w, i)));
        json_object_object_add(ho, "message", jstr(st->hookscripts.w.items[i]));
        json_object_array_add(hooks, ho);
    }
    json_object_object_add(root, "hookscript_problems", hooks);
    json_object_object_add(root, "stale_records", stale_records_json(&st->stale, NULL, NULL, NULL));
    json_object *warn = json_object_new_array();
    for (size_t i = 0; i < h->warnings.n; i++) {
        json_object_array_add(warn, jstr(h->warnings.items[i]));
    }
    json_object_object_add(root, "warnings", warn);
    add_settings_error(root, st->settings_bad, &st->settings);
    report_print_json(out, root);
}

/* One GPU of the status view: its state, an occupancy bar, its mdevs. Returns how many of them
 * are leftovers. */
static size_t status_gpu_text(FILE *out, const struct host_status *st, size_t g) {
    const struct host *h = &st->host;
    char lock[128];
    lock_text(&st->cfg, h, g, lock, sizeof(lock));
    size_t count = gpu_mdev_count(h, g), cap = 0, vfs, free_vfs, leftovers = 0;
    report_gpu_vf_counts(h, g, &vfs, &free_vfs);
    const struct inv_typedef *first = NULL;
    for (size_t m = 0; m < h->nmdevs && !first; m++) {
        if (h->mdevs[m].parent != NO_INDEX && h->parents[h->mdevs[m].parent].gpu == g) {
            first = inv_gpu_typedef(h, g, h->mdevs[m].type_id);
        }
    }
    cap = first && first->info.max_instance ? first->info.max_instance : (vfs ? vfs : count);
    if (vfs && cap > vfs) {
        cap = vfs;
    }
    fprintf(
        out, "%s%s  %s, %u MiB: %s\n", g || st->nnvidia ? "\n" : "", h->gpus[g].bdf,
        report_gpu_model(h, g), h->gpus[g].fb_mib, lock
    );
    if (count || cap) {
        char bar[64];
        size_t width = cap > 32 ? 32 : (cap ? cap : 1);
        size_t filled = cap ? (count * width + cap - 1) / cap : 0;
        for (size_t i = 0; i < width; i++) {
            bar[i] = i < filled ? '#' : '-';
        }
        bar[width] = '\0';
        fprintf(
            out, "  [%s] %zu/%zu %s\n", bar, count, cap,
            first ? (first->name[0] ? first->name : first->id) : ""
        );
    }
    if (vfs) {
        fprintf(out, "  SR-IOV: %zu of %zu VFs free\n", free_vfs, vfs);
    }
    for (size_t m = 0; m < h->nmdevs; m++) {
        const struct inv_mdev *md = &h->mdevs[m];
        if (md->parent == NO_INDEX || h->parents[md->parent].gpu != g) {
            continue;
        }
        const struct inv_typedef *d = inv_gpu_typedef(h, g, md->type_id);
        char owner[32] = "-";
        if (md->owned) {
            snprintf(owner, sizeof(owner), "VM %lu", md->vmid);
        }
        leftovers += leftover_of_mdev(md, 0) == LEFTOVER_STALE;
        bool on_vf = strcmp(md->parent_bdf, h->gpus[g].bdf) != 0;
        fprintf(
            out, "  %s  %-11s %-16s %-12s %s%s%s\n", md->uuid, md->type_id,
            d && d->name[0] ? d->name : "-", owner, owner_state(st, m), on_vf ? " on " : "",
            on_vf ? md->parent_bdf : ""
        );
        const struct vm_settings *vs = md->owned ? config_vm(&st->cfg, md->vmid) : NULL;
        if (vs && !tuning_empty(&vs->tuning)) {
            tuning_text(out, &vs->tuning, "      tuning: ");
        }
    }
    return leftovers;
}

void report_status(FILE *out, const struct host_status *st, bool json) {
    if (json) {
        status_json(out, st);
        return;
    }
    const struct host *h = &st->host;
    size_t leftovers = 0;
    for (size_t g = 0; g < st->nnvidia; g++) {
        print_nvidia_gpu(out, &st->nvidia[g], g > 0);
    }
    if (h->ngpus == 0 && st->nnvidia == 0) {
        fprintf(out, "No mediated-device GPU on this host.\n");
    }
    for (size_t g = 0; g < h->ngpus; g++) {
        leftovers += status_gpu_text(out, st, g);
    }
    for (size_t i = 0; i < h->warnings.n; i++) {
        fprintf(out, "\nwarning: %s", h->warnings.items[i]);
    }
    if (h->warnings.n) {
        fprintf(out, "\n");
    }
    if (leftovers) {
        fprintf(
            out,
            "\n%zu leftover mdev%s of stopped VMs: 'pve-vgpu-hook cleanup' removes them "
            "(the next start that needs the room does too).\n",
            leftovers, leftovers == 1 ? "" : "s"
        );
    }
    for (size_t i = 0; i < st->nmissing; i++) {
        if (i == 0) {
            fprintf(out, "\nRunning VMs without their vGPU:\n");
        }
        fprintf(
            out, "  VM %lu: index %u (%s) should be mdev %s, which does not exist\n",
            st->missing[i].vmid, st->missing[i].index, st->missing[i].type, st->missing[i].uuid
        );
    }
    for (size_t i = 0; i < st->hookscripts.w.n; i++) {
        if (i == 0) {
            fprintf(out, "\nvGPU VMs whose start will not run pve-vgpu-hook:\n");
        }
        _cleanup_free_ char *m = str_escape_ctl(
            st->hookscripts.w.items[i], strlen(st->hookscripts.w.items[i]), true
        ); /* the hookscript value comes from a VM config */
        fprintf(out, "  %s\n", m ? m : "(out of memory)");
    }
    for (size_t i = 0; i < st->stale.w.n; i++) {
        if (i == 0) {
            fprintf(out, "\nStale VM records in the settings (never applied):\n");
        }
        fprintf(out, "  %s\n", st->stale.w.items[i]);
    }
}

/* ---------- check ---------- */

const char *report_action_code(enum mdev_action a) {
    return a == ACT_REUSE     ? "reuse"
           : a == ACT_REPLACE ? "replace"
           : a == ACT_PROXMOX ? "proxmox-sets-type"
                              : "create";
}

static const char *action_name(enum mdev_action a) {
    return a == ACT_REUSE     ? "reuse"
           : a == ACT_REPLACE ? "replace"
           : a == ACT_PROXMOX ? "left to Proxmox (NVIDIA vendor interface)"
                              : "create";
}

static void print_indented(FILE *out, const char *text, const char *indent) {
    const char *p = text, *line;
    size_t len;
    while (str_next_line(&p, &line, &len)) {
        fprintf(out, "%s%.*s\n", indent, (int)len, line);
    }
}

/* The verdict of a plan: what check prints, and whether pre-start would start. */
struct check_verdict {
    bool refuse_once; /* args must gain -uuid first: this start fails, the next works */
    int status;       /* the exit status: 0 would start */
    const char *text;
    const char *code; /* the same, for programs */
};

static struct check_verdict check_verdict(int rc, const struct vm_plan *p) {
    struct check_verdict v = {.refuse_once = rc == 0 && plan_refuses_once(p)};
    /* pre-start refuses every start while the settings cannot be used */
    v.status = plan_would_start(rc, p) ? 0 : 1;
    v.text = rc < 0 || p->settings_bad ? "refused"
             : rc > 0                  ? "not a VM"
             : p->n == 0               ? "no vGPU"
             : v.refuse_once           ? "refused once: args needs -uuid"
                                       : "would start";
    v.code = rc < 0 || p->settings_bad ? "refused"
             : rc > 0                  ? "not-a-vm"
             : p->n == 0               ? "no-vgpu"
             : v.refuse_once           ? "refused-once"
                                       : "start";
    return v;
}

/* Managed mode on the vendor interface: the VFs Proxmox reads for this node from the VM's
 * mapping as pre-start leaves it, in the order it tries them (malloc'ed). */
static int vfmap_paths_of(const struct vm_plan *p, char (**paths)[16], size_t *n) {
    *paths = NULL;
    *n = 0;
    if (!p->vfmap_id || !p->vfmap_text) {
        return -ENOENT;
    }
    _cleanup_(sectioncfg_freep) struct sectioncfg cfg = {0};
    struct pvh_err e;
    int r = sectioncfg_parse(p->vfmap_text, false, &cfg);
    return r < 0 ? r : mapping_paths(&cfg, p->vfmap_id, p->node, paths, n, &e);
}

static json_object *check_items_json(int rc, const struct vm_plan *p) {
    json_object *items = json_object_new_array();
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        const struct planned_mdev *it = &p->items[i];
        const struct inv_type *t =
            it->parent == NO_INDEX ? NULL : inv_parent_type(&p->host, it->parent, it->type_id);
        json_object *io = json_object_new_object();
        json_object_object_add(io, "index", json_object_new_int64(it->index));
        json_object_object_add(io, "uuid", jstr(it->uuid));
        json_object_object_add(io, "type", jstr(it->type_id));
        json_object_object_add(io, "name", jstr(t ? inv_def(&p->host, t)->name : ""));
        json_object_object_add(
            io, "parent", jstr(it->parent == NO_INDEX ? it->vf : p->host.parents[it->parent].bdf)
        );
        json_object_object_add(io, "action", jstr(report_action_code(it->action)));
        json_object_array_add(items, io);
    }
    return items;
}

/* Each warning as {code, message}: programs tell them apart by the code. */
static void warnings_json(json_object *arr, const struct pvh_warnings *w) {
    for (size_t i = 0; i < w->n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "code", jstr(warn_code(w, i)));
        json_object_object_add(o, "message", jstr(w->items[i]));
        json_object_array_add(arr, o);
    }
}

static void check_json(
    FILE *out, unsigned long vmid, int rc, const struct vm_plan *p, const struct pvh_err *e,
    const struct check_verdict *v
) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "vmid", json_object_new_int64((int64_t)vmid));
    json_object_object_add(o, "would_start", json_object_new_boolean(v->status == 0));
    json_object_object_add(o, "verdict", jstr(v->code));
    json_object_object_add(o, "message", jstr(v->text));
    json_object_object_add(o, "mdevs", check_items_json(rc, p));
    json_object *rec = json_object_new_array();
    for (size_t m = 0; rc == 0 && p->reclaim && m < p->host.nmdevs; m++) {
        const struct inv_mdev *md = &p->host.mdevs[m];
        if (p->reclaim[m]) {
            json_object *lo = json_object_new_object();
            json_object_object_add(lo, "uuid", jstr(md->uuid));
            json_object_object_add(lo, "pci", jstr(md->parent_bdf));
            json_object_object_add(lo, "type", jstr(md->type_id));
            json_object_object_add(
                lo, "vmid", md->owned ? json_object_new_int64((int64_t)md->vmid) : NULL
            );
            json_object_array_add(rec, lo);
        }
    }
    json_object_object_add(o, "remove_leftovers", rec);
    if (rc == 0 && (p->tuning || p->unlock_change)) {
        static const struct vm_tuning none = {0};
        json_object *t = tuning_json_of(p->tuning ? p->tuning : &none);
        json_object_object_add(t, "vgpu_params", p->params ? jstr(p->params) : NULL);
        json_object_object_add(t, "unlock_file_change", json_object_new_boolean(p->unlock_change));
        json_object_object_add(o, "tuning", t);
    }
    char(*paths)[16] = NULL;
    size_t npaths = 0;
    if (rc == 0 && vfmap_paths_of(p, &paths, &npaths) == 0) {
        json_object *m = json_object_new_object();
        json_object *vfs = json_object_new_array();
        for (size_t i = 0; i < npaths; i++) {
            json_object_array_add(vfs, jstr(paths[i]));
        }
        json_object_object_add(m, "id", jstr(p->vfmap_id));
        json_object_object_add(m, "node", jstr(p->node));
        json_object_object_add(m, "vfs", vfs);
        json_object_object_add(m, "change", json_object_new_boolean(p->vfmap_changed));
        json_object_object_add(o, "mapping", m);
    }
    free(paths);
    if (rc == 0 && (p->args_change || p->want_uuid[0])) {
        json_object *a = json_object_new_object();
        json_object_object_add(a, "change", json_object_new_boolean(p->args_change));
        json_object_object_add(a, "uuid", jstr(p->want_uuid));
        json_object_object_add(a, "new_args", p->args_change ? jstr(p->new_args) : NULL);
        json_object_object_add(a, "reason", jstr(p->uuid_reason));
        json_object_object_add(o, "args", a);
    }
    if (rc < 0 || p->settings_bad) {
        const struct pvh_err *why = rc < 0 ? e : &p->settings.err;
        json_object *err = json_object_new_object();
        json_object_object_add(err, "code", jstr(why->reason ? why->reason : "refused"));
        json_object_object_add(err, "message", jstr(why->msg));
        json_object_object_add(err, "hint", jstr(why->hint));
        json_object_object_add(o, "error", err);
    }
    add_settings_error(o, p->settings_bad, &p->settings);
    json_object *warn = json_object_new_array();
    warnings_json(warn, &p->host.warnings);
    warnings_json(warn, &p->warnings);
    json_object_object_add(o, "warnings", warn);
    report_print_json(out, o);
}

/* The plan of a VM that would start: leftovers to remove, each vGPU, and args. */
static void check_plan_text(FILE *out, const struct vm_plan *p) {
    for (size_t m = 0; m < p->host.nmdevs; m++) {
        if (p->reclaim[m]) {
            const struct inv_mdev *md = &p->host.mdevs[m];
            fprintf(
                out, "  remove leftover %s (VM %lu, %s on %s)\n", md->uuid, md->vmid, md->type_id,
                md->parent_bdf
            );
        }
    }
    for (size_t i = 0; i < p->n; i++) {
        const struct planned_mdev *it = &p->items[i];
        if (it->parent == NO_INDEX) {
            fprintf(
                out, "  index %u: %s on %s: %s\n", it->index, it->type_id, it->vf,
                action_name(it->action)
            );
            continue;
        }
        const struct inv_type *t = inv_parent_type(&p->host, it->parent, it->type_id);
        const struct inv_typedef *d = t ? inv_def(&p->host, t) : NULL;
        fprintf(
            out, "  index %u: %s %s (%s%s%s) on %s\n", it->index, action_name(it->action), it->uuid,
            it->type_id, d && d->name[0] ? ", " : "", d ? d->name : "",
            p->host.parents[it->parent].bdf
        );
    }
    if (p->tuning) {
        tuning_text(out, p->tuning, "  tuning: ");
        if (p->tuning->nunlock) {
            fprintf(
                out, "  tuning: [vm.%lu] in %s (%s)\n", p->vmid,
                p->unlock_path ? p->unlock_path : UNLOCK_OVERRIDE_TOML,
                p->unlock_change ? "pre-start writes it" : "as it is now"
            );
        }
    } else if (p->unlock_change) {
        fprintf(out, "  tuning: pre-start removes [vm.%lu] from %s\n", p->vmid, p->unlock_path);
    }
    char(*paths)[16] = NULL;
    size_t npaths = 0;
    if (vfmap_paths_of(p, &paths, &npaths) == 0) {
        fprintf(out, "  mapping %s on node %s:", p->vfmap_id, p->node);
        for (size_t i = 0; i < npaths; i++) {
            fprintf(out, " %s", paths[i]);
        }
        fprintf(
            out, " (tried in this order; %s)\n",
            p->vfmap_changed ? "pre-start writes it" : "as it is now"
        );
    }
    free(paths);
    if (p->args_change) {
        fprintf(
            out, "  args: pre-start would set 'args: %s' (%s)%s\n", p->new_args, p->uuid_reason,
            p->migrating ? "; not during a migration" : ""
        );
    } else if (p->want_uuid[0]) {
        fprintf(out, "  args: already has -uuid %s\n", p->want_uuid);
    } else if (p->uuid_reason[0]) {
        fprintf(out, "  args: no change needed (%s)\n", p->uuid_reason);
    }
}

int report_check(
    FILE *out, unsigned long vmid, int rc, const struct vm_plan *p, const struct pvh_err *e,
    bool json
) {
    struct check_verdict v = check_verdict(rc, p);
    if (json) {
        check_json(out, vmid, rc, p, e, &v);
    } else if (p->settings_bad) {
        /* the reason, then the rest of the plan as it would be with the defaults */
        fprintf(out, "VM %lu: would NOT start\n", vmid);
        print_indented(out, p->settings.err.msg, "  ");
        fprintf(out, "  what to do: %s\n", p->settings.err.hint);
        if (rc < 0) {
            fprintf(out, "  and with the default settings:\n");
            print_indented(out, e->msg, "    ");
        } else if (rc == 0 && p->n) {
            fprintf(out, "  with the default settings pre-start would:\n");
            check_plan_text(out, p);
        }
    } else if (rc > 0) {
        fprintf(out, "VM %lu: not a VM (container); the hook does nothing\n", vmid);
    } else if (rc < 0) {
        fprintf(out, "VM %lu: would NOT start\n", vmid);
        print_indented(out, e->msg, "  ");
        if (e->hint[0]) {
            fprintf(out, "  what to do: %s\n", e->hint);
        }
    } else if (p->n == 0) {
        fprintf(out, "VM %lu: no vGPU in the VM config; the hook does nothing\n", vmid);
    } else {
        fprintf(
            out, "VM %lu: %s\n", vmid,
            v.refuse_once ? "would NOT start this time (args must gain -uuid first)" : "would start"
        );
        check_plan_text(out, p);
    }
    return v.status;
}

/* ---------- check --all ---------- */

static void boot_order_text(const struct boot_result *b, char *buf, size_t size) {
    if (b->has_order) {
        snprintf(buf, size, "order=%ld", b->order);
    } else {
        snprintf(buf, size, "no order");
    }
}

static json_object *boot_vm_json(const struct boot_result *b) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "vmid", json_object_new_int64((int64_t)b->vmid));
    json_object_object_add(o, "order", b->has_order ? json_object_new_int64(b->order) : NULL);
    json_object_object_add(o, "would_start", json_object_new_boolean(b->would_start));
    json_object *devs = json_object_new_array();
    for (size_t i = 0; i < b->ndevs; i++) {
        const struct boot_device *d = &b->devs[i];
        json_object *dj = json_object_new_object();
        json_object_object_add(dj, "index", json_object_new_int64(d->index));
        json_object_object_add(dj, "type", jstr(d->type));
        json_object_object_add(dj, "name", d->name[0] ? jstr(d->name) : NULL);
        json_object_object_add(dj, "pci", jstr(d->pci));
        json_object_object_add(dj, "gpu", jstr(d->gpu));
        json_object_object_add(dj, "vmid", json_object_new_int64((int64_t)b->vmid));
        json_object_array_add(devs, dj);
    }
    json_object_object_add(o, "devices", devs);
    if (!b->would_start) {
        json_object *err = json_object_new_object();
        json_object_object_add(err, "code", jstr(b->err.reason ? b->err.reason : "refused"));
        json_object_object_add(err, "message", jstr(b->err.msg));
        json_object_object_add(err, "hint", jstr(b->err.hint));
        json_object_object_add(o, "error", err);
    }
    json_object *warn = json_object_new_array();
    warnings_json(warn, &b->warnings);
    json_object_object_add(o, "warnings", warn);
    return o;
}

static void check_all_json(FILE *out, const struct boot_check *c) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "node", jstr(c->node));
    json_object *vms = json_object_new_array();
    for (size_t i = 0; i < c->n; i++) {
        json_object_array_add(vms, boot_vm_json(&c->vms[i]));
    }
    json_object_object_add(o, "vms", vms);
    json_object *ha = json_object_new_array();
    for (size_t i = 0; i < c->nha; i++) {
        json_object_array_add(ha, json_object_new_int64((int64_t)c->ha[i]));
    }
    json_object_object_add(o, "ha_managed", ha);
    json_object_object_add(o, "all_start", json_object_new_boolean(c->all_start));
    json_object *warn = json_object_new_array();
    warnings_json(warn, &c->warnings);
    json_object_object_add(o, "warnings", warn);
    report_print_json(out, o);
}

/* One VM's verdict: where each vGPU goes, or why not. */
static void boot_vm_text(FILE *out, const struct boot_result *b) {
    char order[32];
    boot_order_text(b, order, sizeof(order));
    fprintf(
        out, "VM %lu (%s): %s\n", b->vmid, order, b->would_start ? "would start" : "would NOT start"
    );
    for (size_t i = 0; i < b->ndevs; i++) {
        const struct boot_device *d = &b->devs[i];
        fprintf(
            out, "  index %u: %s%s%s%s on %s", d->index, d->type, d->name[0] ? " (" : "", d->name,
            d->name[0] ? ")" : "", d->pci
        );
        fprintf(out, strcmp(d->pci, d->gpu) ? " (GPU %s)\n" : "\n", d->gpu);
    }
    if (!b->would_start) {
        print_indented(out, b->err.msg, "  ");
        if (b->err.hint[0]) {
            fprintf(out, "  what to do: %s\n", b->err.hint);
        }
    }
}

int report_check_all(FILE *out, const struct boot_check *c, bool json) {
    if (json) {
        check_all_json(out, c);
        return !c->all_start;
    }
    fprintf(
        out, "Node %s after a reboot: its onboot vGPU VMs in boot order, on an empty host\n",
        c->node
    );
    for (size_t i = 0; i < c->n; i++) {
        boot_vm_text(out, &c->vms[i]);
    }
    for (size_t i = 0; i < c->nha; i++) {
        fprintf(out, "VM %lu: HA-managed: HA starts it, not onboot; not simulated\n", c->ha[i]);
    }
    if (c->n == 0) {
        fprintf(out, "No onboot VM of this node has a vGPU.\n");
    } else if (c->all_start) {
        fprintf(out, "All %zu onboot vGPU VMs would start.\n", c->n);
    } else {
        fprintf(out, "Would NOT start after a reboot:\n");
        for (size_t i = 0; i < c->n; i++) {
            const struct boot_result *b = &c->vms[i];
            const char *nl = strchr(b->err.msg, '\n');
            if (!b->would_start) {
                fprintf(
                    out, "  VM %lu: %.*s\n", b->vmid,
                    nl ? (int)(nl - b->err.msg) : (int)strlen(b->err.msg), b->err.msg
                );
            }
        }
    }
    return !c->all_start;
}

/* ---------- cleanup ---------- */

static const char *const verdict_names[] = {
    [CLEAN_REMOVED] = "removed",   [CLEAN_WOULD_REMOVE] = "would remove",
    [CLEAN_KEPT_RUNNING] = "kept", [CLEAN_KEPT_BUSY] = "kept",
    [CLEAN_NOT_OURS] = "ignored",  [CLEAN_FAILED] = "FAILED to remove",
};
/* A VF's type is reset, not removed: one wording for the text and the JSON. */
static const char *const vf_verdict_names[] = {
    [CLEAN_REMOVED] = "reset",     [CLEAN_WOULD_REMOVE] = "would reset",
    [CLEAN_KEPT_RUNNING] = "kept", [CLEAN_KEPT_BUSY] = "kept",
    [CLEAN_NOT_OURS] = "ignored",  [CLEAN_FAILED] = "FAILED to reset",
};

static const char *cleanup_verdict(const struct cleanup_item *it) {
    return (it->is_vf ? vf_verdict_names : verdict_names)[it->verdict];
}

/* One item's line, as the text prints it and the JSON's message holds it. */
static void cleanup_text(const struct cleanup_item *it, char *buf, size_t size) {
    static const char *const why[] = {
        [CLEAN_KEPT_RUNNING] = ": its VM is running",
        [CLEAN_KEPT_BUSY] = ": Proxmox holds its VM's lock (starting or stopping)",
        [CLEAN_NOT_OURS] = ": not a VMID UUID, not ours to remove",
        [CLEAN_FAILED] = ": ",
    };
    const char *because = why[it->verdict] ? why[it->verdict] : "";
    const char *err = it->verdict == CLEAN_FAILED ? strerror(-it->err) : "";
    if (it->is_vf) {
        char vm[32] = "";
        if (it->vf.vmid) {
            snprintf(vm, sizeof(vm), ", VM %lu", it->vf.vmid);
        }
        str_msg(
            buf, size, "%s the type of VF %s (nvidia-%u%s)%s%s", cleanup_verdict(it), it->vf.bdf,
            it->vf.type, vm, because, err
        );
        return;
    }
    char owner[32] = "";
    if (it->mdev.owned) {
        snprintf(owner, sizeof(owner), "VM %lu, ", it->mdev.vmid);
    }
    str_msg(
        buf, size, "%s %s (%s%s on %s)%s%s", cleanup_verdict(it), it->mdev.uuid, owner,
        it->mdev.type_id, it->mdev.parent_bdf, because, err
    );
}

static bool cleanup_acts(const struct cleanup_item *it) {
    return it->verdict == CLEAN_REMOVED || it->verdict == CLEAN_WOULD_REMOVE;
}

/* An item as an object: what it is, the action, the result as a code, the line as message. */
static json_object *cleanup_item_json(const struct cleanup_item *it) {
    static const char *const results[] = {
        [CLEAN_REMOVED] = "removed",           [CLEAN_WOULD_REMOVE] = "would-remove",
        [CLEAN_KEPT_RUNNING] = "kept-running", [CLEAN_KEPT_BUSY] = "kept-busy",
        [CLEAN_NOT_OURS] = "ignored",          [CLEAN_FAILED] = "failed",
    };
    static const char *const vf_results[] = {
        [CLEAN_REMOVED] = "reset",
        [CLEAN_WOULD_REMOVE] = "would-reset",
        [CLEAN_KEPT_RUNNING] = "kept-running",
        [CLEAN_KEPT_BUSY] = "kept-busy",
        [CLEAN_NOT_OURS] = "ignored",
        [CLEAN_FAILED] = "failed",
    };
    json_object *o = json_object_new_object();
    char type[32], line[512];
    unsigned long vmid = it->is_vf ? it->vf.vmid : it->mdev.owned ? it->mdev.vmid : 0;
    snprintf(type, sizeof(type), "nvidia-%u", it->vf.type);
    json_object_object_add(o, "kind", jstr(it->is_vf ? "vf-type" : "mdev"));
    json_object_object_add(o, "uuid", it->is_vf ? NULL : jstr(it->mdev.uuid));
    json_object_object_add(o, "pci", jstr(it->is_vf ? it->vf.bdf : it->mdev.parent_bdf));
    json_object_object_add(o, "type", jstr(it->is_vf ? type : it->mdev.type_id));
    json_object_object_add(o, "vmid", vmid ? json_object_new_int64((int64_t)vmid) : NULL);
    json_object_object_add(o, "action", jstr(it->is_vf ? "reset-type" : "remove"));
    json_object_object_add(o, "result", jstr((it->is_vf ? vf_results : results)[it->verdict]));
    cleanup_text(it, line, sizeof(line));
    json_object_object_add(o, "message", jstr(line));
    json_object_object_add(
        o, "error", it->verdict == CLEAN_FAILED ? jstr(strerror(-it->err)) : NULL
    );
    return o;
}

static void cleanup_json(
    FILE *out, const struct cleanup_item *items, size_t n, const struct vm_warnings *records,
    const struct vm_warnings *mappings, bool dry_run
) {
    json_object *root = json_object_new_object();
    json_object *arr = json_object_new_array();
    size_t acted = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        json_object_array_add(arr, cleanup_item_json(&items[i]));
        acted += cleanup_acts(&items[i]);
        failed += items[i].verdict == CLEAN_FAILED;
    }
    json_object_object_add(root, "dry_run", json_object_new_boolean(dry_run));
    json_object_object_add(root, "items", arr);
    /* stale records of deleted or replaced VMs in the settings (never applied) */
    const char *result = dry_run ? "would-remove" : "removed";
    json_object_object_add(root, "records", stale_records_json(records, result, "record", "vms."));
    /* stale mappings of ours in pci.cfg (no VM needs them) */
    json_object_object_add(
        root, "mappings", stale_records_json(mappings, result, "mapping", "vgpu-hook-")
    );
    json_object_object_add(
        root, dry_run ? "would_act" : "acted", json_object_new_int64((int64_t)acted)
    );
    json_object_object_add(root, "failed", json_object_new_int64((int64_t)failed));
    report_print_json(out, root);
}

void report_cleanup(
    FILE *out, const struct cleanup_item *items, size_t n, const struct vm_warnings *records,
    const struct vm_warnings *mappings, bool dry_run, bool json
) {
    const char *rec_result = dry_run ? "would remove" : "removed";
    if (json) {
        cleanup_json(out, items, n, records, mappings, dry_run);
        return;
    }
    size_t acted = 0, vf_acted = 0;
    for (size_t i = 0; i < n; i++) {
        char line[512];
        cleanup_text(&items[i], line, sizeof(line));
        fprintf(out, "%s\n", line);
        acted += cleanup_acts(&items[i]);
        vf_acted += items[i].is_vf && cleanup_acts(&items[i]);
    }
    for (size_t i = 0; i < records->w.n; i++) {
        fprintf(
            out, "%s the stale record vms.%lu (%s): %s\n", rec_result, records->vmids[i],
            warn_code(&records->w, i), records->w.items[i]
        );
    }
    for (size_t i = 0; i < mappings->w.n; i++) {
        fprintf(
            out, "%s the stale mapping " VFMAP_ID_FMT " (%s): %s\n", rec_result, mappings->vmids[i],
            warn_code(&mappings->w, i), mappings->w.items[i]
        );
    }
    if (acted == 0) {
        fprintf(out, "no leftover mdevs%s\n", n ? " to remove" : "");
    } else if (dry_run && vf_acted) {
        fprintf(
            out, "%zu leftover mdev%s and %zu VF type%s; run without --dry-run to remove them\n",
            acted - vf_acted, acted - vf_acted == 1 ? "" : "s", vf_acted, vf_acted == 1 ? "" : "s"
        );
    } else if (dry_run) {
        fprintf(
            out, "%zu leftover mdev%s; run without --dry-run to remove\n", acted,
            acted == 1 ? "" : "s"
        );
    }
}

/* ---------- doctor ---------- */

int report_doctor(FILE *out, const struct readiness *r, bool json) {
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "node", jstr(r->node));
        json_object_object_add(o, "ready", json_object_new_boolean(r->nproblems == 0));
        json_object_object_add(o, "kernel", jstr(r->kernel));
        json_object_object_add(o, "nvidia_gpus", json_object_new_int64((int64_t)r->ngpus));
        json_object_object_add(o, "vgpu_types", json_object_new_int64((int64_t)r->ntypes));
        json_object_object_add(o, "iommu", json_object_new_boolean(r->iommu));
        json_object_object_add(o, "nvidia_vgpu_mgr", json_object_new_boolean(r->vgpu_mgr));
        json_object *list = json_object_new_array();
        for (size_t i = 0; i < r->nproblems; i++) {
            json_object *p = json_object_new_object();
            json_object_object_add(p, "check", jstr(r->problems[i].check));
            json_object_object_add(p, "subject", jstr(r->problems[i].subject));
            json_object_object_add(p, "problem", jstr(r->problems[i].what));
            json_object_object_add(p, "fix", jstr(r->problems[i].fix));
            json_object_array_add(list, p);
        }
        json_object_object_add(o, "problems", list);
        add_settings_error(o, r->settings_bad, &r->settings);
        report_print_json(out, o);
        return r->nproblems ? 1 : 0;
    }
    for (size_t i = 0; i < r->nproblems; i++) {
        fprintf(out, "problem: %s\n  fix: %s\n", r->problems[i].what, r->problems[i].fix);
    }
    if (r->nproblems) {
        fprintf(
            out, "node %s is not ready for vGPUs: %zu problem%s\n", r->node, r->nproblems,
            r->nproblems == 1 ? "" : "s"
        );
        return 1;
    }
    fprintf(
        out,
        "node %s is ready: %zu NVIDIA GPU%s offering %zu vGPU type%s, IOMMU on%s, settings "
        "readable\n",
        r->node, r->ngpus, r->ngpus == 1 ? "" : "s", r->ntypes, r->ntypes == 1 ? "" : "s",
        r->ngpus ? ", nvidia-vgpu-mgr running" : ""
    );
    return 0;
}

/* ---------- config check ---------- */

int report_config_check(
    FILE *out, const struct pvh_config *cfg, bool exists, const struct config_error *ce,
    const char *file, bool json
) {
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "valid", json_object_new_boolean(!ce));
        json_object_object_add(o, "file", jstr(file));
        json_object_object_add(o, "vms", ce ? NULL : json_object_new_int64((int64_t)cfg->nvms));
        json_object_object_add(o, "error", ce ? settings_error_json(ce) : NULL);
        report_print_json(out, o);
    } else if (!exists) {
        fprintf(out, "%s does not exist: valid, every default applies\n", file);
    } else {
        fprintf(
            out, "%s is valid: %zu VM record%s, policy %s\n", file, cfg->nvms,
            cfg->nvms == 1 ? "" : "s", policy_name(cfg->policy)
        );
    }
    return ce ? 1 : 0;
}

/* ---------- tune ---------- */

static json_object *tuning_json_of(const struct vm_tuning *t) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "params", config_tuning_json(t->params, t->nparams, false));
    json_object_object_add(o, "unlock", config_tuning_json(t->unlock, t->nunlock, true));
    return o;
}

/* "frame_rate_limiter=0,enable_uvm=1" and "frl_enabled = 0, framebuffer = "896MiB"". */
static void tuning_text(FILE *out, const struct vm_tuning *t, const char *indent) {
    _cleanup_free_ char *p = tune_params_string(t), *u = tune_unlock_string(t);
    if (p && *p) {
        fprintf(out, "%svgpu_params: %s\n", indent, p);
    }
    if (u && *u) {
        fprintf(out, "%svgpu_unlock: %s\n", indent, u);
    }
}

void report_tune(FILE *out, unsigned long vmid, const struct vm_tuning *t) {
    static const struct vm_tuning none = {0};
    t = t ? t : &none;
    if (tuning_empty(t)) {
        fprintf(out, "VM %lu: no tuning (set some with --param K=V or --unlock K=V)\n", vmid);
        return;
    }
    fprintf(out, "VM %lu (applied at each start):\n", vmid);
    tuning_text(out, t, "  ");
}

/* ---------- attach, detach, tune, setup ---------- */

static void edit_json(
    FILE *out, const struct edit_result *res, const struct vm_tuning *tuning, int rc,
    const struct pvh_err *e
) {
    json_object *o = json_object_new_object();
    if (res->vmid) {
        json_object_object_add(o, "vmid", json_object_new_int64((int64_t)res->vmid));
    }
    json_object_object_add(o, "dry_run", json_object_new_boolean(res->dry_run));
    json_object_object_add(o, "result", jstr(rc < 0 ? "refused" : res->result));
    json_object_object_add(o, "pending", json_object_new_boolean(rc == 0 && res->pending));
    json_object_object_add(o, "message", jstr(rc < 0 ? e->msg : res->message));
    json_object *changes = json_object_new_array();
    for (size_t i = 0; rc == 0 && i < res->nchanges; i++) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "file", jstr(res->changes[i].file));
        json_object_object_add(c, "action", jstr(edit_action_code(res->changes[i].action)));
        json_object_array_add(changes, c);
    }
    json_object_object_add(o, "changes", changes);
    json_object *details = json_object_new_array();
    for (size_t i = 0; rc == 0 && i < res->details.n; i++) {
        json_object_array_add(details, jstr(res->details.items[i]));
    }
    json_object_object_add(o, "details", details);
    if (tuning && rc == 0) {
        json_object_object_add(o, "tuning", tuning_json_of(tuning));
    }
    json_object *warn = json_object_new_array();
    warnings_json(warn, &res->warnings);
    json_object_object_add(o, "warnings", warn);
    if (rc < 0) {
        json_object *err = json_object_new_object();
        json_object_object_add(err, "code", jstr(e->reason ? e->reason : "refused"));
        json_object_object_add(err, "message", jstr(e->msg));
        json_object_object_add(err, "hint", jstr(e->hint));
        json_object_object_add(o, "error", err);
    }
    report_print_json(out, o);
}

int report_edit(
    FILE *out, const struct edit_result *res, const struct vm_tuning *tuning, int rc,
    const struct pvh_err *e, bool json
) {
    if (json) {
        edit_json(out, res, tuning, rc, e);
    }
    if (rc < 0) {
        log_err(e);
        return 1;
    }
    if (json) {
        return 0;
    }
    if (res->dry_run) {
        fprintf(out, "Dry run: nothing was written.%s\n", res->nchanges ? " It would:" : "");
        for (size_t i = 0; i < res->nchanges; i++) {
            fprintf(
                out, "  %s %s\n", edit_action_code(res->changes[i].action), res->changes[i].file
            );
        }
    }
    for (size_t i = 0; i < res->details.n; i++) {
        fprintf(out, "%s\n", res->details.items[i]);
    }
    if (res->message[0]) {
        fprintf(out, "%s\n", res->message);
    }
    return 0;
}

/* ---------- diagnose ---------- */

/* usec since the epoch: text in local time to the second (as journalctl shows it), JSON in UTC
 * RFC 3339 to the microsecond. */
static void diag_time(long long usec, bool json, char *buf, size_t size) {
    time_t t = (time_t)(usec / 1000000);
    struct tm tm;
    char s[32] = "?";
    if (json ? gmtime_r(&t, &tm) != NULL : localtime_r(&t, &tm) != NULL) {
        strftime(s, sizeof(s), json ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
    }
    if (json) {
        snprintf(buf, size, "%s.%06lldZ", s, usec % 1000000);
    } else {
        snprintf(buf, size, "%s", s);
    }
}

static json_object *diag_time_json(long long usec) {
    char buf[48];
    diag_time(usec, true, buf, sizeof(buf));
    return usec < 0 ? NULL : jstr(buf);
}

static json_object *diag_findings_json(const struct diag_finding *f, size_t n, bool with_cause) {
    json_object *list = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object(), *ev = json_object_new_array();
        json_object_object_add(o, "code", jstr(f[i].code));
        json_object_object_add(o, "message", jstr(f[i].message));
        if (with_cause) {
            json_object_object_add(o, "cause", jstr(f[i].cause));
        }
        json_object_object_add(o, "fix", jstr(f[i].fix));
        for (size_t k = 0; k < f[i].nev; k++) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "source", jstr(f[i].ev[k].source));
            json_object_object_add(e, "time", diag_time_json(f[i].ev[k].usec));
            json_object_object_add(e, "line", jstr(f[i].ev[k].line));
            json_object_array_add(ev, e);
        }
        json_object_object_add(o, "evidence", ev);
        json_object_object_add(o, "more_evidence", json_object_new_int64((int64_t)f[i].more));
        json_object_array_add(list, o);
    }
    return list;
}

static void diag_json(FILE *out, const struct diagnosis *d) {
    json_object *o = json_object_new_object(), *task = json_object_new_object();
    json_object_object_add(o, "vmid", json_object_new_int64((int64_t)d->vmid));
    json_object_object_add(task, "upid", jstr(d->upid));
    json_object_object_add(task, "start", diag_time_json(d->start * 1000000LL));
    json_object_object_add(task, "end", d->ended ? diag_time_json(d->end * 1000000LL) : NULL);
    json_object_object_add(task, "status", d->status ? jstr(d->status) : NULL);
    json_object_object_add(task, "log_read", json_object_new_boolean(d->log_read));
    json_object_object_add(o, "task", task);
    json_object_object_add(o, "outcome", jstr(diag_outcome_name(d->result.outcome)));
    json_object_object_add(
        o, "causes", diag_findings_json(d->result.causes, d->result.ncauses, true)
    );
    json_object_object_add(
        o, "warnings", diag_findings_json(d->result.warnings, d->result.nwarnings, false)
    );
    json_object *j = json_object_new_object();
    json_object_object_add(j, "read", json_object_new_boolean(d->journal_read));
    json_object_object_add(j, "entries", json_object_new_int64((int64_t)d->njournal));
    json_object_object_add(j, "capped", json_object_new_boolean(d->journal_capped));
    json_object *err = NULL;
    if (!d->journal_read) {
        err = json_object_new_object();
        json_object_object_add(err, "message", jstr(d->journal_err.msg));
    }
    json_object_object_add(j, "error", err);
    json_object_object_add(o, "journal", j);
    report_print_json(out, o);
}

static void
diag_text_findings(FILE *out, const char *what, const struct diag_finding *f, size_t n) {
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "\n%s: %s [%s]\n", what, f[i].message, f[i].code);
        if (*f[i].cause) {
            fprintf(out, "  why: %s\n", f[i].cause);
        }
        fprintf(out, "  fix: %s\n  evidence:\n", f[i].fix);
        for (size_t k = 0; k < f[i].nev; k++) {
            char t[48] = "task log";
            if (f[i].ev[k].usec >= 0) {
                diag_time(f[i].ev[k].usec, false, t, sizeof(t));
            }
            fprintf(out, "    %s %s: %s\n", t, f[i].ev[k].source, f[i].ev[k].line);
        }
        if (f[i].more) {
            fprintf(out, "    (and %zu more lines)\n", f[i].more);
        }
    }
}

void report_diagnose(FILE *out, const struct diagnosis *d, bool json) {
    if (json) {
        diag_json(out, d);
        return;
    }
    static const char *const said[] = {
        [DIAG_OK] = "succeeded", [DIAG_FAILED] = "failed", [DIAG_UNKNOWN] = "has not ended yet"};
    char start[48], end[48];
    diag_time(d->start * 1000000LL, false, start, sizeof(start));
    diag_time(d->end * 1000000LL, false, end, sizeof(end));
    fprintf(
        out, "VM %lu: the last start %s\n  task: %s\n  started %s", d->vmid,
        said[d->result.outcome], d->upid, start
    );
    if (d->ended) {
        fprintf(out, ", ended %s: %s", end, d->status ? d->status : "status unknown");
    }
    fputc('\n', out);
    if (d->result.outcome == DIAG_UNKNOWN) {
        fprintf(out, "  nothing failed so far\n");
    }
    diag_text_findings(out, "cause", d->result.causes, d->result.ncauses);
    diag_text_findings(out, "warning", d->result.warnings, d->result.nwarnings);
}
