/*
 * readiness: is this host ready to give VMs vGPUs? What `doctor` reports, and what a pre-start
 * refusal names when a GPU offers no vGPU type. Read-only: it never changes the host.
 *
 * Per NVIDIA GPU (physical function, bound to the nvidia driver): SR-IOV VFs disabled, the
 * nvidia_vgpu_vfio module not loaded or not built for the running kernel, no vGPU type offered.
 * Host-wide: IOMMU off, nvidia-vgpu-mgr not running, qemu-server too old for NVIDIA's vendor
 * interface, settings that cannot be read or parsed.
 */
#ifndef PVH_READINESS_H
#define PVH_READINESS_H

#include "config.h"
#include "hook_env.h"
#include "log.h"

#include <stdbool.h>
#include <stddef.h>

struct readiness_problem {
    char check[32];   /* a stable name: "sriov-off", "vfio-module-missing", ... */
    char subject[64]; /* the GPU, or "host", "settings" */
    char what[512];
    char fix[512];
};

struct readiness {
    char node[64];
    size_t ngpus;      /* NVIDIA GPUs bound to nvidia */
    size_t ntypes;     /* vGPU types they offer (mdev types and vendor-interface types) */
    bool iommu;        /* /sys/kernel/iommu_groups has groups */
    bool vgpu_mgr;     /* a process named nvidia-vgpu-mgr runs */
    char kernel[128];  /* the running kernel's release, "" when unknown */
    bool settings_bad; /* our settings file cannot be used: settings says why */
    struct config_error settings;
    struct readiness_problem *problems;
    size_t nproblems;
};

/* Every check; problems in r (0 problems: ready). -errno only when memory runs out. */
int readiness_check(const struct hook_env *env, struct readiness *r);
void readiness_free(struct readiness *r);

/* Why an NVIDIA GPU (or VF) offers no vGPU type, and the fix: 0 with p filled, -ENOENT when
 * nothing about it explains that (not an NVIDIA GPU, or it does offer types). */
int readiness_explain_gpu(const struct hostfs *fs, const char *bdf, struct readiness_problem *p);
/* Is an NVIDIA GPU of this node not ready for vGPUs (VFs off, the vfio module missing, no type
 * offered)? Then *why (doctor's problem and fix for the first such GPU) is why a type is not
 * offered. Only the GPUs are read, not the rest of doctor's checks. */
bool readiness_gpus_not_ready(const struct hostfs *fs, struct readiness_problem *why);

/* Is vgpu_unlock-rs set up on this host: a drop-in of nvidia-vgpu-mgr.service preloads a
 * libvgpu_unlock_rs.so that exists? 1 yes, 0 no (*why says what is missing), -ENOMEM. *toml:
 * the overrides file it reads (VGPU_UNLOCK_PROFILE_OVERRIDE_CONFIG_PATH in a drop-in, else
 * /etc/vgpu_unlock/profile_override.toml). Both malloc'ed, whole. */
int readiness_vgpu_unlock(const struct hostfs *fs, char **why, char **toml);

#endif
