#include "plan.h"

#include "cleanup.h"
#include "hostpaths.h"
#include "mdevmap.h"
#include "mistakes.h"
#include "qemu_args.h"
#include "qemu_server.h"
#include "readiness.h"
#include "rules.h"
#include "sectioncfg.h"
#include "strutil.h"
#include "toml.h"
#include "tune.h"
#include "vfmap.h"
#include "vmconf.h"
#include "vmstate.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What plan reads at most once per run, for whichever step needs it first. */
struct plan_reads {
    struct vf_holder *vf_holders; /* VFs of NVIDIA's vendor interface with a type */
    size_t nvf_holders;
    bool vf_holders_read;
    char qemu_server[64]; /* installed version; "" before */
    int qemu_server_err;  /* 0, or why it could not be read */
};

bool plan_refuses_once(const struct vm_plan *p) {
    return p->n && p->args_change && !p->migrating;
}

bool plan_would_start(int rc, const struct vm_plan *p) {
    return rc >= 0 && !(rc == 0 && plan_refuses_once(p)) && !p->settings_bad;
}

void plan_free(struct vm_plan *p) {
    pveconf_free(&p->conf);
    config_free(&p->cfg);
    warn_free(&p->warnings);
    inventory_free(&p->host);
    free(p->reclaim);
    if (p->reads) {
        free(p->reads->vf_holders);
    }
    free(p->reads);
    p->reads = NULL;
    free(p->new_args);
    free(p->vfmap_lines);
    free(p->vfmap_text);
    free(p->params);
    free(p->unlock_old);
    free(p->unlock_new);
    free(p->unlock_path);
    p->params = p->unlock_old = p->unlock_new = p->unlock_path = NULL;
    p->reclaim = NULL;
    p->new_args = NULL;
    p->vfmap_lines = p->vfmap_text = NULL;
}

static int load_vm_conf(const struct hook_env *env, struct vm_plan *p, struct pvh_err *e) {
    const char *src = env->migrated_from;
    int r;
    if (src && *src) {
        if (!node_name_valid(src)) {
            return err_set(e, -EINVAL, "PVE_MIGRATED_FROM='%s' is not a node name", src);
        }
        p->migrating = true;
    }
    if ((r = vmconf_path(p->migrating ? src : NULL, p->vmid, p->conf_path, sizeof(p->conf_path))) <
        0) {
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
    /* A cold start applies pending changes before pre-start runs: check predicts that. By
     * pre-start they are applied (or, resuming, not used): the file is what counts then. */
    if (env->dry_run && !p->migrating) {
        r = pveconf_apply_pending(&p->conf);
        if (r < 0) {
            return err_set(e, r, "out of memory");
        }
        if (r > 0) {
            warn_add(
                &p->warnings,
                "%s has pending changes: a start applies them before the hook runs, and this "
                "check assumes that",
                p->conf_path
            );
        }
    }
    pveconf_warn_ignored(&p->conf, p->conf_path, &p->warnings);
    return 0;
}

/* Candidate parents (PCI ids) of a hostpci entry: host= or the mapping's paths on this node. */
static int hostpci_candidates(
    const struct hook_env *env, struct vm_plan *p, const struct hostpci *hp,
    struct place_candidates *c, struct pvh_err *e
) {
    c->ids = NULL;
    c->n = 0;
    if (hp->mapping[0]) {
        _cleanup_free_ char *text = NULL;
        int r = 0;
        if (p->vfmap_id && !strcmp(hp->mapping, p->vfmap_id)) {
            text = strdup(p->vfmap_text); /* as pre-start writes it before Proxmox reads it */
            r = text ? 0 : -ENOMEM;
        } else {
            r = vfmap_read(env->fs, &text, e);
        }
        if (r < 0) {
            return err_prefix(e, "hostpci%u uses mapping '%s': ", hp->index, hp->mapping);
        }
        _cleanup_(sectioncfg_freep) struct sectioncfg cfg = {0};
        if ((r = sectioncfg_parse(text, false, &cfg)) < 0) {
            return err_set(e, r, "out of memory");
        }
        return mapping_paths(&cfg, hp->mapping, p->node, &c->ids, &c->n, e);
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

int plan_managed_candidates(
    const struct vm_settings *vs, const char *node, struct place_candidates *c
) {
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

/* The VM whose QEMU uses a VF (read once per plan, for all VFs with a type). */
static unsigned long vf_user(const struct hook_env *env, struct vm_plan *p, const char *vf) {
    struct plan_reads *rd = p->reads;
    if (!rd->vf_holders_read) {
        rd->vf_holders_read = true;
        (void)inventory_vf_holders(env->fs, &rd->vf_holders, &rd->nvf_holders);
    }
    for (size_t i = 0; i < rd->nvf_holders; i++) {
        if (!strcmp(rd->vf_holders[i].bdf, vf) && rd->vf_holders[i].state == VM_RUNNING) {
            return rd->vf_holders[i].vmid ? rd->vf_holders[i].vmid : ULONG_MAX; /* no -id */
        }
    }
    return 0;
}

/* The GPU of each candidate, loaded into the model; a candidate that is no mdev parent may be
 * a VF of NVIDIA's vendor interface: what it offers is read too. A plain hostpci PCI id that
 * cannot be read refuses the start; a mapping's or a managed list's entry is a warning. */
static int load_candidates(
    const struct hook_env *env, struct vm_plan *p, struct place_candidates *c, bool tolerant,
    unsigned index, struct pvh_err *e
) {
    struct host *h = &p->host;
    for (size_t k = 0; k < c->n; k++) {
        int r = inventory_load_gpu(env->fs, h, c->ids[k], NULL, e);
        if (r < 0 && !tolerant) {
            err_prefix(e, "hostpci%u: ", index);
            err_hint(
                e, "check the PCI id with 'lspci -D | grep -i nvidia'; the GPU may be missing or "
                   "its driver not loaded"
            );
            return r;
        }
        if (r < 0) {
            warn_add(&p->warnings, "candidate %s: %s", c->ids[k], e->msg);
        }
        struct nvidia_iface nv;
        if (inv_find_parent(h, c->ids[k]) != NO_INDEX ||
            (p->sim ? bootsim_vf_iface(p->sim, c->ids[k], &nv)
                    : inventory_nvidia_iface(env->fs, c->ids[k], &nv)) < 0) {
            continue;
        }
        if ((!c->iface && !(c->iface = calloc(c->n, sizeof(*c->iface)))) ||
            !(c->iface[k] = malloc(sizeof(nv)))) {
            nvidia_iface_free(&nv);
            return err_set(e, -ENOMEM, "out of memory");
        }
        nv.used_by = p->sim ? nv.used_by : vf_user(env, p, c->ids[k]);
        *c->iface[k] = nv;
    }
    return 0;
}

/* 1. Each item's UUID, type, candidate PCI ids and current holder of its UUID; the GPUs of the
 * candidates (or all) loaded into the model, what the mdevs' VMs are doing, and what a
 * candidate on NVIDIA's vendor interface offers: everything placement needs, read once. */
static int resolve_items(
    const struct hook_env *env, struct vm_plan *p, const struct hostpci *hps, size_t nitems,
    const struct vm_settings *managed, struct place_candidates *cands, struct pvh_err *e
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
            if (plan_managed_candidates(managed, p->node, &cands[i]) < 0) {
                return err_set(e, -ENOMEM, "out of memory");
            }
            if (cands[i].n == 0 && (r = inventory_load_all(env->fs, h, e)) < 0) {
                return r;
            }
        } else if ((r = hostpci_candidates(env, p, &hps[i], &cands[i], e)) < 0) {
            return r;
        }
        bool tolerant = managed || hps[i].mapping[0];
        if ((r = load_candidates(env, p, &cands[i], tolerant, it->index, e)) < 0) {
            return r;
        }
        /* after a reboot no mdev exists, and the model's devices are of VMs started before */
        if (!p->sim && mdev_lookup(env->fs, it->uuid, &it->existing) < 0) {
            memset(&it->existing, 0, sizeof(it->existing));
        }
    }
    if (!p->sim) {
        inventory_read_vm_states(env->fs, h->mdevs, h->nmdevs);
    }
    return 0;
}

/* Is the reason a GPU that is not ready (no vGPU type because of the host: VFs off, the vfio
 * module missing)? Then that, not "no GPU offers the type", is what to say. Without candidates
 * (managed mode, every GPU), any NVIDIA GPU of the node counts. */
static bool gpu_not_ready(
    const struct hook_env *env, const struct place_candidates *c, struct readiness_problem *why
) {
    for (size_t i = 0; i < c->n; i++) {
        if (readiness_explain_gpu(env->fs, c->ids[i], why) == 0) {
            return true;
        }
    }
    return c->n == 0 && readiness_gpus_not_ready(env->fs, why);
}

/* The refusal as the administrator reads it: the reason per candidate, which other GPUs could
 * take the type (that needs the whole host), and what to do. */
static int explain_refusal(
    const struct hook_env *env, struct vm_plan *p, const struct placement *pl, int rc,
    struct pvh_err *e
) {
    const struct planned_mdev *it = &p->items[pl->failed];
    char where[64];
    snprintf(where, sizeof(where), pl->managed ? "the managed vGPU" : "hostpci%u", it->index);
    if (rc == -ENODEV) {
        err_set(e, rc, "cannot place %s for %s: %s", it->type_id, where, pl->why);
        struct readiness_problem why;
        if (pl->saw_vendor_iface) {
            err_hint(
                e,
                "point %s at a free VF that can take the type ('pve-vgpu-hook types' lists "
                "them), or stop the VM that uses the VF",
                where
            );
        } else if (gpu_not_ready(env, &pl->cands[pl->failed], &why)) {
            err_set(e, rc, "cannot place %s for %s: %s", it->type_id, where, why.what);
            err_hint(e, "%s; 'pve-vgpu-hook doctor' checks the whole host", why.fix);
        } else {
            err_hint(
                e, "load the vGPU driver (is nvidia-vgpu-mgr running?) and check the PCI id with "
                   "'pve-vgpu-hook types'"
            );
        }
        return rc;
    }
    if (rc != -ENOSPC) {
        return err_set(e, rc, "cannot place %s for %s: %s", it->type_id, where, strerror(-rc));
    }
    struct pvh_err le;
    char others[512] = "unknown (the other GPUs cannot be read)";
    if (inventory_load_all(env->fs, &p->host, &le) == 0) {
        rules_other_gpus(&p->cfg, &p->host, it->type_id, others, sizeof(others));
    }
    err_set(
        e, -ENOSPC, "cannot place %s for %s: %s\n  GPUs that could take %s now: %s", it->type_id,
        where, pl->why, it->type_id, others
    );
    if (pl->managed) {
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

/* Gather the items' candidates into the model, then decide where each goes. A refusal on a
 * partial model is not explained: it is decided again on the whole one. */
static int place_items(
    const struct hook_env *env, struct vm_plan *p, const struct hostpci *hps, size_t nitems,
    const struct vm_settings *managed, struct pvh_err *e
) {
    struct place_candidates cands[HOSTPCI_MAX] = {0};
    int r = resolve_items(env, p, hps, nitems, managed, cands, e);
    if (r == 0 && !managed) {
        r = mistakes_type_ids(p, hps, cands, nitems, e);
    }
    struct placement pl = {
        .cfg = &p->cfg,
        .host = &p->host,
        .vmid = p->vmid,
        .node = p->node,
        .managed = managed != NULL,
        .items = p->items,
        .cands = cands,
        .n = nitems};
    if (r == 0 && (r = place_vgpus(&pl)) < 0 && !p->host.partial) {
        r = explain_refusal(env, p, &pl, r, e);
    }
    p->reclaim = TAKE_PTR(pl.reclaim);
    for (size_t i = 0; i < nitems; i++) {
        place_candidates_free(&cands[i]);
    }
    p->n = nitems;
    return r;
}

/* Does a decision taken on a partial model hold? Yes when it only creates or reuses: the
 * driver's count of the asked type said yes, and no other type's count was needed. A refusal,
 * a leftover to reclaim or a device to replace leans on the whole GPU (its mode, what fits). */
static bool plan_partial_holds(const struct vm_plan *p, int r) {
    for (size_t m = 0; r == 0 && p->reclaim && m < p->host.nmdevs; m++) {
        r = p->reclaim[m] ? -EAGAIN : 0;
    }
    for (size_t i = 0; r == 0 && i < p->n; i++) {
        r = p->items[i].action == ACT_REPLACE ? -EAGAIN : 0;
    }
    return r == 0;
}

/* Drop what a decision on the partial model added, before deciding again. */
static void plan_forget_items(struct vm_plan *p, size_t nwarnings) {
    inventory_free(&p->host);
    free(p->reclaim);
    p->reclaim = NULL;
    while (p->warnings.n > nwarnings) {
        free(p->warnings.items[--p->warnings.n]);
    }
}

/* On the way to a start, only the asked types' available_instances are read (a GPU offers
 * dozens per VF); whatever a partial model cannot settle is decided on the whole one. */
static int plan_items(
    const struct hook_env *env, struct vm_plan *p, const struct hostpci *hps, size_t nhp,
    const struct vm_settings *managed, struct pvh_err *e
) {
    size_t nitems = managed ? 1 : nhp, nwarnings = p->warnings.n;
    const char *asked[HOSTPCI_MAX];
    for (size_t i = 0; i < nitems; i++) {
        asked[i] = managed ? managed->type : hps[i].mdev;
    }
    p->host.avail_only = asked;
    p->host.navail_only = nitems;
    int r = place_items(env, p, hps, nitems, managed, e);
    p->host.avail_only = NULL;
    if (p->host.partial && !plan_partial_holds(p, r)) {
        plan_forget_items(p, nwarnings);
        *e = (struct pvh_err){0};
        r = place_items(env, p, hps, nitems, managed, e);
    }
    return r;
}

/* The installed qemu-server version, read once per plan. */
static const char *qemu_server_version(const struct hook_env *env, struct vm_plan *p) {
    struct plan_reads *rd = p->reads;
    if (!rd->qemu_server[0] && !rd->qemu_server_err) {
        rd->qemu_server_err = qsrv_installed(env->fs, rd->qemu_server, sizeof(rd->qemu_server));
    }
    return rd->qemu_server_err ? NULL : rd->qemu_server;
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
            "(hostpci%u on %s) needs %s or later",
            DPKG_STATUS, it->index, it->vf, qsrv_since(QSRV_VENDOR_IFACE)
        );
        return 0;
    }
    if (qsrv_require(ver, QSRV_VENDOR_IFACE, NULL, e) == 0) {
        return 0;
    }
    return err_prefix(
        e, "hostpci%u: %s is a VF, and Proxmox would fail this start: ", it->index, it->vf
    );
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
        if (qsrv_supports(ver, QSRV_PASSES_UUID)) {
            warn_add(
                &p->warnings,
                "\"uuid_args\": \"always\" changes nothing on qemu-server %s: Proxmox appends "
                "its own -uuid after args, and QEMU uses the last one; args left as they are",
                ver
            );
            snprintf(
                p->uuid_reason, sizeof(p->uuid_reason),
                "qemu-server %s passes -uuid itself (since %s)", ver, qsrv_since(QSRV_PASSES_UUID)
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
    if (qsrv_supports(ver, QSRV_PASSES_UUID)) {
        snprintf(
            p->uuid_reason, sizeof(p->uuid_reason), "qemu-server %s passes -uuid itself (since %s)",
            ver, qsrv_since(QSRV_PASSES_UUID)
        );
        return 0;
    }
    snprintf(
        p->uuid_reason, sizeof(p->uuid_reason),
        "qemu-server %s is older than %s and does not pass -uuid for NVIDIA vGPUs", ver,
        qsrv_since(QSRV_PASSES_UUID)
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

/* plan_vf_lines over the given GPUs (this node's now, or check --all's after a reboot). */
static int vf_lines_of(
    const struct hostfs *fs, const struct nvidia_gpu *gpus, size_t ngpus, const char *node,
    unsigned type_id, const char (*only)[PCI_ID_LEN], size_t nonly, enum pvh_placement placement,
    char **lines, size_t *nvfs, struct pvh_err *e
) {
    _cleanup_free_ const char **vfs = NULL;
    *lines = NULL;
    *nvfs = 0;
    int r = place_vf_order(gpus, ngpus, type_id, only, nonly, placement, &vfs, nvfs);
    if (r == 0) {
        r = vfmap_lines_for(fs, node, vfs, *nvfs, lines, e);
    }
    return r;
}

int plan_vf_lines(
    const struct hostfs *fs, const char *node, unsigned type_id, const char (*only)[PCI_ID_LEN],
    size_t nonly, enum pvh_placement placement, char **lines, size_t *nvfs, struct pvh_err *e
) {
    struct nvidia_gpu *gpus = NULL;
    size_t ngpus = 0;
    *lines = NULL;
    *nvfs = 0;
    int r = inventory_nvidia_gpus(fs, &gpus, &ngpus);
    if (r == 0) {
        r = vf_lines_of(fs, gpus, ngpus, node, type_id, only, nonly, placement, lines, nvfs, e);
    }
    inventory_nvidia_gpus_free(gpus, ngpus);
    if (r < 0 && r != -ENODEV && !e->msg[0]) {
        err_set(e, r, "cannot list this node's VFs: %s", strerror(-r));
    }
    return r;
}

int plan_mapping_put(
    const struct hook_env *env, struct vm_plan *p, const char *id, struct pvh_err *e
) {
    _cleanup_free_ char *text = NULL;
    int r = vfmap_read(env->fs, &text, e);
    if (r < 0) {
        return r;
    }
    unsigned sep;
    if ((r = vfmap_put(text, id, p->vmid, p->node, p->vfmap_lines, &p->vfmap_text, &sep)) < 0) {
        return err_set(e, r, "out of memory");
    }
    p->vfmap_changed = !text || strcmp(text, p->vfmap_text) != 0;
    return 0;
}

/* This node's VFs for a VM that managed mode placed through its resource mapping, in the order
 * Proxmox should try them, and pci.cfg with them. */
static int plan_vfmap(
    const struct hook_env *env, struct vm_plan *p, const struct vm_settings *vs,
    const struct hostpci *hps, size_t nhp, struct vm_settings *placed, struct pvh_err *e
) {
    const struct hostpci *hp = NULL;
    for (size_t i = 0; i < nhp; i++) {
        hp = hps[i].index == vs->index && !strcmp(hps[i].mapping, vs->mapping) ? &hps[i] : hp;
    }
    unsigned type_id = 0;
    int used = 0;
    if (!hp || nhp > 1 || sscanf(hp->mdev, "nvidia-%u%n", &type_id, &used) != 1 || hp->mdev[used]) {
        err_set(
            e, -EINVAL,
            "VM %lu is attached through resource mapping '%s', but its config no longer has "
            "just 'hostpci%u: mapping=%s,mdev=nvidia-<id>'",
            p->vmid, vs->mapping, vs->index, vs->mapping
        );
        err_hint(
            e,
            "run 'pve-vgpu-hook attach %lu --type %s' again to restore it, or 'pve-vgpu-hook "
            "detach %lu' and give the VM its vGPU by hand",
            p->vmid, vs->type, p->vmid
        );
        return -EINVAL;
    }
    int r = 0;
    if (p->migrating) { /* Proxmox moves a VM only to a node its mapping lists */
        _cleanup_(place_candidates_free) struct place_candidates listed = {0};
        if ((r = hostpci_candidates(env, p, hp, &listed, e)) < 0) {
            err_reason(e, "not-mapped");
            return r;
        }
    }
    p->vfmap_id = vs->mapping;
    r = mdevmap_pre_start(env, p, vs, hp, placed, e);
    if (r != 0) {
        return r; /* 1: classic mdev GPUs, placed like managed mode's vGPUs */
    }
    _cleanup_(place_candidates_free) struct place_candidates only = {0};
    struct readiness_problem why;
    size_t nvfs;
    r = plan_managed_candidates(vs, p->node, &only);
    if (r == 0 && p->sim) {
        r = vf_lines_of(
            env->fs, p->sim->ifgpus, p->sim->nifgpus, p->node, type_id, only.ids, only.n,
            p->cfg.placement, &p->vfmap_lines, &nvfs, e
        );
        r = r < 0 && r != -ENODEV && !e->msg[0] ? err_set(e, r, "out of memory") : r;
    } else if (r == 0) {
        r = plan_vf_lines(
            env->fs, p->node, type_id, only.ids, only.n, p->cfg.placement, &p->vfmap_lines, &nvfs, e
        );
    }
    if (r == -ENODEV && gpu_not_ready(env, &only, &why)) {
        err_set(
            e, r, "no GPU on node %s can take %s, the vGPU of VM %lu: %s", p->node, vs->type,
            p->vmid, why.what
        );
        err_hint(e, "%s; 'pve-vgpu-hook doctor' checks the whole host", why.fix);
        return r;
    }
    if (r == -ENODEV) {
        err_set(
            e, r, "no GPU on node %s can take %s (nvidia-%u) now, the vGPU of VM %lu", p->node,
            vs->type, type_id, p->vmid
        );
        err_hint(
            e,
            "'pve-vgpu-hook types' shows what each GPU can take and 'status' who uses it; "
            "'pve-vgpu-hook doctor' checks the host%s",
            only.n ? "; the VM may only use the GPUs listed for this node (attach --gpu)" : ""
        );
        return r;
    }
    if (r < 0) {
        return e->msg[0] ? r : err_set(e, r, "out of memory");
    }
    return plan_mapping_put(env, p, vs->mapping, e);
}

int plan_unlock_setup(
    const struct hostfs *fs, unsigned long vmid, const char *node, const char *keys, bool at_tune,
    bool *installed, char **toml, struct pvh_err *e
) {
    _cleanup_free_ char *why = NULL;
    int r = readiness_vgpu_unlock(fs, &why, toml);
    if (r < 0) {
        return err_set(e, r, "out of memory");
    }
    *installed = r == 1;
    if (!keys || *installed) {
        return 0;
    }
    if (at_tune) {
        err_set(
            e, -ENOTSUP,
            "vgpu_unlock settings need vgpu_unlock-rs, but on node %s %s: VM %lu would not start "
            "on this node with them",
            node, why, vmid
        );
        err_hint(
            e,
            "%s, then tune again; without it, NVIDIA's own parameters still work (e.g. --param "
            "frame_rate_limiter=0 for frl_enabled=0); nothing was changed",
            PLAN_UNLOCK_SETUP
        );
        return -ENOTSUP;
    }
    err_set(
        e, -ENOTSUP,
        "VM %lu has vgpu_unlock settings (tune --unlock), but on node %s %s: they would "
        "not apply",
        vmid, node, why
    );
    err_hint(
        e, "%s, or drop the settings: pve-vgpu-hook tune %lu --clear%s", PLAN_UNLOCK_SETUP, vmid,
        keys
    );
    return -ENOTSUP;
}

/* vgpu_unlock's file as pre-start leaves it: our [vm.<vmid>] table written (or removed when
 * the VM has no unlock settings), every other byte kept. Refused: unlock settings on a node
 * without vgpu_unlock-rs, a file vgpu_unlock-rs would fail on, an admin's own table where ours
 * must go (an admin's table of a VM without unlock settings is left alone). */
static int plan_unlock(const struct hook_env *env, struct vm_plan *p, struct pvh_err *e) {
    bool want = p->tuning && p->tuning->nunlock, installed;
    char keys[1024] = ""; /* every key fits: 25 of at most 24 bytes */
    for (size_t i = 0; want && i < p->tuning->nunlock; i++) {
        str_append(keys, sizeof(keys), " %s", p->tuning->unlock[i].key);
    }
    int r = plan_unlock_setup(
        env->fs, p->vmid, p->node, want ? keys : NULL, false, &installed, &p->unlock_path, e
    );
    if (r < 0) {
        return r;
    }
    r = hostfs_read_alloc(env->fs, p->unlock_path, CONFIG_MAX_BYTES, &p->unlock_old, NULL);
    if (r < 0 && r != -ENOENT) {
        err_set(e, r, "cannot read %s: %s", p->unlock_path, strerror(-r));
        err_hint(e, "make it a readable file of root's; vgpu_unlock-rs fails the vGPU otherwise");
        return r;
    }
    if (!installed || (!want && !p->unlock_old)) {
        return 0; /* nothing of ours to write, nobody reads it */
    }
    unsigned major = inventory_nvidia_driver_major(env->fs);
    for (size_t i = 0; want && i < p->tuning->nunlock; i++) {
        const struct tune_kv *kv = &p->tuning->unlock[i];
        bool is_string;
        if ((r = unlock_value_check(kv->key, kv->value, major, &is_string, e)) < 0) {
            err_prefix(e, "VM %lu's vgpu_unlock setting on node %s: ", p->vmid, p->node);
            err_hint(
                e,
                "this node's driver has the shorter fields: shorten it ('pve-vgpu-hook tune %lu "
                "--unlock %s=...')",
                p->vmid, kv->key
            );
            return r;
        }
    }
    const char *text = p->unlock_old ? p->unlock_old : "";
    struct toml_doc d;
    if ((r = toml_parse(text, strlen(text), &d, e)) < 0 ||
        (r = unlock_file_check(&d, text, p->vmid, major, &p->warnings, e)) < 0) {
        toml_free(&d); /* (nothing left after a failed parse) */
        err_prefix(e, "%s: ", p->unlock_path);
        err_hint(
            e, "vgpu_unlock-rs fails every vGPU while the file is invalid: fix that line, then "
               "start the VM"
        );
        return r;
    }
    _cleanup_free_ char *table = want ? tune_unlock_table(p->tuning, p->vmid) : NULL;
    r = want && !table ? err_set(e, -ENOMEM, "out of memory")
                       : unlock_file_put(text, &d, p->vmid, table, &p->unlock_new, e);
    toml_free(&d);
    if (r == -EEXIST) {
        err_prefix(e, "%s: ", p->unlock_path);
    }
    if (r < 0) {
        return r;
    }
    p->unlock_change = strcmp(text, p->unlock_new) != 0;
    if (want && p->n > 1) {
        warn_add(
            &p->warnings,
            "VM %lu has %zu vGPUs; vgpu_unlock-rs keys [vm.%lu] by the last vGPU it saw and can "
            "apply it to the wrong one",
            p->vmid, p->n, p->vmid
        );
    }
    if (want && p->n && p->items[0].index >= 1) {
        warn_add(
            &p->warnings,
            "hostpci index %u: vgpu_unlock-rs before 2.4.1 applies [vm.%lu] to index 0 only",
            p->items[0].index, p->vmid
        );
    }
    return 0;
}

/* The VM's tuning for this start: params for each vGPU, and vgpu_unlock's table. */
static int plan_tuning(const struct hook_env *env, struct vm_plan *p, struct pvh_err *e) {
    const struct vm_settings *vs = config_vm_for(&p->cfg, p->vmid, &p->conf);
    p->tuning = vs && !tuning_empty(&vs->tuning) ? &vs->tuning : NULL;
    if (p->tuning && p->tuning->nparams) {
        if (!(p->params = tune_params_string(p->tuning))) {
            return err_set(e, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < p->n; i++) {
            if (p->items[i].action == ACT_PROXMOX) {
                warn_add(
                    &p->warnings,
                    "index %u is on NVIDIA's vendor interface: Proxmox creates that vGPU after "
                    "pre-start, so its vgpu_params (%s) cannot be written before QEMU opens it; "
                    "not applied",
                    p->items[i].index, p->params
                );
            }
        }
    }
    return plan_unlock(env, p, e);
}

/* A record of an earlier VM with this VMID is never applied: say so, once. */
static void plan_stale_record(struct vm_plan *p) {
    const struct vm_settings *vs = config_vm(&p->cfg, p->vmid);
    char why[512];
    if (vs && config_record_stale(vs, &p->conf, why, sizeof(why))) {
        warn_add_code(
            &p->warnings, "stale-record",
            "%s: ignored (neither its vGPU nor its tuning applies); fix: 'pve-vgpu-hook cleanup' "
            "removes it",
            why
        );
    }
}

/* A live migration's target that cannot take the vGPU through the VM's mapping: the reason,
 * said as a migration's (the type is the one the VM has, never another; the VM stays where it
 * runs). */
static int plan_migration_refused(
    const struct hook_env *env, struct vm_plan *p, const char *type, int r, struct pvh_err *e
) {
    if (!e->reason) {
        err_reason(e, r == -ENOSPC ? "no-room" : r == -ENODEV ? "not-offered" : NULL);
    }
    err_prefix(
        e,
        "VM %lu is live-migrating from %s with vGPU type %s, and node %s cannot take it: ", p->vmid,
        env->migrated_from, type, p->node
    );
    err_hint(
        e,
        "a migration target creates the type the VM has, never another; the migration fails "
        "and VM %lu keeps running on %s: 'pve-vgpu-hook where %lu --migrate' names the nodes "
        "that can take it",
        p->vmid, env->migrated_from, p->vmid
    );
    return r;
}

/* Once placed: the mapping's lines (mdev_map), the vendor interface's and tuning's checks, and
 * QEMU's -uuid (no args in a mapping). */
static int plan_finish(
    const struct hook_env *env, struct vm_plan *p, const struct vm_settings *managed, bool mdev_map,
    struct pvh_err *e
) {
    int r = mdev_map ? mdevmap_plan(env, p, managed, e) : 0;
    if (r == 0) {
        r = check_vendor_iface(env, p, e);
    }
    if (r == 0) {
        r = plan_tuning(env, p, e);
    }
    return r == 0 ? plan_uuid_args(env, p, managed != NULL && !mdev_map, e) : r;
}

static int plan_run(
    const struct hook_env *env, unsigned long vmid, struct bootsim *sim, struct vm_plan *p,
    struct pvh_err *e
) {
    memset(p, 0, sizeof(*p));
    p->vmid = vmid;
    if (!(p->reads = calloc(1, sizeof(*p->reads)))) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    if ((p->sim = sim)) {
        p->host = sim->host; /* borrowed: the caller takes it back */
        memset(&sim->host, 0, sizeof(sim->host));
    }
    node_name(env->fs, p->node, sizeof(p->node));
    /* check shows the rest of the plan with the defaults; pre-start refuses right away */
    enum config_use use = env->dry_run ? CONFIG_USE_SHOW : CONFIG_USE_ACT;
    p->settings_bad = config_load(env, use, &p->cfg, &p->warnings, &p->settings) < 0;
    if (p->settings_bad && !env->dry_run) {
        *e = p->settings.err;
        return e->code;
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
    plan_stale_record(p);
    const struct vm_settings *managed = config_managed_vm_for(&p->cfg, vmid, &p->conf);
    struct vm_settings placed; /* classic mdev GPUs behind the mapping: placed as managed */
    bool mdev_map = false;
    if (managed && managed->mapping) {
        /* Proxmox places it through the VM's resource mapping: a hostpci vGPU from here on */
        if ((r = plan_vfmap(env, p, managed, hps, nhp, &placed, e)) < 0) {
            const char *type = nhp ? hps[0].mdev : managed->type;
            return p->migrating ? plan_migration_refused(env, p, type, r, e) : r;
        }
        mdev_map = r == 1;
        managed = mdev_map ? &placed : NULL;
        nhp = mdev_map ? 0 : nhp;
    }
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
    if ((r = plan_items(env, p, hps, nhp, managed, e)) < 0 && mdev_map && p->migrating) {
        r = plan_migration_refused(env, p, managed->type, r, e);
    } else if (r == 0) {
        r = plan_finish(env, p, managed, mdev_map, e);
    }
    mistakes_plan(env, p); /* also beside a refusal: each is one more thing to fix */
    return r;
}

int plan_pre_start(
    const struct hook_env *env, unsigned long vmid, struct vm_plan *p, struct pvh_err *e
) {
    return plan_run(env, vmid, NULL, p, e);
}

int plan_pre_start_on(
    const struct hook_env *env, unsigned long vmid, struct bootsim *sim, struct vm_plan *p,
    struct pvh_err *e
) {
    return plan_run(env, vmid, sim, p, e);
}
