#include "mdevmap.h"

#include "cleanup.h"
#include "cluster.h"
#include "qemu_server.h"
#include "rules.h"
#include "strutil.h"
#include "vfmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool mdevmap_supported(const struct hostfs *fs) {
    char ver[64];
    return qsrv_installed(fs, ver, sizeof(ver)) == 0 && qsrv_supports(ver, QSRV_MAPPING_MDEV);
}

/* Is GPU g named by only (its physical function or one of its parents; none: every GPU)? */
static bool gpu_listed(const struct host *h, size_t g, const char (*only)[PCI_ID_LEN], size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(h->gpus[g].bdf, only[i])) {
            return true;
        }
        for (size_t q = 0; q < h->nparents; q++) {
            if (h->parents[q].gpu == g && !strcmp(h->parents[q].bdf, only[i])) {
                return true;
            }
        }
    }
    return n == 0;
}

/* The candidate GPUs that offer type, in placement order (*want: the type's definition). */
static size_t offering_gpus(
    const struct host *h, const struct pvh_config *cfg, const char *type,
    const char (*only)[PCI_ID_LEN], size_t nonly, size_t *gpus, const struct inv_typedef **want
) {
    size_t n = 0;
    *want = NULL;
    for (size_t g = 0; g < h->ngpus; g++) {
        bool offers = false;
        for (size_t q = 0; q < h->nparents; q++) {
            const struct inv_type *ty = h->parents[q].gpu == g ? inv_parent_type(h, q, type) : NULL;
            offers |= ty != NULL;
            *want = *want || !ty ? *want : inv_def(h, ty);
        }
        if (offers && gpu_listed(h, g, only, nonly)) {
            gpus[n++] = g;
        }
    }
    rules_order_candidates(cfg, h, gpus, n, *want);
    return n;
}

/* The mdev parents of h that get map lines for type, in mdevmap_lines' order, into bdfs (room
 * for h->nparents + 1); *type_id its sysfs id. -ENODEV (e not filled) when none offers it. */
static int node_parents(
    const struct host *h, const struct pvh_config *cfg, const char *type,
    const char (*only)[PCI_ID_LEN], size_t nonly, size_t first_parent, char *type_id,
    size_t type_id_size, const char **bdfs, size_t *n, struct pvh_err *e
) {
    _cleanup_free_ size_t *gpus = calloc(h->ngpus + 1, sizeof(*gpus));
    if (!gpus) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    const struct inv_typedef *want;
    size_t ng = offering_gpus(h, cfg, type, only, nonly, gpus, &want);
    *n = 0;
    if (first_parent != NO_INDEX) {
        bdfs[(*n)++] = h->parents[first_parent].bdf;
    }
    for (size_t k = 0; k < ng; k++) {
        for (size_t q = 0; q < h->nparents; q++) {
            if (h->parents[q].gpu == gpus[k] && q != first_parent && inv_parent_type(h, q, type)) {
                bdfs[(*n)++] = h->parents[q].bdf;
            }
        }
    }
    if (*n == 0 || !want) {
        return -ENODEV;
    }
    if (str_fmt(type_id, type_id_size, "%s", want->id) < 0) {
        return err_set(e, -ENAMETOOLONG, "type id %s is too long", want->id);
    }
    return 0;
}

int mdevmap_lines(
    const struct hostfs *fs, const struct host *h, const struct pvh_config *cfg, const char *node,
    const char *type, const char (*only)[PCI_ID_LEN], size_t nonly, size_t first_parent,
    char *type_id, size_t type_id_size, char **lines, size_t *nlines, struct pvh_err *e
) {
    *lines = NULL;
    *nlines = 0;
    _cleanup_free_ const char **bdfs = calloc(h->nparents + 1, sizeof(*bdfs));
    size_t n = 0;
    int r = bdfs ? node_parents(
                       h, cfg, type, only, nonly, first_parent, type_id, type_id_size, bdfs, &n, e
                   )
                 : err_set(e, -ENOMEM, "out of memory");
    if (r == 0 && (r = vfmap_lines_for(fs, node, bdfs, n, lines, e)) == 0) {
        *nlines = n;
    }
    return r;
}

/* The ids inv published for function pci; NULL when it published none. */
static const struct pci_ident *published_ident(const struct node_inv *inv, const char *pci) {
    for (size_t g = 0; g < inv->ngpus; g++) {
        for (size_t f = 0; inv->gpus[g].idents && f < inv->gpus[g].nfunctions; f++) {
            if (!strcmp(inv->gpus[g].functions[f], pci)) {
                return &inv->gpus[g].idents[f];
            }
        }
    }
    return NULL;
}

/* inv's node's map lines for functions bdfs, with the ids it published. -ENOENT (e not filled)
 * when it published none for one of them. */
static int published_lines(
    const struct node_inv *inv, const char **bdfs, size_t n, char **lines, struct pvh_err *e
) {
    _cleanup_free_ struct vfmap_vf *vv = calloc(n + 1, sizeof(*vv));
    if (!vv) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const struct pci_ident *id = published_ident(inv, bdfs[i]);
        if (!id) {
            return -ENOENT;
        }
        snprintf(vv[i].bdf, sizeof(vv[i].bdf), "%s", bdfs[i]);
        vv[i].ident = *id;
    }
    if (!(*lines = vfmap_node_lines(inv->node, vv, n))) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    return 0;
}

int mdevmap_remote_lines(
    const struct node_inv *inv, const struct pvh_config *cfg, const char *type,
    const char (*only)[PCI_ID_LEN], size_t nonly, char *type_id, size_t type_id_size, char **lines,
    size_t *nlines, struct pvh_err *e
) {
    _cleanup_(inventory_freep) struct host h = {0};
    *lines = NULL;
    *nlines = 0;
    if (cluster_host_model(inv, &h) < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    _cleanup_free_ const char **bdfs = calloc(h.nparents + 1, sizeof(*bdfs));
    size_t n = 0;
    int r =
        bdfs
            ? node_parents(&h, cfg, type, only, nonly, NO_INDEX, type_id, type_id_size, bdfs, &n, e)
            : err_set(e, -ENOMEM, "out of memory");
    if (r == 0) {
        r = published_lines(inv, bdfs, n, lines, e);
    }
    *nlines = r == 0 ? n : 0;
    return r;
}

int mdevmap_remote_vf_lines(
    const struct node_inv *inv, const struct nvidia_gpu *gpus, size_t ngpus, unsigned type_id,
    const char (*only)[PCI_ID_LEN], size_t nonly, enum pvh_placement placement, char **lines,
    size_t *nlines, struct pvh_err *e
) {
    _cleanup_free_ const char **vfs = NULL;
    size_t n = 0;
    *lines = NULL;
    *nlines = 0;
    int r = place_vf_order(gpus, ngpus, type_id, only, nonly, placement, &vfs, &n);
    if (r == -ENOMEM) {
        return err_set(e, r, "out of memory");
    }
    if (r == 0) {
        r = published_lines(inv, vfs, n, lines, e);
    }
    *nlines = r == 0 ? n : 0;
    return r;
}

int mdevmap_pre_start(
    const struct hook_env *env, struct vm_plan *p, const struct vm_settings *vs,
    const struct hostpci *hp, struct vm_settings *placed, struct pvh_err *e
) {
    _cleanup_(place_candidates_free) struct place_candidates only = {0};
    int r = plan_managed_candidates(vs, p->node, &only);
    if (r < 0) {
        return err_set(e, r, "out of memory");
    }
    /* only the candidates: a GPU that cannot be read is placement's warning, later */
    for (size_t i = 0; i < only.n; i++) {
        struct pvh_err ignored;
        (void)inventory_load_gpu(env->fs, &p->host, only.ids[i], NULL, &ignored);
    }
    if (only.n == 0 && (r = inventory_load_all(env->fs, &p->host, e)) < 0) {
        return r;
    }
    bool offered = false;
    for (size_t q = 0; q < p->host.nparents && !offered; q++) {
        offered = inv_parent_type(&p->host, q, hp->mdev) != NULL;
    }
    if (!offered) {
        return 0; /* NVIDIA's vendor interface, or no GPU here: that path says so */
    }
    *placed = *vs; /* placed as managed mode places, as the type Proxmox will look for */
    placed->index = hp->index;
    return str_fmt(placed->type, sizeof(placed->type), "%s", hp->mdev) < 0
               ? err_set(e, -ENAMETOOLONG, "hostpci%u: type too long", hp->index)
               : 1;
}

int mdevmap_plan(
    const struct hook_env *env, struct vm_plan *p, const struct vm_settings *vs, struct pvh_err *e
) {
    _cleanup_(place_candidates_free) struct place_candidates only = {0};
    char type_id[VGPU_TYPE_MAX];
    size_t n;
    int r = plan_managed_candidates(vs, p->node, &only);
    if (r < 0) {
        return err_set(e, r, "out of memory");
    }
    const struct planned_mdev *it = &p->items[0];
    r = mdevmap_lines(
        env->fs, &p->host, &p->cfg, p->node, it->type_id, only.ids, only.n, it->parent, type_id,
        sizeof(type_id), &p->vfmap_lines, &n, e
    );
    if (r == -ENODEV) { /* placed, so offered: not reached */
        return err_set(e, r, "no GPU on node %s offers %s", p->node, it->type_id);
    }
    return r < 0 ? r : plan_mapping_put(env, p, vs->mapping, e);
}
