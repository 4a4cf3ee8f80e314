#include "debver.h"

#include "cleanup.h"
#include "hostfs.h"
#include "hostpaths.h"
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* dpkg lib/dpkg/version.c: '~' sorts before everything, even the end of the string. */
static int order(int c) {
    if (isdigit(c)) {
        return 0;
    }
    if (isalpha(c)) {
        return c;
    }
    if (c == '~') {
        return -1;
    }
    if (c) {
        return c + 256;
    }
    return 0;
}

static int verrevcmp(const char *a, const char *b) {
    while (*a || *b) {
        int first_diff = 0;
        while ((*a && !isdigit((unsigned char)*a)) || (*b && !isdigit((unsigned char)*b))) {
            int ac = order((unsigned char)*a);
            int bc = order((unsigned char)*b);
            if (ac != bc) {
                return ac - bc;
            }
            a++;
            b++;
        }
        while (*a == '0') {
            a++;
        }
        while (*b == '0') {
            b++;
        }
        while (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            if (!first_diff) {
                first_diff = *a - *b;
            }
            a++;
            b++;
        }
        if (isdigit((unsigned char)*a)) {
            return 1;
        }
        if (isdigit((unsigned char)*b)) {
            return -1;
        }
        if (first_diff) {
            return first_diff;
        }
    }
    return 0;
}

struct debver {
    unsigned long epoch;
    char upstream[128];
    char revision[128];
};

static void parse(const char *s, struct debver *v) {
    while (isspace((unsigned char)*s)) {
        s++;
    }
    v->epoch = 0;
    const char *colon = strchr(s, ':');
    if (colon) {
        v->epoch = strtoul(s, NULL, 10);
        s = colon + 1;
    }
    snprintf(v->upstream, sizeof(v->upstream), "%s", s);
    v->upstream[strcspn(v->upstream, " \t\n")] = '\0';
    char *dash = strrchr(v->upstream, '-');
    v->revision[0] = '\0';
    if (dash) {
        snprintf(v->revision, sizeof(v->revision), "%s", dash + 1);
        *dash = '\0';
    }
}

int debver_cmp(const char *a, const char *b) {
    struct debver va, vb;
    parse(a, &va);
    parse(b, &vb);
    if (va.epoch != vb.epoch) {
        return va.epoch > vb.epoch ? 1 : -1;
    }
    int r = verrevcmp(va.upstream, vb.upstream);
    if (r) {
        return r > 0 ? 1 : -1;
    }
    r = verrevcmp(va.revision, vb.revision);
    return r > 0 ? 1 : (r < 0 ? -1 : 0);
}

/* Copy the value of field `name` from a deb822 stanza [p, end) (first line only); false when
 * absent or too long for out (never a cut value). */
static bool field(const char *p, const char *end, const char *name, char *out, size_t size) {
    size_t nlen = strlen(name);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) {
            eol = end;
        }
        if ((size_t)(eol - p) > nlen && !strncasecmp(p, name, nlen) && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) {
                v++;
            }
            const char *ve = eol;
            while (ve > v && isspace((unsigned char)ve[-1])) {
                ve--;
            }
            return str_fmt(out, size, "%.*s", (int)(ve - v), v) == 0;
        }
        p = eol + 1;
    }
    return false;
}

int debver_installed(const char *text, const char *pkg, char *ver, size_t size) {
    int r = -ENOENT;
    const char *p = text;
    while (*p) {
        /* A stanza ends at an empty line. */
        const char *end = strstr(p, "\n\n");
        end = end ? end + 1 : p + strlen(p);
        char name[128], status[128];
        if (field(p, end, "Package", name, sizeof(name)) && !strcmp(name, pkg) &&
            field(p, end, "Status", status, sizeof(status))) {
            const char *last = strrchr(status, ' ');
            if (last && !strcmp(last + 1, "installed") && field(p, end, "Version", ver, size)) {
                return 0;
            }
            r = -ESRCH; /* another architecture's stanza may still be the installed one */
        }
        p = end;
        while (*p == '\n') {
            p++;
        }
    }
    return r;
}

/* A package's installed version: /var/lib/dpkg/status, then the entries dpkg has journaled in
 * updates/ but not merged yet (they are newer: during or after an interrupted run). */
int debver_installed_on(const struct hostfs *fs, const char *pkg, char *ver, size_t size) {
    _cleanup_free_ char *status = NULL;
    int r = hostfs_read_alloc(fs, DPKG_STATUS, 64 << 20, &status, NULL);
    if (r < 0) {
        return r;
    }
    r = debver_installed(status, pkg, ver, size);
    struct hostfs_list l;
    if (hostfs_list(fs, DPKG_UPDATES_DIR, &l) < 0) {
        return r;
    }
    for (size_t i = 0; i < l.n; i++) { /* names are sequence numbers of equal width */
        char path[PATH_MAX];
        _cleanup_free_ char *text = NULL;
        if (strspn(l.names[i], "0123456789") != strlen(l.names[i]) ||
            str_fmt(path, sizeof(path), DPKG_UPDATES_DIR "/%s", l.names[i]) < 0 ||
            hostfs_read_alloc(fs, path, 1 << 20, &text, NULL) < 0) {
            continue;
        }
        char v[64];
        int jr = debver_installed(text, pkg, v, sizeof(v));
        if (jr == 0) {
            snprintf(ver, size, "%s", v);
        }
        if (jr != -ENOENT) {
            r = jr; /* the journal's word on pkg, installed or not, is the newer one */
        }
    }
    hostfs_list_free(&l);
    return r;
}
