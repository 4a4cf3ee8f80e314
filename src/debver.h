/* Debian version comparison (dpkg's algorithm) and the installed-version lookup. */
#ifndef PVH_DEBVER_H
#define PVH_DEBVER_H

#include <stddef.h>

/* <0, 0, >0 like strcmp; -2/2 never returned. Invalid strings compare as dpkg would parse them. */
int debver_cmp(const char *a, const char *b);

/* Find the installed version of pkg in the text of /var/lib/dpkg/status.
 * Returns 0 and fills ver, -ENOENT when not installed (or only half-installed). */
int debver_installed(const char *status_text, const char *pkg, char *ver, size_t size);

#endif
