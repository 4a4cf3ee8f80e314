/*
 * The VM config's `args` value: extra QEMU arguments that qemu-server splits into words like a
 * shell does (Text::ParseWords::shellwords). We only ever add or remove whole word pairs
 * ("-uuid <uuid>", "-device <spec>") and leave every other byte as it was.
 */
#ifndef PVH_QEMU_ARGS_H
#define PVH_QEMU_ARGS_H

#include <stdbool.h>

/* Can args be split like a shell splits words (balanced quotes, no dangling backslash)?
 * Proxmox splits args with shellwords, which yields nothing at all for an open quote. */
bool args_splittable(const char *args);
/* The args value with "-uuid <uuid>" present: the last -uuid's value replaced, or appended.
 * *changed tells whether anything had to change. out is malloc'ed. -EINVAL when args cannot be
 * split (an edit could not be right). */
int args_with_uuid(const char *args, const char *uuid, char **out, bool *changed);
/* The value of the last -uuid (or --uuid) in args, the one QEMU uses (malloc'ed): 0; -ENOENT
 * when there is none; -EINVAL when args cannot be split (Proxmox passes none of it then). */
int args_uuid(const char *args, char **out);
/* args with "opt value" appended as two words (after one blank). -EINVAL as above. */
int args_append_pair(const char *args, const char *opt, const char *value, char **out);
/* args without the first "opt value" word pair (and the blank before it); *found tells whether
 * it was there. out is malloc'ed. */
int args_remove_pair(const char *args, const char *opt, const char *value, char **out, bool *found);
/* Does args hold the word pair "opt value"? */
bool args_has_pair(const char *args, const char *opt, const char *value);

#endif
