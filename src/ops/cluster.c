#include "cluster.h"

#include "cleanup.h"
#include "hostpaths.h"
#include "leftover.h"
#include "mapsync.h"
#include "members.h"
#include "qemu_server.h"
#include "readiness.h"
#include "rules.h"
#include "sectioncfg.h"
#include "strutil.h"
#include "vfmap.h"
#include "vmconf.h"
#include "vmstate.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The published state of a vGPU: the one leftover verdict, in the inventory's words. */
static const enum ninv_state state_of[] = {
    [LEFTOVER_NOT_OURS] = NINV_FOREIGN,
    [LEFTOVER_RUNNING] = NINV_RUNNING,
    [LEFTOVER_BUSY] = NINV_BUSY,
    [LEFTOVER_STALE] = NINV_LEFTOVER,
    [LEFTOVER_OWN] = NINV_LEFTOVER};

/* The types of an mdev GPU: what each offers, and how many more fit on the GPU now (on SR-IOV
 * the GPU's room, never the sum of its VFs). */
static int mdev_gpu_types(const struct host *h, size_t g, struct ninv_gpu *out) {
    for (size_t d = 0; d < h->ndefs; d++) {
        const struct inv_typedef *def = &h->defs[d];
        if (def->gpu != g) {
            continue;
        }
        struct ninv_type *t = ninv_push(&out->types, &out->ntypes, sizeof(*t), NODEINV_MAX_ITEMS);
        if (!t) {
            return -ENOMEM;
        }
        snprintf(t->id, sizeof(t->id), "%s", def->id);
        snprintf(t->name, sizeof(t->name), "%s", def->name);
        t->fb_mib = def->info.fb_mib;
        t->max = def->info.max_instance;
        long fr = rules_gpu_available(h, g, def, NULL);
        t->free = fr > 0 ? fr : 0;
        if (!out->model[0] && def->info.gpu[0]) {
            snprintf(out->model, sizeof(out->model), "%s", def->info.gpu);
        }
    }
    for (size_t q = 0; q < h->nparents; q++) {
        if (h->parents[q].gpu != g) {
            continue;
        }
        out->kind = h->parents[q].is_vf ? NINV_SRIOV_MDEV : NINV_MDEV;
        char(*f)[PCI_ID_LEN] =
            ninv_push(&out->functions, &out->nfunctions, sizeof(*f), NODEINV_MAX_ITEMS);
        if (!f) {
            return -ENOMEM;
        }
        snprintf(*f, sizeof(*f), "%s", h->parents[q].bdf);
    }
    return 0;
}

/* A GPU on NVIDIA's vendor interface: the types a free VF can take now (one more each: the
 * driver tells no more), its VFs, and the types its VFs hold. */
static int vendor_gpu(const struct nvidia_gpu *G, struct ninv_gpu *out, struct node_inv *inv) {
    snprintf(out->pci, sizeof(out->pci), "%s", G->bdf);
    out->kind = NINV_VENDOR_IFACE;
    for (size_t i = 0; G->free_bdf[0] && i < G->free_vf.ncreatable; i++) {
        const struct nvidia_iface_type *c = &G->free_vf.creatable[i];
        struct ninv_type *t = ninv_push(&out->types, &out->ntypes, sizeof(*t), NODEINV_MAX_ITEMS);
        if (!t) {
            return -ENOMEM;
        }
        struct vgpu_type_info info;
        vgpu_type_describe(c->name, "", &info);
        snprintf(t->id, sizeof(t->id), "nvidia-%u", c->id);
        snprintf(t->name, sizeof(t->name), "%s", c->name);
        t->fb_mib = info.fb_mib;
        t->free = 1;
        if (!out->model[0] && info.gpu[0]) {
            snprintf(out->model, sizeof(out->model), "%s", info.gpu);
        }
    }
    for (size_t v = 0; v < G->nvfs; v++) {
        char(*f)[PCI_ID_LEN] =
            ninv_push(&out->functions, &out->nfunctions, sizeof(*f), NODEINV_MAX_ITEMS);
        if (!f) {
            return -ENOMEM;
        }
        snprintf(*f, sizeof(*f), "%s", G->vfs[v]);
    }
    for (size_t u = 0; u < G->nused; u++) {
        struct ninv_vgpu *vg = ninv_push(&inv->vgpus, &inv->nvgpus, sizeof(*vg), NODEINV_MAX_ITEMS);
        if (!vg) {
            return -ENOMEM;
        }
        vg->vmid = G->used[u].vmid;
        vg->state = G->users_known ? state_of[G->used[u].state] : NINV_RUNNING;
        snprintf(vg->type, sizeof(vg->type), "nvidia-%u", G->used[u].type);
        snprintf(vg->gpu, sizeof(vg->gpu), "%s", G->bdf);
        snprintf(vg->function, sizeof(vg->function), "%s", G->used[u].bdf);
    }
    return 0;
}

static int mdev_vgpus(const struct host *h, struct node_inv *inv) {
    for (size_t m = 0; m < h->nmdevs; m++) {
        const struct inv_mdev *md = &h->mdevs[m];
        struct ninv_vgpu *vg = ninv_push(&inv->vgpus, &inv->nvgpus, sizeof(*vg), NODEINV_MAX_ITEMS);
        if (!vg) {
            return -ENOMEM;
        }
        vg->vmid = md->owned ? md->vmid : 0;
        vg->state = state_of[leftover_of_mdev(md, 0)];
        snprintf(vg->type, sizeof(vg->type), "%s", md->type_id);
        size_t g = md->parent != NO_INDEX ? h->parents[md->parent].gpu : NO_INDEX;
        snprintf(vg->gpu, sizeof(vg->gpu), "%s", g != NO_INDEX ? h->gpus[g].bdf : md->parent_bdf);
        snprintf(vg->function, sizeof(vg->function), "%s", md->parent_bdf);
        snprintf(vg->uuid, sizeof(vg->uuid), "%s", md->uuid);
    }
    return 0;
}

/* The host-wide facts: driver, qemu-server, vgpu_unlock-rs. */
static void node_facts(const struct hook_env *env, struct node_inv *inv) {
    char ver[64] = "";
    if (hostfs_read(env->fs, SYS_NVIDIA_VERSION, ver, sizeof(ver)) > 0) {
        ver[strcspn(ver, "\r\n")] = '\0';
        if (!str_has_ctl(ver, false)) {
            snprintf(inv->driver, sizeof(inv->driver), "%s", ver);
        }
    }
    if (qsrv_installed(env->fs, ver, sizeof(ver)) == 0) {
        snprintf(inv->qemu_server, sizeof(inv->qemu_server), "%s", ver);
    }
    char *why = NULL, *toml = NULL;
    inv->unlock = readiness_vgpu_unlock(env->fs, &why, &toml) == 1;
    free(why);
    free(toml);
}

/* What another node's attach needs to write this GPU's map lines (mdevmap_remote_lines): its
 * functions' ids, read as for this node's own lines. None when one cannot be read: that GPU's
 * lines then come only from this node's own publish. -ENOMEM. */
static int publish_idents(const struct hostfs *fs, struct ninv_gpu *G) {
    if (G->nfunctions == 0) {
        return 0;
    }
    if (!(G->idents = calloc(G->nfunctions, sizeof(*G->idents)))) {
        return -ENOMEM;
    }
    for (size_t f = 0; f < G->nfunctions; f++) {
        if (inventory_pci_ident(fs, G->functions[f], &G->idents[f]) < 0) {
            free(TAKE_PTR(G->idents));
            break;
        }
    }
    return 0;
}

int cluster_inventory_of(
    const struct hook_env *env, const struct host_status *st, long long now, struct node_inv *out
) {
    memset(out, 0, sizeof(*out));
    out->format = NODEINV_FORMAT;
    out->taken = now;
    snprintf(out->node, sizeof(out->node), "%s", st->node);
    node_facts(env, out);
    const struct host *h = &st->host;
    int r = 0;
    for (size_t g = 0; r == 0 && g < h->ngpus; g++) {
        struct ninv_gpu *G = ninv_push(&out->gpus, &out->ngpus, sizeof(*G), NODEINV_MAX_GPUS);
        if (!G) {
            r = -ENOMEM;
            break;
        }
        snprintf(G->pci, sizeof(G->pci), "%s", h->gpus[g].bdf);
        r = mdev_gpu_types(h, g, G);
        r = r < 0 ? r : publish_idents(env->fs, G);
    }
    for (size_t g = 0; r == 0 && g < st->nnvidia; g++) {
        struct ninv_gpu *G = ninv_push(&out->gpus, &out->ngpus, sizeof(*G), NODEINV_MAX_GPUS);
        r = G ? vendor_gpu(&st->nvidia[g], G, out) : -ENOMEM;
        r = r < 0 ? r : publish_idents(env->fs, G);
    }
    if (r == 0) {
        r = mdev_vgpus(h, out);
    }
    if (r < 0) {
        nodeinv_free(out);
    }
    return r;
}

/* Is the published copy the same as inv (taken aside) and younger than the refresh interval? */
static bool published_current(
    const struct hook_env *env, const char *path, const struct node_inv *inv, const char *body
) {
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    char why[256];
    struct node_inv old;
    if (hostfs_read_alloc(env->fs, path, CONFIG_MAX_BYTES, &text, &len) < 0 ||
        nodeinv_parse(text, len, &old, why, sizeof(why)) < 0) {
        return false;
    }
    _cleanup_free_ char *old_body = nodeinv_write(&old, false);
    bool same = old_body && !strcmp(old_body, body) && old.taken <= inv->taken &&
                inv->taken - old.taken < CLUSTER_REFRESH_S;
    nodeinv_free(&old);
    return same;
}

static int
publish_model(const struct hook_env *env, const struct host_status *st, struct pvh_err *e) {
    char path[128];
    if (!node_name_valid(st->node) ||
        str_fmt(path, sizeof(path), PVE_NODE_INVENTORY_FMT, st->node) < 0) {
        return err_set(e, -EINVAL, "this node's name '%s' is not a node name", st->node);
    }
    char dir[128];
    snprintf(dir, sizeof(dir), PVE_NODES_DIR "/%s", st->node);
    if (hostfs_is_dir(env->fs, dir) < 0) {
        return 0; /* no pmxcfs node directory: not a Proxmox node, nothing to publish to */
    }
    struct node_inv inv;
    if (cluster_inventory_of(env, st, (long long)time(NULL), &inv) < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    _cleanup_free_ char *body = nodeinv_write(&inv, false);
    _cleanup_free_ char *text = nodeinv_write(&inv, true);
    int r = body && text ? 0 : -ENOMEM;
    if (r == 0 && !published_current(env, path, &inv, body)) {
        r = hostfs_replace_file(env->fs, path, text, strlen(text), 0640);
        r = r < 0 ? r : 1;
    }
    nodeinv_free(&inv);
    if (r == -EACCES || r == -EPERM || r == -EROFS) {
        err_set(e, r, "cannot publish this node's vGPU inventory to %s: %s", path, strerror(-r));
        err_hint(
            e, "pmxcfs refuses writes without quorum ('pvecm status'); the "
               "pve-vgpu-hook-publish timer tries again"
        );
    } else if (r < 0) {
        err_set(e, r, "cannot publish this node's vGPU inventory to %s: %s", path, strerror(-r));
    }
    return r;
}

/* The inventory, then this node's lines in the VMs' mappings (the same host model). */
static int
publish_all(const struct hook_env *env, const struct host_status *st, struct pvh_err *e) {
    int r = publish_model(env, st, e);
    int m = r < 0 ? 0 : mapsync_node(env, st, e); /* without quorum both fail: said once */
    return m < 0 ? m : r;
}

int cluster_publish(const struct hook_env *env, const struct host_status *st, struct pvh_err *e) {
    if (st) {
        return publish_all(env, st, e);
    }
    struct host_status own;
    int r = admin_status(env, &own, e);
    if (r == 0) {
        r = publish_all(env, &own, e);
    }
    admin_status_free(&own);
    return r;
}

const char *node_freshness_name(enum node_freshness f) {
    static const char *const names[] = {
        [NODE_CURRENT] = "current",
        [NODE_STALE] = "stale",
        [NODE_OFFLINE] = "offline",
        [NODE_UNPUBLISHED] = "unpublished",
        [NODE_INVALID] = "invalid"};
    return names[f];
}

void cluster_view_free(struct cluster_view *v) {
    for (size_t i = 0; i < v->n; i++) {
        nodeinv_free(&v->nodes[i].inv);
    }
    free(v->nodes);
    warn_free(&v->warnings);
    v->nodes = NULL;
    v->n = 0;
}

static struct cluster_node *view_node(struct cluster_view *v, const char *name) {
    for (size_t i = 0; i < v->n; i++) {
        if (!strcmp(v->nodes[i].name, name)) {
            return &v->nodes[i];
        }
    }
    struct cluster_node *n = ninv_push(&v->nodes, &v->n, sizeof(*n), 4096);
    if (n) {
        snprintf(n->name, sizeof(n->name), "%s", name);
        n->age = -1;
    }
    return n;
}

/* A node .members lists as not online is offline whatever its file says. */
static int read_members(const struct hook_env *env, struct cluster_view *v) {
    _cleanup_free_ struct pve_member *m = NULL;
    size_t n = 0;
    int r = members_load(env->fs, &m, &n);
    if (r == -EINVAL) {
        warn_add(
            &v->warnings, "%s is not what pmxcfs writes: nodes' online state unknown", PVE_MEMBERS
        );
        return 0;
    }
    for (size_t i = 0; r == 0 && i < n; i++) {
        struct cluster_node *node = view_node(v, m[i].name);
        if (!node) {
            return -ENOMEM;
        }
        node->fresh = m[i].online ? NODE_CURRENT : NODE_OFFLINE;
    }
    return r;
}

static void
load_node_file(const struct hook_env *env, struct cluster_view *v, struct cluster_node *n) {
    char path[128];
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), PVE_NODE_INVENTORY_FMT, n->name);
    int r = hostfs_read_alloc(env->fs, path, CONFIG_MAX_BYTES, &text, &len);
    if (r < 0) {
        n->fresh = n->fresh == NODE_OFFLINE ? NODE_OFFLINE : NODE_UNPUBLISHED;
        return;
    }
    r = nodeinv_parse(text, len, &n->inv, n->problem, sizeof(n->problem));
    if (r == 0 && strcmp(n->inv.node, n->name)) {
        str_msg(n->problem, sizeof(n->problem), "it names node '%s'", n->inv.node);
        nodeinv_free(&n->inv);
        r = -EINVAL;
    }
    if (r < 0) {
        n->fresh = NODE_INVALID;
        return;
    }
    n->has_inv = true;
    n->age = v->now - n->inv.taken;
    if (n->fresh != NODE_OFFLINE) {
        n->fresh = n->age > CLUSTER_STALE_S || n->age < -60 ? NODE_STALE : NODE_CURRENT;
    }
}

int cluster_load(const struct hook_env *env, struct cluster_view *v, struct pvh_err *e) {
    memset(v, 0, sizeof(*v));
    v->now = (long long)time(NULL);
    node_name(env->fs, v->self, sizeof(v->self));
    struct hostfs_list l = {0};
    int r = hostfs_list(env->fs, PVE_NODES_DIR, &l);
    if (r < 0 && r != -ENOENT) {
        return err_set(e, r, "cannot read %s: %s", PVE_NODES_DIR, strerror(-r));
    }
    for (size_t i = 0; r >= 0 && i < l.n; i++) {
        if (!node_name_valid(l.names[i])) {
            _cleanup_free_ char *esc = str_escape_ctl(l.names[i], strlen(l.names[i]), false);
            warn_add(
                &v->warnings, "%s/%s is not a node name: ignored", PVE_NODES_DIR, esc ? esc : "?"
            );
        } else if (!view_node(v, l.names[i])) {
            r = -ENOMEM;
        }
    }
    hostfs_list_free(&l);
    if (r < 0 || (r = read_members(env, v)) < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < v->n; i++) {
        load_node_file(env, v, &v->nodes[i]);
    }
    return 0;
}

/* One published GPU into the model: a GPU, a type definition per type, a parent per function
 * offering each type as its driver would now (a VF of SR-IOV: one instance when the GPU has
 * room and the VF holds none). */
static int model_gpu(const struct node_inv *inv, const struct ninv_gpu *G, struct host *h) {
    struct inv_gpu *g = ninv_push(&h->gpus, &h->ngpus, sizeof(*g), NODEINV_MAX_GPUS);
    if (!g) {
        return -ENOMEM;
    }
    size_t gi = h->ngpus - 1, def0 = h->ndefs;
    snprintf(g->bdf, sizeof(g->bdf), "%s", G->pci);
    g->vendor = 0x10de;
    snprintf(g->driver, sizeof(g->driver), "nvidia");
    g->nparents = G->nfunctions;
    for (size_t t = 0; t < G->ntypes; t++) {
        struct inv_typedef *d = ninv_push(&h->defs, &h->ndefs, sizeof(*d), SIZE_MAX);
        if (!d) {
            return -ENOMEM;
        }
        d->gpu = gi;
        snprintf(d->id, sizeof(d->id), "%s", G->types[t].id);
        snprintf(d->name, sizeof(d->name), "%s", G->types[t].name);
        snprintf(d->device_api, sizeof(d->device_api), "vfio-pci");
        vgpu_type_describe(d->name, "", &d->info);
        d->info.fb_mib = G->types[t].fb_mib;
        d->info.max_instance = G->types[t].max;
        g->fb_mib = d->info.fb_mib > g->fb_mib ? d->info.fb_mib : g->fb_mib;
    }
    for (size_t f = 0; f < G->nfunctions; f++) {
        struct inv_parent *p = ninv_push(&h->parents, &h->nparents, sizeof(*p), SIZE_MAX);
        if (!p || !(p->types = calloc(G->ntypes ? G->ntypes : 1, sizeof(*p->types)))) {
            return -ENOMEM;
        }
        snprintf(p->bdf, sizeof(p->bdf), "%s", G->functions[f]);
        p->gpu = gi;
        p->is_vf = G->kind == NINV_SRIOV_MDEV;
        bool holds = false;
        for (size_t i = 0; i < inv->nvgpus; i++) {
            holds |= !strcmp(inv->vgpus[i].function, p->bdf);
        }
        for (size_t t = 0; t < G->ntypes; t++) {
            long fr = G->types[t].free;
            p->types[t] =
                (struct inv_type){.def = def0 + t, .available = p->is_vf ? (!holds && fr > 0) : fr};
        }
        p->ntypes = G->ntypes;
    }
    return 0;
}

static int model_mdevs(const struct node_inv *inv, struct host *h) {
    for (size_t i = 0; i < inv->nvgpus; i++) {
        const struct ninv_vgpu *v = &inv->vgpus[i];
        size_t parent = inv_find_parent(h, v->function);
        if (!v->uuid[0] || parent == NO_INDEX) {
            continue; /* the vendor interface: no mdev, the VF tells */
        }
        struct inv_mdev *m = ninv_push(&h->mdevs, &h->nmdevs, sizeof(*m), SIZE_MAX);
        if (!m) {
            return -ENOMEM;
        }
        snprintf(m->uuid, sizeof(m->uuid), "%s", v->uuid);
        snprintf(m->type_id, sizeof(m->type_id), "%s", v->type);
        snprintf(m->parent_bdf, sizeof(m->parent_bdf), "%s", v->function);
        m->parent = parent;
        m->owned = mdev_uuid_parse(v->uuid, &m->index, &m->vmid);
        static const enum vm_state st[] = {
            [NINV_RUNNING] = VM_RUNNING,
            [NINV_BUSY] = VM_BUSY,
            [NINV_LEFTOVER] = VM_STOPPED,
            [NINV_FOREIGN] = VM_NOT_OURS};
        m->state = m->owned ? st[v->state] : VM_NOT_OURS;
    }
    return 0;
}

int cluster_host_model(const struct node_inv *inv, struct host *h) {
    memset(h, 0, sizeof(*h));
    int r = 0;
    for (size_t g = 0; r == 0 && g < inv->ngpus; g++) {
        if (inv->gpus[g].kind != NINV_VENDOR_IFACE) {
            r = model_gpu(inv, &inv->gpus[g], h);
        }
    }
    if (r == 0) {
        r = model_mdevs(inv, h);
    }
    if (r < 0) {
        inventory_free(h);
    }
    return r;
}

/* What a free VF of published GPU G can take: its published types. -ENOMEM. */
static int published_creatable(const struct ninv_gpu *G, struct nvidia_iface *out) {
    out->creatable = calloc(G->ntypes ? G->ntypes : 1, sizeof(*out->creatable));
    if (!out->creatable) {
        return -ENOMEM;
    }
    for (size_t t = 0; t < G->ntypes; t++) {
        struct nvidia_iface_type *c = &out->creatable[out->ncreatable++];
        c->id = (unsigned)strtoul(G->types[t].id + strlen("nvidia-"), NULL, 10);
        snprintf(c->name, sizeof(c->name), "%s", G->types[t].name);
    }
    return 0;
}

/* One published GPU of the vendor interface as inventory_nvidia_gpus reads it: its VFs, the
 * ones holding a type, and (when it published types) the first free VF offering them. */
static int
model_nvidia_gpu(const struct node_inv *inv, const struct ninv_gpu *G, struct nvidia_gpu *g) {
    snprintf(g->bdf, sizeof(g->bdf), "%s", G->pci);
    if (!(g->vfs = calloc(G->nfunctions ? G->nfunctions : 1, sizeof(*g->vfs))) ||
        !(g->used = calloc(G->nfunctions ? G->nfunctions : 1, sizeof(*g->used)))) {
        return -ENOMEM;
    }
    for (size_t f = 0; f < G->nfunctions; f++) {
        memcpy(g->vfs[g->nvfs++], G->functions[f], sizeof(g->vfs[0]));
        const struct ninv_vgpu *held = NULL;
        for (size_t i = 0; i < inv->nvgpus; i++) {
            held = !strcmp(inv->vgpus[i].function, G->functions[f]) ? &inv->vgpus[i] : held;
        }
        if (held) {
            struct vf_holder *u = &g->used[g->nused++];
            snprintf(u->bdf, sizeof(u->bdf), "%s", held->function);
            u->type = (unsigned)strtoul(held->type + strlen("nvidia-"), NULL, 10);
        } else if (!g->free_bdf[0] && G->ntypes) {
            snprintf(g->free_bdf, sizeof(g->free_bdf), "%s", G->functions[f]);
        }
    }
    return g->free_bdf[0] ? published_creatable(G, &g->free_vf) : 0;
}

int cluster_nvidia_gpus(const struct node_inv *inv, struct nvidia_gpu **out, size_t *n) {
    *out = calloc(inv->ngpus ? inv->ngpus : 1, sizeof(**out));
    *n = 0;
    int r = *out ? 0 : -ENOMEM;
    for (size_t g = 0; r == 0 && g < inv->ngpus; g++) {
        if (inv->gpus[g].kind == NINV_VENDOR_IFACE) {
            r = model_nvidia_gpu(inv, &inv->gpus[g], &(*out)[(*n)++]);
        }
    }
    if (r < 0) {
        inventory_nvidia_gpus_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return r;
}

int cluster_vf_iface(const struct node_inv *inv, const char *pci, struct nvidia_iface *out) {
    memset(out, 0, sizeof(*out));
    for (size_t g = 0; g < inv->ngpus; g++) {
        const struct ninv_gpu *G = &inv->gpus[g];
        bool has = false;
        for (size_t f = 0; f < G->nfunctions && G->kind == NINV_VENDOR_IFACE; f++) {
            has |= !strcmp(G->functions[f], pci);
        }
        if (!has) {
            continue;
        }
        for (size_t i = 0; i < inv->nvgpus; i++) {
            const struct ninv_vgpu *v = &inv->vgpus[i];
            if (!strcmp(v->function, pci)) {
                out->current = (unsigned)strtoul(v->type + strlen("nvidia-"), NULL, 10);
                out->used_by = v->state == NINV_RUNNING ? (v->vmid ? v->vmid : ULONG_MAX) : 0;
            }
        }
        if (out->current) {
            return 0; /* a VF holding a type offers nothing else */
        }
        return published_creatable(G, out);
    }
    return -ENOENT;
}

/* What where needs of the VM, read once: its config (from whichever node holds it), its
 * vGPUs, our settings and the resource mappings. */
struct where_vm {
    unsigned long vmid;
    struct pveconf conf;
    struct pvh_config cfg;
    const struct vm_settings *managed;
    struct hostpci hps[HOSTPCI_MAX];
    size_t nitems;
    struct sectioncfg maps;
    bool unlock; /* the VM has vgpu_unlock-rs settings */
    /* where --migrate: the node the VM is on, its NVIDIA driver ("" unknown), and a managed
     * VM's settings with the type its hostpci line names (what the target must create) */
    bool migrate;
    char from[NODE_NAME_MAX];
    char from_driver[64];
    struct vm_settings placed;
};

static int where_vm_conf(const struct hook_env *env, struct where_vm *w, struct pvh_err *e) {
    int r = vmconf_find(env->fs, w->vmid, &w->conf, w->from, sizeof(w->from));
    if (r == 0 && !w->from[0]) {
        node_name(env->fs, w->from, sizeof(w->from));
    }
    if (r == -ENOENT) {
        err_set(e, r, "no node of the cluster has a config for VM %lu", w->vmid);
        err_hint(e, "check the VMID ('qm list' on each node, or 'pvesh get /cluster/resources')");
        return r;
    }
    if (r < 0) {
        return err_set(e, r, "cannot read VM %lu's config: %s", w->vmid, strerror(-r));
    }
    return pveconf_apply_pending(&w->conf) < 0 ? err_set(e, -ENOMEM, "out of memory") : 0;
}

static int where_vm_load(const struct hook_env *env, struct where_vm *w, struct pvh_err *e) {
    struct pvh_warnings warns = {0};
    int r = where_vm_conf(env, w, e);
    if (r == 0) {
        r = config_load_to_act(env, &w->cfg, &warns, e);
    }
    warn_free(&warns);
    if (r < 0) {
        return r;
    }
    size_t n = 0;
    w->managed = config_managed_vm(&w->cfg, w->vmid);
    if ((r = hostpci_mdev_entries(&w->conf, w->hps, &n, NULL, e)) < 0) {
        return r;
    }
    w->nitems = w->managed && n == 0 ? 1 : n;
    if (w->migrate && w->managed && w->managed->mapping && n == 1) {
        /* a migration target creates the type hostpci names, never another (as pre-start) */
        w->placed = *w->managed;
        snprintf(w->placed.type, sizeof(w->placed.type), "%s", w->hps[0].mdev);
        w->managed = &w->placed;
    }
    if (w->nitems == 0) {
        err_set(e, -ENOENT, "VM %lu has no vGPU (no hostpci mdev= entry, not attached)", w->vmid);
        err_hint(e, "give it one with 'pve-vgpu-hook attach %lu --type TYPE'", w->vmid);
        return -ENOENT;
    }
    const struct vm_settings *vs = config_vm(&w->cfg, w->vmid);
    w->unlock = vs && vs->tuning.nunlock > 0;
    _cleanup_free_ char *maps = NULL;
    if (vfmap_read(env->fs, &maps, NULL) == 0 && sectioncfg_parse(maps, false, &w->maps) < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    return 0;
}

static void where_vm_free(struct where_vm *w) {
    pveconf_free(&w->conf);
    config_free(&w->cfg);
    sectioncfg_free(&w->maps);
}

static bool where_refuse(struct where_node *wn, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool where_refuse(struct where_node *wn, const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(wn->message, sizeof(wn->message), fmt, ap);
    va_end(ap);
    snprintf(wn->code, sizeof(wn->code), "%s", code);
    wn->can = false;
    return false;
}

/* An item's candidates on the node, as pre-start there would read them; -ENOENT when the VM's
 * mapping lacks the node (wn says so). */
static int where_candidates(
    const struct where_vm *w, const struct node_inv *inv, size_t i, struct place_candidates *c,
    struct where_node *wn
) {
    const struct hostpci *hp = &w->hps[i];
    memset(c, 0, sizeof(*c));
    if (w->managed) {
        return plan_managed_candidates(w->managed, inv->node, c);
    }
    if (hp->mapping[0]) {
        struct pvh_err e = {0};
        int r = mapping_paths(&w->maps, hp->mapping, inv->node, &c->ids, &c->n, &e);
        if (r < 0) {
            where_refuse(wn, "not-mapped", "hostpci%u: %s", hp->index, e.msg);
            return r;
        }
    } else {
        if (!(c->ids = malloc(sizeof(*c->ids)))) {
            return -ENOMEM;
        }
        memcpy(c->ids[0], hp->host[0], sizeof(c->ids[0]));
        c->n = 1;
    }
    for (size_t k = 0; k < c->n; k++) {
        struct nvidia_iface nv;
        if (cluster_vf_iface(inv, c->ids[k], &nv) < 0) {
            continue;
        }
        if ((!c->iface && !(c->iface = calloc(c->n, sizeof(*c->iface)))) ||
            !(c->iface[k] = malloc(sizeof(nv)))) {
            nvidia_iface_free(&nv);
            return -ENOMEM;
        }
        *c->iface[k] = nv;
    }
    return 0;
}

/* After the placement: can that node's qemu-server use the GPU kind, and vgpu_unlock-rs? */
static bool
where_node_features(const struct where_vm *w, const struct node_inv *inv, struct where_node *wn) {
    for (size_t i = 0; i < wn->n; i++) {
        struct pvh_err e = {0};
        if (wn->items[i].action == ACT_PROXMOX && inv->qemu_server[0] &&
            qsrv_require(inv->qemu_server, QSRV_VENDOR_IFACE, NULL, &e) < 0) {
            return where_refuse(wn, e.reason, "%s is a VF, and there %s", wn->items[i].vf, e.msg);
        }
    }
    if (w->unlock && !inv->unlock) {
        return where_refuse(
            wn, "no-vgpu-unlock",
            "the VM has vgpu_unlock-rs settings and vgpu_unlock-rs is not set up "
            "there"
        );
    }
    return true;
}

/* where --migrate, before the placement: Proxmox refuses a live migration to a node the VM's
 * mappings do not list, and cannot live-migrate a device passed without one. */
static bool
where_migrate_mapped(const struct where_vm *w, const char *node, struct where_node *wn) {
    if (w->nitems && !w->hps[0].mdev[0]) {
        return where_refuse(
            wn, "not-mapped",
            "the vGPU is passed through args, which Proxmox cannot live-migrate: attach VM %lu "
            "again on qemu-server %s or later for the mapping form",
            w->vmid, qsrv_since(QSRV_MAPPING_MDEV)
        );
    }
    for (size_t i = 0; i < w->nitems; i++) {
        const struct hostpci *hp = &w->hps[i];
        char(*paths)[16] = NULL;
        size_t np = 0;
        struct pvh_err e = {0};
        if (!hp->mapping[0]) {
            return where_refuse(
                wn, "not-mapped",
                "hostpci%u names %s, not a resource mapping: Proxmox does not live-migrate a "
                "plain PCI device",
                hp->index, hp->host[0]
            );
        }
        int r = mapping_paths(&w->maps, hp->mapping, node, &paths, &np, &e);
        free(paths);
        if (r < 0) {
            return where_refuse(wn, "not-mapped", "hostpci%u: %s", hp->index, e.msg);
        }
    }
    return true;
}

/* Is a SectionConfig boolean value true (as PVE::JSONSchema parses it)? */
static bool where_bool_true(const char *v) {
    return v && (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"));
}

/* where --migrate, once the vGPU fits: the same NVIDIA driver as the VM's node (vGPU migration
 * needs it), mappings flagged live-migration-capable, and a qemu-server that knows the flag. */
static void
where_migrate_live(const struct where_vm *w, const struct node_inv *inv, struct where_node *wn) {
    struct pvh_err e = {0};
    if (!inv->driver[0] || !w->from_driver[0] || strcmp(inv->driver, w->from_driver) != 0) {
        where_refuse(
            wn, "driver-mismatch",
            "NVIDIA driver %s there, %s on %s (the VM's node): a vGPU migrates only between the "
            "same driver",
            inv->driver[0] ? inv->driver : "(unknown)",
            w->from_driver[0] ? w->from_driver : "(unknown)", w->from
        );
        return;
    }
    for (size_t i = 0; i < w->nitems; i++) {
        const struct sectioncfg_section *sec = sectioncfg_find(&w->maps, w->hps[i].mapping);
        if (!sec || !where_bool_true(sectioncfg_get(sec, "live-migration-capable"))) {
            where_refuse(
                wn, "not-live-capable",
                "mapping %s is not marked live-migration-capable, so Proxmox refuses to move the "
                "running VM ('pve-vgpu-hook attach %lu --live-migration' marks ours)",
                w->hps[i].mapping, w->vmid
            );
            return;
        }
    }
    if (qsrv_require(inv->qemu_server, QSRV_LIVE_MIGRATION, NULL, &e) < 0) {
        where_refuse(wn, e.reason, "there %s", e.msg);
    }
}

/* Run pre-start's placement over the node's published model. */
static int
where_place(const struct where_vm *w, const struct node_inv *inv, struct where_node *wn) {
    _cleanup_(inventory_freep) struct host h = {0};
    struct place_candidates cands[HOSTPCI_MAX] = {0};
    int r = cluster_host_model(inv, &h);
    for (size_t i = 0; r == 0 && i < w->nitems; i++) {
        struct planned_mdev *it = &wn->items[i];
        it->index = w->managed ? w->managed->index : w->hps[i].index;
        snprintf(
            it->type_id, sizeof(it->type_id), "%s", w->managed ? w->managed->type : w->hps[i].mdev
        );
        mdev_uuid_for(w->vmid, it->index, it->uuid);
        size_t m = inv_find_mdev(&h, it->uuid);
        if (m != NO_INDEX) {
            it->existing = h.mdevs[m];
        }
        r = where_candidates(w, inv, i, &cands[i], wn);
    }
    wn->n = w->nitems;
    struct placement pl = {
        .cfg = &w->cfg,
        .host = &h,
        .vmid = w->vmid,
        .node = inv->node,
        .managed = w->managed != NULL,
        .items = wn->items,
        .cands = cands,
        .n = w->nitems};
    if (r == 0 && (r = place_vgpus(&pl)) < 0) {
        where_refuse(
            wn, r == -ENODEV ? "not-offered" : "no-room", "cannot place %s: %s",
            wn->items[pl.failed].type_id, pl.why
        );
    }
    for (size_t i = 0; r == 0 && i < wn->n; i++) {
        const struct planned_mdev *it = &wn->items[i];
        snprintf(
            wn->pci[i], sizeof(wn->pci[i]), "%s",
            it->action == ACT_PROXMOX ? it->vf : h.parents[it->parent].bdf
        );
    }
    if (r == 0 && where_node_features(w, inv, wn)) {
        wn->can = true;
        snprintf(wn->code, sizeof(wn->code), "ok");
        if (w->migrate) {
            where_migrate_live(w, inv, wn);
        }
    }
    placement_free(&pl);
    for (size_t i = 0; i < w->nitems; i++) {
        place_candidates_free(&cands[i]);
    }
    return r == -ENOMEM ? r : 0;
}

static int
where_one(const struct where_vm *w, const struct cluster_node *n, struct where_node *wn) {
    snprintf(wn->node, sizeof(wn->node), "%s", n->name);
    if (n->fresh == NODE_OFFLINE) {
        where_refuse(wn, "offline", "the node is offline (%s)", PVE_MEMBERS);
    } else if (n->fresh == NODE_UNPUBLISHED) {
        where_refuse(
            wn, "unpublished",
            "the node has published no vGPU inventory (is pve-vgpu-hook installed "
            "there? 'systemctl start pve-vgpu-hook-publish' there)"
        );
    } else if (n->fresh == NODE_INVALID) {
        where_refuse(wn, "invalid", "its published inventory is refused: %s", n->problem);
    } else if (n->fresh == NODE_STALE) {
        where_refuse(
            wn, "stale",
            "its published inventory is %lld s old: it cannot tell what the node has "
            "now",
            n->age
        );
    } else if (w->migrate && !strcmp(n->name, w->from)) {
        where_refuse(wn, "current-node", "the VM is on this node");
    } else if (!w->migrate || where_migrate_mapped(w, n->name, wn)) {
        return where_place(w, &n->inv, wn);
    }
    return 0;
}

/* The NVIDIA driver of the node the VM is on, as it published it ("" unknown). */
static void where_from_driver(struct where_vm *w, const struct cluster_view *v) {
    for (size_t i = 0; i < v->n; i++) {
        if (!strcmp(v->nodes[i].name, w->from) && v->nodes[i].has_inv) {
            snprintf(w->from_driver, sizeof(w->from_driver), "%s", v->nodes[i].inv.driver);
        }
    }
}

int cluster_where(
    const struct hook_env *env, unsigned long vmid, const struct cluster_view *v, bool migrate,
    struct where_node **out, size_t *n, char *from, size_t from_size, struct pvh_err *e
) {
    struct where_vm w = {.vmid = vmid, .migrate = migrate};
    *out = NULL;
    *n = 0;
    int r = where_vm_load(env, &w, e);
    where_from_driver(&w, v);
    snprintf(from, from_size, "%s", w.from);
    if (r == 0 && !(*out = calloc(v->n ? v->n : 1, sizeof(**out)))) {
        r = err_set(e, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; r == 0 && i < v->n; i++) {
        if ((r = where_one(&w, &v->nodes[i], &(*out)[i])) < 0) {
            err_set(e, r, "out of memory");
        }
        *n = i + 1;
    }
    where_vm_free(&w);
    return r;
}

/* Did the node's (last) published inventory offer type (id or name)? */
static bool gpu_offers_type(const struct ninv_gpu *g, const char *type) {
    for (size_t t = 0; t < g->ntypes; t++) {
        if (vgpu_type_matches(type, g->types[t].id, g->types[t].name)) {
            return true;
        }
    }
    return false;
}

/* Does node n offer type: on any GPU (kind < 0), or on GPUs of NVIDIA's vendor interface (kind
 * 1) or of mdevs (kind 0)? */
static bool node_offers_kind(const struct cluster_node *n, const char *type, int kind) {
    for (size_t g = 0; n->has_inv && g < n->inv.ngpus; g++) {
        const struct ninv_gpu *G = &n->inv.gpus[g];
        if ((kind < 0 || kind == (G->kind == NINV_VENDOR_IFACE)) && gpu_offers_type(G, type)) {
            return true;
        }
    }
    return false;
}

static bool node_offers(const struct cluster_node *n, const char *type) {
    return node_offers_kind(n, type, -1);
}

void cluster_nodes_offering(
    const struct cluster_view *v, const char *type, bool vendor_iface, char *buf, size_t size
) {
    buf[0] = '\0';
    for (size_t i = 0; i < v->n; i++) {
        const struct cluster_node *n = &v->nodes[i];
        if (node_offers_kind(n, type, vendor_iface) && strcmp(n->name, v->self)) {
            str_append(buf, size, "%s%s", buf[0] ? ", " : "", n->name);
        }
    }
}

static bool gpu_has_function(const struct ninv_gpu *g, const char *pci) {
    bool has = !strcmp(g->pci, pci);
    for (size_t f = 0; f < g->nfunctions && !has; f++) {
        has = !strcmp(g->functions[f], pci);
    }
    return has;
}

int cluster_gpu_offers(
    const struct cluster_view *v, const char *node, const char *pci, const char *type,
    struct pvh_err *e
) {
    const struct cluster_node *n = NULL;
    char names[512] = "";
    for (size_t i = 0; i < v->n; i++) {
        n = !strcmp(v->nodes[i].name, node) ? &v->nodes[i] : n;
        str_append(names, sizeof(names), "%s%s", names[0] ? ", " : "", v->nodes[i].name);
    }
    if (!n) {
        err_set(e, -ENOENT, "there is no node %s in the cluster (nodes: %s)", node, names);
        err_hint(e, "name a node as 'pvecm nodes' lists it; nothing was changed");
        return -ENOENT;
    }
    if (!n->has_inv) {
        err_set(e, -ENOENT, "node %s has published no vGPU inventory", node);
        err_hint(
            e,
            "run 'pve-vgpu-hook status' on %s (or wait for its publish timer), then attach "
            "again; nothing was changed",
            node
        );
        return -ENOENT;
    }
    char offering[512] = "";
    bool there = false;
    for (size_t g = 0; g < n->inv.ngpus; g++) {
        const struct ninv_gpu *G = &n->inv.gpus[g];
        if (gpu_has_function(G, pci) && gpu_offers_type(G, type)) {
            return 0;
        }
        there |= gpu_has_function(G, pci);
        if (gpu_offers_type(G, type)) {
            str_append(offering, sizeof(offering), "%s%s", offering[0] ? ", " : "", G->pci);
        }
    }
    if (there) {
        err_set(e, -ENODEV, "GPU %s on node %s does not offer type %s", pci, node, type);
    } else {
        err_set(e, -ENODEV, "node %s has no GPU %s (as it last published)", node, pci);
    }
    if (offering[0]) {
        err_hint(e, "GPUs of %s offering %s: %s; nothing was changed", node, type, offering);
    } else {
        err_hint(
            e,
            "no GPU of %s offers %s ('pve-vgpu-hook status --cluster' lists them); nothing "
            "was changed",
            node, type
        );
    }
    return -ENODEV;
}

/* A node whose data is old, or that is offline, stays allowed when it offered every type of the
 * VM when last seen: what it has now is unknown, and dropping it would make HA move a VM that
 * runs there. */
static bool ha_last_seen_offers(const struct where_vm *w, const struct cluster_node *n) {
    if (n->fresh != NODE_STALE && n->fresh != NODE_OFFLINE) {
        return false;
    }
    for (size_t i = 0; i < w->nitems; i++) {
        if (!node_offers(n, w->managed ? w->managed->type : w->hps[i].mdev)) {
            return false;
        }
    }
    return true;
}

/* The VM's own node stays in its rule when its inventory cannot tell (wn: where said so): a
 * strict rule without it makes HA move the VM away at once. kept: why, in words. */
static bool ha_own_node_kept(
    const struct where_vm *w, const struct cluster_node *n, const struct where_node *wn, char *kept,
    size_t size
) {
    if (strcmp(n->name, w->from) ||
        (n->fresh != NODE_UNPUBLISHED && n->fresh != NODE_INVALID && n->fresh != NODE_STALE)) {
        return false;
    }
    str_msg(kept, size, "%s, the VM's node, kept: %s", n->name, wn->message);
    return true;
}

/* Is node n in the VM's HA rule: it can start the VM, offered its type when last seen, or is
 * the VM's own node and cannot tell. */
static bool ha_node_allowed(
    const struct where_vm *w, const struct cluster_node *n, const struct where_node *wn, char *kept,
    size_t size
) {
    return wn->can || ha_last_seen_offers(w, n) || ha_own_node_kept(w, n, wn, kept, size);
}

static int ha_name_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* names, sorted as Proxmox writes a rule's nodes, comma-separated into buf; never truncated. */
static int ha_join_sorted(const char **names, size_t n, char *buf, size_t size, struct pvh_err *e) {
    qsort(names, n, sizeof(*names), ha_name_cmp);
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(buf + used, size - used, "%s%s", used ? "," : "", names[i]);
        if (k < 0 || (size_t)k >= size - used) {
            return err_set(e, -E2BIG, "too many nodes for one HA rule (%zu)", n);
        }
        used += (size_t)k;
    }
    return 0;
}

int cluster_ha_nodes(
    const struct hook_env *env, unsigned long vmid, const struct cluster_view *v, char *type,
    size_t tsize, char *nodes, size_t nsize, char *kept, size_t ksize, struct pvh_err *e
) {
    struct where_vm w = {.vmid = vmid};
    nodes[0] = type[0] = kept[0] = '\0';
    int r = where_vm_load(env, &w, e);
    if (r == 0) {
        snprintf(type, tsize, "%s", w.managed ? w.managed->type : w.hps[0].mdev);
    }
    struct where_node *wn = r == 0 ? calloc(1, sizeof(*wn)) : NULL;
    const char **names = r == 0 ? calloc(v->n ? v->n : 1, sizeof(*names)) : NULL;
    if (r == 0 && (!wn || !names)) {
        r = err_set(e, -ENOMEM, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; r == 0 && i < v->n; i++) {
        memset(wn, 0, sizeof(*wn));
        if ((r = where_one(&w, &v->nodes[i], wn)) < 0) {
            err_set(e, r, "out of memory");
        } else if (ha_node_allowed(&w, &v->nodes[i], wn, kept, ksize)) {
            names[n++] = v->nodes[i].name;
        }
    }
    if (r == 0) {
        r = ha_join_sorted(names, n, nodes, nsize, e);
    }
    free(names);
    free(wn);
    where_vm_free(&w);
    return r;
}
