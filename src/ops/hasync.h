/*
 * hasync: ha-sync keeps, for every HA-managed VM with a vGPU, a strict HA node-affinity rule
 * (pve-ha-manager 5.0.2 and later) or restricted HA group (before) vgpu-hook-<vmid> that names
 * the nodes able to start its vGPUs (cluster_ha_nodes), so that HA recovers and relocates it
 * only there. Only our own sections (formats/harules) are ever changed, under pmxcfs' HA lock,
 * atomically, and only when the content changes; Proxmox's migration of our group
 * (ha-group-vgpu-hook-<vmid>) is renamed back in place. resources.cfg is only read.
 */
#ifndef PVH_HASYNC_H
#define PVH_HASYNC_H

#include "cluster.h"
#include "config.h"
#include "harules.h"
#include "hook_env.h"

enum hasync_action { HASYNC_CREATE, HASYNC_UPDATE, HASYNC_REMOVE, HASYNC_UNCHANGED, HASYNC_SKIP };

struct hasync_item {
    unsigned long vmid;
    char type[VGPU_TYPE_MAX]; /* its (first) vGPU's type; "" when it has none any more */
    char nodes[4096];         /* comma-separated, sorted; "" for remove */
    char kept[2560]; /* why the VM's node is in nodes though its inventory cannot tell; "" */
    enum hasync_action action;
    bool renamed_only;  /* update: only Proxmox's migrated id renamed, the rule itself in step */
    const char *code;   /* why, a literal: ok, unbound, other-group, no-vgpu, not-ha, no-node,
                         * other-rule, not-ours */
    char message[8192]; /* room for nodes and kept */
};

struct hasync_result {
    enum ha_form form;
    char ha_manager[64]; /* the pve-ha-manager version that chose the form */
    /* why this form, as Proxmox's API on this node allows it: "rules" (pve-ha-manager 5.0.2
     * or later and no HA group left), "ha-manager-old", "groups-not-migrated" */
    const char *form_reason;
    char form_message[512];
    const char *file; /* rules.cfg or groups.cfg */
    struct hasync_item *items;
    size_t n;
    bool changed; /* the file was (dry run: would be) written */
};

/* dry_run: decide, write nothing, take no lock. */
int ha_sync(
    const struct hook_env *env, bool dry_run, struct hasync_result *res, struct pvh_warnings *w,
    struct pvh_err *e
);
/* The same over a cluster view the caller has read (NULL: read here). */
int ha_sync_view(
    const struct hook_env *env, bool dry_run, const struct cluster_view *view,
    struct hasync_result *res, struct pvh_warnings *w, struct pvh_err *e
);
void hasync_free(struct hasync_result *res);

/* An HA vGPU VM that HA may recover or relocate to a node that cannot start it. */
struct hasync_problem {
    unsigned long vmid;
    const char *code; /* "ha-nodes": its rule is missing or out of step; "ha-no-node": no node
                       * can start it */
    char fix[128];    /* the command that fixes it */
    char nodes[4096]; /* the nodes that can start it, comma-separated, sorted; "" for ha-no-node */
    char message[8192];
};
/* doctor and status --cluster: the HA vGPU VMs whose allowed nodes cannot host them, from an
 * ha_sync dry run (nothing written, no lock) over view (NULL: read). None when this node runs
 * no HA; when ha_sync
 * cannot tell, none and *unknown says why (unknown->code 0 otherwise). *out malloc'ed
 * (free()), -ENOMEM only. */
int hasync_problems(
    const struct hook_env *env, const struct cluster_view *view, struct hasync_problem **out,
    size_t *n, struct pvh_err *unknown
);
const char *hasync_action_name(enum hasync_action a);

#endif
