#include "bootcheck.h"

#include "bootsim.h"
#include "cleanup.h"
#include "ha.h"
#include "hostpaths.h"
#include "mdev_uuid.h"
#include "plan.h"
#include "sectioncfg.h"
#include "strutil.h"
#include "vmconf.h"
#include "vmstate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bootcheck_free(struct boot_check *c) {
    for (size_t i = 0; i < c->n; i++) {
        warn_free(&c->vms[i].warnings);
    }
    free(c->vms);
    free(c->ha);
    warn_free(&c->warnings);
    memset(c, 0, sizeof(*c));
}

/* The VMs HA manages: pve-manager's startall skips them, HA starts them. */
static int ha_vms(const struct hostfs *fs, struct sectioncfg *ha, struct pvh_warnings *w) {
    struct pvh_err e = {0};
    int r = ha_resources_load(fs, ha, &e);
    if (r < 0 && r != -ENOMEM) {
        warn_add(w, "%s: HA-managed VMs are simulated as onboot VMs", e.msg);
        return 0;
    }
    return r;
}

/* startup's order as pve_parse_startup_order reads it: parts "[order=]N", "up=N", "down=N";
 * any other part makes the whole value invalid, and the VM starts after the ordered ones. */
static bool startup_order(const char *v, long *order) {
    bool has = false, ok = true;
    _cleanup_free_ char *copy = strdup(v ? v : "");
    char *save = NULL;
    for (char *part = copy ? strtok_r(copy, ",", &save) : NULL; part && ok;
         part = strtok_r(NULL, ",", &save)) {
        char *num = part, *end;
        if (!strncmp(part, "order=", 6)) {
            num = part + 6;
        } else if (!strncmp(part, "up=", 3) || !strncmp(part, "down=", 5)) {
            num = strchr(part, '=') + 1;
        }
        bool blank = strspn(part, " \t") == strlen(part);
        long n = *num >= '0' && *num <= '9' ? strtol(num, &end, 10) : (end = num, -1);
        ok = blank || (n >= 0 && !*end);
        if (ok && !blank && (num == part || !strncmp(part, "order=", 6))) {
            *order = n;
            has = true;
        }
    }
    return ok && has;
}

struct boot_list {
    const struct sectioncfg *ha;
    struct boot_check *out;
    struct boot_vm *vms;
    size_t n;
};

static int collect_vm(void *ctx, unsigned long vmid, const struct pveconf *conf) {
    struct boot_list *l = ctx;
    if (!pve_bool_true(pveconf_get(conf, "onboot")) ||
        pve_bool_true(pveconf_get(conf, "template"))) {
        return 0;
    }
    if (ha_vm_managed(l->ha, vmid)) {
        if (GROW(l->out->ha, l->out->nha, 1) < 0) {
            return -ENOMEM;
        }
        l->out->ha[l->out->nha++] = vmid;
        return 0;
    }
    if (GROW(l->vms, l->n, 1) < 0) {
        return -ENOMEM;
    }
    struct boot_vm *b = &l->vms[l->n++];
    *b = (struct boot_vm){.vmid = vmid};
    b->has_order = startup_order(pveconf_get(conf, "startup"), &b->order);
    return 0;
}

/* This node's onboot VMs in boot order; HA's into out->ha. */
static int boot_list(
    const struct hook_env *env, struct boot_check *out, struct boot_vm **vms, size_t *n,
    struct pvh_err *e
) {
    _cleanup_(sectioncfg_freep) struct sectioncfg ha = {0};
    struct boot_list l = {.ha = &ha, .out = out};
    int r = ha_vms(env->fs, &ha, &out->warnings);
    if (r == 0) {
        r = vmconf_each(env->fs, collect_vm, &l);
        r = r == -ENOENT ? 0 : r;
    }
    if (r < 0) {
        free(l.vms);
        return r == -ENOMEM ? err_set(e, r, "out of memory")
                            : err_set(e, r, "cannot list %s: %s", PVE_VM_CONF_DIR, strerror(-r));
    }
    bootsim_sort(l.vms, l.n);
    *vms = l.vms;
    *n = l.n;
    return 0;
}

/* The physical GPU of a VF of NVIDIA's vendor interface in the simulation. */
static const char *iface_gpu_of(const struct bootsim *s, const char *vf) {
    for (size_t g = 0; g < s->nifgpus; g++) {
        for (size_t v = 0; v < s->ifgpus[g].nvfs; v++) {
            if (!strcmp(s->ifgpus[g].vfs[v], vf)) {
                return s->ifgpus[g].bdf;
            }
        }
    }
    return "";
}

/* Where the plan put each vGPU, as the result shows it. */
static void
record_devices(const struct vm_plan *p, const struct bootsim *s, struct boot_result *b) {
    const struct host *h = &s->host; /* the model, taken back from the plan */
    for (size_t i = 0; i < p->n; i++) {
        const struct planned_mdev *it = &p->items[i];
        struct boot_device *d = &b->devs[b->ndevs++];
        d->index = it->index;
        snprintf(d->type, sizeof(d->type), "%s", it->type_id);
        if (it->parent == NO_INDEX) {
            snprintf(d->pci, sizeof(d->pci), "%s", it->vf);
            snprintf(d->gpu, sizeof(d->gpu), "%s", iface_gpu_of(s, it->vf));
            continue;
        }
        const struct inv_type *t = inv_parent_type(h, it->parent, it->type_id);
        snprintf(d->name, sizeof(d->name), "%s", t ? inv_def(h, t)->name : "");
        snprintf(d->pci, sizeof(d->pci), "%s", h->parents[it->parent].bdf);
        snprintf(d->gpu, sizeof(d->gpu), "%s", h->gpus[h->parents[it->parent].gpu].bdf);
    }
}

/* Why the start would fail, as check says it. */
static void
record_refusal(int rc, const struct vm_plan *p, const struct pvh_err *e, struct pvh_err *out) {
    if (rc < 0) {
        *out = *e;
    } else if (p->settings_bad) {
        *out = p->settings.err;
    } else {
        err_set(
            out, -EAGAIN, "pre-start must add -uuid %s to args first (%s): that start fails",
            p->want_uuid, p->uuid_reason
        );
        err_hint(out, "start the VM once by hand before the reboot: pre-start writes args then");
        err_reason(out, "refused-once");
        return;
    }
    if (!out->reason) {
        err_reason(out, "refused");
    }
}

/* One VM's start on the simulated host: 1 when it has a vGPU (b filled), 0 when not. */
static int boot_one(
    const struct hook_env *env, struct bootsim *s, const struct boot_vm *vm, struct boot_result *b
) {
    struct bootsim_mark m;
    struct vm_plan p;
    struct pvh_err e = {0};
    if (bootsim_mark(s, &m) < 0) {
        return -ENOMEM;
    }
    int rc = plan_pre_start_on(env, vm->vmid, s, &p, &e);
    s->host = p.host; /* taken back */
    memset(&p.host, 0, sizeof(p.host));
    warn_free(&s->host.warnings); /* said once, at the start */
    bool listed = rc < 0 || p.n > 0;
    *b = (struct boot_result){.vmid = vm->vmid, .has_order = vm->has_order, .order = vm->order};
    b->would_start = listed && plan_would_start(rc, &p);
    int r = 0;
    if (b->would_start) {
        const struct planned_mdev *vf = NULL;
        for (size_t i = 0; i < p.n; i++) {
            vf = p.items[i].action == ACT_PROXMOX ? &p.items[i] : vf;
        }
        unsigned type = 0;
        if (vf) {
            sscanf(vf->type_id, "nvidia-%u", &type);
        }
        r = bootsim_started(s, &m, vf ? vf->vf : "", type, vm->vmid);
    } else {
        bootsim_undo(s, &m);
    }
    if (b->would_start) {
        record_devices(&p, s, b);
    } else if (listed) {
        record_refusal(rc, &p, &e, &b->err);
    }
    if (listed) {
        b->warnings = p.warnings;
        memset(&p.warnings, 0, sizeof(p.warnings));
    }
    plan_free(&p);
    return r < 0 ? r : listed;
}

int bootcheck_run(const struct hook_env *env, struct boot_check *out, struct pvh_err *e) {
    memset(out, 0, sizeof(*out));
    node_name(env->fs, out->node, sizeof(out->node));
    struct boot_vm *vms = NULL;
    size_t n = 0;
    _cleanup_(bootsim_free) struct bootsim s = {0};
    int r = boot_list(env, out, &vms, &n, e);
    if (r == 0 && (r = inventory_load_all(env->fs, &s.host, e)) == 0 &&
        (r = inventory_nvidia_gpus(env->fs, &s.ifgpus, &s.nifgpus)) < 0) {
        err_set(e, r, "cannot list the VFs of NVIDIA's vendor interface: %s", strerror(-r));
    }
    if (r == 0 && (r = bootsim_reset(&s)) < 0) {
        err_set(e, r, "out of memory");
    }
    for (size_t i = 0; i < s.host.warnings.n; i++) {
        const struct pvh_warnings *w = &s.host.warnings;
        warn_add_code(&out->warnings, warn_code(w, i), "%s", w->items[i]);
    }
    warn_free(&s.host.warnings);
    if (r == 0 && n && !(out->vms = calloc(n, sizeof(*out->vms)))) {
        r = err_set(e, -ENOMEM, "out of memory");
    }
    out->all_start = true;
    for (size_t i = 0; r == 0 && i < n; i++) {
        r = boot_one(env, &s, &vms[i], &out->vms[out->n]);
        if (r > 0) {
            out->all_start &= out->vms[out->n++].would_start;
            r = 0;
        } else if (r < 0) {
            err_set(e, r, "out of memory");
        }
    }
    free(vms);
    return r;
}
