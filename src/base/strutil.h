/* Small string and time helpers shared by every layer (no I/O). */
#ifndef PVH_STRUTIL_H
#define PVH_STRUTIL_H

#include <stdbool.h>
#include <stddef.h>

/* snprintf into buf; -ENAMETOOLONG when it does not fit (never a cut value). */
int str_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A message into buf: when it does not fit, it ends in "..." so the cut shows. */
void str_msg(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Append to a NUL-terminated buf; what does not fit is dropped (for messages only). */
void str_append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* s quoted for a POSIX shell ('...' with ' as '\''); malloc'ed. */
char *str_shell_quote(const char *s);
/* Bytes safe for a terminal, the task log and syslog: C0 control bytes (but '\n' when
 * keep_newline), DEL, C1 and invalid UTF-8 become \xHH. malloc'ed. */
char *str_escape_ctl(const char *s, size_t len, bool keep_newline);
/* Does s contain a byte str_escape_ctl() would escape (other than '\n' with keep_newline)? */
bool str_has_ctl(const char *s, bool keep_newline);
/* Is s (len bytes) well-formed UTF-8? Else *bad is the offset of the first byte that is not. */
bool str_utf8_valid(const char *s, size_t len, size_t *bad);

/* Levenshtein distance of a and b, ASCII case ignored (for "did you mean"); SIZE_MAX when one
 * is longer than 255 bytes. */
size_t str_edit_distance(const char *a, const char *b);

/* The line at *pos, without its '\n', as [*line, *line + *len); *pos moves past it. false at
 * the end of the text. */
bool str_next_line(const char **pos, const char **line, size_t *len);

/* Milliseconds on the monotonic clock. */
long mono_ms(void);
void sleep_ms(long ms);

#endif
