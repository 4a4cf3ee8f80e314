/* report: text and JSON output of the admin commands (the cli layer; prints to stdout). */
#ifndef PVH_REPORT_H
#define PVH_REPORT_H

#include "admin.h"
#include "bootcheck.h"
#include "diagnose_vm.h"
#include "edit_result.h"
#include "hook.h"
#include "readiness.h"

#include <json-c/json.h>

#include <stdbool.h>
#include <stdio.h>

/* only_parent: NULL for all parents, else limit JSON to that parent (text shows its GPU). */
/* nv: GPUs on NVIDIA's vendor interface (text only: they are no mdev parents for mdevctl). */
/* One JSON object on out, as every command prints its --json (pretty, / unescaped); it is
 * released. */
void report_print_json(FILE *out, json_object *o);
/* A planned device's action as check --json and where --json name it. */
const char *report_action_code(enum mdev_action a);

enum report_format {
    REPORT_TEXT,
    REPORT_JSON,     /* our object */
    REPORT_DUMPJSON, /* types: mdevctl's `types --dumpjson` array */
};
void report_types(
    FILE *out, const struct pvh_config *cfg, const struct host *h, const struct nvidia_gpu *nv,
    size_t nnv, const char *only_parent, const struct config_error *settings,
    enum report_format format
);
void report_status(FILE *out, const struct host_status *st, bool json);
/* rc: hook_plan's result; e its error. Returns the exit status. */
int report_check(
    FILE *out, unsigned long vmid, int rc, const struct vm_plan *p, const struct pvh_err *e,
    bool json
);
/* check --all: each onboot vGPU VM's verdict in boot order. Returns the exit status (0: all
 * would start). */
int report_check_all(FILE *out, const struct boot_check *c, bool json);
/* records: stale records removed from the settings; mappings: stale mappings of ours removed
 * from pci.cfg. */
void report_cleanup(
    FILE *out, const struct cleanup_item *items, size_t n, const struct vm_warnings *records,
    const struct vm_warnings *mappings, bool dry_run, bool json
);

/* doctor: one line per problem with its fix, or "ready". Returns the exit status. */
int report_doctor(FILE *out, const struct readiness *r, bool json);
/* What diagnose found: the outcome, each cause with its evidence and fix, the warnings. */
void report_diagnose(FILE *out, const struct diagnosis *d, bool json);
/* config check: a valid file in one line (ce NULL; exists: the file is there, not only the
 * defaults), else the error. Returns the exit status. */
int report_config_check(
    FILE *out, const struct pvh_config *cfg, bool exists, const struct config_error *ce,
    const char *file, bool json
);
/* A VM's tuning (t NULL: none), as text (--json: report_edit with result "shown"). */
void report_tune(FILE *out, unsigned long vmid, const struct vm_tuning *t);
/* What attach, detach, tune or setup did, or would do (res->dry_run), or its refusal (rc < 0,
 * e; said on stderr too): JSON or text. tuning: tune's, NULL for the others. Returns the exit
 * status. */
int report_edit(
    FILE *out, const struct edit_result *res, const struct vm_tuning *tuning, int rc,
    const struct pvh_err *e, bool json
);

/* metrics: Prometheus' text format of status' host model (st NULL: it could not be read) and
 * doctor's verdict (rd NULL: none); up false says a part of the host could not be read. Returns
 * what it reports as pve_vgpu_scrape_success: up, and every type's count was read. */
bool report_metrics(
    FILE *out, const struct host_status *st, const struct readiness *rd, bool up, double now
);

/* Shared by the renderers. The GPU's model from its first named type ("P40"), "GPU" when none
 * tells. */
const char *report_gpu_model(const struct host *h, size_t gpu);
/* The SR-IOV VFs of an mdev GPU, and how many of them host no mdev (0 and 0: no VFs). */
void report_gpu_vf_counts(const struct host *h, size_t gpu, size_t *vfs, size_t *free_vfs);
/* How a GPU on NVIDIA's vendor interface behaves, as the types a free VF may take now reveal
 * it: "idle", "full", "equal-size" (*size_mib its size), "mixed-size" or "mig-only". */
const char *report_iface_mode(const struct nvidia_gpu *g, unsigned *size_mib);

#endif
