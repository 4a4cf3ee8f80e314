/*
 * hostfs: the only module that touches host paths.
 *
 * Every path is an absolute host path ("/sys/bus/mdev/devices"); it is resolved
 * relative to a root directory opened once (--root / PVE_VGPU_HOOK_ROOT), with
 * openat() and friends, so the whole tool runs unchanged on a fake tree.
 * All functions return 0 (or a length) on success and a negative errno on failure.
 *
 * Below a root other than "/", everything stays inside it: opens resolve absolute symlinks and
 * ".." inside the root (openat2 RESOLVE_IN_ROOT), and readlink, stat, mkdir, symlink, unlink
 * and rename work on the last component inside a directory opened that way. Reads relative to a
 * directory from hostfs_dir_open() stay beneath that directory (RESOLVE_BENEATH).
 */
#ifndef PVH_HOSTFS_H
#define PVH_HOSTFS_H

#include "cleanup.h"
#include "strutil.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct hostfs {
    int rootfd;
    bool confined; /* root is not "/": resolve links inside it */
    char root[4096];
};

int hostfs_open(struct hostfs *fs, const char *root);
void hostfs_close(struct hostfs *fs);

/* Read a small text file into buf, strip one trailing newline; returns the length.
 * -EFBIG when the content does not fit. */
ssize_t hostfs_read(const struct hostfs *fs, const char *path, char *buf, size_t size);
/* Read a whole file (up to max bytes, else -EFBIG) into a malloc'ed NUL-terminated buffer. */
int hostfs_read_alloc(
    const struct hostfs *fs, const char *path, size_t max, char **out, size_t *len
);
/* Strict decimal parse of a one-line file: -EINVAL when not a number. */
int hostfs_read_long(const struct hostfs *fs, const char *path, long *out);
/* Write s in one write(2) (sysfs attributes need that); a short write is -EIO. */
int hostfs_write_str(const struct hostfs *fs, const char *path, const char *s);
/* readlink into buf (NUL-terminated); returns length. */
ssize_t hostfs_readlink(const struct hostfs *fs, const char *path, char *buf, size_t size);
/* readlink / the link's basename for one name (no '/') in a directory from hostfs_dir_open():
 * one system call where many links of one directory are read. */
ssize_t hostfs_readlink_at(int dirfd, const char *name, char *buf, size_t size);
int hostfs_link_basename_at(int dirfd, const char *name, char *buf, size_t size);
/* Basename of a symlink's target (e.g. the type id of an mdev_type link). */
int hostfs_link_basename(const struct hostfs *fs, const char *path, char *buf, size_t size);
/* 0 when the path exists (following links), -ENOENT etc. otherwise. */
int hostfs_exists(const struct hostfs *fs, const char *path);
/* 0 when the path itself exists, a dangling link counts. */
int hostfs_lexists(const struct hostfs *fs, const char *path);
int hostfs_is_dir(const struct hostfs *fs, const char *path);
int hostfs_stat(const struct hostfs *fs, const char *path, mode_t *mode, off_t *size);
/* 1 when both paths are one file (links followed, within the root), 0 when not, -errno when
 * either cannot be reached. */
int hostfs_same_file(const struct hostfs *fs, const char *a, const char *b);

/* A directory below the root, opened for the *_at() reads (cheaper path walks when many
 * files of one directory are read). Close with hostfs_dir_close(). */
int hostfs_dir_open(const struct hostfs *fs, const char *path);
void hostfs_dir_close(int dirfd);
/* hostfs_read() / hostfs_read_long() relative to such a directory. */
ssize_t
hostfs_read_at(const struct hostfs *fs, int dirfd, const char *relpath, char *buf, size_t size);
int hostfs_read_long_at(const struct hostfs *fs, int dirfd, const char *relpath, long *out);

/* Sorted directory listing without "." and ".."; free with hostfs_list_free(). */
struct hostfs_list {
    char **names;
    size_t n;
};
int hostfs_list(const struct hostfs *fs, const char *path, struct hostfs_list *out);
int hostfs_list_at(
    const struct hostfs *fs, int dirfd, const char *relpath, struct hostfs_list *out
);
void hostfs_list_free(struct hostfs_list *l);
DEFINE_CLEANUP_FUNC(hostfs_list_freep, struct hostfs_list, hostfs_list_free)

/* Atomically replace path: write "<path>.tmp.<pid>" in the same directory, fsync, keep the
 * old file's mode and owner, rename over path. The temp file is removed on every failure. */
int hostfs_replace_file(
    const struct hostfs *fs, const char *path, const char *data, size_t len, mode_t mode_if_new
);

/* Several files changed together, all or nothing as far as the host lets us: every new content
 * (and a copy of every old one) is first written and synced beside its target, then the
 * targets are renamed in order; if one rename fails, the files renamed before it get their
 * old content back by a rename too. A crash between renames leaves the first files changed. */
struct hostfs_change {
    const struct hostfs *fs;
    const char *path;
    const char *data; /* the new content; NULL removes the file */
    size_t len;
    const char *old; /* the current content (NULL when the file does not exist), for undo */
    size_t old_len;
    mode_t mode_if_new;
    /* The caller holds the lock every writer of path takes (pmxcfs' for a cluster file, the
     * VM's for its config): a temp or undo copy of path found now is left over by an earlier
     * change that could not delete it, and is removed. */
    bool sweep_stale;
};
struct hostfs_txn_report {
    size_t failed_at;     /* the change that failed; n when none did */
    size_t not_undone;    /* changes applied before it that could not be put back */
    size_t stale;         /* temp or undo copies that could not be deleted, even when retried */
    size_t stale_at;      /* the change of the first of them */
    char stale_name[256]; /* its name, beside that change's file */
};
int hostfs_replace_files(
    const struct hostfs_change *changes, size_t n, struct hostfs_txn_report *rep
);
/* What sweep_stale does, for a file the caller holds the lock of but does not change now;
 * copies that stay are counted in rep (stale_at 0). */
int hostfs_sweep_stale(const struct hostfs *fs, const char *path, struct hostfs_txn_report *rep);

int hostfs_unlink(const struct hostfs *fs, const char *path);
int hostfs_mkdir(const struct hostfs *fs, const char *path, mode_t mode);
int hostfs_symlink(const struct hostfs *fs, const char *target, const char *path);
/* Run the executable at path (below the root) with argv, this process's environment and stdio,
 * if only root can change it: the file and every directory above it up to the root are owned
 * by root and not writable by group or others (else -EPERM, why says what is wrong). After
 * timeout_ms it gets SIGTERM, 2 s later SIGKILL (its whole process group): -ETIMEDOUT.
 * *status: its exit status, or 128 + signal. */
int hostfs_run_trusted(
    const struct hostfs *fs, const char *path, char *const argv[], int timeout_ms, int *status,
    char *why, size_t whysize
);

/* Exclusive flock on path (created if missing, never through a symlink), retried until
 * timeout_ms. Returns the fd. */
int hostfs_lock(const struct hostfs *fs, const char *path, int timeout_ms);
/* The same on a lock file in a directory only root may use: the directory is created 0700 if
 * missing; -EPERM when it (or the file) is someone else's, reachable by others, or a link. */
int hostfs_lock_private(const struct hostfs *fs, const char *path, int timeout_ms);
void hostfs_unlock(int fd);
/* 1 when another process holds a flock on path, 0 when not (or the file is missing). */
int hostfs_is_locked(const struct hostfs *fs, const char *path);

/* A pmxcfs cluster-wide lock, as PVE::Cluster::cfs_lock takes it: mkdir of a directory under
 * /etc/pve/priv/lock, retried until timeout_ms (each failed try touches it with utime(0, 0),
 * which asks pmxcfs to drop it if it expired: pmxcfs lock directories live 120 s). Release with
 * hostfs_cluster_unlock(). -ETIMEDOUT when another holder keeps it. */
int hostfs_cluster_lock(const struct hostfs *fs, const char *lockdir, int timeout_ms);
void hostfs_cluster_unlock(const struct hostfs *fs, const char *lockdir);

/* Short host name, for when /etc/pve/local does not tell this node's name. */
int hostfs_hostname(const struct hostfs *fs, char *buf, size_t size);

#endif
