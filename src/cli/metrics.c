/*
 * metrics: status' host model and doctor's verdict in Prometheus' text exposition format
 * (version 0.0.4), for node-exporter's textfile collector. Every family has HELP and TYPE and
 * its samples together; label values from sysfs and configs are escaped.
 */
#include "report.h"

#include "cleanup.h"
#include "leftover.h"
#include "rules.h"
#include "strutil.h"

#include <stdlib.h>
#include <string.h>

#define M "pve_vgpu_"

/* A label value: bytes a terminal should not see become \xHH text first (as everywhere we
 * print sysfs and config bytes, and so the file stays UTF-8), then the format's own escapes. */
static void label_value(FILE *out, const char *s) {
    _cleanup_free_ char *esc = str_escape_ctl(s, strlen(s), true);
    for (const char *p = esc ? esc : "?"; *p; p++) {
        if (*p == '\\' || *p == '"') {
            fprintf(out, "\\%c", *p);
        } else if (*p == '\n') {
            fputs("\\n", out);
        } else {
            fputc(*p, out);
        }
    }
}

static void family(FILE *out, const char *name, const char *help) {
    fprintf(out, "# HELP " M "%s %s\n# TYPE " M "%s gauge\n", name, help, name);
}

/* One sample; labels: name, value pairs, NULL-terminated. */
static void sample(FILE *out, const char *name, const char *const *labels, double v) {
    fprintf(out, M "%s", name);
    for (size_t i = 0; labels && labels[i]; i += 2) {
        fprintf(out, "%s%s=\"", i ? "," : "{", labels[i]);
        label_value(out, labels[i + 1]);
        fputc('"', out);
    }
    fprintf(out, "%s %.15g\n", labels && labels[0] ? "}" : "", v);
}

static const char *mdev_kind(const struct host *h, size_t g) {
    size_t vfs, free_vfs;
    report_gpu_vf_counts(h, g, &vfs, &free_vfs);
    return vfs ? "sriov-mdev" : "mdev";
}

static const char *mdev_mode(const struct host *h, size_t g) {
    static const char *const names[] = {
        [GPU_MODE_IDLE] = "idle",
        [GPU_MODE_EQUAL_SIZE] = "equal-size",
        [GPU_MODE_MIXED_SIZE] = "mixed-size",
    };
    return names[rules_gpu_mode(h, g, NULL)];
}

/* The GPU model a vendor-interface GPU's type names tell ("H200X"), "GPU" when none does. */
static const char *iface_model(const struct nvidia_gpu *nv, char *buf, size_t size) {
    for (size_t i = 0; i < nv->free_vf.ncreatable; i++) {
        struct vgpu_type_info info;
        vgpu_type_describe(nv->free_vf.creatable[i].name, "", &info);
        if (info.gpu[0]) {
            snprintf(buf, size, "%s", info.gpu);
            return buf;
        }
    }
    return "GPU";
}

/* A vendor-interface type's name as the driver offers it now ("" when no free VF offers it). */
static const char *iface_type_name(const struct nvidia_gpu *nv, unsigned id) {
    for (size_t i = 0; i < nv->free_vf.ncreatable; i++) {
        if (nv->free_vf.creatable[i].id == id) {
            return nv->free_vf.creatable[i].name;
        }
    }
    return "";
}

static bool mdev_on_gpu(const struct host *h, size_t m, size_t g) {
    return h->mdevs[m].parent != NO_INDEX && h->parents[h->mdevs[m].parent].gpu == g;
}

static void gpu_families(FILE *out, const struct host_status *st) {
    const struct host *h = &st->host;
    family(
        out, "gpu_info",
        "A GPU for vGPUs: its model, kind (mdev, sriov-mdev, vendor-interface) "
        "and mode (idle, equal-size, mixed-size; full, mig-only)."
    );
    for (size_t g = 0; g < h->ngpus; g++) {
        const char *l[] = {"gpu",  h->gpus[g].bdf,  "model", report_gpu_model(h, g),
                           "kind", mdev_kind(h, g), "mode",  mdev_mode(h, g),
                           NULL};
        sample(out, "gpu_info", l, 1);
    }
    for (size_t g = 0; g < st->nnvidia; g++) {
        char model[48];
        unsigned mib;
        const struct nvidia_gpu *nv = &st->nvidia[g];
        const char *l[] = {"gpu",   nv->bdf,
                           "model", iface_model(nv, model, sizeof(model)),
                           "kind",  "vendor-interface",
                           "mode",  report_iface_mode(nv, &mib),
                           NULL};
        sample(out, "gpu_info", l, 1);
    }
    family(out, "gpu_framebuffer_bytes", "A GPU's framebuffer for vGPUs (its largest type's).");
    for (size_t g = 0; g < h->ngpus; g++) {
        const char *l[] = {"gpu", h->gpus[g].bdf, NULL};
        sample(out, "gpu_framebuffer_bytes", l, (double)h->gpus[g].fb_mib * 1024 * 1024);
    }
    family(out, "gpu_vfs", "SR-IOV virtual functions of a GPU (one vGPU each).");
    for (size_t g = 0; g < h->ngpus; g++) {
        size_t vfs, free_vfs;
        report_gpu_vf_counts(h, g, &vfs, &free_vfs);
        const char *l[] = {"gpu", h->gpus[g].bdf, NULL};
        if (vfs) {
            sample(out, "gpu_vfs", l, (double)vfs);
        }
    }
    for (size_t g = 0; g < st->nnvidia; g++) {
        const char *l[] = {"gpu", st->nvidia[g].bdf, NULL};
        sample(out, "gpu_vfs", l, (double)st->nvidia[g].nvfs);
    }
}

/* Instances used by type, and available (mdev GPUs). */
static void instance_families(FILE *out, const struct host_status *st) {
    const struct host *h = &st->host;
    family(out, "instances_used", "vGPUs of a type that exist on a GPU.");
    for (size_t d = 0; d < h->ndefs; d++) {
        const struct inv_typedef *def = &h->defs[d];
        size_t used = 0;
        for (size_t m = 0; m < h->nmdevs; m++) {
            used += mdev_on_gpu(h, m, def->gpu) && !strcmp(h->mdevs[m].type_id, def->id);
        }
        const char *l[] = {"gpu", h->gpus[def->gpu].bdf, "type", def->id, "type_name", def->name,
                           NULL};
        sample(out, "instances_used", l, (double)used);
    }
    for (size_t g = 0; g < st->nnvidia; g++) {
        const struct nvidia_gpu *nv = &st->nvidia[g];
        for (size_t i = 0; i < nv->nused; i++) {
            unsigned type = nv->used[i].type;
            bool first = true; /* each type once, at its first VF */
            size_t used = 0;
            for (size_t j = 0; j < nv->nused; j++) {
                first &= j >= i || nv->used[j].type != type;
                used += nv->used[j].type == type;
            }
            char id[32];
            snprintf(id, sizeof(id), "nvidia-%u", type);
            const char *l[] = {"gpu", nv->bdf, "type", id, "type_name", iface_type_name(nv, type),
                               NULL};
            if (first) {
                sample(out, "instances_used", l, (double)used);
            }
        }
    }
    family(
        out, "instances_available",
        "vGPUs of a type the driver can still create on a GPU (available_instances; on SR-IOV "
        "at most what the GPU has room for, not one per free VF)."
    );
    for (size_t d = 0; d < h->ndefs; d++) {
        bool readable = false;
        for (size_t p = 0; p < h->nparents; p++) {
            for (size_t t = 0; h->parents[p].gpu == h->defs[d].gpu && t < h->parents[p].ntypes;
                 t++) {
                readable |=
                    h->parents[p].types[t].def == d && h->parents[p].types[t].available >= 0;
            }
        }
        const char *l[] = {
            "gpu", h->gpus[h->defs[d].gpu].bdf, "type", h->defs[d].id, "type_name", h->defs[d].name,
            NULL};
        if (readable) {
            long avail = rules_gpu_available(h, h->defs[d].gpu, &h->defs[d], NULL);
            sample(out, "instances_available", l, (double)avail);
        }
    }
}

/* NVIDIA's vendor interface counts no instances: a free VF offers the types it can take now. */
static void creatable_family(FILE *out, const struct host_status *st) {
    family(
        out, "type_creatable",
        "1 for a type a free VF of a GPU on NVIDIA's vendor interface can take now."
    );
    for (size_t g = 0; g < st->nnvidia; g++) {
        const struct nvidia_gpu *nv = &st->nvidia[g];
        for (size_t i = 0; nv->free_bdf[0] && i < nv->free_vf.ncreatable; i++) {
            char id[32];
            snprintf(id, sizeof(id), "nvidia-%u", nv->free_vf.creatable[i].id);
            const char *l[] = {
                "gpu", nv->bdf, "type", id, "type_name", nv->free_vf.creatable[i].name, NULL};
            sample(out, "type_creatable", l, 1);
        }
    }
}

/* Each VM's vGPU with its state; returns the leftovers (as status counts them). */
static size_t vm_family(FILE *out, const struct host_status *st) {
    const struct host *h = &st->host;
    size_t leftovers = 0;
    family(
        out, "vm_info",
        "A VM's vGPU: its GPU, type, mdev UUID (none on NVIDIA's vendor "
        "interface) and state (running, busy, leftover)."
    );
    for (size_t m = 0; m < h->nmdevs; m++) {
        const struct inv_mdev *md = &h->mdevs[m];
        if (!md->owned || md->parent == NO_INDEX) {
            continue;
        }
        size_t g = h->parents[md->parent].gpu;
        const struct inv_typedef *d = inv_gpu_typedef(h, g, md->type_id);
        char vmid[24];
        snprintf(vmid, sizeof(vmid), "%lu", md->vmid);
        enum leftover_verdict lv = leftover_of_mdev(md, 0);
        const char *l[] = {"vmid", vmid,        "gpu",       h->gpus[g].bdf,
                           "type", md->type_id, "type_name", d ? d->name : "",
                           "uuid", md->uuid,    "state",     leftover_state_name(lv),
                           NULL};
        sample(out, "vm_info", l, 1);
        leftovers += lv == LEFTOVER_STALE;
    }
    for (size_t g = 0; g < st->nnvidia; g++) {
        const struct nvidia_gpu *nv = &st->nvidia[g];
        for (size_t i = 0; nv->users_known && i < nv->nused; i++) {
            const struct vf_holder *v = &nv->used[i];
            enum leftover_verdict lv = leftover_verdict(true, v->state, v->vmid, 0);
            leftovers += lv == LEFTOVER_STALE;
            char vmid[24], id[32];
            snprintf(vmid, sizeof(vmid), "%lu", v->vmid);
            snprintf(id, sizeof(id), "nvidia-%u", v->type);
            const char *l[] = {"vmid", vmid, "gpu",       nv->bdf,
                               "type", id,   "type_name", iface_type_name(nv, v->type),
                               "uuid", "",   "state",     leftover_state_name(lv),
                               NULL};
            if (v->vmid) {
                sample(out, "vm_info", l, 1);
            }
        }
    }
    return leftovers;
}

static void readiness_families(FILE *out, const struct readiness *rd) {
    family(out, "host_ready", "1 when 'pve-vgpu-hook doctor' finds no problem on this host.");
    sample(out, "host_ready", NULL, rd->nproblems == 0);
    family(
        out, "host_problems", "Problems 'pve-vgpu-hook doctor' finds (it names each, with its fix)."
    );
    sample(out, "host_problems", NULL, (double)rd->nproblems);
}

/* Every type's available_instances could be read. */
static bool all_readable(const struct host *h) {
    for (size_t p = 0; p < h->nparents; p++) {
        for (size_t t = 0; t < h->parents[p].ntypes; t++) {
            if (h->parents[p].types[t].available < 0) {
                return false;
            }
        }
    }
    return true;
}

bool report_metrics(
    FILE *out, const struct host_status *st, const struct readiness *rd, bool up, double now
) {
    up = up && st && all_readable(&st->host);
    family(
        out, "scrape_success",
        "1 when every part of the host was read; 0 when some could not be "
        "(pve-vgpu-hook metrics says which on stderr)."
    );
    sample(out, "scrape_success", NULL, up);
    family(out, "scrape_timestamp_seconds", "When these metrics were taken (Unix time).");
    sample(out, "scrape_timestamp_seconds", NULL, now);
    if (rd) {
        readiness_families(out, rd);
    }
    if (!st) {
        return up;
    }
    gpu_families(out, st);
    instance_families(out, st);
    creatable_family(out, st);
    size_t leftovers = vm_family(out, st);
    family(
        out, "leftovers",
        "vGPUs (mdevs, or VF types on NVIDIA's vendor interface) of VMs "
        "that are not running: 'pve-vgpu-hook cleanup' removes them."
    );
    sample(out, "leftovers", NULL, (double)leftovers);
    family(out, "vms_without_vgpu", "Running VMs whose configured vGPU does not exist.");
    sample(out, "vms_without_vgpu", NULL, (double)st->nmissing);
    return up;
}
