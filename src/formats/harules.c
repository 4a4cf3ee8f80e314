#include "harules.h"

#include "mdev_uuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ha_form_name(enum ha_form f) {
    return f == HA_FORM_RULES ? "rules" : "groups";
}

const char *ha_form_type(enum ha_form f) {
    return f == HA_FORM_RULES ? "node-affinity" : "group";
}

bool harules_ours(const struct sectioncfg_section *s, enum ha_form f, unsigned long *vmid) {
    static const char migrated[] = "ha-group-";
    const char *comment = sectioncfg_get(s, "comment"), *id = s->id;
    bool was_group = f == HA_FORM_RULES && !strncmp(id, migrated, strlen(migrated));
    id += was_group ? strlen(migrated) : 0;
    if (strcmp(s->type, ha_form_type(f)) || strncmp(id, "vgpu-hook-", 10) ||
        !vmid_parse(id + 10, vmid) || !comment || strcmp(comment, HARULES_COMMENT)) {
        return false;
    }
    /* resources other VMs joined our group with: renaming it to ours (vm:<vmid> only) would
     * drop them, so the migrated rule stays the admin's */
    char own[32];
    const char *res = sectioncfg_get(s, "resources");
    snprintf(own, sizeof(own), "vm:%lu", *vmid);
    return !was_group || (res && !strcmp(res, own));
}

char *harules_section(enum ha_form f, unsigned long vmid, const char *nodes) {
    char *out = NULL;
    int r =
        f == HA_FORM_RULES
            ? asprintf(
                  &out,
                  "node-affinity: " HARULES_ID_FMT "\n\tcomment %s\n\tnodes "
                  "%s\n\tresources vm:%lu\n\tstrict 1\n\n",
                  vmid, HARULES_COMMENT, nodes, vmid
              )
            : asprintf(
                  &out, "group: " HARULES_ID_FMT "\n\tcomment %s\n\tnodes %s\n\trestricted 1\n\n",
                  vmid, HARULES_COMMENT, nodes
              );
    return r < 0 ? NULL : out;
}

int harules_put(const char *text, const char *id, const char *sec, char **out) {
    size_t start, end, len = strlen(text);
    *out = NULL;
    if (sectioncfg_span(text, true, id, &start, &end) < 0) {
        if (!sec) {
            return -ENOENT;
        }
        /* Proxmox ends every section with an empty line; keep ours apart from what precedes */
        bool blank = len == 0 || (len >= 2 && !strcmp(text + len - 2, "\n\n"));
        const char *sep = blank ? "" : text[len - 1] == '\n' ? "\n" : "\n\n";
        return asprintf(out, "%s%s%s", text, sep, sec) < 0 ? -ENOMEM : 0;
    }
    return asprintf(out, "%.*s%s%s", (int)start, text, sec ? sec : "", text + end) < 0 ? -ENOMEM
                                                                                       : 0;
}

bool harules_other_rule(const struct sectioncfg *rules, const char *sid, char *rule, size_t size) {
    for (size_t i = 0; i < rules->n; i++) {
        const struct sectioncfg_section *s = &rules->sections[i];
        unsigned long vmid;
        const char *res = sectioncfg_get(s, "resources");
        const char *off = sectioncfg_get(s, "disable"); /* "\tdisable" or "\tdisable 1" */
        if (strcmp(s->type, "node-affinity") || harules_ours(s, HA_FORM_RULES, &vmid) || !res ||
            (off && strcmp(off, "0"))) {
            continue;
        }
        if (list_has(res, sid)) {
            snprintf(rule, size, "%s", s->id);
            return true;
        }
    }
    return false;
}
