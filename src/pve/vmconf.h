/*
 * vmconf: where Proxmox keeps VM configs (pmxcfs: /etc/pve/qemu-server is this node's,
 * /etc/pve/nodes/<node>/qemu-server every node's) and reading them. The only code that knows
 * those paths; node names are validated before they become paths.
 */
#ifndef PVH_VMCONF_H
#define PVH_VMCONF_H

#include "hostfs.h"
#include "pveconf.h"

#include <stddef.h>

/* VM vmid's config path on node (NULL: this node). -EINVAL for a name Proxmox cannot have,
 * -ENAMETOOLONG. */
int vmconf_path(const char *node, unsigned long vmid, char *buf, size_t size);
/* Its bytes (*text malloc'ed, NUL-terminated): 0, -ENOENT when there is no such VM there, or
 * another -errno. */
int vmconf_read(
    const struct hostfs *fs, const char *node, unsigned long vmid, char **text, size_t *len
);
/* Read and parse: 0, -ENOENT, -EINVAL (does not parse) or another -errno. */
int vmconf_load(
    const struct hostfs *fs, const char *node, unsigned long vmid, struct pveconf *conf
);
/* On whichever node of the cluster has it: this node first, then each node's directory. node
 * (may be NULL) gets the node's name, "" for this node. 0, -ENOENT or another -errno. */
int vmconf_find(
    const struct hostfs *fs, unsigned long vmid, struct pveconf *conf, char *node, size_t size
);
/* The VMIDs with a config on this node, ascending (*vmids malloc'ed). -errno when the directory
 * cannot be listed. */
int vmconf_list(const struct hostfs *fs, unsigned long **vmids, size_t *n);

/* Every VM config of this node, parsed, in VMID order: fn(ctx, vmid, conf); a file that cannot
 * be read or parsed is skipped. fn returns 0 to go on, non-zero to stop (that is returned).
 * -errno when the directory cannot be listed. */
int vmconf_each(
    const struct hostfs *fs, int (*fn)(void *ctx, unsigned long vmid, const struct pveconf *conf),
    void *ctx
);
/* The same for every node of the cluster; fn also gets the node. */
int vmconf_each_cluster(
    const struct hostfs *fs,
    int (*fn)(void *ctx, const char *node, unsigned long vmid, const struct pveconf *conf),
    void *ctx
);

#endif
