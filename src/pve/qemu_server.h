/*
 * What the installed qemu-server can do: the one answer every command asks, with one message.
 * Versions are the releases that brought each feature (../shared/reference/landscape.md).
 */
#ifndef PVH_QEMU_SERVER_H
#define PVH_QEMU_SERVER_H

#include "log.h"

#include <stdbool.h>
#include <stddef.h>

enum qsrv_feature {
    QSRV_PASSES_UUID,   /* 7.2-4: passes -uuid for NVIDIA vGPUs itself */
    QSRV_MAPPING_MDEV,  /* 8.0.4: resource mappings with mdev */
    QSRV_VENDOR_IFACE,  /* 8.2.5: NVIDIA's vendor interface (nvidia/current_vgpu_type) */
    QSRV_LIVE_MIGRATION /* 8.3.9: live-migration-capable mappings */
};

/* For help texts, which are literals. */
#define QSRV_VENDOR_IFACE_SINCE "8.2.5"

/* The release that brought the feature ("8.2.5"). */
const char *qsrv_since(enum qsrv_feature f);
/* Can qemu-server ver do f? An empty or NULL ver (unknown) cannot. */
bool qsrv_supports(const char *ver, enum qsrv_feature f);
/* The installed qemu-server version on the host; "" with -ENOENT when it cannot be told. */
struct hostfs;
int qsrv_installed(const struct hostfs *fs, char *ver, size_t size);
/* 0 when ver can do f; else -ENOTSUP with e saying which version cannot do what, and the
 * upgrade to do. node may be NULL (this node). A caller adds its context with err_prefix. */
int qsrv_require(const char *ver, enum qsrv_feature f, const char *node, struct pvh_err *e);

#endif
