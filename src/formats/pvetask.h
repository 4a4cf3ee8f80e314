/*
 * Proxmox task logs (/var/log/pve/tasks): UPIDs, the index and active lists, and a task's own
 * log. Text in, records out: no I/O. Formats as pve-common's RESTEnvironment writes them:
 *   UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:   (hex fields, upper case)
 *   index:  "UPID ENDHEX STATUS"          active: "UPID SAVED [ENDHEX STATUS]"
 *   log:    /var/log/pve/tasks/<last hex digit of starttime>/<UPID>, last line "TASK OK",
 *           "TASK WARNINGS: n" or "TASK ERROR: <text>"
 */
#ifndef PVH_PVETASK_H
#define PVH_PVETASK_H

#include <stdbool.h>
#include <stddef.h>

struct pve_upid {
    char node[64];
    unsigned long pid, pstart;
    long long starttime; /* seconds since the epoch */
    char type[64];
    char id[64];
    char subdir; /* the last hex digit of starttime, as written: the log's directory */
};

/* s (len bytes) is a UPID as Proxmox writes one; -EINVAL otherwise (also for a '/' in a
 * field: the UPID is a file name). */
int upid_parse(const char *s, size_t len, struct pve_upid *u);

/* One finished or running task of the index or active list. */
struct pve_task {
    char *upid; /* malloc'ed, whole */
    struct pve_upid u;
    bool ended;
    long long endtime;
    char *status; /* malloc'ed: "OK", "WARNINGS: n" or the error text; NULL while running */
};
/* Parse one line (without its '\n') of the index (active false) or active list (true):
 * 0 and t filled, -EINVAL for a line that is not one, -ENOMEM. */
int pve_task_parse(const char *line, size_t len, bool active, struct pve_task *t);
void pve_task_free(struct pve_task *t);

/* The task log file of upid: "/var/log/pve/tasks/X/<upid>"; -ENAMETOOLONG when it does not fit. */
int pve_task_log_path(const char *upid, const struct pve_upid *u, char *buf, size_t size);

/* A task log's (NUL-terminated) final status line ("TASK OK", "TASK ERROR: x", "TASK WARNINGS:
 * n"): the status after "TASK " (malloc'ed), or NULL when the log has none (still running). */
char *pve_task_log_status(const char *text);
/* Is a task status a success ("OK" or "WARNINGS: n")? */
bool pve_task_status_ok(const char *status);

#endif
