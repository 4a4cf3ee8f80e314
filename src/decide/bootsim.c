#include "bootsim.h"

#include "cleanup.h"
#include "strutil.h"
#include "vgpu_type.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Instances of a type an idle GPU offers on a parent. */
static long
idle_available(const struct host *h, const struct inv_parent *par, const struct inv_type *t) {
    const struct inv_typedef *d = inv_def(h, t);
    unsigned fb = h->gpus[par->gpu].fb_mib;
    if (t->available_err) {
        return t->available; /* unreadable stays unreadable: the plan says so */
    }
    if (par->is_vf) {
        return 1; /* a VF holds one vGPU */
    }
    if (d->info.max_instance) {
        return d->info.max_instance;
    }
    return d->info.fb_mib && fb ? (long)(fb / d->info.fb_mib) : t->available;
}

static bool iface_offers(const struct nvidia_iface *nv, unsigned id) {
    for (size_t i = 0; i < nv->ncreatable; i++) {
        if (nv->creatable[i].id == id) {
            return true;
        }
    }
    return false;
}

static int iface_add(struct nvidia_iface *nv, const struct nvidia_iface_type *t) {
    if (iface_offers(nv, t->id)) {
        return 0;
    }
    if (GROW(nv->creatable, nv->ncreatable, 1) < 0) {
        return -ENOMEM;
    }
    nv->creatable[nv->ncreatable++] = *t;
    return 0;
}

static int iface_copy(const struct nvidia_iface *from, struct nvidia_iface *to) {
    memset(to, 0, sizeof(*to));
    for (size_t i = 0; i < from->ncreatable; i++) {
        if (iface_add(to, &from->creatable[i]) < 0) {
            nvidia_iface_free(to);
            return -ENOMEM;
        }
    }
    return 0;
}

/* A type's name as any GPU's free VF shows it ("" when none does: the GPU was full). */
static const char *iface_type_name(const struct bootsim *s, unsigned id) {
    for (size_t g = 0; g < s->nifgpus; g++) {
        for (size_t i = 0; i < s->ifgpus[g].free_vf.ncreatable; i++) {
            if (s->ifgpus[g].free_vf.creatable[i].id == id) {
                return s->ifgpus[g].free_vf.creatable[i].name;
            }
        }
    }
    return "";
}

/* What a free VF of an idle vendor-interface GPU offers: what one offers now and every type a
 * VF holds now (an idle GPU offers at least those). */
static int reset_ifgpus(struct bootsim *s) {
    if (s->nifgpus && !(s->fresh = calloc(s->nifgpus, sizeof(*s->fresh)))) {
        return -ENOMEM;
    }
    for (size_t g = 0; g < s->nifgpus; g++) {
        struct nvidia_gpu *G = &s->ifgpus[g];
        if (iface_copy(&G->free_vf, &s->fresh[g]) < 0) {
            return -ENOMEM;
        }
        for (size_t u = 0; u < G->nused; u++) {
            struct nvidia_iface_type t = {.id = G->used[u].type};
            snprintf(t.name, sizeof(t.name), "%s", iface_type_name(s, t.id));
            if (iface_add(&s->fresh[g], &t) < 0) {
                return -ENOMEM;
            }
        }
    }
    for (size_t g = 0; g < s->nifgpus; g++) {
        struct nvidia_gpu *G = &s->ifgpus[g];
        free(G->used);
        G->used = NULL;
        G->nused = 0;
        G->users_known = true;
        nvidia_iface_free(&G->free_vf);
        G->free_bdf[0] = '\0';
        if (G->nvfs) {
            memcpy(G->free_bdf, G->vfs[0], sizeof(G->free_bdf));
            if (iface_copy(&s->fresh[g], &G->free_vf) < 0) {
                return -ENOMEM;
            }
        }
    }
    return 0;
}

int bootsim_reset(struct bootsim *s) {
    struct host *h = &s->host;
    for (size_t q = 0; q < h->nparents; q++) {
        struct inv_parent *par = &h->parents[q];
        for (size_t k = 0; k < par->ntypes; k++) {
            par->types[k].available = idle_available(h, par, &par->types[k]);
        }
    }
    free(h->mdevs);
    h->mdevs = NULL;
    h->nmdevs = 0;
    return reset_ifgpus(s);
}

void bootsim_free(struct bootsim *s) {
    inventory_free(&s->host);
    for (size_t g = 0; s->fresh && g < s->nifgpus; g++) {
        nvidia_iface_free(&s->fresh[g]);
    }
    free(s->fresh);
    inventory_nvidia_gpus_free(s->ifgpus, s->nifgpus);
    memset(s, 0, sizeof(*s));
}

static const struct vf_holder *vf_used(const struct nvidia_gpu *G, const char *vf) {
    for (size_t u = 0; u < G->nused; u++) {
        if (!strcmp(G->used[u].bdf, vf)) {
            return &G->used[u];
        }
    }
    return NULL;
}

int bootsim_vf_iface(const struct bootsim *s, const char *vf, struct nvidia_iface *out) {
    memset(out, 0, sizeof(*out));
    for (size_t g = 0; g < s->nifgpus; g++) {
        const struct nvidia_gpu *G = &s->ifgpus[g];
        for (size_t v = 0; v < G->nvfs; v++) {
            if (strcmp(G->vfs[v], vf)) {
                continue;
            }
            const struct vf_holder *u = vf_used(G, vf);
            if (u) {
                out->current = u->type;
                out->used_by = u->vmid;
                return 0;
            }
            return iface_copy(&G->free_vf, out);
        }
    }
    return -ENOENT;
}

int bootsim_mark(const struct bootsim *s, struct bootsim_mark *m) {
    const struct host *h = &s->host;
    size_t n = 0;
    for (size_t q = 0; q < h->nparents; q++) {
        n += h->parents[q].ntypes;
    }
    m->nmdevs = h->nmdevs;
    if (!(m->available = calloc(n ? n : 1, sizeof(*m->available)))) {
        return -ENOMEM;
    }
    n = 0;
    for (size_t q = 0; q < h->nparents; q++) {
        for (size_t k = 0; k < h->parents[q].ntypes; k++) {
            m->available[n++] = h->parents[q].types[k].available;
        }
    }
    return 0;
}

void bootsim_undo(struct bootsim *s, struct bootsim_mark *m) {
    struct host *h = &s->host;
    size_t n = 0;
    h->nmdevs = m->nmdevs < h->nmdevs ? m->nmdevs : h->nmdevs;
    for (size_t q = 0; q < h->nparents; q++) {
        for (size_t k = 0; k < h->parents[q].ntypes; k++) {
            h->parents[q].types[k].available = m->available[n++];
        }
    }
    free(m->available);
    m->available = NULL;
}

/* The framebuffer of a vendor-interface type, from its name; 0 when the name does not say. */
static unsigned iface_type_fb(const struct nvidia_iface_type *t, bool *mig) {
    struct vgpu_type_info info;
    vgpu_type_describe(t->name, "", &info);
    *mig = info.mig;
    return info.fb_mib;
}

/* What the GPU's free VFs offer once G->used hold their types: the driver's equal-size mode
 * (the default) offers the hosted size only. How many of it the GPU takes the names do not
 * tell (the list may lack the full-size type): a free VF is the limit. */
static int offer_after(struct nvidia_gpu *G, const struct nvidia_iface *fresh) {
    unsigned hosted = 0;
    bool mig;
    for (size_t i = 0; i < fresh->ncreatable; i++) {
        unsigned fb = iface_type_fb(&fresh->creatable[i], &mig);
        hosted = fresh->creatable[i].id == G->used[0].type ? fb : hosted;
    }
    nvidia_iface_free(&G->free_vf);
    G->free_bdf[0] = '\0';
    for (size_t v = 0; v < G->nvfs && !G->free_bdf[0]; v++) {
        if (!vf_used(G, G->vfs[v])) {
            memcpy(G->free_bdf, G->vfs[v], sizeof(G->free_bdf));
        }
    }
    for (size_t i = 0; G->free_bdf[0] && i < fresh->ncreatable; i++) {
        const struct nvidia_iface_type *t = &fresh->creatable[i];
        unsigned fb = iface_type_fb(t, &mig);
        bool fits = hosted && !mig ? fb == hosted : t->id == G->used[0].type;
        if (fits && iface_add(&G->free_vf, t) < 0) {
            return -ENOMEM;
        }
    }
    return 0;
}

int bootsim_started(
    struct bootsim *s, struct bootsim_mark *m, const char *vf, unsigned type, unsigned long vmid
) {
    free(m->available);
    m->available = NULL;
    for (size_t i = m->nmdevs; i < s->host.nmdevs; i++) {
        s->host.mdevs[i].state = VM_RUNNING;
    }
    for (size_t g = 0; vf[0] && g < s->nifgpus; g++) {
        struct nvidia_gpu *G = &s->ifgpus[g];
        for (size_t v = 0; v < G->nvfs; v++) {
            if (strcmp(G->vfs[v], vf) || vf_used(G, vf)) {
                continue;
            }
            if (GROW(G->used, G->nused, 1) < 0) {
                return -ENOMEM;
            }
            G->used[G->nused] = (struct vf_holder){.type = type, .vmid = vmid, .state = VM_RUNNING};
            memcpy(G->used[G->nused++].bdf, vf, sizeof(G->used[0].bdf));
            return offer_after(G, &s->fresh[g]);
        }
    }
    return 0;
}

static int boot_vm_cmp(const void *a, const void *b) {
    const struct boot_vm *x = a, *y = b;
    long ox = x->has_order ? x->order : LONG_MAX, oy = y->has_order ? y->order : LONG_MAX;
    if (ox != oy) {
        return ox < oy ? -1 : 1;
    }
    return x->vmid < y->vmid ? -1 : x->vmid > y->vmid;
}

void bootsim_sort(struct boot_vm *vms, size_t n) {
    if (n) {
        qsort(vms, n, sizeof(*vms), boot_vm_cmp);
    }
}
