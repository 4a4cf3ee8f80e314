/*
 * vfmap: the resource mapping that managed mode keeps for a VM: `hostpciN: mapping=<id>,
 * mdev=<type>`, the mapping listing the candidate devices of each node in the order Proxmox
 * should try them (the VFs of NVIDIA's vendor interface, or the mdev parents of classic mdev
 * GPUs, the one pre-start created the vGPU on first). Only text in, text out: the section is
 * written exactly as Proxmox's SectionConfig writes one (header, the required map lines, the
 * other keys sorted, tab-indented, an empty line), so that a later rewrite by Proxmox leaves it
 * byte for byte, and nothing outside it ever changes.
 */
#ifndef PVH_VFMAP_H
#define PVH_VFMAP_H

#include "inventory.h"
#include "log.h"
#include "sectioncfg.h"

#include <stdbool.h>
#include <stddef.h>

#define VFMAP_ID_FMT "vgpu-hook-%lu"
#define VFMAP_ID_MAX 32
/* The description of a mapping attach made: with the id, what says a section is ours. */
#define VFMAP_DESCRIPTION_FMT "vGPU of VM %lu, kept by pve-vgpu-hook (detach removes it)"

struct vfmap_vf {
    char bdf[PCI_ID_LEN];
    struct pci_ident ident;
};

struct hostfs;
/* Proxmox's PCI resource mappings (/etc/pve/mapping/pci.cfg), the one reader: *text malloc'ed,
 * "" when the file does not exist (no mapping yet). -errno with e naming the file. */
int vfmap_read(const struct hostfs *fs, char **text, struct pvh_err *e);

/* node's map lines, one "\tmap node=N,path=BDF,id=V:D[,subsystem-id=SV:SD][,iommugroup=G]\n"
 * per VF, in order; malloc'ed, NULL when out of memory. */
char *vfmap_node_lines(const char *node, const struct vfmap_vf *vfs, size_t n);

/* The same for devices named by PCI address, in order, with the ids sysfs has for each (what
 * Proxmox compares before a start): *lines malloc'ed. -EIO with e naming a device whose ids
 * cannot be read, -ENOMEM. */
int vfmap_lines_for(
    const struct hostfs *fs, const char *node, const char **bdfs, size_t n, char **lines,
    struct pvh_err *e
);

/* pci.cfg text ("" when the file is missing) with node's map lines of mapping id replaced by
 * lines, other nodes' kept. Without such a section, one is appended (the lines, description,
 * `mdev 1`: SectionConfig's order) after *sep_nl newlines (0 to 2, to keep it apart from what
 * precedes); else *sep_nl is 0. *out is malloc'ed. */
int vfmap_put(
    const char *text, const char *id, unsigned long vmid, const char *node, const char *lines,
    char **out, unsigned *sep_nl
);

/* Is a section of pci.cfg one attach made: id vgpu-hook-<vmid> AND its description (*vmid)?
 * A section with only one of them is an admin's, never changed. */
bool vfmap_ours(const struct sectioncfg_section *s, unsigned long *vmid);

/* Does section s list exactly lines (vfmap_node_lines' form) for node, in any order? The order
 * is pre-start's to set at each start; only a different set of devices is worth a write. */
bool vfmap_node_same(const struct sectioncfg_section *s, const char *node, const char *lines);

/* pci.cfg text with boolean key (live-migration-capable) of mapping id's section set to 1 (on) or
 * removed (!on), where Proxmox's SectionConfig writes it: after the map lines, among the other
 * keys in sorted order; every other byte kept. *out malloc'ed. -ENOENT when there is no such
 * section, -ENOMEM. */
int vfmap_set_flag(const char *text, const char *id, const char *key, bool on, char **out);

/* text without mapping id's section, and without the sep_nl newlines vfmap_put added before
 * it while it is still the last one. -ENOENT when there is none. */
int vfmap_remove(const char *text, const char *id, unsigned sep_nl, char **out);

#endif
