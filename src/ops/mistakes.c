#include "mistakes.h"

#include "cleanup.h"
#include "confcheck.h"
#include "hostpaths.h"
#include "managed.h"
#include "qemu_args.h"
#include "sectioncfg.h"
#include "setup.h"
#include "storage.h"
#include "strutil.h"
#include "vmconf.h"
#include "vmstate.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------- mdev= by name ---------- */

/* The type a name means on the candidates, when no candidate has it as an id. */
static const struct inv_typedef *
named_not_id(const struct host *h, const struct place_candidates *c, const char *query) {
    const struct inv_typedef *named = NULL;
    for (size_t k = 0; k < c->n; k++) {
        size_t par = inv_find_parent(h, c->ids[k]);
        const struct inv_type *t = par == NO_INDEX ? NULL : inv_parent_type(h, par, query);
        const struct inv_typedef *d = t ? inv_def(h, t) : NULL;
        if (d && !strcmp(d->id, query)) {
            return NULL; /* Proxmox finds it as a directory there */
        }
        named = named ? named : d;
    }
    return named;
}

int mistakes_type_ids(
    const struct vm_plan *p, const struct hostpci *hps, const struct place_candidates *cands,
    size_t n, struct pvh_err *e
) {
    for (size_t i = 0; i < n; i++) {
        const struct inv_typedef *d = named_not_id(&p->host, &cands[i], hps[i].mdev);
        if (!d) {
            continue;
        }
        char key[16];
        snprintf(key, sizeof(key), "hostpci%u", hps[i].index);
        const char *value = pveconf_get(&p->conf, key);
        _cleanup_free_ char *fixed = value ? propstr_with(value, "mdev", d->id) : NULL;
        err_set(
            e, -EINVAL,
            "%s: mdev=%s is the name of type %s (%s), not its id: Proxmox looks the type up as "
            "the directory mdev_supported_types/%s of the GPU, which does not exist, and fails "
            "the start (\"has no type '%s'\")",
            key, hps[i].mdev, d->id, d->name, hps[i].mdev, hps[i].mdev
        );
        err_hint(
            e,
            "name the type by its id: qm set %lu --%s %s (a name is fine for "
            "'pve-vgpu-hook attach --type'); nothing was changed",
            p->vmid, key, fixed ? fixed : "..."
        );
        err_reason(e, "mdev-type-name");
        return -EINVAL;
    }
    return 0;
}

/* ---------- the hookscript ---------- */

bool hookscript_volid_valid(const char *v) {
    const char *colon = strchr(v, ':');
    if (!colon || colon == v || strncmp(colon + 1, "snippets/", 9) || !colon[10]) {
        return false;
    }
    for (const char *p = v; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr(":/._+-", *p)) {
            return false;
        }
    }
    return !strstr(v, "..") && !strchr(colon + 10, '/');
}

int hookscript_path(
    const struct sectioncfg *storage, const char *volid, char *path, size_t size, char *why,
    size_t whysize
) {
    if (!hookscript_volid_valid(volid)) {
        snprintf(why, whysize, "'%s' is not a snippets volume (STORAGE:snippets/NAME)", volid);
        return -EINVAL;
    }
    const char *colon = strchr(volid, ':');
    _cleanup_free_ char *id = strndup(volid, (size_t)(colon - volid));
    struct storage_info st;
    if (!id || !storage || storage_find(storage, id, &st) < 0 || !st.path || !st.path[0]) {
        snprintf(
            why, whysize, "no storage '%s' with a directory in %s", id ? id : "?", PVE_STORAGE_CFG
        );
        return -ENOENT;
    }
    if (str_fmt(path, size, "%s/%s", st.path, colon + 1) < 0) {
        snprintf(why, whysize, "the path of %s is too long", volid);
        return -ENAMETOOLONG;
    }
    return 0;
}

bool hookscript_is_ours(const struct hostfs *fs, const char *path) {
    if (hostfs_same_file(fs, path, PVH_INSTALLED_BINARY) == 1) {
        return true;
    }
    off_t size, bin_size;
    if (hostfs_stat(fs, path, NULL, &size) < 0) {
        return false;
    }
    _cleanup_free_ char *text = NULL, *bin = NULL;
    size_t len = 0, bin_len = 0;
    if ((size_t)size == strlen(SNIPPET_WRAPPER)) {
        return hostfs_read_alloc(fs, path, (size_t)size + 1, &text, &len) == 0 &&
               !strcmp(text, SNIPPET_WRAPPER);
    }
    return hostfs_stat(fs, PVH_INSTALLED_BINARY, NULL, &bin_size) == 0 && size == bin_size &&
           hostfs_read_alloc(fs, path, (size_t)size + 1, &text, &len) == 0 &&
           hostfs_read_alloc(fs, PVH_INSTALLED_BINARY, (size_t)size + 1, &bin, &bin_len) == 0 &&
           len == bin_len && !memcmp(text, bin, len);
}

/* One coded warning when the VM's hookscript will not run this tool; 1 when added. storage:
 * storage.cfg, read on first use and kept for the next VM. */
static int hookscript_check(
    const struct hostfs *fs, struct storage_cache *storage, unsigned long vmid,
    const struct pveconf *conf, struct pvh_warnings *w
) {
    const char *hs = pveconf_get(conf, "hookscript");
    if (!hs) {
        warn_add_code(
            w, "no-hookscript",
            "VM %lu has a vGPU but no hookscript: Proxmox never runs pve-vgpu-hook for it "
            "(nothing checked, created or removed at its starts); fix: qm set %lu --hookscript %s "
            "(after 'pve-vgpu-hook setup' on every node)",
            vmid, vmid, DEFAULT_HOOKSCRIPT
        );
        return 1;
    }
    char path[PATH_MAX], why[PATH_MAX + 64];
    mode_t mode = 0;
    int r = hookscript_path(storage_cached(fs, storage), hs, path, sizeof(path), why, sizeof(why));
    if (r == 0 && (r = hostfs_stat(fs, path, &mode, NULL)) < 0) {
        snprintf(why, sizeof(why), "%s: %s", path, strerror(-r));
    } else if (r == 0 && (!S_ISREG(mode) || !(mode & 0111))) {
        r = -EACCES;
        snprintf(why, sizeof(why), "%s is no executable file", path);
    }
    if (r < 0) {
        warn_add_code(
            w, "hookscript-missing",
            "VM %lu's hookscript %s cannot run (%s): Proxmox refuses to start the VM; fix: "
            "'pve-vgpu-hook setup' on every node, then qm set %lu --hookscript %s",
            vmid, hs, why, vmid, DEFAULT_HOOKSCRIPT
        );
        return 1;
    }
    if (!hookscript_is_ours(fs, path)) {
        warn_add_code(
            w, "hookscript-not-ours",
            "VM %lu's hookscript %s (%s) is not pve-vgpu-hook: its vGPU is handled only if that "
            "script runs pve-vgpu-hook itself; fix: qm set %lu --hookscript %s, and keep the "
            "other script in " HOOKS_DIR " (see 'help setup')",
            vmid, hs, path, vmid, DEFAULT_HOOKSCRIPT
        );
        return 1;
    }
    return 0;
}

/* A VM that asks for a vGPU: hostpci with mdev=, or attached (managed mode). */
static bool vm_has_vgpu(const struct pveconf *c, const struct pvh_config *cfg, unsigned long vmid) {
    struct hostpci hps[HOSTPCI_MAX];
    size_t n = 0;
    unsigned bad;
    struct pvh_err e;
    int r = hostpci_mdev_entries(c, hps, &n, &bad, &e);
    return n > 0 || r < 0 || (cfg && config_managed_vm_for(cfg, vmid, c));
}

struct node_walk {
    const struct hostfs *fs;
    const struct pvh_config *cfg;
    struct vm_warnings *out;
    struct storage_cache storage;
};

static int node_vm(void *ctx, unsigned long vmid, const struct pveconf *conf) {
    struct node_walk *nw = ctx;
    struct vm_warnings *out = nw->out;
    if (!vm_has_vgpu(conf, nw->cfg, vmid) ||
        !hookscript_check(nw->fs, &nw->storage, vmid, conf, &out->w)) {
        return 0;
    }
    return vm_warnings_vmid(out, vmid);
}

int vm_warnings_vmid(struct vm_warnings *v, unsigned long vmid) {
    unsigned long *ids = realloc(v->vmids, v->w.n * sizeof(*ids));
    if (!ids) {
        return -ENOMEM;
    }
    v->vmids = ids;
    v->vmids[v->w.n - 1] = vmid;
    return 0;
}

int mistakes_node_hookscripts(
    const struct hook_env *env, const struct pvh_config *cfg, struct vm_warnings *out
) {
    memset(out, 0, sizeof(*out));
    struct node_walk nw = {.fs = env->fs, .cfg = cfg, .out = out};
    int r = vmconf_each(env->fs, node_vm, &nw);
    storage_cache_free(&nw.storage);
    if (r == -ENOMEM) {
        vm_warnings_free(out);
    }
    return r == -ENOMEM ? r : 0; /* no VM directory: no VM */
}

void vm_warnings_free(struct vm_warnings *v) {
    warn_free(&v->w);
    free(v->vmids);
    v->vmids = NULL;
}

/* ---------- x-vga, SeaBIOS with q35 ---------- */

static void check_x_vga(struct vm_plan *p) {
    for (unsigned i = 0; i < HOSTPCI_MAX; i++) {
        char key[16];
        snprintf(key, sizeof(key), "hostpci%u", i);
        const char *v = pveconf_get(&p->conf, key);
        if (!confcheck_x_vga_on_vgpu(v)) {
            continue;
        }
        _cleanup_free_ char *fixed = propstr_with(v, "x-vga", NULL);
        warn_add_code(
            &p->warnings, "x-vga-console",
            "%s has x-vga=1 on a vGPU: Proxmox then gives the VM no emulated display, so its "
            "console (noVNC, SPICE) stays black; fix: qm set %lu --%s %s, and use the default "
            "display or NVIDIA's remoting (RDP, a VNC server in the guest)",
            key, p->vmid, key, fixed ? fixed : "(without x-vga=1)"
        );
    }
}

/* Does the plan give the VM an NVIDIA vGPU? */
static bool plan_has_nvidia(const struct vm_plan *p) {
    for (size_t i = 0; i < p->n; i++) {
        const struct planned_mdev *it = &p->items[i];
        bool placed = it->parent != NO_INDEX && it->parent < p->host.nparents;
        if ((placed && inv_gpu_is_nvidia(&p->host, p->host.parents[it->parent].gpu)) ||
            (it->parent == NO_INDEX && it->vf[0]) || !strncmp(it->type_id, "nvidia-", 7)) {
            return true;
        }
    }
    return false;
}

/* The deployment guide (seeds/004, section 5.2.1): "BIOS: OVMF (with SeaBIOS, the q35 machine
 * must be 7.2 or older, or the driver cannot be licensed)". */
static void check_seabios_q35(struct vm_plan *p) {
    const char *machine = pveconf_get(&p->conf, "machine");
    if (!plan_has_nvidia(p) || !confcheck_seabios_q35(pveconf_get(&p->conf, "bios"), machine)) {
        return;
    }
    const char *rest = strchr(machine, ',');
    bool type_first =
        strncmp(machine, "type=", 5) == 0 || strcspn(machine, "=,") == strcspn(machine, ",");
    warn_add_code(
        &p->warnings, "seabios-q35-licensing",
        "VM %lu boots SeaBIOS (no 'bios: ovmf') on machine %s, a q35 newer than 7.2: NVIDIA's "
        "guest driver then fails to license the vGPU; fix: qm set %lu --bios ovmf with an EFI "
        "disk (qm set %lu --efidisk0 STORAGE:1,efitype=4m; the guest must boot UEFI), or pin the "
        "machine: qm set %lu --machine pc-q35-7.2%s",
        p->vmid, machine, p->vmid, p->vmid, p->vmid, rest && type_first ? rest : ""
    );
}

/* ---------- clones ---------- */

struct clone_walk {
    struct vm_plan *p;
    const char *smbios;            /* the VM's smbios1 uuid, NULL when none */
    unsigned long args_vm;         /* the VM whose device UUID args' -uuid is, 0 when none */
    char args_node[NODE_NAME_MAX]; /* where that VM's config is */
};

static int clone_vm(void *ctx, const char *node, unsigned long vmid, const struct pveconf *conf) {
    struct clone_walk *cw = ctx;
    struct vm_plan *p = cw->p;
    char other[64];
    if (vmid == p->vmid) {
        return 0;
    }
    if (vmid == cw->args_vm) {
        snprintf(cw->args_node, sizeof(cw->args_node), "%s", node);
    }
    if (cw->smbios && pveconf_smbios_uuid(conf, other, sizeof(other)) == 0 &&
        !strcmp(other, cw->smbios) && vm_has_vgpu(conf, &p->cfg, vmid)) {
        const char *s = pveconf_get(&p->conf, "smbios1");
        _cleanup_free_ char *fixed = propstr_with(s, "uuid", "$(cat /proc/sys/kernel/random/uuid)");
        bool only = fixed && !strchr(fixed, ',');
        warn_add_code(
            &p->warnings, "cloned-smbios-uuid",
            "VM %lu has the smbios1 uuid %s of vGPU VM %lu (node %s), a clone's: NVIDIA's "
            "licensing and vgpu_unlock-rs tell the two apart by it; fix: qm set %lu --smbios1 "
            "%s%s%s",
            p->vmid, cw->smbios, vmid, node, p->vmid, only ? "" : "\"",
            fixed ? fixed : "uuid=$(cat /proc/sys/kernel/random/uuid)", only ? "" : "\""
        );
    }
    return 0;
}

/* args: -uuid naming another VM's device UUID, with the qm set line that removes it. */
static void warn_args_uuid(struct vm_plan *p, const struct clone_walk *cw, const char *uuid) {
    const char *args = pveconf_get(&p->conf, "args");
    _cleanup_free_ char *rest = NULL;
    bool found = false;
    char fix[256] = "remove -uuid from args (qm set VMID --args ...)";
    if (args_remove_pair(args, "-uuid", uuid, &rest, &found) == 0 && found && !strchr(rest, '\'') &&
        strlen(rest) < 200) {
        bool empty = strspn(rest, " \t") == strlen(rest);
        snprintf(
            fix, sizeof(fix), empty ? "qm set %lu --delete args" : "qm set %lu --args '%s'",
            p->vmid, rest
        );
    }
    char where[NODE_NAME_MAX + 16] = "";
    if (cw->args_node[0]) {
        snprintf(where, sizeof(where), " (node %s)", cw->args_node);
    }
    warn_add_code(
        &p->warnings, "cloned-args-uuid",
        "VM %lu's args pass -uuid %s, the vGPU UUID of VM %lu%s, a clone's: the guest and "
        "vgpu_unlock-rs take it for that VM; fix: %s",
        p->vmid, uuid, cw->args_vm, where, fix
    );
}

static void check_clones(const struct hostfs *fs, struct vm_plan *p) {
    char smbios[64];
    _cleanup_free_ char *uuid = NULL;
    unsigned index;
    struct clone_walk cw = {.p = p};
    if (pveconf_smbios_uuid(&p->conf, smbios, sizeof(smbios)) == 0) {
        cw.smbios = smbios;
    }
    if (args_uuid(pveconf_get(&p->conf, "args"), &uuid) == 0 &&
        mdev_uuid_parse(uuid, &index, &cw.args_vm) && cw.args_vm == p->vmid) {
        cw.args_vm = 0;
    }
    (void)vmconf_each_cluster(fs, clone_vm, &cw);
    if (cw.args_vm) {
        warn_args_uuid(p, &cw, uuid);
    }
}

void mistakes_plan(const struct hook_env *env, struct vm_plan *p) {
    check_x_vga(p);
    check_seabios_q35(p);
    /* check only: a start does not read every VM config of the cluster for a warning (each
     * start would pay for it), and a start that runs the hook has its hookscript */
    if (env->dry_run) {
        struct storage_cache storage = {0};
        (void)hookscript_check(env->fs, &storage, p->vmid, &p->conf, &p->warnings);
        storage_cache_free(&storage);
        check_clones(env->fs, p);
    }
}
