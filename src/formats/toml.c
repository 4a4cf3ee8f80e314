#include "toml.h"

#include "cleanup.h"
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The reader's position: line and column for messages. */
struct cursor {
    const char *text, *p, *line_start;
    unsigned line;
    struct pvh_err *e;
};

static int fail(struct cursor *c, const char *what) {
    unsigned col = (unsigned)(c->p - c->line_start) + 1;
    err_set(c->e, -EINVAL, "line %u, column %u: %s", c->line, col, what);
    return -EINVAL;
}

static void skip_ws(struct cursor *c) {
    while (*c->p == ' ' || *c->p == '\t') {
        c->p++;
    }
}

static bool bare_char(char ch) {
    return isalnum((unsigned char)ch) || ch == '_' || ch == '-';
}

/* After a value or header: blanks, an optional comment, the end of the line. */
static int end_of_line(struct cursor *c) {
    skip_ws(c);
    if (*c->p == '#') {
        while (*c->p && *c->p != '\n') {
            unsigned char ch = (unsigned char)*c->p;
            if ((ch < 0x20 && ch != '\t' && !(ch == '\r' && c->p[1] == '\n')) || ch == 0x7f) {
                return fail(c, "a control character in a comment (TOML forbids it)");
            }
            c->p++;
        }
    }
    if (*c->p == '\r' && c->p[1] == '\n') {
        c->p++;
    }
    if (*c->p && *c->p != '\n') {
        return fail(c, "unexpected text after the value (a comment starts with '#')");
    }
    return 0;
}

static int put_utf8(FILE *f, unsigned long cp) {
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return -EINVAL;
    }
    if (cp < 0x80) {
        fputc((int)cp, f);
    } else if (cp < 0x800) {
        fputc((int)(0xC0 | (cp >> 6)), f);
        fputc((int)(0x80 | (cp & 0x3F)), f);
    } else if (cp < 0x10000) {
        fputc((int)(0xE0 | (cp >> 12)), f);
        fputc((int)(0x80 | ((cp >> 6) & 0x3F)), f);
        fputc((int)(0x80 | (cp & 0x3F)), f);
    } else {
        fputc((int)(0xF0 | (cp >> 18)), f);
        fputc((int)(0x80 | ((cp >> 12) & 0x3F)), f);
        fputc((int)(0x80 | ((cp >> 6) & 0x3F)), f);
        fputc((int)(0x80 | (cp & 0x3F)), f);
    }
    return 0;
}

/* A basic ("...") or literal ('...') string on one line; *out malloc'ed, unescaped. */
static int read_string(struct cursor *c, char **out) {
    char q = *c->p;
    if (c->p[1] == q && c->p[2] == q) {
        return fail(c, "multi-line strings are beyond what pve-vgpu-hook reads; use one line");
    }
    c->p++;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) {
        return -ENOMEM;
    }
    int r = 0;
    while (r == 0 && *c->p != q) {
        unsigned char ch = (unsigned char)*c->p;
        if (!ch || ch == '\n') {
            r = fail(c, "the string is not closed on its line");
        } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            r = fail(c, "a control character in a string (write it as an escape)");
        } else if (ch == '\\' && q == '"') {
            static const char from[] = "btnfr\"\\", to[] = "\b\t\n\f\r\"\\";
            const char *m = c->p[1] ? strchr(from, c->p[1]) : NULL;
            if (m) {
                fputc(to[m - from], f);
                c->p += 2;
            } else if (c->p[1] == 'u' || c->p[1] == 'U') {
                int nd = c->p[1] == 'u' ? 4 : 8;
                unsigned long cp = 0;
                for (int i = 0; i < nd && r == 0; i++) {
                    char h = c->p[2 + i];
                    if (!isxdigit((unsigned char)h)) {
                        r = fail(c, "a \\u escape needs 4 (\\U: 8) hex digits");
                    }
                    cp = cp * 16 + (unsigned long
                                   )(isdigit((unsigned char)h)
                                         ? h - '0'
                                         : tolower((unsigned char)h) - 'a' + 10);
                }
                if (r == 0 && put_utf8(f, cp) < 0) {
                    r = fail(c, "the escape is no Unicode scalar value");
                }
                c->p += 2 + nd;
            } else {
                r = fail(c, "an unknown escape (TOML knows \\b \\t \\n \\f \\r \\\" \\\\ \\u \\U)");
            }
        } else {
            fputc(ch, f);
            c->p++;
        }
    }
    if (fclose(f) != 0 && r == 0) {
        r = -ENOMEM;
    }
    if (r < 0) {
        free(buf);
        return r;
    }
    c->p++;
    *out = buf;
    return 0;
}

/* A bare or quoted key (one name). */
static int read_name(struct cursor *c, char **out) {
    if (*c->p == '"' || *c->p == '\'') {
        return read_string(c, out);
    }
    const char *s = c->p;
    while (bare_char(*c->p)) {
        c->p++;
    }
    if (c->p == s) {
        return fail(c, "a name is missing here (letters, digits, '_', '-', or quoted)");
    }
    return (*out = strndup(s, (size_t)(c->p - s))) ? 0 : -ENOMEM;
}

/* An integer as TOML writes it, from s: [+-]decimal with single '_' between digits, or
 * 0x/0o/0b. NULL with *end after it, or why it is none (*end = s). */
static const char *scan_int(const char *s, const char **end, long long *out) {
    const char *p = s;
    bool neg = false;
    int base = 10;
    *end = s;
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    } else if (p[0] == '0' && p[1] && strchr("xob", p[1])) {
        base = p[1] == 'x' ? 16 : p[1] == 'o' ? 8 : 2;
        p += 2;
    }
    unsigned long long v = 0, limit = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
    const char *digits = p;
    bool prev_digit = false;
    for (;; p++) {
        char ch = *p;
        int d = isdigit((unsigned char)ch)    ? ch - '0'
                : isxdigit((unsigned char)ch) ? tolower((unsigned char)ch) - 'a' + 10
                                              : -1;
        if (ch == '_' && prev_digit && p[1] && isxdigit((unsigned char)p[1])) {
            prev_digit = false;
            continue;
        }
        if (d < 0 || d >= base) {
            break;
        }
        if (v > (limit - (unsigned)d) / (unsigned)base) {
            return "the integer does not fit in 64 bits";
        }
        v = v * (unsigned)base + (unsigned)d;
        prev_digit = true;
    }
    if (p == digits || !prev_digit) {
        return "not a value pve-vgpu-hook reads (an integer, a \"string\", true or false)";
    }
    if (*p == '.' || *p == 'e' || *p == 'E' || *p == ':' || (*p == '-' && base == 10)) {
        return "floats and dates are beyond what pve-vgpu-hook reads (vgpu_unlock-rs wants "
               "integers or strings)";
    }
    if (base == 10 && digits[0] == '0' && p - digits > 1) {
        return "an integer with a leading zero (TOML forbids it)";
    }
    *out = neg ? (long long)(0 - v) : (long long)v;
    *end = p;
    return NULL;
}

static int read_int(struct cursor *c, long long *out) {
    const char *end, *why = scan_int(c->p, &end, out);
    if (why) {
        return fail(c, why);
    }
    c->p = end;
    return 0;
}

int toml_int(const char *s, long long *out) {
    const char *end;
    return !scan_int(s, &end, out) && *end == '\0' ? 0 : -EINVAL;
}

static int read_value(struct cursor *c, struct toml_kv *kv) {
    kv->line = c->line;
    kv->col = (unsigned)(c->p - c->line_start) + 1;
    if (*c->p == '"' || *c->p == '\'') {
        kv->type = TOML_STRING;
        return read_string(c, &kv->s);
    }
    if (!strncmp(c->p, "true", 4) && !bare_char(c->p[4])) {
        kv->type = TOML_BOOL;
        kv->i = 1;
        c->p += 4;
        return 0;
    }
    if (!strncmp(c->p, "false", 5) && !bare_char(c->p[5])) {
        kv->type = TOML_BOOL;
        c->p += 5;
        return 0;
    }
    if (*c->p == '[' || *c->p == '{') {
        return fail(c, "arrays and inline tables are beyond what pve-vgpu-hook reads");
    }
    const char *num = *c->p == '+' || *c->p == '-' ? c->p + 1 : c->p; /* (never past the NUL) */
    if (!strncmp(num, "inf", 3) || !strncmp(num, "nan", 3)) {
        return fail(c, "floats are beyond what pve-vgpu-hook reads");
    }
    kv->type = TOML_INT;
    return read_int(c, &kv->i);
}

static void table_free(struct toml_table *t) {
    for (size_t i = 0; i < t->npath; i++) {
        free(t->path[i]);
    }
    for (size_t i = 0; i < t->nkvs; i++) {
        free(t->kvs[i].key);
        free(t->kvs[i].s);
    }
    free(t->path);
    free(t->kvs);
}

void toml_free(struct toml_doc *d) {
    for (size_t i = 0; i < d->n; i++) {
        table_free(&d->tables[i]);
    }
    free(d->tables);
    d->tables = NULL;
    d->n = 0;
}

static bool path_equal(char *const *a, size_t na, const char *const *b, size_t nb) {
    if (na != nb) {
        return false;
    }
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i], b[i]) != 0) {
            return false;
        }
    }
    return true;
}

const struct toml_table *toml_find(const struct toml_doc *d, const char *const *path, size_t n) {
    for (size_t i = 0; i < d->n; i++) {
        if (path_equal(d->tables[i].path, d->tables[i].npath, path, n)) {
            return &d->tables[i];
        }
    }
    return NULL;
}

static int add_table(struct toml_doc *d, struct toml_table *t) {
    struct toml_table *nt = realloc(d->tables, (d->n + 1) * sizeof(*nt));
    if (!nt) {
        return -ENOMEM;
    }
    d->tables = nt;
    d->tables[d->n++] = *t;
    memset(t, 0, sizeof(*t));
    return 0;
}

/* "[a.b."c"]": the names, then the end of the line. */
static int read_header(struct cursor *c, struct toml_table *t) {
    if (c->p[1] == '[') {
        return fail(c, "arrays of tables ([[...]]) are beyond what pve-vgpu-hook reads");
    }
    c->p++;
    for (;;) {
        skip_ws(c);
        char *name = NULL;
        int r = read_name(c, &name);
        char **np = r == 0 ? realloc(t->path, (t->npath + 1) * sizeof(*np)) : NULL;
        if (!np) {
            free(name);
            return r < 0 ? r : -ENOMEM;
        }
        t->path = np;
        t->path[t->npath++] = name;
        skip_ws(c);
        if (*c->p == ']') {
            c->p++;
            return end_of_line(c);
        }
        if (*c->p != '.') {
            return fail(c, "expected '.' or ']' in the table name");
        }
        c->p++;
    }
}

/* Is a key of table t also the name of a table below it? TOML forbids both. */
static bool key_is_table(const struct toml_doc *d, const struct toml_table *t, const char *key) {
    for (size_t i = 0; i < d->n; i++) {
        const struct toml_table *o = &d->tables[i];
        if (o->npath == t->npath + 1 && !strcmp(o->path[t->npath], key) &&
            path_equal(o->path, t->npath, (const char *const *)t->path, t->npath)) {
            return true;
        }
    }
    return false;
}

static int read_line(struct cursor *c, struct toml_doc *d) {
    struct toml_table *cur = &d->tables[d->n - 1];
    skip_ws(c);
    if (*c->p == '#' || *c->p == '\n' || *c->p == '\0' || (*c->p == '\r' && c->p[1] == '\n')) {
        return end_of_line(c);
    }
    if (*c->p == '[') {
        struct toml_table t = {.line = c->line, .start = (size_t)(c->line_start - c->text)};
        int r = read_header(c, &t);
        if (r == 0 && toml_find(d, (const char *const *)t.path, t.npath)) {
            r = fail(c, "this table is defined twice (TOML forbids it)");
        }
        for (size_t i = 0; r == 0 && t.npath && i < d->n; i++) {
            const struct toml_table *o = &d->tables[i];
            for (size_t k = 0; r == 0 && o->npath == t.npath - 1 && k < o->nkvs; k++) {
                if (path_equal(o->path, o->npath, (const char *const *)t.path, t.npath - 1) &&
                    !strcmp(o->kvs[k].key, t.path[t.npath - 1])) {
                    r = fail(
                        c, "this table has the name of a key defined before (TOML forbids it)"
                    );
                }
            }
        }
        if (r == 0) {
            t.body = t.end = (size_t)(c->p - c->text) + (*c->p == '\n');
            cur->next = t.start;
            r = add_table(d, &t);
        }
        table_free(&t);
        return r;
    }
    struct toml_kv kv = {0};
    int r = read_name(c, &kv.key);
    skip_ws(c);
    if (r == 0 && *c->p == '.') {
        r = fail(c, "dotted keys are beyond what pve-vgpu-hook reads: write a [table] header");
    } else if (r == 0 && *c->p != '=') {
        r = fail(c, "expected '=' after the key");
    }
    if (r == 0) {
        c->p++;
        skip_ws(c);
        r = read_value(c, &kv);
    }
    if (r == 0) {
        r = end_of_line(c);
    }
    for (size_t i = 0; r == 0 && i < cur->nkvs; i++) {
        if (!strcmp(cur->kvs[i].key, kv.key)) {
            c->p = c->line_start;
            r = fail(c, "this key is defined twice in its table (TOML forbids it)");
        }
    }
    if (r == 0 && key_is_table(d, cur, kv.key)) {
        c->p = c->line_start;
        r = fail(c, "this key has the name of a table defined before (TOML forbids it)");
    }
    struct toml_kv *nk = r == 0 ? realloc(cur->kvs, (cur->nkvs + 1) * sizeof(*nk)) : NULL;
    if (!nk) {
        free(kv.key);
        free(kv.s);
        return r < 0 ? r : -ENOMEM;
    }
    cur->kvs = nk;
    cur->kvs[cur->nkvs++] = kv;
    cur->end = (size_t)(c->p - c->text) + (*c->p == '\n');
    return 0;
}

int toml_parse(const char *text, size_t len, struct toml_doc *out, struct pvh_err *e) {
    memset(out, 0, sizeof(*out));
    struct cursor c = {.text = text, .p = text, .line_start = text, .line = 1, .e = e};
    size_t bad;
    if (strlen(text) != len || !str_utf8_valid(text, len, &bad)) {
        const char *at = strlen(text) != len ? text + strlen(text) : text + bad;
        for (const char *q = text; q < at; q++) {
            if (*q == '\n') {
                c.line++;
                c.line_start = q + 1;
            }
        }
        c.p = at;
        return fail(&c, "the file is not UTF-8 text (TOML requires it)");
    }
    struct toml_table root = {0};
    int r = add_table(out, &root);
    while (r == 0 && *c.p) {
        r = read_line(&c, out);
        if (r == 0 && *c.p == '\n') {
            c.p++;
            c.line++;
            c.line_start = c.p;
        }
    }
    if (r < 0) {
        toml_free(out);
        return r;
    }
    out->tables[out->n - 1].next = len;
    return 0;
}
