#include "members.h"

#include "cleanup.h"
#include "hostpaths.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

/* {"nodename": ..., "nodelist": {"pve1": {"id": 1, "online": 1, "ip": ...}}}; a standalone
 * node's pmxcfs writes only {"nodename": ..., "version": N} (pve-cluster's status.c). */
int members_load(const struct hostfs *fs, struct pve_member **out, size_t *n) {
    *out = NULL;
    *n = 0;
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (hostfs_read_alloc(fs, PVE_MEMBERS, CONFIG_MAX_BYTES, &text, &len) < 0) {
        return 0;
    }
    json_object *root = json_tokener_parse(text), *list, *self;
    if (root && json_object_is_type(root, json_type_object) &&
        !json_object_object_get_ex(root, "nodelist", NULL) &&
        json_object_object_get_ex(root, "nodename", &self) &&
        json_object_is_type(self, json_type_string)) {
        json_object_put(root);
        return 0; /* standalone: the nodes directory is all there is */
    }
    if (!root || !json_object_object_get_ex(root, "nodelist", &list) ||
        !json_object_is_type(list, json_type_object)) {
        json_object_put(root);
        return -EINVAL;
    }
    struct pve_member *m = calloc((size_t)json_object_object_length(list) + 1, sizeof(*m));
    if (!m) {
        json_object_put(root);
        return -ENOMEM;
    }
    json_object_object_foreach(list, name, node) {
        json_object *on;
        if (!node_name_valid(name)) {
            continue;
        }
        snprintf(m[*n].name, sizeof(m[*n].name), "%s", name);
        m[(*n)++].online =
            json_object_object_get_ex(node, "online", &on) && json_object_get_int(on);
    }
    json_object_put(root);
    *out = m;
    return 0;
}
