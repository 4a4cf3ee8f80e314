#include "pveconf.h"

#include "cleanup.h"
#include "mdev_uuid.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Key of a PVE config line: ^([a-z][a-z_-]*\d*):\s*(.+?)\s*$ (value non-empty). */
static bool line_key(const char *t, size_t len, char *key, size_t ksize) {
    size_t i = 0;
    if (i >= len || !islower((unsigned char)t[i])) {
        return false;
    }
    while (i < len && (islower((unsigned char)t[i]) || t[i] == '_' || t[i] == '-')) {
        i++;
    }
    while (i < len && isdigit((unsigned char)t[i])) {
        i++;
    }
    if (i >= len || t[i] != ':' || i >= ksize) {
        return false;
    }
    size_t v = i + 1;
    while (v < len && isspace((unsigned char)t[v])) {
        v++;
    }
    if (v >= len) {
        return false;
    }
    memcpy(key, t, i);
    key[i] = '\0';
    return true;
}

static int push_line(struct pveconf *c, const char *text, size_t len, size_t at) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct pveconf_line *nl = realloc(c->lines, cap * sizeof(*nl));
        if (!nl) {
            return -ENOMEM;
        }
        c->lines = nl;
        c->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        return -ENOMEM;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    memmove(&c->lines[at + 1], &c->lines[at], (c->n - at) * sizeof(*c->lines));
    c->lines[at] = (struct pveconf_line){.text = copy, .len = len};
    c->n++;
    return 0;
}

int pveconf_parse(const char *text, size_t len, struct pveconf *c) {
    memset(c, 0, sizeof(*c));
    int section = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - (text + pos)) + 1 : len - pos;
        int r = push_line(c, text + pos, l, c->n);
        if (r < 0) {
            pveconf_free(c);
            return r;
        }
        struct pveconf_line *ln = &c->lines[c->n - 1];
        /* Any [...] line starts a new section; PVE ignores unknown ones, we keep them. */
        if (ln->text[0] == '[') {
            section++;
        } else if (!line_key(ln->text, l, ln->key, sizeof(ln->key))) {
            ln->key[0] = '\0';
        }
        ln->section = section;
        pos += l;
    }
    return 0;
}

void pveconf_free(struct pveconf *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->lines[i].text);
    }
    free(c->lines);
    memset(c, 0, sizeof(*c));
}

static long find_key(const struct pveconf *c, const char *key) {
    for (size_t i = 0; i < c->n && c->lines[i].section == 0; i++) {
        if (!strcmp(c->lines[i].key, key)) {
            return (long)i; /* PVE keeps the last duplicate; the writer never makes one */
        }
    }
    return -1;
}

const char *pveconf_get(const struct pveconf *c, const char *key, char *buf, size_t size) {
    long i = find_key(c, key);
    if (i < 0) {
        return NULL;
    }
    const struct pveconf_line *ln = &c->lines[i];
    const char *v = ln->text + strlen(ln->key) + 1;
    const char *end = ln->text + ln->len;
    while (v < end && isspace((unsigned char)*v)) {
        v++;
    }
    while (end > v && isspace((unsigned char)end[-1])) {
        end--;
    }
    snprintf(buf, size, "%.*s", (int)(end - v), v);
    return buf;
}

int pveconf_set(struct pveconf *c, const char *key, const char *value) {
    if (strchr(value, '\n') || !*value) {
        return -EINVAL;
    }
    size_t len = strlen(key) + strlen(value) + 3;
    _cleanup_free_ char *text = malloc(len + 1);
    if (!text) {
        return -ENOMEM;
    }
    snprintf(text, len + 1, "%s: %s\n", key, value);

    long i = find_key(c, key);
    if (i >= 0) {
        /* Replace only the value: the line's own spacing and line end stay as they were, so
         * setting the old value back restores the file byte for byte. */
        struct pveconf_line *ln = &c->lines[i];
        const char *v = ln->text + strlen(ln->key) + 1, *end = ln->text + ln->len;
        while (v < end && (*v == ' ' || *v == '\t')) {
            v++;
        }
        const char *ve = end;
        while (ve > v && isspace((unsigned char)ve[-1])) {
            ve--;
        }
        size_t head = (size_t)(v - ln->text), tail = (size_t)(end - ve), vlen = strlen(value);
        char *nt = malloc(head + vlen + tail + 1);
        if (!nt) {
            return -ENOMEM;
        }
        memcpy(nt, ln->text, head);
        memcpy(nt + head, value, vlen);
        memcpy(nt + head + vlen, ve, tail);
        nt[head + vlen + tail] = '\0';
        free(ln->text);
        ln->text = nt;
        ln->len = head + vlen + tail;
        return 0;
    }
    /* Insert where PVE's sorted writer would put it: before the first greater key. */
    size_t at = 0, last_key = 0;
    bool found = false, any_key = false;
    for (size_t j = 0; j < c->n && c->lines[j].section == 0; j++) {
        at = j + 1;
        if (c->lines[j].key[0]) {
            any_key = true;
            last_key = j + 1;
            if (strcmp(c->lines[j].key, key) > 0) {
                at = j;
                found = true;
                break;
            }
        }
    }
    if (!found && any_key) {
        at = last_key;
    }
    /* A last line without newline would otherwise be glued to ours. */
    if (at > 0 && c->lines[at - 1].len && c->lines[at - 1].text[c->lines[at - 1].len - 1] != '\n') {
        struct pveconf_line *prev = &c->lines[at - 1];
        char *nt = realloc(prev->text, prev->len + 2);
        if (!nt) {
            return -ENOMEM;
        }
        nt[prev->len++] = '\n';
        nt[prev->len] = '\0';
        prev->text = nt;
    }
    int r = push_line(c, text, len, at);
    if (r < 0) {
        return r;
    }
    snprintf(c->lines[at].key, sizeof(c->lines[at].key), "%s", key);
    c->lines[at].section = 0;
    return 0;
}

int pveconf_delete(struct pveconf *c, const char *key) {
    long i = find_key(c, key);
    if (i < 0) {
        return -ENOENT;
    }
    free(c->lines[i].text);
    memmove(&c->lines[i], &c->lines[i + 1], (c->n - (size_t)i - 1) * sizeof(*c->lines));
    c->n--;
    return 0;
}

char *pveconf_serialize(const struct pveconf *c, size_t *len) {
    size_t total = 0;
    for (size_t i = 0; i < c->n; i++) {
        total += c->lines[i].len;
    }
    char *out = malloc(total + 1);
    if (!out) {
        return NULL;
    }
    size_t pos = 0;
    for (size_t i = 0; i < c->n; i++) {
        memcpy(out + pos, c->lines[i].text, c->lines[i].len);
        pos += c->lines[i].len;
    }
    out[pos] = '\0';
    if (len) {
        *len = pos;
    }
    return out;
}

int propstr_parse(const char *s, const char *default_key, struct propstr *out, struct pvh_err *e) {
    out->n = 0;
    const char *p = s;
    while (*p) {
        const char *end = p + strcspn(p, ",");
        if (end == p) {
            return err_set(e, -EINVAL, "empty element in property string '%s'", s);
        }
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *key = default_key;
        size_t klen = default_key ? strlen(default_key) : 0;
        const char *v = p;
        if (eq) {
            key = p;
            klen = (size_t)(eq - p);
            v = eq + 1;
        } else if (!default_key) {
            return err_set(e, -EINVAL, "'%.*s' in '%s' is not key=value", (int)(end - p), p, s);
        }
        if (out->n == PROPSTR_MAX || klen == 0 || klen >= sizeof(out->items[0].key) ||
            (size_t)(end - v) >= sizeof(out->items[0].value)) {
            return err_set(e, -EINVAL, "property string '%s' is too long or malformed", s);
        }
        for (size_t i = 0; i < out->n; i++) {
            if (strlen(out->items[i].key) == klen && !strncmp(out->items[i].key, key, klen)) {
                return err_set(e, -EINVAL, "duplicate key '%.*s' in '%s'", (int)klen, key, s);
            }
        }
        snprintf(out->items[out->n].key, sizeof(out->items[0].key), "%.*s", (int)klen, key);
        snprintf(out->items[out->n].value, sizeof(out->items[0].value), "%.*s", (int)(end - v), v);
        out->n++;
        p = *end ? end + 1 : end;
    }
    return 0;
}

const char *propstr_get(const struct propstr *p, const char *key) {
    for (size_t i = 0; i < p->n; i++) {
        if (!strcmp(p->items[i].key, key)) {
            return p->items[i].value;
        }
    }
    return NULL;
}

static bool hex_run(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f')) {
            return false;
        }
    }
    return true;
}

int pci_id_normalize(const char *id, char *out, size_t size) {
    /* (?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\.[a-f0-9])? -- lowercase, as PVE demands */
    size_t n = strlen(id);
    const char *dom = "0000";
    size_t domlen = 4;
    const char *bus = id;
    const char *first = strchr(id, ':');
    if (!first) {
        return -EINVAL;
    }
    const char *second = strchr(first + 1, ':');
    if (second) {
        dom = id;
        domlen = (size_t)(first - id);
        if (domlen < 4 || domlen > 8 || !hex_run(id, domlen)) {
            return -EINVAL;
        }
        bus = first + 1;
    }
    size_t rest = n - (size_t)(bus - id);
    /* bus "bb:dd" then optional ".f" */
    if (!(rest == 5 || rest == 7) || !hex_run(bus, 2) || bus[2] != ':' || !hex_run(bus + 3, 2)) {
        return -EINVAL;
    }
    char fn = '0';
    if (rest == 7) {
        if (bus[5] != '.' || !hex_run(bus + 6, 1)) {
            return -EINVAL;
        }
        fn = bus[6];
    }
    int w = snprintf(out, size, "%.*s:%.5s.%c", (int)domlen, dom, bus, fn);
    return (w < 0 || (size_t)w >= size) ? -ENAMETOOLONG : 0;
}

int hostpci_parse(unsigned index, const char *value, struct hostpci *out, struct pvh_err *e) {
    memset(out, 0, sizeof(*out));
    out->index = index;
    struct propstr ps;
    struct pvh_err pe;
    if (propstr_parse(value, "host", &ps, &pe) < 0) {
        err_set(e, -EINVAL, "hostpci%u: %s", index, pe.msg);
        err_hint(
            e, "fix the line in the VM config, e.g. 'hostpci%u: 0000:06:00.0,mdev=nvidia-46'", index
        );
        return -EINVAL;
    }
    const char *host = propstr_get(&ps, "host");
    const char *mapping = propstr_get(&ps, "mapping");
    const char *mdev = propstr_get(&ps, "mdev");
    if (host && mapping) {
        return err_set(e, -EINVAL, "hostpci%u: 'host' and 'mapping' are mutually exclusive", index);
    }
    if (!host && !mapping) {
        return err_set(e, -EINVAL, "hostpci%u: neither a PCI id nor 'mapping=' is given", index);
    }
    if (mdev) {
        if (!mdev_type_id_valid(mdev)) {
            err_set(e, -EINVAL, "hostpci%u: mdev type '%s' is not a valid type name", index, mdev);
            err_hint(
                e, "an mdev type is a sysfs directory name such as 'nvidia-46' "
                   "(no '/', '.', ':' or spaces); see 'pve-vgpu-hook types'"
            );
            return -EINVAL;
        }
        snprintf(out->mdev, sizeof(out->mdev), "%s", mdev);
    }
    if (mapping) {
        size_t ml = strlen(mapping);
        bool ok = ml > 1 && ml < sizeof(out->mapping) && isalpha((unsigned char)mapping[0]);
        for (size_t i = 0; ok && i < ml; i++) {
            ok = isalnum((unsigned char)mapping[i]) || mapping[i] == '_' || mapping[i] == '-';
        }
        if (!ok) {
            return err_set(e, -EINVAL, "hostpci%u: mapping id '%s' is not valid", index, mapping);
        }
        snprintf(out->mapping, sizeof(out->mapping), "%s", mapping);
        return 0;
    }
    const char *p = host;
    while (*p) {
        size_t l = strcspn(p, ";");
        char id[64];
        if (l == 0 || l >= sizeof(id) || out->nhost == ARRAY_SIZE(out->host)) {
            return err_set(e, -EINVAL, "hostpci%u: malformed PCI id list '%s'", index, host);
        }
        memcpy(id, p, l);
        id[l] = '\0';
        if (pci_id_normalize(id, out->host[out->nhost], sizeof(out->host[0])) < 0) {
            err_set(e, -EINVAL, "hostpci%u: '%s' is not a PCI id", index, id);
            err_hint(
                e, "use the form 0000:06:00.0 or 06:00.0 (lowercase hex), as 'lspci -D' shows"
            );
            return -EINVAL;
        }
        out->nhost++;
        p += l;
        if (*p) {
            p++;
        }
    }
    return 0;
}

int hostpci_mdev_entries(
    const struct pveconf *c, struct hostpci out[HOSTPCI_MAX], size_t *n, unsigned *bad,
    struct pvh_err *e
) {
    int first = 0;
    *n = 0;
    for (unsigned i = 0; i < HOSTPCI_MAX; i++) {
        char key[16], val[1024];
        struct hostpci hp;
        struct pvh_err pe;
        snprintf(key, sizeof(key), "hostpci%u", i);
        if (!pveconf_get(c, key, val, sizeof(val))) {
            continue;
        }
        int r = hostpci_parse(i, val, &hp, first ? &pe : e);
        if (r < 0) {
            if (!first) {
                first = r;
                if (bad) {
                    *bad = i;
                }
            }
        } else if (hp.mdev[0]) {
            out[(*n)++] = hp;
        }
    }
    return first;
}

int pveconf_smbios_uuid(const struct pveconf *c, char *out, size_t size) {
    char smbios[512], lower[64];
    struct propstr ps;
    if (!pveconf_get(c, "smbios1", smbios, sizeof(smbios))) {
        return -ENOENT;
    }
    const char *u = propstr_parse(smbios, NULL, &ps, NULL) == 0 ? propstr_get(&ps, "uuid") : NULL;
    snprintf(lower, sizeof(lower), "%s", u ? u : "");
    for (char *p = lower; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    if (!uuid_is_canonical(lower)) {
        return -EINVAL;
    }
    snprintf(out, size, "%s", lower);
    return 0;
}

bool mdev_type_id_valid(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > 63) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c == '/' || c == '.' || c == ':' || c <= ' ' || c >= 0x7f || c == ',' || c == ';') {
            return false;
        }
    }
    return true;
}

/* Shell-like words of args (Text::ParseWords::shellwords, as qemu-server splits them):
 * fills the unquoted word and the raw span [*start, *end) in args. */
static const char *next_word(const char *p, char *word, size_t size, const char **start) {
    while (*p && isspace((unsigned char)*p)) {
        p++;
    }
    if (!*p) {
        return NULL;
    }
    *start = p;
    size_t w = 0;
    char quote = 0;
    while (*p && (quote || !isspace((unsigned char)*p))) {
        char ch = *p++;
        if (quote) {
            if (ch == quote) {
                quote = 0;
                continue;
            }
            if (ch == '\\' && quote == '"' && *p) {
                ch = *p++;
            }
        } else if (ch == '\'' || ch == '"') {
            quote = ch;
            continue;
        } else if (ch == '\\' && *p) {
            ch = *p++;
        }
        if (w + 1 < size) {
            word[w++] = ch;
        }
    }
    word[w] = '\0';
    return p;
}

/* Locate the value word of the last -uuid/--uuid; *vstart NULL when -uuid has no value. */
static bool last_uuid(
    const char *args, const char **vstart, const char **vend, char *val, size_t vsize,
    const char **optend
) {
    bool found = false;
    char word[256];
    const char *p = args, *s;
    while ((p = next_word(p, word, sizeof(word), &s))) {
        if (strcmp(word, "-uuid") && strcmp(word, "--uuid")) {
            continue;
        }
        found = true;
        *optend = p;
        *vstart = *vend = NULL;
        val[0] = '\0';
        const char *after = next_word(p, val, vsize, &s);
        if (after) {
            *vstart = s;
            *vend = after;
            p = after;
        }
    }
    return found;
}

int args_remove_pair(
    const char *args, const char *opt, const char *value, char **out, bool *found
) {
    char w1[512], w2[512];
    const char *p = args, *s1, *s2;
    *found = false;
    while ((p = next_word(p, w1, sizeof(w1), &s1))) {
        const char *after = next_word(p, w2, sizeof(w2), &s2);
        if (strcmp(w1, opt) || !after || strcmp(w2, value)) {
            continue;
        }
        /* drop the blank run before the pair too, or after it when the pair leads */
        const char *from = s1, *to = after;
        while (from > args && isspace((unsigned char)from[-1])) {
            from--;
        }
        if (from == args) {
            while (*to && isspace((unsigned char)*to)) {
                to++;
            }
        }
        size_t n = (size_t)(from - args) + strlen(to);
        if (!(*out = malloc(n + 1))) {
            return -ENOMEM;
        }
        snprintf(*out, n + 1, "%.*s%s", (int)(from - args), args, to);
        *found = true;
        return 0;
    }
    return (*out = strdup(args)) ? 0 : -ENOMEM;
}

void args_find_uuid(const char *args, char *out, size_t size) {
    const char *vs, *ve, *oe;
    out[0] = '\0';
    if (args && !last_uuid(args, &vs, &ve, out, size, &oe)) {
        out[0] = '\0';
    }
}

bool args_splittable(const char *args) {
    char quote = 0;
    for (const char *p = args; *p; p++) {
        if (quote) {
            if (*p == quote) {
                quote = 0;
            } else if (*p == '\\' && quote == '"' && p[1]) {
                p++;
            }
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '\\') {
            if (!p[1]) {
                return false; /* a dangling backslash would escape whatever is appended */
            }
            p++;
        }
    }
    return quote == 0;
}

int args_with_uuid(const char *args, const char *uuid, char **out, bool *changed) {
    char cur[256] = "";
    const char *vs = NULL, *ve = NULL, *oe = NULL;
    *changed = true;
    if (!args) {
        args = "";
    }
    if (!args_splittable(args)) {
        return -EINVAL; /* whatever we append would end up inside the open quote */
    }
    bool found = last_uuid(args, &vs, &ve, cur, sizeof(cur), &oe);
    size_t need = strlen(args) + strlen(uuid) + 16;
    char *res = malloc(need);
    if (!res) {
        return -ENOMEM;
    }
    if (found && vs && !strcasecmp(cur, uuid)) {
        snprintf(res, need, "%s", args);
        *changed = false;
    } else if (found && vs) {
        snprintf(res, need, "%.*s%s%s", (int)(vs - args), args, uuid, ve);
    } else if (found) {
        snprintf(res, need, "%.*s %s%s", (int)(oe - args), args, uuid, oe);
    } else if (*args) {
        size_t l = strlen(args);
        while (l && isspace((unsigned char)args[l - 1])) {
            l--;
        }
        if (l < strlen(args) && l && args[l - 1] == '\\') {
            l++; /* keep the blank a backslash escapes: "\ " is a word */
        }
        snprintf(res, need, "%.*s -uuid %s", (int)l, args, uuid);
    } else {
        snprintf(res, need, "-uuid %s", uuid);
    }
    *out = res;
    return 0;
}

int mapping_paths(
    const char *text, const char *id, const char *node, char paths[][16], size_t max, size_t *n,
    struct pvh_err *e
) {
    *n = 0;
    bool in_section = false, seen = false;
    const char *p = text;
    while (*p) {
        size_t l = strcspn(p, "\n");
        char line[2048];
        snprintf(line, sizeof(line), "%.*s", (int)(l < sizeof(line) ? l : sizeof(line) - 1), p);
        p += l;
        if (*p) {
            p++;
        }
        if (!line[0] || line[0] == '#') {
            if (!line[0]) {
                in_section = false; /* a section ends at the first empty line */
            }
            continue;
        }
        if (!isspace((unsigned char)line[0])) {
            line[strcspn(line, " \t\r")] = '\0';
            in_section = !strcasecmp(line, id);
            seen |= in_section;
            continue;
        }
        if (!in_section) {
            continue;
        }
        char *k = line;
        while (isspace((unsigned char)*k)) {
            k++;
        }
        if (strncmp(k, "map", 3) || !isspace((unsigned char)k[3])) {
            continue;
        }
        char *v = k + 4;
        while (isspace((unsigned char)*v)) {
            v++;
        }
        v[strcspn(v, "\r")] = '\0';
        struct propstr ps;
        if (propstr_parse(v, NULL, &ps, e) < 0) {
            return err_prefix(e, "mapping '%s' in /etc/pve/mapping/pci.cfg: ", id);
        }
        const char *mnode = propstr_get(&ps, "node");
        const char *mpath = propstr_get(&ps, "path");
        if (!mnode || !mpath || strcmp(mnode, node) != 0) {
            continue;
        }
        for (const char *q = mpath; *q;) {
            size_t ql = strcspn(q, ";");
            char one[64];
            snprintf(one, sizeof(one), "%.*s", (int)(ql < 63 ? ql : 63), q);
            if (*n < max && pci_id_normalize(one, paths[*n], 16) == 0) {
                (*n)++;
            }
            q += ql;
            if (*q) {
                q++;
            }
        }
    }
    if (!seen) {
        err_set(e, -ENOENT, "PCI mapping '%s' is not defined in /etc/pve/mapping/pci.cfg", id);
        err_hint(e, "create it under Datacenter > Resource Mappings, or use a PCI id in hostpci");
        return -ENOENT;
    }
    if (*n == 0) {
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

int storage_find(const char *text, const char *id, struct storage_info *out) {
    memset(out, 0, sizeof(*out));
    bool in = false, found = false;
    for (const char *p = text; *p;) {
        size_t l = strcspn(p, "\n");
        char line[1024];
        snprintf(line, sizeof(line), "%.*s", (int)(l < sizeof(line) ? l : sizeof(line) - 1), p);
        p += l;
        p += *p == '\n';
        line[strcspn(line, "\r")] = '\0';
        if (!line[0] || line[0] == '#') {
            continue;
        }
        if (!isspace((unsigned char)line[0])) {
            /* "dir: local" */
            char *colon = strchr(line, ':');
            in = false;
            if (colon) {
                char *name = colon + 1;
                while (isspace((unsigned char)*name)) {
                    name++;
                }
                name[strcspn(name, " \t")] = '\0';
                *colon = '\0';
                if (!strcmp(name, id)) {
                    in = found = true;
                    snprintf(out->type, sizeof(out->type), "%s", line);
                }
            }
            continue;
        }
        if (!in) {
            continue;
        }
        char *k = line;
        while (isspace((unsigned char)*k)) {
            k++;
        }
        char *v = k + strcspn(k, " \t");
        if (*v) {
            *v++ = '\0';
        }
        while (isspace((unsigned char)*v)) {
            v++;
        }
        if (!strcmp(k, "path")) {
            snprintf(out->path, sizeof(out->path), "%s", v);
        } else if (!strcmp(k, "content")) {
            snprintf(out->content, sizeof(out->content), "%s", v);
        }
    }
    return found ? 0 : -ENOENT;
}
