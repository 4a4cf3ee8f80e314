/*
 * mdevmap: managed mode on classic mdev GPUs (a P40, the VFs of an SR-IOV A40 before NVIDIA's
 * vendor interface) through the VM's resource mapping, on qemu-server 8.0.4 and later, so that
 * Proxmox sees the vGPU (Hardware view, migration check, HA): `hostpciN: mapping=vgpu-hook-<vmid>,
 * mdev=<type id>`, the mapping listing every mdev parent of a node that offers the type. Proxmox
 * walks this node's lines in file order and adopts an mdev that exists with its UUID only under
 * the parent it tries, so pre-start creates the vGPU where placement puts it and lists that
 * parent first, the others after it in placement order.
 */
#ifndef PVH_MDEVMAP_H
#define PVH_MDEVMAP_H

#include "hook_env.h"
#include "nodeinv.h"
#include "plan.h"

/* Does attach give a VM with an mdev type the mapping form here: the installed qemu-server
 * takes mdev= with mapping= (unknown: no, the args form as before)? */
bool mdevmap_supported(const struct hostfs *fs);

/* This node's map lines for the type (an id or name; *type_id: its sysfs id, as hostpci's
 * mdev= names it): the parents of the candidate GPUs (only: GPUs or parents, none = every GPU)
 * that offer it, first_parent first (NO_INDEX: none), then GPU by GPU in placement order. h has
 * those GPUs loaded. -ENODEV (e not filled) when no parent offers it. */
int mdevmap_lines(
    const struct hostfs *fs, const struct host *h, const struct pvh_config *cfg, const char *node,
    const char *type, const char (*only)[PCI_ID_LEN], size_t nonly, size_t first_parent,
    char *type_id, size_t type_id_size, char **lines, size_t *nlines, struct pvh_err *e
);

/* The same for another node from its published inventory (the parents its pre-start would
 * list, chosen over the model where builds of it; only: that node's --gpu list), with the ids
 * it published: what attach on this node writes for a type only other nodes offer. -ENODEV
 * (e not filled) when no parent there offers it; -ENOENT (e not filled) when inv has no ids
 * for them (an older version of the tool published it). */
int mdevmap_remote_lines(
    const struct node_inv *inv, const struct pvh_config *cfg, const char *type,
    const char (*only)[PCI_ID_LEN], size_t nonly, char *type_id, size_t type_id_size, char **lines,
    size_t *nlines, struct pvh_err *e
);

/* The same on NVIDIA's vendor interface: another node's VFs for type nvidia-<type_id> in
 * place_vf_order's order over its published GPUs (gpus: cluster_nvidia_gpus of inv; only: the
 * GPUs the VM may use there), as plan_vf_lines lists them on that node, with the ids it
 * published. -ENODEV / -ENOENT (e not filled) as mdevmap_remote_lines. */
int mdevmap_remote_vf_lines(
    const struct node_inv *inv, const struct nvidia_gpu *gpus, size_t ngpus, unsigned type_id,
    const char (*only)[PCI_ID_LEN], size_t nonly, enum pvh_placement placement, char **lines,
    size_t *nlines, struct pvh_err *e
);

/* pre-start of a VM attached through its mapping on a node whose mdev parents offer its type
 * (hp: the VM's hostpci line): 1, and *placed a copy of vs that places hp's type at hp's
 * index; 0 when the type is not an mdev type here (NVIDIA's vendor interface). */
int mdevmap_pre_start(
    const struct hook_env *env, struct vm_plan *p, const struct vm_settings *vs,
    const struct hostpci *hp, struct vm_settings *placed, struct pvh_err *e
);

/* Once placed: this node's lines with the chosen parent first, into p (vfmap_lines,
 * vfmap_text) for check to show and pre-start to write before Proxmox reads the mapping. */
int mdevmap_plan(
    const struct hook_env *env, struct vm_plan *p, const struct vm_settings *vs, struct pvh_err *e
);

#endif
