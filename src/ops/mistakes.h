/*
 * mistakes: what `check` (and pre-start, where it decides) says about a vGPU VM's config before
 * it costs a start: mdev= naming a type by its name (refused), a hookscript that is missing or
 * not this tool, x-vga on a vGPU, SeaBIOS with q35 newer than 7.2, another VM's UUIDs (clones).
 * Each warning carries a stable code and its fix.
 */
#ifndef PVH_OPS_MISTAKES_H
#define PVH_OPS_MISTAKES_H

#include "plan.h"
#include "sectioncfg.h"

/* hostpci mode: an mdev= that names a type by its name ("P40-1Q") where Proxmox looks up the
 * sysfs id; -EINVAL with e (reason "mdev-type-name") naming the id and the qm set line. */
int mistakes_type_ids(
    const struct vm_plan *p, const struct hostpci *hps, const struct place_candidates *cands,
    size_t n, struct pvh_err *e
);
/* The coded warnings of a planned vGPU VM (x-vga, SeaBIOS with q35, clones; the hookscript
 * only in a dry run: pre-start runs because it exists) into p->warnings. */
void mistakes_plan(const struct hook_env *env, struct vm_plan *p);

/* Where a snippets volume ("STORAGE:snippets/NAME") lies on this node: 0 and path; -EINVAL
 * when volid is no such volume; -ENOENT when storage.cfg has no storage with a directory for
 * it (why says which). storage: storage.cfg as parsed (storage.h), NULL when unreadable. */
bool hookscript_volid_valid(const char *volid);
int hookscript_path(
    const struct sectioncfg *storage, const char *volid, char *path, size_t size, char *why,
    size_t whysize
);

/* Is the file at path this tool: the installed binary (a link to it, or a copy), or the wrapper
 * setup writes on shared storage? */
bool hookscript_is_ours(const struct hostfs *fs, const char *path);

/* Coded warnings about VMs, each with its VMID. */
struct vm_warnings {
    struct pvh_warnings w;
    unsigned long *vmids; /* per warning */
};
/* The VMID of the warning just added; -ENOMEM. */
int vm_warnings_vmid(struct vm_warnings *v, unsigned long vmid);
void vm_warnings_free(struct vm_warnings *v);

/* This node's vGPU VMs whose hookscript will not run pve-vgpu-hook, one coded warning each. */
int mistakes_node_hookscripts(
    const struct hook_env *env, const struct pvh_config *cfg, struct vm_warnings *out
);

#endif
