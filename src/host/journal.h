/*
 * journal: the kernel's, nvidia-vgpu-mgr's and nvidia-vgpud's journal entries, read with
 * libsystemd's sd-journal (the only code that links it). Without a root: this machine's journal;
 * under --root: journald's files below <root>/var/log/journal (opened inside the root, like
 * every hostfs path), so a captured host can be diagnosed elsewhere.
 */
#ifndef PVH_JOURNAL_H
#define PVH_JOURNAL_H

#include "hostfs.h"
#include "log.h"

#include <stdbool.h>
#include <stddef.h>

enum journal_source { JOURNAL_KERNEL, JOURNAL_VGPU_MGR, JOURNAL_VGPUD };

struct journal_entry {
    enum journal_source src;
    unsigned long long usec; /* wall clock, microseconds since the epoch */
    long pid;                /* _PID, 0 when none (the kernel) */
    char *msg;               /* MESSAGE, whole (a NUL byte in it shows as '?') */
};

/* The entries of those three sources logged at or after since_usec, oldest first, at most max
 * (*capped when more were there). -ENOENT (e says so) when there is no journal to read. */
int journal_read_vgpu(
    const struct hostfs *fs, unsigned long long since_usec, size_t max, struct journal_entry **out,
    size_t *n, bool *capped, struct pvh_err *e
);
void journal_entries_free(struct journal_entry *entries, size_t n);

#endif
