#include "place.h"

#include "cleanup.h"
#include "leftover.h"
#include "rules.h"
#include "strutil.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void place_candidates_free(struct place_candidates *c) {
    for (size_t i = 0; c->iface && i < c->n; i++) {
        if (c->iface[i]) {
            nvidia_iface_free(c->iface[i]);
        }
        free(c->iface[i]);
    }
    free(c->iface);
    free(c->ids);
    memset(c, 0, sizeof(*c));
}

void placement_free(struct placement *pl) {
    free(pl->reclaim);
    pl->reclaim = NULL;
}

/* Working state of one placement run. */
struct try {
    struct placement *pl;
    bool *ignore;       /* per host.mdevs index: not counted by the rules (owned here) */
    size_t cap;         /* allocated length of ignore and pl->reclaim */
    bool allow_reclaim; /* second pass: removing leftovers of stopped VMs is allowed */
    char why[1024];     /* why the last candidate was refused */
};

/* Keep the per-mdev masks at least as long as the model's mdev list, which grows by one for
 * every planned device. */
static int grow_masks(struct try *t) {
    size_t want = t->pl->host->nmdevs + HOSTPCI_MAX;
    if (t->cap >= want) {
        return 0;
    }
    bool *ni = realloc(t->ignore, want * sizeof(bool));
    if (!ni) {
        return -ENOMEM;
    }
    t->ignore = ni;
    bool *nr = realloc(t->pl->reclaim, want * sizeof(bool));
    if (!nr) {
        return -ENOMEM;
    }
    t->pl->reclaim = nr;
    memset(ni + t->cap, 0, (want - t->cap) * sizeof(bool));
    memset(nr + t->cap, 0, (want - t->cap) * sizeof(bool));
    t->cap = want;
    return 0;
}

/* A leftover that may be removed: another VM's (by UUID) that is neither running nor busy (a
 * VM whose start is under way holds its Proxmox lock: its fresh mdev is not stale). */
static bool is_stale(const struct placement *pl, size_t m) {
    return leftover_of_mdev(&pl->host->mdevs[m], pl->vmid) == LEFTOVER_STALE;
}

/* Will removals free room on gpu: reclaimed leftovers, or this VM's own devices replaced? */
static bool gpu_has_removals(const struct try *t, size_t gpu) {
    const struct host *h = t->pl->host;
    for (size_t m = 0; m < h->nmdevs; m++) {
        const struct inv_mdev *md = &h->mdevs[m];
        if (md->parent != NO_INDEX && h->parents[md->parent].gpu == gpu &&
            (t->pl->reclaim[m] || (t->ignore[m] && md->owned && md->vmid == t->pl->vmid))) {
            return true;
        }
    }
    return false;
}

/* What the driver shows once a device of def exists on parent, so that the plan's next device
 * is checked as pre-start's create will be: one instance fewer of each type of that size on the
 * parent (an SR-IOV VF holds one vGPU: none left there); and while the GPU behaves in the
 * equal-size way, nothing of another size on any of its parents. */
static void
model_consumed(struct host *h, size_t parent, const struct inv_typedef *def, const bool *ignore) {
    size_t gpu = h->parents[parent].gpu;
    bool equal_size = !def->info.mig && rules_gpu_mode(h, gpu, ignore) != GPU_MODE_MIXED_SIZE;
    for (size_t q = 0; q < h->nparents; q++) {
        struct inv_parent *par = &h->parents[q];
        for (size_t k = 0; par->gpu == gpu && k < par->ntypes; k++) {
            struct inv_type *ty = &par->types[k];
            const struct inv_typedef *d = inv_def(h, ty);
            bool same_size = d->info.fb_mib == def->info.fb_mib && d->info.mig == def->info.mig;
            if (ty->available <= 0) {
                continue;
            }
            if (q == parent && (par->is_vf || same_size)) {
                ty->available = par->is_vf ? 0 : ty->available - 1;
            } else if (!same_size && equal_size && !d->info.mig) {
                ty->available = 0;
            }
        }
    }
}

/* Will the driver offer def on gpu once the ignored devices are gone? Sure when nothing else
 * remains on the GPU, or in equal-size mode when what remains has def's size (removing frees
 * its room); else we cannot tell, and say no. */
static bool offered_once_removed(
    const struct host *h, size_t gpu, const struct inv_typedef *def, const bool *ignore,
    const struct inv_type *type
) {
    if (type->available > 0) {
        return true;
    }
    enum gpu_mode mode = rules_gpu_mode(h, gpu, ignore);
    return mode == GPU_MODE_IDLE ||
           (mode == GPU_MODE_EQUAL_SIZE && rules_hosted_size(h, gpu, ignore) == def->info.fb_mib);
}

/* The device already exists with the right type on this parent: adopt it (so does Proxmox). */
static bool try_reuse(struct try *t, struct planned_mdev *it, size_t parent, const char *type_id) {
    struct host *h = t->pl->host;
    if (!it->existing.uuid[0] || strcmp(it->existing.parent_bdf, h->parents[parent].bdf) ||
        strcmp(it->existing.type_id, type_id)) {
        return false;
    }
    it->action = ACT_REUSE;
    it->parent = parent;
    snprintf(it->type_id, sizeof(it->type_id), "%s", type_id);
    size_t m = inv_find_mdev(h, it->uuid);
    if (m != NO_INDEX) {
        t->ignore[m] = false;
    }
    return true;
}

/* Second pass: would def fit, and would the driver offer it, without the leftovers of stopped
 * VMs on gpu? Then they are marked for removal; else nothing is. */
static bool
reclaim_for(struct try *t, size_t gpu, const struct inv_typedef *def, const struct inv_type *type) {
    struct placement *pl = t->pl;
    struct host *h = pl->host;
    bool any = false;
    for (size_t m = 0; m < h->nmdevs; m++) {
        const struct inv_mdev *md = &h->mdevs[m];
        if (md->parent != NO_INDEX && h->parents[md->parent].gpu == gpu && !t->ignore[m] &&
            is_stale(pl, m)) {
            t->ignore[m] = pl->reclaim[m] = any = true;
        }
    }
    bool helps = any && rules_type_fits(pl->cfg, h, gpu, def, t->ignore, NULL, 0) &&
                 offered_once_removed(h, gpu, def, t->ignore, type);
    for (size_t m = 0; any && !helps && m < h->nmdevs; m++) {
        if (pl->reclaim[m] && h->parents[h->mdevs[m].parent].gpu == gpu) {
            t->ignore[m] = pl->reclaim[m] = false;
        }
    }
    return helps;
}

/* Why the driver says no: what the GPU hosts, and in equal-size mode the size it takes. */
static void why_driver(
    struct try *t, size_t parent, const struct inv_typedef *def, const struct inv_type *type
) {
    const struct host *h = t->pl->host;
    size_t gpu = h->parents[parent].gpu;
    char hosts[512], fit[512], mode[256] = "";
    rules_describe_residents(h, gpu, t->ignore, hosts, sizeof(hosts));
    if (type->available_err) {
        str_msg(
            t->why, sizeof(t->why),
            "%s on %s: available_instances is unreadable (%s)\n  it hosts: %s", def->id,
            h->parents[parent].bdf, strerror(-type->available_err), hosts
        );
        return;
    }
    unsigned hosted = rules_hosted_size(h, gpu, t->ignore);
    if (hosted && hosted != def->info.fb_mib && !def->info.mig &&
        rules_gpu_mode(h, gpu, t->ignore) == GPU_MODE_EQUAL_SIZE) {
        str_msg(
            mode, sizeof(mode),
            "\n  the GPU is in equal-size mode: it takes only %u MiB vGPUs while it hosts one",
            hosted
        );
    }
    rules_types_fitting(t->pl->cfg, h, gpu, parent, t->ignore, fit, sizeof(fit));
    char vf[64] = "";
    if (h->parents[parent].is_vf) {
        str_msg(vf, sizeof(vf), " (a VF of %s: one vGPU per VF)", h->gpus[gpu].bdf);
    }
    str_msg(
        t->why, sizeof(t->why),
        "%s%s has no available instances of %s (the driver says no: available_instances is "
        "0)\n  %s: %s%s\n  types that fit there now: %s",
        h->parents[parent].bdf, vf, def->name[0] ? def->name : def->id,
        vf[0] ? "its GPU hosts" : "it hosts", hosts, mode, fit
    );
}

/* Why the admin's policy says no. */
static void why_policy(struct try *t, size_t gpu, const struct inv_typedef *def, const char *rule) {
    const struct host *h = t->pl->host;
    char hosts[512], fit[512];
    rules_describe_residents(h, gpu, t->ignore, hosts, sizeof(hosts));
    rules_types_fitting(t->pl->cfg, h, gpu, NO_INDEX, t->ignore, fit, sizeof(fit));
    str_msg(
        t->why, sizeof(t->why),
        "GPU %s cannot take %s: %s\n  it hosts: %s\n  types that fit there now: %s",
        h->gpus[gpu].bdf, def->name[0] ? def->name : def->id, rule, hosts, fit
    );
}

/* Model the planned device, so that the VM's next vGPU is checked against it. */
static int model_new_device(struct try *t, struct planned_mdev *it, size_t parent) {
    struct host *h = t->pl->host;
    if (it->action == ACT_REPLACE) {
        size_t m = inv_find_mdev(h, it->uuid);
        if (m != NO_INDEX) {
            h->mdevs[m].uuid[0] = '\0'; /* gone once replaced */
        }
    }
    if (GROW(h->mdevs, h->nmdevs, 1) < 0) {
        return -ENOMEM;
    }
    struct inv_mdev *md = &h->mdevs[h->nmdevs++];
    *md = (struct inv_mdev
    ){.parent = parent,
      .owned = true,
      .vmid = t->pl->vmid,
      .index = it->index,
      .state = VM_STOPPED};
    snprintf(md->uuid, sizeof(md->uuid), "%s", it->uuid);
    snprintf(md->parent_bdf, sizeof(md->parent_bdf), "%s", h->parents[parent].bdf);
    /* it->type_id is the sysfs id by now, which fits */
    int r = str_fmt(md->type_id, sizeof(md->type_id), "%s", it->type_id);
    return r < 0 ? r : grow_masks(t);
}

/* Try one candidate parent for an item. true when chosen. */
static bool try_parent(struct try *t, struct planned_mdev *it, size_t parent) {
    const struct placement *pl = t->pl;
    struct host *h = pl->host;
    const struct inv_type *type = inv_parent_type(h, parent, it->type_id);
    size_t gpu = h->parents[parent].gpu;
    if (!type) {
        snprintf(
            t->why, sizeof(t->why), "%s does not offer type %s", h->parents[parent].bdf, it->type_id
        );
        return false;
    }
    const struct inv_typedef *def = inv_def(h, type);
    if (try_reuse(t, it, parent, def->id)) {
        return true;
    }
    char rule[512];
    bool fits = rules_type_fits(pl->cfg, h, gpu, def, t->ignore, rule, sizeof(rule));
    bool driver_ok = type->available > 0;
    if ((!fits || !driver_ok) && pl->cfg->reclaim_stale && t->allow_reclaim &&
        reclaim_for(t, gpu, def, type)) {
        fits = driver_ok = true;
    }
    if (!fits) {
        why_policy(t, gpu, def, rule);
        return false;
    }
    if (!driver_ok && !gpu_has_removals(t, gpu)) {
        why_driver(t, parent, def, type);
        return false;
    }
    it->parent = parent;
    it->action = it->existing.uuid[0] ? ACT_REPLACE : ACT_CREATE;
    snprintf(it->type_id, sizeof(it->type_id), "%s", def->id); /* the sysfs id from now on */
    model_consumed(h, parent, def, t->ignore);
    if (model_new_device(t, it, parent) < 0) {
        snprintf(t->why, sizeof(t->why), "out of memory");
        return false;
    }
    return true;
}

/* A candidate without mdev_supported_types on NVIDIA's vendor interface: Proxmox sets the type
 * itself, and all we can check is that the type is creatable there now. */
static bool try_nvidia_iface(
    struct try *t, struct planned_mdev *it, const char *vf, const struct nvidia_iface *nv
) {
    unsigned long want = 0;
    if (!strncmp(it->type_id, "nvidia-", 7)) {
        char *end;
        want = strtoul(it->type_id + 7, &end, 10);
        want = *end ? 0 : want;
    }
    if (nv->used_by && nv->used_by != t->pl->vmid) {
        /* Proxmox skips a VF another VM's QEMU uses (mapping order): so do we */
        char who[32] = "a running QEMU";
        if (nv->used_by != ULONG_MAX) {
            snprintf(who, sizeof(who), "VM %lu", nv->used_by);
        }
        str_msg(
            t->why, sizeof(t->why), "%s (NVIDIA's vendor interface) is in use by %s (nvidia-%u)",
            vf, who, nv->current
        );
        return false;
    }
    bool ok = want && want == nv->current;
    char list[512] = "";
    for (size_t i = 0; i < nv->ncreatable; i++) {
        ok |= nv->creatable[i].id == want;
        str_append(
            list, sizeof(list), "%snvidia-%u (%s)", list[0] ? ", " : "", nv->creatable[i].id,
            nv->creatable[i].name
        );
    }
    if (!ok) {
        str_msg(
            t->why, sizeof(t->why),
            "%s (NVIDIA's vendor interface) cannot take %s now\n  creatable there now: %s", vf,
            it->type_id, list[0] ? list : "none"
        );
        return false;
    }
    it->action = ACT_PROXMOX;
    it->parent = NO_INDEX;
    snprintf(it->vf, sizeof(it->vf), "%s", vf);
    return true;
}

/* "GPU: reason" for a managed candidate that could not take it, details indented below. */
static void append_gpu_refusal(char *whys, size_t size, const char *gpu, const char *why) {
    str_append(whys, size, "\n  %s: ", gpu);
    for (const char *w = why; *w; w++) {
        str_append(whys, size, *w == '\n' ? "\n  " : "%c", *w);
    }
}

/* Managed mode: the candidate GPUs in placement order, each tried on its parents. */
static bool place_managed(struct try *t, struct planned_mdev *it, size_t *gpus, size_t n) {
    struct host *h = t->pl->host;
    const struct inv_typedef *want = NULL;
    for (size_t q = 0; q < h->nparents && !want; q++) {
        const struct inv_type *ty = inv_parent_type(h, q, it->type_id);
        want = ty ? inv_def(h, ty) : NULL;
    }
    rules_order_candidates(t->pl->cfg, h, gpus, n, want);
    char whys[2048] = "";
    bool placed = false;
    for (size_t c = 0; c < n && !placed; c++) {
        bool tried = false, any_type = false;
        for (size_t q = 0; q < h->nparents && !placed; q++) {
            const struct inv_type *ty =
                h->parents[q].gpu == gpus[c] ? inv_parent_type(h, q, it->type_id) : NULL;
            any_type |= ty != NULL;
            /* a VF without an instance: the next VF of the same GPU may have one */
            if (ty && (ty->available > 0 || !h->parents[q].is_vf || !tried)) {
                tried = true;
                placed = try_parent(t, it, q);
            }
        }
        if (!placed) {
            append_gpu_refusal(
                whys, sizeof(whys), h->gpus[gpus[c]].bdf,
                any_type ? t->why : "does not offer this type"
            );
        }
    }
    if (!placed && whys[0]) {
        str_msg(t->why, sizeof(t->why), "no candidate GPU can take it:%s", whys);
    }
    return placed;
}

/* The model's candidates of an item: parents (hostpci, in order) or GPUs (managed). *done
 * when a vendor-interface VF took it. */
static size_t item_candidates(
    struct try *t, struct planned_mdev *it, const struct place_candidates *cand, size_t *out,
    bool *done
) {
    const struct placement *pl = t->pl;
    const struct host *h = pl->host;
    size_t n = 0;
    *done = false;
    if (pl->managed && cand->n == 0) { /* every GPU offering the type */
        for (size_t g = 0; g < h->ngpus; g++) {
            for (size_t q = 0; q < h->nparents; q++) {
                if (h->parents[q].gpu == g && inv_parent_type(h, q, it->type_id)) {
                    out[n++] = g;
                    break;
                }
            }
        }
    }
    for (size_t c = 0; c < cand->n && !*done; c++) {
        size_t q = inv_find_parent(h, cand->ids[c]);
        if (q == NO_INDEX && !pl->managed && cand->iface && cand->iface[c]) {
            t->pl->saw_vendor_iface = true;
            *done = try_nvidia_iface(t, it, cand->ids[c], cand->iface[c]);
        } else if (q == NO_INDEX && !pl->managed) {
            snprintf(
                t->why, sizeof(t->why),
                "%s is not a mediated-device parent (no mdev_supported_types)", cand->ids[c]
            );
        } else if (q != NO_INDEX) {
            size_t id = pl->managed ? h->parents[q].gpu : q;
            bool dup = false;
            for (size_t k = 0; k < n; k++) {
                dup |= out[k] == id;
            }
            if (!dup) {
                out[n++] = id;
            }
        }
    }
    return n;
}

/* Place one item: first without removing anything; only when nothing fits, reclaiming
 * leftovers of stopped VMs (never destroy what a free GPU makes needless). */
static int place_item(struct try *t, struct planned_mdev *it, const struct place_candidates *cand) {
    const struct host *h = t->pl->host;
    _cleanup_free_ size_t *cands = malloc((h->nparents + h->ngpus + 1) * sizeof(*cands));
    if (!cands) {
        return -ENOMEM;
    }
    bool done;
    size_t n = item_candidates(t, it, cand, cands, &done);
    if (done) {
        return 0;
    }
    if (n == 0) {
        if (!t->why[0]) {
            snprintf(
                t->why, sizeof(t->why), "no GPU on node %s offers %s", t->pl->node, it->type_id
            );
        }
        return -ENODEV;
    }
    bool placed = false;
    for (int pass = 0; pass < 2 && !placed; pass++) {
        t->allow_reclaim = pass == 1;
        if (pass == 1 && !t->pl->cfg->reclaim_stale) {
            break;
        }
        if (t->pl->managed) {
            placed = place_managed(t, it, cands, n);
        }
        /* Like Proxmox: the first candidate where it can be created. */
        for (size_t c = 0; !t->pl->managed && c < n && !placed; c++) {
            placed = try_parent(t, it, cands[c]);
        }
    }
    return placed ? 0 : -ENOSPC;
}

/* This VM's devices that no item reuses are leftovers of an earlier config: remove them. */
static void mark_own_leftovers(struct placement *pl, const bool *ignore) {
    const struct host *h = pl->host;
    for (size_t m = 0; m < h->nmdevs; m++) {
        const struct inv_mdev *md = &h->mdevs[m];
        if (!md->uuid[0] || !md->owned || md->vmid != pl->vmid || !ignore[m]) {
            continue;
        }
        bool planned = false;
        for (size_t i = 0; i < pl->n; i++) {
            planned |= !strcmp(pl->items[i].uuid, md->uuid);
        }
        pl->reclaim[m] |= !planned;
    }
}

int place_vgpus(struct placement *pl) {
    struct host *h = pl->host;
    struct try t = {.pl = pl};
    pl->why[0] = '\0';
    pl->saw_vendor_iface = false;
    int r = grow_masks(&t);
    /* This VM's own devices do not count against it (reused or replaced). */
    for (size_t m = 0; r == 0 && m < h->nmdevs; m++) {
        t.ignore[m] = h->mdevs[m].owned && h->mdevs[m].vmid == pl->vmid;
    }
    for (size_t i = 0; i < pl->n && r == 0; i++) {
        t.why[0] = '\0';
        r = place_item(&t, &pl->items[i], &pl->cands[i]);
        if (r < 0) {
            pl->failed = i;
            str_msg(pl->why, sizeof(pl->why), "%s", t.why);
        }
    }
    if (r == 0) {
        mark_own_leftovers(pl, t.ignore);
    }
    free(t.ignore);
    return r;
}

static bool gpu_can_hold(const struct nvidia_gpu *g, unsigned type_id) {
    for (size_t i = 0; i < g->free_vf.ncreatable; i++) {
        if (g->free_vf.creatable[i].id == type_id) {
            return true;
        }
    }
    for (size_t i = 0; i < g->nused; i++) {
        if (g->used[i].type == type_id) {
            return true;
        }
    }
    return false;
}

/* Does only name GPU g, by its own address or one of its VFs' (attach --gpu takes either, and
 * the VM's record keeps what was given)? */
static bool gpu_listed(const struct nvidia_gpu *g, const char (*only)[PCI_ID_LEN], size_t nonly) {
    for (size_t i = 0; i < nonly; i++) {
        bool named = !strcmp(only[i], g->bdf);
        for (size_t v = 0; v < g->nvfs && !named; v++) {
            named = !strcmp(only[i], g->vfs[v]);
        }
        if (named) {
            return true;
        }
    }
    return nonly == 0;
}

int place_vf_order(
    const struct nvidia_gpu *gpus, size_t ngpus, unsigned type_id, const char (*only)[PCI_ID_LEN],
    size_t nonly, enum pvh_placement placement, const char ***vfs, size_t *nvfs
) {
    *vfs = NULL;
    *nvfs = 0;
    _cleanup_free_ size_t *order = calloc(ngpus ? ngpus : 1, sizeof(*order));
    size_t n = 0, total = 0;
    if (!order) {
        return -ENOMEM;
    }
    for (size_t g = 0; g < ngpus; g++) {
        if (gpu_listed(&gpus[g], only, nonly) && gpu_can_hold(&gpus[g], type_id)) {
            /* insertion sort: a handful of GPUs */
            size_t at = n;
            while (at > 0) {
                const struct nvidia_gpu *o = &gpus[order[at - 1]];
                bool before = placement == PLACEMENT_PACK ? gpus[g].nused > o->nused
                                                          : gpus[g].nused < o->nused;
                bool tie_first = gpus[g].nused == o->nused && strcmp(gpus[g].bdf, o->bdf) < 0;
                if (!before && !tie_first) {
                    break;
                }
                order[at] = order[at - 1];
                at--;
            }
            order[at] = g;
            n++;
            total += gpus[g].nvfs;
        }
    }
    if (total == 0) {
        return -ENODEV;
    }
    if (!(*vfs = calloc(total, sizeof(**vfs)))) {
        return -ENOMEM;
    }
    for (size_t k = 0; k < n; k++) {
        for (size_t v = 0; v < gpus[order[k]].nvfs; v++) {
            (*vfs)[(*nvfs)++] = gpus[order[k]].vfs[v];
        }
    }
    return 0;
}
