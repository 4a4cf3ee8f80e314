#include "nvidia_iface.h"

#include "cleanup.h"
#include "hostpaths.h"
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nvidia_iface_free(struct nvidia_iface *nv) {
    free(nv->creatable);
    nv->creatable = NULL;
    nv->ncreatable = 0;
}

int nvidia_parse_creatable(const char *text, struct nvidia_iface *out) {
    nvidia_iface_free(out);
    const char *p = text, *s;
    size_t len;
    while (str_next_line(&p, &s, &len)) {
        const char *end = s + len;
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        char *num_end;
        unsigned long id = strtoul(s, &num_end, 10);
        if (num_end == s || num_end > end || id == 0 || id > 0xffffffUL) {
            continue; /* the header, or noise */
        }
        const char *name = num_end;
        while (name < end && (*name == ' ' || *name == '\t')) {
            name++;
        }
        if (name >= end || *name != ':') {
            continue;
        }
        name++;
        while (name < end && (*name == ' ' || *name == '\t')) {
            name++;
        }
        const char *ne = end;
        while (ne > name && (ne[-1] == ' ' || ne[-1] == '\t' || ne[-1] == '\r')) {
            ne--;
        }
        if (GROW(out->creatable, out->ncreatable, 1) < 0) {
            nvidia_iface_free(out);
            return -ENOMEM;
        }
        struct nvidia_iface_type *t = &out->creatable[out->ncreatable];
        t->id = (unsigned)id;
        /* a name too long to hold is left out rather than cut */
        if (str_fmt(t->name, sizeof(t->name), "%.*s", (int)(ne - name), name) < 0 ||
            str_has_ctl(t->name, false)) {
            t->name[0] = '\0';
        }
        out->ncreatable++;
    }
    return 0;
}

int inventory_nvidia_iface(const struct hostfs *fs, const char *bdf, struct nvidia_iface *out) {
    char path[PATH_MAX];
    memset(out, 0, sizeof(*out));
    int r = str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/nvidia", bdf);
    if (r < 0 || hostfs_is_dir(fs, path) < 0) {
        return -ENOENT;
    }
    long cur = 0;
    if (str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/nvidia/current_vgpu_type", bdf) == 0 &&
        hostfs_read_long(fs, path, &cur) == 0 && cur > 0) {
        out->current = (unsigned)cur;
    }
    _cleanup_free_ char *text = NULL;
    if (str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/nvidia/creatable_vgpu_types", bdf) == 0 &&
        hostfs_read_alloc(fs, path, 1 << 16, &text, NULL) == 0) {
        return nvidia_parse_creatable(text, out);
    }
    return 0;
}

int inventory_nvidia_gpus(const struct hostfs *fs, struct nvidia_gpu **out, size_t *n) {
    *out = NULL;
    *n = 0;
    struct hostfs_list l;
    int r = hostfs_list(fs, SYS_PCI_DEVICES, &l);
    if (r < 0) {
        return r == -ENOENT ? 0 : r;
    }
    for (size_t i = 0; i < l.n && r == 0; i++) {
        struct nvidia_iface nv;
        char pf[PCI_ID_LEN], vf[PCI_ID_LEN];
        /* a name too long for a PCI id is no PCI function: skipped, never cut */
        if (str_fmt(vf, sizeof(vf), "%s", l.names[i]) < 0 ||
            inventory_nvidia_iface(fs, vf, &nv) < 0 ||
            inventory_physfn(fs, vf, pf, sizeof(pf)) < 0) {
            continue;
        }
        size_t g;
        for (g = 0; g < *n && strcmp((*out)[g].bdf, pf); g++) {
        }
        if (g == *n) {
            if ((r = GROW(*out, *n, 1)) < 0) {
                break;
            }
            memset(&(*out)[g], 0, sizeof((*out)[g]));
            memcpy((*out)[g].bdf, pf, sizeof(pf));
            (*n)++;
        }
        struct nvidia_gpu *G = &(*out)[g];
        if ((r = GROW(G->vfs, G->nvfs, 1)) < 0) {
            nvidia_iface_free(&nv);
            break;
        }
        memcpy(G->vfs[G->nvfs++], vf, sizeof(vf));
        if (nv.current) {
            if ((r = GROW(G->used, G->nused, 1)) == 0) {
                G->used[G->nused++] = (struct vf_holder){.type = nv.current};
                memcpy(G->used[G->nused - 1].bdf, vf, sizeof(vf));
            }
        } else if (!G->free_bdf[0]) {
            G->free_vf = nv; /* the GPU owns its list now */
            nv.creatable = NULL;
            memcpy(G->free_bdf, vf, sizeof(vf));
        }
        nvidia_iface_free(&nv);
    }
    hostfs_list_free(&l);
    if (r < 0) {
        inventory_nvidia_gpus_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return r;
}

static void inventory_nvidia_gpus_free_one(struct nvidia_gpu *g) {
    free(g->vfs);
    free(g->used);
    nvidia_iface_free(&g->free_vf);
}

void inventory_nvidia_gpus_free(struct nvidia_gpu *gpus, size_t n) {
    for (size_t g = 0; gpus && g < n; g++) {
        inventory_nvidia_gpus_free_one(&gpus[g]);
    }
    free(gpus);
}

int inventory_vf_reset(const struct hostfs *fs, const char *bdf) {
    char path[PATH_MAX];
    int r = str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/nvidia/current_vgpu_type", bdf);
    return r < 0 ? r : hostfs_write_str(fs, path, "0");
}

unsigned inventory_nvidia_driver_major(const struct hostfs *fs) {
    char buf[32];
    ssize_t n = hostfs_read(fs, SYS_NVIDIA_VERSION, buf, sizeof(buf) - 1);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    return (unsigned)strtoul(buf, NULL, 10);
}

static bool nvidia_gpu_names(const struct nvidia_gpu *g, const char *bdf) {
    bool named = !strcmp(g->bdf, bdf);
    for (size_t v = 0; v < g->nvfs && !named; v++) {
        named = !strcmp(g->vfs[v], bdf);
    }
    return named;
}

size_t nvidia_gpus_keep(struct nvidia_gpu *gpus, size_t n, const char *bdf) {
    size_t kept = 0;
    for (size_t g = 0; g < n; g++) {
        if (!kept && nvidia_gpu_names(&gpus[g], bdf)) {
            struct nvidia_gpu keep = gpus[g];
            gpus[g] = gpus[0];
            gpus[0] = keep;
            kept = 1;
        }
    }
    /* the others are freed now: the caller frees kept entries with the new count */
    for (size_t g = kept; g < n; g++) {
        inventory_nvidia_gpus_free_one(&gpus[g]);
    }
    return kept;
}
