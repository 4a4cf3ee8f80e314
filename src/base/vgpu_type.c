#include "vgpu_type.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *last_token(const char *name) {
    const char *end = name + strlen(name);
    while (end > name && isspace((unsigned char)end[-1])) {
        end--;
    }
    const char *start = end;
    while (start > name && !isspace((unsigned char)start[-1])) {
        start--;
    }
    return start;
}

static bool is_series(char c) {
    return c == 'A' || c == 'B' || c == 'C' || c == 'Q';
}

/* GPU part of a time-sliced name: [A-Z0-9]+(-[a-zA-Z]+)* */
static bool gpu_part_ok(const char *s, size_t n, bool allow_suffixes) {
    size_t i = 0;
    while (i < n && (isupper((unsigned char)s[i]) || isdigit((unsigned char)s[i]))) {
        i++;
    }
    if (i == 0) {
        return false;
    }
    while (i < n && allow_suffixes) {
        if (s[i] != '-' || i + 1 >= n || !isalpha((unsigned char)s[i + 1])) {
            return false;
        }
        i++;
        while (i < n && isalpha((unsigned char)s[i])) {
            i++;
        }
    }
    return i == n;
}

/* Parse "<digits><series>" ending at end; returns the start of the digits or NULL. */
static const char *size_series(const char *tok, const char *end, unsigned *gb, char *series) {
    if (end - tok < 2 || !is_series(end[-1])) {
        return NULL;
    }
    const char *d = end - 1;
    while (d > tok && isdigit((unsigned char)d[-1])) {
        d--;
    }
    size_t nd = (size_t)(end - 1 - d);
    if (nd == 0 || (nd > 1 && *d == '0') || nd > 4) {
        return NULL;
    }
    *gb = (unsigned)strtoul(d, NULL, 10);
    *series = end[-1];
    return d;
}

int vgpu_type_parse_name(const char *name, struct vgpu_type_info *out) {
    const char *tok = last_token(name);
    size_t len = strcspn(tok, " \t\r\n");
    snprintf(out->short_name, sizeof(out->short_name), "%.*s", (int)len, tok);
    out->named = false;
    out->mig = false;
    out->series = 0;
    const char *t = out->short_name;
    const char *end = t + strlen(t);
    unsigned gb;
    char series;

    /* Time-sliced: <GPU>-<GB><S> */
    const char *d = size_series(t, end, &gb, &series);
    if (d && d - t >= 2 && d[-1] == '-' && gpu_part_ok(t, (size_t)(d - 1 - t), true)) {
        snprintf(out->gpu, sizeof(out->gpu), "%.*s", (int)(d - 1 - t), t);
        out->series = series;
        out->fb_mib = gb ? gb * 1024 : 512; /* "0" means 512 MB (M60-0Q) */
        out->named = true;
        return 0;
    }
    /* MIG-backed: <GPU>-<G>-<GB><S>[ME|NOME|MEALL|GFX] */
    static const char *const suffixes[] = {"MEALL", "NOME", "ME", "GFX", ""};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t sl = strlen(suffixes[i]);
        if ((size_t)(end - t) <= sl || strcmp(end - sl, suffixes[i]) != 0) {
            continue;
        }
        const char *e = end - sl;
        d = size_series(t, e, &gb, &series);
        /* d[-1] '-', d[-2] slice digit 1-9, d[-3] '-' */
        if (!d || d - t < 5 || d[-1] != '-' || d[-2] < '1' || d[-2] > '9' || d[-3] != '-' ||
            !gpu_part_ok(t, (size_t)(d - 3 - t), false)) {
            continue;
        }
        snprintf(out->gpu, sizeof(out->gpu), "%.*s", (int)(d - 3 - t), t);
        out->series = series;
        out->mig = true;
        out->mig_slices = (unsigned)(d[-2] - '0');
        out->fb_mib = gb ? gb * 1024 : 512;
        out->named = true;
        return 0;
    }
    out->gpu[0] = '\0';
    return -EINVAL;
}

static int parse_uint(const char *s, size_t n, unsigned *out, const char **rest) {
    char buf[16];
    if (n == 0 || n >= sizeof(buf)) {
        return -EINVAL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *e;
    unsigned long v = strtoul(buf, &e, 10);
    if (e == buf || v > 0xffffffffUL || !isdigit((unsigned char)buf[0])) {
        return -EINVAL;
    }
    *out = (unsigned)v;
    if (rest) {
        *rest = s + (e - buf);
    } else if (*e) {
        return -EINVAL;
    }
    return 0;
}

int vgpu_type_parse_description(const char *desc, struct vgpu_type_info *out) {
    int r = 0;
    const char *p = desc;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') {
            p++;
        }
        if (!*p) {
            break;
        }
        const char *item_end = p + strcspn(p, ",\n");
        const char *eq = memchr(p, '=', (size_t)(item_end - p));
        if (!eq) {
            r = -EINVAL;
            p = item_end;
            continue;
        }
        size_t klen = (size_t)(eq - p);
        const char *v = eq + 1;
        const char *ve = item_end;
        while (ve > v && isspace((unsigned char)ve[-1])) {
            ve--;
        }
        size_t vlen = (size_t)(ve - v);
        if (klen == 11 && !strncmp(p, "framebuffer", klen)) {
            const char *unit;
            unsigned val;
            if (parse_uint(v, vlen, &val, &unit) < 0) {
                r = -EINVAL;
            } else if (unit == ve || *unit == 'M') {
                out->fb_mib = val;
            } else if (*unit == 'G') {
                out->fb_mib = val * 1024;
            } else {
                r = -EINVAL;
            }
        } else if (klen == 12 && !strncmp(p, "max_instance", klen)) {
            if (parse_uint(v, vlen, &out->max_instance, NULL) < 0) {
                r = -EINVAL;
            }
        } else if (klen == 9 && !strncmp(p, "num_heads", klen)) {
            if (parse_uint(v, vlen, &out->num_heads, NULL) < 0) {
                r = -EINVAL;
            }
        } else if (klen == 10 && !strncmp(p, "frl_config", klen)) {
            if (parse_uint(v, vlen, &out->frl_config, NULL) < 0) {
                r = -EINVAL;
            }
        } else if (klen == 14 && !strncmp(p, "max_resolution", klen)) {
            snprintf(out->max_resolution, sizeof(out->max_resolution), "%.*s", (int)vlen, v);
        }
        p = item_end;
    }
    return r;
}

void vgpu_type_describe(const char *name, const char *desc, struct vgpu_type_info *out) {
    memset(out, 0, sizeof(*out));
    (void)vgpu_type_parse_name(name ? name : "", out);
    if (desc && *desc) {
        (void)vgpu_type_parse_description(desc, out);
    }
}

bool vgpu_type_matches(const char *query, const char *type_id, const char *name) {
    if (!strcmp(query, type_id)) {
        return true;
    }
    if (!name || !*name) {
        return false;
    }
    if (!strcasecmp(query, name)) {
        return true;
    }
    /* Short name: the last token ("P40-1Q" for "GRID P40-1Q"). */
    return strchr(query, ' ') == NULL && !strcasecmp(query, last_token(name));
}

bool vgpu_type_query_valid(const char *q) {
    size_t n = strlen(q);
    if (n == 0 || n >= 128 || q[0] == ' ' || q[n - 1] == ' ') {
        return false;
    }
    /* What an id (nvidia-46, i915-GVTg_V5_4) or NVIDIA's names ("GRID P40-2Q",
     * "NVIDIA A100-1-5C") are made of: nothing that could become a path, a shell word or a
     * control sequence. */
    for (const char *p = q; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr(" -_+", *p)) {
            return false;
        }
    }
    return true;
}
