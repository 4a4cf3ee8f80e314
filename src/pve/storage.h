/* storage: Proxmox's storage definitions (/etc/pve/storage.cfg), the one reader of that file. */
#ifndef PVH_STORAGE_H
#define PVH_STORAGE_H

#include "hostfs.h"
#include "log.h"
#include "sectioncfg.h"

/* The storages, parsed (storage_find looks one up). -errno with e naming the file. */
int storage_cfg_load(const struct hostfs *fs, struct sectioncfg *out, struct pvh_err *e);

#endif
