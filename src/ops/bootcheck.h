/*
 * bootcheck: `check --all`: would every onboot vGPU VM of this node come up after a reboot?
 * The node's VMs with onboot set, in Proxmox's boot order, each decided by pre-start's plan on
 * a simulated freshly booted host (bootsim) where the VMs started before hold their vGPUs.
 */
#ifndef PVH_BOOTCHECK_H
#define PVH_BOOTCHECK_H

#include "config.h"
#include "hook_env.h"
#include "log.h"
#include "pveconf.h"
#include "vgpu_type.h"

#include <stdbool.h>
#include <stddef.h>

struct boot_device {
    unsigned index;
    char type[VGPU_TYPE_MAX]; /* the sysfs id (nvidia-<id>) */
    char name[128];           /* "" when unknown */
    char pci[PCI_ID_LEN];     /* the mdev parent or the VF */
    char gpu[PCI_ID_LEN];     /* its physical GPU */
};

/* One onboot vGPU VM, in boot order. */
struct boot_result {
    unsigned long vmid;
    bool has_order;
    long order;
    bool would_start;
    struct boot_device devs[HOSTPCI_MAX];
    size_t ndevs;
    struct pvh_err err; /* why not: reason "refused", "refused-once" or the plan's own code */
    struct pvh_warnings warnings;
};

struct boot_check {
    char node[NODE_NAME_MAX];
    struct boot_result *vms;
    size_t n;
    unsigned long *ha; /* onboot VMs HA starts instead (not simulated) */
    size_t nha;
    struct pvh_warnings warnings; /* the host's, and the boot list's */
    bool all_start;
};

/* env->dry_run must be set (the plan predicts starts). 0, or -errno with e when the host
 * cannot be read at all. */
int bootcheck_run(const struct hook_env *env, struct boot_check *out, struct pvh_err *e);
void bootcheck_free(struct boot_check *c);

#endif
