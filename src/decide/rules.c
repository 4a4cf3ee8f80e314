#include "rules.h"

#include "strutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool same_group(const struct pvh_config *cfg, char a, char b) {
    if (a == b) {
        return true;
    }
    for (size_t i = 0; i < cfg->nseries_groups; i++) {
        if (a && b && strchr(cfg->series_groups[i], a) && strchr(cfg->series_groups[i], b)) {
            return true;
        }
    }
    return false;
}

static bool resident(const struct host *h, size_t gpu, size_t m, const bool *ignore) {
    const struct inv_mdev *md = &h->mdevs[m];
    return md->parent != NO_INDEX && h->parents[md->parent].gpu == gpu && !(ignore && ignore[m]);
}

static const char *label(const struct inv_typedef *d) {
    return d->name[0] ? d->name : d->id;
}

/* The equal-size policy: a resident (d, NULL when the GPU does not list its type) of another
 * size or of a series outside want's group refuses want; why says so. */
static bool equal_size_refuses(
    const struct pvh_config *cfg, const struct inv_typedef *d, const char *lbl,
    const struct inv_typedef *want, char *why, size_t whysize
) {
    if (!d) {
        /* A type the GPU does not list: its size cannot be compared. */
        snprintf(
            why, whysize,
            "the equal-size policy (your settings) cannot be checked: it hosts %s, a type this "
            "GPU does not list",
            lbl
        );
        return true;
    }
    if (d->info.fb_mib != want->info.fb_mib) {
        snprintf(
            why, whysize,
            "the equal-size policy (your settings) locks it to %u MiB vGPUs (it hosts %s), and "
            "%s has %u MiB",
            d->info.fb_mib, lbl, label(want), want->info.fb_mib
        );
        return true;
    }
    if (!same_group(cfg, d->info.series, want->info.series)) {
        snprintf(
            why, whysize,
            "series %c and %c may not share a GPU (it hosts %s; series_groups in your settings "
            "allow mixing only within a group)",
            d->info.series ? d->info.series : '?', want->info.series ? want->info.series : '?', lbl
        );
        return true;
    }
    return false;
}

/* One switch holds every policy side by side, so that they can be compared at a glance. */
bool rules_type_fits(
    const struct pvh_config *cfg, const struct host *h, size_t gpu, const struct inv_typedef *want,
    const bool *ignore, char *why, size_t whysize
) {
    if (why && whysize) {
        why[0] = '\0';
    }
    /* auto: the driver's available_instances is the whole rule; we are never stricter. */
    if (cfg->policy == POLICY_AUTO || cfg->policy == POLICY_NONE || want->info.mig) {
        return true;
    }
    unsigned used_mib = 0;
    for (size_t m = 0; m < h->nmdevs; m++) {
        if (!resident(h, gpu, m, ignore)) {
            continue;
        }
        const struct inv_typedef *d = inv_gpu_typedef(h, gpu, h->mdevs[m].type_id);
        if (d && d->info.mig) {
            continue;
        }
        unsigned fb = d ? d->info.fb_mib : 0;
        const char *lbl = d ? label(d) : h->mdevs[m].type_id;
        switch (cfg->policy) {
        case POLICY_HOMOGENEOUS:
            if (!d || strcmp(d->id, want->id) != 0) {
                snprintf(
                    why, whysize,
                    "the homogeneous policy (your settings) allows only one type per GPU and it "
                    "hosts %s",
                    lbl
                );
                return false;
            }
            break;
        case POLICY_EQUAL_SIZE:
            if (equal_size_refuses(cfg, d, lbl, want, why, whysize)) {
                return false;
            }
            break;
        case POLICY_MIXED_SIZE:
            used_mib += fb;
            break;
        case POLICY_AUTO:
        case POLICY_NONE:
            break;
        }
    }
    if (cfg->policy == POLICY_MIXED_SIZE && used_mib + want->info.fb_mib > h->gpus[gpu].fb_mib) {
        snprintf(
            why, whysize,
            "the mixed-size policy (your settings) allows %u MiB on this GPU; %u MiB are in use "
            "and %s needs %u MiB",
            h->gpus[gpu].fb_mib, used_mib, label(want), want->info.fb_mib
        );
        return false;
    }
    return true;
}

/* Can parent p take the type `query` now: the driver offers an instance and the policy allows it.
 */
static bool parent_takes(
    const struct pvh_config *cfg, const struct host *h, size_t p, const char *query,
    const bool *ignore, const struct inv_type **type
) {
    const struct inv_type *t = inv_parent_type(h, p, query);
    if (!t || t->available <= 0 ||
        !rules_type_fits(cfg, h, h->parents[p].gpu, inv_def(h, t), ignore, NULL, 0)) {
        return false;
    }
    if (type) {
        *type = t;
    }
    return true;
}

size_t rules_pick_parent(
    const struct pvh_config *cfg, const struct host *h, size_t gpu, const char *query,
    const bool *ignore, const struct inv_type **type
) {
    for (size_t p = 0; p < h->nparents; p++) {
        if (h->parents[p].gpu == gpu && parent_takes(cfg, h, p, query, ignore, type)) {
            return p;
        }
    }
    return NO_INDEX;
}

void rules_describe_residents(
    const struct host *h, size_t gpu, const bool *ignore, char *buf, size_t size
) {
    buf[0] = '\0';
    bool *done = calloc(h->nmdevs ? h->nmdevs : 1, sizeof(bool));
    if (!done) {
        return;
    }
    for (size_t m = 0; m < h->nmdevs; m++) {
        if (done[m] || !resident(h, gpu, m, ignore)) {
            continue;
        }
        const char *tid = h->mdevs[m].type_id;
        const struct inv_typedef *d = inv_gpu_typedef(h, gpu, tid);
        size_t count = 0;
        for (size_t k = m; k < h->nmdevs; k++) {
            if (!done[k] && resident(h, gpu, k, ignore) && !strcmp(h->mdevs[k].type_id, tid)) {
                count++;
            }
        }
        str_append(buf, size, "%s%zu x %s", buf[0] ? "; " : "", count, d ? label(d) : tid);
        if (d && d->info.fb_mib) {
            str_append(buf, size, " (%u MiB)", d->info.fb_mib);
        }
        const char *sep = " for ";
        for (size_t k = m; k < h->nmdevs; k++) {
            if (done[k] || !resident(h, gpu, k, ignore) || strcmp(h->mdevs[k].type_id, tid)) {
                continue;
            }
            done[k] = true;
            if (h->mdevs[k].owned) {
                str_append(buf, size, "%sVM %lu", sep, h->mdevs[k].vmid);
                sep = ", ";
            } else {
                str_append(buf, size, "%s%s", sep, h->mdevs[k].uuid);
                sep = ", ";
            }
        }
    }
    free(done);
    if (!buf[0]) {
        snprintf(buf, size, "nothing");
    }
}

void rules_types_fitting(
    const struct pvh_config *cfg, const struct host *h, size_t gpu, size_t parent,
    const bool *ignore, char *buf, size_t size
) {
    /* A VF holds one vGPU: what fits there is what that VF can take, not its GPU's other VFs. */
    bool one_vf = parent != NO_INDEX && h->parents[parent].is_vf;
    buf[0] = '\0';
    for (size_t i = 0; i < h->ndefs; i++) {
        const struct inv_typedef *d = &h->defs[i];
        if (d->gpu != gpu ||
            (one_vf ? !parent_takes(cfg, h, parent, d->id, ignore, NULL)
                    : rules_pick_parent(cfg, h, gpu, d->id, ignore, NULL) == NO_INDEX)) {
            continue;
        }
        str_append(
            buf, size, "%s%s", buf[0] ? ", " : "", d->info.named ? d->info.short_name : d->id
        );
    }
    if (!buf[0]) {
        snprintf(buf, size, "none");
    }
}

void rules_other_gpus(
    const struct pvh_config *cfg, const struct host *h, const char *query, char *buf, size_t size
) {
    buf[0] = '\0';
    for (size_t g = 0; g < h->ngpus; g++) {
        size_t p = rules_pick_parent(cfg, h, g, query, NULL, NULL);
        if (p == NO_INDEX) {
            continue;
        }
        /* on SR-IOV the vGPU goes on a free VF: the physical function itself takes none */
        if (h->parents[p].is_vf) {
            str_append(
                buf, size, "%s%s (a free VF of %s)", buf[0] ? ", " : "", h->parents[p].bdf,
                h->gpus[g].bdf
            );
        } else {
            str_append(buf, size, "%s%s", buf[0] ? ", " : "", h->gpus[g].bdf);
        }
    }
    if (!buf[0]) {
        snprintf(buf, size, "none");
    }
}

long rules_gpu_available(
    const struct host *h, size_t gpu, const struct inv_typedef *want, const bool *ignore
) {
    long sum = 0;
    bool vfs = false;
    for (size_t p = 0; p < h->nparents; p++) {
        if (h->parents[p].gpu != gpu) {
            continue;
        }
        const struct inv_type *t = inv_parent_type(h, p, want->id);
        sum += t && t->available > 0 ? t->available : 0;
        vfs |= h->parents[p].is_vf;
    }
    if (!vfs || want->info.mig || !want->info.fb_mib || !want->info.max_instance) {
        return sum;
    }
    /* Each free VF says 1, though they share one GPU: what is left of the GPU is the limit. */
    unsigned used_mib = 0, count = 0;
    for (size_t m = 0; m < h->nmdevs; m++) {
        const struct inv_typedef *d = inv_gpu_typedef(h, gpu, h->mdevs[m].type_id);
        if (resident(h, gpu, m, ignore) && !(d && d->info.mig)) {
            used_mib += d ? d->info.fb_mib : 0;
            count++;
        }
    }
    long left = want->info.max_instance > count ? (long)(want->info.max_instance - count) : 0;
    long room = h->gpus[gpu].fb_mib > used_mib
                    ? (long)((h->gpus[gpu].fb_mib - used_mib) / want->info.fb_mib)
                    : 0;
    left = left < room ? left : room;
    return sum < left ? sum : left;
}

struct cand_key {
    size_t gpu;
    int same_size; /* hosts vGPUs of the wanted size already */
    size_t count;  /* vGPUs resident */
    const char *bdf;
    int pack;
};

static int cmp_cand(const void *a, const void *b) {
    const struct cand_key *x = a, *y = b;
    if (x->pack) {
        /* pack: GPUs already used by this size first, fuller first; keep empty GPUs free */
        if (x->same_size != y->same_size) {
            return y->same_size - x->same_size;
        }
        if (x->count != y->count) {
            return x->count > y->count ? -1 : 1;
        }
    } else if (x->count != y->count) {
        return x->count < y->count ? -1 : 1; /* spread: emptiest first */
    }
    return strcmp(x->bdf, y->bdf);
}

void rules_order_candidates(
    const struct pvh_config *cfg, const struct host *h, size_t *gpus, size_t n,
    const struct inv_typedef *want
) {
    struct cand_key *keys = calloc(n ? n : 1, sizeof(*keys));
    if (!keys) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        keys[i] = (struct cand_key
        ){.gpu = gpus[i], .bdf = h->gpus[gpus[i]].bdf, .pack = cfg->placement == PLACEMENT_PACK};
        for (size_t m = 0; m < h->nmdevs; m++) {
            if (!resident(h, gpus[i], m, NULL)) {
                continue;
            }
            keys[i].count++;
            const struct inv_typedef *d = inv_gpu_typedef(h, gpus[i], h->mdevs[m].type_id);
            if (d && want && d->info.fb_mib == want->info.fb_mib) {
                keys[i].same_size = 1;
            }
        }
    }
    qsort(keys, n, sizeof(*keys), cmp_cand);
    for (size_t i = 0; i < n; i++) {
        gpus[i] = keys[i].gpu;
    }
    free(keys);
}

enum gpu_mode rules_gpu_mode(const struct host *h, size_t gpu, const bool *ignore) {
    unsigned hosted = 0;
    bool any = false;
    for (size_t m = 0; m < h->nmdevs; m++) {
        if (!resident(h, gpu, m, ignore)) {
            continue;
        }
        const struct inv_typedef *d = inv_gpu_typedef(h, gpu, h->mdevs[m].type_id);
        if (d && !d->info.mig && d->info.fb_mib) {
            if (any && hosted != d->info.fb_mib) {
                return GPU_MODE_MIXED_SIZE;
            }
            hosted = d->info.fb_mib;
            any = true;
        }
    }
    if (!any) {
        return GPU_MODE_IDLE;
    }
    /* A GPU that offers another size while it hosts vGPUs is in mixed-size mode. */
    for (size_t p = 0; p < h->nparents; p++) {
        const struct inv_parent *par = &h->parents[p];
        for (size_t t = 0; par->gpu == gpu && t < par->ntypes; t++) {
            const struct inv_typedef *d = inv_def(h, &par->types[t]);
            if (par->types[t].available > 0 && !d->info.mig && d->info.fb_mib &&
                d->info.fb_mib != hosted) {
                return GPU_MODE_MIXED_SIZE;
            }
        }
    }
    return GPU_MODE_EQUAL_SIZE;
}

unsigned rules_hosted_size(const struct host *h, size_t gpu, const bool *ignore) {
    for (size_t m = 0; m < h->nmdevs; m++) {
        const struct inv_typedef *d =
            resident(h, gpu, m, ignore) ? inv_gpu_typedef(h, gpu, h->mdevs[m].type_id) : NULL;
        if (d && !d->info.mig && d->info.fb_mib) {
            return d->info.fb_mib;
        }
    }
    return 0;
}
