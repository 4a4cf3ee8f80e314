/*
 * nvidia_iface: NVIDIA's vendor-specific vGPU interface in sysfs (kernel >= 6.8): VFs with
 * nvidia/creatable_vgpu_types and nvidia/current_vgpu_type instead of mdev types.
 */
#ifndef PVH_NVIDIA_IFACE_H
#define PVH_NVIDIA_IFACE_H

#include "hostfs.h"
#include "inventory.h"
#include "mdev.h"

#include <stdbool.h>
#include <stddef.h>

/* NVIDIA's vendor-specific vGPU interface (kernel >= 6.8, qemu-server >= 8.2.5): a VF with
 * nvidia/current_vgpu_type and nvidia/creatable_vgpu_types instead of mdev_supported_types.
 * Proxmox sets the type itself while it builds the QEMU command line. */
struct nvidia_iface_type {
    unsigned id;
    char name[128]; /* "" when the driver's name was unusable */
};
struct nvidia_iface {
    unsigned current;      /* 0: none */
    unsigned long used_by; /* the VM whose QEMU uses the VF (filled by the caller), 0: none */
    struct nvidia_iface_type *creatable; /* malloc'ed: a VF may offer many (H100: MIG too) */
    size_t ncreatable;
};
void nvidia_iface_free(struct nvidia_iface *nv);
/* -ENOENT when bdf does not have that interface. */
int inventory_nvidia_iface(const struct hostfs *fs, const char *bdf, struct nvidia_iface *out);
/* "ID : vGPU Name" header, then "<id> : <name>" lines */
int nvidia_parse_creatable(const char *text, struct nvidia_iface *out);

/* A VF of NVIDIA's vendor interface that holds a vGPU type, and who has it: the VM whose QEMU
 * uses it (its command line names host=<VF>), else the VMs whose config names the VF (a
 * hostpci PCI id, or a mapping path on this node). */
struct vf_holder {
    char bdf[PCI_ID_LEN];
    unsigned type;       /* nvidia/current_vgpu_type */
    unsigned long vmid;  /* the VM using it, or the first VM naming it; 0 when none */
    enum vm_state state; /* VM_RUNNING: a QEMU uses it; VM_BUSY: a VM naming it is starting or
                          * stopping; VM_STOPPED: a leftover type; VM_NOT_OURS: no VM names it and
                          * no QEMU uses it (a leftover too) */
};
/* Reset a VF's type (write 0 to nvidia/current_vgpu_type), as Proxmox does at stop. */
int inventory_vf_reset(const struct hostfs *fs, const char *bdf);

/* Physical GPUs whose VFs use NVIDIA's vendor interface (for types and status). */
struct nvidia_gpu {
    char bdf[PCI_ID_LEN];
    char (*vfs)[PCI_ID_LEN]; /* every VF with the interface, in address order (malloc'ed) */
    size_t nvfs;
    struct vf_holder *used; /* the VFs with a type set, nused of them (malloc'ed) */
    size_t nused;
    bool users_known;            /* used[].vmid and .state were filled (inventory_vf_holders) */
    struct nvidia_iface free_vf; /* what a free VF can take now */
    char free_bdf[PCI_ID_LEN];   /* that VF; "" when none is free */
};
/* Scans /sys/bus/pci/devices for the interface; *out malloc'ed, free with
 * inventory_nvidia_gpus_free. */
int inventory_nvidia_gpus(const struct hostfs *fs, struct nvidia_gpu **out, size_t *n);
void inventory_nvidia_gpus_free(struct nvidia_gpu *gpus, size_t n);
/* Keep only the GPU that bdf names (its PF or one of its VFs), first; free the others. The new
 * count: 1, or 0 when none is named. */
size_t nvidia_gpus_keep(struct nvidia_gpu *gpus, size_t n, const char *bdf);

/* The NVIDIA driver's major version on this host (/sys/module/nvidia/version), 0 unknown. */
unsigned inventory_nvidia_driver_major(const struct hostfs *fs);

#endif
