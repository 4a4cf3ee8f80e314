#include "records.h"

#include "hostfs.h"
#include "managed.h"
#include "pveconf.h"
#include "strutil.h"
#include "vmconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int records_find_stale(
    const struct hostfs *fs, const struct pvh_config *cfg, struct vm_warnings *out
) {
    memset(out, 0, sizeof(*out));
    if (cfg->nvms == 0 || hostfs_exists(fs, PVE_NODES_DIR) < 0) {
        return 0; /* no record, or no cluster to look in: nothing to call stale */
    }
    int r = 0;
    for (size_t i = 0; r == 0 && i < cfg->nvms; i++) {
        const struct vm_settings *vs = &cfg->vms[i];
        _cleanup_(pveconf_freep) struct pveconf conf = {0};
        char why[512];
        size_t before = out->w.n;
        /* another -errno: a config that cannot be read is nobody's proof of staleness */
        int found = vmconf_find(fs, vs->vmid, &conf, NULL, 0);
        if (found == -ENOENT) {
            warn_add_code(
                &out->w, "vm-missing",
                "VM %lu exists on no node, but the settings still have its record (vms.%lu); "
                "fix: 'pve-vgpu-hook cleanup' removes it",
                vs->vmid, vs->vmid
            );
        } else if (found == 0 && config_record_stale(vs, &conf, why, sizeof(why))) {
            warn_add_code(
                &out->w, "vm-replaced",
                "%s: the record is stale, never applied to or undone on it; fix: "
                "'pve-vgpu-hook cleanup' removes it",
                why
            );
        }
        r = out->w.n > before ? vm_warnings_vmid(out, vs->vmid) : 0;
    }
    if (r < 0) {
        vm_warnings_free(out);
    }
    return r;
}
