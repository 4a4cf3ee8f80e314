#include "setup.h"

#include "cleanup.h"
#include "hostpaths.h"
#include "mistakes.h"
#include "pveconf.h"
#include "sectioncfg.h"

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

/* VMs of this node whose hookscript is something else: how to keep it alongside ours. */
static void advise_other_hookscripts(
    const struct hook_env *env, const char *volid, struct pvh_warnings *notes
) {
    struct hostfs_list l;
    if (hostfs_list(env->fs, PVE_VM_CONF_DIR, &l) < 0) {
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        char path[PATH_MAX];
        const char *hs;
        _cleanup_free_ char *text = NULL;
        size_t len;
        struct pveconf conf;
        size_t nl = strlen(l.names[i]);
        if (nl < 6 || strcmp(l.names[i] + nl - 5, ".conf") ||
            str_fmt(path, sizeof(path), PVE_VM_CONF_DIR "/%s", l.names[i]) < 0 ||
            hostfs_read_alloc(env->fs, path, CONFIG_MAX_BYTES, &text, &len) < 0 ||
            pveconf_parse(text, len, &conf) < 0) {
            continue;
        }
        char hpath[PATH_MAX], why[PATH_MAX + 64];
        if ((hs = pveconf_get(&conf, "hookscript")) && strcmp(hs, volid) &&
            hookscript_path(env->fs, hs, hpath, sizeof(hpath), why, sizeof(why)) == 0 &&
            hookscript_is_ours(env->fs, hpath)) {
            /* an earlier setup's snippet: this tool already, never a hook to chain */
            warn_add(
                notes,
                "VM %.*s has hookscript %s, which is pve-vgpu-hook already; keep it, or qm set "
                "%.*s --hookscript %s",
                (int)(nl - 5), l.names[i], hs, (int)(nl - 5), l.names[i], volid
            );
        } else if (hs && strcmp(hs, volid)) {
            /* a run-parts name: the file name without its extension, other bytes as '-' */
            const char *file = strrchr(hs, '/') ? strrchr(hs, '/') + 1 : hs;
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)strcspn(file, "."), file);
            for (char *c = name; *c; c++) {
                *c = isalnum((unsigned char)*c) || *c == '_' ? *c : '-';
            }
            warn_add(
                notes,
                "VM %.*s has hookscript %s: to keep it, copy that script to %s/50-%s "
                "on every node, then qm set %.*s --hookscript %s",
                (int)(nl - 5), l.names[i], hs, HOOKS_DIR, name, (int)(nl - 5), l.names[i], volid
            );
        }
        pveconf_free(&conf);
    }
    hostfs_list_free(&l);
}

static int setup_on_storage(
    const struct hook_env *env, const struct sectioncfg *cfg, const char *storage,
    const char *self_exe, struct pvh_warnings *notes, struct pvh_err *e
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
    const struct hook_env *env, const char *storage, struct pvh_warnings *notes, struct pvh_err *e
) {
    _cleanup_free_ char *text = NULL;
    int r = hostfs_read_alloc(env->fs, PVE_STORAGE_CFG, CONFIG_MAX_BYTES, &text, NULL);
    if (r < 0) {
        err_set(e, r, "cannot read %s: %s", PVE_STORAGE_CFG, strerror(-r));
        err_hint(e, "run setup on a Proxmox VE node (with /etc/pve mounted)");
        return r;
    }
    _cleanup_(sectioncfg_freep) struct sectioncfg cfg = {0};
    if ((r = sectioncfg_parse(text, true, &cfg)) < 0) {
        return err_set(e, r, "out of memory");
    }
    return setup_on_storage(env, &cfg, storage, PVH_INSTALLED_BINARY, notes, e);
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
    const char *self_exe, struct pvh_warnings *notes, struct pvh_err *e
) {
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
    if ((r = hostfs_mkdir(env->fs, dir, 0755)) < 0 && r != -EEXIST) {
        return err_set(e, r, "cannot create %s: %s", dir, strerror(-r));
    }
    bool wrapper = shared_type(st.type);
    char target[PATH_MAX];
    _cleanup_free_ char *existing = NULL;
    if (hostfs_readlink(env->fs, file, target, sizeof(target)) >= 0) {
        if (wrapper || strcmp(target, self_exe)) {
            err_set(e, -EEXIST, "%s already links to %s", file, target);
            err_hint(e, "remove it if it is an old install (rm %s), then run setup again", file);
            return -EEXIST;
        }
        warn_add(notes, "%s already links to %s; nothing to do", file, self_exe);
    } else if (hostfs_read_alloc(env->fs, file, 65536, &existing, NULL) == 0) {
        if (!wrapper || strcmp(existing, SNIPPET_WRAPPER)) {
            err_set(e, -EEXIST, "%s exists and is not pve-vgpu-hook's", file);
            err_hint(
                e, "move it away (it may be another hookscript: see 'help setup'), then "
                   "run setup again"
            );
            return -EEXIST;
        }
        warn_add(notes, "%s is already the pve-vgpu-hook wrapper; nothing to do", file);
    } else if (wrapper) {
        if ((r = hostfs_replace_file(env->fs, file, SNIPPET_WRAPPER, strlen(SNIPPET_WRAPPER), 0755)
            ) < 0) {
            return err_set(e, r, "cannot write %s: %s", file, strerror(-r));
        }
        warn_add(
            notes, "wrote %s: it runs /usr/bin/pve-vgpu-hook on every node (%s storage)", file,
            st.type
        );
    } else {
        if ((r = hostfs_symlink(env->fs, self_exe, file)) < 0) {
            return err_set(e, r, "cannot create %s: %s", file, strerror(-r));
        }
        warn_add(notes, "linked %s -> %s", file, self_exe);
    }
    warn_add(notes, "next: qm set VMID --hookscript %s", volid);
    advise_other_hookscripts(env, volid, notes);
    return 0;
}
