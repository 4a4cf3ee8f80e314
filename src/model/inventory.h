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
    long available;    /* -1 when unreadable or unread */
    int available_err; /* 0, or the -errno / -EINVAL of available_instances */
    bool unread;       /* not asked for (host.avail_only): available is -1, nothing was read */
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
    /* Set before loading to read available_instances only of these types (ids or names, the
     * caller's strings): a start needs no other type's count on its way to a create. NULL: all. */
    const char *const *avail_only;
    size_t navail_only;
    bool partial; /* some type's available_instances was left unread */
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

/* struct pci_ident (formats/pveconf.h) of a PCI function, from sysfs: the one reader. */
int inventory_pci_ident(const struct hostfs *fs, const char *bdf, struct pci_ident *out);

#endif
