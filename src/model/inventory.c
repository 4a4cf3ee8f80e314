#include "inventory.h"

#include "cleanup.h"
#include "config.h"
#include "hostpaths.h"
#include "pveconf.h"
#include "sectioncfg.h"
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void inventory_free(struct host *h) {
    for (size_t i = 0; i < h->nparents; i++) {
        free(h->parents[i].types);
    }
    free(h->parents);
    free(h->gpus);
    free(h->defs);
    free(h->mdevs);
    warn_free(&h->warnings);
    memset(h, 0, sizeof(*h));
}

int inventory_physfn(const struct hostfs *fs, const char *bdf, char *pf, size_t size) {
    char path[PATH_MAX];
    int r = str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/physfn", bdf);
    if (r < 0) {
        return r;
    }
    r = hostfs_link_basename(fs, path, pf, size);
    if (r == -ENOENT || r == -EINVAL) {
        return str_fmt(pf, size, "%s", bdf);
    }
    return r;
}

size_t inv_find_parent(const struct host *h, const char *bdf) {
    for (size_t i = 0; i < h->nparents; i++) {
        if (!strcmp(h->parents[i].bdf, bdf)) {
            return i;
        }
    }
    return NO_INDEX;
}

size_t inv_find_mdev(const struct host *h, const char *uuid) {
    for (size_t i = 0; i < h->nmdevs; i++) {
        if (!strcmp(h->mdevs[i].uuid, uuid)) {
            return i;
        }
    }
    return NO_INDEX;
}

const struct inv_typedef *inv_def(const struct host *h, const struct inv_type *t) {
    return &h->defs[t->def];
}

const struct inv_type *inv_parent_type(const struct host *h, size_t parent, const char *query) {
    const struct inv_parent *p = &h->parents[parent];
    /* An exact sysfs id wins over a name that happens to match. */
    for (size_t i = 0; i < p->ntypes; i++) {
        if (!strcmp(h->defs[p->types[i].def].id, query)) {
            return &p->types[i];
        }
    }
    for (size_t i = 0; i < p->ntypes; i++) {
        const struct inv_typedef *d = &h->defs[p->types[i].def];
        if (vgpu_type_matches(query, d->id, d->name)) {
            return &p->types[i];
        }
    }
    return NULL;
}

const struct inv_typedef *inv_gpu_typedef(const struct host *h, size_t gpu, const char *type_id) {
    for (size_t i = 0; i < h->ndefs; i++) {
        if (h->defs[i].gpu == gpu && !strcmp(h->defs[i].id, type_id)) {
            return &h->defs[i];
        }
    }
    return NULL;
}

static bool is_nvidia(unsigned vendor, const char *driver) {
    return vendor == 0x10de || !strcmp(driver, "nvidia");
}

bool inv_gpu_is_nvidia(const struct host *h, size_t gpu) {
    return is_nvidia(h->gpus[gpu].vendor, h->gpus[gpu].driver);
}

/* One id file ("0x10de\n") as 4 lowercase hex digits; "" when missing or not an id. */
static void
read_pci_id_file(const struct hostfs *fs, const char *bdf, const char *name, char *out) {
    char path[PATH_MAX], buf[16];
    out[0] = '\0';
    ssize_t n;
    if (str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/%s", bdf, name) < 0 ||
        (n = hostfs_read(fs, path, buf, sizeof(buf) - 1)) <= 0) {
        return;
    }
    buf[n] = '\0';
    const char *p = strncmp(buf, "0x", 2) ? buf : buf + 2;
    size_t len = strspn(p, "0123456789abcdefABCDEF");
    if (len == 4 && (p[4] == '\0' || p[4] == '\n')) {
        for (size_t i = 0; i < 4; i++) {
            out[i] = (char)tolower((unsigned char)p[i]);
        }
        out[4] = '\0';
    }
}

/* vendor id and bound driver of a PCI device */
static void pci_identity(
    const struct hostfs *fs, const char *bdf, unsigned *vendor, char *driver, size_t size
) {
    char path[PATH_MAX], id[5];
    read_pci_id_file(fs, bdf, "vendor", id);
    *vendor = (unsigned)strtoul(id, NULL, 16);
    driver[0] = '\0';
    if (str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/driver", bdf) == 0 &&
        hostfs_link_basename(fs, path, driver, size) < 0) {
        driver[0] = '\0';
    }
}

bool inventory_pci_is_nvidia(const struct hostfs *fs, const char *bdf) {
    char pf[16], driver[32];
    unsigned vendor;
    if (inventory_physfn(fs, bdf, pf, sizeof(pf)) < 0) {
        return false;
    }
    pci_identity(fs, pf, &vendor, driver, sizeof(driver));
    return is_nvidia(vendor, driver);
}

int inventory_pci_ident(const struct hostfs *fs, const char *bdf, struct pci_ident *out) {
    char path[PATH_MAX], group[32];
    read_pci_id_file(fs, bdf, "vendor", out->vendor);
    read_pci_id_file(fs, bdf, "device", out->device);
    read_pci_id_file(fs, bdf, "subsystem_vendor", out->subsys_vendor);
    read_pci_id_file(fs, bdf, "subsystem_device", out->subsys_device);
    out->iommu_group = -1;
    if (str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/iommu_group", bdf) == 0 &&
        hostfs_link_basename(fs, path, group, sizeof(group)) == 0) {
        char *end;
        long g = strtol(group, &end, 10);
        out->iommu_group = *end || end == group || g < 0 ? -1 : g;
    }
    return out->vendor[0] && out->device[0] ? 0 : -ENODEV;
}

/* Is available_instances of this type one the caller asked for (host.avail_only)? */
static bool avail_wanted(struct host *h, const struct inv_typedef *d) {
    for (size_t i = 0; h->avail_only && i < h->navail_only; i++) {
        if (!strcmp(d->id, h->avail_only[i]) ||
            vgpu_type_matches(h->avail_only[i], d->id, d->name)) {
            return true;
        }
    }
    return !h->avail_only;
}

/* tdirfd: the parent's mdev_supported_types directory. */
static int load_typedef(
    const struct hostfs *fs, struct host *h, size_t gpu, int tdirfd, const char *id, size_t *def
) {
    const struct inv_typedef *known = inv_gpu_typedef(h, gpu, id);
    if (known) {
        *def = (size_t)(known - h->defs);
        return 0;
    }
    if (GROW(h->defs, h->ndefs, 1) < 0) {
        return -ENOMEM;
    }
    struct inv_typedef *d = &h->defs[h->ndefs];
    memset(d, 0, sizeof(*d));
    d->gpu = gpu;
    snprintf(d->id, sizeof(d->id), "%s", id);
    char path[PATH_MAX];
    /* name and description are optional in the ABI (the kernel's mtty sample has neither). */
    if (str_fmt(path, sizeof(path), "%s/name", id) == 0 &&
        hostfs_read_at(fs, tdirfd, path, d->name, sizeof(d->name)) < 0) {
        d->name[0] = '\0';
    }
    if (str_fmt(path, sizeof(path), "%s/description", id) == 0 &&
        hostfs_read_at(fs, tdirfd, path, d->description, sizeof(d->description)) < 0) {
        d->description[0] = '\0';
    }
    /* device_api is for listing types (types --dumpjson): a partial model reads only the asked
     * types' */
    if (avail_wanted(h, d) && str_fmt(path, sizeof(path), "%s/device_api", id) == 0 &&
        hostfs_read_at(fs, tdirfd, path, d->device_api, sizeof(d->device_api)) < 0) {
        d->device_api[0] = '\0';
    }
    /* A name or description with control bytes is no NVIDIA text: keep it, shown escaped. */
    char *texts[] = {d->name, d->description, d->device_api};
    size_t sizes[] = {sizeof(d->name), sizeof(d->description), sizeof(d->device_api)};
    for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
        if (str_has_ctl(texts[i], false)) {
            _cleanup_free_ char *esc = str_escape_ctl(texts[i], strlen(texts[i]), false);
            warn_add(
                &h->warnings, "type %s of %s has control bytes in its sysfs text: %s", id,
                h->gpus[gpu].bdf, esc ? esc : "?"
            );
            if (!esc || str_fmt(texts[i], sizes[i], "%s", esc) < 0) {
                texts[i][0] = '\0';
            }
        }
    }
    vgpu_type_describe(d->name, d->description, &d->info);
    if (d->info.fb_mib > h->gpus[gpu].fb_mib && !d->info.mig) {
        h->gpus[gpu].fb_mib = d->info.fb_mib;
    }
    *def = h->ndefs++;
    return 0;
}

static int load_mdevs_of_parent(const struct hostfs *fs, struct host *h, size_t parent) {
    char dir[PATH_MAX], path[PATH_MAX];
    int r = str_fmt(dir, sizeof(dir), SYS_PCI_DEVICES "/%s", h->parents[parent].bdf);
    if (r < 0) {
        return r;
    }
    struct hostfs_list l;
    r = hostfs_list(fs, dir, &l);
    if (r < 0) {
        return r;
    }
    for (size_t i = 0; i < l.n && r == 0; i++) {
        if (!uuid_is_canonical(l.names[i])) {
            continue;
        }
        struct inv_mdev m = {.parent = parent};
        snprintf(m.uuid, sizeof(m.uuid), "%s", l.names[i]);
        snprintf(m.parent_bdf, sizeof(m.parent_bdf), "%s", h->parents[parent].bdf);
        if (str_fmt(path, sizeof(path), "%s/%s/mdev_type", dir, m.uuid) < 0 ||
            hostfs_link_basename(fs, path, m.type_id, sizeof(m.type_id)) < 0) {
            warn_add(
                &h->warnings, "mdev %s on %s has no readable mdev_type link; ignored", m.uuid,
                m.parent_bdf
            );
            continue;
        }
        m.owned = mdev_uuid_parse(m.uuid, &m.index, &m.vmid);
        r = GROW(h->mdevs, h->nmdevs, 1);
        if (r == 0) {
            h->mdevs[h->nmdevs++] = m;
        }
    }
    hostfs_list_free(&l);
    return r;
}

/* Read a type's available_instances into t (a warning, not a failure, when unreadable). */
static int read_available(
    const struct hostfs *fs, struct host *h, int tdirfd, const char *parent, const char *id,
    struct inv_type *t
) {
    char path[PATH_MAX];
    int r = str_fmt(path, sizeof(path), "%s/available_instances", id);
    if (r == 0) {
        r = hostfs_read_long_at(fs, tdirfd, path, &t->available);
    }
    if (r == -ENOENT) {
        return r; /* no such type here */
    }
    if (r < 0 || t->available < 0) {
        t->available_err = r < 0 ? r : -EINVAL;
        t->available = -1;
        warn_add(
            &h->warnings,
            "cannot read /sys/bus/pci/devices/%s/mdev_supported_types/%s (%s); treating it "
            "as 0 available",
            parent, path, strerror(-t->available_err)
        );
    }
    return 0;
}

/* A type directory name we can use as a path component and print: the kernel names them
 * "<driver>-<id>"; anything else (control bytes, over-long) is skipped with a warning. */
static bool type_dir_name_ok(struct host *h, const char *bdf, const char *name) {
    if (strlen(name) < sizeof(((struct inv_typedef *)0)->id) && !str_has_ctl(name, false)) {
        return true;
    }
    _cleanup_free_ char *esc = str_escape_ctl(name, strlen(name), false);
    warn_add(
        &h->warnings, "%s offers a type named '%s', which is no usable type id; skipped", bdf,
        esc ? esc : "?"
    );
    return false;
}

/* The type list of a VF sibling already loaded (VFs of one GPU offer the same types). */
static const struct inv_parent *loaded_sibling(const struct host *h, size_t gpu) {
    for (size_t i = 0; i < h->nparents; i++) {
        if (h->parents[i].gpu == gpu && h->parents[i].is_vf) {
            return &h->parents[i];
        }
    }
    return NULL;
}

/* trust_sibling: take the type list of an already loaded VF of the same GPU instead of listing
 * (VFs of one GPU offer the same types); a type missing here means: list after all. */
static int load_parent(
    const struct hostfs *fs, struct host *h, size_t gpu, const char *bdf, bool is_vf,
    bool scan_mdevs, bool trust_sibling
) {
    char path[PATH_MAX];
    int r = str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/mdev_supported_types", bdf);
    if (r < 0) {
        return r;
    }
    int tdirfd = hostfs_dir_open(fs, path);
    if (tdirfd == -ENOENT || tdirfd == -ENOTDIR) {
        return 0; /* not an mdev parent (e.g. a VF without vGPU enabled) */
    }
    if (tdirfd < 0) {
        return tdirfd;
    }
    struct hostfs_list l = {0};
    size_t *sib_defs = NULL, ntypes = 0;
    const struct inv_parent *sib = is_vf && trust_sibling ? loaded_sibling(h, gpu) : NULL;
    if (sib) {
        ntypes = sib->ntypes;
        if (!(sib_defs = malloc((ntypes ? ntypes : 1) * sizeof(*sib_defs)))) {
            hostfs_dir_close(tdirfd);
            return -ENOMEM;
        }
        for (size_t i = 0; i < ntypes; i++) {
            sib_defs[i] = sib->types[i].def;
        }
    } else if ((r = hostfs_list_at(fs, tdirfd, ".", &l)) < 0) {
        hostfs_dir_close(tdirfd);
        return r;
    } else {
        ntypes = l.n;
    }
    bool mismatch = false;
    struct inv_parent p = {.gpu = gpu, .is_vf = is_vf};
    snprintf(p.bdf, sizeof(p.bdf), "%s", bdf);
    if (!(p.types = calloc(ntypes ? ntypes : 1, sizeof(*p.types)))) {
        r = -ENOMEM;
    }
    for (size_t i = 0; r == 0 && i < ntypes; i++) {
        struct inv_type *t = &p.types[p.ntypes];
        if (sib_defs) {
            t->def = sib_defs[i];
        } else if (!type_dir_name_ok(h, bdf, l.names[i])) {
            continue;
        } else if ((r = load_typedef(fs, h, gpu, tdirfd, l.names[i], &t->def)) < 0) {
            break;
        }
        if (!avail_wanted(h, &h->defs[t->def])) {
            *t = (struct inv_type){.def = t->def, .available = -1, .unread = true};
            h->partial = true;
            p.ntypes++;
            continue;
        }
        r = read_available(fs, h, tdirfd, bdf, h->defs[t->def].id, t);
        if (r == -ENOENT) {
            r = 0;
            mismatch = sib_defs != NULL; /* else it vanished between listing and reading */
            if (mismatch) {
                break;
            }
            continue;
        }
        p.ntypes++;
    }
    hostfs_list_free(&l);
    hostfs_dir_close(tdirfd);
    free(sib_defs);
    if (r == 0 && !mismatch) {
        r = GROW(h->parents, h->nparents, 1);
    }
    if (r < 0 || mismatch) {
        free(p.types);
        return r < 0 ? r : load_parent(fs, h, gpu, bdf, is_vf, scan_mdevs, false);
    }
    h->parents[h->nparents++] = p;
    h->gpus[gpu].nparents++;
    return scan_mdevs ? load_mdevs_of_parent(fs, h, h->nparents - 1) : 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

/* scan_mdevs: find the GPU's mdevs in its parents' directories (load_all uses the bus list). */
static int load_gpu(
    const struct hostfs *fs, struct host *h, const char *pci_bdf, size_t *gpu, bool scan_mdevs,
    struct pvh_err *e
) {
    char pf[16], dir[PATH_MAX];
    /* a VF loaded with its physical function: no need to ask sysfs again */
    size_t known = inv_find_parent(h, pci_bdf);
    if (known != NO_INDEX) {
        if (gpu) {
            *gpu = h->parents[known].gpu;
        }
        return 0;
    }
    int r = inventory_physfn(fs, pci_bdf, pf, sizeof(pf));
    if (r < 0) {
        return err_set(e, r, "cannot resolve PCI device %s: %s", pci_bdf, strerror(-r));
    }
    for (size_t i = 0; i < h->ngpus; i++) {
        if (!strcmp(h->gpus[i].bdf, pf)) {
            if (gpu) {
                *gpu = i;
            }
            return 0;
        }
    }
    if ((r = str_fmt(dir, sizeof(dir), SYS_PCI_DEVICES "/%s", pf)) < 0) {
        return err_set(e, r, "PCI id %s is too long", pf);
    }
    if (hostfs_exists(fs, dir) < 0) {
        err_set(e, -ENODEV, "PCI device %s does not exist on this host", pf);
        err_hint(e, "check the id with 'lspci -D' and 'pve-vgpu-hook types'");
        return -ENODEV;
    }
    if ((r = GROW(h->gpus, h->ngpus, 1)) < 0) {
        return err_set(e, r, "out of memory");
    }
    size_t g = h->ngpus++;
    struct inv_gpu *G = &h->gpus[g];
    memset(G, 0, sizeof(*G));
    snprintf(G->bdf, sizeof(G->bdf), "%s", pf);
    pci_identity(fs, pf, &G->vendor, G->driver, sizeof(G->driver));
    if ((r = load_parent(fs, h, g, pf, false, scan_mdevs, true)) < 0) {
        return err_set(e, r, "cannot read the mdev types of %s: %s", pf, strerror(-r));
    }
    /* SR-IOV: virtfnN links name the VFs; their order by address is their order on the GPU. */
    struct hostfs_list l;
    int dirfd = hostfs_dir_open(fs, dir);
    if (dirfd >= 0 && hostfs_list_at(fs, dirfd, ".", &l) == 0) {
        char(*vfs)[16] = calloc(l.n ? l.n : 1, sizeof(*vfs));
        size_t nvf = 0;
        for (size_t i = 0; vfs && i < l.n; i++) {
            if (strncmp(l.names[i], "virtfn", 6) != 0 ||
                hostfs_link_basename_at(dirfd, l.names[i], vfs[nvf], sizeof(vfs[0])) < 0) {
                continue;
            }
            nvf++;
        }
        hostfs_list_free(&l);
        hostfs_dir_close(dirfd);
        dirfd = -1;
        if (!vfs) {
            return err_set(e, -ENOMEM, "out of memory");
        }
        qsort(vfs, nvf, sizeof(*vfs), cmp_str);
        for (size_t i = 0; i < nvf && r == 0; i++) {
            r = load_parent(fs, h, g, vfs[i], true, scan_mdevs, true);
        }
        free(vfs);
        if (r < 0) {
            return err_set(e, r, "cannot read the virtual functions of %s: %s", pf, strerror(-r));
        }
    }
    hostfs_dir_close(dirfd);
    if (gpu) {
        *gpu = g;
    }
    return 0;
}

int inventory_load_gpu(
    const struct hostfs *fs, struct host *h, const char *pci_bdf, size_t *gpu, struct pvh_err *e
) {
    return load_gpu(fs, h, pci_bdf, gpu, true, e);
}

/* Add the mdevs on the bus whose parents are in the model; warn about dangling links
 * (mdevctl 1.2 fails on one; we skip it). */
static int load_bus_mdevs(const struct hostfs *fs, struct host *h) {
    struct inv_mdev *all = NULL;
    size_t n = 0;
    int r = mdev_list(fs, 0, &all, &n, &h->warnings);
    for (size_t i = 0; r == 0 && i < n; i++) {
        all[i].parent = inv_find_parent(h, all[i].parent_bdf);
        if (all[i].parent == NO_INDEX || inv_find_mdev(h, all[i].uuid) != NO_INDEX) {
            continue;
        }
        if ((r = GROW(h->mdevs, h->nmdevs, 1)) == 0) {
            h->mdevs[h->nmdevs++] = all[i];
        }
    }
    free(all);
    return r;
}

/* One entry of /sys/class/mdev_bus that is a PCI device we can model; else a warning. */
static bool usable_parent(struct host *h, const char *name) {
    char norm[PCI_ID_LEN];
    if (pci_id_normalize(name, norm, sizeof(norm)) == 0 && strcmp(norm, name) == 0) {
        return true;
    }
    _cleanup_free_ char *esc = str_escape_ctl(name, strlen(name), false);
    warn_add(
        &h->warnings,
        "mdev parent '%s' is not a PCI device (e.g. the kernel's mtty sample); skipped",
        esc ? esc : "?"
    );
    return false;
}

int inventory_load_all(const struct hostfs *fs, struct host *h, struct pvh_err *e) {
    struct hostfs_list l;
    int r = hostfs_list(fs, SYS_MDEV_BUS_CLASS, &l);
    if (r == -ENOENT) {
        return 0; /* no mdev parent at all: an empty host, not an error */
    }
    if (r < 0) {
        return err_set(e, r, "cannot list %s: %s", SYS_MDEV_BUS_CLASS, strerror(-r));
    }
    /* GPUs already loaded (with their mdevs) stay as they are. One parent that cannot be read
     * is a warning: the rest of the host still works. */
    size_t known = h->ngpus;
    for (size_t i = 0; i < l.n; i++) {
        struct pvh_err ge;
        if (!usable_parent(h, l.names[i])) {
            continue;
        }
        r = load_gpu(fs, h, l.names[i], NULL, known > 0, &ge);
        if (r == -ENOMEM) {
            hostfs_list_free(&l);
            return err_set(e, r, "out of memory");
        }
        if (r == -ENODEV) {
            warn_add(
                &h->warnings, "%s/%s is a dangling link (its device is gone); skipped",
                SYS_MDEV_BUS_CLASS, l.names[i]
            );
        } else if (r < 0) {
            warn_add(&h->warnings, "%s; skipped", ge.msg);
        }
    }
    hostfs_list_free(&l);
    if (known == 0 && (r = load_bus_mdevs(fs, h)) < 0) {
        return err_set(e, r, "cannot list %s: %s", SYS_MDEV_DEVICES, strerror(-r));
    }
    return 0;
}
