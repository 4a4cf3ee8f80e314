/*
 * hook: the hookscript phases as orchestration of the lower layers. pre-start executes
 * plan_pre_start()'s decision under the host-wide lock. Only hook and cli print; everything
 * below returns errors.
 */
#ifndef PVH_HOOK_H
#define PVH_HOOK_H

#include "plan.h"

#include <stdbool.h>

/* Run a hookscript phase; returns the process exit status. */
int hook_run(const struct hook_env *env, unsigned long vmid, const char *phase);

#endif
