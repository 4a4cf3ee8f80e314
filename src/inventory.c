#include "inventory.h"

#include "cleanup.h"
#include "config.h"
#include "paths.h"
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
    if (str_fmt(path, sizeof(path), "%s/device_api", id) == 0 &&
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

const char *vm_state_name(enum vm_state s) {
    static const char *const names[] = {
        [VM_NOT_OURS] = "not a VMID UUID",
        [VM_STOPPED] = "leftover",
        [VM_RUNNING] = "running",
        [VM_BUSY] = "busy",
    };
    return names[s];
}

bool inv_mdev_is_leftover(const struct inv_mdev *m) {
    return m->owned && m->state == VM_STOPPED;
}

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

void inventory_nvidia_gpus_free(struct nvidia_gpu *gpus, size_t n) {
    for (size_t g = 0; gpus && g < n; g++) {
        free(gpus[g].vfs);
        free(gpus[g].used);
        nvidia_iface_free(&gpus[g].free_vf);
    }
    free(gpus);
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
