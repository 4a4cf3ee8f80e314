#include "mdev.h"

#include "cleanup.h"
#include "hostpaths.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* busfd: SYS_MDEV_DEVICES opened, or -1 */
static int lookup(const struct hostfs *fs, int busfd, const char *uuid, struct inv_mdev *out) {
    char path[PATH_MAX], target[PATH_MAX];
    memset(out, 0, sizeof(*out));
    out->parent = NO_INDEX;
    snprintf(out->uuid, sizeof(out->uuid), "%s", uuid);
    out->owned = mdev_uuid_parse(uuid, &out->index, &out->vmid);
    int r = str_fmt(path, sizeof(path), SYS_MDEV_DEVICES "/%s", uuid);
    if (r < 0) {
        return r;
    }
    ssize_t n = busfd >= 0 ? hostfs_readlink_at(busfd, uuid, target, sizeof(target))
                           : hostfs_readlink(fs, path, target, sizeof(target));
    if (n < 0) {
        return (int)n;
    }
    /* target: ../../../devices/pci0000:00/0000:06:00.0/<uuid> -> the parent is the dir above */
    char *slash = strrchr(target, '/');
    if (slash) {
        *slash = '\0';
        slash = strrchr(target, '/');
    }
    if (str_fmt(out->parent_bdf, sizeof(out->parent_bdf), "%s", slash ? slash + 1 : target) < 0) {
        return -EINVAL; /* not a PCI parent's name */
    }
    char tpath[PATH_MAX];
    if (str_fmt(tpath, sizeof(tpath), "%s/mdev_type", path) < 0) {
        return -ENAMETOOLONG;
    }
    r = hostfs_link_basename(fs, tpath, out->type_id, sizeof(out->type_id));
    if (r == -ENOENT) {
        return -ESTALE; /* the bus link dangles */
    }
    return r;
}

int mdev_lookup(const struct hostfs *fs, const char *uuid, struct inv_mdev *out) {
    return lookup(fs, -1, uuid, out);
}

int mdev_list(
    const struct hostfs *fs, unsigned long vmid, struct inv_mdev **out, size_t *n,
    struct pvh_warnings *w
) {
    *out = NULL;
    *n = 0;
    struct hostfs_list l;
    int busfd = hostfs_dir_open(fs, SYS_MDEV_DEVICES);
    if (busfd == -ENOENT) {
        return 0;
    }
    int r = busfd < 0 ? busfd : hostfs_list_at(fs, busfd, ".", &l);
    if (r < 0) {
        hostfs_dir_close(busfd);
        return r;
    }
    for (size_t i = 0; i < l.n; i++) {
        unsigned long id;
        if (vmid && (!mdev_uuid_parse(l.names[i], NULL, &id) || id != vmid)) {
            continue;
        }
        struct inv_mdev m;
        int lr = lookup(fs, busfd, l.names[i], &m);
        if (lr == -ESTALE) {
            warn_add(
                w, "dangling link /sys/bus/mdev/devices/%s (its device is gone); skipped",
                l.names[i]
            );
            continue;
        }
        if (lr < 0) {
            warn_add(
                w, "mdev %s: cannot read its sysfs entry (%s); skipped", l.names[i], strerror(-lr)
            );
            continue;
        }
        if ((r = GROW(*out, *n, 1)) < 0) {
            break;
        }
        (*out)[(*n)++] = m;
    }
    hostfs_list_free(&l);
    hostfs_dir_close(busfd);
    return r;
}

int mdev_remove(const struct hostfs *fs, const char *uuid) {
    char path[PATH_MAX];
    int r = str_fmt(path, sizeof(path), SYS_MDEV_DEVICES "/%s/remove", uuid);
    if (r < 0) {
        return r;
    }
    r = hostfs_write_str(fs, path, "1");
    return r == -ENOENT ? 0 : r; /* already gone is what we wanted */
}

int mdev_available(const struct hostfs *fs, const char *parent, const char *type_id, long *avail) {
    char path[PATH_MAX];
    *avail = -1;
    int r = str_fmt(
        path, sizeof(path), SYS_PCI_DEVICES "/%s/mdev_supported_types/%s/available_instances",
        parent, type_id
    );
    return r < 0 ? r : hostfs_read_long(fs, path, avail);
}

int mdev_await_available(
    const struct hostfs *fs, const char *parent, const char *type_id, long wait_ms, long *avail
) {
    int r;
    for (long waited = 0;; waited += 100) {
        if ((r = mdev_available(fs, parent, type_id, avail)) < 0 || *avail > 0 ||
            waited >= wait_ms) {
            return r;
        }
        sleep_ms(100);
    }
}

/* Why the driver refused a create, from what it says now: available_instances tells a full
 * GPU (or one holding another size) from a refusal the driver's log has to explain. */
static int explain_refused_create(
    const struct hostfs *fs, const char *parent, const char *type_id, const char *uuid, int r,
    struct pvh_err *e
) {
    long avail;
    (void)mdev_available(fs, parent, type_id, &avail);
    if (r == -ENOENT) {
        err_set(
            e, r, "cannot create %s on %s: the type directory has disappeared", type_id, parent
        );
        err_hint(e, "the vGPU driver may have been reloaded; check 'pve-vgpu-hook types'");
    } else if (r == -EINVAL) {
        err_set(
            e, r, "the kernel rejected creating %s on %s with UUID %s: %s", type_id, parent, uuid,
            strerror(-r)
        );
        err_hint(
            e,
            "the driver refused the request; available_instances reads %ld; see the "
            "kernel log ('journalctl -k') for the driver's reason",
            avail
        );
    } else if (avail > 0) {
        err_set(
            e, r,
            "the driver refused to create %s on %s: %s, although available_instances reads %ld",
            type_id, parent, strerror(-r), avail
        );
        err_hint(
            e, "the driver's reason is in its log: 'journalctl -u nvidia-vgpu-mgr' and "
               "'journalctl -k'"
        );
    } else {
        err_set(
            e, r, "the driver refused to create %s on %s: %s (available_instances now reads %ld)",
            type_id, parent, strerror(-r), avail
        );
        err_hint(
            e, "the GPU is full or holds vGPUs of another size; 'pve-vgpu-hook status' "
               "shows what it hosts"
        );
    }
    return r;
}

int mdev_create(
    const struct hostfs *fs, const char *parent, const char *type_id, const char *uuid,
    unsigned long vmid, struct pvh_err *e
) {
    char path[PATH_MAX];
    int r = str_fmt(
        path, sizeof(path), SYS_PCI_DEVICES "/%s/mdev_supported_types/%s/create", parent, type_id
    );
    if (r < 0) {
        return err_set(e, r, "path too long");
    }
    r = hostfs_write_str(fs, path, uuid);
    if (r == 0) {
        return 0;
    }
    if (r == -EEXIST) {
        struct inv_mdev other;
        if (mdev_lookup(fs, uuid, &other) == 0) {
            err_set(
                e, r,
                "cannot create %s on %s: UUID %s is already used by an mdev of type %s "
                "on %s (mdev UUIDs are unique host-wide)",
                type_id, parent, uuid, other.type_id, other.parent_bdf
            );
        } else {
            err_set(
                e, r, "cannot create %s on %s: UUID %s is already in use", type_id, parent, uuid
            );
        }
        err_hint(
            e,
            "if VM %lu is not running, remove the old device: 'pve-vgpu-hook cleanup' or "
            "'echo 1 > /sys/bus/mdev/devices/%s/remove'",
            vmid, uuid
        );
        return r;
    }
    return explain_refused_create(fs, parent, type_id, uuid, r, e);
}

/* The host lock, with what to do when it cannot be had. */
int mdev_host_lock(const struct hostfs *fs, struct pvh_err *e) {
    int lock = hostfs_lock_private(fs, HOST_LOCK_PATH, HOST_LOCK_TIMEOUT_MS);
    if (lock >= 0) {
        return lock;
    }
    err_set(e, lock, "cannot take the host lock %s: %s", HOST_LOCK_PATH, strerror(-lock));
    if (lock == -ETIMEDOUT) {
        err_hint(
            e, "another pve-vgpu-hook has held it for %d s; see 'ps aux | grep pve-vgpu-hook'",
            HOST_LOCK_TIMEOUT_MS / 1000
        );
    } else if (lock == -EPERM) {
        err_hint(
            e,
            "%s must be a directory of root's with mode 0700 and the lock a file of root's "
            "(not a link); remove them ('rm -r %s') and try again",
            HOST_LOCK_DIR, HOST_LOCK_DIR
        );
    } else {
        err_hint(e, "check that %s can be created (is /run mounted?)", HOST_LOCK_DIR);
    }
    return lock;
}
