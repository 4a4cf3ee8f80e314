#include "pvetask.h"

#include "hostpaths.h"
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The next ':'-terminated field of [*p, end); false when there is no ':' left. */
static bool upid_field(const char **p, const char *end, const char **f, size_t *flen) {
    const char *colon = memchr(*p, ':', (size_t)(end - *p));
    if (!colon) {
        return false;
    }
    *f = *p;
    *flen = (size_t)(colon - *p);
    *p = colon + 1;
    return true;
}

/* A field of min..max hex digits into *v. */
static bool upid_hex(const char *f, size_t len, size_t min, size_t max, unsigned long long *v) {
    if (len < min || len > max) {
        return false;
    }
    *v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)f[i])) {
            return false;
        }
        char c = (char)tolower((unsigned char)f[i]);
        *v = *v * 16 + (unsigned long long)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return true;
}

/* Proxmox's [^:\s]* (here also no '/' and no control byte: the UPID names a file), copied. */
static bool upid_word(const char *f, size_t len, bool may_be_empty, char *out, size_t size) {
    if ((!len && !may_be_empty) || len >= size) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)f[i];
        if (isspace(c) || c == '/' || c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    memcpy(out, f, len);
    out[len] = '\0';
    return true;
}

static bool upid_node_valid(const char *n) {
    size_t len = strlen(n);
    if (!len || !isalnum((unsigned char)n[0]) || !isalnum((unsigned char)n[len - 1])) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)n[i]) && n[i] != '-') {
            return false;
        }
    }
    return true;
}

int upid_parse(const char *s, size_t len, struct pve_upid *u) {
    const char *p = s, *end = s + len, *f[8];
    size_t fl[8];
    unsigned long long pid, pstart, start;
    char user[256];
    memset(u, 0, sizeof(*u));
    for (int i = 0; i < 8; i++) {
        if (!upid_field(&p, end, &f[i], &fl[i])) {
            return -EINVAL;
        }
    }
    if (p != end || fl[0] != 4 || memcmp(f[0], "UPID", 4) != 0 ||
        !upid_word(f[1], fl[1], false, u->node, sizeof(u->node)) || !upid_node_valid(u->node) ||
        !upid_hex(f[2], fl[2], 8, 8, &pid) || !upid_hex(f[3], fl[3], 8, 9, &pstart) ||
        !upid_hex(f[4], fl[4], 8, 8, &start) ||
        !upid_word(f[5], fl[5], false, u->type, sizeof(u->type)) ||
        !upid_word(f[6], fl[6], true, u->id, sizeof(u->id))) {
        return -EINVAL;
    }
    if (!upid_word(f[7], fl[7], false, user, sizeof(user))) {
        return -EINVAL;
    }
    u->pid = (unsigned long)pid;
    u->pstart = (unsigned long)pstart;
    u->starttime = (long long)start;
    u->subdir = (char)toupper((unsigned char)f[4][7]);
    return 0;
}

/* A whole copy of [s, s + len). */
static char *task_strndup(const char *s, size_t len) {
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

/* The next blank-separated word of [*p, end). */
static bool task_word(const char **p, const char *end, const char **w, size_t *wlen) {
    while (*p < end && **p == ' ') {
        (*p)++;
    }
    *w = *p;
    while (*p < end && **p != ' ') {
        (*p)++;
    }
    *wlen = (size_t)(*p - *w);
    return *wlen > 0;
}

int pve_task_parse(const char *line, size_t len, bool active, struct pve_task *t) {
    const char *p = line, *end = line + len, *w;
    size_t wl;
    unsigned long long v;
    memset(t, 0, sizeof(*t));
    if (!task_word(&p, end, &w, &wl) || upid_parse(w, wl, &t->u) < 0) {
        return -EINVAL;
    }
    const char *upid = w;
    size_t upid_len = wl;
    if (active && (!task_word(&p, end, &w, &wl) || wl != 1 || (*w != '0' && *w != '1'))) {
        return -EINVAL; /* "saved" */
    }
    if (task_word(&p, end, &w, &wl)) {
        if (!upid_hex(w, wl, 8, 8, &v) || p >= end) {
            return -EINVAL;
        }
        t->ended = true;
        t->endtime = (long long)v;
        t->status = task_strndup(p + 1, (size_t)(end - p - 1));
    } else if (!active) {
        return -EINVAL; /* the index lists finished tasks only */
    }
    t->upid = task_strndup(upid, upid_len);
    if (!t->upid || (t->ended && !t->status)) {
        pve_task_free(t);
        return -ENOMEM;
    }
    return 0;
}

void pve_task_free(struct pve_task *t) {
    free(t->upid);
    free(t->status);
    t->upid = t->status = NULL;
}

int pve_task_log_path(const char *upid, const struct pve_upid *u, char *buf, size_t size) {
    return str_fmt(buf, size, PVE_TASKS_DIR "/%c/%s", u->subdir, upid);
}

char *pve_task_log_status(const char *text) {
    const char *pos = text, *line, *last = NULL;
    size_t llen, last_len = 0;
    while (str_next_line(&pos, &line, &llen)) {
        if (llen) {
            last = line;
            last_len = llen;
        }
    }
    if (!last || last_len < 6 || memcmp(last, "TASK ", 5) != 0) {
        return NULL;
    }
    return task_strndup(last + 5, last_len - 5);
}

bool pve_task_status_ok(const char *status) {
    return status && (!strcmp(status, "OK") || !strncmp(status, "WARNINGS: ", 10));
}
