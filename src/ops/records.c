#include "records.h"

#include "hostfs.h"
#include "managed.h"
#include "pveconf.h"
#include "strutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The VM's config on whichever node has it: 0 and *conf; -ENOENT when no node has it; another
 * -errno when one cannot be read (then nobody may call its record stale). */
static int find_vm(
    const struct hostfs *fs, const struct hostfs_list *nodes, unsigned long vmid,
    struct pveconf *conf
) {
    int found = -ENOENT;
    for (size_t i = 0; i < nodes->n && found == -ENOENT; i++) {
        char path[PATH_MAX];
        _cleanup_free_ char *text = NULL;
        size_t len;
        if (!node_name_valid(nodes->names[i]) ||
            str_fmt(path, sizeof(path), PVE_NODE_VM_CONF_FMT, nodes->names[i], vmid) < 0) {
            continue; /* a name Proxmox cannot have is no node: never a path */
        }
        int r = hostfs_read_alloc(fs, path, CONFIG_MAX_BYTES, &text, &len);
        if (r == -ENOENT || r == -ENOTDIR) {
            continue;
        }
        found = r < 0 ? r : pveconf_parse(text, len, conf);
    }
    return found;
}

int records_find_stale(
    const struct hostfs *fs, const struct pvh_config *cfg, struct vm_warnings *out
) {
    memset(out, 0, sizeof(*out));
    struct hostfs_list nodes;
    if (cfg->nvms == 0 || hostfs_list(fs, PVE_NODES_DIR, &nodes) < 0) {
        return 0; /* no record, or no cluster to look in: nothing to call stale */
    }
    int r = 0;
    for (size_t i = 0; r == 0 && i < cfg->nvms; i++) {
        const struct vm_settings *vs = &cfg->vms[i];
        _cleanup_(pveconf_freep) struct pveconf conf = {0};
        char why[512];
        size_t before = out->w.n;
        int found = find_vm(fs, &nodes, vs->vmid, &conf);
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
    hostfs_list_free(&nodes);
    if (r < 0) {
        vm_warnings_free(out);
    }
    return r;
}
