#include "diagnose_vm.h"

#include "cleanup.h"
#include "config.h"
#include "hostpaths.h"
#include "inventory.h"
#include "journal.h"
#include "pvetask.h"
#include "strutil.h"
#include "vmconf.h"
#include "vmstate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASK_LIST_MAX (16u << 20) /* index, active: Proxmox keeps them near 50,000 bytes */
#define TASK_LOG_MAX (16u << 20)
#define JOURNAL_ENTRIES_MAX 200000 /* from the start on; more are not read */

/* Keep in *best the VM's latest qmstart task of one task list (missing lists are empty). */
static int diagnose_scan(
    const struct hostfs *fs, const char *path, bool active, unsigned long vmid,
    struct pve_task *best
) {
    _cleanup_free_ char *text = NULL;
    int r = hostfs_read_alloc(fs, path, TASK_LIST_MAX, &text, NULL);
    if (r < 0) {
        return r == -ENOENT ? 0 : r;
    }
    char id[32];
    snprintf(id, sizeof(id), "%lu", vmid);
    const char *pos = text, *line;
    size_t len;
    while (str_next_line(&pos, &line, &len)) {
        struct pve_task t;
        if (pve_task_parse(line, len, active, &t) < 0) {
            continue; /* not a task line: Proxmox's own readers skip it too */
        }
        bool better = !strcmp(t.u.type, "qmstart") && !strcmp(t.u.id, id) &&
                      (!best->upid || t.u.starttime > best->u.starttime ||
                       (t.u.starttime == best->u.starttime && t.ended && !best->ended));
        if (better) {
            pve_task_free(best);
            *best = t;
        } else {
            pve_task_free(&t);
        }
    }
    return 0;
}

static int diagnose_find_task(
    const struct hostfs *fs, unsigned long vmid, struct pve_task *best, struct pvh_err *e
) {
    static const struct {
        const char *path;
        bool active;
    } lists[] = {{PVE_TASKS_INDEX_OLD, false}, {PVE_TASKS_INDEX, false}, {PVE_TASKS_ACTIVE, true}};
    memset(best, 0, sizeof(*best));
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        int r = diagnose_scan(fs, lists[i].path, lists[i].active, vmid, best);
        if (r < 0) {
            pve_task_free(best);
            return err_set(e, r, "cannot read %s: %s", lists[i].path, strerror(-r));
        }
    }
    if (best->upid) {
        return 0;
    }
    char conf[128];
    if (vmconf_path(NULL, vmid, conf, sizeof(conf)) < 0 || hostfs_exists(fs, conf) < 0) {
        err_set(e, -ENOENT, "VM %lu does not exist on this node (no %s)", vmid, conf);
        err_hint(e, "diagnose reads the logs of the node it runs on: run it on the VM's node");
    } else {
        err_set(
            e, -ENOENT,
            "VM %lu has no start in this node's task list (" PVE_TASKS_INDEX ", index.1, active)",
            vmid
        );
        err_hint(
            e,
            "start it (qm start %lu), then run diagnose again; a start on another node is "
            "diagnosed there",
            vmid
        );
    }
    return -ENOENT;
}

/* The VFs of NVIDIA's vendor interface that are this VM's: named by host= in its config, or
 * holding a vGPU type for it now. Only VFs: a physical GPU's lines may be any VM's. */
static size_t
diagnose_vfs(const struct hostfs *fs, unsigned long vmid, char (*out)[PCI_ID_LEN], size_t max) {
    char pf[PCI_ID_LEN];
    size_t n = 0, nh = 0;
    struct pveconf conf;
    struct hostpci hps[HOSTPCI_MAX];
    if (vmconf_load(fs, NULL, vmid, &conf) == 0) {
        (void)hostpci_mdev_entries(&conf, hps, &nh, NULL, NULL);
        pveconf_free(&conf);
    }
    for (size_t i = 0; i < nh; i++) {
        for (size_t k = 0; k < hps[i].nhost && n < max; k++) {
            if (inventory_physfn(fs, hps[i].host[k], pf, sizeof(pf)) == 0 &&
                strcmp(pf, hps[i].host[k]) != 0) {
                memcpy(out[n++], hps[i].host[k], PCI_ID_LEN);
            }
        }
    }
    struct vf_holder *held = NULL;
    size_t nheld = 0;
    if (inventory_vf_holders(fs, &held, &nheld) == 0) {
        for (size_t i = 0; i < nheld && n < max; i++) {
            if (held[i].vmid == vmid) {
                memcpy(out[n++], held[i].bdf, PCI_ID_LEN);
            }
        }
    }
    free(held);
    return n;
}

int diagnose_vm(
    const struct hook_env *env, unsigned long vmid, struct diagnosis *d, struct pvh_err *e
) {
    struct pve_task t;
    memset(d, 0, sizeof(*d));
    d->vmid = vmid;
    int r = diagnose_find_task(env->fs, vmid, &t, e);
    if (r < 0) {
        return r;
    }
    d->upid = t.upid;
    d->start = t.u.starttime;
    d->ended = t.ended;
    d->end = t.endtime;
    d->status = t.status;
    char path[4096];
    _cleanup_free_ char *log = NULL;
    if (pve_task_log_path(t.upid, &t.u, path, sizeof(path)) == 0 &&
        hostfs_read_alloc(env->fs, path, TASK_LOG_MAX, &log, NULL) == 0) {
        d->log_read = true;
        if (!d->status) { /* the active list lags behind the log's last line */
            d->status = pve_task_log_status(log);
        }
    }
    struct journal_entry *je = NULL;
    r = journal_read_vgpu(
        env->fs, (unsigned long long)t.u.starttime * 1000000ULL, JOURNAL_ENTRIES_MAX, &je,
        &d->njournal, &d->journal_capped, &d->journal_err
    );
    d->journal_read = r == 0;
    char pcis[8][PCI_ID_LEN];
    struct diag_input in = {
        .vmid = vmid,
        .start = d->start,
        .ended = d->ended,
        .end = d->end,
        .status = d->status,
        .log = log,
        .journal = je,
        .njournal = d->njournal,
        .pcis = pcis,
        .npcis = diagnose_vfs(env->fs, vmid, pcis, 8),
    };
    r = diagnose_logs(&in, &d->result);
    journal_entries_free(je, d->njournal);
    if (r < 0) {
        diagnosis_free(d);
        return err_set(e, r, "cannot diagnose VM %lu: %s", vmid, strerror(-r));
    }
    return 0;
}

void diagnosis_free(struct diagnosis *d) {
    free(d->upid);
    free(d->status);
    diag_result_free(&d->result);
    memset(d, 0, sizeof(*d));
}
