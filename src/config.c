#include "config.h"

#include "mdev_uuid.h"
#include "pveconf.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const policy_names[] = {"equal-size", "homogeneous", "mixed-size", "none"};
static const char *const placement_names[] = {"pack", "spread"};
static const char *const uuid_args_names[] = {"auto", "always", "never"};
static const char *const uuid_source_names[] = {"mdev", "smbios"};

const char *policy_name(enum pvh_policy p) {
    return policy_names[p];
}

void config_defaults(struct pvh_config *c) {
    memset(c, 0, sizeof(*c));
    c->policy = POLICY_EQUAL_SIZE;
    strcpy(c->series_groups[0], "QC"); /* same-size C and Q share a card (seeds, 4.3.1) */
    c->nseries_groups = 1;
    c->placement = PLACEMENT_PACK;
    c->uuid_args = UUID_ARGS_AUTO;
    c->uuid_source = UUID_SOURCE_MDEV;
    c->remove_wait_s = 10;
    c->reclaim_stale = true;
}

void config_free(struct pvh_config *c) {
    for (size_t i = 0; i < c->nvms; i++) {
        for (size_t j = 0; j < c->vms[i].nlists; j++) {
            free(c->vms[i].lists[j].gpus);
        }
        free(c->vms[i].lists);
        free(c->vms[i].args_before);
        free(c->vms[i].hookscript_added);
    }
    free(c->vms);
    c->vms = NULL;
    c->nvms = 0;
}

const struct vm_settings *config_vm(const struct pvh_config *c, unsigned long vmid) {
    for (size_t i = 0; i < c->nvms; i++) {
        if (c->vms[i].vmid == vmid) {
            return &c->vms[i];
        }
    }
    return NULL;
}

static int bad_value(struct pvh_err *e, const char *path, const char *key, const char *why) {
    err_set(e, -EINVAL, "%s: \"%s\" %s", path, key, why);
    err_hint(e, "fix %s (see 'pve-vgpu-hook help config'); nothing was changed", path);
    return -EINVAL;
}

static int parse_enum(
    json_object *v, const char *const *names, size_t n, int *out, const char *path, const char *key,
    struct pvh_err *e
) {
    char why[256];
    int w = snprintf(why, sizeof(why), "must be one of:");
    for (size_t i = 0; i < n && w > 0 && (size_t)w < sizeof(why); i++) {
        w += snprintf(why + w, sizeof(why) - (size_t)w, " \"%s\"", names[i]);
    }
    if (!json_object_is_type(v, json_type_string)) {
        return bad_value(e, path, key, why);
    }
    const char *s = json_object_get_string(v);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(s, names[i])) {
            *out = (int)i;
            return 0;
        }
    }
    return bad_value(e, path, key, why);
}

static int
parse_series_groups(json_object *v, struct pvh_config *c, const char *path, struct pvh_err *e) {
    static const char *why = "must be a list of lists of series letters, e.g. [[\"Q\", \"C\"]]";
    if (!json_object_is_type(v, json_type_array) ||
        json_object_array_length(v) > SERIES_GROUPS_MAX) {
        return bad_value(e, path, "series_groups", why);
    }
    c->nseries_groups = 0;
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        json_object *g = json_object_array_get_idx(v, i);
        if (!json_object_is_type(g, json_type_array) || json_object_array_length(g) > 4) {
            return bad_value(e, path, "series_groups", why);
        }
        char *dst = c->series_groups[c->nseries_groups];
        size_t k = 0;
        for (size_t j = 0; j < json_object_array_length(g); j++) {
            json_object *s = json_object_array_get_idx(g, j);
            const char *str =
                json_object_is_type(s, json_type_string) ? json_object_get_string(s) : "";
            if (strlen(str) != 1 || !strchr("ABCQ", str[0])) {
                return bad_value(e, path, "series_groups", why);
            }
            dst[k++] = str[0];
        }
        dst[k] = '\0';
        c->nseries_groups++;
    }
    return 0;
}

static int parse_gpu_array(
    json_object *a, struct vm_gpu_list *l, const char *path, const char *key, struct pvh_err *e
) {
    if (!json_object_is_type(a, json_type_array)) {
        return bad_value(e, path, key, "must be a list of PCI ids like \"0000:06:00.0\"");
    }
    size_t n = json_object_array_length(a);
    l->gpus = calloc(n ? n : 1, sizeof(*l->gpus));
    if (!l->gpus) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(a, i);
        if (!json_object_is_type(s, json_type_string) ||
            pci_id_normalize(json_object_get_string(s), l->gpus[l->n], sizeof(l->gpus[0])) < 0) {
            return bad_value(e, path, key, "must be a list of PCI ids like \"0000:06:00.0\"");
        }
        l->n++;
    }
    return 0;
}

static int parse_vm(
    const char *id, json_object *v, struct vm_settings *vm, const char *path,
    struct pvh_warnings *w, struct pvh_err *e
) {
    char key[160];
    snprintf(key, sizeof(key), "vms.%s", id);
    if (!vmid_parse(id, &vm->vmid)) {
        return bad_value(e, path, key, "is not a VMID (a number from 100 to 999999999)");
    }
    if (!json_object_is_type(v, json_type_object)) {
        return bad_value(e, path, key, "must be an object with \"type\" (and \"gpus\", \"index\")");
    }
    json_object *t;
    if (!json_object_object_get_ex(v, "type", &t) || !json_object_is_type(t, json_type_string) ||
        !*json_object_get_string(t) || strlen(json_object_get_string(t)) >= sizeof(vm->type)) {
        return bad_value(e, path, key, "needs \"type\": a vGPU type like \"GRID P40-2Q\"");
    }
    snprintf(vm->type, sizeof(vm->type), "%s", json_object_get_string(t));
    json_object_object_foreach(v, k, val) {
        char sub[200];
        snprintf(sub, sizeof(sub), "%s.%s", key, k);
        if (!strcmp(k, "type")) {
            continue;
        } else if (!strcmp(k, "index")) {
            if (!json_object_is_type(val, json_type_int) || json_object_get_int64(val) < 0 ||
                json_object_get_int64(val) > 15) {
                return bad_value(e, path, sub, "must be a hostpci-style index from 0 to 15");
            }
            vm->index = (unsigned)json_object_get_int64(val);
        } else if (!strcmp(k, "gpus")) {
            size_t n =
                json_object_is_type(val, json_type_object) ? json_object_object_length(val) : 1;
            vm->lists = calloc(n ? n : 1, sizeof(*vm->lists));
            if (!vm->lists) {
                return -ENOMEM;
            }
            if (json_object_is_type(val, json_type_object)) {
                json_object_object_foreach(val, node, arr) {
                    struct vm_gpu_list *l = &vm->lists[vm->nlists++];
                    snprintf(l->node, sizeof(l->node), "%s", node);
                    int r = parse_gpu_array(arr, l, path, sub, e);
                    if (r < 0) {
                        return r;
                    }
                }
            } else {
                int r = parse_gpu_array(val, &vm->lists[vm->nlists++], path, sub, e);
                if (r < 0) {
                    return r;
                }
            }
        } else if (!strcmp(k, "attached")) {
            json_object *a, *hs;
            if (!json_object_is_type(val, json_type_object)) {
                return bad_value(e, path, sub, "is written by attach; do not edit it");
            }
            vm->attached = true;
            if (json_object_object_get_ex(val, "args_before", &a) &&
                json_object_is_type(a, json_type_string) &&
                !(vm->args_before = strdup(json_object_get_string(a)))) {
                return -ENOMEM;
            }
            if (json_object_object_get_ex(val, "hookscript_added", &hs) &&
                json_object_is_type(hs, json_type_string) &&
                !(vm->hookscript_added = strdup(json_object_get_string(hs)))) {
                return -ENOMEM;
            }
        } else {
            warn_add(w, "%s: unknown key \"%s\" ignored", path, sub);
        }
    }
    return 0;
}

static void position(const char *text, size_t off, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static int parse_root(
    json_object *root, const char *path, struct pvh_config *c, struct pvh_warnings *w,
    struct pvh_err *e
) {
    if (!json_object_is_type(root, json_type_object)) {
        return bad_value(e, path, "(top level)", "must be a JSON object { ... }");
    }
    int r = 0;
    json_object_object_foreach(root, key, v) {
        int iv;
        if (!strcmp(key, "policy")) {
            r = parse_enum(v, policy_names, 4, &iv, path, key, e);
            c->policy = (enum pvh_policy)iv;
        } else if (!strcmp(key, "placement")) {
            r = parse_enum(v, placement_names, 2, &iv, path, key, e);
            c->placement = (enum pvh_placement)iv;
        } else if (!strcmp(key, "uuid_args")) {
            r = parse_enum(v, uuid_args_names, 3, &iv, path, key, e);
            c->uuid_args = (enum pvh_uuid_args)iv;
        } else if (!strcmp(key, "uuid_source")) {
            r = parse_enum(v, uuid_source_names, 2, &iv, path, key, e);
            c->uuid_source = (enum pvh_uuid_source)iv;
        } else if (!strcmp(key, "series_groups")) {
            r = parse_series_groups(v, c, path, e);
        } else if (!strcmp(key, "remove_wait_s")) {
            if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
                json_object_get_int64(v) > 600) {
                return bad_value(e, path, key, "must be a whole number of seconds from 0 to 600");
            }
            c->remove_wait_s = (int)json_object_get_int64(v);
        } else if (!strcmp(key, "reclaim_stale")) {
            if (!json_object_is_type(v, json_type_boolean)) {
                return bad_value(e, path, key, "must be true or false");
            }
            c->reclaim_stale = json_object_get_boolean(v);
        } else if (!strcmp(key, "vms")) {
            if (!json_object_is_type(v, json_type_object)) {
                return bad_value(e, path, key, "must be an object keyed by VMID");
            }
            size_t n = json_object_object_length(v);
            c->vms = calloc(n ? n : 1, sizeof(*c->vms));
            if (!c->vms) {
                return -ENOMEM;
            }
            json_object_object_foreach(v, id, vmv) {
                r = parse_vm(id, vmv, &c->vms[c->nvms++], path, w, e);
                if (r < 0) {
                    return r;
                }
            }
        } else {
            warn_add(w, "%s: unknown key \"%s\" ignored", path, key);
        }
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

int config_doc_parse(
    const char *text, size_t len, const char *path, json_object **root, struct pvh_err *e
) {
    *root = NULL;
    if (len > CONFIG_MAX_BYTES) {
        return err_set(e, -EFBIG, "%s is larger than 1 MiB, the pmxcfs limit", path);
    }
    struct json_tokener *tok = json_tokener_new();
    if (!tok) {
        return -ENOMEM;
    }
    /* Strict: a trailing comma or a comment is an error, not something to guess around. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *doc = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    const char *why = NULL;
    if (!doc) {
        why = jerr == json_tokener_continue ? "unexpected end of file"
                                            : json_tokener_error_desc(jerr);
    } else {
        while (end < len && strchr(" \t\r\n", text[end])) {
            end++;
        }
        if (end < len) {
            why = "unexpected text after the JSON value";
        }
    }
    if (why) {
        int line, col;
        position(text, end, &line, &col);
        json_object_put(doc);
        err_set(e, -EINVAL, "%s:%d:%d: invalid JSON: %s", path, line, col, why);
        err_hint(
            e, "fix the file (an example is in the README); until then every vGPU start "
               "is refused rather than guessed"
        );
        return -EINVAL;
    }
    *root = doc;
    return 0;
}

int config_parse(
    const char *text, size_t len, const char *path, struct pvh_config *c, struct pvh_warnings *w,
    struct pvh_err *e
) {
    config_defaults(c);
    json_object *root;
    int r = config_doc_parse(text, len, path, &root, e);
    if (r < 0) {
        return r;
    }
    r = parse_root(root, path, c, w, e);
    json_object_put(root);
    if (r < 0) {
        config_free(c);
    }
    return r;
}

int config_doc_set_vm(json_object *root, unsigned long vmid, json_object *entry) {
    char key[16];
    snprintf(key, sizeof(key), "%lu", vmid);
    json_object *vms;
    if (!json_object_object_get_ex(root, "vms", &vms)) {
        if (!entry) {
            return 0;
        }
        vms = json_object_new_object();
        if (!vms || json_object_object_add(root, "vms", vms) < 0) {
            json_object_put(entry);
            return -ENOMEM;
        }
    }
    if (!entry) {
        json_object_object_del(vms, key);
        if (json_object_object_length(vms) == 0) {
            json_object_object_del(root, "vms");
        }
        return 0;
    }
    return json_object_object_add(vms, key, entry) < 0 ? -ENOMEM : 0;
}

char *config_doc_serialize(json_object *root, size_t *len, bool *empty) {
    const char *s = json_object_to_json_string_ext(
        root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE
    );
    size_t l = strlen(s);
    char *out = malloc(l + 2);
    if (!out) {
        return NULL;
    }
    memcpy(out, s, l);
    out[l] = '\n';
    out[l + 1] = '\0';
    *len = l + 1;
    *empty = json_object_object_length(root) == 0;
    return out;
}
