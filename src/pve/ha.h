/*
 * ha: what Proxmox's HA manager is told to manage (/etc/pve/ha/resources.cfg, a section config:
 * "vm: <vmid>" and "ct: <vmid>" sections). The one reader of that file.
 */
#ifndef PVH_HA_H
#define PVH_HA_H

#include "hostfs.h"
#include "log.h"
#include "sectioncfg.h"

#include <stdbool.h>

/* The HA resources, parsed; none when the file does not exist (HA never set up). -errno with
 * e naming the file. */
int ha_resources_load(const struct hostfs *fs, struct sectioncfg *out, struct pvh_err *e);
/* Does HA manage VM vmid (a "vm: <vmid>" section; pve-manager's startall skips it, HA starts
 * it: PVE::HA::Config::vm_is_ha_managed)? */
bool ha_vm_managed(const struct sectioncfg *res, unsigned long vmid);

#endif
