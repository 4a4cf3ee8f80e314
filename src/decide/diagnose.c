#include "diagnose.h"

#include "cleanup.h"
#include "mdev_uuid.h"
#include "pvetask.h"
#include "strutil.h"
#include "vgpulog.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where a line comes from: bits, so a pattern can name several logs. The task log holds both
 * Proxmox's lines and QEMU's stderr ("kvm: ..."). */
enum { SRC_TASK = 1, SRC_KERNEL = 2, SRC_MGR = 4, SRC_VGPUD = 8 };

/* strong: a cause; weak: only a wrapper of the real cause, shown when no strong one is found;
 * warn: not a failure, but worth knowing */
enum diag_kind { KIND_STRONG, KIND_WEAK, KIND_WARN };

struct diag_known {
    const char *code;
    enum diag_kind kind;
    const char *message, *cause, *fix; /* fix: {vmid} and {uuid} are filled in */
};

/* shared/reference/diagnosis.md's catalogue, by what the administrator has to do */
static const struct diag_known diag_known[] = {
    {"no-free-instance", KIND_STRONG,
     "Proxmox could not create the vGPU: the GPU has no free instance of that type",
     "the GPU is full for this type, or it hosts vGPUs of another type or size that exclude "
     "this one",
     "see what the GPU hosts with 'pve-vgpu-hook status' and what fits with 'pve-vgpu-hook "
     "check {vmid}'; stop a VM on that GPU, remove leftovers ('pve-vgpu-hook cleanup'), or "
     "choose another GPU or type"},
    {"no-mdev-types", KIND_STRONG, "the GPU offers no vGPU (mediated device) type, or not this one",
     "the NVIDIA vGPU host driver is not loaded for it, or the type does not exist on it",
     "'pve-vgpu-hook doctor' checks the driver; 'pve-vgpu-hook types' lists each GPU's types"},
    {"vf-unavailable", KIND_STRONG,
     "no virtual function of NVIDIA's vendor interface could take the vGPU",
     "the GPU's SR-IOV virtual functions are off (after every reboot until enabled), all are in "
     "use, or none can create this type now",
     "systemctl enable --now pve-nvidia-sriov@ALL.service; then 'pve-vgpu-hook status' shows "
     "which VFs are in use and 'pve-vgpu-hook check {vmid}' whether one fits"},
    {"manager-refused", KIND_WEAK, "the NVIDIA vGPU manager refused to start the vGPU",
     "nvidia-vgpu-mgr reported an init failure, and its own lines of this start are not in the "
     "journal that was read",
     "read 'journalctl -u nvidia-vgpu-mgr' around the start; make the journal persistent "
     "(mkdir /var/log/journal) so the next failure can be diagnosed"},
    {"manager-not-answering", KIND_STRONG,
     "the vGPU manager did not answer the kernel's start call (timeout)",
     "nvidia-vgpu-mgr is not running, or hangs",
     "systemctl restart nvidia-vgpu-mgr.service ('systemctl status nvidia-vgpu-mgr' shows why it "
     "stopped), then start the VM again"},
    {"device-stuck", KIND_STRONG, "the vGPU is stuck after its VM died (ERESTARTSYS during open)",
     "the NVIDIA driver did not release the vGPU of an earlier run: its starts keep failing",
     "reboot the host: the driver cannot release it otherwise"},
    {"vgpu-open-timeout", KIND_STRONG, "the vGPU manager timed out opening the vGPU",
     "a second vGPU VM on a consumer GPU (vgpu_unlock), or vGPUs of different types or sizes on "
     "one GPU",
     "run one vGPU VM per consumer GPU, or the same type for every vGPU of the GPU ('pve-vgpu-hook "
     "status' shows them)"},
    {"bad-profile-override", KIND_STRONG, "a vgpu_unlock-rs profile override broke the vGPU",
     "an entry of /etc/vgpu_unlock/profile_override.toml the driver rejects (framebuffer, "
     "pci_id, a value too long, or a file that does not parse)",
     "correct or remove the entry of this VM's profile or its [vm.{vmid}] table "
     "('pve-vgpu-hook tune {vmid} --clear' removes ours), then start the VM again"},
    {"missing-uuid", KIND_STRONG, "QEMU started the vGPU without -uuid",
     "qemu-server older than 7.2-4 does not pass -uuid, and the NVIDIA manager needs it",
     "upgrade qemu-server to 7.2-4 or later, or qm set {vmid} --args '-uuid {uuid}' (pve-vgpu-hook "
     "as the VM's hookscript adds it at pre-start)"},
    {"not-vgpu-capable", KIND_STRONG, "the GPU is not a vGPU-capable (VGX) board for the driver",
     "a consumer GPU without a working vgpu_unlock in nvidia-vgpu-mgr's environment",
     "check the LD_PRELOAD drop-in of nvidia-vgpu-mgr.service names an existing "
     "libvgpu_unlock_rs.so ('pve-vgpu-hook doctor'), then systemctl restart nvidia-vgpud "
     "nvidia-vgpu-mgr"},
    {"unlock-not-in-kernel", KIND_STRONG,
     "the NVIDIA kernel module refused the vGPU (NVOS status 0x56)",
     "vgpu_unlock is not in effect in the kernel module",
     "rebuild and install the patched driver for the running kernel ('dkms status'), then reboot"},
    {"multiple-vgpus", KIND_STRONG, "the vGPU type allows one vGPU per VM",
     "the VM has more than one vGPU, and this type does not support several in one VM",
     "give VM {vmid} one vGPU (remove the other hostpciN ...,mdev= entries); with vgpu_unlock: "
     "pve-vgpu-hook tune {vmid} --unlock multi_vgpu_supported=1"},
    {"guest-driver-mismatch", KIND_STRONG,
     "the host disabled the vGPU: the guest's NVIDIA driver is of another branch",
     "the guest driver is older or newer than the host driver supports",
     "install, in VM {vmid}, the guest driver of the host driver's release "
     "(cat /sys/module/nvidia/version on the host)"},
    {"consumer-guest-driver", KIND_STRONG,
     "the guest driver failed on a consumer GPU (blacklisted pages)",
     "the guest driver does not work with RTX 30 consumer cards unlocked for vGPU",
     "use a GPU the driver supports for vGPU; no workaround is known"},
    {"unlock-outdated", KIND_WARN,
     "vgpu_unlock-rs is older than the NVIDIA driver: its overrides are ignored",
     "the driver's structures grew; vgpu_unlock-rs skips what it cannot patch",
     "update vgpu_unlock-rs to a release for this driver, then systemctl restart "
     "nvidia-vgpu-mgr"},
    {"no-vgpu-types", KIND_STRONG, "nvidia-vgpud registered no vGPU type for the GPU",
     "the driver does not support vGPU on this GPU generation, or the unlock is not applied to "
     "nvidia-vgpud",
     "check the driver supports this GPU for vGPU, or the unlock drop-in of nvidia-vgpud.service; "
     "'pve-vgpu-hook doctor' and 'pve-vgpu-hook types' show what the host offers"},
    {"manager-cannot-start", KIND_STRONG, "nvidia-vgpu-mgr could not start (RM client 0x26)",
     "the manager could not use the NVIDIA kernel module (the cause is not confirmed: a driver "
     "whose user space and kernel module differ is the usual suspect)",
     "systemctl status nvidia-vgpu-mgr; check that the module's version (cat "
     "/sys/module/nvidia/version) is the installed driver's, then systemctl restart "
     "nvidia-vgpu-mgr"},
    {"gpu-fell-off-bus", KIND_STRONG, "the GPU fell off the bus (Xid 79)",
     "hardware: power, cooling or firmware", "check the GPU's power and cooling, then reboot"},
    {"hook-refused", KIND_STRONG, "a hookscript refused the start at pre-start",
     "its message is in the task log (pve-vgpu-hook's says why and what to do)",
     "pve-vgpu-hook check {vmid} shows the same decision without starting"},
};

struct diag_pattern {
    const char *code;
    unsigned srcs;
    bool host; /* may match a line not tied to any VM, in the start's time window */
    const char *re;
};

static const struct diag_pattern diag_patterns[] = {
    {"no-free-instance", SRC_TASK, false,
     "could not create mediated device|has no available instances of"},
    {"no-mdev-types", SRC_TASK, false, "does not support mediated devices|has no type '"},
    {"vf-unavailable", SRC_TASK, false,
     "vgpu type '[^']*' not available for|no nvidia sysfs api for|could not set vgpu type to|"
     "could not find a free device for 'hostpci[0-9]+'|already in use by VMID"},
    {"manager-refused", SRC_TASK, false,
     "error getting device from group [0-9]+: Input/output error"},
    {"manager-refused", SRC_KERNEL, false, "start failed\\. status: 0x1([^0-9a-fA-F]|$)"},
    {"manager-not-answering", SRC_KERNEL, false, "start failed\\. status: 0x0 Timeout Occ?ur"},
    {"device-stuck", SRC_KERNEL, false, "ERESTARTSYS received during open"},
    {"vgpu-open-timeout", SRC_TASK, false,
     "error getting device from group [0-9]+: Connection timed out"},
    {"bad-profile-override", SRC_TASK, false, "failed to read device config space: Bad address"},
    {"bad-profile-override", SRC_MGR, false,
     "init_device_instance failed for inst [0-9]+ with error 1 \\(error setting vGPU "
     "configuration information|Failed to apply profile override|Failed to decode config:|"
     "Patching [^ ]+: value '.*' is too long"},
    {"missing-uuid", SRC_MGR, false,
     "Failed to get VM UUID from QEMU command-line 0x57|kvm_plugin_global_init failed with error "
     "0x57"},
    {"missing-uuid", SRC_TASK, false, "failed to get region 0 info: Input/output error"},
    {"not-vgpu-capable", SRC_MGR, false,
     "vGPU is supported only on VGX capable boards|vGPU validation of the GPU failed"},
    {"unlock-not-in-kernel", SRC_MGR, false, "NVOS status 0x56"},
    {"multiple-vgpus", SRC_MGR, false, "multiple vGPUs in a VM not supported"},
    {"guest-driver-mismatch", SRC_MGR, false, "Incompatible Guest/Host drivers"},
    {"consumer-guest-driver", SRC_MGR, false, "Failed to get blacklisted pages:0x56"},
    {"unlock-outdated", SRC_MGR, false,
     "Parameters size for [A-Za-z0-9_]+ was [0-9]+ bytes, expected [0-9]+ bytes"},
    {"no-vgpu-types", SRC_VGPUD, true,
     "GPU not supported by vGPU at PCI Id|failed to send vGPU configuration info to RM: 6"},
    {"manager-cannot-start", SRC_MGR, true, "Failed to initialize RM client: 0x26"},
    {"gpu-fell-off-bus", SRC_KERNEL, true, "NVRM: Xid \\(PCI:[0-9a-fA-F:.]+\\): 79,"},
    {"hook-refused", SRC_TASK, false,
     "hookscript error for [0-9]+ on pre-start|^pve-vgpu-hook: .*error"},
};

/* Known harmless lines: never a cause, never unknown evidence. */
static const char diag_harmless[] =
    "vGPU migration disabled|Could not enable error recovery for the device|Unable to get VM name "
    "from QEMU commandline|already existed, using it\\.|waited [0-9]+ seconds for mediated device "
    "driver finishing clean up|actively clean up mediated device with UUID|vGPU license state:|"
    "(^|[^A-Za-z])ECC([^A-Za-z]|$)";

#define NKNOWN (sizeof(diag_known) / sizeof(diag_known[0]))
#define NPATTERNS (sizeof(diag_patterns) / sizeof(diag_patterns[0]))
#define DIAG_EVIDENCE_MAX 20  /* lines per finding; more are counted, not listed */
#define DIAG_HOST_WINDOW_S 10 /* after the task's end: host-wide lines still of this start */

/* One line to judge. */
struct diag_line {
    unsigned src;
    long long usec;
    const char *text;
    bool tied; /* of this VM (else a host-wide line of the start's window) */
};

/* A manager pid: one vGPU's process, of this VM or of another. */
struct diag_pid {
    long pid;
    bool ours;
};

struct diag_ctx {
    const struct diag_input *in;
    regex_t re[NPATTERNS], harmless;
    size_t ncompiled;
    bool harmless_compiled;
    struct diag_finding found[NKNOWN];
    struct diag_finding task_warn, unknown;
    struct diag_pid *pids;
    size_t npids;
};

static const char *diag_source_name(unsigned src) {
    switch (src) {
    case SRC_KERNEL:
        return "kernel";
    case SRC_MGR:
        return "nvidia-vgpu-mgr";
    case SRC_VGPUD:
        return "nvidia-vgpud";
    default:
        return "task";
    }
}

/* tmpl with {vmid} and {uuid} (the VM's first mdev UUID) filled in; NULL: out of memory. */
static char *diag_fill(const char *tmpl, unsigned long vmid) {
    char uuid[MDEV_UUID_LEN + 1], *out = NULL;
    size_t size;
    mdev_uuid_for(vmid, 0, uuid);
    FILE *f = open_memstream(&out, &size);
    if (!f) {
        return NULL;
    }
    for (const char *p = tmpl; *p; p++) {
        if (!strncmp(p, "{vmid}", 6)) {
            fprintf(f, "%lu", vmid);
            p += 5;
        } else if (!strncmp(p, "{uuid}", 6)) {
            fputs(uuid, f);
            p += 5;
        } else {
            fputc(*p, f);
        }
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static int diag_add_evidence(struct diag_finding *f, const struct diag_line *l) {
    if (f->nev == DIAG_EVIDENCE_MAX) {
        f->more++;
        return 0;
    }
    struct diag_evidence *grown = realloc(f->ev, (f->nev + 1) * sizeof(*f->ev));
    if (!grown) {
        return -ENOMEM;
    }
    f->ev = grown;
    char *line = strdup(l->text);
    if (!line) {
        return -ENOMEM;
    }
    f->ev[f->nev++] = (struct diag_evidence){diag_source_name(l->src), l->usec, line};
    return 0;
}

static int diag_compile(struct diag_ctx *c) {
    if (regcomp(&c->harmless, diag_harmless, REG_EXTENDED | REG_NOSUB) != 0) {
        return -EINVAL;
    }
    c->harmless_compiled = true;
    for (; c->ncompiled < NPATTERNS; c->ncompiled++) {
        if (regcomp(
                &c->re[c->ncompiled], diag_patterns[c->ncompiled].re, REG_EXTENDED | REG_NOSUB
            )) {
            return -EINVAL; /* a bug in the table above: the unit test compiles every one */
        }
    }
    return 0;
}

static size_t diag_known_index(const char *code) {
    for (size_t i = 0; i < NKNOWN; i++) {
        if (!strcmp(diag_known[i].code, code)) {
            return i;
        }
    }
    abort(); /* every pattern names a known entry: the unit test runs each */
}

/* Is this an error-looking line, evidence of a failure the catalogue does not know? */
static bool diag_looks_failed(const struct diag_line *l) {
    if (l->src == SRC_TASK) {
        return !strncmp(l->text, "kvm:", 4) || !strncmp(l->text, "TASK ERROR:", 11);
    }
    return l->tied && (strcasestr(l->text, "error") || strcasestr(l->text, "fail"));
}

static bool diag_is_task_warning(const struct diag_line *l) {
    return l->src == SRC_TASK && (!strncmp(l->text, "WARN: ", 6) || strstr(l->text, ": warning: "));
}

/* Judge one line: the catalogue's findings, else a warning or unknown evidence. */
static int diag_judge(struct diag_ctx *c, const struct diag_line *l) {
    if (regexec(&c->harmless, l->text, 0, NULL, 0) == 0) {
        return 0;
    }
    bool matched = false;
    for (size_t i = 0; i < NPATTERNS; i++) {
        const struct diag_pattern *p = &diag_patterns[i];
        if (!(p->srcs & l->src) || (!l->tied && !p->host) ||
            regexec(&c->re[i], l->text, 0, NULL, 0) != 0) {
            continue;
        }
        int r = diag_add_evidence(&c->found[diag_known_index(p->code)], l);
        if (r < 0) {
            return r;
        }
        matched = true;
        break; /* one finding per line */
    }
    if (matched) {
        return 0;
    }
    if (diag_is_task_warning(l)) {
        return diag_add_evidence(&c->task_warn, l);
    }
    return diag_looks_failed(l) ? diag_add_evidence(&c->unknown, l) : 0;
}

/* The owner of a manager pid: 1 this VM, 0 another, -1 not known. */
static int diag_pid_owner(const struct diag_ctx *c, long pid) {
    for (size_t i = 0; i < c->npids; i++) {
        if (c->pids[i].pid == pid) {
            return c->pids[i].ours;
        }
    }
    return -1;
}

/* From now on, pid is the vGPU process of this VM (ours) or of another. */
static int diag_pid_set(struct diag_ctx *c, long pid, bool ours) {
    for (size_t i = 0; i < c->npids; i++) {
        if (c->pids[i].pid == pid) {
            c->pids[i].ours = ours;
            return 0;
        }
    }
    struct diag_pid *grown = realloc(c->pids, (c->npids + 1) * sizeof(*c->pids));
    if (!grown) {
        return -ENOMEM;
    }
    c->pids = grown;
    c->pids[c->npids++] = (struct diag_pid){pid, ours};
    return 0;
}

static bool diag_uuid_ours(const struct diag_ctx *c, const char *uuid) {
    unsigned index;
    unsigned long vmid;
    return mdev_uuid_parse(uuid, &index, &vmid) && vmid == c->in->vmid;
}

/* Whose is a journal line: 1 this VM's, 0 another's, -1 no VM's (host-wide). */
static int diag_owner(struct diag_ctx *c, const struct journal_entry *je, int *err) {
    char uuid[VGPULOG_UUID_SIZE];
    unsigned long vmid;
    *err = 0;
    if (je->src == JOURNAL_VGPUD) {
        return -1;
    }
    if (je->src == JOURNAL_VGPU_MGR) {
        int ours = -1;
        if (vgpulog_start_call_uuid(je->msg, uuid)) {
            ours = diag_uuid_ours(c, uuid);
        } else if (vgpulog_unlock_vmid(je->msg, &vmid)) {
            ours = vmid == c->in->vmid;
        }
        if (ours >= 0 && je->pid > 0) {
            *err = diag_pid_set(c, je->pid, ours);
        }
        return ours >= 0 ? ours : je->pid > 0 ? diag_pid_owner(c, je->pid) : -1;
    }
    if (vgpulog_kernel_uuid(je->msg, uuid) || vgpulog_any_uuid(je->msg, uuid)) {
        return diag_uuid_ours(c, uuid);
    }
    for (size_t i = 0; i < c->in->npcis; i++) {
        if (vgpulog_names_pci(je->msg, c->in->pcis[i])) {
            return 1;
        }
    }
    return -1;
}

/* journal_source -> SRC_* */
static const unsigned diag_journal_srcs[] = {SRC_KERNEL, SRC_MGR, SRC_VGPUD};

bool diagnose_entry_is(const char *code, const struct journal_entry *je) {
    bool hit = false;
    for (size_t i = 0; i < NPATTERNS && !hit; i++) {
        const struct diag_pattern *p = &diag_patterns[i];
        regex_t re;
        if (strcmp(p->code, code) || !(p->srcs & diag_journal_srcs[je->src]) ||
            regcomp(&re, p->re, REG_EXTENDED | REG_NOSUB)) {
            continue;
        }
        hit = regexec(&re, je->msg, 0, NULL, 0) == 0;
        regfree(&re);
    }
    return hit;
}

static int diag_journal(struct diag_ctx *c) {
    const unsigned *srcs = diag_journal_srcs;
    const struct diag_input *in = c->in;
    long long start_us = in->start * 1000000LL;
    long long host_end_us =
        ((in->ended ? in->end : in->start + 600) + DIAG_HOST_WINDOW_S) * 1000000LL;
    for (size_t i = 0; i < in->njournal; i++) {
        const struct journal_entry *je = &in->journal[i];
        if ((long long)je->usec < start_us) {
            continue; /* an earlier start's */
        }
        int err, owner = diag_owner(c, je, &err);
        if (err < 0) {
            return err;
        }
        if (owner == 0 || (owner < 0 && (long long)je->usec > host_end_us)) {
            continue;
        }
        struct diag_line l = {srcs[je->src], (long long)je->usec, je->msg, owner == 1};
        int r = diag_judge(c, &l);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/* The task log's lines (all this VM's); without the log, its status stands for it. */
static int diag_task(struct diag_ctx *c) {
    const struct diag_input *in = c->in;
    _cleanup_free_ char *status_line = NULL;
    const char *text = in->log;
    if (!text) {
        if (in->status && !pve_task_status_ok(in->status) &&
            asprintf(&status_line, "TASK ERROR: %s", in->status) < 0) {
            return -ENOMEM;
        }
        text = status_line ? status_line : "";
    }
    const char *pos = text, *line;
    size_t len;
    while (str_next_line(&pos, &line, &len)) {
        _cleanup_free_ char *copy = strndup(line, len);
        if (!copy) {
            return -ENOMEM;
        }
        struct diag_line l = {SRC_TASK, -1, copy, true};
        int r = diag_judge(c, &l);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

static void diag_finding_free(struct diag_finding *f) {
    for (size_t i = 0; i < f->nev; i++) {
        free(f->ev[i].line);
    }
    free(f->ev);
    free(f->fix);
    memset(f, 0, sizeof(*f));
}

/* Move f (its texts set here) to the end of list; f is emptied. */
static int diag_move(
    struct diag_finding *f, const char *code, const char *message, const char *cause,
    const char *fix, unsigned long vmid, struct diag_finding **list, size_t *n
) {
    struct diag_finding *grown = realloc(*list, (*n + 1) * sizeof(**list));
    if (!grown) {
        return -ENOMEM;
    }
    *list = grown;
    f->code = code;
    f->message = message;
    f->cause = cause;
    if (!(f->fix = diag_fill(fix, vmid))) {
        return -ENOMEM;
    }
    (*list)[(*n)++] = *f;
    memset(f, 0, sizeof(*f));
    return 0;
}

static bool diag_has(const struct diag_finding *f) {
    return f->nev || f->more;
}

/* Strong findings are the causes; weak ones only without a strong one; unknown evidence only
 * for a failed task without either. */
static int diag_collect(struct diag_ctx *c, struct diag_result *r) {
    unsigned long vmid = c->in->vmid;
    bool strong = false;
    int rc = 0;
    for (size_t i = 0; i < NKNOWN; i++) {
        strong |= diag_known[i].kind == KIND_STRONG && diag_has(&c->found[i]);
    }
    for (size_t i = 0; rc == 0 && i < NKNOWN; i++) {
        const struct diag_known *k = &diag_known[i];
        bool cause = k->kind == KIND_STRONG || (k->kind == KIND_WEAK && !strong);
        if (!diag_has(&c->found[i]) || (!cause && k->kind != KIND_WARN)) {
            continue;
        }
        rc = diag_move(
            &c->found[i], k->code, k->message, k->cause, k->fix, vmid,
            cause ? &r->causes : &r->warnings, cause ? &r->ncauses : &r->nwarnings
        );
    }
    bool failed = c->in->status && !pve_task_status_ok(c->in->status);
    if (rc == 0 && failed && r->ncauses == 0) {
        rc = diag_move(
            &c->unknown, "unknown", "the start failed in a way the catalogue does not know",
            "not in pve-vgpu-hook's catalogue: the evidence shows what the logs say",
            "read the evidence; 'pve-vgpu-hook check {vmid}' and 'pve-vgpu-hook doctor' check "
            "the VM and the host",
            vmid, &r->causes, &r->ncauses
        );
    }
    if (rc == 0 && diag_has(&c->task_warn)) {
        rc = diag_move(
            &c->task_warn, "task-warning", "the start task logged warnings", "",
            "read them; 'pve-vgpu-hook check {vmid}' explains pve-vgpu-hook's own", vmid,
            &r->warnings, &r->nwarnings
        );
    }
    r->outcome = r->ncauses                          ? DIAG_FAILED
                 : pve_task_status_ok(c->in->status) ? DIAG_OK
                                                     : DIAG_UNKNOWN;
    return rc;
}

int diagnose_logs(const struct diag_input *in, struct diag_result *r) {
    struct diag_ctx c = {.in = in};
    memset(r, 0, sizeof(*r));
    int rc = diag_compile(&c);
    if (rc == 0) {
        rc = diag_task(&c);
    }
    if (rc == 0) {
        rc = diag_journal(&c);
    }
    if (rc == 0) {
        rc = diag_collect(&c, r);
    }
    for (size_t i = 0; i < NKNOWN; i++) {
        diag_finding_free(&c.found[i]);
    }
    diag_finding_free(&c.task_warn);
    diag_finding_free(&c.unknown);
    for (size_t i = 0; i < c.ncompiled; i++) {
        regfree(&c.re[i]);
    }
    if (c.harmless_compiled) {
        regfree(&c.harmless);
    }
    free(c.pids);
    if (rc < 0) {
        diag_result_free(r);
    }
    return rc;
}

void diag_result_free(struct diag_result *r) {
    for (size_t i = 0; i < r->ncauses; i++) {
        diag_finding_free(&r->causes[i]);
    }
    for (size_t i = 0; i < r->nwarnings; i++) {
        diag_finding_free(&r->warnings[i]);
    }
    free(r->causes);
    free(r->warnings);
    memset(r, 0, sizeof(*r));
}

const char *diag_outcome_name(enum diag_outcome o) {
    return o == DIAG_OK ? "ok" : o == DIAG_FAILED ? "failed" : "unknown";
}
