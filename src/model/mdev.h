/*
 * mdev: mediated devices on the host, one at a time: find one by UUID, list them, create one,
 * remove one. Everything that writes create or remove is here.
 */
#ifndef PVH_MDEV_H
#define PVH_MDEV_H

#include "hostfs.h"
#include "log.h"
#include "mdev_uuid.h"

#include <stdbool.h>
#include <stddef.h>

#define NO_INDEX ((size_t)-1)

/* What the VM that owns an mdev (by its UUID) is doing: read once into the model, so that the
 * decisions above are pure and status, cleanup and placement agree. */
enum vm_state {
    VM_NOT_OURS, /* the UUID does not follow the VMID scheme */
    VM_STOPPED,  /* neither running nor busy: its mdev is a leftover */
    VM_RUNNING,
    VM_BUSY, /* Proxmox holds the VM's lock: a start or stop is under way */
};

struct inv_mdev {
    char uuid[MDEV_UUID_LEN + 1];
    char type_id[64];
    char parent_bdf[16];
    size_t parent; /* NO_INDEX when its parent is not in the model */
    bool owned;    /* the UUID follows the VMID scheme */
    unsigned index;
    unsigned long vmid;
    enum vm_state state; /* VM_NOT_OURS until inventory_read_vm_states() */
};

/* Find an mdev by UUID anywhere on the host: its parent and type. -ENOENT when absent,
 * -ESTALE when its bus link dangles. */
int mdev_lookup(const struct hostfs *fs, const char *uuid, struct inv_mdev *out);
/* All mdevs on the host whose UUID says they belong to vmid; vmid 0: every mdev on the bus.
 * Entries that cannot be read are warnings. */
int mdev_list(
    const struct hostfs *fs, unsigned long vmid, struct inv_mdev **out, size_t *n,
    struct pvh_warnings *w
);
/* Write uuid to the type's create file of parent; on failure e says why and what to do (vmid
 * names the VM in the hint). */
int mdev_create(
    const struct hostfs *fs, const char *parent, const char *type_id, const char *uuid,
    unsigned long vmid, struct pvh_err *e
);
/* The driver's available_instances of a type on a parent (-1 and -errno when unreadable). */
int mdev_available(const struct hostfs *fs, const char *parent, const char *type_id, long *avail);
/* The same, asked again every 100 ms for up to wait_ms while it reads 0: a driver releases a
 * removed device's resources in its own time. */
int mdev_await_available(
    const struct hostfs *fs, const char *parent, const char *type_id, long wait_ms, long *avail
);
/* Write 1 to its remove file; a device already gone counts as removed. */
int mdev_remove(const struct hostfs *fs, const char *uuid);

/* The host-wide lock (HOST_LOCK_PATH in a root-only directory) that serialises reading the
 * host and creating or removing devices; the fd to release with hostfs_unlock(). */
#define HOST_LOCK_TIMEOUT_MS 60000
int mdev_host_lock(const struct hostfs *fs, struct pvh_err *e);

#endif
