/*
 * plan: the pre-start decision, read-only: the VM config, our settings, the candidate GPUs,
 * the rules, leftovers that may be reclaimed, and -uuid in args. `check` prints it; the
 * pre-start phase executes it.
 */
#ifndef PVH_PLAN_H
#define PVH_PLAN_H

#include "bootsim.h"
#include "config.h"
#include "hook_env.h"
#include "hostfs.h"
#include "inventory.h"
#include "log.h"
#include "place.h"
#include "pveconf.h"

#include <stdbool.h>

#define NOT_A_VM 1 /* plan_pre_start: the id is a container: nothing to do */

struct plan_reads; /* what plan reads at most once per run (plan.c's own) */

/* The plan: what was gathered (the decision's input), then what was decided (pre-start acts on
 * it, check reports it). */
struct vm_plan {
    /* ---- gathered ---- */
    unsigned long vmid;
    char node[NODE_NAME_MAX];
    char conf_path[512];
    bool migrating; /* PVE_MIGRATED_FROM set: never write the VM config */
    struct pveconf conf;
    struct pvh_config cfg; /* the defaults when settings_bad */
    bool settings_bad;     /* the settings file cannot be used: settings says why */
    struct config_error settings;
    /* The host model: the candidates' GPUs (placement adds the planned devices to it). */
    struct host host;
    /* tune: the VM's settings, and vgpu_unlock's profile_override.toml as it is now */
    const struct vm_tuning *tuning; /* into cfg; NULL when it has none */
    char *unlock_path;              /* the overrides file vgpu_unlock-rs reads on this node */
    char *unlock_old;               /* the file now; NULL when it does not exist */
    /* Managed mode on NVIDIA's vendor interface: the VM's resource mapping. */
    const char *vfmap_id; /* points into cfg; NULL for other VMs */
    struct plan_reads *reads;

    /* ---- decided ---- */
    struct pvh_warnings warnings;
    struct planned_mdev items[HOSTPCI_MAX];
    size_t n;
    bool *reclaim; /* per host.mdevs index: a stale leftover to remove first */
    /* -uuid in args */
    bool args_change;
    char *new_args;
    char want_uuid[64];
    char uuid_reason[256];
    /* the mapping with this node's VFs in the order Proxmox should try them, as pre-start
     * writes it before Proxmox reads it */
    char *vfmap_lines;  /* this node's map lines */
    char *vfmap_text;   /* /etc/pve/mapping/pci.cfg with them */
    bool vfmap_changed; /* the file does not hold them yet */
    /* tune, as pre-start leaves it */
    char *params;       /* "k=v,k=v" for each vGPU's nvidia/vgpu_params; NULL: none */
    bool unlock_change; /* the file changes (unlock_new; NULL removes nothing) */
    char *unlock_new;
    struct bootsim *sim; /* check --all: the host after a reboot, not sysfs; NULL: sysfs */
};

/* The pre-start decision without changing anything. 0 = would start (or nothing to do: n == 0),
 * NOT_A_VM, or a negative errno with e explaining the refusal; the plan is filled as far as it
 * got either way. */
int plan_pre_start(
    const struct hook_env *env, unsigned long vmid, struct vm_plan *plan, struct pvh_err *e
);
/* The same decision on a simulated host (check --all): sim->host is the model instead of what
 * sysfs has now (no mdev looked up, no VM's state read) and sim's VFs of NVIDIA's vendor
 * interface instead of sysfs'. The model is borrowed: plan->host holds it, with the VM's
 * devices placed, until the caller takes it back (bootcheck). */
int plan_pre_start_on(
    const struct hook_env *env, unsigned long vmid, struct bootsim *sim, struct vm_plan *plan,
    struct pvh_err *e
);
/* The verdict check gives: would this start go through (a refusal, settings that cannot be
 * used and args that must gain -uuid first all fail it)? */
bool plan_would_start(int rc, const struct vm_plan *plan);
void plan_free(struct vm_plan *plan);
/* Managed mode on NVIDIA's vendor interface: the map lines of this node's resource mapping for
 * a type (vfmap_node_lines), its candidate VFs in the order Proxmox should try them
 * (place_vf_order over what the VFs offer now). -ENODEV (e not filled) when no GPU can. */
int plan_vf_lines(
    const struct hostfs *fs, const char *node, unsigned type_id, const char (*only)[PCI_ID_LEN],
    size_t nonly, enum pvh_placement placement, char **lines, size_t *nvfs, struct pvh_err *e
);
/* pci.cfg with this node's map lines (p->vfmap_lines) in mapping id: p->vfmap_text, and
 * whether that changes the file (p->vfmap_changed). */
int plan_mapping_put(
    const struct hook_env *env, struct vm_plan *p, const char *id, struct pvh_err *e
);
/* A managed VM's candidate GPUs on a node: its list for that node, else the list for every
 * node, else none (= every GPU offering the type). -ENOMEM. */
int plan_managed_candidates(
    const struct vm_settings *vs, const char *node, struct place_candidates *c
);
/* Does this start fail once on purpose: args must gain -uuid first, and Proxmox read the
 * config before the hook ran (never during a migration, when the config is not written)? */
bool plan_refuses_once(const struct vm_plan *plan);

/* Unlock settings need vgpu_unlock-rs on the node that starts the VM. *installed: it is set
 * up; *toml: the overrides file it reads (malloc'ed). keys (" k1 k2", NULL when the VM has no
 * unlock settings) while it is not set up: -ENOTSUP, e worded for pre-start or, at_tune, for
 * tune (the VM would not start here). */
#define PLAN_UNLOCK_SETUP                                                                          \
    "set vgpu_unlock-rs up on this node (its README: the LD_PRELOAD drop-in for nvidia-vgpu-mgr)"
int plan_unlock_setup(
    const struct hostfs *fs, unsigned long vmid, const char *node, const char *keys, bool at_tune,
    bool *installed, char **toml, struct pvh_err *e
);

#endif
