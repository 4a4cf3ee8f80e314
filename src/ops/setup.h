/* setup: make the binary usable as a hookscript on a Proxmox storage (no maintainer script
 * writes into Proxmox-owned places; the administrator runs this once per node). */
#ifndef PVH_SETUP_H
#define PVH_SETUP_H

#include "edit_result.h"
#include "hook.h"

#define SNIPPET_NAME "pve-vgpu-hook"
/* What setup writes on shared storage (also shipped as hooks/snippet-wrapper). */
#define SNIPPET_WRAPPER                                                                            \
    "#!/bin/sh\n"                                                                                  \
    "# pve-vgpu-hook: hookscript wrapper for a snippets directory on shared storage (NFS, CIFS,\n" \
    "# CephFS), where a symlink to the binary may not work. Every node runs its own installed "    \
    "copy.\n"                                                                                      \
    "exec /usr/bin/pve-vgpu-hook \"$@\"\n"

/* The snippet on storage: a link to the installed binary (PVH_INSTALLED_BINARY, which must
 * exist), or on shared storage the wrapper that runs it. res: what was (would be) done. */
int setup_snippet(
    const struct hook_env *env, const char *storage, struct edit_result *res, struct pvh_err *e
);

#endif
