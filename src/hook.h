/*
 * hook: the hookscript phases as orchestration of the lower layers.
 *
 * pre-start is split into a read-only plan (also what `check` shows) and its execution under
 * the host-wide lock. Only hook and cli print; everything below returns errors.
 */
#ifndef PVH_HOOK_H
#define PVH_HOOK_H

#include "config.h"
#include "hostfs.h"
#include "inventory.h"
#include "log.h"
#include "pveconf.h"

#include <stdbool.h>

#define HOST_LOCK_PATH "/run/lock/pve-vgpu-hook.lock"
#define HOST_LOCK_TIMEOUT_MS 60000
/* Other hookscripts of the node, run after our own work (Proxmox allows one per VM). */
#define HOOKS_DIR "/etc/pve-vgpu-hook/hooks.d"

enum mdev_action {
    ACT_CREATE,  /* create the device */
    ACT_REUSE,   /* it exists with the right type on the right parent */
    ACT_REPLACE, /* a leftover with this UUID has another type or parent: remove, then create */
    ACT_PROXMOX, /* NVIDIA's vendor interface: Proxmox sets the VF's type itself */
};

struct planned_mdev {
    unsigned index; /* hostpci index (or the managed index) */
    char uuid[MDEV_UUID_LEN + 1];
    char type_id[128]; /* as configured (id or name), then the sysfs id once placed */
    size_t parent;     /* chosen parent in the host model; NO_INDEX for ACT_PROXMOX */
    char vf[16];       /* ACT_PROXMOX: the VF Proxmox will use */
    enum mdev_action action;
    struct inv_mdev existing; /* what holds the UUID now, for REUSE/REPLACE */
};

struct vm_plan {
    unsigned long vmid;
    char node[64];
    char conf_path[512];
    bool migrating; /* PVE_MIGRATED_FROM set: never write the VM config */
    struct pveconf conf;
    struct pvh_config cfg;
    struct pvh_warnings warnings;
    struct host host;
    struct planned_mdev items[HOSTPCI_MAX];
    size_t n;
    bool *reclaim; /* per host.mdevs index: a stale leftover to remove first */
    size_t nreclaim;
    /* -uuid in args */
    bool args_change;
    char *new_args;
    char want_uuid[64];
    char uuid_reason[256];
};

struct hook_env {
    const struct hostfs *fs;
    const char *config_path;
    const char *migrated_from; /* PVE_MIGRATED_FROM, NULL or "" when not migrating */
};

/* Run a hookscript phase; returns the process exit status. */
int hook_run(const struct hook_env *env, unsigned long vmid, const char *phase);

/* The pre-start decision without changing anything. 0 = would start; the plan is filled either
 * way as far as it got; on refusal e explains. */
int hook_plan(const struct hook_env *env, unsigned long vmid, struct vm_plan *plan,
              struct pvh_err *e);
void hook_plan_free(struct vm_plan *plan);

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
    struct pvh_warnings warnings;
};

/* Everything `status` shows. */
int hook_status(const struct hook_env *env, struct host_status *st, struct pvh_err *e);
void hook_status_free(struct host_status *st);

enum cleanup_verdict {
    CLEAN_REMOVED,
    CLEAN_WOULD_REMOVE, /* --dry-run */
    CLEAN_KEPT_RUNNING,
    CLEAN_KEPT_BUSY,  /* Proxmox holds the VM's lock: a start or stop is under way */
    CLEAN_NOT_OURS,   /* the UUID does not follow the VMID scheme */
    CLEAN_FAILED,
};

struct cleanup_item {
    struct inv_mdev mdev;
    enum cleanup_verdict verdict;
    int err; /* for CLEAN_FAILED */
};

/* Remove leftover VMID-pattern mdevs of VMs that are not running (Proxmox skips post-stop on
 * some paths). Reports every mdev on the bus with what was done. */
int hook_cleanup(const struct hook_env *env, bool dry_run, struct cleanup_item **items, size_t *n,
                 struct pvh_warnings *w, struct pvh_err *e);

/* This node's name: /etc/pve/local's target, else the short host name. */
int hook_node_name(const struct hostfs *fs, char *buf, size_t size);

/* Read our JSON config (defaults when the file is missing). */
int hook_load_config(const struct hook_env *env, struct pvh_config *cfg, struct pvh_warnings *w,
                     struct pvh_err *e);

#endif
