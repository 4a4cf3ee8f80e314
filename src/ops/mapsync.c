#include "mapsync.h"

#include "cleanup.h"
#include "hostpaths.h"
#include "managed.h"
#include "mdevmap.h"
#include "plan.h"
#include "sectioncfg.h"
#include "strutil.h"
#include "vfmap.h"
#include "vmconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The hostpci line of conf that passes mapping id, or NULL: the one the VM runs with now
 * (what a migration or HA moves), else the one its next start gets (a running VM converted to
 * the mapping form has it in [PENDING]; conf then has [PENDING] applied). */
static const struct hostpci *
hostpci_of(struct pveconf *conf, const char *id, struct hostpci hps[HOSTPCI_MAX]) {
    for (int next = 0; next < 2; next++) {
        size_t n = 0;
        if (next && pveconf_apply_pending(conf) <= 0) {
            break; /* nothing pending (or no memory to apply it: best effort) */
        }
        (void)hostpci_mdev_entries(conf, hps, &n, NULL, NULL); /* malformed lines: not ours */
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(hps[i].mapping, id) && hps[i].mdev[0]) {
                return &hps[i];
            }
        }
    }
    return NULL;
}

/* This node's map lines for VM vs's mapping id ("" when no device here offers its type).
 * -ENOENT when the VM has no config, or no hostpci line passing the mapping. */
static int node_lines(
    const struct hook_env *env, const struct host_status *st, const struct vm_settings *vs,
    const char *id, char **lines, struct pvh_err *e
) {
    _cleanup_(pveconf_freep) struct pveconf conf = {0};
    _cleanup_(place_candidates_free) struct place_candidates only = {0};
    struct hostpci hps[HOSTPCI_MAX];
    int r = vmconf_find(env->fs, vs->vmid, &conf, NULL, 0);
    const struct hostpci *hp = r == 0 ? hostpci_of(&conf, id, hps) : NULL;
    if (!hp) {
        return r < 0 ? r : -ENOENT;
    }
    if (plan_managed_candidates(vs, st->node, &only) < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    char type_id[VGPU_TYPE_MAX];
    unsigned vtype;
    int used = 0;
    size_t n;
    r = mdevmap_lines(
        env->fs, &st->host, &st->cfg, st->node, hp->mdev, only.ids, only.n, NO_INDEX, type_id,
        sizeof(type_id), lines, &n, e
    );
    if (r == -ENODEV && sscanf(hp->mdev, "nvidia-%u%n", &vtype, &used) == 1 && !hp->mdev[used]) {
        r = plan_vf_lines(
            env->fs, st->node, vtype, only.ids, only.n, st->cfg.placement, lines, &n, e
        );
    }
    if (r == -ENODEV) {
        *lines = strdup("");
        r = *lines ? 0 : err_set(e, -ENOMEM, "out of memory");
    }
    return r;
}

/* pci.cfg text with this node's lines in each mapping of ours; *out NULL when nothing
 * changes. A VM whose lines cannot be worked out keeps the ones it has (a warning). */
static int sync_text(
    const struct hook_env *env, const struct host_status *st, const char *text, char **out,
    struct pvh_warnings *w, struct pvh_err *e
) {
    _cleanup_(sectioncfg_freep) struct sectioncfg c = {0};
    _cleanup_free_ char *cur = strdup(text);
    bool changed = false;
    *out = NULL;
    if (!cur || sectioncfg_parse(text, false, &c) < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < c.n; i++) {
        const struct sectioncfg_section *s = &c.sections[i];
        unsigned long vmid;
        const struct vm_settings *vs =
            vfmap_ours(s, &vmid) ? config_managed_vm(&st->cfg, vmid) : NULL;
        _cleanup_free_ char *lines = NULL, *next = NULL;
        struct pvh_err le = {0};
        unsigned sep;
        if (!vs || !vs->mapping || strcmp(vs->mapping, s->id) != 0) {
            continue; /* no record of it: cleanup's to judge */
        }
        int r = node_lines(env, st, vs, s->id, &lines, &le);
        if (r < 0 && r != -ENOENT) {
            warn_add(
                w, "mapping %s: %s; node %s's lines left as they are", s->id, le.msg, st->node
            );
        }
        if (r < 0 || vfmap_node_same(s, st->node, lines)) {
            continue;
        }
        if (vfmap_put(cur, s->id, vmid, st->node, lines, &next, &sep) < 0) {
            return err_set(e, -ENOMEM, "out of memory");
        }
        free(cur);
        cur = TAKE_PTR(next);
        changed = true;
    }
    *out = changed ? TAKE_PTR(cur) : NULL;
    return 0;
}

struct sync_ctx {
    const struct hook_env *env;
    const struct host_status *st;
    struct pvh_warnings *w;
};

/* sync_text as managed_mapping_rewrite's edit, on the file as it is under the lock (another
 * node may have written it since it was read without). */
static int sync_edit(void *ctx, const char *text, char **out, struct pvh_err *e) {
    const struct sync_ctx *c = ctx;
    return sync_text(c->env, c->st, text, out, c->w, e);
}

int mapsync_node(const struct hook_env *env, const struct host_status *st, struct pvh_err *e) {
    if (st->settings_bad || st->cfg.nvms == 0 || !node_name_valid(st->node)) {
        return 0; /* no record to go by */
    }
    struct pvh_warnings w = {0};
    _cleanup_free_ char *text = NULL, *out = NULL;
    /* first without the lock: taking it is a write pmxcfs replicates too */
    int r = vfmap_read(env->fs, &text, e);
    if (r == 0 && (r = sync_text(env, st, text, &out, &w, e)) == 0 && out) {
        struct sync_ctx c = {.env = env, .st = st, .w = &w};
        r = managed_mapping_rewrite(
            env, st->cfg.lock_timeout_s * 1000, sync_edit, &c,
            "the pve-vgpu-hook-publish timer tries again", &w, e
        );
    }
    log_warnings(&w);
    warn_free(&w);
    if (r < 0) {
        err_prefix(e, "cannot keep node %s's map lines in the vGPU mappings: ", st->node);
        managed_write_hint(e, r, "the pve-vgpu-hook-publish timer tries again");
    }
    return r;
}

/* A coded warning into out when mapping id of VM vmid is stale (*r: -ENOMEM). */
static void stale_why(
    const struct hostfs *fs, const struct pvh_config *cfg, const struct vm_warnings *gone,
    const char *id, unsigned long vmid, struct vm_warnings *out, int *r
) {
    _cleanup_(pveconf_freep) struct pveconf conf = {0};
    struct hostpci hps[HOSTPCI_MAX];
    const struct vm_settings *vs = config_managed_vm(cfg, vmid);
    bool recorded = vs && vs->mapping && !strcmp(vs->mapping, id);
    for (size_t i = 0; recorded && gone && i < gone->w.n; i++) {
        recorded = gone->vmids[i] != vmid;
    }
    int found = vmconf_find(fs, vmid, &conf, NULL, 0);
    size_t before = out->w.n;
    if (found == -ENOENT) {
        warn_add_code(
            &out->w, "vm-missing",
            "mapping %s of %s belongs to VM %lu, which exists on no node; no start uses it", id,
            PVE_PCI_MAPPING_CFG, vmid
        );
    } else if (found == 0 && !recorded && !hostpci_of(&conf, id, hps)) {
        warn_add_code(
            &out->w, "record-missing",
            "mapping %s of %s was made for VM %lu, but the settings no longer record it and the "
            "VM's config does not use it",
            id, PVE_PCI_MAPPING_CFG, vmid
        );
    }
    *r = out->w.n > before ? vm_warnings_vmid(out, vmid) : 0;
}

int mapsync_stale(
    const struct hostfs *fs, const struct pvh_config *cfg, const struct vm_warnings *gone,
    const char *text, struct vm_warnings *out
) {
    _cleanup_(sectioncfg_freep) struct sectioncfg c = {0};
    int r = 0;
    if (hostfs_exists(fs, PVE_NODES_DIR) < 0) {
        return 0; /* no cluster to look for the VMs in: nothing to call stale */
    }
    if (sectioncfg_parse(text, false, &c) < 0) {
        return -ENOMEM;
    }
    for (size_t i = 0; r == 0 && i < c.n; i++) {
        unsigned long vmid;
        if (vfmap_ours(&c.sections[i], &vmid)) {
            stale_why(fs, cfg, gone, c.sections[i].id, vmid, out, &r);
        }
    }
    return r;
}
