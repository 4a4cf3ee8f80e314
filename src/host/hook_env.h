/* What every command and hook phase runs against: the host (below --root) and our settings. */
#ifndef PVH_HOOK_ENV_H
#define PVH_HOOK_ENV_H

#include "hostfs.h"

#include <stdbool.h>

/* Set for the hooks in hooks.d, to the hook's path: pve-vgpu-hook run from one of them (a copy
 * of the snippet) would run hooks.d again, and so on without end. */
#define HOOK_DEPTH_ENV "PVE_VGPU_HOOK_DEPTH"

struct hook_env {
    const struct hostfs *fs;        /* the host, below --root */
    const struct hostfs *config_fs; /* where config_path lives: fs for the default path, the
                                     * machine's own "/" for --config FILE */
    const char *config_path;        /* NULL: CONFIG_DEFAULT_PATH below fs, which may be missing;
                                     * else a file that must exist */
    const char *migrated_from;      /* PVE_MIGRATED_FROM, NULL or "" when not migrating */
    const char *chained_from;       /* HOOK_DEPTH_ENV: the chained hook of ours that ran this
                                     * one; NULL or "" when Proxmox did */
    bool dry_run;                   /* check: predict a start instead of being one */
};

#endif
