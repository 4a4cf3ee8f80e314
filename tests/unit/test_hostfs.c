/* hostfs: root-relative reads and writes, strict numbers, atomic replace, listing, locks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "hostfs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct fakehost FH;
static struct hostfs FS;

static const char *path_of(const char *rel) {
    static char path[PATH_MAX + 256];
    snprintf(path, sizeof(path), "%s/%s", FH.root, rel);
    return path;
}

static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create(&FH), 0);
    assert_int_equal(hostfs_open(&FS, FH.root), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    hostfs_close(&FS);
    fh_destroy(&FH);
    return 0;
}

static void test_read(void **state) {
    (void)state;
    char buf[8];
    fh_write(&FH, "a", "1234567\n"); /* 7 chars + newline fit in 8 */
    assert_int_equal(hostfs_read(&FS, "/a", buf, sizeof(buf)), 7);
    assert_string_equal(buf, "1234567");
    fh_write(&FH, "b", "12345678"); /* 8 chars do not fit with the NUL: refused, not cut */
    assert_int_equal(hostfs_read(&FS, "/b", buf, sizeof(buf)), -EFBIG);
    fh_write(&FH, "c", "line1\nline2\n");
    char big[64];
    assert_int_equal(hostfs_read(&FS, "c", big, sizeof(big)), 11);
    assert_string_equal(big, "line1\nline2");
    assert_int_equal(hostfs_read(&FS, "/missing", buf, sizeof(buf)), -ENOENT);
    /* paths never escape the root by a leading slash */
    assert_int_equal(hostfs_read(&FS, "///a", buf, sizeof(buf)), 7);
    char *all;
    size_t len;
    assert_int_equal(hostfs_read_alloc(&FS, "/c", 1024, &all, &len), 0);
    assert_int_equal(len, 12);
    free(all);
    assert_int_equal(hostfs_read_alloc(&FS, "/c", 4, &all, &len), -EFBIG);
}

static void test_confined(void **state) {
    (void)state;
    /* an absolute link inside the tree means the tree's path, not the real host's */
    fh_write(&FH, "etc/inside/x", "tree\n");
    char link[4200];
    snprintf(link, sizeof(link), "%s/etc/abs", FH.root);
    assert_int_equal(symlink("/etc/inside", link), 0);
    char buf[16];
    assert_int_equal(hostfs_read(&FS, "/etc/abs/x", buf, sizeof(buf)), 4);
    assert_string_equal(buf, "tree");
    struct hostfs_list l;
    assert_int_equal(hostfs_list(&FS, "/etc/abs", &l), 0);
    assert_int_equal(l.n, 1);
    hostfs_list_free(&l);
    /* and ".." stops at the root: /../../etc/inside is the tree's /etc/inside */
    assert_int_equal(hostfs_read(&FS, "/../../etc/inside/x", buf, sizeof(buf)), 4);
}

/* Every operation stays inside the root, not just reads: numbers, creates, renames, links,
 * mkdir, unlink, stat, readlink. An outside directory is reached only through absolute links
 * inside the tree, which must resolve inside it. */
static void test_confined_writes(void **state) {
    (void)state;
    char outside[] = "/tmp/pvh-outside-XXXXXX";
    assert_non_null(mkdtemp(outside));
    char path[4300], link[4200];
    snprintf(path, sizeof(path), "%s/n", outside);
    FILE *f = fopen(path, "w");
    fputs("42\n", f);
    fclose(f);
    /* a number read through an absolute link: the tree's path, which does not exist */
    snprintf(link, sizeof(link), "%s/n", FH.root);
    assert_int_equal(symlink(path, link), 0);
    long v = 0;
    assert_int_equal(hostfs_read_long(&FS, "/n", &v), -ENOENT);
    assert_int_equal(v, 0);
    /* a directory that is an absolute link to the outside */
    snprintf(link, sizeof(link), "%s/etc/out", FH.root);
    mkdir(strcat(strcpy((char[4200]){0}, FH.root), "/etc"), 0755);
    assert_int_equal(symlink(outside, link), 0);
    assert_true(hostfs_replace_file(&FS, "/etc/out/x.conf", "x", 1, 0600) < 0);
    assert_true(hostfs_mkdir(&FS, "/etc/out/snippets", 0755) < 0);
    assert_true(hostfs_symlink(&FS, "/usr/bin/true", "/etc/out/hook") < 0);
    assert_true(hostfs_exists(&FS, "/etc/out/n") < 0);
    assert_true(hostfs_unlink(&FS, "/etc/out/n") < 0);
    assert_true(hostfs_lock(&FS, "/etc/out/lock", 100) < 0);
    char target[64];
    assert_true(hostfs_readlink(&FS, "/etc/out/n", target, sizeof(target)) < 0);
    /* the outside directory holds exactly what it held: no file, no temp file, no link */
    struct hostfs_list l;
    struct hostfs real;
    assert_int_equal(hostfs_open(&real, "/"), 0);
    assert_int_equal(hostfs_list(&real, outside, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.names[0], "n");
    hostfs_list_free(&l);
    hostfs_close(&real);
    unlink(path);
    rmdir(outside);
}

static void test_read_long(void **state) {
    (void)state;
    static const struct {
        const char *content;
        int rc;
        long value;
    } cases[] = {
        {"24\n", 0, 24},     {"0", 0, 0},  {"-1\n", 0, -1},    {"", -EINVAL, 0},
        {"12x", -EINVAL, 0}, {" 3", 0, 3}, {"3 ", -EINVAL, 0}, {"99999999999999999999", -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long v = 77;
        fh_write(&FH, "n", cases[i].content);
        int rc = hostfs_read_long(&FS, "/n", &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].value)) {
            fail_msg("'%s': rc %d v %ld", cases[i].content, rc, v);
        }
    }
}

static void test_replace(void **state) {
    (void)state;
    fh_write(&FH, "etc/x.conf", "old\n");
    char path[4200];
    snprintf(path, sizeof(path), "%s/etc/x.conf", FH.root);
    chmod(path, 0640);
    assert_int_equal(hostfs_replace_file(&FS, "/etc/x.conf", "new\n", 4, 0600), 0);
    char *c = fh_read(&FH, "etc/x.conf");
    assert_string_equal(c, "new\n");
    free(c);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640); /* the old mode is kept */
    /* a new file gets the given mode; no temp file stays behind */
    assert_int_equal(hostfs_replace_file(&FS, "/etc/y.conf", "y", 1, 0600), 0);
    snprintf(path, sizeof(path), "%s/etc/y.conf", FH.root);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    struct hostfs_list l;
    assert_int_equal(hostfs_list(&FS, "/etc", &l), 0);
    assert_int_equal(l.n, 3); /* pve, x.conf, y.conf */
    hostfs_list_free(&l);
    /* into a missing directory: an error, nothing created */
    assert_int_equal(hostfs_replace_file(&FS, "/nodir/z", "z", 1, 0600), -ENOENT);
}

static void test_list_sorted(void **state) {
    (void)state;
    fh_write(&FH, "d/nvidia-53/x", "");
    fh_write(&FH, "d/nvidia-46/x", "");
    fh_write(&FH, "d/nvidia-155/x", "");
    struct hostfs_list l;
    assert_int_equal(hostfs_list(&FS, "/d", &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.names[0], "nvidia-155");
    assert_string_equal(l.names[1], "nvidia-46");
    assert_string_equal(l.names[2], "nvidia-53");
    hostfs_list_free(&l);
    assert_int_equal(hostfs_list(&FS, "/nope", &l), -ENOENT);
    /* a directory with many entries needs several getdents calls */
    for (int i = 0; i < 700; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "many/entry-with-a-long-name-%04d", i);
        fh_write(&FH, rel, "");
    }
    assert_int_equal(hostfs_list(&FS, "/many", &l), 0);
    assert_int_equal(l.n, 700);
    assert_string_equal(l.names[699], "entry-with-a-long-name-0699");
    hostfs_list_free(&l);
}

static void test_links_and_locks(void **state) {
    (void)state;
    char buf[64];
    assert_true(hostfs_readlink(&FS, "/etc/pve/local", buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "nodes/pve1");
    assert_int_equal(hostfs_link_basename(&FS, "/etc/pve/local", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "pve1");
    assert_int_equal(hostfs_is_locked(&FS, "/var/lock/qemu-server/lock-100.conf"), 0);
    int fd = hostfs_lock(&FS, "/var/lock/qemu-server/lock-100.conf", 1000);
    assert_true(fd >= 0);
    /* a second holder (another open file description) times out */
    assert_int_equal(hostfs_lock(&FS, "/var/lock/qemu-server/lock-100.conf", 100), -ETIMEDOUT);
    /* the probe sees it from a child process, like another pve-vgpu-hook would */
    pid_t pid = fork();
    if (pid == 0) {
        _exit(hostfs_is_locked(&FS, "/var/lock/qemu-server/lock-100.conf") == 1 ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(WEXITSTATUS(st), 0);
    hostfs_unlock(fd);
    assert_int_equal(hostfs_is_locked(&FS, "/var/lock/qemu-server/lock-100.conf"), 0);
}

/* Resolving ".." inside the root (RESOLVE_IN_ROOT) fails with EAGAIN while anything on the
 * machine renames a file: the kernel cannot rule out an escape then. A storm of renames must
 * not make an existing sysfs-style link (../../../devices/...) look missing. */
static void test_resolution_under_renames(void **state) {
    (void)state;
    fh_write(&FH, "sys/devices/pci0000:00/0000:81:00.0/vendor", "0x10de\n");
    assert_int_equal(
        symlink(
            "../../../devices/pci0000:00/0000:81:00.0", path_of("sys/bus/pci/devices/0000:81:00.0")
        ),
        0
    );
    pid_t renamer = fork();
    if (renamer == 0) {
        char a[PATH_MAX + 8], b[PATH_MAX + 8];
        snprintf(a, sizeof(a), "%s/ra", FH.root);
        snprintf(b, sizeof(b), "%s/rb", FH.root);
        close(open(a, O_CREAT | O_WRONLY, 0600));
        for (;;) {
            if (rename(a, b) < 0 || rename(b, a) < 0) {
                _exit(1);
            }
        }
    }
    unsigned missing = 0;
    for (int i = 0; i < 50000; i++) {
        missing += hostfs_exists(&FS, "/sys/bus/pci/devices/0000:81:00.0/vendor") < 0;
    }
    kill(renamer, SIGKILL);
    waitpid(renamer, NULL, 0);
    assert_int_equal(missing, 0);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_read),
        T(test_confined),
        T(test_confined_writes),
        T(test_read_long),
        T(test_replace),
        T(test_list_sorted),
        T(test_links_and_locks),
        T(test_resolution_under_renames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
