/*
 * toml: a strict reader for the part of TOML that vgpu_unlock-rs users write in
 * /etc/vgpu_unlock/profile_override.toml: tables (dotted and quoted names), bare and quoted
 * keys, integers, strings and booleans, comments. Anything beyond (arrays, inline tables,
 * floats, dates, multi-line strings, dotted keys) is refused with its line and column instead
 * of guessed at. It only reads: writers splice text by the spans it reports, so every other
 * byte of the file stays as it was.
 */
#ifndef PVH_TOML_H
#define PVH_TOML_H

#include "log.h"

#include <stdbool.h>
#include <stddef.h>

enum toml_type { TOML_INT, TOML_STRING, TOML_BOOL };

struct toml_kv {
    char *key;
    enum toml_type type;
    long long i; /* TOML_INT, or TOML_BOOL (0/1) */
    char *s;     /* TOML_STRING, unescaped */
    unsigned line, col;
};

struct toml_table {
    char **path; /* the header's names, unquoted; npath 0 for the keys before any header */
    size_t npath;
    unsigned line;
    size_t start; /* the header line's first byte */
    size_t body;  /* the byte after the header line */
    size_t end;   /* after its last key line (or the header), before what follows */
    size_t next;  /* where the next header starts (or the end of the text) */
    struct toml_kv *kvs;
    size_t nkvs;
};

struct toml_doc {
    struct toml_table *tables; /* tables[0] is the root */
    size_t n;
};

/* text: len bytes (NUL-terminated). Errors: e says "line L, column C: what". */
int toml_parse(const char *text, size_t len, struct toml_doc *out, struct pvh_err *e);
void toml_free(struct toml_doc *d);
/* The whole of s is a TOML integer (what this reader takes as a value): 0, else -EINVAL. */
int toml_int(const char *s, long long *out);
/* The table named by path (n names), or NULL. */
const struct toml_table *toml_find(const struct toml_doc *d, const char *const *path, size_t n);

#endif
