/*
 * harules: the HA node-affinity rules (/etc/pve/ha/rules.cfg, pve-ha-manager 5.0.2 and later)
 * and HA groups (/etc/pve/ha/groups.cfg, before) that ha-sync keeps, one per HA-managed vGPU
 * VM. Only text in, text out: a section is written exactly as PVE::SectionConfig's
 * write_config writes it (header, comment first, then the keys in sorted order, an empty line),
 * so that Proxmox rewriting the file leaves it byte for byte; nothing outside it ever changes.
 * Ours = the id vgpu-hook-<vmid> AND our comment: a section with only one of them is an
 * admin's. In the rules form, Proxmox's migration of our group (PVE::HA::Groups::
 * migrate_groups_to_rules: rule ha-group-<group>, the group's comment) is ours too.
 */
#ifndef PVH_HARULES_H
#define PVH_HARULES_H

#include "sectioncfg.h"

#include <stdbool.h>

#define HARULES_ID_FMT "vgpu-hook-%lu"
#define HARULES_MIGRATED_FMT "ha-group-" HARULES_ID_FMT /* our group, migrated by Proxmox */
#define HARULES_ID_MAX 48
/* Plain ASCII without ':' or '%': PVE::Tools::encode_text writes it back unchanged. */
#define HARULES_COMMENT "kept by pve-vgpu-hook ha-sync (the nodes that can start the VM's vGPU)"
#define HA_MANAGER_RULES_VERSION "5.0.2" /* pve-ha-manager with rules.cfg; groups before */

enum ha_form { HA_FORM_RULES, HA_FORM_GROUPS };

const char *ha_form_name(enum ha_form f);
/* The section type of our entries: "node-affinity" or "group". */
const char *ha_form_type(enum ha_form f);
/* Is s one of ours (in the rules form also as Proxmox migrated our group); *vmid its VM. */
bool harules_ours(const struct sectioncfg_section *s, enum ha_form f, unsigned long *vmid);
/* Our section for vmid restricted to nodes (comma-separated, sorted as Proxmox writes them);
 * malloc'ed, NULL out of memory. */
char *harules_section(enum ha_form f, unsigned long vmid, const char *nodes);
/* text with the section of id replaced by sec (NULL: removed), or sec appended (apart from what
 * precedes by an empty line). *out malloc'ed; -ENOENT when removing a section that is not
 * there. */
int harules_put(const char *text, const char *id, const char *sec, char **out);
/* Does an enabled node-affinity rule other than ours name resource sid ("vm:100")? Its id in
 * rule (Proxmox makes every rule naming a resource twice ineffective). */
bool harules_other_rule(const struct sectioncfg *rules, const char *sid, char *rule, size_t size);

#endif
