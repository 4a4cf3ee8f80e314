#include "ha.h"

#include "cleanup.h"
#include "config.h"
#include "hostpaths.h"
#include "mdev_uuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One of HA's section configs: its bytes (NULL when missing) and its sections. */
static int ha_load(
    const struct hostfs *fs, const char *path, char **text, struct sectioncfg *out,
    struct pvh_err *e
) {
    int r = hostfs_read_alloc(fs, path, CONFIG_MAX_BYTES, text, NULL);
    if (r == -ENOENT) {
        *text = NULL;
    } else if (r < 0) {
        return err_set(e, r, "cannot read %s: %s", path, strerror(-r));
    }
    if (sectioncfg_parse(*text ? *text : "", true, out) < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    return 0;
}

int ha_resources_load(const struct hostfs *fs, struct sectioncfg *out, struct pvh_err *e) {
    _cleanup_free_ char *text = NULL;
    return ha_load(fs, PVE_HA_RESOURCES_CFG, &text, out, e);
}

const char *ha_form_file(enum ha_form f) {
    return f == HA_FORM_RULES ? PVE_HA_RULES_CFG : PVE_HA_GROUPS_CFG;
}

int ha_rules_load(
    const struct hostfs *fs, enum ha_form f, char **text, struct sectioncfg *out, struct pvh_err *e
) {
    return ha_load(fs, ha_form_file(f), text, out, e);
}

int ha_groups_migrated(const struct hostfs *fs, bool *migrated, struct pvh_err *e) {
    _cleanup_free_ char *text = NULL;
    struct sectioncfg groups = {0};
    int r = ha_load(fs, PVE_HA_GROUPS_CFG, &text, &groups, e);
    *migrated = true;
    for (size_t i = 0; r == 0 && i < groups.n; i++) {
        if (!strcmp(groups.sections[i].type, ha_form_type(HA_FORM_GROUPS))) {
            *migrated = false;
        }
    }
    sectioncfg_free(&groups);
    return r;
}

bool ha_vm_managed(const struct sectioncfg *res, unsigned long vmid) {
    char id[24];
    snprintf(id, sizeof(id), "%lu", vmid);
    const struct sectioncfg_section *s = sectioncfg_find(res, id);
    return s && !strcmp(s->type, "vm");
}
