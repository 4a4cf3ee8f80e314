#include "qemu_server.h"

#include "debver.h"

#include <errno.h>

static const struct {
    const char *since;
    const char *what;
} qsrv_features[] = {
    [QSRV_PASSES_UUID] = {"7.2-4", "pass -uuid to QEMU for NVIDIA vGPUs"},
    [QSRV_MAPPING_MDEV] = {"8.0.4", "use resource mappings with mediated devices"},
    [QSRV_VENDOR_IFACE] =
        {QSRV_VENDOR_IFACE_SINCE, /* 48ada698 */
         "use NVIDIA's vendor interface (nvidia/current_vgpu_type, kernel 6.8 and later)"},
    [QSRV_LIVE_MIGRATION] = {"8.3.9", "live-migrate through a resource mapping"},
};

const char *qsrv_since(enum qsrv_feature f) {
    return qsrv_features[f].since;
}

bool qsrv_supports(const char *ver, enum qsrv_feature f) {
    return ver && ver[0] && debver_cmp(ver, qsrv_features[f].since) >= 0;
}

int qsrv_installed(const struct hostfs *fs, char *ver, size_t size) {
    int r = debver_installed_on(fs, "qemu-server", ver, size);
    if (r == 0 && !ver[0]) {
        r = -ENOENT;
    }
    if (r < 0 && size) {
        ver[0] = '\0';
    }
    return r;
}

int qsrv_require(const char *ver, enum qsrv_feature f, const char *node, struct pvh_err *e) {
    if (qsrv_supports(ver, f)) {
        return 0;
    }
    err_set(
        e, -ENOTSUP, "qemu-server %s%s%s cannot %s: that needs qemu-server %s or later",
        ver && ver[0] ? ver : "(version unknown)", node ? " on node " : "", node ? node : "",
        qsrv_features[f].what, qsrv_features[f].since
    );
    err_reason(e, "qemu-server-old");
    err_hint(
        e, "upgrade Proxmox VE to qemu-server %s or later ('apt update && apt full-upgrade')",
        qsrv_features[f].since
    );
    return -ENOTSUP;
}
