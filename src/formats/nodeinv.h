/*
 * nodeinv: the vGPU inventory each node publishes to /etc/pve/nodes/<node>/vgpu-hook.json
 * (doc/json/node-inventory.schema.json): its GPUs, the types each offers with what is free, the
 * vGPUs it hosts, its driver and qemu-server versions. Reader and writer, pure: no I/O.
 */
#ifndef PVH_NODEINV_H
#define PVH_NODEINV_H

#include "config.h"
#include "mdev_uuid.h"
#include "pveconf.h"

#include <stdbool.h>
#include <stddef.h>

#define NODEINV_FORMAT 1
#define NODEINV_MAX_GPUS 64
#define NODEINV_MAX_ITEMS 1024 /* types per GPU, functions per GPU, vGPUs per node */

enum ninv_kind {
    NINV_MDEV,         /* mdev types on the GPU itself */
    NINV_SRIOV_MDEV,   /* mdev types on its SR-IOV VFs */
    NINV_VENDOR_IFACE, /* NVIDIA's vendor interface on its VFs (nvidia/current_vgpu_type) */
};

struct ninv_type {
    char id[64];    /* "nvidia-63" */
    char name[128]; /* "GRID P40-2Q"; "" when the driver gives none */
    unsigned fb_mib;
    unsigned max; /* per GPU; 0 unknown */
    long free;    /* how many more fit on this GPU now */
};

struct ninv_gpu {
    char pci[PCI_ID_LEN];
    char model[64]; /* from its types' names ("P40"); "" unknown */
    enum ninv_kind kind;
    struct ninv_type *types;
    size_t ntypes;
    char (*functions)[PCI_ID_LEN]; /* where vGPUs live: the GPU (mdev) or its VFs */
    size_t nfunctions;
    /* what a map line of a resource mapping needs of each function, parallel to functions;
     * NULL when not published (an older version of the tool, or ids sysfs did not give) */
    struct pci_ident *idents;
};

enum ninv_state { NINV_RUNNING, NINV_BUSY, NINV_LEFTOVER, NINV_FOREIGN };

struct ninv_vgpu {
    unsigned long vmid; /* 0: not a VMID UUID (foreign) or no VM known */
    char type[64];      /* the type id */
    char gpu[PCI_ID_LEN];
    char function[PCI_ID_LEN];    /* the mdev's parent, or the VF holding the type */
    char uuid[MDEV_UUID_LEN + 1]; /* "" on the vendor interface */
    enum ninv_state state;
};

struct node_inv {
    unsigned format;
    long long taken; /* unix time */
    char node[NODE_NAME_MAX];
    char driver[64];      /* NVIDIA driver version; "" when not loaded */
    char qemu_server[64]; /* "" unknown */
    bool unlock;          /* vgpu_unlock-rs is set up */
    struct ninv_gpu *gpus;
    size_t ngpus;
    struct ninv_vgpu *vgpus;
    size_t nvgpus;
};

void nodeinv_free(struct node_inv *inv);
/* The JSON text (malloc'ed, NULL out of memory); with_taken false leaves `taken` out, to tell
 * whether the content changed. */
char *nodeinv_write(const struct node_inv *inv, bool with_taken);
/* Parse and validate a published file; -EINVAL with why, -ENOMEM. Anything out of range or
 * malformed refuses the whole file: it is another node's word, never guessed at. */
int nodeinv_parse(const char *text, size_t len, struct node_inv *out, char *why, size_t whysize);

const char *ninv_kind_name(enum ninv_kind k);
const char *ninv_state_name(enum ninv_state s);
/* Append a zeroed element to the array *arr of *n (elem bytes each): the new element, NULL out
 * of memory or past max. */
void *ninv_push(void *arr, size_t *n, size_t elem, size_t max);

#endif
