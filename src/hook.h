/*
 * hook: the hookscript phases, and the admin actions on the host (status, cleanup), as
 * orchestration of the lower layers. pre-start executes plan_pre_start()'s decision under the
 * host-wide lock. Only hook and cli print; everything below returns errors.
 */
#ifndef PVH_HOOK_H
#define PVH_HOOK_H

#include "plan.h"

#include <stdbool.h>

#define HOST_LOCK_PATH "/run/lock/pve-vgpu-hook.lock"
#define HOST_LOCK_TIMEOUT_MS 60000
/* Other hookscripts of the node, run after our own work (Proxmox allows one per VM). */
#define HOOKS_DIR "/etc/pve-vgpu-hook/hooks.d"

/* Run a hookscript phase; returns the process exit status. */
int hook_run(const struct hook_env *env, unsigned long vmid, const char *phase);

/* A running VM whose config asks for a vGPU that is not there. */
struct missing_vgpu {
    unsigned long vmid;
    unsigned index;
    char uuid[MDEV_UUID_LEN + 1];
    char type[128];
};

struct host_status {
    char node[64];
    struct pvh_config cfg;
    struct host host;
    signed char *running; /* per host.mdevs: 1 its VM runs, 0 not, -1 not a VMID UUID */
    struct missing_vgpu *missing;
    size_t nmissing;
    struct nvidia_gpu *nvidia; /* GPUs on NVIDIA's vendor interface */
    size_t nnvidia;
    struct pvh_warnings warnings;
};

/* Everything `status` shows. */
int hook_status(const struct hook_env *env, struct host_status *st, struct pvh_err *e);
void hook_status_free(struct host_status *st);

enum cleanup_verdict {
    CLEAN_REMOVED,
    CLEAN_WOULD_REMOVE, /* --dry-run */
    CLEAN_KEPT_RUNNING,
    CLEAN_KEPT_BUSY, /* Proxmox holds the VM's lock: a start or stop is under way */
    CLEAN_NOT_OURS,  /* the UUID does not follow the VMID scheme */
    CLEAN_FAILED,
};

struct cleanup_item {
    struct inv_mdev mdev;
    enum cleanup_verdict verdict;
    int err; /* for CLEAN_FAILED */
};

/* Remove leftover VMID-pattern mdevs of VMs that are not running (Proxmox skips post-stop on
 * some paths). Reports every mdev on the bus with what was done. */
int hook_cleanup(
    const struct hook_env *env, bool dry_run, struct cleanup_item **items, size_t *n,
    struct pvh_warnings *w, struct pvh_err *e
);

#endif
