#include "plan.h"

#include "cleanup.h"
#include "debver.h"
#include "rules.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int node_name(const struct hostfs *fs, char *buf, size_t size) {
    char target[256];
    /* pmxcfs links /etc/pve/local to nodes/<this node> */
    if (hostfs_readlink(fs, "/etc/pve/local", target, sizeof(target)) > 0) {
        const char *slash = strrchr(target, '/');
        const char *name = slash ? slash + 1 : target;
        if (*name) {
            return path_fmt(buf, size, "%s", name);
        }
    }
    return hostfs_hostname(fs, buf, size);
}

static bool node_name_valid(const char *s) {
    if (!*s || strlen(s) > 63) {
        return false;
    }
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.') {
            return false;
        }
    }
    return true;
}

int load_settings(
    const struct hook_env *env, struct pvh_config *cfg, struct pvh_warnings *w, struct pvh_err *e
) {
    const char *path = env->config_path ? env->config_path : CONFIG_DEFAULT_PATH;
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = hostfs_read_alloc(env->fs, path, CONFIG_MAX_BYTES, &text, &len);
    if (r == -ENOENT) {
        config_defaults(cfg);
        return 0;
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
        r = path_fmt(
            p->conf_path, sizeof(p->conf_path), "/etc/pve/nodes/%s/qemu-server/%lu.conf", src,
            p->vmid
        );
    } else {
        r = path_fmt(p->conf_path, sizeof(p->conf_path), "/etc/pve/qemu-server/%lu.conf", p->vmid);
    }
    if (r < 0) {
        return err_set(e, r, "VM config path too long");
    }
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    r = hostfs_read_alloc(env->fs, p->conf_path, CONFIG_MAX_BYTES, &text, &len);
    if (r == -ENOENT) {
        char lxc[128];
        snprintf(lxc, sizeof(lxc), "/etc/pve/lxc/%lu.conf", p->vmid);
        if (hostfs_exists(env->fs, lxc) == 0) {
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
    return r < 0 ? err_set(e, r, "cannot parse %s: %s", p->conf_path, strerror(-r)) : 0;
}

/* A leftover that may be removed: another VM's (by UUID) that is neither running nor busy. */
static bool is_stale(const struct hook_env *env, const struct vm_plan *p, size_t m) {
    const struct inv_mdev *md = &p->host.mdevs[m];
    if (!md->owned || md->vmid == p->vmid) {
        return false;
    }
    /* A VM whose start is under way holds its Proxmox lock: its fresh mdev is not stale. */
    return !vm_is_running(env->fs, md->vmid) && !vm_is_busy(env->fs, md->vmid);
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
    if (!fits && p->cfg.reclaim_stale && t->allow_reclaim) {
        /* Would it fit without the leftovers of stopped VMs? Then they go. */
        bool any = false;
        for (size_t m = 0; m < h->nmdevs; m++) {
            const struct inv_mdev *md = &h->mdevs[m];
            if (md->parent != NO_INDEX && h->parents[md->parent].gpu == gpu && !t->ignore[m] &&
                is_stale(t->env, p, m)) {
                t->ignore[m] = p->reclaim[m] = any = true;
            }
        }
        fits = any && rules_type_fits(&p->cfg, h, gpu, def, t->ignore, NULL, 0);
        if (!fits) {
            for (size_t m = 0; any && m < h->nmdevs; m++) {
                if (p->reclaim[m] && h->parents[h->mdevs[m].parent].gpu == gpu) {
                    t->ignore[m] = p->reclaim[m] = false;
                }
            }
        }
    }
    if (!fits) {
        char hosts[512], fit[512];
        rules_describe_residents(h, gpu, t->ignore, hosts, sizeof(hosts));
        rules_types_fitting(&p->cfg, h, gpu, t->ignore, fit, sizeof(fit));
        snprintf(
            t->why, sizeof(t->why),
            "GPU %s cannot take %s: %s\n  it hosts: %s\n  types that fit there now: %s",
            h->gpus[gpu].bdf, def->name[0] ? def->name : def->id, why, hosts, fit
        );
        return false;
    }
    if (type->available <= 0 && !gpu_has_removals(p, t->ignore, gpu)) {
        char hosts[512];
        rules_describe_residents(h, gpu, t->ignore, hosts, sizeof(hosts));
        if (type->available_err) {
            snprintf(
                t->why, sizeof(t->why),
                "%s on %s: available_instances is unreadable (%s)\n  it hosts: %s", def->id,
                h->parents[parent].bdf, strerror(-type->available_err), hosts
            );
        } else {
            snprintf(
                t->why, sizeof(t->why),
                "%s has no available instances of %s (the driver reports 0)\n  it hosts: %s",
                h->parents[parent].bdf, def->name[0] ? def->name : def->id, hosts
            );
        }
        return false;
    }
    it->parent = parent;
    it->action = it->existing.uuid[0] ? ACT_REPLACE : ACT_CREATE;
    snprintf(it->type_id, sizeof(it->type_id), "%s", def->id); /* the sysfs id from now on */
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
    const struct hook_env *env, struct planned_mdev *it, const char *vf, char *why, size_t whysize
) {
    struct nvidia_iface nv;
    if (inventory_nvidia_iface(env->fs, vf, &nv) < 0) {
        snprintf(why, whysize, "%s is not a mediated-device parent (no mdev_supported_types)", vf);
        return false;
    }
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

/* Candidate parents (PCI ids) of a hostpci entry: host= or the mapping's paths on this node. */
static int hostpci_candidates(
    const struct hook_env *env, struct vm_plan *p, const struct hostpci *hp, char cands[][16],
    size_t *n, struct pvh_err *e
) {
    *n = 0;
    if (hp->mapping[0]) {
        _cleanup_free_ char *text = NULL;
        int r =
            hostfs_read_alloc(env->fs, "/etc/pve/mapping/pci.cfg", CONFIG_MAX_BYTES, &text, NULL);
        if (r < 0) {
            err_set(
                e, r,
                "hostpci%u uses mapping '%s' but /etc/pve/mapping/pci.cfg cannot be "
                "read: %s",
                hp->index, hp->mapping, strerror(-r)
            );
            return r;
        }
        return mapping_paths(text, hp->mapping, p->node, cands, 8, n, e);
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
    memcpy(cands[0], hp->host[0], sizeof(cands[0]));
    *n = 1;
    return 0;
}

static int explain_refusal(
    struct placement_try *t, const struct planned_mdev *it, const char *where, struct pvh_err *e
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
    if (!strcmp(where, "the managed vGPU")) {
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

static int plan_items(
    const struct hook_env *env, struct vm_plan *p, struct hostpci *hps, size_t nhp,
    const struct vm_settings *managed, struct pvh_err *e
) {
    struct host *h = &p->host;
    char cands[HOSTPCI_MAX][8][16];
    size_t ncand[HOSTPCI_MAX] = {0};
    size_t nitems = managed ? 1 : nhp;
    int r;

    /* 1. Resolve candidate parents and load only their GPUs. */
    for (size_t i = 0; i < nitems; i++) {
        struct planned_mdev *it = &p->items[i];
        memset(it, 0, sizeof(*it));
        it->index = managed ? managed->index : hps[i].index;
        snprintf(it->type_id, sizeof(it->type_id), "%s", managed ? managed->type : hps[i].mdev);
        mdev_uuid_for(p->vmid, it->index, it->uuid);
        if (managed) {
            const struct vm_gpu_list *l = NULL;
            for (size_t k = 0; k < managed->nlists; k++) {
                if (!strcmp(managed->lists[k].node, p->node) ||
                    (!managed->lists[k].node[0] && !l)) {
                    l = &managed->lists[k];
                }
            }
            if (l) {
                for (size_t k = 0; k < l->n && k < 8; k++) {
                    memcpy(cands[i][ncand[i]++], l->gpus[k], 16);
                }
            } else if ((r = inventory_load_all(env->fs, h, e)) < 0) {
                return r;
            }
        } else if ((r = hostpci_candidates(env, p, &hps[i], cands[i], &ncand[i], e)) < 0) {
            return r;
        }
        for (size_t c = 0; c < ncand[i]; c++) {
            if ((r = inventory_load_gpu(env->fs, h, cands[i][c], NULL, e)) < 0) {
                if (!managed && !hps[i].mapping[0]) {
                    err_prefix(e, "hostpci%u: ", it->index);
                    err_hint(
                        e, "check the PCI id with 'lspci -D | grep -i nvidia'; the GPU "
                           "may be missing or its driver not loaded"
                    );
                    return r;
                }
                warn_add(&p->warnings, "candidate %s: %s", cands[i][c], e->msg);
            }
        }
        int lr = inventory_mdev_lookup(env->fs, it->uuid, &it->existing);
        if (lr < 0) {
            memset(&it->existing, 0, sizeof(it->existing));
        }
    }
    /* 2. Masks: this VM's own devices do not count against it (reused or replaced). */
    struct placement_try t = {.env = env, .p = p};
    if (grow_masks(&t) < 0) {
        free(t.ignore);
        return err_set(e, -ENOMEM, "out of memory");
    }
    for (size_t m = 0; m < h->nmdevs; m++) {
        if (h->mdevs[m].owned && h->mdevs[m].vmid == p->vmid) {
            t.ignore[m] = true;
        }
    }
    r = 0;
    for (size_t i = 0; i < nitems && r == 0; i++) {
        struct planned_mdev *it = &p->items[i];
        char where[64];
        snprintf(where, sizeof(where), managed ? "the managed vGPU" : "hostpci%u", it->index);
        size_t parents[64];
        size_t np = 0;
        if (managed && ncand[i] == 0) {
            /* every GPU offering the type */
            for (size_t g = 0; g < h->ngpus && np < 64; g++) {
                for (size_t q = 0; q < h->nparents; q++) {
                    if (h->parents[q].gpu == g && inv_parent_type(h, q, it->type_id)) {
                        parents[np++] = g;
                        break;
                    }
                }
            }
        } else {
            bool delegated = false;
            for (size_t c = 0; c < ncand[i] && np < 64 && !delegated; c++) {
                size_t q = inv_find_parent(h, cands[i][c]);
                if (q == NO_INDEX) {
                    delegated = try_nvidia_iface(env, it, cands[i][c], t.why, sizeof(t.why));
                    continue;
                }
                parents[np++] = managed ? h->parents[q].gpu : q;
            }
            if (delegated) {
                continue;
            }
        }
        if (np == 0) {
            if (!t.why[0]) {
                snprintf(t.why, sizeof(t.why), "no GPU on node %s offers %s", p->node, it->type_id);
            }
            err_set(e, -ENODEV, "cannot place %s for %s: %s", it->type_id, where, t.why);
            err_hint(
                e, "load the vGPU driver (is nvidia-vgpu-mgr running?) and check the PCI "
                   "id with 'pve-vgpu-hook types'"
            );
            r = -ENODEV;
            break;
        }
        bool placed = false;
        /* Pass 1 places without removing anything; only when no candidate fits does pass 2
         * reclaim leftovers of stopped VMs (never destroy what a free GPU makes needless). */
        for (int pass = 0; pass < 2 && !placed; pass++) {
            t.allow_reclaim = pass == 1;
            if (pass == 1 && !p->cfg.reclaim_stale) {
                break;
            }
            if (managed) {
                const struct inv_typedef *want = NULL;
                for (size_t q = 0; q < h->nparents && !want; q++) {
                    const struct inv_type *ty = inv_parent_type(h, q, it->type_id);
                    want = ty ? inv_def(h, ty) : NULL;
                }
                rules_order_candidates(&p->cfg, h, parents, np, want);
                /* Each candidate GPU in order; one line per refusal, so that the error can say
                 * why every one of them could not take it. */
                char whys[2048] = "";
                for (size_t c = 0; c < np && !placed; c++) {
                    bool tried = false, any_type = false;
                    for (size_t q = 0; q < h->nparents && !placed; q++) {
                        const struct inv_type *ty = h->parents[q].gpu == parents[c]
                                                        ? inv_parent_type(h, q, it->type_id)
                                                        : NULL;
                        any_type |= ty != NULL;
                        /* a VF without an instance: the next VF of the same GPU may have one */
                        if (ty && (ty->available > 0 || !h->parents[q].is_vf || !tried)) {
                            tried = true;
                            placed = try_parent(&t, it, q);
                        }
                    }
                    if (!placed) {
                        /* "GPU: reason", its detail lines indented below it */
                        size_t wl = strlen(whys);
                        snprintf(whys + wl, sizeof(whys) - wl, "\n  %s: ", h->gpus[parents[c]].bdf);
                        for (const char *w = any_type ? t.why : "does not offer this type"; *w;
                             w++) {
                            wl = strlen(whys);
                            snprintf(whys + wl, sizeof(whys) - wl, *w == '\n' ? "\n  " : "%c", *w);
                        }
                    }
                }
                if (!placed && whys[0]) {
                    snprintf(t.why, sizeof(t.why), "no candidate GPU can take it:%s", whys);
                }
            } else {
                /* Like Proxmox: the first candidate where it can be created. */
                for (size_t c = 0; c < np && !placed; c++) {
                    placed = try_parent(&t, it, parents[c]);
                }
            }
        }
        if (!placed) {
            r = explain_refusal(&t, it, where, e);
        }
        if (grow_masks(&t) < 0) {
            r = err_set(e, -ENOMEM, "out of memory");
        }
    }
    /* 3. This VM's devices that no item reuses are leftovers of an earlier config: remove. */
    for (size_t m = 0; r == 0 && m < h->nmdevs; m++) {
        const struct inv_mdev *md = &h->mdevs[m];
        if (!md->uuid[0] || !md->owned || md->vmid != p->vmid || !t.ignore[m]) {
            continue;
        }
        bool planned = false;
        for (size_t i = 0; i < nitems; i++) {
            planned |= !strcmp(p->items[i].uuid, md->uuid);
        }
        if (!planned) {
            p->reclaim[m] = true;
        }
    }
    free(t.ignore);
    p->n = nitems;
    return r;
}

/* A package's installed version: /var/lib/dpkg/status, then the entries dpkg has journaled in
 * updates/ but not merged yet (they are newer: during or after an interrupted run). */
static int installed_version(const struct hostfs *fs, const char *pkg, char *ver, size_t size) {
    _cleanup_free_ char *status = NULL;
    int r = hostfs_read_alloc(fs, "/var/lib/dpkg/status", 64 << 20, &status, NULL);
    if (r < 0) {
        return r;
    }
    r = debver_installed(status, pkg, ver, size);
    struct hostfs_list l;
    if (hostfs_list(fs, "/var/lib/dpkg/updates", &l) < 0) {
        return r;
    }
    for (size_t i = 0; i < l.n; i++) { /* names are sequence numbers of equal width */
        char path[PATH_MAX];
        _cleanup_free_ char *text = NULL;
        if (strspn(l.names[i], "0123456789") != strlen(l.names[i]) ||
            path_fmt(path, sizeof(path), "/var/lib/dpkg/updates/%s", l.names[i]) < 0 ||
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

static int
plan_uuid_args(const struct hook_env *env, struct vm_plan *p, bool managed, struct pvh_err *e) {
    if (p->n == 0) {
        return 0;
    }
    char args[8192];
    const char *cur = pveconf_get(&p->conf, "args", args, sizeof(args));
    if (managed) {
        /* The vGPU reaches QEMU only through args, and Proxmox adds no -uuid for it. */
        char dev[128];
        snprintf(dev, sizeof(dev), "sysfsdev=/sys/bus/mdev/devices/%s", p->items[0].uuid);
        if (!cur || !strstr(cur, dev)) {
            err_set(
                e, -EINVAL,
                "VM %lu is attached (managed mode) but its args do not pass "
                "/sys/bus/mdev/devices/%s to QEMU",
                p->vmid, p->items[0].uuid
            );
            err_hint(
                e,
                "run 'pve-vgpu-hook attach %lu --type ...' again to restore args, or "
                "'pve-vgpu-hook detach %lu'",
                p->vmid, p->vmid
            );
            return -EINVAL;
        }
        if (p->cfg.uuid_args == UUID_ARGS_NEVER) {
            return 0;
        }
        snprintf(
            p->uuid_reason, sizeof(p->uuid_reason),
            "managed mode: Proxmox adds no -uuid for a vGPU passed through args"
        );
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
    if (p->cfg.uuid_args == UUID_ARGS_AUTO && !managed) {
        char ver[64];
        if (installed_version(env->fs, "qemu-server", ver, sizeof(ver)) < 0) {
            warn_add(
                &p->warnings,
                "cannot tell the installed qemu-server version (/var/lib/dpkg/status); "
                "not checking -uuid in args (set \"uuid_args\": \"always\" to force it)"
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
    } else if (!managed) {
        snprintf(p->uuid_reason, sizeof(p->uuid_reason), "\"uuid_args\": \"always\"");
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
            "Proxmox cannot split such args either: fix them, e.g. qm set %lu --args "
            "'...'; nothing was changed",
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
    if (node_name(env->fs, p->node, sizeof(p->node)) < 0) {
        snprintf(p->node, sizeof(p->node), "localhost");
    }
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
    if ((r = plan_items(env, p, hps, nhp, managed, e)) < 0) {
        return r;
    }
    return plan_uuid_args(env, p, managed != NULL, e);
}
