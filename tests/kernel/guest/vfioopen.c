/* vfioopen UUID CMD [ARG]...: open the mdev UUID through VFIO as QEMU does (container, type1
 * IOMMU, group, device fd), run CMD while it is open, close it; CMD's exit status. */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char link[PATH_MAX], target[PATH_MAX], group[PATH_MAX];
    if (argc < 3) {
        fprintf(stderr, "usage: vfioopen UUID CMD [ARG]...\n");
        return 2;
    }
    snprintf(link, sizeof(link), "/sys/bus/mdev/devices/%s/iommu_group", argv[1]);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n < 0) {
        perror(link);
        return 3;
    }
    target[n] = '\0';
    snprintf(group, sizeof(group), "/dev/vfio/%s", basename(target));
    int container = open("/dev/vfio/vfio", O_RDWR), g = open(group, O_RDWR);
    if (container < 0 || g < 0) {
        perror("open /dev/vfio");
        return 3;
    }
    int dev;
    if (ioctl(g, VFIO_GROUP_SET_CONTAINER, &container) < 0 ||
        ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0 ||
        (dev = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, argv[1])) < 0) {
        perror("vfio");
        return 3;
    }
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    int st = 1;
    waitpid(pid, &st, 0);
    close(dev);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
