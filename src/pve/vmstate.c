#include "vmstate.h"

#include "cleanup.h"
#include "config.h"
#include "hostpaths.h"
#include "nvidia_iface.h"
#include "pveconf.h"
#include "sectioncfg.h"
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vm_is_running(const struct hostfs *fs, unsigned long vmid) {
    char path[PATH_MAX], pidfile[128], buf[32];
    snprintf(pidfile, sizeof(pidfile), PVE_VM_PIDFILE_ARG_FMT, vmid);
    if (str_fmt(path, sizeof(path), PVE_VM_PID_FMT, vmid) < 0 ||
        hostfs_read(fs, path, buf, sizeof(buf)) <= 0) {
        return 0;
    }
    char *end;
    long pid = strtol(buf, &end, 10);
    if (pid <= 0 || *end) {
        return 0;
    }
    _cleanup_free_ char *cmdline = NULL;
    size_t len = 0;
    if (str_fmt(path, sizeof(path), PROC_PID_FMT "/cmdline", pid) < 0 ||
        hostfs_read_alloc(fs, path, 1 << 20, &cmdline, &len) < 0) {
        return 0; /* no such process */
    }
    bool match = false;
    for (size_t i = 0; i < len && !match;) {
        const char *arg = cmdline + i;
        size_t al = strnlen(arg, len - i);
        size_t next = i + al + 1;
        if (!strcmp(arg, "-pidfile") && next < len && !strcmp(cmdline + next, pidfile)) {
            match = true;
        }
        i = next;
    }
    if (!match) {
        return 0;
    }
    char stat[512];
    if (str_fmt(path, sizeof(path), PROC_PID_FMT "/stat", pid) == 0 &&
        hostfs_read(fs, path, stat, sizeof(stat)) > 0) {
        const char *rp = strrchr(stat, ')');
        if (rp && rp[1] == ' ' && rp[2] == 'Z') {
            return 0;
        }
    }
    return 1;
}

void node_name(const struct hostfs *fs, char *buf, size_t size) {
    char target[256];
    /* pmxcfs links /etc/pve/local to nodes/<this node> */
    if (hostfs_readlink(fs, PVE_LOCAL_LINK, target, sizeof(target)) > 0) {
        const char *slash = strrchr(target, '/');
        const char *name = slash ? slash + 1 : target;
        if (node_name_valid(name) && str_fmt(buf, size, "%s", name) == 0) {
            return;
        }
    }
    if (hostfs_hostname(fs, buf, size) < 0 || !node_name_valid(buf)) {
        snprintf(buf, size, "localhost");
    }
}

bool vmid_is_container(const struct hostfs *fs, unsigned long vmid) {
    char path[PATH_MAX];
    return str_fmt(path, sizeof(path), PVE_CT_CONF_FMT, vmid) == 0 && hostfs_exists(fs, path) == 0;
}

int vm_is_busy(const struct hostfs *fs, unsigned long vmid) {
    char path[PATH_MAX];
    if (str_fmt(path, sizeof(path), PVE_VM_LOCK_FMT, vmid) < 0) {
        return 0;
    }
    return hostfs_is_locked(fs, path) == 1;
}

void inventory_read_vm_states(const struct hostfs *fs, struct inv_mdev *mdevs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        struct inv_mdev *m = &mdevs[i];
        m->state = VM_NOT_OURS;
        if (!m->owned) {
            continue;
        }
        size_t k;
        for (k = 0; k < i && !(mdevs[k].owned && mdevs[k].vmid == m->vmid); k++) {
        }
        if (k < i) {
            m->state = mdevs[k].state;
        } else {
            m->state = vm_is_running(fs, m->vmid) ? VM_RUNNING
                       : vm_is_busy(fs, m->vmid)  ? VM_BUSY
                                                  : VM_STOPPED;
        }
    }
}

/* The VM whose running QEMU passes the VF (host=<bdf> or sysfsdev=.../<bdf>), 0 when none. */
static unsigned long
qemu_user(const struct hostfs *fs, const struct hostfs_list *procs, const char *bdf) {
    char host[PCI_ID_LEN + 8], sysfsdev[PATH_MAX];
    snprintf(host, sizeof(host), "host=%s", bdf);
    snprintf(sysfsdev, sizeof(sysfsdev), "sysfsdev=" SYS_PCI_DEVICES "/%s", bdf);
    for (size_t i = 0; i < procs->n; i++) {
        char path[PATH_MAX];
        _cleanup_free_ char *cmd = NULL;
        size_t len;
        if (!isdigit((unsigned char)procs->names[i][0]) ||
            str_fmt(path, sizeof(path), "/proc/%s/cmdline", procs->names[i]) < 0 ||
            hostfs_read_alloc(fs, path, 1 << 20, &cmd, &len) < 0) {
            continue;
        }
        unsigned long vmid = 0;
        bool uses = false;
        for (size_t k = 0; k < len;) {
            const char *arg = cmd + k;
            size_t al = strnlen(arg, len - k);
            const char *h = strstr(arg, host);
            uses |=
                (h && (h == arg || h[-1] == ',') && (h[strlen(host)] == ',' || !h[strlen(host)])) ||
                strstr(arg, sysfsdev) != NULL;
            if (!strcmp(arg, "-id") && k + al + 1 < len) {
                vmid_parse(cmd + k + al + 1, &vmid);
            }
            k += al + 1;
        }
        if (uses) {
            return vmid ? vmid : 1;
        }
    }
    return 0;
}

/* The VMs of this node whose config names the VF in a hostpci entry with mdev=. */
static void config_owners(
    const struct hostfs *fs, const char *bdf, const struct sectioncfg *mappings, const char *node,
    unsigned long *first, enum vm_state *state
) {
    struct hostfs_list l;
    *first = 0;
    *state = VM_NOT_OURS;
    if (hostfs_list(fs, PVE_VM_CONF_DIR, &l) < 0) {
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        char path[PATH_MAX], id[16];
        unsigned long vmid;
        size_t nl = strlen(l.names[i]);
        if (nl < 6 || nl - 5 >= sizeof(id) || strcmp(l.names[i] + nl - 5, ".conf")) {
            continue;
        }
        snprintf(id, sizeof(id), "%.*s", (int)(nl - 5), l.names[i]);
        _cleanup_free_ char *text = NULL;
        size_t len;
        _cleanup_(pveconf_freep) struct pveconf conf = {0};
        if (!vmid_parse(id, &vmid) ||
            str_fmt(path, sizeof(path), PVE_VM_CONF_DIR "/%s", l.names[i]) < 0 ||
            hostfs_read_alloc(fs, path, CONFIG_MAX_BYTES, &text, &len) < 0 ||
            pveconf_parse(text, len, &conf) < 0) {
            continue;
        }
        struct hostpci hps[HOSTPCI_MAX];
        size_t n;
        (void)hostpci_mdev_entries(&conf, hps, &n, NULL, NULL);
        bool names = false;
        for (size_t k = 0; k < n && !names; k++) {
            names = hps[k].nhost == 1 && !strcmp(hps[k].host[0], bdf);
            char(*paths)[16] = NULL;
            size_t np = 0;
            struct pvh_err e;
            if (!names && hps[k].mapping[0] && mappings &&
                mapping_paths(mappings, hps[k].mapping, node, &paths, &np, &e) == 0) {
                for (size_t q = 0; q < np; q++) {
                    names |= !strcmp(paths[q], bdf);
                }
            }
            free(paths);
        }
        if (names) {
            *first = *first ? *first : vmid;
            if (vm_is_busy(fs, vmid)) {
                *first = vmid;
                *state = VM_BUSY;
            } else if (*state != VM_BUSY) {
                *state = VM_STOPPED;
            }
        }
    }
    hostfs_list_free(&l);
}

int inventory_vf_holders(const struct hostfs *fs, struct vf_holder **out, size_t *n) {
    *out = NULL;
    *n = 0;
    struct hostfs_list devs, procs = {0};
    int r = hostfs_list(fs, SYS_PCI_DEVICES, &devs);
    if (r < 0) {
        return r == -ENOENT ? 0 : r;
    }
    (void)hostfs_list(fs, "/proc", &procs);
    char node[NODE_NAME_MAX];
    node_name(fs, node, sizeof(node));
    _cleanup_free_ char *text = NULL;
    _cleanup_(sectioncfg_freep) struct sectioncfg mappings = {0};
    bool have_mappings =
        hostfs_read_alloc(fs, PVE_PCI_MAPPING_CFG, CONFIG_MAX_BYTES, &text, NULL) == 0 &&
        sectioncfg_parse(text, false, &mappings) == 0;
    for (size_t i = 0; i < devs.n && r == 0; i++) {
        struct nvidia_iface nv;
        char vf[PCI_ID_LEN];
        if (str_fmt(vf, sizeof(vf), "%s", devs.names[i]) < 0 ||
            inventory_nvidia_iface(fs, vf, &nv) < 0) {
            continue;
        }
        nvidia_iface_free(&nv); /* only the type set matters here */
        if (!nv.current) {
            continue;
        }
        if ((r = GROW(*out, *n, 1)) < 0) {
            break;
        }
        struct vf_holder *v = &(*out)[(*n)++];
        memset(v, 0, sizeof(*v));
        memcpy(v->bdf, vf, sizeof(vf));
        v->type = nv.current;
        unsigned long user = qemu_user(fs, &procs, v->bdf);
        if (user) {
            v->vmid = user > 1 ? user : 0;
            v->state = VM_RUNNING;
        } else {
            config_owners(fs, v->bdf, have_mappings ? &mappings : NULL, node, &v->vmid, &v->state);
        }
    }
    hostfs_list_free(&devs);
    hostfs_list_free(&procs);
    return r;
}

/* vmconf_each's callback without a node, and vmconf_each_cluster's with one. */
struct vmconf_walk {
    int (*fn)(void *ctx, unsigned long vmid, const struct pveconf *conf);
    int (*node_fn)(void *ctx, const char *node, unsigned long vmid, const struct pveconf *conf);
    const char *node;
    void *ctx;
};

static int vmconf_walk_dir(const struct hostfs *fs, const char *dir, const struct vmconf_walk *w) {
    struct hostfs_list l;
    int r = hostfs_list(fs, dir, &l);
    if (r < 0) {
        return r;
    }
    for (size_t i = 0; r == 0 && i < l.n; i++) {
        char path[PATH_MAX], id[16];
        size_t nl = strlen(l.names[i]);
        unsigned long vmid;
        _cleanup_free_ char *text = NULL;
        size_t len;
        _cleanup_(pveconf_freep) struct pveconf conf = {0};
        if (nl < 6 || nl - 5 >= sizeof(id) || strcmp(l.names[i] + nl - 5, ".conf")) {
            continue;
        }
        snprintf(id, sizeof(id), "%.*s", (int)(nl - 5), l.names[i]);
        if (!vmid_parse(id, &vmid) || str_fmt(path, sizeof(path), "%s/%s", dir, l.names[i]) < 0 ||
            hostfs_read_alloc(fs, path, CONFIG_MAX_BYTES, &text, &len) < 0 ||
            pveconf_parse(text, len, &conf) < 0) {
            continue;
        }
        r = w->fn ? w->fn(w->ctx, vmid, &conf) : w->node_fn(w->ctx, w->node, vmid, &conf);
    }
    hostfs_list_free(&l);
    return r;
}

int vmconf_each(
    const struct hostfs *fs, const char *dir,
    int (*fn)(void *ctx, unsigned long vmid, const struct pveconf *conf), void *ctx
) {
    struct vmconf_walk w = {.fn = fn, .ctx = ctx};
    return vmconf_walk_dir(fs, dir, &w);
}

int vmconf_each_cluster(
    const struct hostfs *fs,
    int (*fn)(void *ctx, const char *node, unsigned long vmid, const struct pveconf *conf),
    void *ctx
) {
    struct hostfs_list nodes;
    int r = hostfs_list(fs, PVE_NODES_DIR, &nodes);
    if (r < 0) {
        return r;
    }
    for (size_t i = 0; r == 0 && i < nodes.n; i++) {
        char dir[PATH_MAX];
        struct vmconf_walk w = {.node_fn = fn, .node = nodes.names[i], .ctx = ctx};
        if (!node_name_valid(nodes.names[i]) ||
            str_fmt(dir, sizeof(dir), PVE_NODES_DIR "/%s/qemu-server", nodes.names[i]) < 0) {
            continue; /* a name Proxmox cannot have is no node: never a path */
        }
        r = vmconf_walk_dir(fs, dir, &w);
        r = r == -ENOENT || r == -ENOTDIR ? 0 : r;
    }
    hostfs_list_free(&nodes);
    return r;
}
