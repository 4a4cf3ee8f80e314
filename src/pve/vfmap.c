#include "vfmap.h"

#include "cleanup.h"
#include "config.h"
#include "hostfs.h"
#include "hostpaths.h"
#include "mdev_uuid.h"
#include "pveconf.h"
#include "sectioncfg.h"
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *vfmap_node_lines(const char *node, const struct vfmap_vf *vfs, size_t n) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const struct pci_ident *id = &vfs[i].ident;
        fprintf(f, "\tmap node=%s,path=%s,id=%s:%s", node, vfs[i].bdf, id->vendor, id->device);
        if (id->subsys_vendor[0] && id->subsys_device[0]) {
            fprintf(f, ",subsystem-id=%s:%s", id->subsys_vendor, id->subsys_device);
        }
        if (id->iommu_group >= 0) {
            fprintf(f, ",iommugroup=%ld", id->iommu_group);
        }
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int vfmap_lines_for(
    const struct hostfs *fs, const char *node, const char **bdfs, size_t n, char **lines,
    struct pvh_err *e
) {
    *lines = NULL;
    _cleanup_free_ struct vfmap_vf *vv = calloc(n ? n : 1, sizeof(*vv));
    if (!vv) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (str_fmt(vv[i].bdf, sizeof(vv[i].bdf), "%s", bdfs[i]) < 0 ||
            inventory_pci_ident(fs, bdfs[i], &vv[i].ident) < 0) {
            return err_set(e, -EIO, "cannot read the PCI ids of %s", bdfs[i]);
        }
    }
    return (*lines = vfmap_node_lines(node, vv, n)) ? 0 : err_set(e, -ENOMEM, "out of memory");
}

/* The key of a property line ("\tmap ..." -> "map"), [*k, *k + *klen). */
static void line_key(const char *l, size_t len, const char **k, size_t *klen) {
    size_t i = 0;
    while (i < len && isspace((unsigned char)l[i])) {
        i++;
    }
    *k = l + i;
    *klen = 0;
    while (i + *klen < len && !isspace((unsigned char)l[i + *klen])) {
        (*klen)++;
    }
}

/* A "map" line whose node= is node. */
static bool is_node_map_line(const char *l, size_t len, const char *node) {
    const char *k;
    size_t klen;
    line_key(l, len, &k, &klen);
    if (klen != 3 || strncmp(k, "map", 3) != 0) {
        return false;
    }
    _cleanup_free_ char *value = strndup(k + 3, (size_t)(l + len - (k + 3)));
    struct propstr ps;
    struct pvh_err e;
    if (!value || propstr_parse(value + strspn(value, " \t"), NULL, &ps, &e) < 0) {
        return false;
    }
    const char *n = propstr_get(&ps, "node");
    bool mine = n && !strcmp(n, node);
    propstr_free(&ps);
    return mine;
}

/* How key [k, k + klen) sorts against key (as Perl's sort compares them). */
static int key_cmp(const char *k, size_t klen, const char *key) {
    size_t keylen = strlen(key);
    int c = strncmp(k, key, klen < keylen ? klen : keylen);
    return c ? c : (klen > keylen) - (klen < keylen);
}

static unsigned sep_before_new_section(const char *text) {
    size_t len = strlen(text);
    if (len == 0 || (len >= 2 && !strcmp(text + len - 2, "\n\n"))) {
        return 0;
    }
    return text[len - 1] == '\n' ? 1 : 2;
}

int vfmap_put(
    const char *text, const char *id, unsigned long vmid, const char *node, const char *lines,
    char **out, unsigned *sep_nl
) {
    size_t start, end;
    *out = NULL;
    *sep_nl = 0;
    if (sectioncfg_span(text, false, id, &start, &end) < 0) {
        *sep_nl = sep_before_new_section(text);
        return asprintf(
                   out, "%s%.*s%s\n%s\tdescription " VFMAP_DESCRIPTION_FMT "\n\tmdev 1\n\n", text,
                   (int)*sep_nl, "\n\n", id, lines, vmid
               ) < 0
                   ? -ENOMEM
                   : 0;
    }
    /* Rebuild the section: its header, its lines without node's map lines, and the new ones
     * where node's first one was, else after the last map line, else right after the header
     * (SectionConfig writes the required "map" before the optional keys, sorted). */
    const char *sec = text + start, *send = text + end;
    const char *first_line = memchr(sec, '\n', (size_t)(send - sec));
    first_line = first_line ? first_line + 1 : send;
    const char *at = NULL, *after_map = NULL, *props_end = send;
    if (send > first_line && send[-1] == '\n' && send - 1 > sec && send[-2] == '\n') {
        props_end = send - 1; /* the empty line that ends the section stays last */
    }
    for (const char *l = first_line; l < props_end;) {
        const char *nl = memchr(l, '\n', (size_t)(props_end - l));
        const char *next = nl ? nl + 1 : props_end;
        size_t len = (size_t)((nl ? nl : props_end) - l);
        const char *k;
        size_t klen;
        line_key(l, len, &k, &klen);
        if (is_node_map_line(l, len, node)) {
            at = at ? at : l;
        } else if (klen == 3 && !strncmp(k, "map", 3)) {
            after_map = next;
        }
        l = next;
    }
    at = at ? at : after_map ? after_map : first_line;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) {
        return -ENOMEM;
    }
    fwrite(text, 1, (size_t)(first_line - text), f);
    for (const char *l = first_line; l <= props_end;) {
        if (l == at) {
            if (at[-1] != '\n') { /* the header or last line had no newline */
                fputc('\n', f);
            }
            fputs(lines, f);
        }
        if (l == props_end) {
            break;
        }
        const char *nl = memchr(l, '\n', (size_t)(props_end - l));
        const char *next = nl ? nl + 1 : props_end;
        if (!is_node_map_line(l, (size_t)((nl ? nl : props_end) - l), node)) {
            fwrite(l, 1, (size_t)(next - l), f);
        }
        l = next;
    }
    fputs(props_end, f);
    if (fclose(f) != 0) {
        free(buf);
        return -ENOMEM;
    }
    *out = buf;
    return 0;
}

int vfmap_set_flag(const char *text, const char *id, const char *key, bool on, char **out) {
    size_t start, end;
    *out = NULL;
    if (sectioncfg_span(text, false, id, &start, &end) < 0) {
        return -ENOENT;
    }
    const char *send = text + end, *l = memchr(text + start, '\n', end - start);
    l = l ? l + 1 : send;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) {
        return -ENOMEM;
    }
    fwrite(text, 1, (size_t)(l - text), f);
    bool done = !on;
    for (; l < send;) {
        const char *nl = memchr(l, '\n', (size_t)(send - l));
        const char *next = nl ? nl + 1 : send, *k;
        size_t len = (size_t)((nl ? nl : send) - l), klen;
        line_key(l, len, &k, &klen);
        bool mine = key_cmp(k, klen, key) == 0;
        /* before the first key that sorts after it (map lines come first, as Proxmox writes
         * its one required key), or before the empty line that ends the section */
        bool later = klen && *k != '#' && key_cmp(k, klen, "map") != 0 && key_cmp(k, klen, key) > 0;
        if (!done && (mine || later || klen == 0)) {
            fprintf(f, "%s\t%s 1\n", l[-1] == '\n' ? "" : "\n", key);
            done = true;
        }
        if (!mine) {
            fwrite(l, 1, (size_t)(next - l), f);
        }
        l = next;
    }
    if (!done) {
        fprintf(f, "%s\t%s 1\n", send[-1] == '\n' ? "" : "\n", key);
    }
    fputs(send, f);
    if (fclose(f) != 0) {
        free(buf);
        return -ENOMEM;
    }
    *out = buf;
    return 0;
}

int vfmap_remove(const char *text, const char *id, unsigned sep_nl, char **out) {
    size_t start, end;
    *out = NULL;
    if (sectioncfg_span(text, false, id, &start, &end) < 0) {
        return -ENOENT;
    }
    if (text[end] == '\0' && sep_nl <= start) {
        bool ours = true;
        for (unsigned i = 1; i <= sep_nl; i++) {
            ours &= text[start - i] == '\n';
        }
        start -= ours ? sep_nl : 0;
    }
    return asprintf(out, "%.*s%s", (int)start, text, text + end) < 0 ? -ENOMEM : 0;
}

int vfmap_read(const struct hostfs *fs, char **text, struct pvh_err *e) {
    int r = hostfs_read_alloc(fs, PVE_PCI_MAPPING_CFG, CONFIG_MAX_BYTES, text, NULL);
    if (r == -ENOENT) {
        *text = strdup("");
        r = *text ? 0 : -ENOMEM;
    }
    return r < 0 ? err_set(e, r, "cannot read %s: %s", PVE_PCI_MAPPING_CFG, strerror(-r)) : 0;
}

bool vfmap_ours(const struct sectioncfg_section *s, unsigned long *vmid) {
    char want[128];
    const char *desc = sectioncfg_get(s, "description");
    return !strncmp(s->id, "vgpu-hook-", 10) && vmid_parse(s->id + 10, vmid) && desc &&
           snprintf(want, sizeof(want), VFMAP_DESCRIPTION_FMT, *vmid) < (int)sizeof(want) &&
           !strcmp(desc, want);
}

/* Is "\tmap <value>\n" one of lines? */
static bool lines_have(const char *lines, const char *value) {
    size_t vlen = strlen(value);
    for (const char *l = lines; *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        if (len == vlen + 5 && !strncmp(l, "\tmap ", 5) && !strncmp(l + 5, value, vlen)) {
            return true;
        }
        l += len + (nl != NULL);
    }
    return false;
}

bool vfmap_node_same(const struct sectioncfg_section *s, const char *node, const char *lines) {
    size_t mine = 0, want = 0;
    for (const char *l = lines; (l = strchr(l, '\n')); l++) {
        want++;
    }
    for (size_t i = 0; i < s->nprops; i++) {
        const char *v = s->props[i].value;
        _cleanup_free_ char *line = NULL;
        if (strcmp(s->props[i].key, "map") != 0) {
            continue;
        }
        if (asprintf(&line, "map %s", v) < 0) {
            return false; /* out of memory: a write more, never one less */
        }
        if (!is_node_map_line(line, strlen(line), node)) {
            continue;
        }
        mine++;
        if (!lines_have(lines, v)) {
            return false;
        }
    }
    return mine == want;
}
