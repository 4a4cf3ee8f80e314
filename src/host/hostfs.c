#include "hostfs.h"

#include "cleanup.h"
#include "strutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Host paths are absolute; below the root they are relative to rootfd. */
static const char *rel(const char *path) {
    while (*path == '/') {
        path++;
    }
    return *path ? path : ".";
}

int hostfs_open(struct hostfs *fs, const char *root) {
    if (!root || !*root) {
        root = "/";
    }
    if (str_fmt(fs->root, sizeof(fs->root), "%s", root) < 0) {
        return -ENAMETOOLONG;
    }
    fs->confined = strcmp(root, "/") != 0;
    fs->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fs->rootfd < 0 ? -errno : 0;
}

void hostfs_close(struct hostfs *fs) {
    if (fs->rootfd >= 0) {
        close(fs->rootfd);
    }
    fs->rootfd = -1;
}

/* EAGAIN: with RESOLVE_IN_ROOT or RESOLVE_BENEATH the kernel refuses a ".." it cannot prove
 * safe because a rename or mount happened anywhere on the machine meanwhile (openat2(2):
 * "the caller may choose to retry"). sysfs links are all "../../..", so a busy host would make
 * devices look missing; retried, boundedly. */
#define OPENAT2_EAGAIN_TRIES 10000

static int openat2_retry(int dirfd, const char *path, const struct open_how *how) {
    int fd, tries = 0;
    do {
        fd = (int)syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
    } while (fd < 0 && (errno == EINTR || (errno == EAGAIN && ++tries < OPENAT2_EAGAIN_TRIES)));
    return fd;
}

/* Open path relative to dirfd. Below a root that is not "/", absolute symlinks and ".."
 * resolve inside the root (openat2 RESOLVE_IN_ROOT, Linux 5.6+; resolve = RESOLVE_BENEATH
 * for paths relative to a directory below the root), so a captured host tree cannot send a
 * read or a write to the real host. Kernels without openat2 fall back to openat. */
static int open_in(
    const struct hostfs *fs, int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve
) {
    int fd;
    if (fs->confined) {
        struct open_how how = {
            .flags = (uint64_t)(flags | O_CLOEXEC),
            .mode = flags & O_CREAT ? mode : 0,
            .resolve = resolve};
        fd = openat2_retry(dirfd, path, &how);
        if (fd >= 0 || errno != ENOSYS) {
            return fd < 0 ? -errno : fd;
        }
    }
    do {
        fd = openat(dirfd, path, flags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

static int open_rel(const struct hostfs *fs, const char *path, int flags, mode_t mode) {
    return open_in(fs, fs->rootfd, rel(path), flags, mode, RESOLVE_IN_ROOT);
}

/* The directory a path's last component lives in, opened with the root's confinement, and that
 * component: every create, rename, link and unlink works on this pair, so none of them can
 * leave the root through a symlinked directory. */
struct parent {
    int fd;
    char name[NAME_MAX + 1];
};

static int parent_open(const struct hostfs *fs, const char *path, struct parent *p) {
    p->fd = -1;
    const char *r = rel(path);
    size_t len = strlen(r);
    while (len > 1 && r[len - 1] == '/') {
        len--;
    }
    const char *slash = memrchr(r, '/', len);
    const char *name = slash ? slash + 1 : r;
    size_t nl = len - (size_t)(name - r);
    if (nl == 0 || nl > NAME_MAX || (nl == 1 && name[0] == '.') ||
        (nl == 2 && name[0] == '.' && name[1] == '.')) {
        return -EINVAL;
    }
    memcpy(p->name, name, nl);
    p->name[nl] = '\0';
    char dir[PATH_MAX];
    int ret = slash ? str_fmt(dir, sizeof(dir), "%.*s", (int)(slash - r), r)
                    : str_fmt(dir, sizeof(dir), ".");
    if (ret < 0) {
        return ret;
    }
    p->fd = open_in(fs, fs->rootfd, dir[0] ? dir : "/", O_PATH | O_DIRECTORY, 0, RESOLVE_IN_ROOT);
    return p->fd < 0 ? p->fd : 0;
}

static void parent_close(struct parent *p) {
    if (p->fd >= 0) {
        close(p->fd);
    }
    p->fd = -1;
}

static ssize_t read_all(int fd, char *buf, size_t size) {
    size_t got = 0;
    while (got < size) {
        size_t want = size - got;
        ssize_t n = read(fd, buf + got, want);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return -errno;
        }
        got += (size_t)n;
        if ((size_t)n < want) {
            break; /* short read: end of file */
        }
    }
    return (ssize_t)got;
}

/* One small text file from an open fd: content plus its newline must fit in size bytes
 * (-EFBIG otherwise, never cut); one trailing newline is dropped. */
static ssize_t read_text(int fd, char *buf, size_t size) {
    if (size < 2) {
        return -EINVAL;
    }
    ssize_t n = read_all(fd, buf, size);
    if (n < 0) {
        return n;
    }
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
    }
    if ((size_t)n >= size) {
        return -EFBIG;
    }
    buf[n] = '\0';
    return n;
}

/* A small text file opened by fd (closed here). */
static ssize_t read_fd_text(int fd, char *buf, size_t size) {
    if (fd < 0) {
        return fd;
    }
    ssize_t n = read_text(fd, buf, size);
    close(fd);
    return n;
}

ssize_t
hostfs_read_at(const struct hostfs *fs, int dirfd, const char *relpath, char *buf, size_t size) {
    return read_fd_text(open_in(fs, dirfd, relpath, O_RDONLY, 0, RESOLVE_BENEATH), buf, size);
}

ssize_t hostfs_read(const struct hostfs *fs, const char *path, char *buf, size_t size) {
    return read_fd_text(open_rel(fs, path, O_RDONLY, 0), buf, size);
}

int hostfs_dir_open(const struct hostfs *fs, const char *path) {
    return open_rel(fs, path, O_RDONLY | O_DIRECTORY, 0);
}

void hostfs_dir_close(int dirfd) {
    if (dirfd >= 0) {
        close(dirfd);
    }
}

int hostfs_read_alloc(
    const struct hostfs *fs, const char *path, size_t max, char **out, size_t *len
) {
    *out = NULL;
    _cleanup_close_ int fd = open_rel(fs, path, O_RDONLY, 0);
    if (fd < 0) {
        return fd;
    }
    size_t cap = 4096, used = 0;
    _cleanup_free_ char *buf = malloc(cap + 1);
    if (!buf) {
        return -ENOMEM;
    }
    for (;;) {
        if (used == cap) {
            if (cap > max) {
                return -EFBIG;
            }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                return -ENOMEM;
            }
            buf = nb;
        }
        ssize_t n = read_all(fd, buf + used, cap - used);
        if (n < 0) {
            return (int)n;
        }
        used += (size_t)n;
        if (used < cap) {
            break;
        }
    }
    if (used > max) {
        return -EFBIG;
    }
    buf[used] = '\0';
    if (len) {
        *len = used;
    }
    *out = TAKE_PTR(buf);
    return 0;
}

static int parse_long(const char *buf, long *out) {
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno || end == buf || *end != '\0') {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int hostfs_read_long_at(const struct hostfs *fs, int dirfd, const char *relpath, long *out) {
    char buf[64];
    ssize_t n = hostfs_read_at(fs, dirfd, relpath, buf, sizeof(buf));
    return n < 0 ? (int)n : parse_long(buf, out);
}

int hostfs_read_long(const struct hostfs *fs, const char *path, long *out) {
    char buf[64];
    ssize_t n = hostfs_read(fs, path, buf, sizeof(buf));
    return n < 0 ? (int)n : parse_long(buf, out);
}

int hostfs_write_str(const struct hostfs *fs, const char *path, const char *s) {
    _cleanup_close_ int fd = open_rel(fs, path, O_WRONLY, 0);
    if (fd < 0) {
        return fd;
    }
    size_t len = strlen(s);
    ssize_t n;
    do {
        n = write(fd, s, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return -errno;
    }
    return (size_t)n == len ? 0 : -EIO;
}

ssize_t hostfs_readlink(const struct hostfs *fs, const char *path, char *buf, size_t size) {
    struct parent p;
    int r = parent_open(fs, path, &p);
    if (r < 0) {
        return r;
    }
    ssize_t n = readlinkat(p.fd, p.name, buf, size);
    r = n < 0 ? -errno : 0;
    parent_close(&p);
    if (r < 0) {
        return r;
    }
    if ((size_t)n >= size) {
        return -ENAMETOOLONG;
    }
    buf[n] = '\0';
    return n;
}

/* The last component of a link target, without trailing slashes, into buf. */
static int target_basename(char *target, ssize_t n, char *buf, size_t size) {
    if (n < 0) {
        return (int)n;
    }
    while (n > 0 && target[n - 1] == '/') {
        target[--n] = '\0';
    }
    const char *slash = strrchr(target, '/');
    return str_fmt(buf, size, "%s", slash ? slash + 1 : target);
}

ssize_t hostfs_readlink_at(int dirfd, const char *name, char *buf, size_t size) {
    /* one component inside a directory opened below the root: nothing to resolve */
    if (!*name || strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, ".")) {
        return -EINVAL;
    }
    ssize_t n = readlinkat(dirfd, name, buf, size);
    if (n < 0) {
        return -errno;
    }
    if ((size_t)n >= size) {
        return -ENAMETOOLONG;
    }
    buf[n] = '\0';
    return n;
}

int hostfs_link_basename_at(int dirfd, const char *name, char *buf, size_t size) {
    char target[PATH_MAX];
    return target_basename(
        target, hostfs_readlink_at(dirfd, name, target, sizeof(target)), buf, size
    );
}

int hostfs_link_basename(const struct hostfs *fs, const char *path, char *buf, size_t size) {
    char target[PATH_MAX];
    return target_basename(target, hostfs_readlink(fs, path, target, sizeof(target)), buf, size);
}

int hostfs_stat(const struct hostfs *fs, const char *path, mode_t *mode, off_t *size) {
    _cleanup_close_ int fd = open_rel(fs, path, O_PATH, 0);
    struct stat st;
    if (fd < 0) {
        return fd;
    }
    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if (mode) {
        *mode = st.st_mode;
    }
    if (size) {
        *size = st.st_size;
    }
    return 0;
}

int hostfs_same_file(const struct hostfs *fs, const char *a, const char *b) {
    _cleanup_close_ int fa = open_rel(fs, a, O_PATH, 0);
    _cleanup_close_ int fb = fa < 0 ? -1 : open_rel(fs, b, O_PATH, 0);
    struct stat sa, sb;
    if (fa < 0 || fb < 0) {
        return fa < 0 ? fa : fb;
    }
    if (fstat(fa, &sa) < 0 || fstat(fb, &sb) < 0) {
        return -errno;
    }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int hostfs_exists(const struct hostfs *fs, const char *path) {
    int fd = open_rel(fs, path, O_PATH, 0);
    if (fd >= 0) {
        close(fd);
    }
    return fd < 0 ? fd : 0;
}

int hostfs_lexists(const struct hostfs *fs, const char *path) {
    struct parent p;
    struct stat st;
    int r = parent_open(fs, path, &p);
    if (r == 0 && fstatat(p.fd, p.name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        r = -errno;
    }
    parent_close(&p);
    return r;
}

int hostfs_is_dir(const struct hostfs *fs, const char *path) {
    mode_t mode;
    int r = hostfs_stat(fs, path, &mode, NULL);
    if (r < 0) {
        return r;
    }
    return S_ISDIR(mode) ? 0 : -ENOTDIR;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct linux_dirent64 {
    ino64_t d_ino;
    off64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* List an open directory (fd is closed) with raw getdents64: no opendir buffer allocation and
 * no fcntl per directory. */
static int list_fd(int fd, struct hostfs_list *out) {
    out->names = NULL;
    out->n = 0;
    if (fd < 0) {
        return fd;
    }
    size_t cap = 0;
    char buf[16384] __attribute__((aligned(8)));
    int r = 0;
    for (;;) {
        long nread = syscall(SYS_getdents64, fd, buf, sizeof(buf));
        if (nread <= 0) {
            r = nread < 0 ? -errno : 0;
            break;
        }
        for (long pos = 0; pos < nread && r == 0;) {
            struct linux_dirent64 *de = (struct linux_dirent64 *)(buf + pos);
            pos += de->d_reclen;
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
                continue;
            }
            if (out->n == cap) {
                cap = cap ? cap * 2 : 16;
                char **nn = realloc(out->names, cap * sizeof(*nn));
                if (!nn) {
                    r = -ENOMEM;
                    break;
                }
                out->names = nn;
            }
            if (!(out->names[out->n] = strdup(de->d_name))) {
                r = -ENOMEM;
                break;
            }
            out->n++;
        }
        if (r < 0) {
            break;
        }
    }
    close(fd);
    if (r < 0) {
        hostfs_list_free(out);
        return r;
    }
    /* sysfs returns entries in hash order; callers want a stable order. */
    if (out->n) {
        qsort(out->names, out->n, sizeof(*out->names), cmp_names);
    }
    return 0;
}

int hostfs_list_at(
    const struct hostfs *fs, int dirfd, const char *relpath, struct hostfs_list *out
) {
    return list_fd(open_in(fs, dirfd, relpath, O_RDONLY | O_DIRECTORY, 0, RESOLVE_BENEATH), out);
}

int hostfs_list(const struct hostfs *fs, const char *path, struct hostfs_list *out) {
    return list_fd(open_rel(fs, path, O_RDONLY | O_DIRECTORY, 0), out);
}

void hostfs_list_free(struct hostfs_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->names[i]);
    }
    free(l->names);
    l->names = NULL;
    l->n = 0;
}

/* Write data to a new file name in dir (O_EXCL; a stale one of a dead run is replaced first),
 * with mode, and make it durable. On failure nothing is left behind. */
static int write_new_file(
    int dirfd, const char *name, const char *data, size_t len, mode_t mode, const struct stat *owner
) {
    (void)unlinkat(dirfd, name, 0);
    int fd;
    do {
        fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return -errno;
    }
    int r = 0;
    for (size_t done = 0; done < len && r == 0;) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno != EINTR) {
            r = -errno;
        } else if (n > 0) {
            done += (size_t)n;
        }
    }
    if (r == 0 && owner) {
        /* pmxcfs accepts only its own modes and owners: failing to copy them is not fatal. */
        (void)fchmod(fd, mode);
        (void)!fchown(fd, owner->st_uid, owner->st_gid);
    }
    /* A VM must come up after a power cut too: make the content durable before the rename.
     * FUSE (pmxcfs) may not implement fsync; that is not an error. */
    if (r == 0 && fsync(fd) < 0 && errno != EINVAL && errno != ENOSYS) {
        r = -errno;
    }
    if (close(fd) < 0 && r == 0) {
        r = -errno;
    }
    if (r < 0) {
        (void)unlinkat(dirfd, name, 0);
    }
    return r;
}

/* Temp names in the target's directory, as PVE's file_set_contents names them. */
static int temp_name(char *buf, size_t size, const char *name, const char *tag) {
    return str_fmt(buf, size, "%s.%s.%ld", name, tag, (long)getpid());
}

int hostfs_replace_file(
    const struct hostfs *fs, const char *path, const char *data, size_t len, mode_t mode_if_new
) {
    const struct hostfs_change c = {
        .fs = fs, .path = path, .data = data, .len = len, .mode_if_new = mode_if_new};
    return hostfs_replace_files(&c, 1, NULL);
}

/* One file of a transaction: its directory, and the names of its temp files. */
struct staged {
    struct parent dir;
    bool had_old;     /* the file existed */
    bool new_written; /* name.tmp.<pid> holds the new content */
    bool old_kept;    /* name.undo.<pid> holds the old content */
    bool applied;
    char tmp[NAME_MAX + 1];
    char undo[NAME_MAX + 1];
};

/* Delete a temp file of ours; a failure is retried, since one left in /etc/pve is copied to
 * every node of the cluster. */
static int unlink_temp(int dirfd, const char *name) {
    for (int attempt = 0;; attempt++) {
        if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) {
            return 0;
        }
        if (attempt == 2) {
            return -errno;
        }
        sleep_ms(50);
    }
}

/* Note a copy that stays behind in the report: the caller says so. */
static void report_stale(struct hostfs_txn_report *rep, size_t at, const char *name) {
    if (rep && rep->stale++ == 0) {
        rep->stale_at = at;
        snprintf(rep->stale_name, sizeof(rep->stale_name), "%s", name);
    }
}

static void unstage(struct staged *s, size_t at, struct hostfs_txn_report *rep) {
    if (s->dir.fd < 0) {
        return;
    }
    if (s->new_written && unlink_temp(s->dir.fd, s->tmp) < 0) {
        report_stale(rep, at, s->tmp);
    }
    if (s->old_kept && unlink_temp(s->dir.fd, s->undo) < 0) {
        report_stale(rep, at, s->undo);
    }
    parent_close(&s->dir);
}

/* Is name "<file>.tmp.<pid>" or "<file>.undo.<pid>", a copy a change of file makes? */
static bool is_temp_of(const char *name, const char *file) {
    size_t fl = strlen(file);
    if (strncmp(name, file, fl) || name[fl] != '.') {
        return false;
    }
    const char *tag = name + fl + 1;
    const char *digits = !strncmp(tag, "tmp.", 4)    ? tag + 4
                         : !strncmp(tag, "undo.", 5) ? tag + 5
                                                     : NULL;
    return digits && *digits && strspn(digits, "0123456789") == strlen(digits);
}

/* Remove the copies an earlier change of the file in dir left behind (see sweep_stale). */
static void sweep_dir(const struct parent *dir, size_t at, struct hostfs_txn_report *rep) {
    int fd = openat(dir->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (is_temp_of(de->d_name, dir->name) && unlink_temp(dir->fd, de->d_name) < 0) {
            report_stale(rep, at, de->d_name);
        }
    }
    closedir(d);
}

int hostfs_sweep_stale(const struct hostfs *fs, const char *path, struct hostfs_txn_report *rep) {
    struct parent p;
    int r = parent_open(fs, path, &p);
    if (r == 0) {
        sweep_dir(&p, 0, rep);
    }
    parent_close(&p);
    return r;
}

/* Prepare one change: the new content and a copy of the old one, both as temp files beside the
 * target, so that applying and undoing are single renames. */
static int
stage(const struct hostfs_change *c, struct staged *s, size_t at, struct hostfs_txn_report *rep) {
    memset(s, 0, sizeof(*s));
    s->dir.fd = -1;
    int r = parent_open(c->fs, c->path, &s->dir);
    if (r < 0) {
        return r;
    }
    if (c->sweep_stale) {
        sweep_dir(&s->dir, at, rep);
    }
    if ((r = temp_name(s->tmp, sizeof(s->tmp), s->dir.name, "tmp")) < 0 ||
        (r = temp_name(s->undo, sizeof(s->undo), s->dir.name, "undo")) < 0) {
        return r;
    }
    struct stat old;
    s->had_old = fstatat(s->dir.fd, s->dir.name, &old, 0) == 0;
    mode_t mode = s->had_old ? (old.st_mode & 07777) : c->mode_if_new;
    if (c->data) {
        r = write_new_file(s->dir.fd, s->tmp, c->data, c->len, mode, s->had_old ? &old : NULL);
        if (r < 0) {
            return r;
        }
        s->new_written = true;
    }
    if (s->had_old && c->old) {
        r = write_new_file(s->dir.fd, s->undo, c->old, c->old_len, mode, &old);
        if (r < 0) {
            return r;
        }
        s->old_kept = true;
    }
    return 0;
}

static int apply(const struct hostfs_change *c, struct staged *s) {
    int r;
    if (c->data) {
        r = renameat(s->dir.fd, s->tmp, s->dir.fd, s->dir.name) < 0 ? -errno : 0;
        s->new_written = r < 0;
    } else {
        r = unlinkat(s->dir.fd, s->dir.name, 0) < 0 && errno != ENOENT ? -errno : 0;
    }
    s->applied = r == 0;
    return r;
}

/* Put a file back as it was before apply(). */
static int undo(struct staged *s) {
    if (!s->had_old) {
        return unlinkat(s->dir.fd, s->dir.name, 0) < 0 && errno != ENOENT ? -errno : 0;
    }
    if (!s->old_kept) {
        return -ENODATA;
    }
    int r = renameat(s->dir.fd, s->undo, s->dir.fd, s->dir.name) < 0 ? -errno : 0;
    s->old_kept = r < 0;
    return r;
}

int hostfs_replace_files(
    const struct hostfs_change *changes, size_t n, struct hostfs_txn_report *rep
) {
    struct staged *st = calloc(n ? n : 1, sizeof(*st));
    if (!st) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        st[i].dir.fd = -1;
    }
    int r = 0;
    size_t i;
    struct hostfs_txn_report local;
    rep = rep ? rep : &local;
    *rep = (struct hostfs_txn_report){0};
    /* 1. Everything written beside the targets: a failure here changes nothing. */
    for (i = 0; i < n; i++) {
        if ((r = stage(&changes[i], &st[i], i, rep)) < 0) {
            break;
        }
    }
    /* 2. Renames in order; a failure puts the files already renamed back. */
    for (i = r < 0 ? i : 0; r == 0 && i < n; i++) {
        if ((r = apply(&changes[i], &st[i])) < 0) {
            break;
        }
    }
    rep->failed_at = r < 0 ? i : n;
    for (size_t j = i; r < 0 && j-- > 0;) {
        if (st[j].applied && undo(&st[j]) < 0) {
            rep->not_undone++;
        }
    }
    for (size_t j = 0; j < n; j++) {
        unstage(&st[j], j, rep);
    }
    free(st);
    return r;
}

int hostfs_unlink(const struct hostfs *fs, const char *path) {
    struct parent p;
    int r = parent_open(fs, path, &p);
    if (r == 0 && unlinkat(p.fd, p.name, 0) < 0) {
        r = -errno;
    }
    parent_close(&p);
    return r;
}

int hostfs_mkdir(const struct hostfs *fs, const char *path, mode_t mode) {
    struct parent p;
    int r = parent_open(fs, path, &p);
    if (r == 0 && mkdirat(p.fd, p.name, mode) < 0) {
        r = -errno;
    }
    parent_close(&p);
    return r;
}

int hostfs_symlink(const struct hostfs *fs, const char *target, const char *path) {
    struct parent p;
    int r = parent_open(fs, path, &p);
    if (r == 0 && symlinkat(target, p.fd, p.name) < 0) {
        r = -errno;
    }
    parent_close(&p);
    return r;
}

/* Is st something only we (root) can change: owned by us, not writable by group or others? */
static bool only_ours(const struct stat *st) {
    return st->st_uid == geteuid() && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/* The file behind fd and every directory above it up to the root: only root may change them
 * (sshd's StrictModes). why names the first one that fails. */
static int check_trusted(const struct hostfs *fs, int fd, char *why, size_t whysize) {
    char link[64], real[PATH_MAX], rootreal[PATH_MAX];
    struct stat st;
    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
        snprintf(why, whysize, "it is not an executable file");
        return -EPERM;
    }
    if (!only_ours(&st)) {
        snprintf(
            why, whysize, "it is %s",
            st.st_uid != geteuid() ? "not owned by root" : "writable by group or others"
        );
        return -EPERM;
    }
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof(real) - 1);
    if (n < 0 || !realpath(fs->root, rootreal)) {
        snprintf(why, whysize, "its real path cannot be told");
        return -EPERM;
    }
    real[n] = '\0';
    size_t rl = strcmp(rootreal, "/") ? strlen(rootreal) : 0;
    for (char *slash = strrchr(real, '/'); slash && (size_t)(slash - real) >= rl;
         slash = strrchr(real, '/')) {
        *slash = '\0';
        const char *dir = real[0] ? real : "/";
        if (lstat(dir, &st) < 0) {
            snprintf(why, whysize, "directory %s cannot be checked", dir);
            return -EPERM;
        }
        if (!only_ours(&st)) {
            snprintf(
                why, whysize, "directory %s is %s", dir,
                st.st_uid != geteuid() ? "not owned by root" : "writable by group or others"
            );
            return -EPERM;
        }
        if (!real[0]) {
            break;
        }
    }
    return 0;
}

int hostfs_run_trusted(
    const struct hostfs *fs, const char *path, char *const argv[], int timeout_ms, int *status,
    char *why, size_t whysize
) {
    why[0] = '\0';
    _cleanup_close_ int fd = open_rel(fs, path, O_PATH, 0);
    if (fd < 0) {
        return fd;
    }
    int r = check_trusted(fs, fd, why, whysize);
    if (r < 0) {
        return r;
    }
    fflush(stdout);
    fflush(stderr); /* keep the order of lines in the task log */
    pid_t pid = fork();
    if (pid < 0) {
        return -errno;
    }
    if (pid == 0) {
        /* Its own process group, so that a timeout ends the hook and what it started. The fd
         * stays open across exec: a script's interpreter reads it as /dev/fd/N. */
        setpgid(0, 0);
        fcntl(fd, F_SETFD, 0);
        syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
        _exit(127);
    }
    long deadline = mono_ms() + timeout_ms, killed_at = 0;
    int st;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            break;
        }
        if (w < 0 && errno != EINTR) {
            return -errno;
        }
        long now = mono_ms();
        if (!killed_at && now >= deadline) {
            kill(-pid, SIGTERM);
            killed_at = now;
        } else if (killed_at && now >= killed_at + 2000) {
            kill(-pid, SIGKILL);
        }
        sleep_ms(20);
    }
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return killed_at ? -ETIMEDOUT : 0;
}

/* Retry a non-blocking flock on fd until timeout_ms; the fd is closed on failure. */
static int flock_wait(int fd, int timeout_ms) {
    long start = mono_ms();
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            return fd;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int r = -errno;
            close(fd);
            return r;
        }
        if (mono_ms() - start >= timeout_ms) {
            close(fd);
            return -ETIMEDOUT;
        }
        sleep_ms(20);
    }
}

int hostfs_lock(const struct hostfs *fs, const char *path, int timeout_ms) {
    int fd = open_rel(fs, path, O_RDWR | O_CREAT | O_NOFOLLOW, 0644);
    return fd < 0 ? fd : flock_wait(fd, timeout_ms);
}

int hostfs_lock_private(const struct hostfs *fs, const char *path, int timeout_ms) {
    struct parent p;
    struct stat st;
    int r = parent_open(fs, path, &p);
    if (r == -ENOENT) {
        /* the directory is created on first use, root-only */
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        if (!slash || str_fmt(dir, sizeof(dir), "%.*s", (int)(slash - path), path) < 0) {
            return -EINVAL;
        }
        r = hostfs_mkdir(fs, dir, 0700);
        if (r < 0 && r != -EEXIST) {
            return r;
        }
        r = parent_open(fs, path, &p);
    }
    if (r < 0) {
        return r;
    }
    /* The directory must be ours alone, or anyone could hold the lock or swap the file. */
    if (fstat(p.fd, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 077)) {
        parent_close(&p);
        return -EPERM;
    }
    int fd;
    do {
        fd = openat(p.fd, p.name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    } while (fd < 0 && errno == EINTR);
    r = fd < 0 ? -errno : 0;
    parent_close(&p);
    if (r < 0) {
        return r == -ELOOP ? -EPERM : r;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        close(fd);
        return -EPERM;
    }
    return flock_wait(fd, timeout_ms);
}

void hostfs_unlock(int fd) {
    if (fd >= 0) {
        close(fd); /* closing the only descriptor releases the flock */
    }
}

int hostfs_cluster_lock(const struct hostfs *fs, const char *lockdir, int timeout_ms) {
    struct parent p;
    int r = parent_open(fs, lockdir, &p);
    if (r < 0) {
        return r;
    }
    long start = mono_ms();
    for (;;) {
        if (mkdirat(p.fd, p.name, 0700) == 0) {
            break;
        }
        if (errno != EEXIST) {
            r = -errno;
            break;
        }
        const struct timespec zero[2] = {{0, 0}, {0, 0}};
        (void)utimensat(p.fd, p.name, zero, AT_SYMLINK_NOFOLLOW); /* pmxcfs: unlock if expired */
        if (mono_ms() - start >= timeout_ms) {
            r = -ETIMEDOUT;
            break;
        }
        sleep_ms(100);
    }
    parent_close(&p);
    return r;
}

void hostfs_cluster_unlock(const struct hostfs *fs, const char *lockdir) {
    struct parent p;
    if (parent_open(fs, lockdir, &p) == 0) {
        (void)unlinkat(p.fd, p.name, AT_REMOVEDIR);
    }
    parent_close(&p);
}

int hostfs_is_locked(const struct hostfs *fs, const char *path) {
    _cleanup_close_ int fd = open_rel(fs, path, O_RDONLY | O_NOFOLLOW, 0);
    if (fd == -ENOENT) {
        return 0;
    }
    if (fd < 0) {
        return fd;
    }
    /* A shared probe conflicts with PVE's exclusive lock and is dropped at once. */
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        return 0;
    }
    return errno == EWOULDBLOCK ? 1 : -errno;
}

int hostfs_hostname(const struct hostfs *fs, char *buf, size_t size) {
    char name[256];
    ssize_t n = hostfs_read(fs, "/etc/hostname", name, sizeof(name));
    if (n <= 0) {
        if (gethostname(name, sizeof(name)) < 0) {
            return -errno;
        }
        name[sizeof(name) - 1] = '\0';
    }
    name[strcspn(name, ". \t\n")] = '\0';
    if (!name[0]) {
        return -ENOENT;
    }
    return str_fmt(buf, size, "%s", name);
}
