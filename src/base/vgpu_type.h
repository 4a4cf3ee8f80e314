/*
 * NVIDIA vGPU type names ("GRID P40-2Q", "NVIDIA A100-1-5C") and mdev type descriptions
 * ("num_heads=4, frl_config=60, framebuffer=2048M, max_resolution=5120x2880, max_instance=12").
 * Grammar from NVIDIA's vgpu-device-manager: the type is the last space-separated token.
 */
#ifndef PVH_VGPU_TYPE_H
#define PVH_VGPU_TYPE_H

#include <stdbool.h>

struct vgpu_type_info {
    char short_name[64]; /* last token of the name: "P40-2Q" */
    char gpu[48];        /* "P40" */
    char series;         /* 'A', 'B', 'C', 'Q'; 0 when the name does not tell */
    bool named;          /* the name follows NVIDIA's grammar */
    bool mig;            /* MIG-backed ("A100-1-5C"): exempt from time-sliced rules */
    unsigned mig_slices;
    unsigned fb_mib;       /* framebuffer: description when present, else from the name */
    unsigned max_instance; /* 0 when unknown */
    unsigned num_heads;
    unsigned frl_config;
    char max_resolution[24];
};

/* Parse a type name; -EINVAL when it is not NVIDIA's grammar (short_name is still set). */
int vgpu_type_parse_name(const char *name, struct vgpu_type_info *out);
/* Parse a description key=value list; unknown keys are ignored, -EINVAL when malformed. */
int vgpu_type_parse_description(const char *desc, struct vgpu_type_info *out);
/* Both at once, tolerant: what cannot be parsed stays 0. */
void vgpu_type_describe(const char *name, const char *desc, struct vgpu_type_info *out);
/* Is q something a TYPE can be (an id or a name): letters, digits, ' ', '-', '_', '+'; no path
 * or shell characters, no control bytes, at most 127 bytes. */
bool vgpu_type_query_valid(const char *q);
/* Does a user's TYPE (sysfs id, full name or short name; names case-insensitive) mean this type? */
bool vgpu_type_matches(const char *query, const char *type_id, const char *name);

#endif
