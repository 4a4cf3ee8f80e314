/*
 * Error context and logging.
 *
 * Lower layers return 0 or -errno and describe the failure in a struct pvh_err:
 * `msg` says what is wrong and why, `hint` what the administrator can do.
 * Only cli and hook decide what reaches the user; they print through log_*(),
 * which writes one line to stderr and, when enabled, the same line to syslog.
 */
#ifndef PVH_LOG_H
#define PVH_LOG_H

#include <stdbool.h>
#include <stddef.h>

#define PVH_PROG "pve-vgpu-hook"

struct pvh_err {
    int code; /* negative errno, 0 when unset */
    char msg[1536];
    char hint[768];
    const char *reason; /* a stable lowercase code for programs (JSON), or NULL; a literal */
};

/* Fill e (if non-NULL) and return rc (a negative errno), so callers can `return err_set(...)`. */
int err_set(struct pvh_err *e, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Put context in front of the message already in e (keeps code and hint). Returns e->code. */
int err_prefix(struct pvh_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Add or replace the "what to do" part. */
void err_hint(struct pvh_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The refusal's stable code (a string literal); err_set clears it. */
void err_reason(struct pvh_err *e, const char *reason);

/* Warnings that lower layers collect instead of printing (e.g. a dangling sysfs link). */
struct pvh_warnings {
    char **items;
    const char **codes; /* per item: a stable lowercase code (a literal), or NULL */
    size_t n;
};
void warn_add(struct pvh_warnings *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A warning programs can tell apart: code is a string literal ("x-vga-console"). */
void warn_add_code(struct pvh_warnings *w, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The code of warning i, or "warning" for one added without a code. */
const char *warn_code(const struct pvh_warnings *w, size_t i);
void warn_free(struct pvh_warnings *w);

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO };

void log_use_syslog(bool on);
/* Context printed after the program name: "VM 100" gives "pve-vgpu-hook: VM 100: ...". */
void log_set_context(const char *ctx);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print collected warnings, one warning line each. */
void log_warnings(const struct pvh_warnings *w);
/* Print an error context: message, then "hint" on its own line when present. */
void log_err(const struct pvh_err *e);

#endif
