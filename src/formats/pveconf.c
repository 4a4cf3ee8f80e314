#include "pveconf.h"

#include "cleanup.h"
#include "mdev_uuid.h"
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------- the VM config document ---------- */

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

/* A section header as parse_vm_config knows one: ^\[([^\]]*)\]\s*$. A line that merely starts
 * with '[' is an unparsable line of the current section. */
static bool section_header(const char *t, size_t len) {
    if (len == 0 || t[0] != '[') {
        return false;
    }
    size_t close = 1;
    while (close < len && t[close] != ']') {
        close++;
    }
    if (close >= len) {
        return false;
    }
    for (size_t i = close + 1; i < len; i++) {
        if (!isspace((unsigned char)t[i])) {
            return false;
        }
    }
    return true;
}

/* The value of a key line, trimmed as PVE does (malloc'ed). */
static char *line_value(const struct pveconf_line *ln) {
    const char *v = ln->text + strlen(ln->key) + 1;
    const char *end = ln->text + ln->len;
    while (v < end && isspace((unsigned char)*v)) {
        v++;
    }
    while (end > v && isspace((unsigned char)end[-1])) {
        end--;
    }
    return strndup(v, (size_t)(end - v));
}

/* Take ownership of text (len bytes, NUL-terminated) as a new line at index at. */
static int insert_line(struct pveconf *c, char *text, size_t len, size_t at) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct pveconf_line *nl = realloc(c->lines, cap * sizeof(*nl));
        if (!nl) {
            return -ENOMEM;
        }
        c->lines = nl;
        c->cap = cap;
    }
    memmove(&c->lines[at + 1], &c->lines[at], (c->n - at) * sizeof(*c->lines));
    c->lines[at] = (struct pveconf_line){.text = text, .len = len};
    c->n++;
    return 0;
}

/* (Re)compute a line's key and value from its text. */
static int classify_line(struct pveconf_line *ln) {
    free(ln->value);
    ln->value = NULL;
    /* A NUL byte would cut the value short wherever it is used: no key line of ours. */
    if (memchr(ln->text, '\0', ln->len) || !line_key(ln->text, ln->len, ln->key, sizeof(ln->key))) {
        ln->key[0] = '\0';
        return 0;
    }
    return (ln->value = line_value(ln)) ? 0 : -ENOMEM;
}

int pveconf_parse(const char *text, size_t len, struct pveconf *c) {
    memset(c, 0, sizeof(*c));
    int section = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - (text + pos)) + 1 : len - pos;
        char *copy = malloc(l + 1);
        int r = copy ? insert_line(c, copy, l, c->n) : -ENOMEM;
        if (copy) {
            memcpy(copy, text + pos, l); /* every byte, NULs too: the file round-trips */
            copy[l] = '\0';
        }
        if (r < 0) {
            free(copy);
            pveconf_free(c);
            return r;
        }
        struct pveconf_line *ln = &c->lines[c->n - 1];
        /* Every [...] section is kept; only the top one is the current config. */
        if (section_header(ln->text, l)) {
            section++;
        } else if ((r = classify_line(ln)) < 0) {
            pveconf_free(c);
            return r;
        }
        ln->section = section;
        pos += l;
    }
    return 0;
}

void pveconf_free(struct pveconf *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->lines[i].text);
        free(c->lines[i].value);
    }
    free(c->lines);
    memset(c, 0, sizeof(*c));
}

/* hostpci0 .. hostpci15: the index, or -1 for any other key. */
static int hostpci_key_index(const char *key) {
    if (strncmp(key, "hostpci", 7) != 0 || !isdigit((unsigned char)key[7])) {
        return -1;
    }
    char *end;
    unsigned long i = strtoul(key + 7, &end, 10);
    if (*end || i >= HOSTPCI_MAX || (key[7] == '0' && key[8])) {
        return -1;
    }
    return (int)i;
}

static int smbios1_check_syntax(const char *value, char *why, size_t whysize);

/* Does Proxmox accept this value for key? Only the keys we act on are checked. */
static bool value_accepted(const char *key, const char *value, char *why, size_t whysize) {
    if (strcmp(key, "args") != 0 && strchr(value, '\r')) {
        snprintf(why, whysize, "the value contains a line feed"); /* qemu-server's check_type */
        return false;
    }
    if (!strcmp(key, "smbios1")) {
        return smbios1_check_syntax(value, why, whysize) == 0;
    }
    if (!strncmp(key, "hostpci", 7)) {
        if (hostpci_key_index(key) < 0) {
            snprintf(why, whysize, "'%s' is not a setting Proxmox knows", key);
            return false;
        }
        return hostpci_check_syntax(value, why, whysize) == 0;
    }
    return true;
}

/* The top-section line Proxmox takes key from (the last accepted one), or -1. */
static long effective_line(const struct pveconf *c, const char *key) {
    long found = -1;
    char why[256];
    for (size_t i = 0; i < c->n && c->lines[i].section == 0; i++) {
        const struct pveconf_line *ln = &c->lines[i];
        if (!strcmp(ln->key, key) && value_accepted(key, ln->value, why, sizeof(why))) {
            found = (long)i;
        }
    }
    return found;
}

const char *pveconf_get(const struct pveconf *c, const char *key) {
    long i = effective_line(c, key);
    return i < 0 ? NULL : c->lines[i].value;
}

void pveconf_warn_ignored(const struct pveconf *c, const char *path, struct pvh_warnings *w) {
    for (size_t i = 0; i < c->n && c->lines[i].section == 0; i++) {
        const struct pveconf_line *ln = &c->lines[i];
        char why[256];
        if (strncmp(ln->key, "hostpci", 7) != 0 && strcmp(ln->key, "smbios1") != 0) {
            continue;
        }
        if (!value_accepted(ln->key, ln->value, why, sizeof(why))) {
            warn_add(
                w, "%s line %zu: Proxmox ignores '%s' (%s), so pve-vgpu-hook does too", path, i + 1,
                ln->key, why
            );
        } else if (effective_line(c, ln->key) != (long)i) {
            warn_add(
                w, "%s line %zu: '%s' is set again further down; Proxmox uses line %ld", path,
                i + 1, ln->key, effective_line(c, ln->key) + 1
            );
        }
    }
}

/* Replace the value of line i, keeping the line's own spacing and line end, so that setting
 * the old value back restores the file byte for byte. */
static int replace_value(struct pveconf_line *ln, const char *value) {
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
    char *nv = strdup(value);
    if (!nt || !nv) {
        free(nt);
        free(nv);
        return -ENOMEM;
    }
    memcpy(nt, ln->text, head);
    memcpy(nt + head, value, vlen);
    memcpy(nt + head + vlen, ve, tail);
    nt[head + vlen + tail] = '\0';
    free(ln->text);
    free(ln->value);
    ln->text = nt;
    ln->len = head + vlen + tail;
    ln->value = nv;
    return 0;
}

int pveconf_set(struct pveconf *c, const char *key, const char *value) {
    if (strchr(value, '\n') || strchr(value, '\r') || !*value) {
        return -EINVAL;
    }
    /* The last line of the key is the one Proxmox reads once it holds a valid value. */
    long last = -1;
    for (size_t j = 0; j < c->n && c->lines[j].section == 0; j++) {
        if (!strcmp(c->lines[j].key, key)) {
            last = (long)j;
        }
    }
    if (last >= 0) {
        return replace_value(&c->lines[last], value);
    }
    size_t len = strlen(key) + strlen(value) + 3;
    _cleanup_free_ char *text = malloc(len + 1);
    if (!text) {
        return -ENOMEM;
    }
    snprintf(text, len + 1, "%s: %s\n", key, value);
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
    int r = insert_line(c, text, len, at);
    if (r < 0) {
        return r;
    }
    TAKE_PTR(text);
    c->lines[at].section = 0;
    return classify_line(&c->lines[at]);
}

int pveconf_delete(struct pveconf *c, const char *key) {
    int r = -ENOENT;
    for (size_t i = 0; i < c->n && c->lines[i].section == 0;) {
        if (strcmp(c->lines[i].key, key) != 0) {
            i++;
            continue;
        }
        free(c->lines[i].text);
        free(c->lines[i].value);
        memmove(&c->lines[i], &c->lines[i + 1], (c->n - i - 1) * sizeof(*c->lines));
        c->n--;
        r = 0;
    }
    return r;
}

/* The section number of [PENDING] (^\[PENDING\]\s*$, any case), or -1. */
static int pending_section(const struct pveconf *c) {
    for (size_t i = 0; i < c->n; i++) {
        const struct pveconf_line *ln = &c->lines[i];
        if (ln->section > 0 && (i == 0 || c->lines[i - 1].section != ln->section) && ln->len >= 9 &&
            !strncasecmp(ln->text, "[PENDING]", 9)) {
            bool rest_blank = true;
            for (size_t k = 9; k < ln->len; k++) {
                rest_blank &= isspace((unsigned char)ln->text[k]) != 0;
            }
            if (rest_blank) {
                return ln->section;
            }
        }
    }
    return -1;
}

int pveconf_apply_pending(struct pveconf *c) {
    int sec = pending_section(c);
    if (sec < 0) {
        return 0;
    }
    /* copies first: editing the top section moves the lines */
    size_t n = 0;
    char **keys = calloc(c->n, sizeof(*keys)), **vals = calloc(c->n, sizeof(*vals));
    int r = keys && vals ? 0 : -ENOMEM;
    for (size_t i = 0; r == 0 && i < c->n; i++) {
        const struct pveconf_line *ln = &c->lines[i];
        char why[256];
        if (ln->section != sec || !ln->key[0] ||
            !value_accepted(ln->key, ln->value, why, sizeof(why))) {
            continue;
        }
        keys[n] = strdup(ln->key);
        vals[n] = strdup(ln->value);
        r = keys[n] && vals[n] ? 0 : -ENOMEM;
        n++;
    }
    /* deletes first ("!" marks a forced one), then the pending values, as qemu-server does */
    for (size_t i = 0; r == 0 && i < n; i++) {
        if (strcmp(keys[i], "delete") != 0) {
            continue;
        }
        for (char *p = vals[i], *tok; (tok = strsep(&p, ", ;"));) {
            tok += *tok == '!';
            if (*tok) {
                (void)pveconf_delete(c, tok);
            }
        }
    }
    for (size_t i = 0; r == 0 && i < n; i++) {
        if (strcmp(keys[i], "delete") != 0) {
            r = pveconf_set(c, keys[i], vals[i]);
            r = r == -EINVAL ? 0 : r; /* a value no config line can hold: not applied */
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(keys[i]);
        free(vals[i]);
    }
    free(keys);
    free(vals);
    return r < 0 ? r : 1;
}

/* The line of key in section sec (the last one), or -1. */
static long section_key_line(const struct pveconf *c, int sec, const char *key) {
    long found = -1;
    for (size_t i = 0; i < c->n; i++) {
        if (c->lines[i].section == sec && !strcmp(c->lines[i].key, key)) {
            found = (long)i;
        }
    }
    return found;
}

static void remove_line(struct pveconf *c, size_t i) {
    free(c->lines[i].text);
    free(c->lines[i].value);
    memmove(&c->lines[i], &c->lines[i + 1], (c->n - i - 1) * sizeof(*c->lines));
    c->n--;
}

static bool blank_line(const struct pveconf_line *ln) {
    for (size_t k = 0; k < ln->len; k++) {
        if (!isspace((unsigned char)ln->text[k])) {
            return false;
        }
    }
    return true;
}

/* A new line of text (copied) at index at, in section sec. */
static int insert_text(struct pveconf *c, const char *text, size_t at, int sec) {
    char *t = strdup(text);
    int r = t ? insert_line(c, t, strlen(t), at) : -ENOMEM;
    if (r < 0) {
        free(t);
        return r;
    }
    c->lines[at].section = sec;
    return section_header(t, strlen(t)) ? 0 : classify_line(&c->lines[at]);
}

/* The [PENDING] section, made where qemu-server writes it (after the current config, a blank
 * line before each header) when missing. */
static int pending_open(struct pveconf *c) {
    int sec = pending_section(c);
    if (sec >= 0) {
        return sec;
    }
    size_t at = 0;
    while (at < c->n && c->lines[at].section == 0) {
        at++;
    }
    bool more = at < c->n;
    sec = more ? c->lines[at].section : 1;
    for (size_t i = at; i < c->n; i++) {
        c->lines[i].section++;
    }
    struct pveconf_line *prev = at ? &c->lines[at - 1] : NULL;
    int r = 0;
    if (prev && prev->text[prev->len - 1] != '\n') {
        r = insert_text(c, "\n", at++, 0); /* a last line without newline */
    }
    if (r == 0 && at && !blank_line(&c->lines[at - 1])) {
        r = insert_text(c, "\n", at++, 0);
    }
    r = r < 0 ? r : insert_text(c, "[PENDING]\n", at, sec);
    if (r == 0 && more) { /* the blank line before the next header */
        r = insert_text(c, "\n", at + 1, sec);
    }
    return r < 0 ? r : sec;
}

/* Drop [PENDING] when no key is left in it, with the blank line before it when it was last. */
static void pending_drop_empty(struct pveconf *c, int sec) {
    size_t first = c->n, end = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->lines[i].section == sec) {
            if (c->lines[i].key[0] || (c->lines[i].len && c->lines[i].text[0] == '#')) {
                return;
            }
            first = first < i ? first : i;
            end = i + 1;
        }
    }
    if (first == c->n) {
        return;
    }
    bool last = end == c->n;
    for (size_t i = end; i > first; i--) {
        remove_line(c, i - 1);
    }
    if (last && first && blank_line(&c->lines[first - 1])) {
        remove_line(c, first - 1);
    }
    for (size_t i = first; i < c->n; i++) {
        c->lines[i].section--;
    }
}

/* Set key's line in section sec (value NULL: remove it), in PVE's sorted key order. */
static int section_put(struct pveconf *c, int sec, const char *key, const char *value) {
    long old;
    while ((old = section_key_line(c, sec, key)) >= 0) {
        remove_line(c, (size_t)old);
    }
    if (!value) {
        return 0;
    }
    size_t at = c->n;
    for (size_t i = 0; i < c->n; i++) {
        if (c->lines[i].section != sec) {
            continue;
        }
        if (at == c->n || c->lines[i].key[0] || c->lines[i].text[0] == '#') {
            at = i + 1; /* after the header, the description and the smaller keys */
        }
        if (c->lines[i].key[0] && strcmp(c->lines[i].key, key) > 0) {
            at = i;
            break;
        }
    }
    size_t len = strlen(key) + strlen(value) + 3;
    _cleanup_free_ char *text = malloc(len + 1);
    if (!text) {
        return -ENOMEM;
    }
    snprintf(text, len + 1, "%s: %s\n", key, value);
    return insert_text(c, text, at, sec);
}

/* One key of a pending "delete:" value ("!": forced). */
struct pending_del {
    char key[40];
    bool force;
};
#define PENDING_DEL_MAX 64

/* The keys of a pending "delete:" value, as parse_pending_delete reads them. */
static size_t pending_delete_keys(const char *v, struct pending_del *d, size_t max) {
    size_t n = 0;
    while (v && *v && n < max) {
        v += strspn(v, ",; \t");
        size_t l = strcspn(v, ",; \t");
        if (l && l < sizeof(d->key)) {
            d[n].force = *v == '!';
            snprintf(d[n].key, sizeof(d->key), "%.*s", (int)(l - d[n].force), v + d[n].force);
            n++;
        }
        v += l;
    }
    return n;
}

static int cmp_del(const void *a, const void *b) {
    return strcmp(((const struct pending_del *)a)->key, ((const struct pending_del *)b)->key);
}

const char *pveconf_next(const struct pveconf *c, const char *key) {
    int sec = pending_section(c);
    long i = sec < 0 ? -1 : section_key_line(c, sec, key);
    if (i >= 0) {
        return c->lines[i].value;
    }
    long d = sec < 0 ? -1 : section_key_line(c, sec, "delete");
    struct pending_del del[PENDING_DEL_MAX];
    size_t n = d < 0 ? 0 : pending_delete_keys(c->lines[d].value, del, PENDING_DEL_MAX);
    for (size_t k = 0; k < n; k++) {
        if (!strcmp(del[k].key, key)) {
            return NULL;
        }
    }
    return pveconf_get(c, key);
}

int pveconf_set_pending(struct pveconf *c, const char *key, const char *value) {
    if (value && (strchr(value, '\n') || strchr(value, '\r') || !*value)) {
        return -EINVAL;
    }
    int sec = pending_open(c);
    if (sec < 0) {
        return sec;
    }
    const char *cur = pveconf_get(c, key);
    /* a value equal to the current one is no change (cleanup_pending) */
    int r = section_put(c, sec, key, value && !(cur && !strcmp(cur, value)) ? value : NULL);
    long d = section_key_line(c, sec, "delete");
    struct pending_del del[PENDING_DEL_MAX + 1] = {0};
    char out[(PENDING_DEL_MAX + 1) * 42] = "";
    size_t n = d < 0 ? 0 : pending_delete_keys(c->lines[d].value, del, PENDING_DEL_MAX);
    for (size_t k = 0; k < n; k++) { /* ours is set again below, unforced (add_to_pending_delete) */
        del[k].key[0] = strcmp(del[k].key, key) ? del[k].key[0] : '\0';
    }
    if (!value && cur) {
        snprintf(del[n++].key, sizeof(del->key), "%s", key);
    }
    qsort(del, n, sizeof(del[0]), cmp_del);
    for (size_t k = 0; r == 0 && k < n; k++) {
        /* kept: keys the current config has, once each (cleanup_pending, print_pending_delete) */
        if (del[k].key[0] && pveconf_get(c, del[k].key) &&
            !(k && !strcmp(del[k].key, del[k - 1].key))) {
            str_append(
                out, sizeof(out), "%s%s%s", out[0] ? "," : "", del[k].force ? "!" : "", del[k].key
            );
        }
    }
    r = r < 0 ? r : section_put(c, sec, "delete", out[0] ? out : NULL);
    if (r == 0) {
        pending_drop_empty(c, sec);
    }
    return r;
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

/* ---------- property strings ---------- */

static bool blank(const char *s) {
    while (isspace((unsigned char)*s)) {
        s++;
    }
    return !*s;
}

int propstr_parse(const char *s, const char *default_key, struct propstr *out, struct pvh_err *e) {
    memset(out, 0, sizeof(*out));
    if (!(out->buf = strdup(s))) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    bool had_default = false;
    int r = 0;
    for (char *part = out->buf, *next; part && r == 0; part = next) {
        next = strchr(part, ',');
        if (next) {
            *next++ = '\0';
        }
        if (blank(part)) {
            continue;
        }
        const char *key = default_key, *value = part;
        char *eq = strchr(part, '=');
        if (eq && (eq == part || !eq[1])) { /* ^([^=]+)=(.+)$ does not match */
            r = err_set(e, -EINVAL, "missing key or value in '%s'", s);
        } else if (eq) {
            *eq = '\0';
            key = part;
            value = eq + 1;
        } else if (!default_key) {
            r = err_set(e, -EINVAL, "'%s' in '%s' is not key=value", part, s);
        } else if (had_default) {
            r = err_set(e, -EINVAL, "duplicate key '%s' in '%s'", default_key, s);
        }
        had_default |= !eq;
        if (r == 0 && propstr_get(out, key)) {
            r = err_set(e, -EINVAL, "duplicate key '%s' in '%s'", key, s);
        } else if (r == 0 && out->n == PROPSTR_MAX) {
            r = err_set(e, -EINVAL, "property string '%s' has too many keys", s);
        } else if (r == 0) {
            out->items[out->n].key = key;
            out->items[out->n].value = value;
            out->n++;
        }
    }
    if (r < 0) {
        propstr_free(out);
    }
    return r;
}

void propstr_free(struct propstr *p) {
    free(p->buf);
    p->buf = NULL;
    p->n = 0;
}

const char *propstr_get(const struct propstr *p, const char *key) {
    for (size_t i = 0; i < p->n; i++) {
        if (!strcmp(p->items[i].key, key)) {
            return p->items[i].value;
        }
    }
    return NULL;
}

/* ---------- hostpciN ---------- */

static bool hex_run(const char *s, size_t n, bool upper_ok) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isdigit(c) && !(c >= 'a' && c <= 'f') && !(upper_ok && c >= 'A' && c <= 'F')) {
            return false;
        }
    }
    return true;
}

/* qemu-server's $PCIRE: (?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\.[a-f0-9])? over n bytes */
static bool pcire(const char *s, size_t n) {
    const char *colon2 = NULL, *colon1 = memchr(s, ':', n);
    if (colon1) {
        colon2 = memchr(colon1 + 1, ':', n - (size_t)(colon1 + 1 - s));
    }
    const char *bus = s;
    if (colon2) {
        size_t dl = (size_t)(colon1 - s);
        if (dl < 4 || !hex_run(s, dl, false)) {
            return false;
        }
        bus = colon1 + 1;
    }
    size_t rest = n - (size_t)(bus - s);
    return (rest == 5 || (rest == 7 && bus[5] == '.' && hex_run(bus + 6, 1, false))) &&
           hex_run(bus, 2, false) && bus[2] == ':' && hex_run(bus + 3, 2, false);
}

/* Proxmox's boolean words: the true ones first (PVE::JSONSchema's pve_verify_bool). */
static const char *const pve_bool_words[] = {"1", "on", "yes", "true", "0", "off", "no", "false"};

static bool parse_pve_bool(const char *v) {
    for (size_t i = 0; i < ARRAY_SIZE(pve_bool_words); i++) {
        if (!strcasecmp(v, pve_bool_words[i])) {
            return true;
        }
    }
    return false;
}

char *propstr_with(const char *value, const char *key, const char *newval) {
    size_t kl = strlen(key);
    const char *part = NULL;
    for (const char *p = value; *p && !part; p += strcspn(p, ","), p += *p == ',') {
        part = !strncmp(p, key, kl) && p[kl] == '=' ? p : NULL;
    }
    char *out = NULL;
    int r;
    if (!part) {
        r = newval ? asprintf(&out, "%s%s%s=%s", value, *value ? "," : "", key, newval) : -1;
        return r < 0 ? (newval ? NULL : strdup(value)) : out;
    }
    const char *end = part + strcspn(part, ",");
    if (newval) {
        r = asprintf(&out, "%.*s%s=%s%s", (int)(part - value), value, key, newval, end);
    } else if (part == value) { /* the first part: drop it and the ',' after it */
        r = asprintf(&out, "%s", *end ? end + 1 : end);
    } else { /* drop the ',' before it */
        r = asprintf(&out, "%.*s%s", (int)(part - value - 1), value, end);
    }
    return r < 0 ? NULL : out;
}

bool pve_bool_true(const char *v) {
    for (size_t i = 0; v && i < 4; i++) {
        if (!strcasecmp(v, pve_bool_words[i])) {
            return true;
        }
    }
    return false;
}

/* One value of the pve-qm-hostpci schema (qemu-server PCI.pm, $hostpci_fmt). */
static bool hostpci_value_ok(const char *key, const char *v) {
    if (!strcmp(key, "host")) {
        for (const char *p = v;;) { /* $PCIRE(;$PCIRE)* */
            size_t l = strcspn(p, ";");
            if (!pcire(p, l)) {
                return false;
            }
            if (!p[l]) {
                return true;
            }
            p += l + 1;
        }
    }
    if (!strcmp(key, "mapping")) { /* pve-configid: [a-z][a-z0-9_-]+, case-insensitive */
        if (!isalpha((unsigned char)v[0]) || !v[1]) {
            return false;
        }
        for (const char *p = v; *p; p++) {
            if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') {
                return false;
            }
        }
        return true;
    }
    if (!strcmp(key, "rombar") || !strcmp(key, "pcie") || !strcmp(key, "x-vga") ||
        !strcmp(key, "legacy-igd")) {
        return parse_pve_bool(v);
    }
    if (!strcmp(key, "romfile")) {
        return !strchr(v, ';');
    }
    if (!strcmp(key, "mdev")) {
        return !strpbrk(v, "/.:");
    }
    if (!strcmp(key, "vendor-id") || !strcmp(key, "device-id") || !strcmp(key, "sub-vendor-id") ||
        !strcmp(key, "sub-device-id")) {
        return strlen(v) == 6 && v[0] == '0' && v[1] == 'x' && hex_run(v + 2, 4, true);
    }
    if (!strcmp(key, "driver")) {
        return !strcmp(v, "vfio") || !strcmp(v, "keep");
    }
    return false;
}

int hostpci_check_syntax(const char *value, char *why, size_t whysize) {
    static const char *const keys[] = {
        "host", "mapping",   "rombar",    "romfile",       "pcie",          "x-vga",  "legacy-igd",
        "mdev", "vendor-id", "device-id", "sub-vendor-id", "sub-device-id", "driver",
    };
    struct propstr ps;
    struct pvh_err pe;
    if (propstr_parse(value, "host", &ps, &pe) < 0) {
        if (why) {
            snprintf(why, whysize, "%s", pe.msg);
        }
        return -EINVAL;
    }
    int r = 0;
    for (size_t i = 0; i < ps.n && r == 0; i++) {
        bool known = false;
        for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
            known |= !strcmp(ps.items[i].key, keys[k]);
        }
        if (!known) {
            if (why) {
                snprintf(why, whysize, "unknown key '%s'", ps.items[i].key);
            }
            r = -EINVAL;
        } else if (!hostpci_value_ok(ps.items[i].key, ps.items[i].value)) {
            if (why) {
                snprintf(why, whysize, "invalid %s '%s'", ps.items[i].key, ps.items[i].value);
            }
            r = -EINVAL;
        }
    }
    propstr_free(&ps);
    return r;
}

/* base64 as qemu-server's smbios1 fields want it: [A-Za-z0-9+/]+={0,2} */
static bool base64_ok(const char *v) {
    size_t n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    size_t pad = strspn(v + n, "=");
    return n > 0 && pad <= 2 && !v[n + pad];
}

/* qemu-server's pve-qm-smbios1 schema ($smbios1_fmt): no default key. */
static int smbios1_check_syntax(const char *value, char *why, size_t whysize) {
    static const char *const b64keys[] = {"version", "serial", "manufacturer",
                                          "product", "sku",    "family"};
    struct propstr ps;
    struct pvh_err pe;
    if (propstr_parse(value, NULL, &ps, &pe) < 0) {
        str_msg(why, whysize, "%s", pe.msg);
        return -EINVAL;
    }
    int r = 0;
    for (size_t i = 0; i < ps.n && r == 0; i++) {
        const char *k = ps.items[i].key, *v = ps.items[i].value;
        bool ok = false, known = false;
        for (size_t b = 0; b < ARRAY_SIZE(b64keys); b++) {
            if (!strcmp(k, b64keys[b])) {
                known = true;
                ok = base64_ok(v);
            }
        }
        if (!strcmp(k, "uuid")) {
            known = true;
            ok = strlen(v) == MDEV_UUID_LEN;
            for (size_t c = 0; ok && c < MDEV_UUID_LEN; c++) {
                ok = (c == 8 || c == 13 || c == 18 || c == 23) ? v[c] == '-'
                                                               : isxdigit((unsigned char)v[c]);
            }
        } else if (!strcmp(k, "base64")) {
            known = true;
            ok = parse_pve_bool(v);
        }
        if (!known) {
            str_msg(why, whysize, "unknown key '%s'", k);
            r = -EINVAL;
        } else if (!ok) {
            str_msg(why, whysize, "invalid %s '%s'", k, v);
            r = -EINVAL;
        }
    }
    propstr_free(&ps);
    return r;
}

int pci_id_normalize(const char *id, char *out, size_t size) {
    /* (?:[a-f0-9]{4,8}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\.[a-f0-9])? -- lowercase, as PVE demands */
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
        if (domlen < 4 || domlen > 8 || !hex_run(id, domlen, false)) {
            return -EINVAL;
        }
        bus = first + 1;
    }
    size_t rest = n - (size_t)(bus - id);
    /* bus "bb:dd" then optional ".f" */
    if (!(rest == 5 || rest == 7) || !hex_run(bus, 2, false) || bus[2] != ':' ||
        !hex_run(bus + 3, 2, false)) {
        return -EINVAL;
    }
    char fn = '0';
    if (rest == 7) {
        if (bus[5] != '.' || !hex_run(bus + 6, 1, false)) {
            return -EINVAL;
        }
        fn = bus[6];
    }
    return str_fmt(out, size, "%.*s:%.5s.%c", (int)domlen, dom, bus, fn);
}

static int
parse_host_list(unsigned index, const char *host, struct hostpci *out, struct pvh_err *e) {
    for (const char *p = host; *p;) {
        size_t l = strcspn(p, ";");
        _cleanup_free_ char *id = strndup(p, l);
        if (!id) {
            return err_set(e, -ENOMEM, "out of memory");
        }
        if (out->nhost == ARRAY_SIZE(out->host)) {
            return err_set(
                e, -EINVAL, "hostpci%u: more than %zu PCI functions in '%s'", index,
                ARRAY_SIZE(out->host), host
            );
        }
        if (pci_id_normalize(id, out->host[out->nhost], sizeof(out->host[0])) < 0) {
            err_set(e, -EINVAL, "hostpci%u: '%s' is not a PCI id", index, id);
            err_hint(
                e, "use the form 0000:06:00.0 or 06:00.0 (lowercase hex), as 'lspci -D' shows"
            );
            return -EINVAL;
        }
        out->nhost++;
        p += l;
        p += *p == ';';
    }
    return 0;
}

int hostpci_parse(unsigned index, const char *value, struct hostpci *out, struct pvh_err *e) {
    memset(out, 0, sizeof(*out));
    out->index = index;
    char why[256];
    if (hostpci_check_syntax(value, why, sizeof(why)) < 0) {
        err_set(e, -EINVAL, "hostpci%u: Proxmox rejects '%s': %s", index, value, why);
        err_hint(
            e, "fix the line in the VM config, e.g. 'hostpci%u: 0000:06:00.0,mdev=nvidia-46'", index
        );
        return -EINVAL;
    }
    struct propstr ps;
    int r = propstr_parse(value, "host", &ps, e);
    if (r < 0) {
        return r;
    }
    const char *host = propstr_get(&ps, "host");
    const char *mapping = propstr_get(&ps, "mapping");
    const char *mdev = propstr_get(&ps, "mdev");
    if (host && mapping) {
        r = err_set(e, -EINVAL, "hostpci%u: 'host' and 'mapping' are mutually exclusive", index);
    } else if (!host && !mapping) {
        r = err_set(e, -EINVAL, "hostpci%u: neither a PCI id nor 'mapping=' is given", index);
    } else if (mdev && (!mdev_type_id_valid(mdev) || strlen(mdev) >= sizeof(out->mdev))) {
        err_set(e, -EINVAL, "hostpci%u: mdev type '%s' is not a valid type name", index, mdev);
        err_hint(
            e, "an mdev type is a sysfs directory name such as 'nvidia-46' "
               "(no '/', '.', ':' or spaces); see 'pve-vgpu-hook types'"
        );
        r = -EINVAL;
    } else if (mapping && strlen(mapping) >= sizeof(out->mapping)) {
        r = err_set(e, -EINVAL, "hostpci%u: mapping id '%s' is too long", index, mapping);
    } else if (host) {
        r = parse_host_list(index, host, out, e);
    }
    if (r == 0 && mdev) {
        snprintf(out->mdev, sizeof(out->mdev), "%s", mdev);
    }
    if (r == 0 && mapping) {
        snprintf(out->mapping, sizeof(out->mapping), "%s", mapping);
    }
    propstr_free(&ps);
    return r;
}

int hostpci_mdev_entries(
    const struct pveconf *c, struct hostpci out[HOSTPCI_MAX], size_t *n, unsigned *bad,
    struct pvh_err *e
) {
    int first = 0;
    *n = 0;
    for (unsigned i = 0; i < HOSTPCI_MAX; i++) {
        char key[16];
        struct hostpci hp;
        struct pvh_err pe;
        snprintf(key, sizeof(key), "hostpci%u", i);
        const char *val = pveconf_get(c, key);
        if (!val) {
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
    const char *smbios = pveconf_get(c, "smbios1");
    if (!smbios) {
        return -ENOENT;
    }
    struct propstr ps;
    if (propstr_parse(smbios, NULL, &ps, NULL) < 0) {
        return -EINVAL;
    }
    const char *u = propstr_get(&ps, "uuid");
    char lower[MDEV_UUID_LEN + 1] = "";
    if (u && strlen(u) == MDEV_UUID_LEN) {
        for (size_t i = 0; i <= MDEV_UUID_LEN; i++) {
            lower[i] = (char)tolower((unsigned char)u[i]);
        }
    }
    propstr_free(&ps);
    if (!uuid_is_canonical(lower)) {
        return -EINVAL;
    }
    return str_fmt(out, size, "%s", lower);
}

void pveconf_identity(const struct pveconf *c, struct vm_identity *id) {
    memset(id, 0, sizeof(*id));
    if (pveconf_smbios_uuid(c, id->uuid, sizeof(id->uuid)) < 0) {
        id->uuid[0] = '\0';
    }
    const char *meta = pveconf_get(c, "meta");
    struct propstr ps;
    if (!meta || propstr_parse(meta, NULL, &ps, NULL) < 0) {
        return; /* Proxmox ignores a meta it cannot parse: so do we */
    }
    const char *t = propstr_get(&ps, "ctime");
    char *end;
    errno = 0;
    long long v = t && isdigit((unsigned char)*t) ? strtoll(t, &end, 10) : 0;
    id->ctime = v > 0 && !errno && !*end ? v : 0;
    propstr_free(&ps);
}

bool vm_identity_empty(const struct vm_identity *id) {
    return id->ctime == 0 && !id->uuid[0];
}

bool vm_identity_matches(const struct vm_identity *recorded, const struct vm_identity *now) {
    return (recorded->ctime == 0 || recorded->ctime == now->ctime) &&
           (!recorded->uuid[0] || !strcmp(recorded->uuid, now->uuid));
}

void vm_identity_describe(const struct vm_identity *id, char *out, size_t size) {
    if (vm_identity_empty(id)) {
        snprintf(out, size, "no meta ctime or smbios1 uuid");
        return;
    }
    snprintf(
        out, size, "%s%.0lld%s%s%s", id->ctime ? "created at ctime " : "", id->ctime,
        id->ctime && id->uuid[0] ? ", " : "", id->uuid[0] ? "smbios1 uuid " : "", id->uuid
    );
}

bool mdev_type_id_valid(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n >= MDEV_TYPE_ID_MAX) {
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
