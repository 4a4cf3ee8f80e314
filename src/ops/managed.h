/*
 * managed: the commands that edit a VM's settings: managed mode's attach and detach, and tune. The
 * VM names a vGPU type in our JSON settings and passes the mdev to QEMU through args; pre-start
 * places it on any GPU where it fits. Both edit the VM config under Proxmox's VM lock and the
 * settings under pmxcfs' cluster lock, and change the two files all or nothing (see edit_commit in
 * managed.c).
 */
#ifndef PVH_MANAGED_H
#define PVH_MANAGED_H

#include "edit_result.h"
#include "hook.h"
#include "records.h"

#define DEFAULT_HOOKSCRIPT "local:snippets/pve-vgpu-hook"
#define ATTACH_GPUS_MAX 8 /* --gpu options on one attach */

struct attach_request {
    unsigned long vmid;
    const char *type;
    char gpus[ATTACH_GPUS_MAX][PCI_ID_LEN];         /* normalised PCI ids; none = every GPU offering
                                                     * the type */
    char gpu_nodes[ATTACH_GPUS_MAX][NODE_NAME_MAX]; /* each GPU's node (--gpu NODE:PCI); "":
                                                     * this node */
    size_t ngpus;
    int index;              /* -1: keep the current one, or 0 */
    const char *hookscript; /* NULL: DEFAULT_HOOKSCRIPT */
    int live_migration;     /* 0: keep the mapping's flag, 1: set it, -1: clear it */
};

/* attach, detach and tune (also without options) name a VM of this node: 0, or -ENOENT with
 * the one message for every command (-EINVAL for a container). */
int managed_vm_require(const struct hook_env *env, unsigned long vmid, struct pvh_err *e);

/* res: what was done (res->dry_run: would be done, nothing written), for the cli to render. */
int managed_attach(
    const struct hook_env *env, const struct attach_request *req, struct edit_result *res,
    struct pvh_err *e
);
int managed_detach(
    const struct hook_env *env, unsigned long vmid, struct edit_result *res, struct pvh_err *e
);

/* tune: set (K=V), clear (keys; all when none) the VM's params and unlock settings. */
#define TUNE_MAX 32
struct tune_request {
    unsigned long vmid;
    const char *params[TUNE_MAX]; /* "K=V" */
    size_t nparams;
    const char *unlock[TUNE_MAX];
    size_t nunlock;
    bool clear;
    const char *clear_keys[TUNE_MAX];
    size_t nclear;
};
int managed_tune(
    const struct hook_env *env, const struct tune_request *req, struct edit_result *res,
    struct pvh_err *e
);

/* pmxcfs' cluster lock on a file of /etc/pve, taken as cfs_lock_file does (lockdir); *locked
 * stays false where /etc/pve is no pmxcfs (a warning). Release with hostfs_cluster_unlock. */
int managed_cluster_lock(
    const struct hook_env *env, const char *lockdir, const char *file, int timeout_ms, bool *locked,
    struct pvh_warnings *w, struct pvh_err *e
);

/* The hint for a failed write to /etc/pve (quorum lost, pmxcfs full, else), then `then`
 * ("nothing was changed"). */
void managed_write_hint(struct pvh_err *e, int r, const char *then);

/* pci.cfg rewritten under pmxcfs' lock for it: edit turns the text as it is under the lock
 * ("" when there is none) into the new text (*out NULL or the same: nothing to write). 1 when
 * written, 0 when not; a failed write names the file, with the hint for it and then `then`. */
int managed_mapping_rewrite(
    const struct hook_env *env, int timeout_ms,
    int (*edit)(void *ctx, const char *text, char **out, struct pvh_err *e), void *ctx,
    const char *then, struct pvh_warnings *w, struct pvh_err *e
);

/* Pre-start of a VM managed through its resource mapping: this node's map lines into the
 * mapping (recomputed on the file as it is under the lock), before Proxmox reads it. */
int managed_vfmap_write(
    const struct hook_env *env, unsigned long vmid, const char *node, const char *id,
    const char *lines, int timeout_ms, struct pvh_warnings *w, struct pvh_err *e
);

/* cleanup: the stale records (records_find_stale) out of the settings and the stale mappings
 * of ours (mapsync_stale) out of pci.cfg, each under its cluster lock, atomically as attach
 * writes them; dry_run: only found. removed, mappings: what was (would be) removed. */
int managed_remove_stale(
    const struct hook_env *env, bool dry_run, struct vm_warnings *removed,
    struct vm_warnings *mappings, struct pvh_warnings *w, struct pvh_err *e
);

#endif
