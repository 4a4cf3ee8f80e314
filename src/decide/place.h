/*
 * place: which GPU gets each vGPU of a VM. A pure function over the in-memory host model (the
 * GPUs, the driver's available instances, the mdevs and what their VMs are doing, all read
 * beforehand by plan): the allocation policy, hostpci's first-fit or managed mode's pack/spread
 * order, and reclaiming leftovers of stopped VMs only when nothing fits otherwise. No I/O.
 */
#ifndef PVH_PLACE_H
#define PVH_PLACE_H

#include "config.h"
#include "inventory.h"
#include "nvidia_iface.h"
#include "pveconf.h"

#include <stdbool.h>
#include <stddef.h>

enum mdev_action {
    ACT_CREATE,  /* create the device */
    ACT_REUSE,   /* it exists with the right type on the right parent */
    ACT_REPLACE, /* a leftover with this UUID has another type or parent: remove, then create */
    ACT_PROXMOX, /* NVIDIA's vendor interface: Proxmox sets the VF's type itself */
};

struct planned_mdev {
    unsigned index; /* hostpci index (or the managed index) */
    char uuid[MDEV_UUID_LEN + 1];
    char type_id[VGPU_TYPE_MAX]; /* as configured (id or name), then the sysfs id once placed */
    size_t parent;               /* chosen parent in the host model; NO_INDEX for ACT_PROXMOX */
    char vf[PCI_ID_LEN];         /* ACT_PROXMOX: the VF Proxmox will use */
    enum mdev_action action;
    struct inv_mdev existing; /* what holds the UUID now, for REUSE/REPLACE */
};

/* Where one vGPU may go: PCI ids in order (hostpci: host= or the mapping's paths; managed: the
 * node's GPU list, none meaning every GPU offering the type). A candidate that is no mdev
 * parent may be a VF of NVIDIA's vendor interface: iface[i] then holds what it offers. */
struct place_candidates {
    char (*ids)[PCI_ID_LEN];
    struct nvidia_iface **iface; /* per id, NULL when not that interface */
    size_t n;
};
void place_candidates_free(struct place_candidates *c);

struct placement {
    const struct pvh_config *cfg;
    struct host *host; /* the model: the planned devices are added to it as they are placed */
    unsigned long vmid;
    const char *node;
    bool managed;
    struct planned_mdev *items; /* index, uuid, type_id and existing filled by the caller */
    const struct place_candidates *cands;
    size_t n;
    /* results */
    bool *reclaim; /* per host.mdevs index: a leftover to remove first (malloc'ed) */
    size_t failed; /* the item that could not be placed */
    bool saw_vendor_iface;
    char why[2048]; /* why it could not be placed */
};

/* Place every item: 0, or -ENOSPC (no candidate can take it: why says, per candidate) or
 * -ENODEV (no candidate offers the type at all). */
int place_vgpus(struct placement *pl);
void placement_free(struct placement *pl);

/* Managed mode on NVIDIA's vendor interface: the order in which Proxmox should try the VFs of
 * this node (the VM's resource mapping lists them so). Candidate GPUs: those in only (the
 * node's list, a GPU or one of its VFs; none = every GPU) that offer type_id on a free VF or hold
 * it on one; their VFs in address order, the GPUs in the placement order (pack: most VFs in use
 * first; spread: fewest first; ties by address). vfs[i] point into gpus. 0, or -ENODEV when no GPU
 * can. */
int place_vf_order(
    const struct nvidia_gpu *gpus, size_t ngpus, unsigned type_id, const char (*only)[PCI_ID_LEN],
    size_t nonly, enum pvh_placement placement, const char ***vfs, size_t *nvfs
);

#endif
