/*
 * diagnose_vm: what happened at a VM's last start on this node. Finds its last qmstart task
 * (/var/log/pve/tasks: index, index.1, active), reads that task's log and the journal from the
 * task's start on, and hands them to the catalogue (decide/diagnose.h). Read-only.
 */
#ifndef PVH_DIAGNOSE_VM_H
#define PVH_DIAGNOSE_VM_H

#include "diagnose.h"
#include "hook_env.h"
#include "log.h"

struct diagnosis {
    unsigned long vmid;
    char *upid;
    long long start;
    bool ended;
    long long end;
    char *status;      /* NULL while the task runs */
    bool log_read;     /* the task's own log was read */
    bool journal_read; /* else journal_err says why */
    struct pvh_err journal_err;
    size_t njournal;     /* journal entries read */
    bool journal_capped; /* there were more than were read */
    struct diag_result result;
};

/* 0 and d filled; -ENOENT (e: what to do) when the VM has no start task on this node. */
int diagnose_vm(
    const struct hook_env *env, unsigned long vmid, struct diagnosis *d, struct pvh_err *e
);
void diagnosis_free(struct diagnosis *d);

#endif
