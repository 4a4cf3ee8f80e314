/* Debian version comparison (dpkg's algorithm) and the installed-version lookup. */
#ifndef PVH_DEBVER_H
#define PVH_DEBVER_H

#include <stdbool.h>
#include <stddef.h>

/* <0, 0, >0 like strcmp; -2/2 never returned. Invalid strings compare as dpkg would parse them. */
int debver_cmp(const char *a, const char *b);

/* Find the installed version of pkg in deb822 text (/var/lib/dpkg/status or an updates/ entry).
 * Returns 0 and fills ver; -ENOENT when the text has no stanza for pkg; -ESRCH when it has one
 * but pkg is not installed (unpacked, half-configured, config-files...). */
int debver_installed(const char *status_text, const char *pkg, char *ver, size_t size);

struct hostfs;
/* A package's installed version on the host: dpkg's status, then the entries dpkg journaled in
 * updates/ but not merged yet (they are newer). */
int debver_installed_on(const struct hostfs *fs, const char *pkg, char *ver, size_t size);

#endif
