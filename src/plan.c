#include "plan.h"

#include "cleanup.h"
#include "debver.h"
#include "paths.h"
#include "qemu_args.h"
#include "rules.h"
#include "sectioncfg.h"
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void node_name(const struct hostfs *fs, char *buf, size_t size) {
    char target[256];
    /* pmxcfs links /etc/pve/local to nodes/<this node> */
    if (hostfs_readlink(fs, PVE_LOCAL_LINK, target, sizeof(target)) > 0) {
        const char *slash = strrchr(target, '/');
        const char *name = slash ? slash + 1 : target;
        if (node_name_valid(name) && str_fmt(buf, size, "%s", name) == 0) {
            return;
        }
    }
    if (hostfs_hostname(fs, buf, size) < 0 || !node_name_valid(buf)) {
        snprintf(buf, size, "localhost");
    }
}

int load_settings(
    const struct hook_env *env, struct pvh_config *cfg, struct pvh_warnings *w, struct pvh_err *e
) {
    const struct hostfs *fs = env->config_path ? env->config_fs : env->fs;
    const char *path = env->config_path ? env->config_path : CONFIG_DEFAULT_PATH;
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = hostfs_read_alloc(fs, path, CONFIG_MAX_BYTES, &text, &len);
    if (r == -ENOENT && !env->config_path) {
        config_defaults(cfg);
        return 0;
    }
    config_defaults(cfg);
    if (r == -ENOENT) {
        err_set(e, r, "the settings file %s (--config) does not exist", path);
        err_hint(
            e, "name an existing file, or leave --config out to use %s (missing means defaults)",
            CONFIG_DEFAULT_PATH
        );
        return r;
    }
    if (r == -EFBIG) {
        return err_set(e, r, "%s is larger than 1 MiB, the pmxcfs limit", path);
    }
    if (r < 0) {
        err_set(e, r, "cannot read %s: %s", path, strerror(-r));
        err_hint(e, "without quorum /etc/pve may be unreadable; check 'pvecm status'");
        return r;
    }
    return config_parse(text, len, path, cfg, w, e);
}

void plan_free(struct vm_plan *p) {
    pveconf_free(&p->conf);
    config_free(&p->cfg);
    warn_free(&p->warnings);
    inventory_free(&p->host);
    free(p->reclaim);
    free(p->new_args);
    p->reclaim = NULL;
    p->new_args = NULL;
}

static int load_vm_conf(const struct hook_env *env, struct vm_plan *p, struct pvh_err *e) {
    const char *src = env->migrated_from;
    int r;
    if (src && *src) {
        if (!node_name_valid(src)) {
            return err_set(e, -EINVAL, "PVE_MIGRATED_FROM='%s' is not a node name", src);
        }
        p->migrating = true;
        r = path_fmt(p->conf_path, sizeof(p->conf_path), PVE_NODE_VM_CONF_FMT, src, p->vmid);
    } else {
        r = path_fmt(p->conf_path, sizeof(p->conf_path), PVE_VM_CONF_FMT, p->vmid);
    }
    if (r < 0) {
        return err_set(e, r, "VM config path too long");
    }
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    r = hostfs_read_alloc(env->fs, p->conf_path, CONFIG_MAX_BYTES, &text, &len);
    if (r == -ENOENT) {
        if (vmid_is_container(env->fs, p->vmid)) {
            return NOT_A_VM;
        }
        err_set(e, -ENOENT, "no VM config %s", p->conf_path);
        err_hint(e, "check the VMID ('qm list'); this node is '%s'", p->node);
        return -ENOENT;
    }
    if (r < 0) {
        err_set(e, r, "cannot read %s: %s", p->conf_path, strerror(-r));
        return r;
    }
    r = pveconf_parse(text, len, &p->conf);
    if (r < 0) {
        return err_set(e, r, "cannot parse %s: %s", p->conf_path, strerror(-r));
    }
    pveconf_warn_ignored(&p->conf, p->conf_path, &p->warnings);
    return 0;
}

/* A leftover that may be removed: another VM's (by UUID) that is neither running nor busy (a
 * VM whose start is under way holds its Proxmox lock: its fresh mdev is not stale). */
static bool is_stale(const struct vm_plan *p, size_t m) {
    const struct inv_mdev *md = &p->host.mdevs[m];
    return inv_mdev_is_leftover(md) && md->vmid != p->vmid;
}

static bool gpu_has_removals(const struct vm_plan *p, const bool *ignore, size_t gpu) {
    for (size_t m = 0; m < p->host.nmdevs; m++) {
        const struct inv_mdev *md = &p->host.mdevs[m];
        if (md->parent != NO_INDEX && p->host.parents[md->parent].gpu == gpu &&
            (p->reclaim[m] || (ignore[m] && md->owned && md->vmid == p->vmid))) {
            return true;
        }
    }
    return false;
}

struct placement_try {
    const struct hook_env *env;
    bool saw_vendor_iface; /* a candidate was a VF of NVIDIA's vendor interface */
    struct vm_plan *p;
    bool *ignore;       /* per host.mdevs index: not counted by the rules (owned here) */
    size_t cap;         /* allocated length of ignore and p->reclaim */
    bool allow_reclaim; /* second pass: removing leftovers of stopped VMs is allowed */
    char why[1024];     /* why the last candidate was refused */
};

/* Keep the per-mdev masks at least as long as the host model's mdev list (which grows when
 * more GPUs are loaded or planned devices are modelled). */
static int grow_masks(struct placement_try *t) {
    size_t want = t->p->host.nmdevs + HOSTPCI_MAX;
    if (t->cap >= want) {
        return 0;
    }
    bool *ni = realloc(t->ignore, want * sizeof(bool));
    if (!ni) {
        return -ENOMEM;
    }
    t->ignore = ni;
    bool *nr = realloc(t->p->reclaim, want * sizeof(bool));
    if (!nr) {
        return -ENOMEM;
    }
    t->p->reclaim = nr;
    memset(ni + t->cap, 0, (want - t->cap) * sizeof(bool));
    memset(nr + t->cap, 0, (want - t->cap) * sizeof(bool));
    t->cap = want;
    return 0;
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

/* Try one candidate parent for an item. true when chosen. */
static bool try_parent(struct placement_try *t, struct planned_mdev *it, size_t parent) {
    struct vm_plan *p = t->p;
    struct host *h = &p->host;
    const struct inv_type *type = inv_parent_type(h, parent, it->type_id);
    size_t gpu = h->parents[parent].gpu;
    if (!type) {
        snprintf(
            t->why, sizeof(t->why), "%s does not offer type %s", h->parents[parent].bdf, it->type_id
        );
        return false;
    }
    const struct inv_typedef *def = inv_def(h, type);
    /* Already there with the right type on this parent: adopt it (Proxmox does the same). */
    if (it->existing.uuid[0] && !strcmp(it->existing.parent_bdf, h->parents[parent].bdf) &&
        !strcmp(it->existing.type_id, def->id)) {
        it->action = ACT_REUSE;
        it->parent = parent;
        snprintf(it->type_id, sizeof(it->type_id), "%s", def->id);
        size_t m = inv_find_mdev(h, it->uuid);
        if (m != NO_INDEX) {
            t->ignore[m] = false;
        }
        return true;
    }
    char why[512];
    bool fits = rules_type_fits(&p->cfg, h, gpu, def, t->ignore, why, sizeof(why));
    bool driver_ok = type->available > 0;
    if ((!fits || !driver_ok) && p->cfg.reclaim_stale && t->allow_reclaim) {
        /* Would it fit, and would the driver offer it, without the leftovers of stopped VMs?
         * Then they go. */
        bool any = false;
        for (size_t m = 0; m < h->nmdevs; m++) {
            const struct inv_mdev *md = &h->mdevs[m];
            if (md->parent != NO_INDEX && h->parents[md->parent].gpu == gpu && !t->ignore[m] &&
                is_stale(p, m)) {
                t->ignore[m] = p->reclaim[m] = any = true;
            }
        }
        bool helps = any && rules_type_fits(&p->cfg, h, gpu, def, t->ignore, NULL, 0) &&
                     offered_once_removed(h, gpu, def, t->ignore, type);
        for (size_t m = 0; any && !helps && m < h->nmdevs; m++) {
            if (p->reclaim[m] && h->parents[h->mdevs[m].parent].gpu == gpu) {
                t->ignore[m] = p->reclaim[m] = false;
            }
        }
        fits = fits || helps;
        driver_ok = driver_ok || helps;
    }
    if (!fits) {
        char hosts[512], fit[512];
        rules_describe_residents(h, gpu, t->ignore, hosts, sizeof(hosts));
        rules_types_fitting(&p->cfg, h, gpu, t->ignore, fit, sizeof(fit));
        str_msg(
            t->why, sizeof(t->why),
            "GPU %s cannot take %s: %s\n  it hosts: %s\n  types that fit there now: %s",
            h->gpus[gpu].bdf, def->name[0] ? def->name : def->id, why, hosts, fit
        );
        return false;
    }
    if (!driver_ok && !gpu_has_removals(p, t->ignore, gpu)) {
        char hosts[512];
        rules_describe_residents(h, gpu, t->ignore, hosts, sizeof(hosts));
        if (type->available_err) {
            str_msg(
                t->why, sizeof(t->why),
                "%s on %s: available_instances is unreadable (%s)\n  it hosts: %s", def->id,
                h->parents[parent].bdf, strerror(-type->available_err), hosts
            );
        } else {
            /* The driver said no; say why it would, as far as the GPU's behaviour shows. */
            char mode[256] = "";
            unsigned hosted = rules_hosted_size(h, gpu, t->ignore);
            if (hosted && hosted != def->info.fb_mib && !def->info.mig &&
                rules_gpu_mode(h, gpu, t->ignore) == GPU_MODE_EQUAL_SIZE) {
                str_msg(
                    mode, sizeof(mode),
                    "\n  the GPU is in equal-size mode: it takes only %u MiB vGPUs while it "
                    "hosts one",
                    hosted
                );
            }
            char fit[512];
            rules_types_fitting(&p->cfg, h, gpu, t->ignore, fit, sizeof(fit));
            str_msg(
                t->why, sizeof(t->why),
                "%s has no available instances of %s (the driver says no: available_instances "
                "is 0)\n  it hosts: %s%s\n  types that fit there now: %s",
                h->parents[parent].bdf, def->name[0] ? def->name : def->id, hosts, mode, fit
            );
        }
        return false;
    }
    it->parent = parent;
    it->action = it->existing.uuid[0] ? ACT_REPLACE : ACT_CREATE;
    snprintf(it->type_id, sizeof(it->type_id), "%s", def->id); /* the sysfs id from now on */
    model_consumed(h, parent, def, t->ignore);
    /* Model the new device so the VM's next vGPU is checked against it. */
    if (it->action == ACT_REPLACE) {
        size_t m = inv_find_mdev(h, it->uuid);
        if (m != NO_INDEX) {
            h->mdevs[m].uuid[0] = '\0'; /* gone once replaced */
        }
    }
    struct inv_mdev *nm = realloc(h->mdevs, (h->nmdevs + 1) * sizeof(*nm));
    if (!nm) {
        snprintf(t->why, sizeof(t->why), "out of memory");
        return false;
    }
    h->mdevs = nm;
    struct inv_mdev *md = &h->mdevs[h->nmdevs++];
    memset(md, 0, sizeof(*md));
    snprintf(md->uuid, sizeof(md->uuid), "%s", it->uuid);
    snprintf(md->type_id, sizeof(md->type_id), "%s", def->id);
    snprintf(md->parent_bdf, sizeof(md->parent_bdf), "%s", h->parents[parent].bdf);
    md->parent = parent;
    md->owned = true;
    md->vmid = p->vmid;
    md->index = it->index;
    return true;
}

/* A candidate without mdev_supported_types may use NVIDIA's vendor interface: then Proxmox
 * sets the type itself, and all we can do is check that the type is creatable there now. */
static bool try_nvidia_iface(
    const struct hook_env *env, struct planned_mdev *it, const char *vf, bool *is_iface, char *why,
    size_t whysize
) {
    struct nvidia_iface nv;
    if (inventory_nvidia_iface(env->fs, vf, &nv) < 0) {
        snprintf(why, whysize, "%s is not a mediated-device parent (no mdev_supported_types)", vf);
        return false;
    }
    *is_iface = true;
    char *end;
    unsigned long want =
        strncmp(it->type_id, "nvidia-", 7) ? 0 : strtoul(it->type_id + 7, &end, 10);
    bool ok = want && want == nv.current;
    char list[512] = "";
    for (size_t i = 0; i < nv.ncreatable; i++) {
        ok |= nv.creatable[i].id == want;
        size_t l = strlen(list);
        snprintf(
            list + l, sizeof(list) - l, "%snvidia-%u (%s)", l ? ", " : "", nv.creatable[i].id,
            nv.creatable[i].name
        );
    }
    if (!ok) {
        snprintf(
            why, whysize,
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

/* PCI ids an item may go to, in order (malloc'ed). */
struct cand_list {
    char (*ids)[PCI_ID_LEN];
    size_t n;
};

/* Candidate parents (PCI ids) of a hostpci entry: host= or the mapping's paths on this node. */
static int hostpci_candidates(
    const struct hook_env *env, struct vm_plan *p, const struct hostpci *hp, struct cand_list *c,
    struct pvh_err *e
) {
    c->ids = NULL;
    c->n = 0;
    if (hp->mapping[0]) {
        _cleanup_free_ char *text = NULL;
        int r = hostfs_read_alloc(env->fs, PVE_PCI_MAPPING_CFG, CONFIG_MAX_BYTES, &text, NULL);
        if (r < 0) {
            err_set(
                e, r, "hostpci%u uses mapping '%s' but %s cannot be read: %s", hp->index,
                hp->mapping, PVE_PCI_MAPPING_CFG, strerror(-r)
            );
            return r;
        }
        struct sectioncfg cfg;
        if ((r = sectioncfg_parse(text, false, &cfg)) < 0) {
            return err_set(e, r, "out of memory");
        }
        r = mapping_paths(&cfg, hp->mapping, p->node, &c->ids, &c->n, e);
        sectioncfg_free(&cfg);
        return r;
    }
    if (hp->nhost > 1) {
        err_set(
            e, -EINVAL, "hostpci%u: a mediated device cannot use a multifunction group (%s;%s)",
            hp->index, hp->host[0], hp->host[1]
        );
        err_hint(
            e, "give one PCI function, e.g. 'hostpci%u: %s,mdev=%s'", hp->index, hp->host[0],
            hp->mdev
        );
        return -EINVAL;
    }
    if (!(c->ids = malloc(sizeof(*c->ids)))) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    memcpy(c->ids[0], hp->host[0], sizeof(c->ids[0]));
    c->n = 1;
    return 0;
}

/* A managed VM's candidate GPUs on this node: its list for this node, else the list for every
 * node (""), else none (= every GPU offering the type). */
static int managed_candidates(const struct vm_settings *vs, const char *node, struct cand_list *c) {
    const struct vm_gpu_list *l = NULL;
    c->ids = NULL;
    c->n = 0;
    for (size_t k = 0; k < vs->nlists; k++) {
        if (!strcmp(vs->lists[k].node, node) || (!vs->lists[k].node[0] && !l)) {
            l = &vs->lists[k];
        }
    }
    if (!l || l->n == 0) {
        return 0;
    }
    if (!(c->ids = malloc(l->n * sizeof(*c->ids)))) {
        return -ENOMEM;
    }
    memcpy(c->ids, l->gpus, l->n * sizeof(*c->ids));
    c->n = l->n;
    return 0;
}

static int explain_refusal(
    struct placement_try *t, const struct planned_mdev *it, bool managed, const char *where,
    struct pvh_err *e
) {
    struct vm_plan *p = t->p;
    struct pvh_err le;
    /* Which other GPUs could take it: that needs the whole host. */
    if (inventory_load_all(t->env->fs, &p->host, &le) == 0 && grow_masks(t) < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    char others[512];
    rules_other_gpus(&p->cfg, &p->host, NO_INDEX, it->type_id, others, sizeof(others));
    err_set(
        e, -ENOSPC, "cannot place %s for %s: %s\n  GPUs that could take %s now: %s", it->type_id,
        where, t->why, it->type_id, others
    );
    if (managed) {
        err_hint(
            e, "stop a VM that holds a candidate GPU ('pve-vgpu-hook status' shows who), "
               "or attach again with another --type or more --gpu"
        );
    } else {
        err_hint(
            e,
            "choose a type that fits, point %s at a GPU listed above, or stop a VM that "
            "holds the GPU ('pve-vgpu-hook status' shows who)",
            where
        );
    }
    return -ENOSPC;
}

/* 1. Each item's UUID, type, candidate PCI ids and current holder of its UUID; the GPUs of the
 * candidates (or all) loaded into the model, and what the mdevs' VMs are doing. */
static int resolve_items(
    const struct hook_env *env, struct vm_plan *p, const struct hostpci *hps, size_t nitems,
    const struct vm_settings *managed, struct cand_list *cands, struct pvh_err *e
) {
    struct host *h = &p->host;
    int r;
    for (size_t i = 0; i < nitems; i++) {
        struct planned_mdev *it = &p->items[i];
        memset(it, 0, sizeof(*it));
        it->index = managed ? managed->index : hps[i].index;
        snprintf(it->type_id, sizeof(it->type_id), "%s", managed ? managed->type : hps[i].mdev);
        mdev_uuid_for(p->vmid, it->index, it->uuid);
        if (managed) {
            if (managed_candidates(managed, p->node, &cands[i]) < 0) {
                return err_set(e, -ENOMEM, "out of memory");
            }
            if (cands[i].n == 0 && (r = inventory_load_all(env->fs, h, e)) < 0) {
                return r;
            }
        } else if ((r = hostpci_candidates(env, p, &hps[i], &cands[i], e)) < 0) {
            return r;
        }
        for (size_t c = 0; c < cands[i].n; c++) {
            if ((r = inventory_load_gpu(env->fs, h, cands[i].ids[c], NULL, e)) < 0) {
                if (!managed && !hps[i].mapping[0]) {
                    err_prefix(e, "hostpci%u: ", it->index);
                    err_hint(
                        e, "check the PCI id with 'lspci -D | grep -i nvidia'; the GPU "
                           "may be missing or its driver not loaded"
                    );
                    return r;
                }
                warn_add(&p->warnings, "candidate %s: %s", cands[i].ids[c], e->msg);
            }
        }
        if (mdev_lookup(env->fs, it->uuid, &it->existing) < 0) {
            memset(&it->existing, 0, sizeof(it->existing));
        }
    }
    inventory_read_vm_states(env->fs, h->mdevs, h->nmdevs);
    return 0;
}

/* "GPU: reason" for a managed candidate that could not take it, details indented below. */
static void append_gpu_refusal(char *whys, size_t size, const char *gpu, const char *why) {
    str_append(whys, size, "\n  %s: ", gpu);
    for (const char *w = why; *w; w++) {
        str_append(whys, size, *w == '\n' ? "\n  " : "%c", *w);
    }
}

/* Managed mode: the candidate GPUs in placement order, each tried on its parents. */
static bool
place_managed(struct placement_try *t, struct planned_mdev *it, size_t *gpus, size_t n) {
    struct host *h = &t->p->host;
    const struct inv_typedef *want = NULL;
    for (size_t q = 0; q < h->nparents && !want; q++) {
        const struct inv_type *ty = inv_parent_type(h, q, it->type_id);
        want = ty ? inv_def(h, ty) : NULL;
    }
    rules_order_candidates(&t->p->cfg, h, gpus, n, want);
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
        snprintf(t->why, sizeof(t->why), "no candidate GPU can take it:%s", whys);
    }
    return placed;
}

/* 2. Place one item: its candidates as parents (hostpci) or GPUs (managed), first without
 * removing anything; only when nothing fits, reclaiming leftovers of stopped VMs. */
static int place_item(
    struct placement_try *t, struct planned_mdev *it, const struct cand_list *cand, bool managed,
    struct pvh_err *e
) {
    struct vm_plan *p = t->p;
    struct host *h = &p->host;
    char where[64];
    snprintf(where, sizeof(where), managed ? "the managed vGPU" : "hostpci%u", it->index);
    _cleanup_free_ size_t *cands = malloc((h->nparents + h->ngpus + 1) * sizeof(*cands));
    size_t n = 0;
    if (!cands) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    if (managed && cand->n == 0) { /* every GPU offering the type */
        for (size_t g = 0; g < h->ngpus; g++) {
            for (size_t q = 0; q < h->nparents; q++) {
                if (h->parents[q].gpu == g && inv_parent_type(h, q, it->type_id)) {
                    cands[n++] = g;
                    break;
                }
            }
        }
    }
    for (size_t c = 0; c < cand->n; c++) {
        size_t q = inv_find_parent(h, cand->ids[c]);
        if (q != NO_INDEX) {
            size_t id = managed ? h->parents[q].gpu : q;
            bool dup = false;
            for (size_t k = 0; k < n; k++) {
                dup |= cands[k] == id;
            }
            if (!dup) {
                cands[n++] = id;
            }
        } else if (!managed) {
            /* no mdev parent: maybe NVIDIA's vendor interface, where Proxmox sets the type */
            if (try_nvidia_iface(
                    t->env, it, cand->ids[c], &t->saw_vendor_iface, t->why, sizeof(t->why)
                )) {
                return 0;
            }
        }
    }
    if (n == 0) {
        if (!t->why[0]) {
            snprintf(t->why, sizeof(t->why), "no GPU on node %s offers %s", p->node, it->type_id);
        }
        err_set(e, -ENODEV, "cannot place %s for %s: %s", it->type_id, where, t->why);
        if (t->saw_vendor_iface) {
            err_hint(
                e,
                "point %s at a free VF that can take the type ('pve-vgpu-hook types' lists "
                "them), or stop the VM that uses the VF",
                where
            );
        } else {
            err_hint(
                e, "load the vGPU driver (is nvidia-vgpu-mgr running?) and check the PCI id with "
                   "'pve-vgpu-hook types'"
            );
        }
        return -ENODEV;
    }
    bool placed = false;
    for (int pass = 0; pass < 2 && !placed; pass++) {
        t->allow_reclaim = pass == 1;
        if (pass == 1 && !p->cfg.reclaim_stale) {
            break;
        }
        if (managed) {
            placed = place_managed(t, it, cands, n);
        }
        /* Like Proxmox: the first candidate where it can be created. */
        for (size_t c = 0; !managed && c < n && !placed; c++) {
            placed = try_parent(t, it, cands[c]);
        }
    }
    int r = placed ? 0 : explain_refusal(t, it, managed, where, e);
    if (grow_masks(t) < 0) {
        r = err_set(e, -ENOMEM, "out of memory");
    }
    return r;
}

/* 3. This VM's devices that no item reuses are leftovers of an earlier config: remove. */
static void mark_own_leftovers(struct vm_plan *p, size_t nitems, const bool *ignore) {
    struct host *h = &p->host;
    for (size_t m = 0; m < h->nmdevs; m++) {
        const struct inv_mdev *md = &h->mdevs[m];
        if (!md->uuid[0] || !md->owned || md->vmid != p->vmid || !ignore[m]) {
            continue;
        }
        bool planned = false;
        for (size_t i = 0; i < nitems; i++) {
            planned |= !strcmp(p->items[i].uuid, md->uuid);
        }
        p->reclaim[m] |= !planned;
    }
}

static int plan_items(
    const struct hook_env *env, struct vm_plan *p, const struct hostpci *hps, size_t nhp,
    const struct vm_settings *managed, struct pvh_err *e
) {
    struct host *h = &p->host;
    size_t nitems = managed ? 1 : nhp;
    struct cand_list cands[HOSTPCI_MAX] = {0};
    struct placement_try t = {.env = env, .p = p};
    int r = resolve_items(env, p, hps, nitems, managed, cands, e);
    /* This VM's own devices do not count against it (reused or replaced). */
    if (r == 0 && grow_masks(&t) < 0) {
        r = err_set(e, -ENOMEM, "out of memory");
    }
    for (size_t m = 0; r == 0 && m < h->nmdevs; m++) {
        t.ignore[m] = h->mdevs[m].owned && h->mdevs[m].vmid == p->vmid;
    }
    for (size_t i = 0; i < nitems && r == 0; i++) {
        r = place_item(&t, &p->items[i], &cands[i], managed != NULL, e);
    }
    if (r == 0) {
        mark_own_leftovers(p, nitems, t.ignore);
    }
    for (size_t i = 0; i < nitems; i++) {
        free(cands[i].ids);
    }
    free(t.ignore);
    p->n = nitems;
    return r;
}

/* A package's installed version: /var/lib/dpkg/status, then the entries dpkg has journaled in
 * updates/ but not merged yet (they are newer: during or after an interrupted run). */
static int installed_version(const struct hostfs *fs, const char *pkg, char *ver, size_t size) {
    _cleanup_free_ char *status = NULL;
    int r = hostfs_read_alloc(fs, DPKG_STATUS, 64 << 20, &status, NULL);
    if (r < 0) {
        return r;
    }
    r = debver_installed(status, pkg, ver, size);
    struct hostfs_list l;
    if (hostfs_list(fs, DPKG_UPDATES_DIR, &l) < 0) {
        return r;
    }
    for (size_t i = 0; i < l.n; i++) { /* names are sequence numbers of equal width */
        char path[PATH_MAX];
        _cleanup_free_ char *text = NULL;
        if (strspn(l.names[i], "0123456789") != strlen(l.names[i]) ||
            path_fmt(path, sizeof(path), DPKG_UPDATES_DIR "/%s", l.names[i]) < 0 ||
            hostfs_read_alloc(fs, path, 1 << 20, &text, NULL) < 0) {
            continue;
        }
        char v[64];
        int jr = debver_installed(text, pkg, v, sizeof(v));
        if (jr == 0) {
            snprintf(ver, size, "%s", v);
        }
        if (jr != -ENOENT) {
            r = jr; /* the journal's word on pkg, installed or not, is the newer one */
        }
    }
    hostfs_list_free(&l);
    return r;
}

/* The installed qemu-server version, read once per plan. */
static const char *qemu_server_version(const struct hook_env *env, struct vm_plan *p) {
    if (!p->qemu_server[0] && !p->qemu_server_err) {
        p->qemu_server_err =
            installed_version(env->fs, "qemu-server", p->qemu_server, sizeof(p->qemu_server));
        if (p->qemu_server_err == 0 && !p->qemu_server[0]) {
            p->qemu_server_err = -ENOENT;
        }
    }
    return p->qemu_server_err ? NULL : p->qemu_server;
}

/* NVIDIA's vendor interface needs qemu-server 8.2.5: older releases fail the start. */
static int check_vendor_iface(const struct hook_env *env, struct vm_plan *p, struct pvh_err *e) {
    const struct planned_mdev *it = NULL;
    for (size_t i = 0; i < p->n && !it; i++) {
        it = p->items[i].action == ACT_PROXMOX ? &p->items[i] : NULL;
    }
    if (!it) {
        return 0;
    }
    const char *ver = qemu_server_version(env, p);
    if (!ver) {
        warn_add(
            &p->warnings,
            "cannot tell the installed qemu-server version (%s); NVIDIA's vendor interface "
            "(hostpci%u on %s) needs 8.2.5 or later",
            DPKG_STATUS, it->index, it->vf
        );
        return 0;
    }
    if (debver_cmp(ver, "8.2.5") >= 0) {
        return 0;
    }
    err_set(
        e, -ENOTSUP,
        "hostpci%u: %s uses NVIDIA's vendor interface (nvidia/current_vgpu_type, kernel 6.8 and "
        "later), which qemu-server %s cannot use: Proxmox would fail this start",
        it->index, it->vf, ver
    );
    err_hint(
        e, "upgrade Proxmox VE to qemu-server 8.2.5 or later ('apt update && apt full-upgrade'), "
           "then start the VM"
    );
    return -ENOTSUP;
}

static int check_managed_args(struct vm_plan *p, const char *cur, struct pvh_err *e) {
    /* The vGPU reaches QEMU only through args, and Proxmox adds no -uuid for it. */
    char dev[128];
    snprintf(dev, sizeof(dev), "vfio-pci,sysfsdev=" SYS_MDEV_DEVICES "/%s", p->items[0].uuid);
    if (args_has_pair(cur, "-device", dev)) {
        return 0;
    }
    err_set(
        e, -EINVAL,
        "VM %lu is attached (managed mode) but its args do not pass " SYS_MDEV_DEVICES
        "/%s to QEMU",
        p->vmid, p->items[0].uuid
    );
    err_hint(
        e,
        "run 'pve-vgpu-hook attach %lu --type %s' again to restore args, or "
        "'pve-vgpu-hook detach %lu'",
        p->vmid, config_vm(&p->cfg, p->vmid)->type, p->vmid
    );
    return -EINVAL;
}

/* Why -uuid must be in args for hostpci mode (uuid_reason), or 0 when it need not. 1: needed. */
static int hostpci_needs_uuid_args(const struct hook_env *env, struct vm_plan *p) {
    const char *ver = qemu_server_version(env, p);
    if (p->cfg.uuid_args == UUID_ARGS_ALWAYS) {
        if (ver && debver_cmp(ver, "7.2-4") >= 0) {
            warn_add(
                &p->warnings,
                "\"uuid_args\": \"always\" changes nothing on qemu-server %s: Proxmox appends "
                "its own -uuid after args, and QEMU uses the last one; args left as they are",
                ver
            );
            snprintf(
                p->uuid_reason, sizeof(p->uuid_reason),
                "qemu-server %s passes -uuid itself (since 7.2-4)", ver
            );
            return 0;
        }
        snprintf(p->uuid_reason, sizeof(p->uuid_reason), "\"uuid_args\": \"always\"");
        return 1;
    }
    if (!ver) {
        warn_add(
            &p->warnings,
            "cannot tell the installed qemu-server version (%s); not checking -uuid in args "
            "(set \"uuid_args\": \"always\" to force it)",
            DPKG_STATUS
        );
        return 0;
    }
    if (debver_cmp(ver, "7.2-4") >= 0) {
        snprintf(
            p->uuid_reason, sizeof(p->uuid_reason),
            "qemu-server %s passes -uuid itself (since 7.2-4)", ver
        );
        return 0;
    }
    snprintf(
        p->uuid_reason, sizeof(p->uuid_reason),
        "qemu-server %s is older than 7.2-4 and does not pass -uuid for NVIDIA vGPUs", ver
    );
    return 1;
}

static int
plan_uuid_args(const struct hook_env *env, struct vm_plan *p, bool managed, struct pvh_err *e) {
    if (p->n == 0) {
        return 0;
    }
    const char *cur = pveconf_get(&p->conf, "args");
    if (managed && check_managed_args(p, cur, e) < 0) {
        return -EINVAL;
    }
    if (p->cfg.uuid_args == UUID_ARGS_NEVER) {
        return 0;
    }
    const struct planned_mdev *first = NULL;
    for (size_t i = 0; i < p->n; i++) {
        const struct planned_mdev *it = &p->items[i];
        if (it->parent == NO_INDEX) {
            continue; /* the vendor interface exists only where Proxmox passes -uuid itself */
        }
        bool nvidia = inv_gpu_is_nvidia(&p->host, p->host.parents[it->parent].gpu);
        if ((nvidia || p->cfg.uuid_args == UUID_ARGS_ALWAYS) &&
            (!first || it->index < first->index)) {
            first = it;
        }
    }
    if (!first) {
        return 0;
    }
    if (managed) {
        snprintf(
            p->uuid_reason, sizeof(p->uuid_reason),
            "managed mode: Proxmox adds no -uuid for a vGPU passed through args"
        );
    } else if (hostpci_needs_uuid_args(env, p) == 0) {
        return 0;
    }
    snprintf(p->want_uuid, sizeof(p->want_uuid), "%s", first->uuid);
    if (p->cfg.uuid_source == UUID_SOURCE_SMBIOS &&
        pveconf_smbios_uuid(&p->conf, p->want_uuid, sizeof(p->want_uuid)) == -EINVAL) {
        warn_add(&p->warnings, "smbios1 has no valid uuid=; using the mdev UUID for -uuid");
    }
    int r = args_with_uuid(cur, p->want_uuid, &p->new_args, &p->args_change);
    if (r == -EINVAL) {
        err_set(
            e, r,
            "args of VM %lu has an unbalanced quote or a dangling backslash, so -uuid %s cannot be "
            "added (%s)",
            p->vmid, p->want_uuid, p->uuid_reason
        );
        err_hint(
            e,
            "Proxmox cannot split such args either: fix them ('qm set %lu --args ...'); "
            "nothing was changed",
            p->vmid
        );
        return r;
    }
    return r < 0 ? err_set(e, r, "out of memory") : 0;
}

int plan_pre_start(
    const struct hook_env *env, unsigned long vmid, struct vm_plan *p, struct pvh_err *e
) {
    memset(p, 0, sizeof(*p));
    p->vmid = vmid;
    config_defaults(&p->cfg);
    node_name(env->fs, p->node, sizeof(p->node));
    int r = load_vm_conf(env, p, e);
    if (r != 0) {
        return r;
    }
    struct hostpci hps[HOSTPCI_MAX];
    size_t nhp = 0;
    unsigned bad = 0;
    if ((r = hostpci_mdev_entries(&p->conf, hps, &nhp, &bad, e)) < 0) {
        err_prefix(e, "%s: ", p->conf_path);
        err_hint(e, "fix the line, e.g. 'hostpci%u: 0000:06:00.0,mdev=nvidia-46'", bad);
        return r;
    }
    config_free(&p->cfg);
    if ((r = load_settings(env, &p->cfg, &p->warnings, e)) < 0) {
        return r;
    }
    const struct vm_settings *managed = config_vm(&p->cfg, vmid);
    if (managed && nhp) {
        err_set(
            e, -EINVAL, "VM %lu has both hostpci%u with mdev= and a managed vGPU in the config",
            vmid, hps[0].index
        );
        err_hint(
            e, "a VM uses one mode: remove the hostpci line or run 'pve-vgpu-hook detach %lu'", vmid
        );
        return -EINVAL;
    }
    if (!managed && nhp == 0) {
        return 0; /* nothing to do: no vGPU */
    }
    if ((r = plan_items(env, p, hps, nhp, managed, e)) < 0 ||
        (r = check_vendor_iface(env, p, e)) < 0) {
        return r;
    }
    return plan_uuid_args(env, p, managed != NULL, e);
}
