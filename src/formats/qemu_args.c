#include "qemu_args.h"

#include "cleanup.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A word scanner over args. The unquoted word goes to a buffer as long as args itself, so no
 * word is ever cut short. */
struct words {
    const char *args;
    const char *p;
    char *word;
    const char *start; /* raw span of the last word: [start, p) */
};

static int words_init(struct words *w, const char *args) {
    w->args = w->p = args;
    w->start = NULL;
    w->word = malloc(strlen(args) + 1);
    return w->word ? 0 : -ENOMEM;
}

static void words_free(struct words *w) {
    free(w->word);
    w->word = NULL;
}

/* The next shell-like word (Text::ParseWords::shellwords, as qemu-server splits args). */
static bool next_word(struct words *w) {
    const char *p = w->p;
    while (*p && isspace((unsigned char)*p)) {
        p++;
    }
    if (!*p) {
        w->p = p;
        return false;
    }
    w->start = p;
    size_t n = 0;
    char quote = 0;
    while (*p && (quote || !isspace((unsigned char)*p))) {
        char ch = *p++;
        if (quote) {
            if (ch == quote) {
                quote = 0;
                continue;
            }
            if (ch == '\\' && quote == '"' && *p) {
                ch = *p++;
            }
        } else if (ch == '\'' || ch == '"') {
            quote = ch;
            continue;
        } else if (ch == '\\' && *p) {
            ch = *p++;
        }
        w->word[n++] = ch;
    }
    w->word[n] = '\0';
    w->p = p;
    return true;
}

bool args_splittable(const char *args) {
    char quote = 0;
    for (const char *p = args; *p; p++) {
        if (quote) {
            if (*p == quote) {
                quote = 0;
            } else if (*p == '\\' && quote == '"' && p[1]) {
                p++;
            }
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '\\') {
            if (!p[1]) {
                return false; /* a dangling backslash would escape whatever is appended */
            }
            p++;
        }
    }
    return quote == 0;
}

/* Where the pair "opt value" starts and ends in args; false when absent. */
static int find_pair(
    const char *args, const char *opt, const char *value, const char **from, const char **to
) {
    struct words a, b;
    if (words_init(&a, args) < 0 || words_init(&b, args) < 0) {
        words_free(&a);
        return -ENOMEM;
    }
    int found = 0;
    while (!found && next_word(&a)) {
        if (strcmp(a.word, opt) != 0) {
            continue;
        }
        b.p = a.p;
        if (next_word(&b) && !strcmp(b.word, value)) {
            *from = a.start;
            *to = b.p;
            found = 1;
        }
    }
    words_free(&a);
    words_free(&b);
    return found;
}

bool args_has_pair(const char *args, const char *opt, const char *value) {
    const char *from, *to;
    return args && find_pair(args, opt, value, &from, &to) == 1;
}

int args_remove_pair(
    const char *args, const char *opt, const char *value, char **out, bool *found
) {
    const char *from, *to;
    *found = false;
    int r = find_pair(args, opt, value, &from, &to);
    if (r < 0) {
        return r;
    }
    if (r == 0) {
        return (*out = strdup(args)) ? 0 : -ENOMEM;
    }
    /* drop the blank run before the pair too, or after it when the pair leads */
    while (from > args && isspace((unsigned char)from[-1])) {
        from--;
    }
    if (from == args) {
        while (*to && isspace((unsigned char)*to)) {
            to++;
        }
    }
    size_t head = (size_t)(from - args), tail = strlen(to);
    if (!(*out = malloc(head + tail + 1))) {
        return -ENOMEM;
    }
    memcpy(*out, args, head);
    memcpy(*out + head, to, tail + 1);
    *found = true;
    return 0;
}

/* args without trailing blanks, but keeping a blank that a backslash escapes ("\ " is a word):
 * the length to keep. */
static size_t trimmed_len(const char *args) {
    size_t l = strlen(args);
    while (l && isspace((unsigned char)args[l - 1])) {
        l--;
    }
    if (l < strlen(args) && l && args[l - 1] == '\\') {
        l++;
    }
    return l;
}

int args_append_pair(const char *args, const char *opt, const char *value, char **out) {
    *out = NULL;
    if (!args) {
        args = "";
    }
    if (!args_splittable(args)) {
        return -EINVAL; /* whatever we append would end up inside the open quote */
    }
    size_t l = trimmed_len(args);
    size_t need = l + strlen(opt) + strlen(value) + 3;
    if (!(*out = malloc(need))) {
        return -ENOMEM;
    }
    snprintf(*out, need, "%.*s%s%s %s", (int)l, args, l ? " " : "", opt, value);
    return 0;
}

/* The last -uuid/--uuid (QEMU uses it): where its option word ends, its value word's raw span
 * and unquoted copy (value NULL when it has none). */
static int
last_uuid(const char *args, const char **optend, const char **vs, const char **ve, char **value) {
    struct words w;
    if (words_init(&w, args) < 0) {
        return -ENOMEM;
    }
    int r = 0;
    while (r == 0 && next_word(&w)) {
        if (strcmp(w.word, "-uuid") && strcmp(w.word, "--uuid")) {
            continue;
        }
        *optend = w.p;
        *vs = *ve = NULL;
        free(*value);
        *value = NULL;
        if (next_word(&w)) {
            *vs = w.start;
            *ve = w.p;
            r = (*value = strdup(w.word)) ? 0 : -ENOMEM;
        }
    }
    words_free(&w);
    return r;
}

int args_uuid(const char *args, char **out) {
    const char *optend = NULL, *vs = NULL, *ve = NULL;
    *out = NULL;
    if (!args || !args_splittable(args)) {
        return args ? -EINVAL : -ENOENT;
    }
    int r = last_uuid(args, &optend, &vs, &ve, out);
    return r < 0 ? r : *out ? 0 : -ENOENT;
}

int args_with_uuid(const char *args, const char *uuid, char **out, bool *changed) {
    *out = NULL;
    *changed = true;
    if (!args) {
        args = "";
    }
    if (!args_splittable(args)) {
        return -EINVAL;
    }
    const char *optend = NULL, *vs = NULL, *ve = NULL;
    _cleanup_free_ char *cur = NULL;
    if (last_uuid(args, &optend, &vs, &ve, &cur) < 0) {
        return -ENOMEM;
    }
    bool same = cur && !strcasecmp(cur, uuid);
    size_t need = strlen(args) + strlen(uuid) + 16;
    char *res = malloc(need);
    if (!res) {
        return -ENOMEM;
    }
    if (vs && same) {
        snprintf(res, need, "%s", args);
        *changed = false;
    } else if (vs) {
        snprintf(res, need, "%.*s%s%s", (int)(vs - args), args, uuid, ve);
    } else if (optend) {
        snprintf(res, need, "%.*s %s%s", (int)(optend - args), args, uuid, optend);
    } else {
        free(res);
        return args_append_pair(args, "-uuid", uuid, out);
    }
    *out = res;
    return 0;
}
