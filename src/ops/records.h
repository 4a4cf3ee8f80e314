/*
 * records: the VM records in our settings (vms.<vmid>) that belong to no VM any more. Proxmox
 * gives a deleted VM's VMID to the next new VM; a record whose identity (meta ctime, smbios1
 * uuid) is not that of the VM now, or whose VM exists on no node, is stale: never applied or
 * undone, shown by status and doctor, removed by cleanup.
 */
#ifndef PVH_OPS_RECORDS_H
#define PVH_OPS_RECORDS_H

#include "config.h"
#include "hook_env.h"
#include "mistakes.h"

/* The stale records of cfg, one coded warning each ("vm-missing", "vm-replaced"), looking for each
 * VM on every node of the cluster. A VM whose config cannot be read, or a cluster whose node list
 * cannot be, is never called stale. */
int records_find_stale(
    const struct hostfs *fs, const struct pvh_config *cfg, struct vm_warnings *out
);

#endif
