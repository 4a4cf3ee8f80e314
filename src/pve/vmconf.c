#include "vmconf.h"

#include "cleanup.h"
#include "config.h"
#include "hostpaths.h"
#include "mdev_uuid.h"
#include "strutil.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vmconf_path(const char *node, unsigned long vmid, char *buf, size_t size) {
    if (!node) {
        return str_fmt(buf, size, PVE_VM_CONF_FMT, vmid);
    }
    if (!node_name_valid(node)) {
        return -EINVAL; /* a name Proxmox cannot have is no node: never a path */
    }
    return str_fmt(buf, size, PVE_NODE_VM_CONF_FMT, node, vmid);
}

int vmconf_read(
    const struct hostfs *fs, const char *node, unsigned long vmid, char **text, size_t *len
) {
    char path[PATH_MAX];
    int r = vmconf_path(node, vmid, path, sizeof(path));
    if (r < 0) {
        return r;
    }
    r = hostfs_read_alloc(fs, path, CONFIG_MAX_BYTES, text, len);
    return r == -ENOTDIR ? -ENOENT : r; /* a node without a qemu-server directory */
}

int vmconf_load(
    const struct hostfs *fs, const char *node, unsigned long vmid, struct pveconf *conf
) {
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = vmconf_read(fs, node, vmid, &text, &len);
    return r < 0 ? r : pveconf_parse(text, len, conf);
}

int vmconf_find(
    const struct hostfs *fs, unsigned long vmid, struct pveconf *conf, char *node, size_t size
) {
    int r = vmconf_load(fs, NULL, vmid, conf);
    if (node && size) {
        node[0] = '\0';
    }
    if (r != -ENOENT) {
        return r;
    }
    struct hostfs_list nodes;
    if ((r = hostfs_list(fs, PVE_NODES_DIR, &nodes)) < 0) {
        return r == -ENOTDIR ? -ENOENT : r;
    }
    r = -ENOENT;
    for (size_t i = 0; i < nodes.n && r == -ENOENT; i++) {
        if (!node_name_valid(nodes.names[i])) {
            continue; /* a name Proxmox cannot have is no node: never a path */
        }
        r = vmconf_load(fs, nodes.names[i], vmid, conf);
        if (r == 0 && node && str_fmt(node, size, "%s", nodes.names[i]) < 0) {
            pveconf_free(conf);
            r = -ENAMETOOLONG;
        }
    }
    hostfs_list_free(&nodes);
    return r;
}

static int vmid_cmp(const void *a, const void *b) {
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return (x > y) - (x < y);
}

/* The VMIDs of the "<vmid>.conf" files in dir, ascending. */
static int
vmconf_list_dir(const struct hostfs *fs, const char *dir, unsigned long **vmids, size_t *n) {
    struct hostfs_list l;
    int r = hostfs_list(fs, dir, &l);
    *vmids = NULL;
    *n = 0;
    if (r < 0) {
        return r;
    }
    unsigned long *out = malloc((l.n ? l.n : 1) * sizeof(*out));
    for (size_t i = 0; out && i < l.n; i++) {
        char id[16];
        size_t nl = strlen(l.names[i]);
        if (nl > 5 && nl - 5 < sizeof(id) && !strcmp(l.names[i] + nl - 5, ".conf")) {
            snprintf(id, sizeof(id), "%.*s", (int)(nl - 5), l.names[i]);
            *n += vmid_parse(id, &out[*n]);
        }
    }
    hostfs_list_free(&l);
    if (!out) {
        return -ENOMEM;
    }
    qsort(out, *n, sizeof(*out), vmid_cmp);
    *vmids = out;
    return 0;
}

int vmconf_list(const struct hostfs *fs, unsigned long **vmids, size_t *n) {
    return vmconf_list_dir(fs, PVE_VM_CONF_DIR, vmids, n);
}

/* vmconf_each's callback without a node, and vmconf_each_cluster's with one. */
struct vmconf_walk {
    int (*fn)(void *ctx, unsigned long vmid, const struct pveconf *conf);
    int (*node_fn)(void *ctx, const char *node, unsigned long vmid, const struct pveconf *conf);
    const char *node;
    void *ctx;
};

static int vmconf_walk(const struct hostfs *fs, const char *dir, const struct vmconf_walk *w) {
    _cleanup_free_ unsigned long *vmids = NULL;
    size_t n;
    int r = vmconf_list_dir(fs, dir, &vmids, &n);
    for (size_t i = 0; r == 0 && i < n; i++) {
        _cleanup_(pveconf_freep) struct pveconf conf = {0};
        if (vmconf_load(fs, w->node, vmids[i], &conf) == 0) {
            r = w->fn ? w->fn(w->ctx, vmids[i], &conf)
                      : w->node_fn(w->ctx, w->node, vmids[i], &conf);
        }
    }
    return r;
}

int vmconf_each(
    const struct hostfs *fs, int (*fn)(void *ctx, unsigned long vmid, const struct pveconf *conf),
    void *ctx
) {
    struct vmconf_walk w = {.fn = fn, .ctx = ctx};
    return vmconf_walk(fs, PVE_VM_CONF_DIR, &w);
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
        r = vmconf_walk(fs, dir, &w);
        r = r == -ENOENT || r == -ENOTDIR ? 0 : r;
    }
    hostfs_list_free(&nodes);
    return r;
}
