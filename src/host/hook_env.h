/* What every command and hook phase runs against: the host (below --root) and our settings. */
#ifndef PVH_HOOK_ENV_H
#define PVH_HOOK_ENV_H

#include "hostfs.h"

#include <stdbool.h>

struct hook_env {
    const struct hostfs *fs;        /* the host, below --root */
    const struct hostfs *config_fs; /* where config_path lives: fs for the default path, the
                                     * machine's own "/" for --config FILE */
    const char *config_path;        /* NULL: CONFIG_DEFAULT_PATH below fs, which may be missing;
                                     * else a file that must exist */
    const char *migrated_from;      /* PVE_MIGRATED_FROM, NULL or "" when not migrating */
    bool dry_run;                   /* check: predict a start instead of being one */
};

#endif
