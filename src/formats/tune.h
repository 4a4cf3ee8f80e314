/*
 * tune: per-VM vGPU settings, checked as the software that reads them will: NVIDIA's plugin
 * parameters (nvidia/vgpu_params, "k=v,k=v") and vgpu_unlock-rs's overrides (the keys, value
 * types and units of its VgpuProfileOverride, and the driver's string fields). Pure: no I/O.
 */
#ifndef PVH_TUNE_H
#define PVH_TUNE_H

#include "cleanup.h"
#include "log.h"

#include <stdbool.h>
#include <stddef.h>

/* One setting as stored and rendered: for unlock, is_string tells a TOML string from an
 * integer (value holds the digits then). */
struct tune_kv {
    char *key;
    char *value;
    bool is_string;
};

struct vm_tuning {
    struct tune_kv *params;
    size_t nparams;
    struct tune_kv *unlock;
    size_t nunlock;
};
void tuning_free(struct vm_tuning *t);
DEFINE_CLEANUP_FUNC(tuning_freep, struct vm_tuning, tuning_free)
bool tuning_empty(const struct vm_tuning *t);

/* The parameters NVIDIA documents for vgpu_params on KVM (others reach the driver, with a
 * warning: it is the authority). */
bool tune_param_known(const char *key);
/* "key=value" for --param: key [a-z0-9_]+, value without ',', '=' or blanks. */
int tune_param_check(const char *key, const char *value, struct pvh_err *e);
/* The value a documented key takes: 0 or 1 (the plugin reads integers and refuses the vGPU
 * otherwise). What tune stores; the settings loader keeps only the syntax check, so that a
 * value stored before stays readable and is refused by the driver, not by every command. */
int tune_param_value_check(const char *key, const char *value, struct pvh_err *e);

enum unlock_kind { UNLOCK_UINT32, UNLOCK_UINT64, UNLOCK_BOOL01, UNLOCK_SIZE, UNLOCK_STRING };
struct unlock_key {
    const char *key;
    enum unlock_kind kind;
    size_t max_len; /* UNLOCK_STRING: bytes the driver field holds, without its NUL */
    const char *what;
};
/* vgpu_unlock-rs's key, or NULL (it ignores unknown keys silently; we refuse them). */
const struct unlock_key *unlock_key_find(const char *key);
/* A value for key as typed on the command line (integers, 0x hex, or for sizes a number with
 * kB/KB/MB/GB/TB/KiB/MiB/GiB/TiB; strings as given). *is_string: render it quoted. The
 * driver's string fields are 32 bytes before R580 (name, class): driver_major picks. */
int unlock_value_check(
    const char *key, const char *value, unsigned driver_major, bool *is_string, struct pvh_err *e
);
/* A size as vgpu_unlock-rs reads it ("896MiB" = 939524096): -EINVAL when it would fail. */
int unlock_size_parse(const char *s, unsigned long long *bytes);

/* "k=v,k=v" for vgpu_params (malloc'ed). */
char *tune_params_string(const struct vm_tuning *t);
/* "k = 0, k2 = \"896MiB\"": the unlock settings as the TOML table has them (malloc'ed). */
char *tune_unlock_string(const struct vm_tuning *t);
/* The [vm.<vmid>] table we keep in profile_override.toml, with its marker comment. */
#define TUNE_TOML_MARKER "# managed by pve-vgpu-hook"
char *tune_unlock_table(const struct vm_tuning *t, unsigned long vmid);

/* profile_override.toml, checked as vgpu_unlock-rs deserialises it: every table under
 * [profile], [mdev] and [vm] holds only known value types (a wrong one makes it fail every
 * vGPU: an error with line and column); unknown keys are warnings (it ignores them). Our own
 * [vm.<own_vmid>] (with the marker; text is the file) is skipped: it is about to be rewritten
 * (0: none skipped). */
struct toml_doc;
int unlock_file_check(
    const struct toml_doc *d, const char *text, unsigned long own_vmid, unsigned driver_major,
    struct pvh_warnings *w, struct pvh_err *e
);
/* The file's text with our [vm.<vmid>] table replaced by table (NULL: removed; appended
 * after a blank line when new); every other byte kept. -EEXIST (e says how to hand it over)
 * when table must go where [vm.<vmid>] is the admin's (no marker comment); with no table of
 * ours to put, the admin's stays as it is. *out malloc'ed. */
int unlock_file_put(
    const char *text, const struct toml_doc *d, unsigned long vmid, const char *table, char **out,
    struct pvh_err *e
);

#endif
