/*
 * ha: what Proxmox's HA manager is told to manage (/etc/pve/ha/resources.cfg, a section config:
 * "vm: <vmid>" and "ct: <vmid>" sections) and where (rules.cfg, groups.cfg). The one reader of
 * those files.
 */
#ifndef PVH_HA_H
#define PVH_HA_H

#include "harules.h"
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

/* The file of a form: /etc/pve/ha/rules.cfg or /etc/pve/ha/groups.cfg. */
const char *ha_form_file(enum ha_form f);
/* That file's bytes (*text malloc'ed, NULL when it does not exist) and its sections. -errno with
 * e naming the file. */
int ha_rules_load(
    const struct hostfs *fs, enum ha_form f, char **text, struct sectioncfg *out, struct pvh_err *e
);
/* PVE::HA::Config::have_groups_been_migrated: groups.cfg is missing or has no group. Proxmox's
 * rules API refuses until then, its groups API after. */
int ha_groups_migrated(const struct hostfs *fs, bool *migrated, struct pvh_err *e);

#endif
