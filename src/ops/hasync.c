#include "hasync.h"

#include "cleanup.h"
#include "cluster.h"
#include "debver.h"
#include "ha.h"
#include "hostfs.h"
#include "hostpaths.h"
#include "managed.h"
#include "mdev_uuid.h"
#include "sectioncfg.h"
#include "strutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hasync {
    const struct hook_env *env;
    struct hasync_result *res;
    const struct cluster_view *v; /* the caller's, or own */
    struct cluster_view own;
    struct sectioncfg resources; /* resources.cfg */
    struct sectioncfg cur;       /* the rules or groups file as read */
    char *orig;                  /* its bytes; NULL when it does not exist */
    char *text;                  /* with our changes */
};

const char *hasync_action_name(enum hasync_action a) {
    static const char *const names[] = {"create", "update", "remove", "unchanged", "skip"};
    return names[a];
}

void hasync_free(struct hasync_result *res) {
    free(res->items);
    res->items = NULL;
    res->n = 0;
}

/* The form Proxmox's own API on this node allows: rules from pve-ha-manager 5.0.2 once the
 * cluster's HA groups are migrated to rules (PVE::HA::Config::have_groups_been_migrated),
 * groups before. */
static int hasync_form(const struct hook_env *env, struct hasync_result *res, struct pvh_err *e) {
    int r =
        debver_installed_on(env->fs, "pve-ha-manager", res->ha_manager, sizeof(res->ha_manager));
    if (r < 0) {
        err_set(e, r, "pve-ha-manager is not installed (%s): this node runs no HA", DPKG_STATUS);
        err_hint(e, "ha-sync keeps HA rules; run it on a node of an HA cluster");
        err_reason(e, "no-ha");
        return r;
    }
    bool migrated = true, rules = debver_cmp(res->ha_manager, HA_MANAGER_RULES_VERSION) >= 0;
    if (rules && (r = ha_groups_migrated(env->fs, &migrated, e)) < 0) {
        return r;
    }
    res->form = rules && migrated ? HA_FORM_RULES : HA_FORM_GROUPS;
    res->file = ha_form_file(res->form);
    if (!rules) {
        res->form_reason = "ha-manager-old";
        str_fmt(
            res->form_message, sizeof(res->form_message),
            "HA groups: pve-ha-manager %s here predates HA rules (%s)", res->ha_manager,
            HA_MANAGER_RULES_VERSION
        );
    } else if (!migrated) {
        res->form_reason = "groups-not-migrated";
        str_fmt(
            res->form_message, sizeof(res->form_message),
            "HA groups: %s still has groups, and Proxmox allows HA rules only once it has "
            "migrated them (when every node runs pve-manager 9.0 or later, online and quorate)",
            PVE_HA_GROUPS_CFG
        );
    } else {
        res->form_reason = "rules";
        str_fmt(
            res->form_message, sizeof(res->form_message),
            "HA rules: pve-ha-manager %s here, and no HA group left in %s", res->ha_manager,
            PVE_HA_GROUPS_CFG
        );
    }
    return 0;
}

/* resources.cfg and our file, parsed. */
static int hasync_load(struct hasync *h, struct pvh_err *e) {
    int r = ha_resources_load(h->env->fs, &h->resources, e);
    if (r == 0) {
        r = ha_rules_load(h->env->fs, h->res->form, &h->orig, &h->cur, e);
    }
    if (r == 0 && !(h->text = strdup(h->orig ? h->orig : ""))) {
        r = err_set(e, -ENOMEM, "out of memory");
    }
    return r;
}

static struct hasync_item *hasync_push(struct hasync *h, unsigned long vmid) {
    struct hasync_result *res = h->res;
    struct hasync_item *n = realloc(res->items, (res->n + 1) * sizeof(*n));
    if (!n) {
        return NULL;
    }
    res->items = n;
    memset(&n[res->n], 0, sizeof(*n));
    n[res->n].vmid = vmid;
    return &n[res->n++];
}

/* vmid's section vgpu-hook-<vmid> (migrated: ha-group-vgpu-hook-<vmid>) in the file as read
 * when ours, or NULL; *foreign: a section of that id not ours. */
static const struct sectioncfg_section *
hasync_find(const struct hasync *h, unsigned long vmid, bool migrated, bool *foreign) {
    char id[HARULES_ID_MAX];
    unsigned long owner;
    snprintf(id, sizeof(id), migrated ? HARULES_MIGRATED_FMT : HARULES_ID_FMT, vmid);
    const struct sectioncfg_section *s = sectioncfg_find(&h->cur, id);
    bool ours = s && harules_ours(s, h->res->form, &owner) && owner == vmid;
    *foreign = s && !ours;
    return ours ? s : NULL;
}

/* Our section of vmid: vgpu-hook-<vmid>, else (rules form) Proxmox's migration of our group;
 * *foreign: a section vgpu-hook-<vmid> not ours. */
static const struct sectioncfg_section *
hasync_ours(const struct hasync *h, unsigned long vmid, bool *foreign) {
    bool theirs;
    const struct sectioncfg_section *s = hasync_find(h, vmid, false, foreign);
    if (!s && !*foreign && h->res->form == HA_FORM_RULES) {
        s = hasync_find(h, vmid, true, &theirs);
    }
    return s;
}

/* Put sec (NULL: remove) as vmid's section into the text in place of old (NULL: none); the
 * action it amounts to. Proxmox's migrated rule becomes our vgpu-hook-<vmid> in its place. */
static int hasync_apply(
    struct hasync *h, struct hasync_item *it, const char *sec, const struct sectioncfg_section *old,
    struct pvh_err *e
) {
    char id[HARULES_ID_MAX];
    size_t start, end;
    snprintf(id, sizeof(id), HARULES_ID_FMT, it->vmid);
    const char *at = old ? old->id : id;
    if (old && sec && sectioncfg_span(h->text, true, at, &start, &end) == 0 &&
        end - start == strlen(sec) && !memcmp(h->text + start, sec, end - start)) {
        it->action = HASYNC_UNCHANGED;
        return 0;
    }
    /* Proxmox's migrated rule with the same body: HA already behaves as it should */
    const char *body = sec ? strchr(sec, '\n') : NULL;
    const char *was =
        old && body && strcmp(at, id) && sectioncfg_span(h->text, true, at, &start, &end) == 0
            ? memchr(h->text + start, '\n', end - start)
            : NULL;
    it->renamed_only =
        was && (size_t)(h->text + end - was) == strlen(body) && !memcmp(was, body, strlen(body));
    char *out = NULL;
    if (harules_put(h->text, at, sec, &out) < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    free(h->text);
    h->text = out;
    it->action = !sec ? HASYNC_REMOVE : old ? HASYNC_UPDATE : HASYNC_CREATE;
    h->res->changed = true;
    if (sec && old && strcmp(at, id)) {
        str_append(
            it->message, sizeof(it->message),
            "; renamed from %s, the rule Proxmox made of ha-sync's HA group %s when it migrated "
            "the groups to rules",
            at, id
        );
    }
    return 0;
}

/* Proxmox's migrated rule of vmid left beside our own rule: removed, as vm:<vmid> in two
 * node-affinity rules makes Proxmox ignore both. */
static int hasync_twin(struct hasync *h, struct hasync_item *it, struct pvh_err *e) {
    bool theirs;
    const struct sectioncfg_section *twin =
        h->res->form == HA_FORM_RULES ? hasync_find(h, it->vmid, true, &theirs) : NULL;
    char *out = NULL;
    int r = twin ? harules_put(h->text, twin->id, NULL, &out) : -ENOENT;
    if (r == -ENOENT) {
        return 0; /* none, or already replaced by ours */
    }
    if (r < 0) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    free(h->text);
    h->text = out;
    h->res->changed = true;
    it->action = it->action == HASYNC_UNCHANGED ? HASYNC_UPDATE : it->action;
    str_append(
        it->message, sizeof(it->message),
        "; %s, the rule Proxmox made of ha-sync's HA group, removed: Proxmox ignores the "
        "node-affinity rules of a resource named in two",
        twin->id
    );
    return 0;
}

/* In the groups form the group binds the VM only through its resource's `group`, which is
 * Proxmox's file: say whether it does, and the command that binds it. */
static void hasync_group_note(
    const struct hasync *h, const struct sectioncfg_section *res, struct hasync_item *it
) {
    const char *g = sectioncfg_get(res, "group");
    char id[HARULES_ID_MAX];
    snprintf(id, sizeof(id), HARULES_ID_FMT, it->vmid);
    if (h->res->form == HA_FORM_RULES || (g && !strcmp(g, id))) {
        return;
    }
    if (g && g[0]) {
        it->code = "other-group";
        str_append(
            it->message, sizeof(it->message),
            "; but vm:%lu is in HA group %s, which HA follows instead: 'ha-manager set vm:%lu "
            "--group %s' moves it",
            it->vmid, g, it->vmid, id
        );
        return;
    }
    it->code = "unbound";
    str_append(
        it->message, sizeof(it->message),
        "; it takes effect once vm:%lu is in it: 'ha-manager set vm:%lu --group %s' (ha-sync "
        "never edits resources.cfg)",
        it->vmid, it->vmid, id
    );
}

/* An HA VM with a vGPU: its section made to name the nodes that can start it. */
static int hasync_keep(
    struct hasync *h, const struct sectioncfg_section *res, struct hasync_item *it,
    struct pvh_err *e
) {
    bool foreign;
    const struct sectioncfg_section *ours = hasync_ours(h, it->vmid, &foreign);
    char sid[32], other[256];
    snprintf(sid, sizeof(sid), "vm:%lu", it->vmid);
    it->action = HASYNC_SKIP;
    if (foreign) {
        it->code = "not-ours";
        str_fmt(
            it->message, sizeof(it->message),
            "%s has a section " HARULES_ID_FMT " that ha-sync did not write (without its comment "
            "'%s'); left as it is: rename or remove it to let ha-sync keep the VM's rule",
            h->res->file, it->vmid, HARULES_COMMENT
        );
        return 0;
    }
    if (h->res->form == HA_FORM_RULES && harules_other_rule(&h->cur, sid, other, sizeof(other))) {
        it->code = "other-rule";
        str_fmt(
            it->message, sizeof(it->message),
            "%s is in node-affinity rule %s already, and Proxmox ignores every node-affinity "
            "rule of a resource named in two: ha-sync keeps none for it; put the nodes that can "
            "start it ('pve-vgpu-hook where %lu') into %s",
            sid, other, it->vmid, other
        );
        return ours ? hasync_apply(h, it, NULL, ours, e) : 0;
    }
    if (!it->nodes[0]) {
        it->code = "no-node";
        str_fmt(
            it->message, sizeof(it->message),
            "no node can start VM %lu's %s vGPU ('pve-vgpu-hook where %lu' says why); %s", it->vmid,
            it->type, it->vmid, ours ? "its rule is left as it was" : "no rule written"
        );
        return 0;
    }
    _cleanup_free_ char *sec = harules_section(h->res->form, it->vmid, it->nodes);
    if (!sec) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    it->code = "ok";
    str_fmt(
        it->message, sizeof(it->message),
        "HA runs %s only on %s: the nodes that can start its %s vGPU%s%s", sid, it->nodes, it->type,
        it->kept[0] ? "; " : "", it->kept
    );
    hasync_group_note(h, res, it);
    return hasync_apply(h, it, sec, ours, e);
}

/* One HA resource: kept when a VM with a vGPU, its section removed when it has none any more. */
static int
hasync_resource(struct hasync *h, const struct sectioncfg_section *res, struct pvh_err *e) {
    unsigned long vmid;
    bool foreign;
    if (strcmp(res->type, "vm") || !vmid_parse(res->id, &vmid)) {
        return 0; /* containers have no vGPU */
    }
    struct hasync_item it = {.vmid = vmid};
    struct pvh_err why = {0};
    int r = cluster_ha_nodes(
        h->env, vmid, h->v, it.type, sizeof(it.type), it.nodes, sizeof(it.nodes), it.kept,
        sizeof(it.kept), &why
    );
    const struct sectioncfg_section *ours = hasync_ours(h, vmid, &foreign);
    if (r == -ENOENT) {
        if (!ours) {
            return 0; /* an HA VM without a vGPU: none of ours */
        }
        it.code = "no-vgpu";
        it.nodes[0] = it.type[0] = '\0';
        str_fmt(it.message, sizeof(it.message), "%s: its rule is removed", why.msg);
        r = hasync_apply(h, &it, NULL, ours, e);
    } else if (r < 0) {
        *e = why;
        return r;
    } else {
        r = hasync_keep(h, res, &it, e);
    }
    if (r == 0 && it.action != HASYNC_SKIP) {
        r = hasync_twin(h, &it, e);
    }
    struct hasync_item *slot = r == 0 ? hasync_push(h, vmid) : NULL;
    if (r == 0 && !slot) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    if (slot) {
        *slot = it;
    }
    return r;
}

/* Our sections of VMs that are no HA resource any more. */
static int hasync_orphans(struct hasync *h, struct pvh_err *e) {
    for (size_t i = 0; i < h->cur.n; i++) {
        unsigned long vmid;
        if (!harules_ours(&h->cur.sections[i], h->res->form, &vmid)) {
            continue;
        }
        if (ha_vm_managed(&h->resources, vmid)) {
            continue;
        }
        struct hasync_item *it = hasync_push(h, vmid);
        if (!it) {
            return err_set(e, -ENOMEM, "out of memory");
        }
        it->code = "not-ha";
        str_fmt(
            it->message, sizeof(it->message),
            "vm:%lu is no HA resource any more: its rule is removed", vmid
        );
        int r = hasync_apply(h, it, NULL, &h->cur.sections[i], e);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

static int hasync_decide(struct hasync *h, struct pvh_err *e) {
    int r = hasync_load(h, e);
    for (size_t i = 0; r == 0 && i < h->resources.n; i++) {
        r = hasync_resource(h, &h->resources.sections[i], e);
    }
    return r == 0 ? hasync_orphans(h, e) : r;
}

int ha_sync(
    const struct hook_env *env, bool dry_run, struct hasync_result *res, struct pvh_warnings *w,
    struct pvh_err *e
) {
    return ha_sync_view(env, dry_run, NULL, res, w, e);
}

/* The cluster view the caller read, or read here. */
static int hasync_view(struct hasync *h, const struct cluster_view *view, struct pvh_err *e) {
    if (view) {
        h->v = view;
        return 0;
    }
    int r = cluster_load(h->env, &h->own, e);
    h->v = r == 0 ? &h->own : NULL;
    return r;
}

int ha_sync_view(
    const struct hook_env *env, bool dry_run, const struct cluster_view *view,
    struct hasync_result *res, struct pvh_warnings *w, struct pvh_err *e
) {
    memset(res, 0, sizeof(*res));
    struct hasync h = {.env = env, .res = res};
    struct pvh_config cfg;
    bool locked = false;
    int timeout_ms = 0;
    /* no HA here first (no-ha: doctor and status --cluster then say nothing of HA), then our
     * settings before anything is decided: a VM must never lose its rule because they could
     * not be read */
    int r = hasync_form(env, res, e);
    if (r == 0) {
        r = config_load_to_act(env, &cfg, w, e);
        timeout_ms = cfg.lock_timeout_s * 1000;
        config_free(&cfg);
    }
    if (r == 0 && (r = hasync_view(&h, view, e)) == 0 && !dry_run) {
        r = managed_cluster_lock(env, PVE_HA_LOCK_DIR, res->file, timeout_ms, &locked, w, e);
    }
    if (r == 0) {
        r = hasync_decide(&h, e);
    }
    if (r == 0 && res->changed && !dry_run) {
        r = hostfs_replace_file(env->fs, res->file, h.text, strlen(h.text), 0640);
        if (r < 0) {
            err_set(e, r, "cannot write %s: %s", res->file, strerror(-r));
            managed_write_hint(e, r, "nothing was changed");
        }
    }
    if (locked) {
        hostfs_cluster_unlock(env->fs, PVE_HA_LOCK_DIR);
    }
    if (r < 0) {
        hasync_free(res);
    }
    cluster_view_free(&h.own); /* zeroed when the caller's view was used; partial on failure */
    sectioncfg_free(&h.resources);
    sectioncfg_free(&h.cur);
    free(h.orig);
    free(h.text);
    return r;
}

/* Is it a problem: its code, fix and message in p; false when HA can only start it where it
 * can. */
static bool hasync_classify(
    const struct hasync_result *res, const struct hasync_item *it, struct hasync_problem *p
) {
    memset(p, 0, sizeof(*p));
    p->vmid = it->vmid;
    if ((it->action == HASYNC_CREATE || it->action == HASYNC_UPDATE) && !it->renamed_only) {
        p->code = "ha-nodes";
        snprintf(p->fix, sizeof(p->fix), "pve-vgpu-hook ha-sync (or \"ha_rules\": true)");
        snprintf(p->nodes, sizeof(p->nodes), "%s", it->nodes);
        str_msg(
            p->message, sizeof(p->message),
            "HA may recover or relocate VM %lu to a node that cannot start its vGPU: %s "
            "vgpu-hook-%lu in %s %s (nodes that can: %s)",
            it->vmid, res->form == HA_FORM_RULES ? "rule" : "group", it->vmid, res->file,
            it->action == HASYNC_CREATE ? "is missing" : "is out of step", it->nodes
        );
        return true;
    }
    if (it->code && !strcmp(it->code, "no-node")) {
        p->code = "ha-no-node";
        snprintf(
            p->fix, sizeof(p->fix), "pve-vgpu-hook where %lu says why each node cannot", it->vmid
        );
        snprintf(p->message, sizeof(p->message), "%s", it->message);
        return true;
    }
    return false;
}

int hasync_problems(
    const struct hook_env *env, const struct cluster_view *view, struct hasync_problem **out,
    size_t *n, struct pvh_err *unknown
) {
    struct hasync_result res;
    struct pvh_warnings w = {0};
    struct pvh_err e = {0};
    *out = NULL;
    *n = 0;
    memset(unknown, 0, sizeof(*unknown));
    int r = ha_sync_view(env, true, view, &res, &w, &e);
    warn_free(&w);
    if (r < 0) {
        if (!e.reason || strcmp(e.reason, "no-ha")) {
            *unknown = e; /* HA runs, but which nodes may take its VMs cannot be told */
        }
        return 0;
    }
    *out = res.n ? calloc(res.n, sizeof(**out)) : NULL;
    r = res.n && !*out ? -ENOMEM : 0;
    for (size_t i = 0; r == 0 && i < res.n; i++) {
        *n += hasync_classify(&res, &res.items[i], &(*out)[*n]);
    }
    hasync_free(&res);
    return r;
}
