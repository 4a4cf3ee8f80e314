#include "ha.h"

#include "cleanup.h"
#include "config.h"
#include "hostpaths.h"
#include "mdev_uuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ha_resources_load(const struct hostfs *fs, struct sectioncfg *out, struct pvh_err *e) {
    _cleanup_free_ char *text = NULL;
    int r = hostfs_read_alloc(fs, PVE_HA_RESOURCES_CFG, CONFIG_MAX_BYTES, &text, NULL);
    if (r < 0 && r != -ENOENT) {
        return err_set(e, r, "cannot read %s: %s", PVE_HA_RESOURCES_CFG, strerror(-r));
    }
    if (sectioncfg_parse(text ? text : "", true, out) < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    return 0;
}

bool ha_vm_managed(const struct sectioncfg *res, unsigned long vmid) {
    char id[24];
    snprintf(id, sizeof(id), "%lu", vmid);
    const struct sectioncfg_section *s = sectioncfg_find(res, id);
    return s && !strcmp(s->type, "vm");
}
