#include "hostfs.h"

#include "cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <spawn.h>
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

int path_fmt(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) {
        return -ENAMETOOLONG;
    }
    return 0;
}

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
    if (path_fmt(fs->root, sizeof(fs->root), "%s", root) < 0) {
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

/* Opens below a root that is not "/" resolve absolute symlinks and ".." inside the root
 * (openat2 RESOLVE_IN_ROOT, Linux 5.6+), so a captured host tree cannot send a read or a
 * write to the real host. Kernels without openat2 fall back to openat. */
static int open_rel(const struct hostfs *fs, const char *path, int flags, mode_t mode) {
    int fd;
    if (fs->confined) {
        struct open_how how = {
            .flags = (uint64_t)(flags | O_CLOEXEC),
            .mode = flags & O_CREAT ? mode : 0,
            .resolve = RESOLVE_IN_ROOT};
        do {
            fd = (int)syscall(SYS_openat2, fs->rootfd, rel(path), &how, sizeof(how));
        } while (fd < 0 && errno == EINTR);
        if (fd >= 0 || errno != ENOSYS) {
            return fd < 0 ? -errno : fd;
        }
    }
    do {
        fd = openat(fs->rootfd, rel(path), flags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
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

ssize_t hostfs_read_at(int dirfd, const char *relpath, char *buf, size_t size) {
    int fd;
    do {
        fd = openat(dirfd, relpath, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return -errno;
    }
    ssize_t n = read_text(fd, buf, size);
    close(fd);
    return n;
}

ssize_t hostfs_read(const struct hostfs *fs, const char *path, char *buf, size_t size) {
    int fd = open_rel(fs, path, O_RDONLY, 0);
    if (fd < 0) {
        return fd;
    }
    ssize_t n = read_text(fd, buf, size);
    close(fd);
    return n;
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

int hostfs_read_long_at(int dirfd, const char *relpath, long *out) {
    char buf[64];
    ssize_t n = hostfs_read_at(dirfd, relpath, buf, sizeof(buf));
    if (n < 0) {
        return (int)n;
    }
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno || end == buf || *end != '\0') {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int hostfs_read_long(const struct hostfs *fs, const char *path, long *out) {
    return hostfs_read_long_at(fs->rootfd, rel(path), out);
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
    ssize_t n = readlinkat(fs->rootfd, rel(path), buf, size);
    if (n < 0) {
        return -errno;
    }
    if ((size_t)n >= size) {
        return -ENAMETOOLONG;
    }
    buf[n] = '\0';
    return n;
}

int hostfs_link_basename(const struct hostfs *fs, const char *path, char *buf, size_t size) {
    char target[PATH_MAX];
    ssize_t n = hostfs_readlink(fs, path, target, sizeof(target));
    if (n < 0) {
        return (int)n;
    }
    while (n > 0 && target[n - 1] == '/') {
        target[--n] = '\0';
    }
    const char *slash = strrchr(target, '/');
    return path_fmt(buf, size, "%s", slash ? slash + 1 : target);
}

int hostfs_exists(const struct hostfs *fs, const char *path) {
    return faccessat(fs->rootfd, rel(path), F_OK, 0) < 0 ? -errno : 0;
}

int hostfs_lexists(const struct hostfs *fs, const char *path) {
    struct stat st;
    return fstatat(fs->rootfd, rel(path), &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

int hostfs_stat(const struct hostfs *fs, const char *path, mode_t *mode, off_t *size) {
    struct stat st;
    if (fstatat(fs->rootfd, rel(path), &st, 0) < 0) {
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

/* Raw getdents64: no opendir buffer allocation and no fcntl per directory. */
/* List an open directory (fd is closed). */
static int list_fd(int fd, struct hostfs_list *out) {
    out->names = NULL;
    out->n = 0;
    size_t cap = 0;
    char buf[16384] __attribute__((aligned(8)));
    for (;;) {
        long nread = syscall(SYS_getdents64, fd, buf, sizeof(buf));
        if (nread < 0) {
            int r = -errno;
            close(fd);
            hostfs_list_free(out);
            return r;
        }
        if (nread == 0) {
            break;
        }
        for (long pos = 0; pos < nread;) {
            struct linux_dirent64 *de = (struct linux_dirent64 *)(buf + pos);
            pos += de->d_reclen;
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
                continue;
            }
            if (out->n == cap) {
                cap = cap ? cap * 2 : 16;
                char **nn = realloc(out->names, cap * sizeof(*nn));
                if (!nn) {
                    close(fd);
                    hostfs_list_free(out);
                    return -ENOMEM;
                }
                out->names = nn;
            }
            if (!(out->names[out->n] = strdup(de->d_name))) {
                close(fd);
                hostfs_list_free(out);
                return -ENOMEM;
            }
            out->n++;
        }
    }
    close(fd);
    /* sysfs returns entries in hash order; callers want a stable order. */
    if (out->n) {
        qsort(out->names, out->n, sizeof(*out->names), cmp_names);
    }
    return 0;
}

int hostfs_list_at(int dirfd, const char *relpath, struct hostfs_list *out) {
    int fd;
    do {
        fd = openat(dirfd, relpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        out->names = NULL;
        out->n = 0;
        return -errno;
    }
    return list_fd(fd, out);
}

int hostfs_list(const struct hostfs *fs, const char *path, struct hostfs_list *out) {
    int fd = open_rel(fs, path, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) {
        out->names = NULL;
        out->n = 0;
        return fd;
    }
    return list_fd(fd, out);
}

void hostfs_list_free(struct hostfs_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->names[i]);
    }
    free(l->names);
    l->names = NULL;
    l->n = 0;
}

int hostfs_replace_file(
    const struct hostfs *fs, const char *path, const char *data, size_t len, mode_t mode_if_new
) {
    char tmp[PATH_MAX];
    int r = path_fmt(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (r < 0) {
        return r;
    }
    struct stat old;
    bool have_old = fstatat(fs->rootfd, rel(path), &old, 0) == 0;
    mode_t mode = have_old ? (old.st_mode & 07777) : mode_if_new;

    /* Same naming as PVE's file_set_contents; a stale temp file of a dead run is replaced. */
    unlinkat(fs->rootfd, rel(tmp), 0);
    _cleanup_close_ int fd = open_rel(fs, tmp, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) {
        return fd;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            r = -errno;
            goto fail;
        }
        done += (size_t)n;
    }
    if (have_old) {
        /* pmxcfs accepts only its own modes and owners: failing to copy them is not fatal. */
        (void)fchmod(fd, mode);
        (void)!fchown(fd, old.st_uid, old.st_gid);
    }
    /* A VM must come up after a power cut too: make the content durable before the rename.
     * FUSE (pmxcfs) may not implement fsync; that is not an error. */
    if (fsync(fd) < 0 && errno != EINVAL && errno != ENOSYS) {
        r = -errno;
        goto fail;
    }
    if (close(TAKE_FD(fd)) < 0) {
        r = -errno;
        goto fail;
    }
    if (renameat(fs->rootfd, rel(tmp), fs->rootfd, rel(path)) < 0) {
        r = -errno;
        goto fail;
    }
    return 0;
fail:
    unlinkat(fs->rootfd, rel(tmp), 0);
    return r;
}

int hostfs_unlink(const struct hostfs *fs, const char *path) {
    return unlinkat(fs->rootfd, rel(path), 0) < 0 ? -errno : 0;
}

int hostfs_mkdir(const struct hostfs *fs, const char *path, mode_t mode) {
    return mkdirat(fs->rootfd, rel(path), mode) < 0 ? -errno : 0;
}

int hostfs_symlink(const struct hostfs *fs, const char *target, const char *path) {
    return symlinkat(target, fs->rootfd, rel(path)) < 0 ? -errno : 0;
}

int hostfs_run(const struct hostfs *fs, const char *path, char *const argv[], int *status) {
    char full[PATH_MAX];
    int r = path_fmt(full, sizeof(full), "%s/%s", strcmp(fs->root, "/") ? fs->root : "", rel(path));
    if (r < 0) {
        return r;
    }
    fflush(stdout);
    fflush(stderr); /* keep the order of lines in the task log */
    pid_t pid;
    r = posix_spawn(&pid, full, NULL, NULL, argv, environ);
    if (r) {
        return -r;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 0;
}

int hostfs_lock(const struct hostfs *fs, const char *path, int timeout_ms) {
    int fd = open_rel(fs, path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) {
        return fd;
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            return fd;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int r = -errno;
            close(fd);
            return r;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= timeout_ms) {
            close(fd);
            return -ETIMEDOUT;
        }
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

void hostfs_unlock(int fd) {
    if (fd >= 0) {
        close(fd); /* closing the only descriptor releases the flock */
    }
}

int hostfs_cluster_lock(const struct hostfs *fs, const char *lockdir, int timeout_ms) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (mkdirat(fs->rootfd, rel(lockdir), 0700) == 0) {
            return 0;
        }
        if (errno != EEXIST) {
            return -errno;
        }
        const struct timespec zero[2] = {{0, 0}, {0, 0}};
        (void)utimensat(fs->rootfd, rel(lockdir), zero, 0); /* pmxcfs: unlock if expired */
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= timeout_ms) {
            return -ETIMEDOUT;
        }
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

void hostfs_cluster_unlock(const struct hostfs *fs, const char *lockdir) {
    (void)unlinkat(fs->rootfd, rel(lockdir), AT_REMOVEDIR);
}

int hostfs_is_locked(const struct hostfs *fs, const char *path) {
    _cleanup_close_ int fd = open_rel(fs, path, O_RDONLY, 0);
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

int hostfs_self_exe(char *buf, size_t size) {
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n < 0) {
        return -errno;
    }
    buf[n] = '\0';
    return 0;
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
    return path_fmt(buf, size, "%s", name);
}
