/*
 * leftover: the one verdict on a vGPU of this host -- an mdev, or a type set on a VF of NVIDIA's
 * vendor interface -- shared by post-stop, cleanup, status, metrics and placement: whose is it,
 * and may it be removed? Pure: what each VM does was read into the model beforehand.
 */
#ifndef PVH_LEFTOVER_H
#define PVH_LEFTOVER_H

#include "mdev.h"

#include <stdbool.h>

enum leftover_verdict {
    LEFTOVER_NOT_OURS, /* an mdev whose UUID does not follow the VMID scheme: never removed */
    LEFTOVER_RUNNING,  /* its VM runs: kept */
    LEFTOVER_BUSY,     /* Proxmox holds its VM's lock, a start or stop is under way: kept */
    LEFTOVER_STALE,    /* its VM neither runs nor is busy: a leftover, to remove */
    LEFTOVER_OWN,      /* the stopping VM's own, which post-stop removes (it holds that lock) */
};

/* ours: an mdev's UUID follows the VMID scheme (a VF's type: the caller knows); state: what its
 * VM does (for a VF, VM_NOT_OURS is no VM naming it: a leftover too); vmid: its VM; self: the
 * VM being stopped (post-stop), else 0. */
enum leftover_verdict
leftover_verdict(bool ours, enum vm_state state, unsigned long vmid, unsigned long self);
/* The verdict on an mdev of the model. */
enum leftover_verdict leftover_of_mdev(const struct inv_mdev *m, unsigned long self);
/* May it be removed (a leftover, or the stopping VM's own)? */
bool leftover_removable(enum leftover_verdict v);
/* The state status and metrics show: "running", "busy", "leftover" or "not a VMID UUID". */
const char *leftover_state_name(enum leftover_verdict v);

#endif
