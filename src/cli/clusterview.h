/* clusterview: how status --cluster and where show the cluster (text or JSON). */
#ifndef PVH_CLUSTERVIEW_H
#define PVH_CLUSTERVIEW_H

#include "cluster.h"
#include "hasync.h"

#include <stdio.h>

/* status --cluster: every node, then the HA vGPU VMs HA may move where they cannot start, or
 * why that cannot be told (ha_unknown->code set). */
void report_cluster(
    FILE *out, const struct cluster_view *v, const struct hasync_problem *ha, size_t nha,
    const struct pvh_err *ha_unknown, bool json
);
/* where VMID [--migrate]: from is the node the VM is on. */
void report_where(
    FILE *out, unsigned long vmid, bool migrate, const char *from, const struct where_node *nodes,
    size_t n, bool json
);
/* ha-sync: each VM's rule and what was (dry_run: would be) done, or the error (rc < 0, e). */
void report_ha_sync(
    FILE *out, const struct hasync_result *res, int rc, const struct pvh_err *e, bool dry_run,
    bool json
);

#endif
