#include "managed.h"

#include "cleanup.h"
#include "cluster.h"
#include "edit_result.h"
#include "hostpaths.h"
#include "inventory.h"
#include "mapsync.h"
#include "mdev_uuid.h"
#include "mdevmap.h"
#include "mistakes.h"
#include "plan.h"
#include "pveconf.h"
#include "qemu_args.h"
#include "qemu_server.h"
#include "readiness.h"
#include "sectioncfg.h"
#include "storage.h"
#include "strutil.h"
#include "toml.h"
#include "vfmap.h"
#include "vgpu_type.h"
#include "vmconf.h"
#include "vmstate.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Everything attach/detach read and may write back, with the originals for undoing. */
struct edit {
    const struct hook_env *env;
    unsigned long vmid;
    bool type_elsewhere;   /* attach: only other nodes offer the type (as they published) */
    bool vendor_elsewhere; /* ... and only on NVIDIA's vendor interface */
    /* attach: the cluster as its nodes published it, read once when needed */
    int cluster_read; /* 0: not yet; 1: read; <0: could not be (cluster_err says why) */
    struct cluster_view cluster;
    struct pvh_err cluster_err;
    char node[NODE_NAME_MAX];
    int vm_lock;
    bool cfg_locked;
    char conf_path[PATH_MAX];
    char *conf_text; /* original VM config */
    size_t conf_len;
    struct pveconf conf;
    const struct hostfs *cfg_fs;
    const char *cfg_path;
    char *cfg_text; /* original JSON settings; NULL when the file did not exist */
    size_t cfg_len;
    json_object *doc;
    struct pvh_config cfg;
    /* NVIDIA's vendor interface: the VM's resource mapping in /etc/pve/mapping/pci.cfg */
    bool map_locked;
    char *map_text; /* the file as it was; NULL when it did not exist */
    size_t map_len;
    bool map_change;
    char *map_new; /* its new content; NULL (with map_change) removes the file */
    struct pvh_warnings *w;
    /* what the command did or, dry_run, would do (NULL: cleanup's edit, no report) */
    struct edit_result *res;
    bool dry_run; /* no lock is taken and nothing written */
    bool running; /* args and hostpciN changes go into [PENDING], as qm set puts them */
    /* The VM's record in the settings belongs to an earlier VM of this VMID: why. */
    bool stale;
    char stale_why[512];
    bool keep_settings; /* cleanup without a stale record: the settings file is not written */
};

static void edit_free(struct edit *ed) {
    if (ed->map_locked) {
        hostfs_cluster_unlock(ed->env->fs, PCI_MAPPING_LOCK_DIR);
    }
    if (ed->cfg_locked) {
        hostfs_cluster_unlock(ed->env->fs, CONFIG_LOCK_DIR);
    }
    if (ed->cluster_read) {
        cluster_view_free(&ed->cluster);
        ed->cluster_read = 0;
    }
    free(ed->map_text);
    free(ed->map_new);
    ed->map_text = ed->map_new = NULL;
    ed->map_locked = false;
    hostfs_unlock(ed->vm_lock);
    free(ed->conf_text);
    pveconf_free(&ed->conf);
    free(ed->cfg_text);
    json_object_put(ed->doc);
    config_free(&ed->cfg);
    ed->vm_lock = -1;
    ed->cfg_locked = false;
    ed->conf_text = ed->cfg_text = NULL;
    ed->doc = NULL;
}

/* pmxcfs' cluster lock on a file of /etc/pve (the directory cfs_lock_file uses for it), so that
 * no other node or command edits it at the same moment. *locked stays false where /etc/pve is
 * no pmxcfs (with a warning). */
int managed_cluster_lock(
    const struct hook_env *env, const char *lockdir, const char *file, int timeout_ms, bool *locked,
    struct pvh_warnings *w, struct pvh_err *e
) {
    *locked = false;
    int r = hostfs_cluster_lock(env->fs, lockdir, timeout_ms);
    if (r == -ETIMEDOUT) {
        err_set(
            e, r, "another node or command is editing %s (the cluster lock %s is held)", file,
            lockdir
        );
        err_hint(
            e, "run the command again in a moment; a lock left by a crashed command "
               "expires after 120 s"
        );
        return r;
    }
    if (r == -ENOENT) {
        warn_add(
            w, "no %s: this is not a pmxcfs /etc/pve; editing %s without the cluster lock",
            PVE_CLUSTER_LOCK_DIR, file
        );
        return 0;
    }
    if (r < 0) {
        err_set(e, r, "cannot take the cluster lock %s: %s", lockdir, strerror(-r));
        err_hint(e, "without quorum /etc/pve is read-only ('pvecm status'); nothing was changed");
        return r;
    }
    *locked = true;
    return 0;
}

/* The cluster lock on the settings file, when it lives on pmxcfs (the default path). */
static int
lock_settings(struct edit *ed, int timeout_ms, struct pvh_warnings *w, struct pvh_err *e) {
    if (ed->env->config_path) {
        return 0; /* a file of this machine named with --config: no cluster to lock against */
    }
    return managed_cluster_lock(
        ed->env, CONFIG_LOCK_DIR, ed->cfg_path, timeout_ms, &ed->cfg_locked, w, e
    );
}

/* The resource mapping file, read under its cluster lock. */
static int edit_open_mapping(struct edit *ed, struct pvh_warnings *w, struct pvh_err *e) {
    int r = ed->dry_run ? 0
                        : managed_cluster_lock(
                              ed->env, PCI_MAPPING_LOCK_DIR, PVE_PCI_MAPPING_CFG,
                              ed->cfg.lock_timeout_s * 1000, &ed->map_locked, w, e
                          );
    if (r < 0) {
        return r;
    }
    r = hostfs_read_alloc(
        ed->env->fs, PVE_PCI_MAPPING_CFG, CONFIG_MAX_BYTES, &ed->map_text, &ed->map_len
    );
    if (r < 0 && r != -ENOENT) {
        return err_set(e, r, "cannot read %s: %s", PVE_PCI_MAPPING_CFG, strerror(-r));
    }
    return 0;
}

/* The one refusal of a VMID with no VM config on this node (a container said as such). */
static int vm_missing(
    const struct hook_env *env, unsigned long vmid, const char *conf_path, struct pvh_err *e
) {
    if (vmid_is_container(env->fs, vmid)) {
        err_set(e, -EINVAL, "%lu is a container; vGPUs are for VMs", vmid);
        err_reason(e, "vm-is-container");
        return -EINVAL;
    }
    char node[NODE_NAME_MAX];
    node_name(env->fs, node, sizeof(node));
    err_set(e, -ENOENT, "no VM %lu on this node (%s does not exist)", vmid, conf_path);
    err_reason(e, "vm-missing");
    err_hint(
        e,
        "run the command on the node the VM belongs to ('qm list'; this node is %s); nothing "
        "was changed",
        node
    );
    return -ENOENT;
}

int managed_vm_require(const struct hook_env *env, unsigned long vmid, struct pvh_err *e) {
    char path[PATH_MAX];
    int r = vmconf_path(NULL, vmid, path, sizeof(path));
    r = r < 0 ? r : hostfs_exists(env->fs, path);
    return r == -ENOENT ? vm_missing(env, vmid, path, e) : 0; /* other errors: at the read */
}

/* An edit of the settings (and of VM vmid's config, when not 0), before any lock: *timeout_ms
 * is how long to wait for each. */
static int edit_init(
    struct edit *ed, const struct hook_env *env, unsigned long vmid, int *timeout_ms,
    struct pvh_warnings *w, struct pvh_err *e
) {
    memset(ed, 0, sizeof(*ed));
    ed->env = env;
    ed->w = w;
    ed->vmid = vmid;
    ed->vm_lock = -1;
    /* before the lock: it leaves a file behind (vmid 0: an edit of the settings alone) */
    int r = vmid ? managed_vm_require(env, vmid, e) : 0;
    if (r < 0) {
        return r;
    }
    config_where(env, &ed->cfg_fs, &ed->cfg_path);
    node_name(env->fs, ed->node, sizeof(ed->node));
    /* The lock timeouts are settings: read them once before taking the locks (its warnings
     * come with the second read). */
    struct pvh_warnings first = {0};
    r = config_load_to_act(env, &ed->cfg, &first, e);
    warn_free(&first);
    if (r < 0) {
        return r;
    }
    *timeout_ms = ed->cfg.lock_timeout_s * 1000;
    config_free(&ed->cfg);
    config_defaults(&ed->cfg);
    return 0;
}

/* The settings as they are under the cluster lock (taken unless dry_run): never write on top of
 * a file we do not understand. */
static int edit_load_settings(
    struct edit *ed, int timeout_ms, bool dry_run, struct pvh_warnings *w, struct pvh_err *e
) {
    int r = dry_run ? 0 : lock_settings(ed, timeout_ms, w, e);
    if (r < 0) {
        return r;
    }
    config_free(&ed->cfg);
    struct config_error ce;
    r = config_load_edit(
        ed->env, CONFIG_USE_ACT, &ed->cfg, &ed->doc, &ed->cfg_text, &ed->cfg_len, w, &ce
    );
    if (r < 0) {
        *e = ce.err;
    }
    return r;
}

/* Lock the VM like `qm set` does, then read its config and (under the cluster lock) ours;
 * res: the command's report (a dry run takes no lock: it writes nothing). */
static int edit_open(
    struct edit *ed, const struct hook_env *env, unsigned long vmid, struct edit_result *res,
    struct pvh_err *e
) {
    int timeout_ms;
    int r = edit_init(ed, env, vmid, &timeout_ms, &res->warnings, e);
    ed->res = res;
    ed->dry_run = res->dry_run;
    res->vmid = vmid;
    if (r < 0) {
        return r;
    }
    struct pvh_warnings *w = &res->warnings;
    char lock[PATH_MAX];
    snprintf(lock, sizeof(lock), PVE_VM_LOCK_FMT, vmid);
    ed->vm_lock = ed->dry_run ? -1 : hostfs_lock(env->fs, lock, timeout_ms);
    if (ed->vm_lock == -ETIMEDOUT) {
        err_set(
            e, -ETIMEDOUT, "VM %lu is locked by another Proxmox task (%s held for %d s)", vmid,
            lock, timeout_ms / 1000
        );
        err_hint(e, "wait for the task to finish (see the task list) and run the command again");
        return -ETIMEDOUT;
    }
    if (ed->vm_lock < 0 && !ed->dry_run) {
        return err_set(e, ed->vm_lock, "cannot lock %s: %s", lock, strerror(-ed->vm_lock));
    }
    (void)vmconf_path(NULL, vmid, ed->conf_path, sizeof(ed->conf_path));
    r = vmconf_read(env->fs, NULL, vmid, &ed->conf_text, &ed->conf_len);
    if (r == -ENOENT) { /* gone since managed_vm_require */
        return vm_missing(env, vmid, ed->conf_path, e);
    }
    if (r < 0) {
        return err_set(e, r, "cannot read %s: %s", ed->conf_path, strerror(-r));
    }
    if ((r = pveconf_parse(ed->conf_text, ed->conf_len, &ed->conf)) < 0) {
        return err_set(e, r, "cannot parse %s", ed->conf_path);
    }
    /* Another node may edit the settings at the same moment. */
    if ((r = edit_load_settings(ed, timeout_ms, ed->dry_run, w, e)) < 0) {
        return r;
    }
    const struct vm_settings *vs = config_vm(&ed->cfg, vmid);
    ed->stale = vs && config_record_stale(vs, &ed->conf, ed->stale_why, sizeof(ed->stale_why));
    ed->running = vm_is_running(env->fs, vmid) == 1;
    return 0;
}

/* The value of key (args, hostpciN) the VM's next start gets: a running VM's may be pending. */
static const char *edit_get(const struct edit *ed, const char *key) {
    return ed->running ? pveconf_next(&ed->conf, key) : pveconf_get(&ed->conf, key);
}

/* Set key (value NULL: remove it) as qm set does: on a running VM args and hostpciN cannot be
 * hot-plugged and go into [PENDING]; res->pending says a change waits there. */
static int edit_put(struct edit *ed, const char *key, const char *value) {
    if (!ed->running) {
        int r = value ? pveconf_set(&ed->conf, key, value) : pveconf_delete(&ed->conf, key);
        return r == -ENOENT ? 0 : r;
    }
    int r = pveconf_set_pending(&ed->conf, key, value);
    const char *now = pveconf_get(&ed->conf, key), *next = pveconf_next(&ed->conf, key);
    ed->res->pending |= r == 0 && (!now != !next || (now && strcmp(now, next)));
    return r;
}

/* A running VM's pending change, in the result's message. */
static void edit_say_pending(const struct edit *ed) {
    if (ed->res->pending) {
        str_append(
            ed->res->message, sizeof(ed->res->message),
            "; pending until VM %lu is stopped and started ('qm config %lu --current' shows the "
            "running config)",
            ed->vmid, ed->vmid
        );
    }
}

/* attach and tune on a VM whose record is stale: that record goes, nothing of it is kept or
 * undone on this VM. */
static int edit_drop_stale(struct edit *ed, struct pvh_warnings *notes, struct pvh_err *e) {
    if (!ed->stale) {
        return 0;
    }
    if (config_doc_set_vm(ed->doc, ed->vmid, NULL) < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    warn_add(notes, "%s: replaced that stale record", ed->stale_why);
    return 0;
}

/* Whose record it is: the VM's identity now, into the entry attach or tune wrote. */
static int edit_set_identity(struct edit *ed, struct pvh_err *e) {
    struct vm_identity id;
    pveconf_identity(&ed->conf, &id);
    return config_doc_set_identity(ed->doc, ed->vmid, &id) < 0
               ? err_set(e, -ENOMEM, "out of memory")
               : 0;
}

static void write_error_hint(struct pvh_err *e, int r, const char *then) {
    if (r == -EACCES || r == -EROFS || r == -EPERM) {
        err_hint(
            e,
            "/etc/pve is read-only without cluster quorum ('pvecm status'); restore quorum and "
            "run the command again; %s",
            then
        );
    } else if (r == -EFBIG || r == -ENOSPC || r == -EDQUOT) {
        err_hint(e, "make room (pmxcfs holds at most 1 MiB a file), then run it again; %s", then);
    } else {
        err_hint(e, "run the command again once the cause is fixed; %s", then);
    }
}

void managed_write_hint(struct pvh_err *e, int r, const char *then) {
    write_error_hint(e, r, then);
}

/* Temp or undo copies beside path that could not be deleted: pmxcfs copies them to every node,
 * so the admin hears of it, and the next change of the file removes them. */
static void
warn_stale_copies(struct edit *ed, const char *path, const struct hostfs_txn_report *rep) {
    if (!path || !rep->stale) {
        return;
    }
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) : 1;
    warn_add(
        ed->w,
        "%zu temporary cop%s could not be deleted (%s%.*s/%s); the next attach, detach or "
        "tune removes %s",
        rep->stale, rep->stale == 1 ? "y" : "ies", rep->stale == 1 ? "" : "the first: ", dirlen,
        slash ? path : ".", rep->stale_name, rep->stale == 1 ? "it" : "them"
    );
}

/* The files a change leaves as they are but whose locks it holds (NULL: changed, or not
 * locked): copies earlier changes left beside them are removed too. */
static void sweep_unchanged(
    struct edit *ed, const struct hostfs_change *vmconf, const struct hostfs_change *mapping
) {
    const struct hostfs_change *unchanged[] = {vmconf, ed->map_locked ? mapping : NULL};
    for (size_t i = 0; i < 2; i++) {
        struct hostfs_txn_report one = {0};
        if (unchanged[i] && hostfs_sweep_stale(unchanged[i]->fs, unchanged[i]->path, &one) == 0) {
            warn_stale_copies(ed, unchanged[i]->path, &one);
        }
    }
}

/* The files that change, into the command's result; true on a dry run (nothing written). */
static bool edit_report(struct edit *ed, const struct hostfs_change *changes, size_t n) {
    for (size_t i = 0; ed->res && i < n; i++) {
        edit_result_change(
            ed->res, changes[i].path, changes[i].old, changes[i].old_len, changes[i].data,
            changes[i].len
        );
    }
    return ed->dry_run;
}

/* Which file of the edit could not be written, and whether the ones before it were put back. */
static int edit_write_failed(
    const struct hostfs_change *changes, const struct hostfs_txn_report *rep, int r,
    struct pvh_err *e
) {
    const char *failed = changes[rep->failed_at].path;
    if (rep->not_undone) {
        err_set(
            e, r,
            "%s was changed, but %s could not be written (%s), and the first file could not "
            "be put back",
            changes[0].path, failed, strerror(-r)
        );
        write_error_hint(e, r, "it completes the change");
    } else {
        err_set(e, r, "cannot write %s: %s", failed, strerror(-r));
        write_error_hint(e, r, "nothing was changed");
    }
    return r;
}

/* Write both files, all or nothing as far as the host lets us: the record of what we own is
 * written first by attach (record_first) and removed last by detach, so that a crash between
 * the two renames leaves a state that running the same command again completes. */
static int edit_commit(struct edit *ed, bool conf_changed, bool record_first, struct pvh_err *e) {
    size_t jlen = 0, clen = 0;
    bool empty;
    _cleanup_free_ char *json = config_doc_serialize(ed->doc, &jlen, &empty);
    _cleanup_free_ char *conf = conf_changed ? pveconf_serialize(&ed->conf, &clen) : NULL;
    if (!json || (conf_changed && !conf)) {
        return err_set(e, -ENOMEM, "out of memory; nothing was changed");
    }
    if (jlen > CONFIG_MAX_BYTES) {
        err_set(e, -EFBIG, "%s would be larger than 1 MiB, the pmxcfs limit", ed->cfg_path);
        err_hint(e, "detach VMs that no longer need a vGPU; nothing was changed");
        return -EFBIG;
    }
    /* An empty settings file means defaults, like no file: leave none behind. */
    struct hostfs_change settings = {
        .fs = ed->cfg_fs,
        .path = ed->cfg_path,
        .data = empty ? NULL : json,
        .len = jlen,
        .old = ed->cfg_text,
        .old_len = ed->cfg_len,
        .mode_if_new = 0640,
        .sweep_stale = true};
    struct hostfs_change vmconf = {
        .fs = ed->env->fs,
        .path = ed->conf_path,
        .data = conf,
        .len = clen,
        .old = ed->conf_text,
        .old_len = ed->conf_len,
        .mode_if_new = 0640,
        .sweep_stale = true};
    struct hostfs_change mapping = {
        .fs = ed->env->fs,
        .path = PVE_PCI_MAPPING_CFG,
        .data = ed->map_new,
        .len = ed->map_new ? strlen(ed->map_new) : 0,
        .old = ed->map_text,
        .old_len = ed->map_len,
        .mode_if_new = 0640,
        .sweep_stale = true};
    struct hostfs_change changes[3];
    size_t n = 0;
    bool write_settings = !(empty && !ed->cfg_text) && !ed->keep_settings;
    if (write_settings && record_first) {
        changes[n++] = settings;
    }
    if (ed->map_change && record_first) {
        changes[n++] = mapping;
    }
    if (conf_changed) {
        changes[n++] = vmconf;
    }
    if (ed->map_change && !record_first) {
        changes[n++] = mapping;
    }
    if (write_settings && !record_first) {
        changes[n++] = settings;
    }
    if (edit_report(ed, changes, n)) {
        return 0;
    }
    struct hostfs_txn_report rep;
    int r = hostfs_replace_files(changes, n, &rep);
    warn_stale_copies(ed, rep.stale ? changes[rep.stale_at].path : NULL, &rep);
    if (r == 0) {
        sweep_unchanged(
            ed, conf_changed || !ed->conf_path[0] ? NULL : &vmconf, ed->map_change ? NULL : &mapping
        );
    }
    return r == 0 ? 0 : edit_write_failed(changes, &rep, r, e);
}

/* The -uuid value for the VM: the mdev UUID, or its smbios1 uuid with uuid_source smbios. */
static void uuid_value(const struct edit *ed, const char *mdev_uuid, char *out, size_t size) {
    if (ed->cfg.uuid_source != UUID_SOURCE_SMBIOS ||
        pveconf_smbios_uuid(&ed->conf, out, size) < 0) {
        snprintf(out, size, "%s", mdev_uuid);
    }
}

/* The id of the type on NVIDIA's vendor interface: "nvidia-<id>" itself (when the node has
 * such GPUs), else the first GPU (of only, when given) whose free VF offers it by name. 0 when
 * none does. */
static unsigned vendor_iface_type_id(
    const struct nvidia_gpu *nv, size_t nnv, const char *type, const char *only_gpu
) {
    unsigned id = 0;
    int used = 0;
    if (nnv && sscanf(type, "nvidia-%u%n", &id, &used) == 1 && !type[used] && id) {
        return id;
    }
    for (size_t g = 0; g < nnv; g++) {
        if (only_gpu && strcmp(nv[g].bdf, only_gpu) != 0) {
            continue;
        }
        for (size_t i = 0; i < nv[g].free_vf.ncreatable; i++) {
            char sysid[32];
            snprintf(sysid, sizeof(sysid), "nvidia-%u", nv[g].free_vf.creatable[i].id);
            if (vgpu_type_matches(type, sysid, nv[g].free_vf.creatable[i].name)) {
                return nv[g].free_vf.creatable[i].id;
            }
        }
    }
    return 0;
}

/* What this node offers, read once for attach's checks. */
struct offers {
    const struct hostfs *fs;
    struct host h;
    struct nvidia_gpu *nv; /* NVIDIA's vendor interface */
    size_t nnv;
};

/* Is the type offered where the VM may start: by a GPU of this node (mdev types, or the
 * vendor interface's). The one place to ask: the cluster view adds the other nodes here. */
static bool attach_type_offered(const struct offers *o, const char *type) {
    for (size_t p = 0; p < o->h.nparents; p++) {
        if (inv_parent_type(&o->h, p, type)) {
            return true;
        }
    }
    return vendor_iface_type_id(o->nv, o->nnv, type, NULL) != 0;
}

/* Does GPU gpu (a physical function or one of its VFs) offer type through mdevs? */
static bool gpu_offers_mdev(const struct offers *o, const char *gpu, const char *type) {
    for (size_t p = 0; p < o->h.nparents; p++) {
        char pf[PCI_ID_LEN];
        if (inventory_physfn(o->fs, o->h.parents[p].bdf, pf, sizeof(pf)) == 0 &&
            (!strcmp(pf, gpu) || !strcmp(o->h.parents[p].bdf, gpu)) &&
            inv_parent_type(&o->h, p, type)) {
            return true;
        }
    }
    return false;
}

/* The GPUs of this node that offer type, ", "-separated into buf ("" when none). */
static void gpus_offering(const struct offers *o, const char *type, char *buf, size_t size) {
    buf[0] = '\0';
    for (size_t g = 0; g < o->h.ngpus; g++) {
        if (gpu_offers_mdev(o, o->h.gpus[g].bdf, type)) {
            str_append(buf, size, "%s%s", buf[0] ? ", " : "", o->h.gpus[g].bdf);
        }
    }
    for (size_t g = 0; g < o->nnv; g++) {
        if (vendor_iface_type_id(o->nv, o->nnv, type, o->nv[g].bdf)) {
            str_append(buf, size, "%s%s", buf[0] ? ", " : "", o->nv[g].bdf);
        }
    }
}

#define NEAREST_MAX 5
struct near_type {
    char name[64];
    size_t dist;
    unsigned fb_mib;
};

static bool near_before(const struct near_type *a, const struct near_type *b) {
    return a->dist != b->dist       ? a->dist < b->dist
           : a->fb_mib != b->fb_mib ? a->fb_mib < b->fb_mib
                                    : strcasecmp(a->name, b->name) < 0;
}

/* Keep the NEAREST_MAX names nearest to q: by edit distance, then size, then name. */
static void
near_consider(struct near_type *best, size_t *n, const char *q, const char *name, unsigned fb_mib) {
    for (size_t i = 0; i < *n; i++) {
        if (!strcasecmp(best[i].name, name)) {
            return;
        }
    }
    struct near_type t = {.dist = str_edit_distance(q, name), .fb_mib = fb_mib};
    snprintf(t.name, sizeof(t.name), "%s", name);
    size_t at = *n;
    while (at > 0 && near_before(&t, &best[at - 1])) {
        at--;
    }
    if (at == NEAREST_MAX) {
        return;
    }
    size_t keep = *n < NEAREST_MAX ? *n : NEAREST_MAX - 1;
    memmove(&best[at + 1], &best[at], (keep - at) * sizeof(*best));
    best[at] = t;
    *n = keep + 1;
}

/* The types this node offers nearest to query (short names, or ids when it is one), up to
 * NEAREST_MAX, ", "-separated into buf ("" when the node offers none). */
static void nearest_types(const struct offers *o, const char *query, char *buf, size_t size) {
    struct near_type best[NEAREST_MAX];
    size_t n = 0;
    bool by_id = !strncasecmp(query, "nvidia-", 7);
    const char *q = query; /* names are compared without NVIDIA's product prefix */
    q += !strncasecmp(q, "GRID ", 5) ? 5 : !strncasecmp(q, "NVIDIA ", 7) ? 7 : 0;
    for (size_t i = 0; i < o->h.ndefs; i++) {
        const struct inv_typedef *d = &o->h.defs[i];
        near_consider(
            best, &n, q, by_id || !d->info.short_name[0] ? d->id : d->info.short_name,
            d->info.fb_mib
        );
    }
    for (size_t g = 0; g < o->nnv; g++) {
        for (size_t i = 0; i < o->nv[g].free_vf.ncreatable; i++) {
            const struct nvidia_iface_type *t = &o->nv[g].free_vf.creatable[i];
            struct vgpu_type_info info;
            char id[32];
            snprintf(id, sizeof(id), "nvidia-%u", t->id);
            vgpu_type_describe(t->name, "", &info);
            near_consider(
                best, &n, q, by_id || !info.short_name[0] ? id : info.short_name, info.fb_mib
            );
        }
    }
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        str_append(buf, size, "%s%s", i ? ", " : "", best[i].name);
    }
}

/* A type this node does not offer: refused, with the nearest names it does offer (or what
 * keeps its GPUs from offering types, and the fix). */
static int type_not_offered(
    const struct hook_env *env, const struct offers *o, const char *node, const char *type,
    struct pvh_err *e
) {
    char near[NEAREST_MAX * 66], also[NEAREST_MAX * 66 + 64] = "";
    nearest_types(o, type, near, sizeof(near));
    _cleanup_free_ char *esc = str_escape_ctl(type, strlen(type), false);
    struct readiness_problem why;
    if (readiness_gpus_not_ready(env->fs, &why)) { /* say what keeps types away, the names too */
        if (near[0]) {
            snprintf(also, sizeof(also), " (or did you mean %s?)", near);
        }
        err_set(
            e, -ENODEV, "no GPU on node %s offers type '%s' now: %s", node, esc ? esc : "?",
            why.what
        );
        err_hint(e, "%s, then attach again%s; nothing was changed", why.fix, also);
        return -ENODEV;
    }
    err_set(
        e, -ENODEV, "no GPU on node %s offers type '%s', so the VM could not start here", node,
        esc ? esc : "?"
    );
    if (near[0]) {
        err_hint(
            e, "did you mean %s? ('pve-vgpu-hook types' lists every type); nothing was changed",
            near
        );
    } else {
        err_hint(
            e, "this node offers no vGPU types: 'pve-vgpu-hook doctor' says why; nothing was "
               "changed"
        );
    }
    return -ENODEV;
}

/* Each --gpu that is not on the vendor interface: a PCI device here that offers the type. */
static int gpus_offer(
    const struct offers *o, const char *node, const struct attach_request *req, struct pvh_err *e
) {
    for (size_t g = 0; g < req->ngpus; g++) {
        const char *gpu = req->gpus[g];
        char path[PATH_MAX], pf[PCI_ID_LEN], offering[ATTACH_GPUS_MAX * 16 + 256];
        bool vendor = false;
        for (size_t k = 0; k < o->nnv && !vendor; k++) {
            vendor = inventory_physfn(o->fs, gpu, pf, sizeof(pf)) == 0 && !strcmp(o->nv[k].bdf, pf);
        }
        if (vendor || gpu_offers_mdev(o, gpu, req->type)) {
            continue; /* the vendor interface: checked where its type id is found */
        }
        bool exists = str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s", gpu) == 0 &&
                      hostfs_exists(o->fs, path) == 0;
        gpus_offering(o, req->type, offering, sizeof(offering));
        if (exists) {
            err_set(e, -ENODEV, "GPU %s on node %s does not offer type '%s'", gpu, node, req->type);
        } else {
            err_set(e, -ENODEV, "there is no PCI device %s on node %s", gpu, node);
        }
        if (offering[0]) {
            err_hint(
                e,
                "GPUs offering %s here: %s (or leave --gpu out: every GPU offering it); "
                "nothing was changed",
                req->type, offering
            );
        } else {
            err_hint(
                e, "'pve-vgpu-hook types' lists the GPUs and their types; nothing was changed"
            );
        }
        return -ENODEV;
    }
    return 0;
}

/* The cluster view for attach's checks, read once; NULL (e says why) when it cannot be. */
static const struct cluster_view *edit_cluster(struct edit *ed, struct pvh_err *e) {
    if (ed->cluster_read == 0) {
        int r = cluster_load(ed->env, &ed->cluster, &ed->cluster_err);
        ed->cluster_read = r < 0 ? r : 1;
    }
    if (ed->cluster_read < 0 && e) {
        *e = ed->cluster_err;
    }
    return ed->cluster_read > 0 ? &ed->cluster : NULL;
}

/* A type no GPU of this node offers: accepted when other nodes offer it, through mdevs or
 * NVIDIA's vendor interface (as they last published: the VM starts there), refused otherwise. */
static int type_elsewhere(
    const struct hook_env *env, const struct offers *o, struct edit *ed, const char *type,
    struct pvh_warnings *w, struct pvh_err *e
) {
    const struct cluster_view *v = edit_cluster(ed, NULL);
    char mdev_nodes[4096] = "", vendor_nodes[4096] = "";
    if (v) {
        cluster_nodes_offering(v, type, false, mdev_nodes, sizeof(mdev_nodes));
        cluster_nodes_offering(v, type, true, vendor_nodes, sizeof(vendor_nodes));
    }
    ed->vendor_elsewhere = !mdev_nodes[0] && vendor_nodes[0];
    const char *nodes = mdev_nodes[0] ? mdev_nodes : vendor_nodes;
    if ((ed->type_elsewhere = nodes[0])) {
        warn_add_code(
            w, "type-elsewhere",
            "no GPU on node %s offers %s; %s offer%s it%s (as last published): VM %lu starts "
            "there, not here ('pve-vgpu-hook where %lu' tells where it can start now)",
            ed->node, type, nodes, strchr(nodes, ',') ? "" : "s",
            ed->vendor_elsewhere ? " on NVIDIA's vendor interface" : "", ed->vmid, ed->vmid
        );
        return 0;
    }
    return type_not_offered(env, o, ed->node, type, e);
}

/* Each --gpu NODE:PCI of another node: that node's published inventory lists the GPU offering
 * the type. */
static int gpus_elsewhere(struct edit *ed, const struct attach_request *req, struct pvh_err *e) {
    int r = 0;
    for (size_t g = 0; r == 0 && g < req->ngpus; g++) {
        if (!req->gpu_nodes[g][0] || !strcmp(req->gpu_nodes[g], ed->node)) {
            continue;
        }
        const struct cluster_view *v = edit_cluster(ed, e);
        r = v ? cluster_gpu_offers(v, req->gpu_nodes[g], req->gpus[g], req->type, e) : e->code;
    }
    return r;
}

/* The request with only this node's GPUs: what this node's checks and mapping see. */
static void
request_here(const struct attach_request *req, const char *node, struct attach_request *here) {
    *here = *req;
    here->ngpus = 0;
    for (size_t g = 0; g < req->ngpus; g++) {
        if (!req->gpu_nodes[g][0] || !strcmp(req->gpu_nodes[g], node)) {
            memcpy(here->gpus[here->ngpus], req->gpus[g], sizeof(here->gpus[0]));
            here->gpu_nodes[here->ngpus++][0] = '\0';
        }
    }
}

/* Which way managed mode goes on this node: 0 through an mdev in args; 1 through a resource
 * mapping, when the type or a named GPU is on NVIDIA's vendor interface (*vtype: the type's id
 * there). Refused: a type no GPU here offers, a --gpu that does not exist or offer it. */
static int check_type_here(
    const struct hook_env *env, struct edit *ed, const struct attach_request *req, unsigned *vtype,
    struct pvh_warnings *w, struct pvh_err *e
) {
    struct offers o = {.fs = env->fs};
    struct pvh_err le;
    *vtype = 0;
    if (inventory_load_all(env->fs, &o.h, &le) < 0) {
        inventory_free(&o.h);
        warn_add(w, "cannot read this node's GPUs (%s); not checking the type", le.msg);
        return 0;
    }
    (void)inventory_nvidia_gpus(env->fs, &o.nv, &o.nnv);
    bool anywhere = false;
    for (size_t p = 0; p < o.h.nparents; p++) {
        anywhere |= inv_parent_type(&o.h, p, req->type) != NULL;
    }
    bool named_vendor = false; /* a --gpu on the vendor interface */
    for (size_t g = 0; g < req->ngpus && !named_vendor; g++) {
        char pf[PCI_ID_LEN];
        for (size_t k = 0; k < o.nnv && !named_vendor; k++) {
            named_vendor = inventory_physfn(env->fs, req->gpus[g], pf, sizeof(pf)) == 0 &&
                           !strcmp(o.nv[k].bdf, pf);
        }
    }
    if (named_vendor || !anywhere) {
        for (size_t g = 0; g < req->ngpus && !*vtype; g++) {
            *vtype = vendor_iface_type_id(o.nv, o.nnv, req->type, req->gpus[g]);
        }
        *vtype = *vtype ? *vtype : vendor_iface_type_id(o.nv, o.nnv, req->type, NULL);
    }
    int r = 0;
    if (named_vendor && !*vtype) {
        err_set(
            e, -ENODEV,
            "no GPU on node %s offers '%s' on a free VF now, so its id on NVIDIA's vendor "
            "interface is unknown",
            ed->node, req->type
        );
        err_hint(
            e, "give the id as 'nvidia-N' ('pve-vgpu-hook types' lists them), or attach while a "
               "VF is free; nothing was changed"
        );
        r = -ENODEV;
    } else if (!attach_type_offered(&o, req->type)) {
        r = type_elsewhere(env, &o, ed, req->type, w, e);
    } else {
        r = gpus_offer(&o, ed->node, req, e);
    }
    inventory_nvidia_gpus_free(o.nv, o.nnv);
    inventory_free(&o.h);
    return r < 0 ? r : *vtype ? 1 : 0;
}

/* Proxmox refuses to start a VM whose hookscript volume does not exist; qm set would have
 * said so, but attach writes the config itself. */
static void
warn_hookscript_missing(const struct hook_env *env, const char *volid, struct pvh_warnings *w) {
    char path[PATH_MAX], why[320];
    struct storage_cache storage = {0};
    int r = hookscript_path(
        storage_cached(env->fs, &storage), volid, path, sizeof(path), why, sizeof(why)
    );
    storage_cache_free(&storage);
    if (r < 0) {
        warn_add(w, "cannot check hookscript %s: %s", volid, why);
    } else if (hostfs_exists(env->fs, path) < 0) {
        warn_add(
            w,
            "hookscript %s (%s) does not exist yet, and Proxmox will refuse to start the "
            "VM: run 'pve-vgpu-hook setup --storage %.*s' on every node",
            volid, path, (int)strcspn(volid, ":"), volid
        );
    }
}

/* The node a --gpu names: its NODE: prefix, else this node. */
static const char *gpu_node(const struct edit *ed, const struct attach_request *req, size_t g) {
    return req->gpu_nodes[g][0] ? req->gpu_nodes[g] : ed->node;
}

/* vms.<vmid>.gpus: the lists of the nodes --gpu names replaced, other nodes' lists kept. */
static json_object *
gpus_json(const struct edit *ed, const struct vm_settings *old, const struct attach_request *req) {
    json_object *by_node = json_object_new_object();
    for (size_t k = 0; old && k < old->nlists; k++) {
        const struct vm_gpu_list *l = &old->lists[k];
        const char *node = l->node[0] ? l->node : ed->node;
        bool named = false;
        for (size_t g = 0; g < req->ngpus && !named; g++) {
            named = !strcmp(gpu_node(ed, req, g), node);
        }
        if (named) {
            continue;
        }
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < l->n; i++) {
            json_object_array_add(arr, json_object_new_string(l->gpus[i]));
        }
        json_object_object_add(by_node, node, arr);
    }
    for (size_t g = 0; g < req->ngpus; g++) {
        json_object *arr = json_object_object_get(by_node, gpu_node(ed, req, g));
        if (!arr) {
            arr = json_object_new_array();
            json_object_object_add(by_node, gpu_node(ed, req, g), arr);
        }
        json_object_array_add(arr, json_object_new_string(req->gpus[g]));
    }
    if (json_object_object_length(by_node) == 0) {
        json_object_put(by_node);
        return NULL;
    }
    return by_node;
}

/* The args device and -uuid that attach adds for the VM's mdev. */
struct managed_args {
    char uuid[MDEV_UUID_LEN + 1];
    char dev[128]; /* "vfio-pci,sysfsdev=/sys/bus/mdev/devices/<uuid>" */
    char uval[64]; /* the -uuid value */
};

static void managed_args_for(
    const struct edit *ed, unsigned long vmid, unsigned index, struct managed_args *a
) {
    mdev_uuid_for(vmid, index, a->uuid);
    snprintf(a->dev, sizeof(a->dev), "vfio-pci,sysfsdev=" SYS_MDEV_DEVICES "/%s", a->uuid);
    uuid_value(ed, a->uuid, a->uval, sizeof(a->uval));
}

/* args with our device and -uuid present (appended when missing, nothing else touched). QEMU
 * takes one -uuid: another value in args is replaced in place (*replaced: that value,
 * malloc'ed; NULL when none was). */
static int
args_with_managed(const char *cur, const struct managed_args *a, char **out, char **replaced) {
    _cleanup_free_ char *with_dev = NULL, *other = NULL;
    *replaced = NULL;
    int r = 0;
    if (!args_has_pair(cur, "-device", a->dev)) {
        r = args_append_pair(cur, "-device", a->dev, &with_dev);
    } else {
        with_dev = strdup(cur);
        r = with_dev ? 0 : -ENOMEM;
    }
    if (r < 0) {
        return r;
    }
    if (args_has_pair(with_dev, "-uuid", a->uval)) {
        *out = TAKE_PTR(with_dev);
        return 0;
    }
    if (args_uuid(with_dev, &other) == 0) {
        bool changed;
        if ((r = args_with_uuid(with_dev, a->uval, out, &changed)) == 0) {
            *replaced = TAKE_PTR(other);
        }
        return r;
    }
    return args_append_pair(with_dev, "-uuid", a->uval, out);
}

/* What attach may not do to this VM: a hostpci vGPU, another index, another hookscript. */
static int attach_allowed(
    const struct edit *ed, const struct attach_request *req, const struct vm_settings *old,
    unsigned index, const char *hookscript, struct pvh_err *e
) {
    struct hostpci hps[HOSTPCI_MAX];
    size_t nhps, other = 0;
    (void)hostpci_mdev_entries(&ed->conf, hps, &nhps, NULL, NULL); /* malformed: not ours */
    for (size_t i = 0; i < nhps; i++) { /* the mapping a previous attach set is ours */
        if (!(old && old->mapping && !strcmp(hps[i].mapping, old->mapping))) {
            hps[other++] = hps[i];
        }
    }
    if (other) {
        unsigned hp = hps[0].index;
        err_set(e, -EINVAL, "VM %lu already has a vGPU in hostpci%u (hostpci mode)", req->vmid, hp);
        err_hint(
            e,
            "a VM uses one mode: remove hostpci%u ('qm set %lu --delete hostpci%u') to "
            "let pve-vgpu-hook place it, or keep hostpci mode without attach",
            hp, req->vmid, hp
        );
        return -EINVAL;
    }
    if (old && old->index != index) {
        err_set(
            e, -EINVAL, "VM %lu is attached with index %u; a new index changes its mdev UUID",
            req->vmid, old->index
        );
        err_hint(e, "run 'pve-vgpu-hook detach %lu' first, then attach again", req->vmid);
        return -EINVAL;
    }
    const char *has_hook = pveconf_get(&ed->conf, "hookscript");
    if (has_hook && strcmp(has_hook, hookscript) != 0) {
        err_set(
            e, -EEXIST, "VM %lu already has hookscript %s, and Proxmox runs one hookscript per VM",
            req->vmid, has_hook
        );
        err_hint(
            e,
            "move that script into %s/ on every node (pve-vgpu-hook runs it after its "
            "own work, with the same arguments), remove it from the VM ('qm set %lu "
            "--delete hookscript') and attach again; or keep it as the hookscript, call "
            "pve-vgpu-hook \"$1\" \"$2\" from it first, and attach with --hookscript %s",
            HOOKS_DIR, req->vmid, has_hook
        );
        return -EEXIST;
    }
    return 0;
}

static int
validate_request(const struct attach_request *req, const char *hookscript, struct pvh_err *e) {
    if (req->type && !vgpu_type_query_valid(req->type)) { /* none: attach again (attach_again) */
        _cleanup_free_ char *esc = str_escape_ctl(req->type, strlen(req->type), false);
        err_set(e, -EINVAL, "'%s' is not a vGPU type", esc ? esc : "?");
        err_hint(
            e, "use a sysfs id like nvidia-46, a name like 'GRID P40-2Q' or a short name like "
               "P40-2Q ('pve-vgpu-hook types' lists them); nothing was changed"
        );
        return -EINVAL;
    }
    if (!hookscript_volid_valid(hookscript)) {
        err_set(e, -EINVAL, "'%s' is not a snippets volume id", hookscript);
        err_hint(e, "use the form STORAGE:snippets/FILE, e.g. %s", DEFAULT_HOOKSCRIPT);
        return -EINVAL;
    }
    return 0;
}

/* Edit the VM config for attach: our args and hookscript, added where missing (so that
 * attaching again restores them after a hand edit). *record: the "attached" entry. */
static int attach_edit_conf(
    struct edit *ed, const struct attach_request *req, const struct vm_settings *old,
    const struct managed_args *a, const char *hookscript, bool *changed, json_object **record,
    struct pvh_warnings *notes, struct pvh_err *e
) {
    /* copies: editing the config replaces the values these point to */
    _cleanup_free_ char *cur_copy = NULL, *hook_copy = NULL;
    const char *cur = edit_get(ed, "args");
    const char *has_hook = pveconf_get(&ed->conf, "hookscript");
    if ((cur && !(cur = cur_copy = strdup(cur))) ||
        (has_hook && !(has_hook = hook_copy = strdup(has_hook)))) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    bool attached = old && old->attached;
    if (cur && !args_splittable(cur)) {
        err_set(
            e, -EINVAL,
            "args of VM %lu has an unbalanced quote or a dangling backslash: what attach appends "
            "would end up inside it",
            req->vmid
        );
        err_hint(e, "Proxmox cannot split such args either: fix them first; nothing was changed");
        return -EINVAL;
    }
    if (!attached && args_has_pair(cur, "-device", a->dev)) {
        err_set(e, -EEXIST, "args of VM %lu already pass mdev %s to QEMU", req->vmid, a->uuid);
        err_hint(
            e,
            "remove that -device from args ('qm set %lu --args ...'), then attach; nothing "
            "was changed",
            req->vmid
        );
        return -EEXIST;
    }
    _cleanup_free_ char *new_args = NULL, *replaced = NULL;
    int r = args_with_managed(cur, a, &new_args, &replaced);
    if (r < 0) {
        return err_set(e, r, "out of memory");
    }
    if (replaced) {
        _cleanup_free_ char *esc = str_escape_ctl(replaced, strlen(replaced), false);
        warn_add(
            ed->w,
            "args of VM %lu passed -uuid %s; replaced by %s, since QEMU takes one -uuid and the "
            "vGPU needs the VM's (detach puts %s back)",
            req->vmid, esc ? esc : "?", a->uval, esc ? esc : "?"
        );
    }
    *changed = !cur || strcmp(cur, new_args) != 0;
    if (*changed && (r = edit_put(ed, "args", new_args)) < 0) {
        return err_set(e, r, "cannot edit the VM config: %s", strerror(-r));
    }
    if (*changed) {
        warn_add(notes, "args: %s", new_args);
    }
    if (!has_hook) {
        if ((r = pveconf_set(&ed->conf, "hookscript", hookscript)) < 0) {
            return err_set(e, r, "cannot edit the VM config: %s", strerror(-r));
        }
        *changed = true;
        warn_add(notes, "hookscript: %s", hookscript);
    }
    /* What detach undoes: what was there before the first attach. */
    const char *before = attached ? old->args_before : cur;
    const char *added = attached ? old->hookscript_added : (has_hook ? NULL : hookscript);
    if (attached && !has_hook && !added) {
        added = hookscript; /* the admin's hookscript went away; ours stands in */
    }
    *record = json_object_new_object();
    json_object_object_add(*record, "args_before", before ? json_object_new_string(before) : NULL);
    json_object_object_add(
        *record, "hookscript_added", added ? json_object_new_string(added) : NULL
    );
    return 0;
}

/* The mapping a hostpci value refers to (mapping=), malloc'ed; NULL when none. */
static char *hostpci_mapping(const char *value) {
    struct propstr ps;
    struct pvh_err pe;
    char *mapping = NULL;
    if (value && propstr_parse(value, "host", &ps, &pe) == 0) {
        const char *m = propstr_get(&ps, "mapping");
        mapping = m ? strdup(m) : NULL;
        propstr_free(&ps);
    }
    return mapping;
}

/* What attach through a mapping may not do: switch a VM attached with an mdev, use a
 * qemu-server that cannot, take a hostpci slot in use (other than by its own mapping). */
static int vfmap_attach_allowed(
    const struct edit *ed, const struct attach_request *req, const struct vm_settings *old,
    const char *key, const char *want, const char *id, bool classic, struct pvh_err *e
) {
    bool ours = old && old->mapping && !strcmp(old->mapping, id);
    if (old && old->attached && !old->mapping && !classic) {
        err_set(
            e, -EEXIST,
            "VM %lu is attached with an mdev in args; '%s' is on NVIDIA's vendor "
            "interface",
            req->vmid, req->type
        );
        err_hint(e, "run 'pve-vgpu-hook detach %lu' first, then attach again", req->vmid);
        return -EEXIST;
    }
    char ver[64];
    if (!classic && qsrv_installed(ed->env->fs, ver, sizeof(ver)) == 0 &&
        qsrv_require(ver, QSRV_VENDOR_IFACE, ed->node, e) < 0) {
        err_hint(
            e,
            "upgrade Proxmox VE to qemu-server %s or later ('apt update && apt full-upgrade'), "
            "then attach; nothing was changed",
            qsrv_since(QSRV_VENDOR_IFACE)
        );
        return err_prefix(
            e, "cannot attach '%s', a type of NVIDIA's vendor interface: ", req->type
        );
    }
    const char *cur = edit_get(ed, key);
    _cleanup_free_ char *cur_mapping = hostpci_mapping(cur);
    if (cur && strcmp(cur, want) != 0 && !(ours && cur_mapping && !strcmp(cur_mapping, id))) {
        _cleanup_free_ char *esc = str_escape_ctl(cur, strlen(cur), false);
        err_set(e, -EEXIST, "%s of VM %lu is in use (%s)", key, req->vmid, esc ? esc : "?");
        err_hint(
            e,
            "attach with --index N for a free hostpci slot, or remove it ('qm set %lu "
            "--delete %s'); nothing was changed",
            req->vmid, key
        );
        return -EEXIST;
    }
    return 0;
}

/* This node's map lines for the type, in the order pre-start gives them (--gpu: only those). */
static int vfmap_attach_lines(
    const struct edit *ed, const struct attach_request *req, unsigned type_id, char **lines,
    size_t *nvfs, struct pvh_err *e
) {
    char only[ATTACH_GPUS_MAX][PCI_ID_LEN];
    for (size_t g = 0; g < req->ngpus; g++) {
        if (inventory_physfn(ed->env->fs, req->gpus[g], only[g], sizeof(only[g])) < 0) {
            memcpy(only[g], req->gpus[g], sizeof(only[g]));
        }
    }
    int r = plan_vf_lines(
        ed->env->fs, ed->node, type_id, only, req->ngpus, ed->cfg.placement, lines, nvfs, e
    );
    if (r == -ENODEV) {
        err_set(e, r, "no GPU on node %s can take nvidia-%u now", ed->node, type_id);
        err_hint(e, "'pve-vgpu-hook types' shows what each GPU can take; nothing was changed");
    }
    return r;
}

/* Another node's map lines, from its published inventory. */
struct map_remote {
    char node[NODE_NAME_MAX];
    char *lines;
    size_t n;
};

/* How attach passes the vGPU through the VM's resource mapping: hostpci<index> with
 * mdev=<mdev>, this node's n map lines (classic: mdev parents; else the vendor interface's VFs). */
struct map_form {
    unsigned index;
    char mdev[VGPU_TYPE_MAX];
    bool classic;
    char *lines; /* this node's; "" for a type only other nodes offer */
    size_t n;
    struct map_remote *remote; /* a type only other nodes offer: their lines */
    size_t nremote;
    char args_why[4352]; /* the args form though qemu-server takes the mapping form: why */
};

static void map_form_free(struct map_form *m) {
    for (size_t i = 0; i < m->nremote; i++) {
        free(m->remote[i].lines);
    }
    free(m->remote);
    free(m->lines);
    m->remote = NULL;
    m->lines = NULL;
    m->nremote = 0;
}

static int detach_edit_conf(
    struct edit *ed, const struct vm_settings *vs, bool *changed, struct pvh_warnings *notes,
    struct pvh_warnings *w, struct pvh_err *e
);

/* A VM attached in the args form, now given the mapping form: our -device and -uuid out of
 * args as detach takes them (the hookscript stays, still ours). On a running VM both changes
 * go into [PENDING] (edit_put), as qm set puts them: it keeps its vGPU until it stops, and its
 * next start passes the mapping. */
static int attach_convert(
    struct edit *ed, const struct vm_settings *old, bool *changed, struct pvh_warnings *notes,
    struct pvh_warnings *w, struct pvh_err *e
) {
    struct vm_settings args_only = *old;
    args_only.hookscript_added = NULL;
    int r = detach_edit_conf(ed, &args_only, changed, notes, w, e);
    if (r == 0) {
        warn_add(
            notes, "VM %lu: converted from args to a resource mapping (qemu-server %s and later)%s",
            ed->vmid, qsrv_since(QSRV_MAPPING_MDEV),
            ed->running ? "; it runs with the args form until it stops, the mapping takes "
                          "effect at its next start"
                        : ""
        );
    }
    return r;
}

/* hostpci<key> as want; a line that already refers to mapping id keeps its other options. */
static int attach_hostpci(
    struct edit *ed, const char *key, const char *want, const char *id, const char *mdev,
    bool *changed, struct pvh_warnings *notes, struct pvh_err *e
) {
    const char *cur = edit_get(ed, key);
    _cleanup_free_ char *cur_mapping = hostpci_mapping(cur);
    _cleanup_free_ char *value =
        cur_mapping && !strcmp(cur_mapping, id) ? propstr_with(cur, "mdev", mdev) : strdup(want);
    if (!value) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    if (cur && !strcmp(cur, value)) {
        return 0;
    }
    int r = edit_put(ed, key, value);
    if (r < 0) {
        return err_set(e, r, "cannot edit the VM config: %s", strerror(-r));
    }
    *changed = true;
    warn_add(notes, "%s: %s", key, value);
    return 0;
}

/* Did an attach of ours create pci.cfg, and is its mapping still there? Then the file is still
 * ours to remove once the last of our mappings leaves it (detach removes an emptied file only
 * when its record says the file was created for it). */
static bool mapping_file_ours(const struct edit *ed) {
    for (size_t i = 0; ed->map_text && i < ed->cfg.nvms; i++) {
        const struct vm_settings *vs = &ed->cfg.vms[i];
        size_t start, end;
        if (vs->mapping && vs->mapping_file_created &&
            sectioncfg_span(ed->map_text, false, vs->mapping, &start, &end) == 0) {
            return true;
        }
    }
    return false;
}

/* attach --live-migration (or a VM attached with it): refused on a qemu-server that has no
 * live-migration-capable mappings, and for the args form, which Proxmox cannot see. */
static int attach_live_allowed(
    const struct edit *ed, const struct attach_request *req, const struct map_form *m,
    struct pvh_err *e
) {
    char ver[64] = "";
    if (req->live_migration <= 0) {
        return 0;
    }
    (void)qsrv_installed(ed->env->fs, ver, sizeof(ver));
    if (qsrv_require(ver, QSRV_LIVE_MIGRATION, ed->node, e) < 0) {
        err_hint(
            e,
            "upgrade Proxmox VE to qemu-server %s or later ('apt update && apt full-upgrade') on "
            "every node, then attach again; nothing was changed",
            qsrv_since(QSRV_LIVE_MIGRATION)
        );
        return err_prefix(e, "cannot mark VM %lu's vGPU live-migratable: ", req->vmid);
    }
    if (!m->lines) {
        err_set(
            e, -ENOTSUP,
            "cannot mark VM %lu's vGPU live-migratable: live migration needs the mapping form, "
            "qemu-server %s and later, and this attach passes the vGPU through args%s%s%s",
            req->vmid, qsrv_since(QSRV_MAPPING_MDEV), m->args_why[0] ? " (" : "", m->args_why,
            m->args_why[0] ? ")" : ""
        );
        err_reason(e, "args-form");
        err_hint(
            e, "attach on a node whose GPUs offer the type, or once the nodes offering it publish "
               "their PCI ids (pve-vgpu-hook updated there), or attach without --live-migration; "
               "nothing was changed"
        );
        return -ENOTSUP;
    }
    return 0;
}

/* The mapping's live-migration-capable flag as live says, in ed->map_new. */
static int attach_live_flag(
    struct edit *ed, const char *id, bool live, struct pvh_warnings *notes, struct pvh_err *e
) {
    char *flagged = NULL;
    int r = vfmap_set_flag(ed->map_new, id, "live-migration-capable", live, &flagged);
    if (r < 0) {
        return err_set(e, r, "out of memory"); /* the section was just put there */
    }
    if (strcmp(flagged, ed->map_new) != 0) {
        warn_add(
            notes, "%s: mapping %s %s live-migration-capable", PVE_PCI_MAPPING_CFG, id,
            live ? "marked" : "no longer marked"
        );
    }
    free(ed->map_new);
    ed->map_new = flagged;
    ed->map_change = !ed->map_text || strcmp(ed->map_text, ed->map_new) != 0;
    return 0;
}

/* The other nodes' lines of a type only they offer into ed->map_new, node by node after the
 * section's map lines (their own publish keeps them from then on, as for any node). -ENOMEM. */
static int attach_remote_lines(
    struct edit *ed, const char *id, const struct map_form *m, struct pvh_warnings *notes
) {
    for (size_t i = 0; i < m->nremote; i++) {
        const struct map_remote *o = &m->remote[i];
        char *next = NULL;
        unsigned sep;
        int r = vfmap_put(ed->map_new, id, ed->vmid, o->node, o->lines, &next, &sep);
        if (r < 0) {
            return r;
        }
        if (strcmp(next, ed->map_new) != 0) {
            warn_add(
                notes, "%s: mapping %s lists %zu %s%s of node %s (as it published them)",
                PVE_PCI_MAPPING_CFG, id, o->n, m->classic ? "mdev parent" : "VF",
                o->n == 1 ? "" : "s", o->node
            );
        }
        free(ed->map_new);
        ed->map_new = next;
    }
    return 0;
}

/* Managed mode through the VM's resource mapping (NVIDIA's vendor interface; classic mdev GPUs
 * on qemu-server 8.0.4 and later): the mapping with this node's lines in placement order, and
 * hostpci<index> referring to it; the hookscript as for mdevs. Other nodes add theirs when they
 * publish (mapsync) or start (plan_vfmap); for a type only they offer, attach writes theirs from
 * their inventories. An admin's mapping of the same name is never touched. */
static int attach_vfmap(
    struct edit *ed, const struct attach_request *req, const struct vm_settings *old,
    const struct map_form *m, const char *hookscript, bool *changed, json_object **record,
    struct pvh_warnings *notes, struct pvh_warnings *w, struct pvh_err *e
) {
    char id[VFMAP_ID_MAX], key[16], want[VFMAP_ID_MAX + VGPU_TYPE_MAX + 16];
    snprintf(id, sizeof(id), VFMAP_ID_FMT, req->vmid);
    snprintf(key, sizeof(key), "hostpci%u", m->index);
    snprintf(want, sizeof(want), "mapping=%s,mdev=%s", id, m->mdev);
    bool ours = old && old->mapping && !strcmp(old->mapping, id);
    bool converting = m->classic && old && old->attached && !old->mapping;
    size_t start, end;
    int r = vfmap_attach_allowed(ed, req, old, key, want, id, m->classic, e);
    if (r < 0 || (converting && (r = attach_convert(ed, old, changed, notes, w, e)) < 0) ||
        (r = edit_open_mapping(ed, w, e)) < 0) {
        return r;
    }
    const char *text = ed->map_text ? ed->map_text : "";
    if (!ours && sectioncfg_span(text, false, id, &start, &end) == 0) {
        err_set(
            e, -EEXIST, "%s already has a resource mapping '%s' that pve-vgpu-hook did not make",
            PVE_PCI_MAPPING_CFG, id
        );
        err_hint(
            e, "pve-vgpu-hook never changes an admin's mapping: rename or remove yours "
               "(Datacenter > Resource Mappings), then attach again; nothing was changed"
        );
        return -EEXIST;
    }
    unsigned sep;
    if ((r = vfmap_put(text, id, req->vmid, ed->node, m->lines, &ed->map_new, &sep)) < 0 ||
        (r = attach_remote_lines(ed, id, m, notes)) < 0) {
        return err_set(e, r, "out of memory");
    }
    sep = ours ? old->mapping_sep_nl : sep; /* what the first attach did, detach undoes */
    bool created = ours ? old->mapping_file_created : !ed->map_text || mapping_file_ours(ed);
    ed->map_change = !ed->map_text || strcmp(ed->map_text, ed->map_new) != 0;
    if (ed->map_change && m->n) {
        warn_add(
            notes, "%s: mapping %s lists %zu %s%s of node %s", PVE_PCI_MAPPING_CFG, id, m->n,
            m->classic ? "mdev parent" : "VF", m->n == 1 ? "" : "s", ed->node
        );
    }
    bool live = req->live_migration ? req->live_migration > 0 : ours && old->live_migration;
    if ((r = attach_live_flag(ed, id, live, notes, e)) < 0 ||
        (r = attach_hostpci(ed, key, want, id, m->mdev, changed, notes, e)) < 0) {
        return r;
    }
    const char *added = ours || converting ? old->hookscript_added : NULL;
    if (!pveconf_get(&ed->conf, "hookscript")) {
        if ((r = pveconf_set(&ed->conf, "hookscript", hookscript)) < 0) {
            return err_set(e, r, "cannot edit the VM config: %s", strerror(-r));
        }
        *changed = true;
        added = hookscript;
        warn_add(notes, "hookscript: %s", hookscript);
    }
    *record = json_object_new_object();
    json_object_object_add(
        *record, "hookscript_added", added ? json_object_new_string(added) : NULL
    );
    json_object_object_add(*record, "mapping", json_object_new_string(id));
    json_object_object_add(*record, "mapping_sep_nl", json_object_new_int((int)sep));
    json_object_object_add(*record, "mapping_file_created", json_object_new_boolean(created));
    if (live) {
        json_object_object_add(*record, "live_migration", json_object_new_boolean(true));
    }
    return 0;
}

/* The first hostpciN the VM config does not use; -ENOSPC when all are. */
static int first_free_hostpci(const struct edit *ed, unsigned *index, struct pvh_err *e) {
    for (unsigned i = 0; i < HOSTPCI_MAX; i++) {
        char key[16];
        snprintf(key, sizeof(key), "hostpci%u", i);
        if (!pveconf_get(&ed->conf, key)) {
            *index = i;
            return 0;
        }
    }
    err_set(
        e, -ENOSPC, "VM %lu uses every hostpci slot (hostpci0 to hostpci%u)", ed->vmid,
        HOSTPCI_MAX - 1
    );
    err_hint(
        e, "remove a hostpci line ('qm set %lu --delete hostpciN'); nothing was changed", ed->vmid
    );
    return -ENOSPC;
}

/* Classic mdev GPUs through the mapping: the type's id, the index (--index, the attached
 * one, else the first free slot) and this node's mdev parents in placement order. */
static int mdevmap_form(
    struct edit *ed, const struct attach_request *req, const struct vm_settings *old,
    struct map_form *m, struct pvh_err *e
) {
    _cleanup_(inventory_freep) struct host h = {0};
    int r = req->index >= 0 || (old && old->attached) ? 0 : first_free_hostpci(ed, &m->index, e);
    if (r < 0 || (r = inventory_load_all(ed->env->fs, &h, e)) < 0) {
        return r;
    }
    m->classic = true;
    r = mdevmap_lines(
        ed->env->fs, &h, &ed->cfg, ed->node, req->type, req->gpus, req->ngpus, NO_INDEX, m->mdev,
        sizeof(m->mdev), &m->lines, &m->n, e
    );
    if (r == -ENODEV) {
        err_set(e, r, "no GPU on node %s offers '%s' now", ed->node, req->type);
        err_hint(e, "'pve-vgpu-hook types' shows what each GPU can take; nothing was changed");
    }
    return r;
}

/* The GPUs of node the VM may use there: the --gpu NODE:PCI naming it, else the list the VM's
 * record keeps for it (none: every GPU). -ENOMEM. */
static int remote_only(
    const struct attach_request *req, const struct vm_settings *old, const char *node,
    struct place_candidates *only
) {
    only->n = 0;
    for (size_t g = 0; g < req->ngpus; g++) {
        if (!strcmp(req->gpu_nodes[g], node)) {
            char(*id)[PCI_ID_LEN] = ninv_push(&only->ids, &only->n, sizeof(*id), ATTACH_GPUS_MAX);
            if (!id) {
                return -ENOMEM;
            }
            memcpy(*id, req->gpus[g], sizeof(*id));
        }
    }
    return only->n || !old ? 0 : plan_managed_candidates(old, node, only);
}

/* Another node's VFs of NVIDIA's vendor interface for type, chosen over its published GPUs as
 * vfmap_attach_lines chooses this node's; *type_id "nvidia-<id>". -ENODEV / -ENOENT (e not
 * filled) as mdevmap_remote_lines. */
static int remote_vf_lines(
    const struct edit *ed, const struct node_inv *inv, const char *type,
    const struct place_candidates *only, char *type_id, size_t type_id_size, char **lines,
    size_t *n, struct pvh_err *e
) {
    struct nvidia_gpu *nv = NULL;
    size_t nnv = 0;
    if (cluster_nvidia_gpus(inv, &nv, &nnv) < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    unsigned id = vendor_iface_type_id(nv, nnv, type, NULL);
    int r = id ? mdevmap_remote_vf_lines(
                     inv, nv, nnv, id, only->ids, only->n, ed->cfg.placement, lines, n, e
                 )
               : -ENODEV;
    if (r == 0 && str_fmt(type_id, type_id_size, "nvidia-%u", id) < 0) {
        r = err_set(e, -ENAMETOOLONG, "out of room for nvidia-%u", id);
    }
    inventory_nvidia_gpus_free(nv, nnv);
    return r;
}

/* One other node's lines into m; *older names the nodes whose inventory has no ids. */
static int remote_node_form(
    const struct edit *ed, const struct attach_request *req, const struct vm_settings *old,
    const struct cluster_node *n, struct map_form *m, char *older, size_t older_size,
    struct pvh_warnings *notes, struct pvh_err *e
) {
    _cleanup_(place_candidates_free) struct place_candidates only = {0};
    _cleanup_free_ char *lines = NULL;
    char type_id[VGPU_TYPE_MAX];
    size_t cnt;
    int r = remote_only(req, old, n->name, &only) < 0 ? err_set(e, -ENOMEM, "out of memory") : 0;
    if (r == 0 && ed->vendor_elsewhere) {
        r = remote_vf_lines(
            ed, &n->inv, req->type, &only, type_id, sizeof(type_id), &lines, &cnt, e
        );
    } else if (r == 0) {
        r = mdevmap_remote_lines(
            &n->inv, &ed->cfg, req->type, only.ids, only.n, type_id, sizeof(type_id), &lines, &cnt,
            e
        );
    }
    if (r == -ENOENT) {
        str_append(older, older_size, "%s%s", older[0] ? ", " : "", n->name);
    }
    if (r < 0) {
        return r == -ENOENT || r == -ENODEV ? 0 : r;
    }
    if (m->nremote && strcmp(type_id, m->mdev) != 0) { /* one mdev= for every node */
        warn_add(
            notes, "node %s calls %s %s, not %s: the mapping does not list it", n->name, req->type,
            type_id, m->mdev
        );
        return 0;
    }
    struct map_remote *o =
        ninv_push(&m->remote, &m->nremote, sizeof(*o), NODEINV_MAX_GPUS * NODEINV_MAX_ITEMS);
    if (!o) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    snprintf(o->node, sizeof(o->node), "%s", n->name);
    snprintf(m->mdev, sizeof(m->mdev), "%s", type_id);
    o->lines = TAKE_PTR(lines);
    o->n = cnt;
    return 0;
}

/* NVIDIA's vendor interface has no args form: a type only nodes that published no ids offer
 * is refused, changing nothing. */
static int remote_vf_refuse(
    const struct edit *ed, const struct attach_request *req, const char *older, struct pvh_err *e
) {
    bool several = strchr(older, ',') != NULL;
    if (!older[0]) {
        err_set(
            e, -ENODEV,
            "cannot attach %s to VM %lu: no GPU on node %s offers it, and no GPU the VM may use "
            "on another node offers it as published",
            req->type, req->vmid, ed->node
        );
        err_hint(
            e, "'pve-vgpu-hook status --cluster' shows what each node's GPUs offer; name them "
               "with --gpu NODE:PCI; nothing was changed"
        );
        return -ENODEV;
    }
    err_set(
        e, -ENODEV,
        "cannot attach %s to VM %lu: no GPU on node %s offers it, and %s, which offer%s it on "
        "NVIDIA's vendor interface, published no PCI ids of %s VFs (an older pve-vgpu-hook "
        "there); the VM's resource mapping needs them",
        req->type, req->vmid, ed->node, older, several ? "" : "s", several ? "their" : "its"
    );
    err_reason(e, "no-function-ids");
    err_hint(
        e,
        "upgrade pve-vgpu-hook on %s and let it publish ('pve-vgpu-hook publish' there, or wait "
        "for its timer), then attach again; or attach on %s; nothing was changed",
        older, several ? "one of them" : "that node"
    );
    return -ENODEV;
}

/* A type only other nodes offer through the mapping: their lines, from the ids their
 * inventories publish (this node has none). When none of them published those ids: mdev types
 * get the args form (m->lines NULL, m->args_why), the vendor interface's are refused. */
static int remote_map_form(
    struct edit *ed, const struct attach_request *req, const struct vm_settings *old,
    struct map_form *m, struct pvh_warnings *notes, struct pvh_err *e
) {
    const struct cluster_view *v = edit_cluster(ed, NULL); /* read: it told type_elsewhere */
    char older[4096] = ""; /* as long as type_elsewhere's list of the nodes */
    int r = 0;
    for (size_t i = 0; r == 0 && v && i < v->n; i++) {
        const struct cluster_node *n = &v->nodes[i];
        if (n->has_inv && strcmp(n->name, ed->node) != 0) {
            r = remote_node_form(ed, req, old, n, m, older, sizeof(older), notes, e);
        }
    }
    bool several = strchr(older, ',') != NULL;
    if (r == 0 && m->nremote == 0 && ed->vendor_elsewhere) {
        return remote_vf_refuse(ed, req, older, e);
    }
    if (r == 0 && m->nremote == 0 && older[0]) {
        str_msg(
            m->args_why, sizeof(m->args_why),
            "%s published no PCI ids of %s GPUs (an "
            "older pve-vgpu-hook there), and a mapping needs them; attach again once %s "
            "published with this version",
            older, several ? "their" : "its", several ? "they have" : "it has"
        );
    } else if (r == 0 && m->nremote == 0) {
        str_msg(
            m->args_why, sizeof(m->args_why),
            "no GPU the VM may use on another node offers it as published"
        );
    }
    if (r == 0 && m->nremote && req->index < 0 && !(old && old->attached)) {
        r = first_free_hostpci(ed, &m->index, e);
    }
    if (r < 0 || m->nremote == 0) {
        return r;
    }
    if (older[0]) {
        warn_add(
            notes,
            "%s published no PCI ids of %s GPUs (an older pve-vgpu-hook): %s own publish "
            "adds %s map lines",
            older, several ? "their" : "its", several ? "their" : "its", several ? "their" : "its"
        );
    }
    m->classic = !ed->vendor_elsewhere;
    m->lines = strdup("");
    return m->lines ? 0 : err_set(e, -ENOMEM, "out of memory");
}

/* Which form attach gives the VM: a resource mapping (m->lines set) on NVIDIA's vendor
 * interface (vtype: the type's id there) and, where qemu-server can, on classic mdev GPUs
 * (this node's, or for a type only other nodes offer theirs: all holds the whole request, --gpu
 * of every node); else the args form. */
static int attach_form(
    struct edit *ed, const struct attach_request *req, const struct attach_request *all,
    const struct vm_settings *old, unsigned vtype, struct map_form *m, struct pvh_warnings *notes,
    struct pvh_err *e
) {
    if (vtype) {
        snprintf(m->mdev, sizeof(m->mdev), "nvidia-%u", vtype);
        return vfmap_attach_lines(ed, req, vtype, &m->lines, &m->n, e);
    }
    if (ed->vendor_elsewhere) { /* no args form on NVIDIA's vendor interface */
        return remote_map_form(ed, all, old, m, notes, e);
    }
    if (!mdevmap_supported(ed->env->fs)) {
        return 0;
    }
    return ed->type_elsewhere ? remote_map_form(ed, all, old, m, notes, e)
                              : mdevmap_form(ed, req, old, m, e);
}

/* attach without --type: the VM's attached type again (which also converts the args form to
 * the mapping form where qemu-server can); *req then points to again. */
static int attach_again(
    const struct edit *ed, const struct vm_settings *old, const struct attach_request **req,
    struct attach_request *again, struct pvh_err *e
) {
    if (!old || !old->attached) {
        err_set(e, -EINVAL, "VM %lu is not attached, so attach needs --type", ed->vmid);
        err_hint(
            e,
            "e.g. pve-vgpu-hook attach %lu --type P40-2Q ('pve-vgpu-hook types' lists the "
            "types); nothing was changed",
            ed->vmid
        );
        return -EINVAL;
    }
    *again = **req;
    again->type = old->type;
    *req = again;
    return 0;
}

/* What attach did, as the last note. */
static void attach_message(
    const struct edit *ed, const struct attach_request *req, bool remote, const struct map_form *m,
    struct edit_result *res
) {
    /* with a GPU of another node named, every GPU is named NODE:PCI */
    char where[ATTACH_GPUS_MAX * (NODE_NAME_MAX + PCI_ID_LEN + 3)] = "", uuid[MDEV_UUID_LEN + 1];
    for (size_t g = 0; g < req->ngpus; g++) {
        str_append(
            where, sizeof(where), "%s%s%s%s", g ? ", " : "", remote ? gpu_node(ed, req, g) : "",
            remote ? ":" : "", req->gpus[g]
        );
    }
    char node_note[4096 + NODE_NAME_MAX + 64] = "";
    if (!remote && m->nremote) { /* a type only other nodes offer: the GPUs they published */
        str_append(node_note, sizeof(node_note), " (GPUs of ");
        for (size_t i = 0; i < m->nremote; i++) {
            str_append(node_note, sizeof(node_note), "%s%s", i ? ", " : "", m->remote[i].node);
        }
        str_append(node_note, sizeof(node_note), " as published; node %s has none)", ed->node);
    } else if (!remote) {
        snprintf(
            node_note, sizeof(node_note), " (node %s%s)", ed->node,
            m->lines ? "; other nodes at their first start" : ""
        );
    }
    const char *verb = res->dry_run ? "would attach" : "attached";
    const char *on = req->ngpus ? "one of " : "any GPU offering it";
    mdev_uuid_for(req->vmid, m->index, uuid);
    if (m->lines && !m->classic) {
        snprintf(
            res->message, sizeof(res->message),
            "VM %lu: %s %s (%s) through resource mapping " VFMAP_ID_FMT
            " in hostpci%u; each start lists the VFs of %s%s%s in placement order, and Proxmox "
            "takes the first that can",
            req->vmid, verb, req->type, m->mdev, req->vmid, m->index,
            req->ngpus ? "" : "every GPU offering it", where, node_note
        );
    } else if (m->lines) {
        snprintf(
            res->message, sizeof(res->message),
            "VM %lu: %s %s (%s) through resource mapping " VFMAP_ID_FMT
            " in hostpci%u; each start creates mdev %s on %s%s%s, lists that GPU first in the "
            "mapping, and Proxmox uses it",
            req->vmid, verb, req->type, m->mdev, req->vmid, m->index, uuid, on, where, node_note
        );
    } else {
        snprintf(
            res->message, sizeof(res->message),
            "VM %lu: %s %s as mdev %s; each start places it on %s%s%s%s%s", req->vmid, verb,
            req->type, uuid, on, where, node_note,
            m->args_why[0] ? "; the args form, not a resource mapping: " : "", m->args_why
        );
    }
}

int managed_attach(
    const struct hook_env *env, const struct attach_request *req, struct edit_result *res,
    struct pvh_err *e
) {
    const char *hookscript = req->hookscript ? req->hookscript : DEFAULT_HOOKSCRIPT;
    struct pvh_warnings *notes = &res->details, *w = &res->warnings;
    res->vmid = req->vmid;
    int r = validate_request(req, hookscript, e);
    if (r < 0) {
        return r;
    }
    struct edit ed;
    if ((r = edit_open(&ed, env, req->vmid, res, e)) < 0) {
        edit_free(&ed);
        return r;
    }
    const struct vm_settings *old = ed.stale ? NULL : config_managed_vm(&ed.cfg, req->vmid);
    struct attach_request again;
    if (!req->type && (r = attach_again(&ed, old, &req, &again, e)) < 0) {
        edit_free(&ed);
        return r;
    }
    unsigned index = req->index >= 0 ? (unsigned)req->index : old ? old->index : 0;
    struct managed_args a;
    managed_args_for(&ed, req->vmid, index, &a);
    struct attach_request here; /* this node's GPUs: what its checks and mapping see */
    request_here(req, ed.node, &here);
    bool conf_changed = false;
    json_object *record = NULL;
    unsigned vtype = 0;
    _cleanup_(map_form_free) struct map_form m = {.index = index};
    if ((r = attach_allowed(&ed, req, old, index, hookscript, e)) < 0 ||
        (r = edit_drop_stale(&ed, notes, e)) < 0 || (r = gpus_elsewhere(&ed, req, e)) < 0 ||
        (r = check_type_here(env, &ed, &here, &vtype, w, e)) < 0 ||
        (r = attach_form(&ed, &here, req, old, vtype, &m, notes, e)) < 0 ||
        (r = attach_live_allowed(&ed, req, &m, e)) < 0 ||
        (r = m.lines ? attach_vfmap(
                           &ed, &here, old, &m, hookscript, &conf_changed, &record, notes, w, e
                       )
                     : attach_edit_conf(
                           &ed, &here, old, &a, hookscript, &conf_changed, &record, notes, e
                       )) < 0) {
        json_object_put(record);
        edit_free(&ed);
        return r;
    }
    index = m.index;
    json_object *entry = json_object_new_object();
    json_object_object_add(entry, "type", json_object_new_string(req->type));
    json_object *gpus = gpus_json(&ed, old, req);
    if (gpus) {
        json_object_object_add(entry, "gpus", gpus);
    }
    json_object_object_add(entry, "index", json_object_new_int((int)index));
    json_object_object_add(entry, "attached", record);
    if ((r = config_doc_set_managed(ed.doc, req->vmid, entry)) < 0) {
        edit_free(&ed);
        return err_set(e, r, "out of memory");
    }
    if ((r = edit_set_identity(&ed, e)) < 0 || (r = edit_commit(&ed, conf_changed, true, e)) < 0) {
        edit_free(&ed);
        return r;
    }
    warn_hookscript_missing(env, hookscript, w);
    res->result = "attached";
    attach_message(&ed, req, here.ngpus < req->ngpus, &m, res);
    edit_say_pending(&ed);
    edit_free(&ed);
    return 0;
}

/* Detach from a resource mapping: hostpci<index> out while it still refers to it, the mapping
 * out of pci.cfg (with the newlines attach put before it; the file too when attach created it
 * and nothing else is left). */
static int detach_vfmap(
    struct edit *ed, const struct vm_settings *vs, bool *changed, struct pvh_warnings *notes,
    struct pvh_warnings *w, struct pvh_err *e
) {
    char key[16];
    snprintf(key, sizeof(key), "hostpci%u", vs->index);
    const char *cur = edit_get(ed, key);
    _cleanup_free_ char *cur_mapping = hostpci_mapping(cur);
    bool refers = cur_mapping && !strcmp(cur_mapping, vs->mapping);
    if (refers) {
        int r = edit_put(ed, key, NULL);
        if (r < 0) {
            return err_set(e, r, "cannot edit the VM config: %s", strerror(-r));
        }
        *changed = true;
        warn_add(notes, "%s: (removed)", key);
    } else if (cur) {
        warn_add(
            w, "%s of VM %lu no longer uses mapping %s; left as it is", key, ed->vmid, vs->mapping
        );
    }
    int r = edit_open_mapping(ed, w, e);
    if (r < 0) {
        return r;
    }
    r = vfmap_remove(
        ed->map_text ? ed->map_text : "", vs->mapping, vs->mapping_sep_nl, &ed->map_new
    );
    if (r == -ENOENT) {
        warn_add(w, "%s has no mapping %s any more", PVE_PCI_MAPPING_CFG, vs->mapping);
        return 0;
    }
    if (r < 0) {
        return err_set(e, r, "out of memory");
    }
    ed->map_change = true;
    if (!ed->map_new[0] && vs->mapping_file_created) {
        free(TAKE_PTR(ed->map_new)); /* attach created the file: nothing else was in it */
    }
    warn_add(notes, "%s: mapping %s (removed)", PVE_PCI_MAPPING_CFG, vs->mapping);
    return 0;
}

int managed_mapping_rewrite(
    const struct hook_env *env, int timeout_ms,
    int (*edit)(void *ctx, const char *text, char **out, struct pvh_err *e), void *ctx,
    const char *then, struct pvh_warnings *w, struct pvh_err *e
) {
    bool locked;
    int r = managed_cluster_lock(
        env, PCI_MAPPING_LOCK_DIR, PVE_PCI_MAPPING_CFG, timeout_ms, &locked, w, e
    );
    if (r < 0) {
        return r;
    }
    _cleanup_free_ char *text = NULL, *out = NULL;
    if ((r = vfmap_read(env->fs, &text, e)) == 0 && (r = edit(ctx, text, &out, e)) == 0 && out &&
        strcmp(text, out) != 0) {
        r = hostfs_replace_file(env->fs, PVE_PCI_MAPPING_CFG, out, strlen(out), 0640);
        if (r < 0) {
            err_set(e, r, "cannot write %s: %s", PVE_PCI_MAPPING_CFG, strerror(-r));
            write_error_hint(e, r, then);
        }
        r = r < 0 ? r : 1;
    }
    if (locked) {
        hostfs_cluster_unlock(env->fs, PCI_MAPPING_LOCK_DIR);
    }
    return r;
}

struct vfmap_lines_edit {
    unsigned long vmid;
    const char *node, *id, *lines;
};

static int vfmap_lines_put(void *ctx, const char *text, char **out, struct pvh_err *e) {
    const struct vfmap_lines_edit *le = ctx;
    unsigned sep;
    int r = vfmap_put(text, le->id, le->vmid, le->node, le->lines, out, &sep);
    return r < 0 ? err_set(e, r, "out of memory") : 0;
}

int managed_vfmap_write(
    const struct hook_env *env, unsigned long vmid, const char *node, const char *id,
    const char *lines, int timeout_ms, struct pvh_warnings *w, struct pvh_err *e
) {
    struct vfmap_lines_edit le = {.vmid = vmid, .node = node, .id = id, .lines = lines};
    int r = managed_mapping_rewrite(
        env, timeout_ms, vfmap_lines_put, &le, "the mapping was not changed", w, e
    );
    return r < 0 ? r : 0;
}

/* Edit the VM config for detach: our args pair and -uuid out (args as before attach when
 * nothing else changed since), our hookscript out. */
static int detach_edit_conf(
    struct edit *ed, const struct vm_settings *vs, bool *changed, struct pvh_warnings *notes,
    struct pvh_warnings *w, struct pvh_err *e
) {
    struct managed_args a;
    managed_args_for(ed, ed->vmid, vs->index, &a);
    _cleanup_free_ char *cur = edit_get(ed, "args") ? strdup(edit_get(ed, "args")) : NULL;
    int r;
    if (cur) {
        _cleanup_free_ char *a1 = NULL, *a2 = NULL, *orig = NULL;
        bool f1, f2;
        /* the -uuid attach replaced goes back where it was */
        bool put_back =
            vs->args_before && args_uuid(vs->args_before, &orig) == 0 && strcmp(orig, a.uval) != 0;
        if ((r = args_remove_pair(cur, "-device", a.dev, &a1, &f1)) < 0) {
            return err_set(e, r, "out of memory");
        }
        if (put_back && (f2 = args_has_pair(a1, "-uuid", a.uval))) {
            r = args_with_uuid(a1, orig, &a2, &f2);
        } else {
            r = args_remove_pair(a1, "-uuid", a.uval, &a2, &f2);
        }
        if (r < 0) {
            return err_set(e, r, "out of memory");
        }
        if (!f2 && strcmp(a.uval, a.uuid)) { /* uuid_source changed since attach */
            free(TAKE_PTR(a2));
            if ((r = args_remove_pair(a1, "-uuid", a.uuid, &a2, &f2)) < 0) {
                return err_set(e, r, "out of memory");
            }
        }
        /* Exactly what attach found, when nothing else changed since. */
        const char *restore =
            vs->args_before && !strcmp(a2, vs->args_before) ? vs->args_before : a2;
        if (f1 != f2) {
            warn_add(
                w, "args of VM %lu no longer held all that attach added; removed what was there",
                ed->vmid
            );
        }
        if (f1 || f2) {
            r = edit_put(ed, "args", *restore ? restore : NULL);
            if (r < 0) {
                return err_set(e, r, "cannot edit the VM config");
            }
            *changed = true;
            warn_add(notes, "args: %s", *restore ? restore : "(removed)");
        }
    }
    const char *cur_hook = pveconf_get(&ed->conf, "hookscript");
    if (vs->hookscript_added && cur_hook && !strcmp(cur_hook, vs->hookscript_added)) {
        pveconf_delete(&ed->conf, "hookscript");
        *changed = true;
        warn_add(notes, "hookscript: (removed)");
    }
    return 0;
}

int managed_detach(
    const struct hook_env *env, unsigned long vmid, struct edit_result *res, struct pvh_err *e
) {
    struct pvh_warnings *notes = &res->details, *w = &res->warnings;
    struct edit ed;
    int r = edit_open(&ed, env, vmid, res, e);
    if (r < 0) {
        edit_free(&ed);
        return r;
    }
    const struct vm_settings *vs = config_managed_vm(&ed.cfg, vmid);
    if (!vs && !ed.stale) {
        err_set(e, -ENOENT, "VM %lu is not attached (%s has no vms.%lu)", vmid, ed.cfg_path, vmid);
        err_hint(e, "'pve-vgpu-hook status' shows which VMs have vGPUs");
        edit_free(&ed);
        return -ENOENT;
    }
    if (ed.stale) { /* nothing of it is this VM's: only the record goes */
        vs = NULL;
        warn_add(
            notes, "%s: removing only the record; the VM config was not touched", ed.stale_why
        );
    }
    bool conf_changed = false;
    if (vs && vs->attached && vs->mapping &&
        (r = detach_vfmap(&ed, vs, &conf_changed, notes, w, e)) < 0) {
        edit_free(&ed);
        return r;
    }
    if (vs && vs->attached && (r = detach_edit_conf(&ed, vs, &conf_changed, notes, w, e)) < 0) {
        edit_free(&ed);
        return r;
    }
    if ((r = ed.stale ? config_doc_set_vm(ed.doc, vmid, NULL)
                      : config_doc_set_managed(ed.doc, vmid, NULL)) < 0) {
        edit_free(&ed);
        return err_set(e, r, "out of memory");
    }
    if ((r = edit_commit(&ed, conf_changed, false, e)) < 0) {
        edit_free(&ed);
        return r;
    }
    res->result = "detached";
    snprintf(
        res->message, sizeof(res->message), "VM %lu: %s", vmid,
        res->dry_run ? "would detach" : "detached"
    );
    edit_say_pending(&ed);
    if (ed.running) {
        warn_add(
            w,
            "VM %lu is running with its vGPU; it keeps it until it stops (post-stop "
            "removes it)",
            vmid
        );
    }
    edit_free(&ed);
    return 0;
}

/* What each change means for the VM, as warnings: it is running, a second vGPU, a hostpci
 * index that old vgpu_unlock-rs misses, NVIDIA's vendor interface for params. */
static void tune_warnings(
    const struct edit *ed, json_object *params, json_object *unlock, struct pvh_warnings *w
) {
    struct hostpci hps[HOSTPCI_MAX];
    size_t nhp = 0;
    (void)hostpci_mdev_entries(&ed->conf, hps, &nhp, NULL, NULL);
    const struct vm_settings *m = config_managed_vm_for(&ed->cfg, ed->vmid, &ed->conf);
    bool has_unlock = unlock && json_object_object_length(unlock) > 0;
    bool has_params = params && json_object_object_length(params) > 0;
    if (nhp == 0 && !m) {
        warn_add(
            w,
            "VM %lu has no vGPU yet (no hostpciN with mdev=, not attached): the settings "
            "apply once it has one",
            ed->vmid
        );
    }
    if (has_unlock && nhp > 1) {
        warn_add(
            w,
            "VM %lu has %zu vGPUs; vgpu_unlock-rs keys [vm.%lu] by the last vGPU it saw and "
            "can apply it to the wrong one",
            ed->vmid, nhp, ed->vmid
        );
    }
    unsigned index = m ? m->index : nhp ? hps[0].index : 0;
    if (has_unlock && index >= 1) {
        warn_add(
            w,
            "the vGPU of VM %lu has hostpci index %u: vgpu_unlock-rs before 2.4.1 applies "
            "[vm.%lu] to index 0 only",
            ed->vmid, index, ed->vmid
        );
    }
    bool vendor = m && m->mapping;
    for (size_t i = 0; i < nhp && !vendor; i++) {
        char path[PATH_MAX];
        vendor = hps[i].nhost &&
                 str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/nvidia", hps[i].host[0]) == 0 &&
                 hostfs_is_dir(ed->env->fs, path) == 1;
    }
    if (has_params && vendor) {
        warn_add(
            w,
            "VM %lu's vGPU is on NVIDIA's vendor interface: Proxmox creates it after "
            "pre-start, so vgpu_params cannot be written before QEMU opens it; the params "
            "are not applied there",
            ed->vmid
        );
    }
    json_object_object_foreach(params, k, v) {
        (void)v;
        if (!tune_param_known(k)) {
            warn_add(
                w,
                "%s is not one of NVIDIA's documented vgpu_params (frame_rate_limiter, "
                "disable_vnc, enable_uvm, enable_debugging, enable_profiling); the driver "
                "decides at start",
                k
            );
        }
    }
    if (vm_is_running(ed->env->fs, ed->vmid)) {
        warn_add(w, "VM %lu is running: the settings apply at its next start", ed->vmid);
    }
}

/* What the VM's tuning is (would be) now, as tune says it. */
static void
tune_note(unsigned long vmid, json_object *params, json_object *unlock, struct edit_result *res) {
    res->result = "tuned";
    tuning_free(&res->tuning);
    if (config_tuning_parse(params, unlock, &res->tuning) < 0) {
        return;
    }
    res->has_tuning = true;
    const struct vm_tuning t = res->tuning;
    _cleanup_free_ char *p = tune_params_string(&t), *u = tune_unlock_string(&t);
    if (!p || !u) {
        return;
    }
    const char *would = res->dry_run ? " would be" : "";
    if (tuning_empty(&t)) {
        snprintf(res->message, sizeof(res->message), "VM %lu:%s no tuning left", vmid, would);
        return;
    }
    snprintf(
        res->message, sizeof(res->message),
        "VM %lu:%s %s%s%s%s%s; applied at each start of the VM, on the node it starts on", vmid,
        would, *p ? "vgpu_params " : "", p, *p && *u ? "; " : "", *u ? "vgpu_unlock " : "", u
    );
}

/* The i-th setting of the request: "K=V" split (key malloc'ed), checked as tune checks it.
 * *unlock: an --unlock one; *number: stored as a number. */
static int tune_setting(
    const struct tune_request *req, size_t i, unsigned major, char **key, const char **value,
    bool *unlock, bool *number, struct pvh_err *e
) {
    *unlock = i >= req->nparams;
    const char *kv = *unlock ? req->unlock[i - req->nparams] : req->params[i];
    const char *eq = strchr(kv, '=');
    bool is_string = false;
    *key = eq ? strndup(kv, (size_t)(eq - kv)) : NULL;
    if (!eq || !*key) {
        err_set(e, -EINVAL, "'%s' is not KEY=VALUE", kv);
        err_hint(
            e, "e.g. --%s %s; nothing was changed", *unlock ? "unlock" : "param",
            *unlock ? "frl_enabled=0" : "frame_rate_limiter=0"
        );
        return -EINVAL;
    }
    *value = eq + 1;
    int r = *unlock ? unlock_value_check(*key, *value, major, &is_string, e)
                    : tune_param_check(*key, *value, e);
    if (r == 0 && !*unlock) {
        r = tune_param_value_check(*key, *value, e);
    }
    *number = *unlock && !is_string;
    return r;
}

/* The VM's settings after the request: clears first (all, or the named keys, which must
 * exist), then the new values. */
static int tune_apply(
    const struct tune_request *req, unsigned major, json_object *params, json_object *unlock,
    struct pvh_warnings *notes, struct pvh_err *e
) {
    for (size_t i = 0; i < req->nclear; i++) {
        const char *k = req->clear_keys[i];
        if (!json_object_object_get_ex(params, k, NULL) &&
            !json_object_object_get_ex(unlock, k, NULL)) {
            err_set(e, -ENOENT, "VM %lu has no setting %s", req->vmid, k);
            err_hint(
                e, "'pve-vgpu-hook tune %lu' shows its settings; nothing was changed", req->vmid
            );
            return -ENOENT;
        }
        json_object_object_del(params, k);
        json_object_object_del(unlock, k);
        warn_add(notes, "%s: (cleared)", k);
    }
    if (req->clear && req->nclear == 0) {
        json_object_object_foreach(params, pk, pv) {
            (void)pv;
            json_object_object_del(params, pk);
        }
        json_object_object_foreach(unlock, uk, uv) {
            (void)uv;
            json_object_object_del(unlock, uk);
        }
        warn_add(notes, "VM %lu: every setting cleared", req->vmid);
    }
    for (size_t i = 0; i < req->nparams + req->nunlock; i++) {
        _cleanup_free_ char *key = NULL;
        const char *value;
        bool is_unlock, number;
        int r = tune_setting(req, i, major, &key, &value, &is_unlock, &number, e);
        if (r < 0) {
            return r;
        }
        if (config_tuning_set(is_unlock ? unlock : params, key, value, number) < 0) {
            return err_set(e, -ENOMEM, "out of memory");
        }
    }
    return 0;
}

/* --unlock on a node without vgpu_unlock-rs: the next start here would be refused. */
static int
tune_unlock_here(const struct hook_env *env, const struct tune_request *req, struct pvh_err *e) {
    char node[NODE_NAME_MAX];
    node_name(env->fs, node, sizeof(node));
    _cleanup_free_ char *toml = NULL;
    bool installed;
    return plan_unlock_setup(env->fs, req->vmid, node, "", true, &installed, &toml, e);
}

int managed_tune(
    const struct hook_env *env, const struct tune_request *req, struct edit_result *res,
    struct pvh_err *e
) {
    struct pvh_warnings *notes = &res->details, *w = &res->warnings;
    res->vmid = req->vmid;
    unsigned major = inventory_nvidia_driver_major(env->fs);
    for (size_t i = 0; i < req->nparams + req->nunlock; i++) { /* all, before any lock */
        _cleanup_free_ char *key = NULL;
        const char *value;
        bool unlock, number;
        int r = tune_setting(req, i, major, &key, &value, &unlock, &number, e);
        if (r < 0) {
            return r;
        }
    }
    int r = managed_vm_require(env, req->vmid, e);
    if (r < 0 || (req->nunlock && (r = tune_unlock_here(env, req, e)) < 0)) {
        return r;
    }
    struct edit ed;
    r = edit_open(&ed, env, req->vmid, res, e);
    if (r < 0) {
        edit_free(&ed);
        return r;
    }
    const struct vm_settings *vs = ed.stale ? NULL : config_vm(&ed.cfg, req->vmid);
    static const struct vm_tuning none = {0};
    const struct vm_tuning *old = vs ? &vs->tuning : &none;
    json_object *params = config_tuning_json(old->params, old->nparams, false);
    json_object *unlock = config_tuning_json(old->unlock, old->nunlock, true);
    r = !params || !unlock ? err_set(e, -ENOMEM, "out of memory")
                           : tune_apply(req, major, params, unlock, notes, e);
    r = r < 0 ? r : edit_drop_stale(&ed, notes, e);
    if (r == 0) {
        tune_warnings(&ed, params, unlock, w);
        tune_note(req->vmid, params, unlock, res);
        json_object *pkeep = json_object_object_length(params) ? json_object_get(params) : NULL;
        json_object *ukeep = json_object_object_length(unlock) ? json_object_get(unlock) : NULL;
        r = config_doc_set_tuning(ed.doc, req->vmid, pkeep, ukeep);
        r = r < 0 ? err_set(e, r, "out of memory") : edit_set_identity(&ed, e);
        r = r < 0 ? r : edit_commit(&ed, false, true, e);
    }
    json_object_put(params);
    json_object_put(unlock);
    edit_free(&ed);
    return r;
}

/* cleanup's stale mappings (after the records removed), out of ed's copy of pci.cfg: read
 * first without the lock (taking it is a write pmxcfs replicates), then again under it. */
static int remove_stale_mappings(
    struct edit *ed, bool dry_run, const struct vm_warnings *removed, struct vm_warnings *mappings,
    struct pvh_err *e
) {
    _cleanup_free_ char *peek = NULL;
    int r = vfmap_read(ed->env->fs, &peek, e);
    if (r < 0 || (r = mapsync_stale(ed->env->fs, &ed->cfg, removed, peek, mappings)) < 0 ||
        mappings->w.n == 0) {
        return r == -ENOMEM ? err_set(e, r, "out of memory") : r;
    }
    ed->dry_run = dry_run;
    vm_warnings_free(mappings);
    if ((r = edit_open_mapping(ed, ed->w, e)) < 0 ||
        (r = mapsync_stale(
             ed->env->fs, &ed->cfg, removed, ed->map_text ? ed->map_text : "", mappings
         )) < 0) {
        return r == -ENOMEM ? err_set(e, r, "out of memory") : r;
    }
    bool created = false;
    _cleanup_free_ char *cur = strdup(ed->map_text ? ed->map_text : "");
    for (size_t i = 0; cur && i < mappings->w.n; i++) {
        char id[VFMAP_ID_MAX];
        snprintf(id, sizeof(id), VFMAP_ID_FMT, mappings->vmids[i]);
        const struct vm_settings *vs = config_managed_vm(&ed->cfg, mappings->vmids[i]);
        bool rec = vs && vs->mapping && !strcmp(vs->mapping, id);
        char *next = NULL;
        created |= rec && vs->mapping_file_created;
        (void)vfmap_remove(cur, id, rec ? vs->mapping_sep_nl : 0, &next);
        free(cur);
        cur = next;
    }
    if (!cur) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    ed->map_change = mappings->w.n > 0;
    ed->map_new = cur[0] || !created ? TAKE_PTR(cur) : NULL; /* attach made the file: it goes */
    return 0;
}

int managed_remove_stale(
    const struct hook_env *env, bool dry_run, struct vm_warnings *removed,
    struct vm_warnings *mappings, struct pvh_warnings *w, struct pvh_err *e
) {
    memset(removed, 0, sizeof(*removed));
    memset(mappings, 0, sizeof(*mappings));
    struct edit ed;
    struct pvh_warnings again = {0}; /* the caller has read the settings and said their warnings */
    int timeout_ms;
    int r = edit_init(&ed, env, 0, &timeout_ms, w, e);
    if (r == 0 && (r = edit_load_settings(&ed, timeout_ms, dry_run, &again, e)) == 0 &&
        (r = records_find_stale(env->fs, &ed.cfg, removed)) < 0) {
        err_set(e, r, "out of memory");
    }
    for (size_t i = 0; r == 0 && i < removed->w.n; i++) {
        r = config_doc_set_vm(ed.doc, removed->vmids[i], NULL) < 0
                ? err_set(e, -ENOMEM, "out of memory")
                : 0;
    }
    if (r == 0) {
        r = remove_stale_mappings(&ed, dry_run, removed, mappings, e);
    }
    ed.keep_settings = removed->w.n == 0;
    if (r == 0 && !dry_run && (removed->w.n || ed.map_change)) {
        r = edit_commit(&ed, false, true, e);
    }
    warn_free(&again);
    if (r < 0) {
        vm_warnings_free(removed);
        vm_warnings_free(mappings);
    }
    edit_free(&ed);
    return r;
}
