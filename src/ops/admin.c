#include "admin.h"

#include "cleanup.h"
#include "hook.h"
#include "hostpaths.h"
#include "leftover.h"
#include "strutil.h"
#include "vmconf.h"
#include "vmstate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void admin_status_free(struct host_status *st) {
    config_free(&st->cfg);
    inventory_free(&st->host);
    free(st->missing);
    inventory_nvidia_gpus_free(st->nvidia, st->nnvidia);
    warn_free(&st->warnings);
    vm_warnings_free(&st->hookscripts);
    vm_warnings_free(&st->stale);
    st->missing = NULL;
    st->nvidia = NULL;
}

/* Is a hostpci entry of vmid on NVIDIA's vendor interface, where no mdev exists by design: it
 * names a VF with that interface, or (a mapping) the VM's QEMU uses such a VF. */
static bool
on_vendor_vf(const struct host_status *st, unsigned long vmid, const struct hostpci *hp) {
    for (size_t g = 0; g < st->nnvidia; g++) {
        const struct nvidia_gpu *G = &st->nvidia[g];
        for (size_t v = 0; v < G->nvfs && hp->nhost; v++) {
            if (!strcmp(G->vfs[v], hp->host[0])) {
                return true;
            }
        }
        for (size_t u = 0; u < G->nused && hp->mapping[0]; u++) {
            if (G->users_known && G->used[u].vmid == vmid && G->used[u].state == VM_RUNNING) {
                return true;
            }
        }
    }
    return false;
}

/* The vGPUs a VM's config asks for: its hostpci mdev entries, or its managed entry. */
static void expected_vgpus(
    const struct hook_env *env, const struct pvh_config *cfg, unsigned long vmid,
    struct host_status *st
) {
    struct pveconf conf;
    if (vmconf_load(env->fs, NULL, vmid, &conf) < 0) {
        return;
    }
    struct missing_vgpu want[HOSTPCI_MAX + 1];
    struct hostpci hps[HOSTPCI_MAX];
    size_t n = 0;
    (void)hostpci_mdev_entries(&conf, hps, &n, NULL, NULL); /* malformed lines are pre-start's */
    const struct vm_settings *vs = config_managed_vm_for(cfg, vmid, &conf);
    pveconf_free(&conf);
    size_t nhps = n;
    n = 0;
    for (size_t i = 0; i < nhps; i++) {
        if (!on_vendor_vf(st, vmid, &hps[i])) {
            want[n] = (struct missing_vgpu){.vmid = vmid, .index = hps[i].index};
            snprintf(want[n++].type, sizeof(want[0].type), "%s", hps[i].mdev);
        }
    }
    if (vs && nhps == 0) {
        want[n] = (struct missing_vgpu){.vmid = vmid, .index = vs->index};
        snprintf(want[n].type, sizeof(want[n].type), "%s", vs->type);
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        char dev[128];
        mdev_uuid_for(vmid, want[i].index, want[i].uuid);
        snprintf(dev, sizeof(dev), SYS_MDEV_DEVICES "/%s", want[i].uuid);
        if (hostfs_exists(env->fs, dev) == 0) {
            continue;
        }
        struct missing_vgpu *nm = realloc(st->missing, (st->nmissing + 1) * sizeof(*nm));
        if (!nm) {
            return;
        }
        st->missing = nm;
        st->missing[st->nmissing++] = want[i];
    }
}

/* Who has each VF of NVIDIA's vendor interface that holds a type: the VM whose QEMU uses it,
 * a VM being started or stopped, or nobody (a type left over). */
static void annotate_vf_users(const struct hook_env *env, struct host_status *st) {
    _cleanup_free_ struct vf_holder *vfs = NULL;
    size_t n = 0;
    if (st->nnvidia == 0 || inventory_vf_holders(env->fs, &vfs, &n) < 0) {
        return;
    }
    for (size_t g = 0; g < st->nnvidia; g++) {
        struct nvidia_gpu *G = &st->nvidia[g];
        for (size_t u = 0; u < G->nused; u++) {
            for (size_t i = 0; i < n; i++) {
                if (!strcmp(G->used[u].bdf, vfs[i].bdf)) {
                    G->used[u] = vfs[i];
                }
            }
        }
        G->users_known = true;
    }
}

int admin_status(const struct hook_env *env, struct host_status *st, struct pvh_err *e) {
    memset(st, 0, sizeof(*st));
    node_name(env->fs, st->node, sizeof(st->node));
    /* settings that cannot be used: the host is still shown, with the defaults */
    st->settings_bad =
        config_load(env, CONFIG_USE_SHOW, &st->cfg, &st->warnings, &st->settings) < 0;
    int r;
    if ((r = inventory_load_all(env->fs, &st->host, e)) < 0) {
        return r;
    }
    if (inventory_nvidia_gpus(env->fs, &st->nvidia, &st->nnvidia) < 0) {
        warn_add(&st->warnings, "cannot scan %s for NVIDIA's vendor interface", SYS_PCI_DEVICES);
    }
    inventory_read_vm_states(env->fs, st->host.mdevs, st->host.nmdevs);
    annotate_vf_users(env, st);
    if (mistakes_node_hookscripts(env, &st->cfg, &st->hookscripts) < 0 ||
        records_find_stale(env->fs, &st->cfg, &st->stale) < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    /* Running VMs of this node whose vGPU is not there. */
    _cleanup_free_ unsigned long *vmids = NULL;
    size_t nvm;
    if (vmconf_list(env->fs, &vmids, &nvm) == 0) {
        for (size_t i = 0; i < nvm; i++) {
            if (vm_is_running(env->fs, vmids[i])) {
                expected_vgpus(env, &st->cfg, vmids[i], st);
            }
        }
    }
    return 0;
}

/* What cleanup does with a vGPU, by the one leftover verdict: true when it is kept (verdict
 * says why), false when it is to be removed. */
static bool cleanup_keeps(struct cleanup_item *it, enum leftover_verdict v) {
    static const enum cleanup_verdict kept[] = {
        [LEFTOVER_NOT_OURS] = CLEAN_NOT_OURS,
        [LEFTOVER_RUNNING] = CLEAN_KEPT_RUNNING,
        [LEFTOVER_BUSY] = CLEAN_KEPT_BUSY,
    };
    if (leftover_removable(v)) {
        return false;
    }
    it->verdict = kept[v];
    return true;
}

/* The VF types of cleanup: reset those no QEMU uses and no busy VM names. */
static int
cleanup_vfs(const struct hook_env *env, bool dry_run, struct cleanup_item **items, size_t *n) {
    _cleanup_free_ struct vf_holder *vfs = NULL;
    size_t nvf = 0;
    int r = inventory_vf_holders(env->fs, &vfs, &nvf);
    if (r < 0 || nvf == 0) {
        return r == -ENOMEM ? r : 0;
    }
    struct cleanup_item *grown = realloc(*items, (*n + nvf) * sizeof(*grown));
    if (!grown) {
        return -ENOMEM;
    }
    *items = grown;
    for (size_t i = 0; i < nvf; i++) {
        struct cleanup_item *it = &grown[(*n)++];
        *it = (struct cleanup_item){.is_vf = true, .vf = vfs[i]};
        if (cleanup_keeps(it, leftover_verdict(true, vfs[i].state, vfs[i].vmid, 0))) {
            continue;
        } else if (dry_run) {
            it->verdict = CLEAN_WOULD_REMOVE;
        } else if ((it->err = inventory_vf_reset(env->fs, vfs[i].bdf)) < 0) {
            it->verdict = CLEAN_FAILED;
        } else {
            it->verdict = CLEAN_REMOVED;
        }
    }
    return 0;
}

int admin_cleanup(
    const struct hook_env *env, bool dry_run, struct cleanup_item **items, size_t *n,
    struct pvh_warnings *w, struct pvh_err *e
) {
    *items = NULL;
    *n = 0;
    /* cleanup uses no setting, but acting on a host whose settings cannot be read is refused
     * like every other action (a --dry-run too: it would not be what cleanup does) */
    struct pvh_config cfg;
    int lock = config_load_to_act(env, &cfg, w, e);
    config_free(&cfg);
    if (lock < 0) {
        return lock;
    }
    lock = -1;
    if (!dry_run && (lock = mdev_host_lock(env->fs, e)) < 0) {
        return lock;
    }
    struct inv_mdev *all = NULL;
    size_t nall = 0;
    int r = mdev_list(env->fs, 0, &all, &nall, w);
    if (r < 0) {
        hostfs_unlock(lock);
        return err_set(e, r, "cannot list %s: %s", SYS_MDEV_DEVICES, strerror(-r));
    }
    struct cleanup_item *out = calloc(nall ? nall : 1, sizeof(*out));
    if (!out) {
        free(all);
        hostfs_unlock(lock);
        return err_set(e, -ENOMEM, "out of memory");
    }
    /* The same states as status shows: a leftover is an mdev of a VM neither running nor busy. */
    inventory_read_vm_states(env->fs, all, nall);
    for (size_t i = 0; i < nall; i++) {
        struct cleanup_item *it = &out[i];
        it->mdev = all[i];
        if (cleanup_keeps(it, leftover_of_mdev(&it->mdev, 0))) {
            continue;
        } else if (dry_run) {
            it->verdict = CLEAN_WOULD_REMOVE;
        } else if ((it->err = mdev_remove(env->fs, it->mdev.uuid)) < 0) {
            it->verdict = CLEAN_FAILED;
        } else {
            it->verdict = CLEAN_REMOVED;
        }
    }
    free(all);
    *items = out;
    *n = nall;
    r = cleanup_vfs(env, dry_run, items, n);
    hostfs_unlock(lock);
    return r < 0 ? err_set(e, r, "out of memory") : 0;
}
