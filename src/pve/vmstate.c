#include "vmstate.h"

#include "cleanup.h"
#include "config.h"
#include "hostpaths.h"
#include "nvidia_iface.h"
#include "pveconf.h"
#include "sectioncfg.h"
#include "strutil.h"
#include "vfmap.h"
#include "vmconf.h"

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

struct config_owner {
    const struct hostfs *fs;
    const char *bdf, *node;
    const struct sectioncfg *mappings;
    unsigned long first;
    enum vm_state state;
};

/* Does this VM's config name the VF in a hostpci entry with mdev= (host= or its mapping)? */
static int config_owner_vm(void *ctx, unsigned long vmid, const struct pveconf *conf) {
    struct config_owner *o = ctx;
    struct hostpci hps[HOSTPCI_MAX];
    size_t n;
    (void)hostpci_mdev_entries(conf, hps, &n, NULL, NULL);
    bool names = false;
    for (size_t k = 0; k < n && !names; k++) {
        names = hps[k].nhost == 1 && !strcmp(hps[k].host[0], o->bdf);
        char(*paths)[16] = NULL;
        size_t np = 0;
        struct pvh_err e;
        if (!names && hps[k].mapping[0] && o->mappings &&
            mapping_paths(o->mappings, hps[k].mapping, o->node, &paths, &np, &e) == 0) {
            for (size_t q = 0; q < np; q++) {
                names |= !strcmp(paths[q], o->bdf);
            }
        }
        free(paths);
    }
    if (names) {
        o->first = o->first ? o->first : vmid;
        if (vm_is_busy(o->fs, vmid)) {
            o->first = vmid;
            o->state = VM_BUSY;
        } else if (o->state != VM_BUSY) {
            o->state = VM_STOPPED;
        }
    }
    return 0;
}

/* The VMs of this node whose config names the VF. */
static void config_owners(
    const struct hostfs *fs, const char *bdf, const struct sectioncfg *mappings, const char *node,
    unsigned long *first, enum vm_state *state
) {
    struct config_owner o = {
        .fs = fs, .bdf = bdf, .node = node, .mappings = mappings, .state = VM_NOT_OURS};
    (void)vmconf_each(fs, config_owner_vm, &o);
    *first = o.first;
    *state = o.state;
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
        vfmap_read(fs, &text, NULL) == 0 && sectioncfg_parse(text, false, &mappings) == 0;
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
