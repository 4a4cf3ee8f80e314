#include "managed.h"

#include "cleanup.h"
#include "inventory.h"
#include "mdev_uuid.h"
#include "pveconf.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything attach/detach read and may write back, with the originals for undoing. */
/* vgpu-hook.json is cluster-wide: its edits take pmxcfs' lock, like PVE's cfs_lock_file. */
#define CONFIG_LOCK_DIR "/etc/pve/priv/lock/file-vgpu-hook_json"
#define CONFIG_LOCK_TIMEOUT_MS 10000

struct edit {
    const struct hook_env *env;
    unsigned long vmid;
    char node[64];
    int vm_lock;
    bool cfg_locked;
    char conf_path[128];
    char *conf_text; /* original VM config */
    size_t conf_len;
    struct pveconf conf;
    const char *cfg_path;
    char *cfg_text; /* original JSON config; NULL when the file did not exist */
    size_t cfg_len;
    json_object *doc;
    struct pvh_config cfg;
};

static void edit_free(struct edit *ed) {
    if (ed->cfg_locked) {
        hostfs_cluster_unlock(ed->env->fs, CONFIG_LOCK_DIR);
    }
    hostfs_unlock(ed->vm_lock);
    free(ed->conf_text);
    pveconf_free(&ed->conf);
    free(ed->cfg_text);
    json_object_put(ed->doc);
    config_free(&ed->cfg);
}

static int write_error(struct pvh_err *e, int r, const char *path) {
    err_set(e, r, "cannot write %s: %s", path, strerror(-r));
    if (r == -EACCES || r == -EROFS || r == -EPERM) {
        err_hint(
            e, "/etc/pve is read-only without cluster quorum ('pvecm status'); restore "
               "quorum and run the command again; nothing was changed"
        );
    } else if (r == -EFBIG) {
        err_hint(e, "pmxcfs limits a file to 1 MiB; remove old entries; nothing was changed");
    } else {
        err_hint(e, "nothing was changed");
    }
    return r;
}

/* Lock the VM like `qm set` does, then read its config and ours. */
static int edit_open(
    struct edit *ed, const struct hook_env *env, unsigned long vmid, struct pvh_warnings *w,
    struct pvh_err *e
) {
    memset(ed, 0, sizeof(*ed));
    ed->env = env;
    ed->vmid = vmid;
    ed->vm_lock = -1;
    config_defaults(&ed->cfg);
    if (node_name(env->fs, ed->node, sizeof(ed->node)) < 0) {
        snprintf(ed->node, sizeof(ed->node), "localhost");
    }
    char lock[128];
    snprintf(lock, sizeof(lock), "/var/lock/qemu-server/lock-%lu.conf", vmid);
    ed->vm_lock = hostfs_lock(env->fs, lock, VM_LOCK_TIMEOUT_MS);
    if (ed->vm_lock == -ETIMEDOUT) {
        err_set(
            e, -ETIMEDOUT, "VM %lu is locked by another Proxmox task (%s held for %d s)", vmid,
            lock, VM_LOCK_TIMEOUT_MS / 1000
        );
        err_hint(e, "wait for the task to finish (see the task list) and run the command again");
        return -ETIMEDOUT;
    }
    if (ed->vm_lock < 0) {
        return err_set(e, ed->vm_lock, "cannot lock %s: %s", lock, strerror(-ed->vm_lock));
    }
    snprintf(ed->conf_path, sizeof(ed->conf_path), "/etc/pve/qemu-server/%lu.conf", vmid);
    int r =
        hostfs_read_alloc(env->fs, ed->conf_path, CONFIG_MAX_BYTES, &ed->conf_text, &ed->conf_len);
    if (r == -ENOENT) {
        char lxc[64];
        snprintf(lxc, sizeof(lxc), "/etc/pve/lxc/%lu.conf", vmid);
        if (hostfs_exists(env->fs, lxc) == 0) {
            return err_set(e, -EINVAL, "%lu is a container; vGPUs are for VMs", vmid);
        }
        err_set(e, r, "no VM %lu on this node (%s does not exist)", vmid, ed->conf_path);
        err_hint(
            e, "run the command on the node the VM belongs to ('qm list'; this node is %s)",
            ed->node
        );
        return r;
    }
    if (r < 0) {
        return err_set(e, r, "cannot read %s: %s", ed->conf_path, strerror(-r));
    }
    if ((r = pveconf_parse(ed->conf_text, ed->conf_len, &ed->conf)) < 0) {
        return err_set(e, r, "cannot parse %s", ed->conf_path);
    }
    ed->cfg_path = env->config_path ? env->config_path : CONFIG_DEFAULT_PATH;
    /* Another node may edit the settings at the same moment: take the cluster lock first. */
    r = hostfs_cluster_lock(env->fs, CONFIG_LOCK_DIR, CONFIG_LOCK_TIMEOUT_MS);
    if (r == -ETIMEDOUT) {
        err_set(
            e, r, "another node or command is editing %s (the cluster lock %s is held)",
            ed->cfg_path, CONFIG_LOCK_DIR
        );
        err_hint(
            e, "run the command again in a moment; a lock left by a crashed command "
               "expires after 120 s"
        );
        return r;
    }
    if (r == -ENOENT) {
        warn_add(
            w, "no %s: this is not a pmxcfs /etc/pve; editing without the cluster lock",
            "/etc/pve/priv/lock"
        );
    } else if (r < 0) {
        err_set(e, r, "cannot take the cluster lock %s: %s", CONFIG_LOCK_DIR, strerror(-r));
        err_hint(e, "without quorum /etc/pve is read-only ('pvecm status')");
        return r;
    } else {
        ed->cfg_locked = true;
    }
    r = hostfs_read_alloc(env->fs, ed->cfg_path, CONFIG_MAX_BYTES, &ed->cfg_text, &ed->cfg_len);
    if (r < 0 && r != -ENOENT) {
        return err_set(e, r, "cannot read %s: %s", ed->cfg_path, strerror(-r));
    }
    const char *text = ed->cfg_text ? ed->cfg_text : "{}";
    size_t len = ed->cfg_text ? ed->cfg_len : 2;
    config_free(&ed->cfg);
    /* Never write on top of a file we do not understand. */
    if ((r = config_parse(text, len, ed->cfg_path, &ed->cfg, w, e)) < 0 ||
        (r = config_doc_parse(text, len, ed->cfg_path, &ed->doc, e)) < 0) {
        return r;
    }
    return 0;
}

/* Write the JSON config, then the VM config; if the second fails, put the first back. */
static int edit_commit(struct edit *ed, bool conf_changed, struct pvh_err *e) {
    const struct hostfs *fs = ed->env->fs;
    size_t len;
    bool empty;
    _cleanup_free_ char *json = config_doc_serialize(ed->doc, &len, &empty);
    if (!json) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    if (len > CONFIG_MAX_BYTES) {
        return write_error(e, -EFBIG, ed->cfg_path);
    }
    /* An empty settings file means defaults, like no file: leave none behind. */
    int r = empty && !ed->cfg_text ? 0
            : empty                ? hostfs_unlink(fs, ed->cfg_path)
                                   : hostfs_replace_file(fs, ed->cfg_path, json, len, 0640);
    if (r < 0) {
        return write_error(e, r, ed->cfg_path);
    }
    if (!conf_changed) {
        return 0;
    }
    size_t clen;
    _cleanup_free_ char *conf = pveconf_serialize(&ed->conf, &clen);
    r = conf ? hostfs_replace_file(fs, ed->conf_path, conf, clen, 0640) : -ENOMEM;
    if (r < 0) {
        if (ed->cfg_text) {
            (void)hostfs_replace_file(fs, ed->cfg_path, ed->cfg_text, ed->cfg_len, 0640);
        } else {
            (void)hostfs_unlink(fs, ed->cfg_path);
        }
        return write_error(e, r, ed->conf_path);
    }
    return 0;
}

static bool volid_valid(const char *v) {
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

/* The -uuid value for the VM: the mdev UUID, or its smbios1 uuid with uuid_source smbios. */
static void uuid_value(const struct edit *ed, const char *mdev_uuid, char *out, size_t size) {
    if (ed->cfg.uuid_source != UUID_SOURCE_SMBIOS ||
        pveconf_smbios_uuid(&ed->conf, out, size) < 0) {
        snprintf(out, size, "%s", mdev_uuid);
    }
}

/* Warn when this node has no GPU offering the type, or a named GPU does not offer it. */
static void check_type_here(
    const struct hook_env *env, const struct edit *ed, const struct attach_request *req,
    struct pvh_warnings *w
) {
    struct host h = {0};
    struct pvh_err e;
    if (inventory_load_all(env->fs, &h, &e) < 0) {
        warn_add(w, "cannot read this node's GPUs (%s); not checking the type", e.msg);
        return;
    }
    bool anywhere = false;
    for (size_t p = 0; p < h.nparents; p++) {
        anywhere |= inv_parent_type(&h, p, req->type) != NULL;
    }
    if (!anywhere) {
        warn_add(
            w,
            "no GPU on node %s offers type '%s' (see 'pve-vgpu-hook types'); the VM "
            "will only start on a node that has one",
            ed->node, req->type
        );
    }
    for (size_t g = 0; g < req->ngpus; g++) {
        bool offers = false;
        for (size_t p = 0; p < h.nparents; p++) {
            char pf[16];
            offers |= inventory_physfn(env->fs, h.parents[p].bdf, pf, sizeof(pf)) == 0 &&
                      (!strcmp(pf, req->gpus[g]) || !strcmp(h.parents[p].bdf, req->gpus[g])) &&
                      inv_parent_type(&h, p, req->type);
        }
        if (!offers) {
            warn_add(w, "GPU %s on node %s does not offer '%s'", req->gpus[g], ed->node, req->type);
        }
    }
    inventory_free(&h);
}

/* Proxmox refuses to start a VM whose hookscript volume does not exist; qm set would have
 * said so, but attach writes the config itself. */
static void
warn_hookscript_missing(const struct hook_env *env, const char *volid, struct pvh_warnings *w) {
    char storage[64], path[PATH_MAX];
    const char *colon = strchr(volid, ':');
    _cleanup_free_ char *cfg = NULL;
    struct storage_info st;
    snprintf(storage, sizeof(storage), "%.*s", (int)(colon - volid), volid);
    if (hostfs_read_alloc(env->fs, "/etc/pve/storage.cfg", CONFIG_MAX_BYTES, &cfg, NULL) < 0 ||
        storage_find(cfg, storage, &st) < 0 || !st.path[0]) {
        warn_add(
            w,
            "cannot check hookscript %s: no storage '%s' with a path in "
            "/etc/pve/storage.cfg",
            volid, storage
        );
        return;
    }
    if (path_fmt(path, sizeof(path), "%s/%s", st.path, colon + 1) == 0 &&
        hostfs_exists(env->fs, path) < 0) {
        warn_add(
            w,
            "hookscript %s (%s) does not exist yet, and Proxmox will refuse to start the "
            "VM: run 'pve-vgpu-hook setup --storage %s' on every node",
            volid, path, storage
        );
    }
}

/* vms.<vmid>.gpus: this node's list replaced, other nodes' lists kept. */
static json_object *
gpus_json(const struct edit *ed, const struct vm_settings *old, const struct attach_request *req) {
    json_object *by_node = json_object_new_object();
    for (size_t k = 0; old && k < old->nlists; k++) {
        const struct vm_gpu_list *l = &old->lists[k];
        const char *node = l->node[0] ? l->node : ed->node;
        if (!strcmp(node, ed->node) && req->ngpus) {
            continue;
        }
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < l->n; i++) {
            json_object_array_add(arr, json_object_new_string(l->gpus[i]));
        }
        json_object_object_add(by_node, node, arr);
    }
    if (req->ngpus) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < req->ngpus; i++) {
            json_object_array_add(arr, json_object_new_string(req->gpus[i]));
        }
        json_object_object_add(by_node, ed->node, arr);
    }
    if (json_object_object_length(by_node) == 0) {
        json_object_put(by_node);
        return NULL;
    }
    return by_node;
}

int managed_attach(
    const struct hook_env *env, const struct attach_request *req, struct pvh_warnings *notes,
    struct pvh_warnings *w, struct pvh_err *e
) {
    const char *hookscript = req->hookscript ? req->hookscript : DEFAULT_HOOKSCRIPT;
    if (!*req->type || strlen(req->type) >= sizeof(((struct vm_settings *)0)->type) ||
        strchr(req->type, '\n')) {
        return err_set(
            e, -EINVAL,
            "'%s' is not a vGPU type (use an id like nvidia-46 or a name "
            "like 'GRID P40-2Q')",
            req->type
        );
    }
    if (!volid_valid(hookscript)) {
        err_set(e, -EINVAL, "'%s' is not a snippets volume id", hookscript);
        err_hint(e, "use the form STORAGE:snippets/FILE, e.g. %s", DEFAULT_HOOKSCRIPT);
        return -EINVAL;
    }
    struct edit ed;
    int r = edit_open(&ed, env, req->vmid, w, e);
    if (r < 0) {
        edit_free(&ed);
        return r;
    }
    struct hostpci hps[HOSTPCI_MAX];
    size_t nhps;
    (void)hostpci_mdev_entries(&ed.conf, hps, &nhps, NULL, NULL); /* malformed: not ours */
    if (nhps) {
        unsigned hp = hps[0].index;
        err_set(e, -EINVAL, "VM %lu already has a vGPU in hostpci%u (hostpci mode)", req->vmid, hp);
        err_hint(
            e,
            "a VM uses one mode: remove hostpci%u ('qm set %lu --delete hostpci%u') to "
            "let pve-vgpu-hook place it, or keep hostpci mode without attach",
            hp, req->vmid, hp
        );
        edit_free(&ed);
        return -EINVAL;
    }
    const struct vm_settings *old = config_vm(&ed.cfg, req->vmid);
    unsigned index = req->index >= 0 ? (unsigned)req->index : old ? old->index : 0;
    if (old && old->index != index) {
        err_set(
            e, -EINVAL, "VM %lu is attached with index %u; a new index changes its mdev UUID",
            req->vmid, old->index
        );
        err_hint(e, "run 'pve-vgpu-hook detach %lu' first, then attach again", req->vmid);
        edit_free(&ed);
        return -EINVAL;
    }
    char cur_hook[512];
    const char *has_hook = pveconf_get(&ed.conf, "hookscript", cur_hook, sizeof(cur_hook));
    if (has_hook && strcmp(has_hook, hookscript) != 0) {
        err_set(
            e, -EEXIST,
            "VM %lu already has hookscript %s, and Proxmox runs one hookscript "
            "per VM",
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
        edit_free(&ed);
        return -EEXIST;
    }
    check_type_here(env, &ed, req, w);

    char uuid[MDEV_UUID_LEN + 1], uval[64], args[8192];
    mdev_uuid_for(req->vmid, index, uuid);
    uuid_value(&ed, uuid, uval, sizeof(uval));
    const char *cur_args = pveconf_get(&ed.conf, "args", args, sizeof(args));
    bool conf_changed = false;
    json_object *attached;
    if (old && old->attached) {
        /* Updating type or GPUs: args and hookscript are already in place. */
        attached = json_object_new_object();
        json_object_object_add(
            attached, "args_before",
            old->args_before ? json_object_new_string(old->args_before) : NULL
        );
        json_object_object_add(
            attached, "hookscript_added",
            old->hookscript_added ? json_object_new_string(old->hookscript_added) : NULL
        );
    } else {
        char dev[128];
        snprintf(dev, sizeof(dev), "sysfsdev=/sys/bus/mdev/devices/%s", uuid);
        if (cur_args && !args_splittable(cur_args)) {
            err_set(
                e, -EINVAL,
                "args of VM %lu has an unbalanced quote or a dangling backslash: what attach "
                "appends would "
                "end up inside it",
                req->vmid
            );
            err_hint(
                e, "Proxmox cannot split such args either: fix them first; nothing was "
                   "changed"
            );
            edit_free(&ed);
            return -EINVAL;
        }
        if (cur_args && strstr(cur_args, dev)) {
            err_set(e, -EEXIST, "args of VM %lu already pass mdev %s to QEMU", req->vmid, uuid);
            err_hint(
                e, "remove that -device from args ('qm set %lu --args ...'), then attach", req->vmid
            );
            edit_free(&ed);
            return -EEXIST;
        }
        size_t need = (cur_args ? strlen(cur_args) : 0) + 256;
        _cleanup_free_ char *new_args = malloc(need);
        if (!new_args) {
            edit_free(&ed);
            return err_set(e, -ENOMEM, "out of memory");
        }
        snprintf(
            new_args, need, "%s%s-device vfio-pci,%s -uuid %s", cur_args ? cur_args : "",
            cur_args ? " " : "", dev, uval
        );
        if ((r = pveconf_set(&ed.conf, "args", new_args)) < 0 ||
            (!has_hook && (r = pveconf_set(&ed.conf, "hookscript", hookscript)) < 0)) {
            edit_free(&ed);
            return err_set(e, r, "cannot edit the VM config: %s", strerror(-r));
        }
        conf_changed = true;
        attached = json_object_new_object();
        json_object_object_add(
            attached, "args_before", cur_args ? json_object_new_string(cur_args) : NULL
        );
        json_object_object_add(
            attached, "hookscript_added", has_hook ? NULL : json_object_new_string(hookscript)
        );
        warn_add(notes, "args: %s", new_args);
        if (!has_hook) {
            warn_add(notes, "hookscript: %s", hookscript);
        }
    }
    json_object *entry = json_object_new_object();
    json_object_object_add(entry, "type", json_object_new_string(req->type));
    json_object *gpus = gpus_json(&ed, old, req);
    if (gpus) {
        json_object_object_add(entry, "gpus", gpus);
    }
    json_object_object_add(entry, "index", json_object_new_int(index));
    json_object_object_add(entry, "attached", attached);
    if ((r = config_doc_set_vm(ed.doc, req->vmid, entry)) < 0) {
        edit_free(&ed);
        return err_set(e, r, "out of memory");
    }
    if ((r = edit_commit(&ed, conf_changed, e)) < 0) {
        edit_free(&ed);
        return r;
    }
    char where[160] = "";
    for (size_t g = 0; g < req->ngpus; g++) {
        size_t l = strlen(where);
        snprintf(where + l, sizeof(where) - l, "%s%s", g ? ", " : "", req->gpus[g]);
    }
    warn_hookscript_missing(env, hookscript, w);
    warn_add(
        notes, "VM %lu: attached %s as mdev %s; each start places it on %s%s (node %s)", req->vmid,
        req->type, uuid, req->ngpus ? "one of " : "any GPU offering it", where, ed.node
    );
    if (vm_is_running(env->fs, req->vmid)) {
        warn_add(w, "VM %lu is running: it gets the vGPU at its next start", req->vmid);
    }
    edit_free(&ed);
    return 0;
}

int managed_detach(
    const struct hook_env *env, unsigned long vmid, struct pvh_warnings *notes,
    struct pvh_warnings *w, struct pvh_err *e
) {
    struct edit ed;
    int r = edit_open(&ed, env, vmid, w, e);
    if (r < 0) {
        edit_free(&ed);
        return r;
    }
    const struct vm_settings *vs = config_vm(&ed.cfg, vmid);
    if (!vs) {
        err_set(e, -ENOENT, "VM %lu is not attached (%s has no vms.%lu)", vmid, ed.cfg_path, vmid);
        err_hint(e, "'pve-vgpu-hook status' shows which VMs have vGPUs");
        edit_free(&ed);
        return -ENOENT;
    }
    bool conf_changed = false;
    if (vs->attached) {
        char uuid[MDEV_UUID_LEN + 1], uval[64], dev[128], args[8192];
        mdev_uuid_for(vmid, vs->index, uuid);
        snprintf(dev, sizeof(dev), "vfio-pci,sysfsdev=/sys/bus/mdev/devices/%s", uuid);
        const char *cur = pveconf_get(&ed.conf, "args", args, sizeof(args));
        if (cur) {
            _cleanup_free_ char *a1 = NULL, *a2 = NULL;
            bool f1, f2;
            uuid_value(&ed, uuid, uval, sizeof(uval));
            if ((r = args_remove_pair(cur, "-device", dev, &a1, &f1)) < 0 ||
                (r = args_remove_pair(a1, "-uuid", uval, &a2, &f2)) < 0) {
                edit_free(&ed);
                return err_set(e, r, "out of memory");
            }
            if (!f2 && strcmp(uval, uuid)) { /* uuid_source changed since attach */
                free(a2);
                a2 = NULL;
                if ((r = args_remove_pair(a1, "-uuid", uuid, &a2, &f2)) < 0) {
                    edit_free(&ed);
                    return err_set(e, r, "out of memory");
                }
            }
            /* Exactly what attach found, when nothing else changed since. */
            const char *restore =
                vs->args_before && !strcmp(a2, vs->args_before) ? vs->args_before : a2;
            if (!f1 || !f2) {
                warn_add(
                    w,
                    "args of VM %lu no longer held all that attach added; removed what "
                    "was there",
                    vmid
                );
            }
            r = *restore ? pveconf_set(&ed.conf, "args", restore)
                         : pveconf_delete(&ed.conf, "args");
            if (r < 0 && r != -ENOENT) {
                edit_free(&ed);
                return err_set(e, r, "cannot edit the VM config");
            }
            conf_changed = true;
            warn_add(notes, "args: %s", *restore ? restore : "(removed)");
        }
        char hook[512];
        const char *cur_hook = pveconf_get(&ed.conf, "hookscript", hook, sizeof(hook));
        if (vs->hookscript_added && cur_hook && !strcmp(cur_hook, vs->hookscript_added)) {
            pveconf_delete(&ed.conf, "hookscript");
            conf_changed = true;
            warn_add(notes, "hookscript: (removed)");
        }
    }
    config_doc_set_vm(ed.doc, vmid, NULL); /* removing cannot fail */
    if ((r = edit_commit(&ed, conf_changed, e)) < 0) {
        edit_free(&ed);
        return r;
    }
    warn_add(notes, "VM %lu: detached", vmid);
    if (vm_is_running(env->fs, vmid)) {
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
