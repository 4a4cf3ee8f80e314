#include "readiness.h"
#include "toml.h"
#include "tune.h"

#include "cleanup.h"
#include "clock.h"
#include "config.h"
#include "debver.h"
#include "diagnose.h"
#include "hasync.h"
#include "hostpaths.h"
#include "inventory.h"
#include "managed.h"
#include "mistakes.h"
#include "pveconf.h"
#include "qemu_server.h"
#include "strutil.h"
#include "vmstate.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SYS_IOMMU_GROUPS "/sys/kernel/iommu_groups"
#define SYS_VGPU_VFIO_MODULE "/sys/module/nvidia_vgpu_vfio"
#define PROC_OSRELEASE "/proc/sys/kernel/osrelease"

void readiness_free(struct readiness *r) {
    free(r->problems);
    r->problems = NULL;
    r->nproblems = 0;
}

__attribute__((format(printf, 5, 6))) static int add_problem(
    struct readiness *r, const char *check, const char *subject, const char *fix, const char *fmt,
    ...
) {
    if (GROW(r->problems, r->nproblems, 1) < 0) {
        return -ENOMEM;
    }
    struct readiness_problem *p = &r->problems[r->nproblems++];
    memset(p, 0, sizeof(*p));
    snprintf(p->check, sizeof(p->check), "%s", check);
    str_msg(p->subject, sizeof(p->subject), "%s", subject);
    str_msg(p->fix, sizeof(p->fix), "%s", fix);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->what, sizeof(p->what), fmt, ap);
    va_end(ap);
    return 0;
}

/* A file of a PCI device's sysfs directory, as a number (base 0); -1 when unreadable. */
static long pci_number(const struct hostfs *fs, const char *bdf, const char *file) {
    char path[PATH_MAX], buf[32];
    if (str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/%s", bdf, file) < 0 ||
        hostfs_read(fs, path, buf, sizeof(buf)) <= 0) {
        return -1;
    }
    char *end;
    long v = strtol(buf, &end, 0);
    return *end ? -1 : v;
}

static bool pci_has(const struct hostfs *fs, const char *bdf, const char *file) {
    char path[PATH_MAX];
    return str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/%s", bdf, file) == 0 &&
           hostfs_exists(fs, path) == 0;
}

/* A physical function bound to the nvidia driver. The driver, not the vendor id, decides:
 * only NVIDIA's driver binds "nvidia", and the test kernel's stand-in GPUs carry another id. */
static bool nvidia_pf(const struct hostfs *fs, const char *bdf) {
    char path[PATH_MAX], driver[64];
    return !pci_has(fs, bdf, "physfn") &&
           str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/driver", bdf) == 0 &&
           hostfs_link_basename(fs, path, driver, sizeof(driver)) == 0 && !strcmp(driver, "nvidia");
}

/* The vGPU types a PCI function offers: its mdev types, or its vendor-interface list. */
static size_t types_of(const struct hostfs *fs, const char *bdf) {
    char path[PATH_MAX];
    struct hostfs_list l;
    if (str_fmt(path, sizeof(path), SYS_PCI_DEVICES "/%s/mdev_supported_types", bdf) == 0 &&
        hostfs_list(fs, path, &l) == 0) {
        size_t n = l.n;
        hostfs_list_free(&l);
        return n;
    }
    struct nvidia_iface nv;
    if (inventory_nvidia_iface(fs, bdf, &nv) < 0) {
        return 0;
    }
    size_t n = nv.ncreatable + (nv.current != 0);
    nvidia_iface_free(&nv);
    return n;
}

/* The VFs of a physical function (virtfnN links), and the types one of them offers: the VFs
 * of a GPU share its types, so a type offered by 32 VFs is one type of the GPU. */
static size_t vf_types(const struct hostfs *fs, const char *pf, size_t *nvfs) {
    char dir[PATH_MAX], path[PATH_MAX], vf[PCI_ID_LEN];
    struct hostfs_list l;
    size_t types = 0;
    *nvfs = 0;
    if (str_fmt(dir, sizeof(dir), SYS_PCI_DEVICES "/%s", pf) < 0 || hostfs_list(fs, dir, &l) < 0) {
        return 0;
    }
    for (size_t i = 0; i < l.n; i++) {
        if (!strncmp(l.names[i], "virtfn", 6) &&
            str_fmt(path, sizeof(path), "%s/%s", dir, l.names[i]) == 0 &&
            hostfs_link_basename(fs, path, vf, sizeof(vf)) == 0) {
            (*nvfs)++;
            size_t n = types_of(fs, vf);
            types = n > types ? n : types;
        }
    }
    hostfs_list_free(&l);
    return types;
}

/* Is there an nvidia_vgpu_vfio module for this kernel release (modules.dep lists it)? */
static bool module_for_kernel(const struct hostfs *fs, const char *release) {
    char path[PATH_MAX];
    _cleanup_free_ char *dep = NULL;
    if (!*release || str_fmt(path, sizeof(path), MODULES_DEP_FMT, release) < 0 ||
        hostfs_read_alloc(fs, path, 16 << 20, &dep, NULL) < 0) {
        return false;
    }
    return strstr(dep, "/nvidia-vgpu-vfio.ko") || strstr(dep, "/nvidia_vgpu_vfio.ko");
}

int readiness_explain_gpu(const struct hostfs *fs, const char *bdf, struct readiness_problem *p) {
    char pf[PCI_ID_LEN], release[128] = "";
    memset(p, 0, sizeof(*p));
    if (inventory_physfn(fs, bdf, pf, sizeof(pf)) < 0 || !nvidia_pf(fs, pf)) {
        return -ENOENT;
    }
    size_t nvfs;
    long total = pci_number(fs, pf, "sriov_totalvfs");
    size_t types = types_of(fs, pf) + vf_types(fs, pf, &nvfs);
    snprintf(p->subject, sizeof(p->subject), "%s", pf);
    if (total > 0 && nvfs == 0) {
        snprintf(p->check, sizeof(p->check), "sriov-off");
        snprintf(
            p->what, sizeof(p->what),
            "NVIDIA GPU %s can have %ld SR-IOV virtual functions, but none are enabled (they are "
            "off after every reboot or driver reload)",
            pf, total
        );
        snprintf(
            p->fix, sizeof(p->fix),
            "systemctl enable --now pve-nvidia-sriov@ALL.service (or /usr/lib/nvidia/sriov-manage "
            "-e %s)",
            pf
        );
        return 0;
    }
    if (types > 0) {
        return -ENOENT;
    }
    (void)hostfs_read(fs, PROC_OSRELEASE, release, sizeof(release));
    if (hostfs_exists(fs, SYS_VGPU_VFIO_MODULE) == 0) {
        snprintf(p->check, sizeof(p->check), "no-vgpu-types");
        snprintf(
            p->what, sizeof(p->what),
            "NVIDIA GPU %s is bound to nvidia and nvidia_vgpu_vfio is loaded, but it offers no "
            "vGPU type",
            pf
        );
        snprintf(
            p->fix, sizeof(p->fix),
            "check that nvidia-vgpu-mgr runs ('systemctl status nvidia-vgpu-mgr') and that this "
            "driver branch supports vGPU on this GPU ('journalctl -u nvidia-vgpu-mgr')"
        );
    } else if (!module_for_kernel(fs, release)) {
        snprintf(p->check, sizeof(p->check), "vfio-module-missing");
        str_msg(
            p->what, sizeof(p->what),
            "NVIDIA GPU %s offers no vGPU type: there is no nvidia_vgpu_vfio module for the "
            "running kernel %s",
            pf, release[0] ? release : "(unknown)"
        );
        snprintf(
            p->fix, sizeof(p->fix),
            "build the NVIDIA vGPU driver for this kernel ('dkms autoinstall', with "
            "proxmox-default-headers installed), then 'modprobe nvidia_vgpu_vfio'"
        );
    } else {
        snprintf(p->check, sizeof(p->check), "vfio-module-not-loaded");
        snprintf(
            p->what, sizeof(p->what),
            "NVIDIA GPU %s offers no vGPU type: the nvidia_vgpu_vfio module is not loaded", pf
        );
        snprintf(
            p->fix, sizeof(p->fix),
            "modprobe nvidia_vgpu_vfio (and check 'systemctl status nvidia-vgpu-mgr')"
        );
    }
    return 0;
}

bool readiness_gpus_not_ready(const struct hostfs *fs, struct readiness_problem *why) {
    struct hostfs_list l;
    bool found = false;
    if (hostfs_list(fs, SYS_PCI_DEVICES, &l) < 0) {
        return false;
    }
    /* in doctor's order: the first physical function it would report */
    for (size_t i = 0; i < l.n && !found; i++) {
        found = nvidia_pf(fs, l.names[i]) && readiness_explain_gpu(fs, l.names[i], why) == 0;
    }
    hostfs_list_free(&l);
    return found;
}

/* What the host checks need to know of the GPUs. */
struct gpu_facts {
    bool vendor_iface; /* a VF uses NVIDIA's vendor interface */
    bool no_sriov;     /* a GPU before Ampere (no SR-IOV): its vGPUs need nvidia-vgpud */
};

/* Per NVIDIA GPU: count it and its types, and explain one that offers none. */
static int check_gpus(const struct hostfs *fs, struct readiness *r, struct gpu_facts *gf) {
    struct hostfs_list l;
    memset(gf, 0, sizeof(*gf));
    if (hostfs_list(fs, SYS_PCI_DEVICES, &l) < 0) {
        return 0;
    }
    int rc = 0;
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        const char *bdf = l.names[i];
        if (!nvidia_pf(fs, bdf)) {
            struct nvidia_iface nv;
            if (pci_has(fs, bdf, "physfn") && inventory_nvidia_iface(fs, bdf, &nv) == 0) {
                gf->vendor_iface = true;
                nvidia_iface_free(&nv);
            }
            continue;
        }
        size_t nvfs;
        r->ngpus++;
        gf->no_sriov |= !pci_has(fs, bdf, "sriov_totalvfs");
        r->ntypes += types_of(fs, bdf) + vf_types(fs, bdf, &nvfs);
        struct readiness_problem p;
        if (readiness_explain_gpu(fs, bdf, &p) == 0) {
            rc = add_problem(r, p.check, p.subject, p.fix, "%s", p.what);
        }
    }
    hostfs_list_free(&l);
    return rc;
}

/* Does a process of this name run? (/proc/<pid>/comm) */
static bool process_runs(const struct hostfs *fs, const char *name) {
    struct hostfs_list l;
    bool found = false;
    if (hostfs_list(fs, "/proc", &l) < 0) {
        return false;
    }
    for (size_t i = 0; i < l.n && !found; i++) {
        char path[PATH_MAX], comm[64];
        found = isdigit((unsigned char)l.names[i][0]) &&
                str_fmt(path, sizeof(path), "/proc/%s/comm", l.names[i]) == 0 &&
                hostfs_read(fs, path, comm, sizeof(comm)) > 0 && !strcmp(comm, name);
    }
    hostfs_list_free(&l);
    return found;
}

/* The kernel the node boots next: the newest installed release (in `sort -V` order, which
 * dpkg's comparison gives for Proxmox's 6.8.12-4-pve) that has a kernel image in /boot. */
static void next_kernel(const struct hostfs *fs, char *out, size_t size) {
    struct hostfs_list l;
    out[0] = '\0';
    if (hostfs_list(fs, LIB_MODULES_DIR, &l) < 0) {
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        char path[PATH_MAX];
        if (strlen(l.names[i]) < size && (!out[0] || debver_cmp(l.names[i], out) > 0) &&
            str_fmt(path, sizeof(path), BOOT_VMLINUZ_FMT, l.names[i]) == 0 &&
            hostfs_exists(fs, path) == 0) {
            snprintf(out, size, "%s", l.names[i]);
        }
    }
    hostfs_list_free(&l);
}

/* After an upgrade the node boots a new kernel: without the module built for it, no vGPU
 * starts after the reboot. */
static int check_next_kernel(const struct hostfs *fs, struct readiness *r) {
    char next[sizeof(r->kernel)], fix[256];
    next_kernel(fs, next, sizeof(next));
    if (!r->ngpus || !next[0] || !strcmp(next, r->kernel) || module_for_kernel(fs, next)) {
        return 0;
    }
    str_msg(
        fix, sizeof(fix),
        "dkms autoinstall -k %s (DKMS rebuilds it for new kernels by itself only when the NVIDIA "
        "vGPU driver was installed with --dkms)",
        next
    );
    return add_problem(
        r, "module-next-kernel", next, fix,
        "the kernel the node boots next, %s, has no nvidia_vgpu_vfio module (running: %s): after "
        "the reboot no vGPU can start",
        next, r->kernel[0] ? r->kernel : "(unknown)"
    );
}

#define UNLOCK_OUTDATED_WINDOW_S (24 * 3600)
#define UNLOCK_OUTDATED_MAX 100000 /* journal entries read; the newest matter */

/* vgpu_unlock-rs older than the driver: nvidia-vgpu-mgr logs that a structure's size is not
 * what it expects and the overrides are silently ignored. The last day of its journal. */
static int check_unlock_outdated(const struct hostfs *fs, struct readiness *r) {
    struct journal_entry *je = NULL;
    size_t n = 0;
    bool capped;
    struct pvh_err e;
    unsigned long long since =
        ((unsigned long long)time(NULL) - UNLOCK_OUTDATED_WINDOW_S) * 1000000;
    if (journal_read_vgpu(fs, since, UNLOCK_OUTDATED_MAX, &je, &n, &capped, &e) < 0) {
        return 0; /* no journal to read: nothing to say */
    }
    const struct journal_entry *hit = NULL;
    for (size_t i = 0; i < n; i++) {
        if (je[i].src == JOURNAL_VGPU_MGR && diagnose_entry_is("unlock-outdated", &je[i])) {
            hit = &je[i];
        }
    }
    int rc = 0;
    if (hit) {
        rc = add_problem(
            r, "unlock-outdated", "vgpu_unlock-rs",
            "rebuild vgpu_unlock-rs from a release that matches the driver branch (cargo build "
            "--release), then systemctl restart nvidia-vgpu-mgr.service",
            "vgpu_unlock-rs is older than the NVIDIA driver: its overrides are silently ignored "
            "(nvidia-vgpu-mgr: %s)",
            hit->msg
        );
    }
    journal_entries_free(je, n);
    return rc;
}

/* Guests take their licence times from the host's clock: an unsynchronised one fails licensing. */
static int check_clock(struct readiness *r) {
    bool synced;
    if (clock_synced(&synced) < 0 || synced) {
        return 0;
    }
    return add_problem(
        r, "clock-unsynced", "host",
        "systemctl enable --now chrony (Proxmox VE 8's default), then check 'chronyc tracking'",
        "the host clock is not synchronised (the kernel's NTP status): guests take their time from "
        "it, and vGPU licensing fails on a wrong time"
    );
}

static int check_host(const struct hook_env *env, struct readiness *r, const struct gpu_facts *gf) {
    struct hostfs_list l;
    int rc = 0;
    r->iommu = hostfs_list(env->fs, SYS_IOMMU_GROUPS, &l) == 0 && l.n > 0;
    if (r->iommu) {
        hostfs_list_free(&l);
    } else {
        rc = add_problem(
            r, "iommu-off", "host",
            "turn on VT-d / AMD-Vi in the firmware, add intel_iommu=on to the kernel command line "
            "on Intel (/etc/kernel/cmdline or GRUB_CMDLINE_LINUX), run proxmox-boot-tool refresh "
            "or update-grub, and reboot",
            "the IOMMU is off (%s is empty): no device can be passed to a VM", SYS_IOMMU_GROUPS
        );
    }
    r->vgpu_mgr = process_runs(env->fs, "nvidia-vgpu-mgr");
    if (rc == 0 && r->ngpus && !r->vgpu_mgr) {
        rc = add_problem(
            r, "vgpu-mgr-down", "host", "systemctl enable --now nvidia-vgpu-mgr.service",
            "nvidia-vgpu-mgr is not running: no vGPU can start"
        );
    }
    if (rc == 0 && gf->no_sriov && hostfs_exists(env->fs, SYS_VGPU_VFIO_MODULE) == 0 &&
        !process_runs(env->fs, "nvidia-vgpud")) {
        rc = add_problem(
            r, "vgpud-not-running", "host", "systemctl enable --now nvidia-vgpud.service",
            "nvidia-vgpud is not running: GPUs before Ampere (without SR-IOV) offer no vGPU type "
            "without it"
        );
    }
    char ver[64];
    struct pvh_err e = {0};
    if (rc == 0 && gf->vendor_iface && qsrv_installed(env->fs, ver, sizeof(ver)) == 0 &&
        qsrv_require(ver, QSRV_VENDOR_IFACE, NULL, &e) < 0) {
        rc = add_problem(r, e.reason, "host", e.hint, "%s; this node's VFs use it", e.msg);
    }
    return rc;
}

static int check_settings(const struct hook_env *env, struct readiness *r) {
    struct pvh_config cfg;
    struct pvh_warnings w = {0};
    int rc = 0;
    /* the check `config check` makes, on the live file */
    r->settings_bad = config_load(env, CONFIG_USE_SHOW, &cfg, &w, &r->settings) < 0;
    if (r->settings_bad) {
        rc =
            add_problem(r, "settings", "settings", r->settings.err.hint, "%s", r->settings.err.msg);
    }
    config_free(&cfg);
    warn_free(&w);
    _cleanup_free_ char *why = NULL, *toml = NULL;
    if (readiness_vgpu_unlock(env->fs, &why, &toml) == -ENOMEM) {
        return -ENOMEM;
    }
    const char *const unlock[] = {toml, UNLOCK_CONFIG_TOML};
    for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(unlock); i++) {
        _cleanup_free_ char *text = NULL;
        int r2 = hostfs_read_alloc(env->fs, unlock[i], CONFIG_MAX_BYTES, &text, NULL);
        if (r2 < 0 && r2 != -ENOENT) {
            rc = add_problem(
                r, "unlock-unreadable", unlock[i],
                "make it a readable file of root's; vgpu_unlock-rs fails the vGPU otherwise",
                "%s cannot be read: %s", unlock[i], strerror(-r2)
            );
        }
        if (r2 == 0 && i == 0) { /* profile_override.toml: vgpu_unlock-rs fails on any flaw */
            struct toml_doc d;
            struct pvh_err te = {0};
            struct pvh_warnings tw = {0};
            int bad = toml_parse(text, strlen(text), &d, &te);
            if (bad == 0) {
                bad = unlock_file_check(
                    &d, text, 0, inventory_nvidia_driver_major(env->fs), &tw, &te
                );
                toml_free(&d);
            }
            warn_free(&tw);
            if (bad < 0) {
                rc = add_problem(
                    r, "unlock-invalid", unlock[i],
                    "fix that line; vgpu_unlock-rs fails every vGPU while the file is invalid",
                    "%s: %s", unlock[i], te.msg
                );
            }
        }
    }
    return rc;
}

/* The value of VAR= in a drop-in's text (systemd's Environment=VAR=value), malloc'ed; NULL
 * when absent. */
static char *dropin_env(const char *text, const char *var) {
    size_t vl = strlen(var);
    for (const char *p = strstr(text, var); p; p = strstr(p + 1, var)) {
        if (p[vl] == '=' && (p == text || strchr(" \t\"=", p[-1]))) {
            return strndup(p + vl + 1, strcspn(p + vl + 1, " \t\n\""));
        }
    }
    return NULL;
}

int readiness_vgpu_unlock(const struct hostfs *fs, char **why, char **toml) {
    struct hostfs_list l;
    *why = strdup(
        "nvidia-vgpu-mgr does not preload vgpu_unlock-rs (no LD_PRELOAD of libvgpu_unlock_rs.so "
        "in " VGPU_MGR_DROPIN_DIR "/)"
    );
    *toml = strdup(UNLOCK_OVERRIDE_TOML);
    if (!*why || !*toml) {
        return -ENOMEM;
    }
    if (hostfs_list(fs, VGPU_MGR_DROPIN_DIR, &l) < 0) {
        return 0;
    }
    int found = 0;
    for (size_t i = 0; i < l.n && found >= 0; i++) {
        char path[PATH_MAX];
        _cleanup_free_ char *text = NULL;
        size_t nl = strlen(l.names[i]);
        if (nl < 5 || strcmp(l.names[i] + nl - 5, ".conf") != 0 ||
            str_fmt(path, sizeof(path), VGPU_MGR_DROPIN_DIR "/%s", l.names[i]) < 0 ||
            hostfs_read_alloc(fs, path, CONFIG_MAX_BYTES, &text, NULL) < 0) {
            continue;
        }
        _cleanup_free_ char *so = dropin_env(text, "LD_PRELOAD");
        if (!found && so && strstr(so, "vgpu_unlock")) {
            found = hostfs_exists(fs, so) == 0 ? 1 : 0;
            free(*why);
            if (asprintf(why, "%s preloads %s, which does not exist", path, so) < 0) {
                *why = NULL;
                found = -ENOMEM;
            }
        }
        /* vgpu_unlock-rs reads its overrides from this file instead, when set */
        char *other = dropin_env(text, "VGPU_UNLOCK_PROFILE_OVERRIDE_CONFIG_PATH");
        if (other && other[0] == '/' && !strstr(other, "/../")) {
            free(*toml);
            *toml = other;
        } else {
            free(other);
        }
    }
    hostfs_list_free(&l);
    return found;
}

/* vGPU VMs of this node whose starts will not run this tool (status lists why, per VM). */
static int check_vm_hookscripts(
    const struct hook_env *env, const struct pvh_config *cfg, struct readiness *r
) {
    struct vm_warnings hp;
    int rc = mistakes_node_hookscripts(env, cfg, &hp);
    if (rc < 0 || hp.w.n == 0) {
        return rc;
    }
    char vms[400] = "";
    size_t shown = 0;
    for (; shown < hp.w.n && strlen(vms) < sizeof(vms) - 48; shown++) {
        str_append(
            vms, sizeof(vms), "%sVM %lu (%s)", shown ? ", " : "", hp.vmids[shown],
            warn_code(&hp.w, shown)
        );
    }
    if (shown < hp.w.n) {
        str_append(vms, sizeof(vms), " and %zu more", hp.w.n - shown);
    }
    rc = add_problem(
        r, "vm-hookscript", "VMs",
        "qm set VMID --hookscript " DEFAULT_HOOKSCRIPT " (after 'pve-vgpu-hook setup'); "
        "'pve-vgpu-hook status' says what is wrong with each",
        "%zu vGPU VM%s will not run pve-vgpu-hook at start: %s", hp.w.n, hp.w.n == 1 ? "" : "s", vms
    );
    vm_warnings_free(&hp);
    return rc;
}

/* Records in the settings of VMs that are gone or were replaced by a new VM of that VMID. */
static int
check_stale_records(const struct hook_env *env, const struct pvh_config *cfg, struct readiness *r) {
    struct vm_warnings st;
    int rc = cfg ? records_find_stale(env->fs, cfg, &st) : 0;
    if (!cfg || rc < 0) {
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < st.w.n; i++) {
        char subject[32];
        snprintf(subject, sizeof(subject), "vms.%lu", st.vmids[i]);
        const char *msg = st.w.items[i], *fix = strstr(msg, "; fix: "); /* said below */
        rc = add_problem(
            r, "stale-record", subject,
            "pve-vgpu-hook cleanup (it removes only such records; --dry-run shows them)", "%.*s",
            (int)(fix ? (size_t)(fix - msg) : strlen(msg)), msg
        );
    }
    vm_warnings_free(&st);
    return rc;
}

/* What the settings say about VMs: their hookscripts and stale records. */
static int check_vms(const struct hook_env *env, struct readiness *r) {
    struct pvh_config cfg;
    struct pvh_warnings w = {0};
    struct config_error ce;
    /* a bad file is its own problem */
    bool have_cfg = config_load(env, CONFIG_USE_SHOW, &cfg, &w, &ce) == 0;
    int rc = check_vm_hookscripts(env, have_cfg ? &cfg : NULL, r);
    if (rc == 0) {
        rc = check_stale_records(env, have_cfg ? &cfg : NULL, r);
    }
    if (have_cfg) {
        config_free(&cfg);
    }
    warn_free(&w);
    return rc;
}

/* HA vGPU VMs that HA may recover or relocate to a node whose pre-start must refuse them: no
 * rule of ha-sync, one out of step with the nodes that can start them, or no such node. Asks
 * ha-sync itself (a dry run: nothing written, no lock). */
static int check_ha(const struct hook_env *env, struct readiness *r) {
    struct hasync_problem *p;
    struct pvh_err unknown;
    size_t n;
    int rc = hasync_problems(env, NULL, &p, &n, &unknown);
    if (rc == 0 && unknown.code) {
        rc = add_problem(
            r, "ha-unknown", "HA", "pve-vgpu-hook ha-sync --dry-run says why",
            "cannot tell whether HA may move vGPU VMs to nodes that cannot start them: %s",
            unknown.msg
        );
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char subject[32];
        snprintf(subject, sizeof(subject), "VM %lu", p[i].vmid);
        rc = add_problem(r, p[i].code, subject, p[i].fix, "%s", p[i].message);
    }
    free(p);
    return rc;
}

int readiness_check(const struct hook_env *env, struct readiness *r) {
    memset(r, 0, sizeof(*r));
    node_name(env->fs, r->node, sizeof(r->node));
    (void)hostfs_read(env->fs, PROC_OSRELEASE, r->kernel, sizeof(r->kernel));
    struct gpu_facts gf;
    int rc = check_gpus(env->fs, r, &gf);
    if (rc == 0) {
        rc = check_host(env, r, &gf);
    }
    if (rc == 0) {
        rc = check_next_kernel(env->fs, r);
    }
    if (rc == 0) {
        rc = check_unlock_outdated(env->fs, r);
    }
    if (rc == 0) {
        rc = check_clock(r);
    }
    if (rc == 0) {
        rc = check_settings(env, r);
    }
    if (rc == 0) {
        rc = check_vms(env, r);
    }
    if (rc == 0) {
        rc = check_ha(env, r);
    }
    return rc;
}
