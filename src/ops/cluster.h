/*
 * cluster: every node's vGPUs through pmxcfs. Each node publishes its inventory (formats/nodeinv)
 * to /etc/pve/nodes/<node>/vgpu-hook.json; status --cluster reads them all, and where runs the
 * pre-start placement over a host model rebuilt from another node's inventory. No daemon, no
 * network: pmxcfs replicates the files.
 */
#ifndef PVH_CLUSTER_H
#define PVH_CLUSTER_H

#include "admin.h"
#include "nodeinv.h"

#define CLUSTER_REFRESH_S 300                   /* rewrite an unchanged inventory this often */
#define CLUSTER_STALE_S (3 * CLUSTER_REFRESH_S) /* older data is shown as stale */

/* This node's inventory from the status model (st), as published. */
int cluster_inventory_of(
    const struct hook_env *env, const struct host_status *st, long long now, struct node_inv *out
);
/* Publish this node's inventory when it changed or is older than CLUSTER_REFRESH_S: 1 written,
 * 0 nothing to do, or a negative errno with e saying why (-EACCES: pmxcfs without quorum).
 * st may be NULL (read here). Best effort for every caller: never a reason to fail. */
int cluster_publish(const struct hook_env *env, const struct host_status *st, struct pvh_err *e);

enum node_freshness { NODE_CURRENT, NODE_STALE, NODE_OFFLINE, NODE_UNPUBLISHED, NODE_INVALID };

struct cluster_node {
    char name[NODE_NAME_MAX];
    enum node_freshness fresh;
    long long age; /* seconds since taken; -1 when no data */
    bool has_inv;
    struct node_inv inv;
    char problem[256]; /* NODE_INVALID: why the file was refused */
};

struct cluster_view {
    char self[NODE_NAME_MAX];
    long long now;
    struct cluster_node *nodes;
    size_t n;
    struct pvh_warnings warnings; /* directories under /etc/pve/nodes that are no node name */
};

/* Every node of /etc/pve/nodes (and .members), with its published inventory. */
int cluster_load(const struct hook_env *env, struct cluster_view *v, struct pvh_err *e);
void cluster_view_free(struct cluster_view *v);
const char *node_freshness_name(enum node_freshness f);

/* The host model of a published inventory, for the placement: what pre-start on that node
 * would read from its sysfs. */
int cluster_host_model(const struct node_inv *inv, struct host *h);
/* The GPUs of NVIDIA's vendor interface in inv, as inventory_nvidia_gpus reads them on that
 * node (for place_vf_order); *out malloc'ed, free with inventory_nvidia_gpus_free. -ENOMEM. */
int cluster_nvidia_gpus(const struct node_inv *inv, struct nvidia_gpu **out, size_t *n);
/* What a VF of NVIDIA's vendor interface in inv offers now; -ENOENT when pci is none. */
int cluster_vf_iface(const struct node_inv *inv, const char *pci, struct nvidia_iface *out);

/* where VMID: per node, could the VM start there now; migrate (where --migrate): could the VM,
 * running on its node (*from), live-migrate there: its mappings list the node, the vGPU fits,
 * the same NVIDIA driver, mappings flagged live-migration-capable, qemu-server 8.3.9 there. */
struct where_node {
    char node[NODE_NAME_MAX];
    bool can;
    char code[32]; /* "ok" or why not: stale, offline, unpublished, not-mapped, ... */
    char message[2048];
    struct planned_mdev items[HOSTPCI_MAX];
    char pci[HOSTPCI_MAX][PCI_ID_LEN]; /* where each would go: the mdev parent or the VF */
    size_t n;
};
int cluster_where(
    const struct hook_env *env, unsigned long vmid, const struct cluster_view *v, bool migrate,
    struct where_node **out, size_t *n, char *from, size_t from_size, struct pvh_err *e
);

/* The nodes other than this one whose published inventory offers a type (id or name) through
 * NVIDIA's vendor interface (vendor_iface) or through mdevs: ", "-separated in buf, "" when
 * none. */
void cluster_nodes_offering(
    const struct cluster_view *v, const char *type, bool vendor_iface, char *buf, size_t size
);

/* attach --gpu NODE:PCI: 0 when node's published inventory lists GPU pci (the GPU or one of
 * its functions) offering type. -ENOENT (no such node, or nothing published) or -ENODEV (no
 * such GPU there, or it offers no such type) with e naming what the node has. */
int cluster_gpu_offers(
    const struct cluster_view *v, const char *node, const char *pci, const char *type,
    struct pvh_err *e
);

/* ha-sync: the nodes HA may run VM vmid on, comma-separated in cluster_load's order (sorted):
 * where its pre-start could place its vGPUs now (as where decides), the stale or offline
 * nodes that offered its types when last seen, and the VM's own node when its inventory cannot
 * tell (unpublished, refused, stale; kept says so, "" otherwise). type: its (first) vGPU's
 * type as configured. -ENOENT with e saying why when the VM has no config or no vGPU. */
int cluster_ha_nodes(
    const struct hook_env *env, unsigned long vmid, const struct cluster_view *v, char *type,
    size_t tsize, char *nodes, size_t nsize, char *kept, size_t ksize, struct pvh_err *e
);

#endif
