#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int str_fmt(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) {
        return -ENAMETOOLONG;
    }
    return 0;
}

void str_msg(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= size && size >= 4) {
        memcpy(buf + size - 4, "...", 4);
    }
}

void str_append(char *buf, size_t size, const char *fmt, ...) {
    size_t len = strnlen(buf, size);
    if (len + 1 < size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf + len, size - len, fmt, ap);
        va_end(ap);
    }
}

char *str_shell_quote(const char *s) {
    size_t n = 3;
    for (const char *p = s; *p; p++) {
        n += *p == '\'' ? 4 : 1;
    }
    char *out = malloc(n);
    if (!out) {
        return NULL;
    }
    char *o = out;
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

/* Length of a well-formed UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
    size_t len;
    uint32_t cp;
    if (s[0] < 0x80) {
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

/* The same for a character that is no C1 control (U+0080..U+009F), else 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    size_t len = utf8_seq_len(s, n);
    return len == 2 && s[0] == 0xc2 && s[1] < 0xa0 ? 0 : len;
}

bool str_utf8_valid(const char *s, size_t len, size_t *bad) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0, l; i < len; i += l) {
        if (!(l = utf8_seq_len(p + i, len - i))) {
            *bad = i;
            return false;
        }
    }
    return true;
}

static bool plain_byte(unsigned char c, bool keep_newline) {
    return (c >= 0x20 && c != 0x7f) || c == '\t' || (keep_newline && c == '\n');
}

char *str_escape_ctl(const char *s, size_t len, bool keep_newline) {
    char *out = malloc(len * 4 + 1);
    if (!out) {
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t l =
            p[i] < 0x80 ? (plain_byte(p[i], keep_newline) ? 1 : 0) : utf8_len(p + i, len - i);
        if (l == 0) {
            o += (size_t)sprintf(out + o, "\\x%02x", p[i]);
            i++;
            continue;
        }
        memcpy(out + o, p + i, l);
        o += l;
        i += l;
    }
    out[o] = '\0';
    return out;
}

bool str_has_ctl(const char *s, bool keep_newline) {
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t l =
            p[i] < 0x80 ? (plain_byte(p[i], keep_newline) ? 1 : 0) : utf8_len(p + i, len - i);
        if (l == 0) {
            return true;
        }
        i += l;
    }
    return false;
}

bool str_next_line(const char **pos, const char **line, size_t *len) {
    if (!*pos || !**pos) {
        return false;
    }
    *line = *pos;
    *len = strcspn(*pos, "\n");
    *pos += *len;
    *pos += **pos == '\n';
    return true;
}

long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

size_t str_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b), row[256];
    if (la > 255 || lb > 255) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0]; /* row[i-1][j-1] */
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t subst =
                diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = subst < best ? subst : best;
            diag = up;
        }
    }
    return row[lb];
}
