#include "nodeinv.h"

#include "cleanup.h"
#include "strutil.h"
#include "vgpu_type.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
    [NINV_MDEV] = "mdev",
    [NINV_SRIOV_MDEV] = "sriov-mdev",
    [NINV_VENDOR_IFACE] = "vendor-interface"};
static const char *const state_names[] = {
    [NINV_RUNNING] = "running",
    [NINV_BUSY] = "busy",
    [NINV_LEFTOVER] = "leftover",
    [NINV_FOREIGN] = "foreign"};

const char *ninv_kind_name(enum ninv_kind k) {
    return kind_names[k];
}

const char *ninv_state_name(enum ninv_state s) {
    return state_names[s];
}

void *ninv_push(void *arr, size_t *n, size_t elem, size_t max) {
    void **p = arr;
    if (*n >= max) {
        return NULL;
    }
    char *grown = realloc(*p, (*n + 1) * elem);
    if (!grown) {
        return NULL;
    }
    *p = grown;
    memset(grown + *n * elem, 0, elem);
    return grown + (*n)++ * elem;
}

void nodeinv_free(struct node_inv *inv) {
    for (size_t g = 0; g < inv->ngpus; g++) {
        free(inv->gpus[g].types);
        free(inv->gpus[g].functions);
        free(inv->gpus[g].idents);
    }
    free(inv->gpus);
    free(inv->vgpus);
    inv->gpus = NULL;
    inv->vgpus = NULL;
    inv->ngpus = inv->nvgpus = 0;
}

static void add_str(json_object *o, const char *key, const char *v) {
    json_object_object_add(o, key, json_object_new_string(v));
}

static void add_int(json_object *o, const char *key, long long v) {
    json_object_object_add(o, key, json_object_new_int64(v));
}

/* What a map line needs of function f: "id" vendor:device, "subsystem_id" ("" none),
 * "iommugroup" (null none). */
static json_object *ident_json(const char *pci, const struct pci_ident *id) {
    json_object *o = json_object_new_object();
    char ids[10];
    add_str(o, "pci", pci);
    snprintf(ids, sizeof(ids), "%s:%s", id->vendor, id->device);
    add_str(o, "id", ids);
    snprintf(ids, sizeof(ids), "%s:%s", id->subsys_vendor, id->subsys_device);
    add_str(o, "subsystem_id", id->subsys_vendor[0] && id->subsys_device[0] ? ids : "");
    json_object_object_add(
        o, "iommugroup", id->iommu_group >= 0 ? json_object_new_int64(id->iommu_group) : NULL
    );
    return o;
}

static json_object *gpu_json(const struct ninv_gpu *g) {
    json_object *o = json_object_new_object(), *types = json_object_new_array();
    json_object *fns = json_object_new_array();
    add_str(o, "pci", g->pci);
    add_str(o, "model", g->model);
    add_str(o, "kind", ninv_kind_name(g->kind));
    for (size_t t = 0; t < g->ntypes; t++) {
        const struct ninv_type *ty = &g->types[t];
        json_object *to = json_object_new_object();
        add_str(to, "id", ty->id);
        add_str(to, "name", ty->name);
        add_int(to, "framebuffer_mib", ty->fb_mib);
        add_int(to, "max", ty->max);
        add_int(to, "free", ty->free);
        json_object_array_add(types, to);
    }
    for (size_t f = 0; f < g->nfunctions; f++) {
        json_object_array_add(fns, json_object_new_string(g->functions[f]));
    }
    json_object_object_add(o, "types", types);
    json_object_object_add(o, "functions", fns);
    if (g->idents) { /* a key of its own: an older reader takes "functions" as it always did */
        json_object *ids = json_object_new_array();
        for (size_t f = 0; f < g->nfunctions; f++) {
            json_object_array_add(ids, ident_json(g->functions[f], &g->idents[f]));
        }
        json_object_object_add(o, "function_ids", ids);
    }
    return o;
}

char *nodeinv_write(const struct node_inv *inv, bool with_taken) {
    json_object *root = json_object_new_object(), *gpus = json_object_new_array();
    json_object *vgpus = json_object_new_array();
    add_int(root, "format", NODEINV_FORMAT);
    add_str(root, "node", inv->node);
    if (with_taken) {
        add_int(root, "taken", inv->taken);
    }
    add_str(root, "nvidia_driver", inv->driver);
    add_str(root, "qemu_server", inv->qemu_server);
    json_object_object_add(root, "vgpu_unlock", json_object_new_boolean(inv->unlock));
    for (size_t g = 0; g < inv->ngpus; g++) {
        json_object_array_add(gpus, gpu_json(&inv->gpus[g]));
    }
    for (size_t i = 0; i < inv->nvgpus; i++) {
        const struct ninv_vgpu *v = &inv->vgpus[i];
        json_object *o = json_object_new_object();
        add_int(o, "vmid", (long long)v->vmid);
        add_str(o, "type", v->type);
        add_str(o, "gpu", v->gpu);
        add_str(o, "function", v->function);
        add_str(o, "uuid", v->uuid);
        add_str(o, "state", ninv_state_name(v->state));
        json_object_array_add(vgpus, o);
    }
    json_object_object_add(root, "gpus", gpus);
    json_object_object_add(root, "vgpus", vgpus);
    const char *s = json_object_to_json_string_ext(
        root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE
    );
    size_t len = s ? strlen(s) : 0;
    char *out = s ? malloc(len + 2) : NULL;
    if (out) {
        memcpy(out, s, len);
        memcpy(out + len, "\n", 2);
    }
    json_object_put(root);
    return out;
}

/* Parsing: every helper fills why and returns -EINVAL on the first problem. */
struct rd {
    char *why;
    size_t whysize;
};

static int bad(struct rd *rd, const char *where, const char *key, const char *what) {
    str_msg(rd->why, rd->whysize, "%s%s%s %s", where, where[0] ? "." : "", key, what);
    return -EINVAL;
}

static int
rd_str(struct rd *rd, json_object *o, const char *where, const char *key, char *buf, size_t size) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) {
        return bad(rd, where, key, "is missing or not a string");
    }
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (len >= size || strlen(s) != len || str_has_ctl(s, false)) {
        return bad(rd, where, key, "is too long or has control characters");
    }
    memcpy(buf, s, len + 1);
    return 0;
}

static int rd_int(
    struct rd *rd, json_object *o, const char *where, const char *key, long long min, long long max,
    long long *out
) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int)) {
        return bad(rd, where, key, "is missing or not an integer");
    }
    *out = json_object_get_int64(v);
    if (*out < min || *out > max) {
        return bad(rd, where, key, "is out of range");
    }
    return 0;
}

static int rd_pci(struct rd *rd, const char *where, const char *key, char *pci) {
    char norm[PCI_ID_LEN];
    if (pci_id_normalize(pci, norm, sizeof(norm)) < 0 || strcmp(norm, pci)) {
        return bad(rd, where, key, "is not a PCI id like 0000:41:00.0");
    }
    return 0;
}

static int rd_enum(
    struct rd *rd, json_object *o, const char *where, const char *key, const char *const *names,
    size_t n, int *out
) {
    char s[32];
    int r = rd_str(rd, o, where, key, s, sizeof(s));
    for (size_t i = 0; r == 0 && i < n; i++) {
        if (!strcmp(s, names[i])) {
            *out = (int)i;
            return 0;
        }
    }
    return r < 0 ? r : bad(rd, where, key, "is not one of the known values");
}

static json_object *rd_array(struct rd *rd, json_object *o, const char *where, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_array)) {
        bad(rd, where, key, "is missing or not an array");
        return NULL;
    }
    return v;
}

/* A type id as sysfs names it (nvidia-47): attach writes another node's into a VM config's
 * mdev=, which neither a blank nor anything PVE's [^/\.:]+ refuses may reach. */
static bool type_id_valid(const char *id) {
    return vgpu_type_query_valid(id) && mdev_type_id_valid(id);
}

static int rd_type(struct rd *rd, json_object *o, const char *where, struct ninv_type *t) {
    long long fb, max, fr;
    int r = rd_str(rd, o, where, "id", t->id, sizeof(t->id));
    if (r == 0 && !type_id_valid(t->id)) {
        r = bad(rd, where, "id", "is not a type id");
    }
    if (r < 0 || (r = rd_str(rd, o, where, "name", t->name, sizeof(t->name))) < 0 ||
        (r = rd_int(rd, o, where, "framebuffer_mib", 0, 1 << 24, &fb)) < 0 ||
        (r = rd_int(rd, o, where, "max", 0, 4096, &max)) < 0 ||
        (r = rd_int(rd, o, where, "free", 0, 4096, &fr)) < 0) {
        return r;
    }
    t->fb_mib = (unsigned)fb;
    t->max = (unsigned)max;
    t->free = (long)fr;
    return 0;
}

/* "vendor:device" as 4 lowercase hex digits each into a and b; "" too when empty_ok. */
static int rd_pci_ids(
    struct rd *rd, json_object *o, const char *where, const char *key, bool empty_ok, char *a,
    char *b
) {
    char s[16];
    int r = rd_str(rd, o, where, key, s, sizeof(s));
    if (r < 0 || (empty_ok && !s[0])) {
        a[0] = b[0] = '\0';
        return r;
    }
    if (strlen(s) != 9 || s[4] != ':' || strspn(s, "0123456789abcdef") != 4 ||
        strspn(s + 5, "0123456789abcdef") != 4) {
        return bad(rd, where, key, "is not a PCI id like 10de:1b38");
    }
    memcpy(a, s, 4);
    memcpy(b, s + 5, 4);
    a[4] = b[4] = '\0';
    return 0;
}

/* One "function_ids" entry: it must name function pci (the same order as "functions"). */
static int
rd_ident(struct rd *rd, json_object *o, const char *where, const char *pci, struct pci_ident *id) {
    char got[PCI_ID_LEN];
    json_object *grp;
    int r;
    if (!json_object_is_type(o, json_type_object)) {
        return bad(rd, where, "(entry)", "is not an object");
    }
    if ((r = rd_str(rd, o, where, "pci", got, sizeof(got))) < 0 ||
        (r = rd_pci_ids(rd, o, where, "id", false, id->vendor, id->device)) < 0 ||
        (r = rd_pci_ids(rd, o, where, "subsystem_id", true, id->subsys_vendor, id->subsys_device)) <
            0) {
        return r;
    }
    if (strcmp(got, pci) != 0) {
        return bad(rd, where, "pci", "is not the function \"functions\" lists at its place");
    }
    if (!json_object_object_get_ex(o, "iommugroup", &grp)) {
        return bad(rd, where, "iommugroup", "is missing");
    }
    long long g = -1;
    if (grp && (!json_object_is_type(grp, json_type_int) || (g = json_object_get_int64(grp)) < 0 ||
                g > INT_MAX)) {
        return bad(rd, where, "iommugroup", "is not null or a group number");
    }
    id->iommu_group = (long)g;
    return 0;
}

/* "function_ids", optional (an older version of the tool publishes none): one per function. */
static int rd_idents(struct rd *rd, json_object *o, const char *where, struct ninv_gpu *g) {
    json_object *ids;
    if (!json_object_object_get_ex(o, "function_ids", &ids)) {
        return 0;
    }
    if (!json_object_is_type(ids, json_type_array) ||
        json_object_array_length(ids) != g->nfunctions) {
        return bad(rd, where, "function_ids", "is not an array with one entry per function");
    }
    if (!(g->idents = calloc(g->nfunctions ? g->nfunctions : 1, sizeof(*g->idents)))) {
        return -ENOMEM;
    }
    char sub[96];
    int r = 0;
    for (size_t i = 0; r == 0 && i < g->nfunctions; i++) {
        snprintf(sub, sizeof(sub), "%s.function_ids[%zu]", where, i);
        r = rd_ident(rd, json_object_array_get_idx(ids, i), sub, g->functions[i], &g->idents[i]);
    }
    return r;
}

static int rd_gpu(struct rd *rd, json_object *o, const char *where, struct ninv_gpu *g) {
    int kind = 0, r;
    json_object *types, *fns;
    if ((r = rd_str(rd, o, where, "pci", g->pci, sizeof(g->pci))) < 0 ||
        (r = rd_pci(rd, where, "pci", g->pci)) < 0 ||
        (r = rd_str(rd, o, where, "model", g->model, sizeof(g->model))) < 0 ||
        (r = rd_enum(rd, o, where, "kind", kind_names, 3, &kind)) < 0 ||
        !(types = rd_array(rd, o, where, "types")) ||
        !(fns = rd_array(rd, o, where, "functions"))) {
        return r < 0 ? r : -EINVAL;
    }
    g->kind = (enum ninv_kind)kind;
    char sub[64];
    for (size_t i = 0; i < json_object_array_length(types); i++) {
        struct ninv_type *t = ninv_push(&g->types, &g->ntypes, sizeof(*t), NODEINV_MAX_ITEMS);
        snprintf(sub, sizeof(sub), "%s.types[%zu]", where, i);
        if (!t) {
            return bad(rd, where, "types", "has too many entries");
        }
        if ((r = rd_type(rd, json_object_array_get_idx(types, i), sub, t)) < 0) {
            return r;
        }
    }
    for (size_t i = 0; i < json_object_array_length(fns); i++) {
        char(*f)[PCI_ID_LEN] =
            ninv_push(&g->functions, &g->nfunctions, sizeof(*f), NODEINV_MAX_ITEMS);
        json_object *v = json_object_array_get_idx(fns, i);
        const char *s = json_object_get_string(v);
        if (!f || !json_object_is_type(v, json_type_string) || strlen(s) >= sizeof(*f)) {
            return bad(rd, where, "functions", "has a bad or too many entries");
        }
        snprintf(*f, sizeof(*f), "%s", s);
        if ((r = rd_pci(rd, where, "functions", *f)) < 0) {
            return r;
        }
    }
    return rd_idents(rd, o, where, g);
}

static int rd_vgpu(struct rd *rd, json_object *o, const char *where, struct ninv_vgpu *v) {
    long long vmid;
    int state = 0, r;
    if ((r = rd_int(rd, o, where, "vmid", 0, 999999999, &vmid)) < 0 ||
        (r = rd_str(rd, o, where, "type", v->type, sizeof(v->type))) < 0 ||
        (r = rd_str(rd, o, where, "gpu", v->gpu, sizeof(v->gpu))) < 0 ||
        (r = rd_pci(rd, where, "gpu", v->gpu)) < 0 ||
        (r = rd_str(rd, o, where, "function", v->function, sizeof(v->function))) < 0 ||
        (r = rd_pci(rd, where, "function", v->function)) < 0 ||
        (r = rd_str(rd, o, where, "uuid", v->uuid, sizeof(v->uuid))) < 0 ||
        (r = rd_enum(rd, o, where, "state", state_names, 4, &state)) < 0) {
        return r;
    }
    if (!type_id_valid(v->type)) {
        return bad(rd, where, "type", "is not a type id");
    }
    if (v->uuid[0] && !uuid_is_canonical(v->uuid)) {
        return bad(rd, where, "uuid", "is not a UUID");
    }
    v->vmid = (unsigned long)vmid;
    v->state = (enum ninv_state)state;
    return 0;
}

static int rd_root(struct rd *rd, json_object *root, struct node_inv *inv) {
    long long fmt;
    int r;
    json_object *gpus, *vgpus, *un;
    if (!json_object_is_type(root, json_type_object)) {
        return bad(rd, "", "(top level)", "is not an object");
    }
    if ((r = rd_int(rd, root, "", "format", NODEINV_FORMAT, NODEINV_FORMAT, &fmt)) < 0 ||
        (r = rd_str(rd, root, "", "node", inv->node, sizeof(inv->node))) < 0 ||
        (r = rd_int(rd, root, "", "taken", 0, 1LL << 40, &inv->taken)) < 0 ||
        (r = rd_str(rd, root, "", "nvidia_driver", inv->driver, sizeof(inv->driver))) < 0 ||
        (r = rd_str(rd, root, "", "qemu_server", inv->qemu_server, sizeof(inv->qemu_server))) < 0) {
        return r;
    }
    inv->format = (unsigned)fmt;
    if (!node_name_valid(inv->node)) {
        return bad(rd, "", "node", "is not a node name");
    }
    if (!json_object_object_get_ex(root, "vgpu_unlock", &un) ||
        !json_object_is_type(un, json_type_boolean)) {
        return bad(rd, "", "vgpu_unlock", "is missing or not a boolean");
    }
    inv->unlock = json_object_get_boolean(un);
    if (!(gpus = rd_array(rd, root, "", "gpus")) || !(vgpus = rd_array(rd, root, "", "vgpus"))) {
        return -EINVAL;
    }
    char sub[32];
    for (size_t i = 0; i < json_object_array_length(gpus); i++) {
        struct ninv_gpu *g = ninv_push(&inv->gpus, &inv->ngpus, sizeof(*g), NODEINV_MAX_GPUS);
        snprintf(sub, sizeof(sub), "gpus[%zu]", i);
        if (!g) {
            return bad(rd, "", "gpus", "has too many entries");
        }
        if ((r = rd_gpu(rd, json_object_array_get_idx(gpus, i), sub, g)) < 0) {
            return r;
        }
    }
    for (size_t i = 0; i < json_object_array_length(vgpus); i++) {
        struct ninv_vgpu *v = ninv_push(&inv->vgpus, &inv->nvgpus, sizeof(*v), NODEINV_MAX_ITEMS);
        snprintf(sub, sizeof(sub), "vgpus[%zu]", i);
        if (!v) {
            return bad(rd, "", "vgpus", "has too many entries");
        }
        if ((r = rd_vgpu(rd, json_object_array_get_idx(vgpus, i), sub, v)) < 0) {
            return r;
        }
    }
    return 0;
}

int nodeinv_parse(const char *text, size_t len, struct node_inv *out, char *why, size_t whysize) {
    struct rd rd = {why, whysize};
    memset(out, 0, sizeof(*out));
    if (len > CONFIG_MAX_BYTES) {
        str_msg(why, whysize, "larger than 1 MiB");
        return -EINVAL;
    }
    struct json_tokener *tok = json_tokener_new();
    if (!tok) {
        return -ENOMEM;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    while (root && end < len && strchr(" \t\r\n", text[end])) {
        end++;
    }
    int r = -EINVAL;
    if (!root || end < len) {
        str_msg(why, whysize, "invalid JSON");
    } else {
        r = rd_root(&rd, root, out);
    }
    json_object_put(root);
    if (r < 0) {
        nodeinv_free(out);
    }
    return r;
}
