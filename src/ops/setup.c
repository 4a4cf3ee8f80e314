#include "setup.h"

#include "cleanup.h"
#include "hostpaths.h"
#include "mistakes.h"
#include "pveconf.h"
#include "sectioncfg.h"
#include "storage.h"
#include "vmconf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Storages whose directory every node sees: a symlink to /usr/bin may not be allowed there. */
static bool shared_type(const char *type) {
    return !strcmp(type, "nfs") || !strcmp(type, "cifs") || !strcmp(type, "cephfs") ||
           !strcmp(type, "glusterfs");
}

struct other_hookscripts {
    const struct hook_env *env;
    const struct sectioncfg *storage;
    const char *volid;
    struct pvh_warnings *notes;
};

/* A VM of this node whose hookscript is something else: how to keep it alongside ours. */
static int advise_other_hookscript(void *ctx, unsigned long vmid, const struct pveconf *conf) {
    const struct other_hookscripts *o = ctx;
    const char *hs = pveconf_get(conf, "hookscript");
    char hpath[PATH_MAX], why[PATH_MAX + 64];
    if (!hs || !strcmp(hs, o->volid)) {
        return 0;
    }
    if (hookscript_path(o->storage, hs, hpath, sizeof(hpath), why, sizeof(why)) == 0 &&
        hookscript_is_ours(o->env->fs, hpath)) {
        /* an earlier setup's snippet: this tool already, never a hook to chain */
        warn_add(
            o->notes,
            "VM %lu has hookscript %s, which is pve-vgpu-hook already; keep it, or qm set "
            "%lu --hookscript %s",
            vmid, hs, vmid, o->volid
        );
        return 0;
    }
    /* a run-parts name: the file name without its extension, other bytes as '-' */
    const char *file = strrchr(hs, '/') ? strrchr(hs, '/') + 1 : hs;
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)strcspn(file, "."), file);
    for (char *c = name; *c; c++) {
        *c = isalnum((unsigned char)*c) || *c == '_' ? *c : '-';
    }
    warn_add(
        o->notes,
        "VM %lu has hookscript %s: to keep it, copy that script to %s/50-%s "
        "on every node, then qm set %lu --hookscript %s",
        vmid, hs, HOOKS_DIR, name, vmid, o->volid
    );
    return 0;
}

static void advise_other_hookscripts(
    const struct hook_env *env, const struct sectioncfg *storage, const char *volid,
    struct pvh_warnings *notes
) {
    struct other_hookscripts o = {.env = env, .storage = storage, .volid = volid, .notes = notes};
    (void)vmconf_each(env->fs, advise_other_hookscript, &o);
}

static int setup_on_storage(
    const struct hook_env *env, const struct sectioncfg *cfg, const char *storage,
    const char *self_exe, struct edit_result *res, struct pvh_err *e
);

/* An absolute path without ".." components (Proxmox demands absolute storage paths). */
static bool absolute_clean(const char *p) {
    if (p[0] != '/') {
        return false;
    }
    for (const char *c = p; *c;) {
        size_t l = strcspn(c, "/");
        if (l == 2 && c[0] == '.' && c[1] == '.') {
            return false;
        }
        c += l;
        c += *c == '/';
    }
    return true;
}

int setup_snippet(
    const struct hook_env *env, const char *storage, struct edit_result *res, struct pvh_err *e
) {
    _cleanup_(sectioncfg_freep) struct sectioncfg cfg = {0};
    int r = storage_cfg_load(env->fs, &cfg, e);
    if (r < 0 && r != -ENOMEM) {
        err_hint(e, "run setup on a Proxmox VE node (with /etc/pve mounted)");
    }
    if (r < 0) {
        return r;
    }
    return setup_on_storage(env, &cfg, storage, PVH_INSTALLED_BINARY, res, e);
}

/* The snippet written (a dry run: only said): the wrapper on shared storage of type shared,
 * else a link to self_exe. */
static int setup_write(
    const struct hook_env *env, const char *dir, const char *file, const char *shared,
    const char *self_exe, struct edit_result *res, struct pvh_err *e
) {
    const char *content = shared ? SNIPPET_WRAPPER : self_exe;
    edit_result_change(res, file, NULL, 0, content, strlen(content));
    int r = res->dry_run ? 0 : hostfs_mkdir(env->fs, dir, 0755);
    if (r < 0 && r != -EEXIST) {
        return err_set(e, r, "cannot create %s: %s", dir, strerror(-r));
    }
    r = res->dry_run ? 0
        : shared     ? hostfs_replace_file(env->fs, file, content, strlen(content), 0755)
                     : hostfs_symlink(env->fs, self_exe, file);
    if (r < 0) {
        return err_set(e, r, "cannot %s %s: %s", shared ? "write" : "create", file, strerror(-r));
    }
    if (shared) {
        snprintf(
            res->message, sizeof(res->message),
            "%s %s: it runs /usr/bin/pve-vgpu-hook on every node (%s storage)",
            res->dry_run ? "would write" : "wrote", file, shared
        );
    } else {
        snprintf(
            res->message, sizeof(res->message), "%s %s -> %s",
            res->dry_run ? "would link" : "linked", file, self_exe
        );
    }
    return 0;
}

/* Can the storage hold the snippet: it exists, has an absolute directory, allows snippets?
 * The checks an administrator meets in order, each with its own message and fix. */
static int setup_storage_usable(
    const struct sectioncfg *cfg, const char *storage, struct storage_info *out, struct pvh_err *e
) {
    struct storage_info st;
    if (storage_find(cfg, storage, &st) < 0) {
        err_set(e, -ENOENT, "there is no storage '%s' in %s", storage, PVE_STORAGE_CFG);
        err_hint(e, "name a directory storage with --storage (see 'pvesm status')");
        return -ENOENT;
    }
    if (!st.path || !st.path[0]) {
        err_set(
            e, -EINVAL, "storage '%s' (type %s) has no directory for snippets", storage, st.type
        );
        err_hint(e, "use a directory-based storage (dir, nfs, cifs, cephfs) with --storage");
        return -EINVAL;
    }
    if (!absolute_clean(st.path)) {
        err_set(
            e, -EINVAL, "storage '%s' has path '%s', which is not an absolute path", storage,
            st.path
        );
        err_hint(
            e, "Proxmox requires an absolute path: fix it in %s ('pvesm set')", PVE_STORAGE_CFG
        );
        return -EINVAL;
    }
    if (!list_has(st.content, "snippets")) {
        err_set(
            e, -EPERM, "storage '%s' does not allow snippets (content: %s)", storage,
            st.content[0] ? st.content : "none set"
        );
        err_hint(
            e, "allow them, then run setup again: pvesm set %s --content %s%ssnippets", storage,
            st.content, st.content[0] ? "," : ""
        );
        return -EPERM;
    }
    *out = st;
    return 0;
}

/* The snippet on the storage (a link to the installed binary, or on shared storage a wrapper
 * that runs it), unless it is there already; anything else of that name is left alone. */
static int setup_on_storage(
    const struct hook_env *env, const struct sectioncfg *cfg, const char *storage,
    const char *self_exe, struct edit_result *res, struct pvh_err *e
) {
    struct pvh_warnings *notes = &res->details;
    struct storage_info st;
    int r = setup_storage_usable(cfg, storage, &st, e);
    if (r < 0) {
        return r;
    }
    mode_t mode = 0;
    /* the snippet runs the installed binary on every node, never the one that ran setup (a
     * build tree, a copy that goes away) */
    r = hostfs_stat(env->fs, PVH_INSTALLED_BINARY, &mode, NULL);
    if (r < 0 || !S_ISREG(mode) || !(mode & 0111)) {
        err_set(
            e, r < 0 ? r : -ENOEXEC, "%s, which the snippet runs, %s", PVH_INSTALLED_BINARY,
            r < 0 ? strerror(-r) : "is no executable file"
        );
        err_hint(
            e, "install pve-vgpu-hook on this node first (apt install ./pve-vgpu-hook_*.deb, or "
               "make install), then run setup again; nothing was changed"
        );
        return r < 0 ? r : -ENOEXEC;
    }
    char dir[PATH_MAX], file[PATH_MAX], volid[256];
    if (str_fmt(dir, sizeof(dir), "%s/snippets", st.path) < 0 ||
        str_fmt(file, sizeof(file), "%s/%s", dir, SNIPPET_NAME) < 0) {
        return err_set(e, -ENAMETOOLONG, "the storage path is too long");
    }
    snprintf(volid, sizeof(volid), "%s:snippets/%s", storage, SNIPPET_NAME);
    bool wrapper = shared_type(st.type);
    res->result = "installed";
    char target[PATH_MAX];
    _cleanup_free_ char *existing = NULL;
    if (hostfs_readlink(env->fs, file, target, sizeof(target)) >= 0) {
        if (wrapper || strcmp(target, self_exe)) {
            err_set(e, -EEXIST, "%s already links to %s", file, target);
            err_hint(e, "remove it if it is an old install (rm %s), then run setup again", file);
            return -EEXIST;
        }
        snprintf(
            res->message, sizeof(res->message), "%s already links to %s; nothing to do", file,
            self_exe
        );
    } else if (hostfs_read_alloc(env->fs, file, 65536, &existing, NULL) == 0) {
        if (!wrapper || strcmp(existing, SNIPPET_WRAPPER)) {
            err_set(e, -EEXIST, "%s exists and is not pve-vgpu-hook's", file);
            err_hint(
                e, "move it away (it may be another hookscript: see 'help setup'), then "
                   "run setup again"
            );
            return -EEXIST;
        }
        snprintf(
            res->message, sizeof(res->message),
            "%s is already the pve-vgpu-hook wrapper; nothing to do", file
        );
    } else if ((r = setup_write(env, dir, file, wrapper ? st.type : NULL, self_exe, res, e)) < 0) {
        return r;
    }
    warn_add(notes, "next: qm set VMID --hookscript %s", volid);
    advise_other_hookscripts(env, cfg, volid, notes);
    return 0;
}
