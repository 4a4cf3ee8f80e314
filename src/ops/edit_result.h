/*
 * edit_result: what attach, detach, tune and setup did, or with --dry-run would do. Each
 * command fills one; the cli renders it as text or as JSON, so the two cannot disagree.
 */
#ifndef PVH_EDIT_RESULT_H
#define PVH_EDIT_RESULT_H

#include "log.h"
#include "tune.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

enum edit_action { EDIT_CREATE, EDIT_MODIFY, EDIT_REMOVE };

struct edit_change {
    char file[PATH_MAX]; /* the host path (relative to --root) */
    enum edit_action action;
};

#define EDIT_CHANGES_MAX 4 /* settings, VM config, resource mapping; setup: the snippet */

struct edit_result {
    /* input */
    bool dry_run; /* find what would change, write nothing (no lock taken either) */
    /* output */
    unsigned long vmid; /* 0: setup */
    const char *result; /* stable code: attached, detached, tuned, shown, installed, unchanged */
    bool pending;       /* a running VM: the change waits in [PENDING] for its next start */
    char message[3 * PATH_MAX]; /* the outcome in one sentence (two paths fit) */
    struct edit_change changes[EDIT_CHANGES_MAX];
    size_t nchanges;
    struct pvh_warnings details;  /* what was (would be) set, one line each */
    struct pvh_warnings warnings; /* what the administrator should know; never a refusal */
    bool has_tuning;              /* tune: the VM's tuning after it */
    struct vm_tuning tuning;
};

/* The change of file from old to data (NULL: absent), when they differ. */
void edit_result_change(
    struct edit_result *res, const char *file, const char *old, size_t old_len, const char *data,
    size_t len
);
/* A stable lowercase code of the action (create, modify, remove). */
const char *edit_action_code(enum edit_action a);
void edit_result_free(struct edit_result *res);

#endif
