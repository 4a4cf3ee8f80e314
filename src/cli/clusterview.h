/* clusterview: how status --cluster and where show the cluster (text or JSON). */
#ifndef PVH_CLUSTERVIEW_H
#define PVH_CLUSTERVIEW_H

#include "cluster.h"

#include <stdio.h>

void report_cluster(FILE *out, const struct cluster_view *v, bool json);
void report_where(
    FILE *out, unsigned long vmid, const struct where_node *nodes, size_t n, bool json
);

#endif
