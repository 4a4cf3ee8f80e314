/* Scope-bound cleanup helpers (libnvme / kmod style). Needs gnu11. */
#ifndef PVH_CLEANUP_H
#define PVH_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void freep(void *p) {
    free(*(void **)p);
}
static inline void fclosep(FILE **f) {
    if (*f) {
        fclose(*f);
    }
}
static inline void closedirp(DIR **d) {
    if (*d) {
        closedir(*d);
    }
}
static inline void closep(int *fd) {
    if (*fd >= 0) {
        close(*fd);
    }
}

#define _cleanup_(f) __attribute__((cleanup(f)))

/* A cleanup function for a type that owns memory and has a free function taking a pointer to
 * it (libnvme's idea): DEFINE_CLEANUP_FUNC(pveconf_freep, struct pveconf, pveconf_free) lets
 * `_cleanup_(pveconf_freep) struct pveconf c = {0};` free c on every return. The value must
 * be zeroed before its first possible return. */
#define DEFINE_CLEANUP_FUNC(name, type, free_fn)                                                   \
    static inline void name(type *p) {                                                             \
        free_fn(p);                                                                                \
    }
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)
#define _cleanup_close_ _cleanup_(closep)

/* Hand ownership out of a _cleanup_ variable. */
#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) take_ptr_tmp_ = (p);                                                         \
        (p) = NULL;                                                                                \
        take_ptr_tmp_;                                                                             \
    })
#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int take_fd_tmp_ = (fd);                                                                   \
        (fd) = -1;                                                                                 \
        take_fd_tmp_;                                                                              \
    })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Grow a malloc'ed array by extra elements: 0, or -ENOMEM with the array untouched. */
#define GROW(arr, n, extra)                                                                        \
    ({                                                                                             \
        __typeof__(arr) grow_tmp_ = realloc((arr), ((n) + (extra)) * sizeof(*(arr)));              \
        if (grow_tmp_) {                                                                           \
            (arr) = grow_tmp_;                                                                     \
        }                                                                                          \
        grow_tmp_ ? 0 : -ENOMEM;                                                                   \
    })

#endif
