/* storage: Proxmox's storage definitions (/etc/pve/storage.cfg), the one reader of that file. */
#ifndef PVH_STORAGE_H
#define PVH_STORAGE_H

#include "hostfs.h"
#include "log.h"
#include "sectioncfg.h"

#include <stdbool.h>

/* The storages, parsed (storage_find looks one up). -errno with e naming the file. */
int storage_cfg_load(const struct hostfs *fs, struct sectioncfg *out, struct pvh_err *e);

/* storage.cfg read on first use and kept, for a run that asks about many VMs (their
 * hookscripts): one read however many ask. Zero-initialise; storage_cache_free after. */
struct storage_cache {
    bool tried;
    bool ok;
    struct sectioncfg cfg;
};
/* The parsed file, or NULL when it cannot be read. */
const struct sectioncfg *storage_cached(const struct hostfs *fs, struct storage_cache *c);
void storage_cache_free(struct storage_cache *c);

#endif
