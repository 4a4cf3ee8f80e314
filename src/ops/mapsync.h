/*
 * mapsync: the resource mappings attach made (vgpu-hook-<vmid> in /etc/pve/mapping/pci.cfg)
 * list every node that can start the VM, not only the node attach ran on. Proxmox reports a
 * node without map lines as a missing mapping and refuses to migrate (or HA to recover) the VM
 * there, so each node keeps its own lines in them whenever it publishes its inventory; cleanup
 * removes the mappings no VM needs any more.
 */
#ifndef PVH_MAPSYNC_H
#define PVH_MAPSYNC_H

#include "admin.h"
#include "mistakes.h"

/* This node's map lines in every mapping of ours whose VM has a record: the devices of this
 * node offering the type its hostpci line passes (mdev parents, else VFs of NVIDIA's vendor
 * interface; its --gpu list for this node), in placement order, none when no device offers it.
 * Other nodes' lines and other sections stay byte for byte; written (under pmxcfs' lock,
 * atomically) only when this node's set of devices changed. 1 written, 0 nothing to do, or a
 * negative errno with e saying why. Best effort: never a reason to fail a start. */
int mapsync_node(const struct hook_env *env, const struct host_status *st, struct pvh_err *e);

/* cleanup: the mappings of ours in text (pci.cfg) that no VM needs, one coded warning each
 * with its VMID: "vm-missing" (the VM exists on no node), "record-missing" (no record of cfg
 * names the mapping, those in gone counting as removed, and the VM's config does not use it).
 * -ENOMEM. */
int mapsync_stale(
    const struct hostfs *fs, const struct pvh_config *cfg, const struct vm_warnings *gone,
    const char *text, struct vm_warnings *out
);

#endif
