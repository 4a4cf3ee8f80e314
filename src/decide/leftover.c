#include "leftover.h"

enum leftover_verdict
leftover_verdict(bool ours, enum vm_state state, unsigned long vmid, unsigned long self) {
    if (!ours) {
        return LEFTOVER_NOT_OURS;
    }
    if (state == VM_RUNNING) {
        return LEFTOVER_RUNNING; /* even the stopping VM's: Proxmox started it again */
    }
    if (self && vmid == self) {
        return LEFTOVER_OWN; /* busy with its own stop */
    }
    return state == VM_BUSY ? LEFTOVER_BUSY : LEFTOVER_STALE;
}

enum leftover_verdict leftover_of_mdev(const struct inv_mdev *m, unsigned long self) {
    return leftover_verdict(m->owned, m->state, m->vmid, self);
}

bool leftover_removable(enum leftover_verdict v) {
    return v == LEFTOVER_STALE || v == LEFTOVER_OWN;
}

const char *leftover_state_name(enum leftover_verdict v) {
    static const char *const names[] = {
        [LEFTOVER_NOT_OURS] = "not a VMID UUID",
        [LEFTOVER_RUNNING] = "running",
        [LEFTOVER_BUSY] = "busy",
        [LEFTOVER_STALE] = "leftover",
        [LEFTOVER_OWN] = "leftover",
    };
    return names[v];
}
