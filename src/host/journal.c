#include "journal.h"

#include "hostpaths.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>

#define JOURNAL_SLACK_US (600ULL * 1000000) /* a clock set back this far is still read */

/* The value of field in the current entry (NUL-terminated copy in buf), or "" when absent. */
static void journal_field(sd_journal *j, const char *field, char *buf, size_t size) {
    const void *data;
    size_t len, flen = strlen(field);
    buf[0] = '\0';
    if (sd_journal_get_data(j, field, &data, &len) < 0 || len <= flen + 1) {
        return;
    }
    len -= flen + 1;
    if (len >= size) {
        return; /* longer than any unit or identifier we look for: not one of them */
    }
    memcpy(buf, (const char *)data + flen + 1, len);
    buf[len] = '\0';
}

/* Which of our sources the current entry is from; -1 for none. */
static int journal_source_of(sd_journal *j) {
    char v[64];
    journal_field(j, "_TRANSPORT", v, sizeof(v));
    if (!strcmp(v, "kernel")) {
        return JOURNAL_KERNEL;
    }
    journal_field(j, "_SYSTEMD_UNIT", v, sizeof(v));
    char id[64];
    journal_field(j, "SYSLOG_IDENTIFIER", id, sizeof(id));
    if (!strcmp(v, "nvidia-vgpu-mgr.service") || !strcmp(id, "nvidia-vgpu-mgr")) {
        return JOURNAL_VGPU_MGR;
    }
    if (!strcmp(v, "nvidia-vgpud.service") || !strcmp(id, "nvidia-vgpud")) {
        return JOURNAL_VGPUD;
    }
    return -1;
}

/* The current entry as a record; -ENOENT when it has no message. */
static int journal_entry_of(sd_journal *j, int src, struct journal_entry *out) {
    const void *data;
    size_t len;
    uint64_t usec;
    if (sd_journal_get_data(j, "MESSAGE", &data, &len) < 0 || len < 8 ||
        sd_journal_get_realtime_usec(j, &usec) < 0) {
        return -ENOENT;
    }
    char pid[32];
    journal_field(j, "_PID", pid, sizeof(pid));
    out->src = (enum journal_source)src;
    out->usec = usec;
    out->pid = strtol(pid, NULL, 10);
    out->msg = malloc(len - 7);
    if (!out->msg) {
        return -ENOMEM;
    }
    memcpy(out->msg, (const char *)data + 8, len - 8);
    out->msg[len - 8] = '\0';
    for (size_t i = 0; i < len - 8; i++) {
        out->msg[i] = out->msg[i] ? out->msg[i] : '?';
    }
    return 0;
}

/* Only our sources: matches on different fields are ANDed unless split by a disjunction. */
static int journal_filter(sd_journal *j) {
    static const char *const matches[] = {
        "_TRANSPORT=kernel",
        "_SYSTEMD_UNIT=nvidia-vgpu-mgr.service",
        "SYSLOG_IDENTIFIER=nvidia-vgpu-mgr",
        "_SYSTEMD_UNIT=nvidia-vgpud.service",
        "SYSLOG_IDENTIFIER=nvidia-vgpud",
    };
    int r = 0;
    for (size_t i = 0; r >= 0 && i < sizeof(matches) / sizeof(matches[0]); i++) {
        r = (i ? sd_journal_add_disjunction(j) : 0);
        r = r < 0 ? r : sd_journal_add_match(j, matches[i], 0);
    }
    return r < 0 ? r : 0;
}

static int journal_collect(
    sd_journal *j, unsigned long long since_usec, size_t max, struct journal_entry **out, size_t *n,
    bool *capped
) {
    size_t cap = 0;
    int r = journal_filter(j);
    if (r == 0) {
        /* the realtime index assumes a clock that only moves forward: start early, filter */
        r = sd_journal_seek_realtime_usec(
            j, since_usec > JOURNAL_SLACK_US ? since_usec - JOURNAL_SLACK_US : 0
        );
    }
    while (r >= 0 && (r = sd_journal_next(j)) > 0) {
        int src = journal_source_of(j);
        struct journal_entry rec;
        if (src < 0 || (r = journal_entry_of(j, src, &rec)) == -ENOENT) {
            r = 0;
            continue;
        }
        if (r < 0) {
            return r;
        }
        if (rec.usec < since_usec) {
            free(rec.msg);
            continue;
        }
        if (*n == max) {
            free(rec.msg);
            *capped = true;
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            struct journal_entry *grown = realloc(*out, cap * sizeof(**out));
            if (!grown) {
                free(rec.msg);
                return -ENOMEM;
            }
            *out = grown;
        }
        (*out)[(*n)++] = rec;
    }
    return r < 0 ? r : 0;
}

int journal_read_vgpu(
    const struct hostfs *fs, unsigned long long since_usec, size_t max, struct journal_entry **out,
    size_t *n, bool *capped, struct pvh_err *e
) {
    sd_journal *j = NULL;
    int dirfd = -1, r;
    *out = NULL;
    *n = 0;
    *capped = false;
    if (fs->confined) {
        dirfd = hostfs_dir_open(fs, JOURNAL_DIR);
        r = dirfd < 0 ? dirfd : sd_journal_open_directory_fd(&j, dirfd, 0);
    } else {
        r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
    }
    if (r < 0) {
        if (dirfd >= 0) {
            hostfs_dir_close(dirfd);
        }
        return err_set(
            e, r == -ENOTDIR ? -ENOENT : r, "cannot read the journal%s%s: %s",
            fs->confined ? " in " : "", fs->confined ? JOURNAL_DIR : "", strerror(-r)
        );
    }
    r = journal_collect(j, since_usec, max, out, n, capped);
    sd_journal_close(j);
    if (dirfd >= 0) {
        hostfs_dir_close(dirfd);
    }
    if (r < 0) {
        journal_entries_free(*out, *n);
        *out = NULL;
        *n = 0;
        return err_set(e, r, "cannot read the journal: %s", strerror(-r));
    }
    return 0;
}

void journal_entries_free(struct journal_entry *entries, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(entries[i].msg);
    }
    free(entries);
}
