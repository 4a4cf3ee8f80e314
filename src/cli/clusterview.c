#include "clusterview.h"

#include "cleanup.h"
#include "report.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

/* Why a node's data is not current, in words. */
static void freshness_message(const struct cluster_node *n, char *buf, size_t size) {
    switch (n->fresh) {
    case NODE_CURRENT:
        snprintf(buf, size, "published %lld s ago", n->age);
        break;
    case NODE_STALE:
        snprintf(
            buf, size, "published %lld s ago, more than %d s: it may have changed since", n->age,
            CLUSTER_STALE_S
        );
        break;
    case NODE_OFFLINE:
        snprintf(buf, size, "offline in /etc/pve/.members: its data is the last it published");
        break;
    case NODE_UNPUBLISHED:
        snprintf(buf, size, "no inventory published (pve-vgpu-hook not installed there?)");
        break;
    case NODE_INVALID:
        snprintf(buf, size, "its inventory is refused: %s", n->problem);
        break;
    }
}

static json_object *node_json(const struct cluster_node *n, const char *self) {
    json_object *o = json_object_new_object();
    char msg[512];
    freshness_message(n, msg, sizeof(msg));
    json_object_object_add(o, "node", json_object_new_string(n->name));
    json_object_object_add(o, "self", json_object_new_boolean(!strcmp(n->name, self)));
    json_object_object_add(o, "state", json_object_new_string(node_freshness_name(n->fresh)));
    json_object_object_add(o, "message", json_object_new_string(msg));
    json_object_object_add(o, "age_s", n->has_inv ? json_object_new_int64(n->age) : NULL);
    _cleanup_free_ char *text = n->has_inv ? nodeinv_write(&n->inv, true) : NULL;
    json_object_object_add(o, "inventory", text ? json_tokener_parse(text) : NULL);
    return o;
}

static void node_text(FILE *out, const struct cluster_node *n, const char *self) {
    char msg[512];
    freshness_message(n, msg, sizeof(msg));
    bool current = n->fresh == NODE_CURRENT;
    fprintf(
        out, "Node %s%s: %s%s\n", n->name, strcmp(n->name, self) ? "" : " (this node)",
        current ? "" : "STALE: ", msg
    );
    if (!n->has_inv) {
        return;
    }
    const struct node_inv *inv = &n->inv;
    fprintf(
        out, "  NVIDIA driver %s, qemu-server %s, vgpu_unlock-rs %s\n",
        inv->driver[0] ? inv->driver : "not loaded", inv->qemu_server[0] ? inv->qemu_server : "?",
        inv->unlock ? "set up" : "no"
    );
    for (size_t g = 0; g < inv->ngpus; g++) {
        const struct ninv_gpu *G = &inv->gpus[g];
        fprintf(out, "  GPU %s %s (%s)\n", G->pci, G->model, ninv_kind_name(G->kind));
        for (size_t i = 0; i < inv->nvgpus; i++) {
            const struct ninv_vgpu *v = &inv->vgpus[i];
            if (!strcmp(v->gpu, G->pci)) {
                fprintf(
                    out, "    hosts VM %lu: %s on %s (%s)\n", v->vmid, v->type, v->function,
                    ninv_state_name(v->state)
                );
            }
        }
        for (size_t t = 0; t < G->ntypes; t++) {
            const struct ninv_type *ty = &G->types[t];
            fprintf(
                out, "    %-12s %-24s %6u MiB  free %ld\n", ty->id, ty->name, ty->fb_mib, ty->free
            );
        }
    }
}

/* A comma-separated node list as a JSON array of names. */
static json_object *nodes_json(const char *csv) {
    json_object *nodes = json_object_new_array();
    for (const char *p = csv; *p;) {
        size_t l = strcspn(p, ",");
        json_object_array_add(nodes, json_object_new_string_len(p, (int)l));
        p += l + (p[l] == ',');
    }
    return nodes;
}

static json_object *ha_problem_json(const struct hasync_problem *p) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "vmid", json_object_new_int64((int64_t)p->vmid));
    json_object_object_add(o, "code", json_object_new_string(p->code));
    json_object_object_add(o, "message", json_object_new_string(p->message));
    json_object_object_add(o, "nodes", nodes_json(p->nodes));
    json_object_object_add(o, "fix", json_object_new_string(p->fix));
    return o;
}

static void ha_problems_text(
    FILE *out, const struct hasync_problem *ha, size_t nha, const struct pvh_err *unknown
) {
    if (unknown->code) {
        fprintf(
            out,
            "HA: cannot tell whether HA may move vGPU VMs to nodes that cannot start them: %s\n"
            "  'pve-vgpu-hook ha-sync --dry-run' says why\n",
            unknown->msg
        );
    }
    if (nha) {
        fprintf(out, "HA vGPU VMs that HA may move where they cannot start:\n");
    }
    for (size_t i = 0; i < nha; i++) {
        fprintf(
            out, "  VM %lu (%s): %s\n    fix: %s\n", ha[i].vmid, ha[i].code, ha[i].message,
            ha[i].fix
        );
    }
}

void report_cluster(
    FILE *out, const struct cluster_view *v, const struct hasync_problem *ha, size_t nha,
    const struct pvh_err *ha_unknown, bool json
) {
    if (!json) {
        for (size_t i = 0; i < v->n; i++) {
            node_text(out, &v->nodes[i], v->self);
        }
        if (v->n == 0) {
            fprintf(out, "no node in /etc/pve/nodes: not a Proxmox VE cluster?\n");
        }
        ha_problems_text(out, ha, nha, ha_unknown);
        return;
    }
    json_object *o = json_object_new_object(), *nodes = json_object_new_array(),
                *problems = json_object_new_array();
    json_object_object_add(o, "node", json_object_new_string(v->self));
    json_object_object_add(o, "stale_after_s", json_object_new_int(CLUSTER_STALE_S));
    for (size_t i = 0; i < nha; i++) {
        json_object_array_add(problems, ha_problem_json(&ha[i]));
    }
    json_object_object_add(o, "ha", problems); /* before the long nodes: a summary */
    json_object *unknown = NULL;
    if (ha_unknown->code) {
        unknown = json_object_new_object();
        json_object_object_add(unknown, "code", json_object_new_string("ha-unknown"));
        json_object_object_add(unknown, "message", json_object_new_string(ha_unknown->msg));
    }
    json_object_object_add(o, "ha_unknown", unknown);
    for (size_t i = 0; i < v->n; i++) {
        json_object_array_add(nodes, node_json(&v->nodes[i], v->self));
    }
    json_object_object_add(o, "nodes", nodes);
    report_print_json(out, o);
}

static json_object *where_json(const struct where_node *w) {
    json_object *o = json_object_new_object(), *devs = json_object_new_array();
    json_object_object_add(o, "node", json_object_new_string(w->node));
    json_object_object_add(o, "can_start", json_object_new_boolean(w->can));
    json_object_object_add(o, "code", json_object_new_string(w->code));
    json_object_object_add(o, "message", json_object_new_string(w->message));
    for (size_t i = 0; w->can && i < w->n; i++) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "index", json_object_new_int((int)w->items[i].index));
        json_object_object_add(d, "type", json_object_new_string(w->items[i].type_id));
        json_object_object_add(d, "pci", json_object_new_string(w->pci[i]));
        json_object_object_add(
            d, "action", json_object_new_string(report_action_code(w->items[i].action))
        );
        json_object_array_add(devs, d);
    }
    json_object_object_add(o, "devices", devs);
    return o;
}

void report_where(
    FILE *out, unsigned long vmid, bool migrate, const char *from, const struct where_node *nodes,
    size_t n, bool json
) {
    if (json) {
        json_object *o = json_object_new_object(), *arr = json_object_new_array();
        json_object_object_add(o, "vmid", json_object_new_int64((long long)vmid));
        json_object_object_add(o, "node", json_object_new_string(from));
        json_object_object_add(o, "migrate", json_object_new_boolean(migrate));
        for (size_t i = 0; i < n; i++) {
            json_object_array_add(arr, where_json(&nodes[i]));
        }
        json_object_object_add(o, "nodes", arr);
        report_print_json(out, o);
        return;
    }
    if (migrate) {
        fprintf(out, "Live migration of VM %lu from %s:\n", vmid, from);
    }
    for (size_t i = 0; i < n; i++) {
        const struct where_node *w = &nodes[i];
        if (!w->can) {
            fprintf(out, "%s: no (%s): %s\n", w->node, w->code, w->message);
            continue;
        }
        fprintf(out, "%s: yes,", w->node);
        for (size_t k = 0; k < w->n; k++) {
            fprintf(out, "%s %s on %s", k ? "," : "", w->items[k].type_id, w->pci[k]);
        }
        fprintf(out, "\n");
    }
}

static json_object *ha_item_json(const struct hasync_item *it) {
    json_object *o = json_object_new_object();
    char id[HARULES_ID_MAX];
    snprintf(id, sizeof(id), HARULES_ID_FMT, it->vmid);
    json_object_object_add(o, "vmid", json_object_new_int64((int64_t)it->vmid));
    json_object_object_add(o, "rule", json_object_new_string(id));
    json_object_object_add(o, "type", it->type[0] ? json_object_new_string(it->type) : NULL);
    json_object_object_add(o, "nodes", nodes_json(it->nodes));
    json_object_object_add(o, "action", json_object_new_string(hasync_action_name(it->action)));
    json_object_object_add(o, "code", json_object_new_string(it->code));
    json_object_object_add(o, "message", json_object_new_string(it->message));
    return o;
}

static void ha_sync_json(
    FILE *out, const struct hasync_result *res, int rc, const struct pvh_err *e, bool dry_run
) {
    json_object *o = json_object_new_object(), *items = json_object_new_array();
    bool known = rc == 0 || res->file;
    json_object_object_add(
        o, "form", known ? json_object_new_string(ha_form_name(res->form)) : NULL
    );
    json_object_object_add(
        o, "ha_manager", res->ha_manager[0] ? json_object_new_string(res->ha_manager) : NULL
    );
    json_object_object_add(o, "file", res->file ? json_object_new_string(res->file) : NULL);
    json_object_object_add(
        o, "form_reason", res->form_reason ? json_object_new_string(res->form_reason) : NULL
    );
    json_object_object_add(
        o, "form_message", res->form_reason ? json_object_new_string(res->form_message) : NULL
    );
    json_object_object_add(o, "dry_run", json_object_new_boolean(dry_run));
    json_object_object_add(o, "changed", json_object_new_boolean(rc == 0 && res->changed));
    for (size_t i = 0; i < res->n; i++) {
        json_object_array_add(items, ha_item_json(&res->items[i]));
    }
    json_object_object_add(o, "resources", items);
    if (rc < 0) {
        json_object *err = json_object_new_object();
        json_object_object_add(
            err, "code", json_object_new_string(e->reason ? e->reason : "refused")
        );
        json_object_object_add(err, "message", json_object_new_string(e->msg));
        json_object_object_add(err, "hint", json_object_new_string(e->hint));
        json_object_object_add(o, "error", err);
    }
    report_print_json(out, o);
}

void report_ha_sync(
    FILE *out, const struct hasync_result *res, int rc, const struct pvh_err *e, bool dry_run,
    bool json
) {
    if (json) {
        ha_sync_json(out, res, rc, e, dry_run);
        return;
    }
    if (rc < 0) {
        return; /* the error is on stderr */
    }
    fprintf(out, "%s\n", res->form_message);
    for (size_t i = 0; i < res->n; i++) {
        const struct hasync_item *it = &res->items[i];
        fprintf(
            out, "%s " HARULES_ID_FMT ": %s\n", hasync_action_name(it->action), it->vmid,
            it->message
        );
    }
    if (!res->changed) {
        fprintf(out, "%s: nothing to change\n", res->file);
    } else {
        fprintf(
            out, "%s: %s\n", res->file,
            dry_run ? "would be written; run without --dry-run to write it" : "written"
        );
    }
}
