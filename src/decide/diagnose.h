/*
 * diagnose: why a VM's last start failed, from its task log and the journal (pure: the logs
 * come in as text and records). Lines are tied to the VM by its mdev UUIDs (the scheme's VMID
 * part), the manager's start-call pid and its PCI devices (VFs); another VM's lines and lines
 * from before this start are never blamed on it. The catalogue is shared/reference/diagnosis.md.
 */
#ifndef PVH_DIAGNOSE_H
#define PVH_DIAGNOSE_H

#include "journal.h"
#include "pveconf.h"

#include <stdbool.h>
#include <stddef.h>

struct diag_input {
    unsigned long vmid;
    long long start;    /* the task's start, seconds since the epoch */
    bool ended;         /* the task has finished ... */
    long long end;      /* ... at this time */
    const char *status; /* "OK", "WARNINGS: n", the error; NULL while running */
    const char *log;    /* the task log (NUL-terminated), NULL when it cannot be read */
    const struct journal_entry *journal; /* from the start on, oldest first */
    size_t njournal;
    const char (*pcis)[PCI_ID_LEN]; /* the VM's PCI devices (VFs of the vendor interface) */
    size_t npcis;
};

struct diag_evidence {
    const char *source; /* "task", "kernel", "nvidia-vgpu-mgr", "nvidia-vgpud" */
    long long usec;     /* journal time; -1 for a task log line (it has none) */
    char *line;
};

struct diag_finding {
    const char *code;    /* stable: "missing-uuid", ...; "unknown" when not in the catalogue */
    const char *message; /* what failed */
    const char *cause;
    char *fix; /* with the VMID filled in */
    struct diag_evidence *ev;
    size_t nev;
    size_t more; /* further evidence lines, not listed */
};

enum diag_outcome { DIAG_OK, DIAG_FAILED, DIAG_UNKNOWN };

struct diag_result {
    enum diag_outcome outcome;
    struct diag_finding *causes;
    size_t ncauses;
    struct diag_finding *warnings;
    size_t nwarnings;
};

/* 0 and r filled; -ENOMEM. */
int diagnose_logs(const struct diag_input *in, struct diag_result *r);
void diag_result_free(struct diag_result *r);
/* Does this journal entry show the catalogue's finding `code` ("unlock-outdated", ...)? For
 * checks of the host, outside one VM's start (doctor). */
bool diagnose_entry_is(const char *code, const struct journal_entry *je);
/* "ok", "failed", "unknown" */
const char *diag_outcome_name(enum diag_outcome o);

#endif
