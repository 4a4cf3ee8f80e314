/*
 * rules: NVIDIA time-sliced allocation rules and placement, as pure functions over the
 * in-memory host model. No I/O.
 *
 * Policies (per physical GPU; SR-IOV VFs count toward their physical function):
 *   auto         the driver decides (available_instances): never stricter than the driver
 *   equal-size   all vGPUs have the same framebuffer; series differ only within a series group
 *   homogeneous  all vGPUs are the same type
 *   mixed-size   the framebuffers add up to at most the GPU's
 *   none         only the driver's available_instances decides
 * MIG-backed types are exempt. available_instances = 0 refuses under every policy.
 */
#ifndef PVH_RULES_H
#define PVH_RULES_H

#include "config.h"
#include "inventory.h"

#include <stdbool.h>
#include <stddef.h>

/* Does type `want` fit on gpu under the policy, given its resident mdevs?
 * ignore (may be NULL) marks mdevs to disregard, indexed like h->mdevs (e.g. leftovers about to
 * be reclaimed, or the VM's own device being replaced). On refusal `why` says why. */
bool rules_type_fits(
    const struct pvh_config *cfg, const struct host *h, size_t gpu, const struct inv_typedef *want,
    const bool *ignore, char *why, size_t whysize
);

/* A parent of gpu that offers a type matching `query` with an instance available and that fits
 * the policy; NO_INDEX when none. *type receives the parent's type. */
size_t rules_pick_parent(
    const struct pvh_config *cfg, const struct host *h, size_t gpu, const char *query,
    const bool *ignore, const struct inv_type **type
);

/* Text: what gpu hosts, e.g. "2 x GRID P40-2Q (2048 MiB) for VM 101, 102"; "nothing" if empty. */
void rules_describe_residents(
    const struct host *h, size_t gpu, const bool *ignore, char *buf, size_t size
);
/* Text: the short names of the types that still fit on gpu now, comma-separated. With parent a
 * VF (else NO_INDEX), what that VF can take: a VF holds one vGPU whatever its GPU's other VFs
 * could take. */
void rules_types_fitting(
    const struct pvh_config *cfg, const struct host *h, size_t gpu, size_t parent,
    const bool *ignore, char *buf, size_t size
);
/* How many more vGPUs of `want` gpu takes now: the driver's available_instances of its parents,
 * and on SR-IOV (where every free VF says 1) no more than the GPU has room for: its type's
 * max_instance and framebuffer less what it hosts. */
long rules_gpu_available(
    const struct host *h, size_t gpu, const struct inv_typedef *want, const bool *ignore
);
/* Text: the GPUs that could take `query` now: on SR-IOV the free VF that would, never the
 * physical function. */
void rules_other_gpus(
    const struct pvh_config *cfg, const struct host *h, const char *query, char *buf, size_t size
);

/* How a GPU behaves now, as its residents and the driver's offers show. */
enum gpu_mode {
    GPU_MODE_IDLE,       /* hosts no time-sliced vGPU */
    GPU_MODE_EQUAL_SIZE, /* hosts one size and offers no other */
    GPU_MODE_MIXED_SIZE, /* hosts several sizes, or offers another size while hosting one */
};
enum gpu_mode rules_gpu_mode(const struct host *h, size_t gpu, const bool *ignore);
/* The framebuffer of the time-sliced vGPUs gpu hosts (the first one's); 0 when none. */
unsigned rules_hosted_size(const struct host *h, size_t gpu, const bool *ignore);

/* Order candidate GPUs for a managed VM by the placement strategy; deterministic. */
void rules_order_candidates(
    const struct pvh_config *cfg, const struct host *h, size_t *gpus, size_t n,
    const struct inv_typedef *want
);

#endif
