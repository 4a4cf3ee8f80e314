/*
 * admin: the host-wide admin commands (status, cleanup) as orchestration of the lower layers.
 * They print nothing; cli/report show what they return.
 */
#ifndef PVH_ADMIN_H
#define PVH_ADMIN_H

#include "mistakes.h"
#include "plan.h"
#include "records.h"

#include <stdbool.h>

/* A running VM whose config asks for a vGPU that is not there. */
struct missing_vgpu {
    unsigned long vmid;
    unsigned index;
    char uuid[MDEV_UUID_LEN + 1];
    char type[VGPU_TYPE_MAX];
};

struct host_status {
    char node[NODE_NAME_MAX];
    struct pvh_config cfg; /* the defaults when settings_bad */
    bool settings_bad;     /* the settings file cannot be used: settings says why */
    struct config_error settings;
    struct host host; /* each mdev's state says what its VM does */
    struct missing_vgpu *missing;
    size_t nmissing;
    struct nvidia_gpu *nvidia; /* GPUs on NVIDIA's vendor interface */
    size_t nnvidia;
    struct pvh_warnings warnings;
    struct vm_warnings hookscripts; /* vGPU VMs whose starts will not run this tool */
    struct vm_warnings stale;       /* records of VMs that are gone or replaced */
};

/* Everything `status` shows. */
int admin_status(const struct hook_env *env, struct host_status *st, struct pvh_err *e);
void admin_status_free(struct host_status *st);

enum cleanup_verdict {
    CLEAN_REMOVED,
    CLEAN_WOULD_REMOVE, /* --dry-run */
    CLEAN_KEPT_RUNNING,
    CLEAN_KEPT_BUSY, /* Proxmox holds the VM's lock: a start or stop is under way */
    CLEAN_NOT_OURS,  /* the UUID does not follow the VMID scheme */
    CLEAN_FAILED,
};

struct cleanup_item {
    bool is_vf;           /* a VF's type (NVIDIA's vendor interface), not an mdev */
    struct inv_mdev mdev; /* !is_vf */
    struct vf_holder vf;  /* is_vf */
    enum cleanup_verdict verdict;
    int err; /* for CLEAN_FAILED */
};

/* Remove leftover VMID-pattern mdevs of VMs that are not running, and reset the types left on
 * VFs of NVIDIA's vendor interface that no QEMU uses and no starting or stopping VM names
 * (Proxmox skips its own cleanup on some paths). Reports every mdev and every VF with a type,
 * with what was done. */
int admin_cleanup(
    const struct hook_env *env, bool dry_run, struct cleanup_item **items, size_t *n,
    struct pvh_warnings *w, struct pvh_err *e
);

#endif
