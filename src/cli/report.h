/* report: text and JSON output of the admin commands (the cli layer; prints to stdout). */
#ifndef PVH_REPORT_H
#define PVH_REPORT_H

#include "admin.h"
#include "hook.h"
#include "readiness.h"

#include <stdbool.h>
#include <stdio.h>

/* only_parent: NULL for all parents, else limit JSON to that parent (text shows its GPU). */
/* nv: GPUs on NVIDIA's vendor interface (text only: they are no mdev parents for mdevctl). */
void report_types(
    FILE *out, const struct pvh_config *cfg, const struct host *h, const struct nvidia_gpu *nv,
    size_t nnv, const char *only_parent, bool json
);
void report_status(FILE *out, const struct host_status *st, bool json);
/* rc: hook_plan's result; e its error. Returns the exit status. */
int report_check(
    FILE *out, unsigned long vmid, int rc, const struct vm_plan *p, const struct pvh_err *e,
    bool json
);
void report_cleanup(FILE *out, const struct cleanup_item *items, size_t n, bool dry_run, bool json);

/* doctor: one line per problem with its fix, or "ready". Returns the exit status. */
int report_doctor(FILE *out, const struct readiness *r, bool json);
/* config check: a valid file in one line (ce NULL; exists: the file is there, not only the
 * defaults), else the error. Returns the exit status. */
int report_config_check(
    FILE *out, const struct pvh_config *cfg, bool exists, const struct config_error *ce,
    const char *file, bool json
);
/* A VM's tuning (t NULL: none). */
void report_tune(FILE *out, unsigned long vmid, const struct vm_tuning *t, bool json);

#endif
