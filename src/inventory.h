/*
 * inventory: the host model, built from sysfs through hostfs.
 *
 * Physical GPUs, their mdev parents (the GPU itself, or its SR-IOV virtual functions grouped
 * under the physical function), the types each parent offers, and the active mdevs with the
 * VM that owns them (from the UUID scheme). Also: is a VM running or busy?
 */
#ifndef PVH_INVENTORY_H
#define PVH_INVENTORY_H

#include "cleanup.h"
#include "hostfs.h"
#include "log.h"
#include "mdev.h"
#include "mdev_uuid.h"
#include "pveconf.h"
#include "vgpu_type.h"

#include <stdbool.h>
#include <stddef.h>

/* What a type is: read once per physical GPU, shared by its VFs. */
struct inv_typedef {
    size_t gpu;
    char id[64];
    char name[128];
    char description[256];
    char device_api[32];
    struct vgpu_type_info info;
};

/* A type as offered by one parent. */
struct inv_type {
    size_t def;
    long available;    /* -1 when unreadable */
    int available_err; /* 0, or the -errno / -EINVAL of available_instances */
};

struct inv_parent {
    char bdf[16];
    size_t gpu;
    bool is_vf;
    struct inv_type *types;
    size_t ntypes;
};

struct inv_gpu {
    char bdf[16]; /* the physical function */
    unsigned vendor;
    char driver[32];
    size_t nparents;
    unsigned fb_mib; /* the largest type's framebuffer: the GPU's usable memory */
};

struct host {
    struct inv_gpu *gpus;
    size_t ngpus;
    struct inv_parent *parents;
    size_t nparents;
    struct inv_typedef *defs;
    size_t ndefs;
    struct inv_mdev *mdevs;
    size_t nmdevs;
    struct pvh_warnings warnings;
};

/* Every mdev parent on the host (/sys/class/mdev_bus), plus warnings for dangling links. */
int inventory_load_all(const struct hostfs *fs, struct host *h, struct pvh_err *e);
/* Add the physical GPU that pci_bdf belongs to (itself or its physfn), with all its parents.
 * No-op when already loaded. *gpu receives its index. */
int inventory_load_gpu(
    const struct hostfs *fs, struct host *h, const char *pci_bdf, size_t *gpu, struct pvh_err *e
);
void inventory_free(struct host *h);
DEFINE_CLEANUP_FUNC(inventory_freep, struct host, inventory_free)

/* The physical function of a PCI device (itself when not a VF). */
int inventory_physfn(const struct hostfs *fs, const char *bdf, char *pf, size_t size);

size_t inv_find_parent(const struct host *h, const char *bdf);
size_t inv_find_mdev(const struct host *h, const char *uuid);
/* The type of a parent that the user's TYPE means (id, full or short name). */
const struct inv_type *inv_parent_type(const struct host *h, size_t parent, const char *query);
const struct inv_typedef *inv_def(const struct host *h, const struct inv_type *t);
/* The definition of a type id on a GPU (for describing active mdevs). */
const struct inv_typedef *inv_gpu_typedef(const struct host *h, size_t gpu, const char *type_id);
bool inv_gpu_is_nvidia(const struct host *h, size_t gpu);
/* The same test straight from sysfs, for a PCI device (or its physical function). */
bool inventory_pci_is_nvidia(const struct hostfs *fs, const char *bdf);

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
/* Every VF with a type set; *out malloc'ed. */
int inventory_vf_holders(const struct hostfs *fs, struct vf_holder **out, size_t *n);
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

/* What Proxmox's resource mappings record of a PCI function, to notice changed hardware
 * (pve-guest-common's Mapping::PCI::assert_valid): ids as 4 lowercase hex digits without 0x,
 * "" when sysfs has none; iommu_group -1 when the device has none. */
struct pci_ident {
    char vendor[5], device[5], subsys_vendor[5], subsys_device[5];
    long iommu_group;
};
int inventory_pci_ident(const struct hostfs *fs, const char *bdf, struct pci_ident *out);

/* Fill the state of every mdev in the array (each VM is asked once). */
void inventory_read_vm_states(const struct hostfs *fs, struct inv_mdev *mdevs, size_t n);
/* "running", "busy", "leftover" or "not a VMID UUID". */
const char *vm_state_name(enum vm_state s);
/* A leftover: an mdev of ours whose VM is neither running nor busy. */
bool inv_mdev_is_leftover(const struct inv_mdev *m);

/* PVE's own test: the pid file names a live, non-zombie process whose cmdline holds
 * "-pidfile /var/run/qemu-server/<vmid>.pid". 1 running, 0 not. */
int vm_is_running(const struct hostfs *fs, unsigned long vmid);
/* This node's name: /etc/pve/local's target, else /etc/hostname, else the short host name,
 * else "localhost". */
void node_name(const struct hostfs *fs, char *buf, size_t size);
/* Is vmid a container (it has /etc/pve/lxc/<vmid>.conf)? */
bool vmid_is_container(const struct hostfs *fs, unsigned long vmid);
/* 1 when Proxmox holds the VM's config lock (a start or stop is under way). */
int vm_is_busy(const struct hostfs *fs, unsigned long vmid);

/* The NVIDIA driver's major version on this host (/sys/module/nvidia/version), 0 unknown. */
unsigned inventory_nvidia_driver_major(const struct hostfs *fs);

#endif
