#include "sectioncfg.h"

#include "cleanup.h"
#include "pveconf.h"
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sectioncfg_free(struct sectioncfg *c) {
    for (size_t i = 0; i < c->n; i++) {
        struct sectioncfg_section *s = &c->sections[i];
        for (size_t k = 0; k < s->nprops; k++) {
            free(s->props[k].key);
            free(s->props[k].value);
        }
        free(s->props);
        free(s->type);
        free(s->id);
    }
    free(c->sections);
    c->sections = NULL;
    c->n = 0;
}

/* [start, end) without leading and trailing blanks, as a new string. */
static char *trim_dup(const char *start, const char *end) {
    while (start < end && isspace((unsigned char)*start)) {
        start++;
    }
    while (end > start && isspace((unsigned char)end[-1])) {
        end--;
    }
    return strndup(start, (size_t)(end - start));
}

/* "<type>: <id>" (^(\S+):\s*(\S+)\s*$) or "<id>" (^(\S+)\s*$); false when not a header. */
static bool parse_header(const char *l, size_t len, bool typed, char **type, char **id) {
    const char *end = l + len;
    while (end > l && isspace((unsigned char)end[-1])) {
        end--;
    }
    if (end == l || isspace((unsigned char)*l)) {
        return false;
    }
    const char *idstart = l;
    if (typed) {
        const char *colon = l;
        while (colon < end && *colon != ':' && !isspace((unsigned char)*colon)) {
            colon++;
        }
        if (colon == l || colon >= end || *colon != ':') {
            return false;
        }
        idstart = colon + 1;
        while (idstart < end && isspace((unsigned char)*idstart)) {
            idstart++;
        }
        *type = strndup(l, (size_t)(colon - l));
    } else {
        *type = strdup("");
    }
    for (const char *p = idstart; p < end; p++) {
        if (isspace((unsigned char)*p)) {
            free(*type);
            return false;
        }
    }
    if (idstart == end) {
        free(*type);
        return false;
    }
    *id = strndup(idstart, (size_t)(end - idstart));
    return true;
}

static int add_prop(struct sectioncfg_section *s, const char *l, size_t len) {
    const char *end = l + len, *k = l;
    while (k < end && isspace((unsigned char)*k)) {
        k++;
    }
    const char *ke = k;
    while (ke < end && !isspace((unsigned char)*ke)) {
        ke++;
    }
    if (ke == k) {
        return 0; /* a blank line inside a section: PVE ignores it */
    }
    struct sectioncfg_prop *np = realloc(s->props, (s->nprops + 1) * sizeof(*np));
    if (!np) {
        return -ENOMEM;
    }
    s->props = np;
    struct sectioncfg_prop *p = &s->props[s->nprops];
    p->key = strndup(k, (size_t)(ke - k));
    p->value = trim_dup(ke, end);
    if (!p->key || !p->value) {
        free(p->key);
        free(p->value);
        return -ENOMEM;
    }
    s->nprops++;
    return 0;
}

int sectioncfg_parse(const char *text, bool typed, struct sectioncfg *out) {
    memset(out, 0, sizeof(*out));
    struct sectioncfg_section *cur = NULL;
    const char *p = text, *l;
    size_t len;
    while (str_next_line(&p, &l, &len)) {
        const char *nb = l;
        while (nb < l + len && isspace((unsigned char)*nb)) {
            nb++;
        }
        size_t after = (size_t)(p - text); /* where the section reaches with this line */
        if (nb < l + len && *nb == '#') {
            if (cur) { /* comments neither end nor start a section */
                cur->end = after;
            }
            continue;
        }
        if (len == 0) {
            if (cur) { /* an empty line ends the section, and is part of it */
                cur->end = after;
            }
            cur = NULL;
            continue;
        }
        if (cur && isspace((unsigned char)*l)) {
            if (add_prop(cur, l, len) < 0) {
                sectioncfg_free(out);
                return -ENOMEM;
            }
            cur->end = after;
            continue;
        }
        char *type = NULL, *id = NULL;
        if (!parse_header(l, len, typed, &type, &id)) {
            cur = NULL;
            continue; /* PVE ignores the line */
        }
        struct sectioncfg_section *ns =
            type && id ? realloc(out->sections, (out->n + 1) * sizeof(*ns)) : NULL;
        if (!ns) {
            free(type);
            free(id);
            sectioncfg_free(out);
            return -ENOMEM;
        }
        out->sections = ns;
        cur = &out->sections[out->n++];
        *cur = (struct sectioncfg_section
        ){.type = type, .id = id, .start = (size_t)(l - text), .end = after};
    }
    return 0;
}

int sectioncfg_span(const char *text, bool typed, const char *id, size_t *start, size_t *end) {
    _cleanup_(sectioncfg_freep) struct sectioncfg cfg = {0};
    int r = sectioncfg_parse(text, typed, &cfg);
    const struct sectioncfg_section *sec = r < 0 ? NULL : sectioncfg_find(&cfg, id);
    if (!sec) {
        return r < 0 ? r : -ENOENT;
    }
    *start = sec->start;
    *end = sec->end;
    return 0;
}

const struct sectioncfg_section *sectioncfg_find(const struct sectioncfg *c, const char *id) {
    for (size_t i = 0; i < c->n; i++) {
        if (!strcmp(c->sections[i].id, id)) {
            return &c->sections[i];
        }
    }
    return NULL;
}

const char *sectioncfg_get(const struct sectioncfg_section *s, const char *key) {
    for (size_t i = 0; i < s->nprops; i++) {
        if (!strcmp(s->props[i].key, key)) {
            return s->props[i].value;
        }
    }
    return NULL;
}

int storage_find(const struct sectioncfg *cfg, const char *id, struct storage_info *out) {
    const struct sectioncfg_section *s = sectioncfg_find(cfg, id);
    if (!s) {
        return -ENOENT;
    }
    const char *content = sectioncfg_get(s, "content");
    *out = (struct storage_info
    ){.type = s->type, .path = sectioncfg_get(s, "path"), .content = content ? content : ""};
    return 0;
}

bool list_has(const char *list, const char *item) {
    size_t n = strlen(item);
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l == n && !strncmp(p, item, n)) {
            return true;
        }
        p += l;
        p += *p == ',';
    }
    return false;
}

int mapping_paths(
    const struct sectioncfg *cfg, const char *id, const char *node, char (**paths)[16], size_t *n,
    struct pvh_err *e
) {
    *paths = NULL;
    *n = 0;
    const struct sectioncfg_section *s = sectioncfg_find(cfg, id);
    if (!s) {
        err_set(e, -ENOENT, "PCI mapping '%s' is not defined in /etc/pve/mapping/pci.cfg", id);
        err_hint(e, "create it under Datacenter > Resource Mappings, or use a PCI id in hostpci");
        return -ENOENT;
    }
    for (size_t i = 0; i < s->nprops; i++) {
        struct propstr ps;
        if (strcmp(s->props[i].key, "map") != 0) {
            continue;
        }
        if (propstr_parse(s->props[i].value, NULL, &ps, e) < 0) {
            free(TAKE_PTR(*paths));
            *n = 0;
            return err_prefix(e, "mapping '%s' in /etc/pve/mapping/pci.cfg: ", id);
        }
        const char *mnode = propstr_get(&ps, "node");
        const char *mpath = propstr_get(&ps, "path");
        for (const char *q = mpath; mnode && q && !strcmp(mnode, node) && *q;) {
            size_t ql = strcspn(q, ";");
            _cleanup_free_ char *one = strndup(q, ql);
            char(*np)[16] = realloc(*paths, (*n + 1) * sizeof(**paths));
            if (!one || !np) {
                free(np ? np : *paths);
                *paths = NULL;
                *n = 0;
                propstr_free(&ps);
                return err_set(e, -ENOMEM, "out of memory");
            }
            *paths = np;
            if (pci_id_normalize(one, (*paths)[*n], sizeof((*paths)[0])) == 0) {
                (*n)++;
            }
            q += ql;
            q += *q == ';';
        }
        propstr_free(&ps);
    }
    if (*n == 0) {
        free(TAKE_PTR(*paths));
        err_set(e, -ENOENT, "PCI mapping '%s' has no device for node '%s'", id, node);
        err_hint(
            e,
            "add a 'map' entry for node %s to the mapping, or start the VM on a node that "
            "has one",
            node
        );
        return -ENOENT;
    }
    return 0;
}
