/*
 * members: pmxcfs' /etc/pve/.members, the one reader of that file: the cluster's nodes as
 * corosync sees them, and which are online.
 */
#ifndef PVH_MEMBERS_H
#define PVH_MEMBERS_H

#include "config.h"
#include "hostfs.h"

#include <stdbool.h>
#include <stddef.h>

struct pve_member {
    char name[NODE_NAME_MAX]; /* a valid node name (others are skipped) */
    bool online;
};

/* The nodes .members lists, in its order (*out malloc'ed). None when the file cannot be read
 * (no pmxcfs) or lists no nodelist (standalone): the nodes directory is all there is. -EINVAL
 * (none) when it is not what pmxcfs writes; -ENOMEM. */
int members_load(const struct hostfs *fs, struct pve_member **out, size_t *n);

#endif
