/*
 * bootsim: this node as it is right after a reboot, for `check --all`: the GPUs and types of
 * the host model with no vGPU of any VM, the driver's counts as an idle GPU shows them, every
 * VF of NVIDIA's vendor interface free. The onboot VMs' vGPUs then take room in boot order, as
 * pre-start's plan places them on this model. Pure: no I/O.
 */
#ifndef PVH_BOOTSIM_H
#define PVH_BOOTSIM_H

#include "inventory.h"
#include "nvidia_iface.h"

#include <stdbool.h>
#include <stddef.h>

struct bootsim {
    struct host host;          /* the model (plan_pre_start_on borrows it for one VM) */
    struct nvidia_gpu *ifgpus; /* GPUs of NVIDIA's vendor interface */
    size_t nifgpus;
    struct nvidia_iface *fresh; /* per ifgpu: what a free VF offers while the GPU is idle */
};

/* Make the model, read from this node, a freshly booted one: every mdev gone; per type the
 * instances an idle GPU offers (a VF: 1; else the type's max_instance, or the GPU's memory
 * over the type's); the vendor interface's VFs free, each offering what a free VF offers now
 * and every type a VF holds now. -ENOMEM. */
int bootsim_reset(struct bootsim *s);
void bootsim_free(struct bootsim *s);

/* What the VF offers in the simulation (out malloc'ed); -ENOENT when it is not a VF of the
 * vendor interface, -ENOMEM. */
int bootsim_vf_iface(const struct bootsim *s, const char *vf, struct nvidia_iface *out);

/* The model before a VM's start, to undo what its plan placed when it would not start. */
struct bootsim_mark {
    size_t nmdevs;
    long *available; /* every parent's types in order (malloc'ed) */
};
int bootsim_mark(const struct bootsim *s, struct bootsim_mark *m);
void bootsim_undo(struct bootsim *s, struct bootsim_mark *m);
/* The VM started: its devices are a running VM's from now on (never reclaimed), and the VF of
 * the vendor interface it got (vf, "" for none) holds type: the GPU's other free VFs offer
 * what the driver's equal-size mode leaves. Frees the mark. -ENOMEM. */
int bootsim_started(
    struct bootsim *s, struct bootsim_mark *m, const char *vf, unsigned type, unsigned long vmid
);

/* Proxmox's boot order (pve-manager's get_start_stop_list): startup order ascending, a VM
 * without one after all that have one, ties by VMID. */
struct boot_vm {
    unsigned long vmid;
    bool has_order;
    long order;
};
void bootsim_sort(struct boot_vm *vms, size_t n);

#endif
