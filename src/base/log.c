#include "log.h"

#include "strutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

static bool use_syslog;
static char log_context[64];

int err_set(struct pvh_err *e, int rc, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
        e->code = rc;
        e->hint[0] = '\0';
        e->reason = NULL;
    }
    return rc;
}

int err_prefix(struct pvh_err *e, const char *fmt, ...) {
    if (!e) {
        return 0;
    }
    char head[512], old[sizeof(e->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof(old));
    if (snprintf(e->msg, sizeof(e->msg), "%s%s", head, old) >= (int)sizeof(e->msg)) {
        /* a message too long for the buffer ends visibly cut, never silently */
        memcpy(e->msg + sizeof(e->msg) - 4, "...", 4);
    }
    return e->code;
}

void err_hint(struct pvh_err *e, const char *fmt, ...) {
    if (!e) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->hint, sizeof(e->hint), fmt, ap);
    va_end(ap);
}

void err_reason(struct pvh_err *e, const char *reason) {
    if (e) {
        e->reason = reason;
    }
}

static void warn_vadd(struct pvh_warnings *w, const char *code, const char *fmt, va_list ap) {
    char *buf = NULL;
    if (vasprintf(&buf, fmt, ap) < 0) {
        return; /* a lost warning is better than a failed start */
    }
    char **items = realloc(w->items, (w->n + 1) * sizeof(*items));
    if (items) {
        w->items = items;
    }
    const char **codes = items ? realloc(w->codes, (w->n + 1) * sizeof(*codes)) : NULL;
    if (!codes) {
        free(buf);
        return;
    }
    w->codes = codes;
    w->items[w->n] = buf;
    w->codes[w->n++] = code;
}

void warn_add(struct pvh_warnings *w, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    warn_vadd(w, NULL, fmt, ap);
    va_end(ap);
}

void warn_add_code(struct pvh_warnings *w, const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    warn_vadd(w, code, fmt, ap);
    va_end(ap);
}

const char *warn_code(const struct pvh_warnings *w, size_t i) {
    return w->codes && w->codes[i] ? w->codes[i] : "warning";
}

void warn_free(struct pvh_warnings *w) {
    for (size_t i = 0; i < w->n; i++) {
        free(w->items[i]);
    }
    free(w->items);
    free(w->codes);
    w->items = NULL;
    w->codes = NULL;
    w->n = 0;
}

void log_use_syslog(bool on) {
    if (on && !use_syslog) {
        openlog(PVH_PROG, LOG_PID, LOG_DAEMON);
    } else if (!on && use_syslog) {
        closelog();
    }
    use_syslog = on;
}

void log_set_context(const char *ctx) {
    snprintf(log_context, sizeof(log_context), "%s", ctx ? ctx : "");
}

/* One output line per text line, each with the prefix, so a task log stays readable. Bytes
 * from VM configs and sysfs reach these lines: control bytes are escaped, so none of them can
 * move a terminal's cursor, recolour a task log or forge a line. */
static void log_line(enum log_level lvl, const char *raw) {
    static const char *const prefix[] = {"error: ", "warning: ", ""};
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO};
    const char *kind = prefix[lvl];
    char *escaped = str_escape_ctl(raw, strlen(raw), true);
    const char *text = escaped ? escaped : "(out of memory)";
    const char *p = text, *l = text;
    size_t n = 0;
    (void)str_next_line(&p, &l, &n); /* an empty message is still one line */
    do {
        int len = (int)n;
        if (log_context[0]) {
            fprintf(stderr, "%s: %s: %s%.*s\n", PVH_PROG, log_context, kind, len, l);
        } else {
            fprintf(stderr, "%s: %s%.*s\n", PVH_PROG, kind, len, l);
        }
        if (use_syslog) {
            if (log_context[0]) {
                syslog(prio[lvl], "%s: %s%.*s", log_context, kind, len, l);
            } else {
                syslog(prio[lvl], "%s%.*s", kind, len, l);
            }
        }
        kind = "";
    } while (str_next_line(&p, &l, &n));
    free(escaped);
}

void log_msg(enum log_level lvl, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    log_line(lvl, buf);
}

void log_err(const struct pvh_err *e) {
    log_line(LOG_LVL_ERROR, e->msg[0] ? e->msg : "unknown error");
    if (e->hint[0]) {
        log_msg(LOG_LVL_INFO, "what to do: %s", e->hint);
    }
}

void log_warnings(const struct pvh_warnings *w) {
    for (size_t i = 0; i < w->n; i++) {
        log_msg(LOG_LVL_WARN, "%s", w->items[i]);
    }
}
