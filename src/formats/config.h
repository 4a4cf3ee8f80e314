/*
 * Our JSON settings (/etc/pve/vgpu-hook.json, cluster-wide through pmxcfs).
 * A missing file means defaults; invalid JSON or values are errors, never guessed around.
 */
#ifndef PVH_CONFIG_H
#define PVH_CONFIG_H

#include "hook_env.h"
#include "log.h"
#include "pveconf.h"
#include "tune.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "hostpaths.h"

struct json_object;

#define CONFIG_MAX_BYTES (1024 * 1024) /* pmxcfs' per-file limit */
#define NODE_NAME_MAX 64               /* a node name and its NUL (PVE: a DNS label, 63) */
#define VGPU_TYPE_MAX 128              /* a type as the user names it, and its NUL */

/* auto: the driver decides (never stricter than it); the others are the admin's own rule. */
enum pvh_policy {
    POLICY_AUTO,
    POLICY_EQUAL_SIZE,
    POLICY_HOMOGENEOUS,
    POLICY_MIXED_SIZE,
    POLICY_NONE,
};
enum pvh_placement { PLACEMENT_PACK, PLACEMENT_SPREAD };
enum pvh_uuid_args { UUID_ARGS_AUTO, UUID_ARGS_ALWAYS, UUID_ARGS_NEVER };
enum pvh_uuid_source { UUID_SOURCE_MDEV, UUID_SOURCE_SMBIOS };

/* Candidate GPUs for a managed VM; node "" applies to every node. */
struct vm_gpu_list {
    char node[NODE_NAME_MAX];
    char (*gpus)[16];
    size_t n;
};

struct vm_settings {
    unsigned long vmid;
    char type[VGPU_TYPE_MAX]; /* managed mode's type; "" when the VM only has tuning */
    unsigned index;
    struct vm_gpu_list *lists;
    size_t nlists;
    /* What attach changed in the VM config, so detach can undo exactly that. */
    bool attached;
    char *args_before;      /* the args value before attach; NULL when there was none */
    char *hookscript_added; /* the volid attach set as hookscript; NULL when it set none */
    /* NVIDIA's vendor interface: the resource mapping attach made for the VM (referenced by
     * hostpci<index>), the newlines it put before it, and whether it created pci.cfg. */
    char *mapping; /* NULL in mdev managed mode */
    unsigned mapping_sep_nl;
    bool mapping_file_created;
    bool live_migration;     /* attach --live-migration: the mapping is live-migration-capable */
    struct vm_tuning tuning; /* tune: params and unlock, for either mode */
    /* The VM the record was written for (attach, tune); empty in records older than that, which
     * are taken to match. */
    struct vm_identity identity;
};

#define SERIES_GROUPS_MAX 8
struct pvh_config {
    enum pvh_policy policy;
    char series_groups[SERIES_GROUPS_MAX][5]; /* e.g. "QC" */
    size_t nseries_groups;
    enum pvh_placement placement;
    enum pvh_uuid_args uuid_args;
    enum pvh_uuid_source uuid_source;
    int remove_wait_s;
    int lock_timeout_s; /* attach/detach: Proxmox's VM lock and pmxcfs' cluster lock */
    int hook_timeout_s; /* each chained hook in hooks.d */
    bool reclaim_stale;
    bool ha_rules; /* the publish timer runs ha-sync too */
    struct vm_settings *vms;
    size_t nvms;
};

/* Why a settings file cannot be used, as every command names it. */
struct config_error {
    const char
        *code; /* "settings-invalid" (JSON, a key twice, a bad value), "settings-unreadable" */
    char file[PATH_MAX]; /* as named: the default path (below --root) or --config's */
    int line, column;    /* 1-based; 0 when no position applies (the file could not be read) */
    char key[192];       /* the key of a bad or repeated value ("vms.100.index"); "" otherwise */
    struct pvh_err err;  /* "FILE:LINE:COLUMN: what is wrong", and what to do */
};

/* What a command does while its settings cannot be used (DESIGN.md "Settings that cannot be
 * read"); config_load says so in the error's hint. */
enum config_use {
    CONFIG_USE_SHOW,     /* types, status, check, doctor: show the host with defaults, exit 1 */
    CONFIG_USE_ACT,      /* pre-start, attach, detach, tune, cleanup: refuse, change nothing */
    CONFIG_USE_TEARDOWN, /* post-stop and the other phases: go on with defaults, saying so */
    CONFIG_USE_CHECK,    /* config check: only the verdict */
};

void config_defaults(struct pvh_config *c);
/* Parse text; `path` only names the file in messages. Unknown keys become warnings. doc (may be
 * NULL): the document as well, for editing. On an error *c holds the defaults. */
int config_parse(
    const char *text, size_t len, const char *path, struct pvh_config *c, struct json_object **doc,
    struct pvh_warnings *w, struct config_error *ce
);
void config_free(struct pvh_config *c);
/* Where the environment's settings are: --config's file (which must exist) or the default
 * path below --root (which may be missing). */
void config_where(const struct hook_env *env, const struct hostfs **fs, const char **path);
/* Our settings as the environment names them: the one place every command reads them. A
 * missing default file means defaults. On any failure a negative errno, *cfg the defaults and
 * ce names the file with line:column (and key) and says what to do and what `use` means
 * meanwhile; never partly read settings. */
int config_load(
    const struct hook_env *env, enum config_use use, struct pvh_config *cfg, struct pvh_warnings *w,
    struct config_error *ce
);
/* For the commands that act (pre-start, attach, detach, tune, cleanup): config_load with
 * CONFIG_USE_ACT, its error in e, so they refuse with it. */
int config_load_to_act(
    const struct hook_env *env, struct pvh_config *cfg, struct pvh_warnings *w, struct pvh_err *e
);
/* The same for editing: also the document (doc may be NULL) and the file's bytes (*text NULL
 * when the default file does not exist; malloc'ed). */
int config_load_edit(
    const struct hook_env *env, enum config_use use, struct pvh_config *cfg,
    struct json_object **doc, char **text, size_t *len, struct pvh_warnings *w,
    struct config_error *ce
);
const struct vm_settings *config_vm(const struct pvh_config *c, unsigned long vmid);
/* The VM's settings when it is in managed mode (it names a type), else NULL. */
const struct vm_settings *config_managed_vm(const struct pvh_config *c, unsigned long vmid);

/* The same, only when the record belongs to the VM whose config is conf (a record of a deleted
 * VM whose VMID Proxmox gave to a new VM is stale: never applied, never undone there). */
const struct vm_settings *
config_vm_for(const struct pvh_config *c, unsigned long vmid, const struct pveconf *conf);
const struct vm_settings *
config_managed_vm_for(const struct pvh_config *c, unsigned long vmid, const struct pveconf *conf);
/* Is vs stale for the VM whose config is conf? why: what differs, for messages. */
bool config_record_stale(
    const struct vm_settings *vs, const struct pveconf *conf, char *why, size_t whysize
);

const char *policy_name(enum pvh_policy p);
/* What `help config` prints: every key, its values and default. */
extern const char CONFIG_HELP[];
/* A node name as Proxmox allows one (pve-node: letters, digits and '-', a letter or digit at
 * both ends, at most 63): never '.', '..', a '/' or a control byte, so it is safe in a path. */
bool node_name_valid(const char *s);
/* Its rule as an error says it (an FQDN is the usual mistake). */
#define NODE_NAME_RULE                                                                             \
    "a Proxmox node name has letters, digits and '-' only (no '.': the short host name, as "       \
    "in " PVE_NODES_DIR "), at most 63"

/* Editing the file (attach/detach): config_load_edit gives the document, the functions below
 * change vms.<vmid>, config_doc_serialize writes it. Key order is kept. */
/* Set vms.<vmid> (takes ownership of entry) or, with entry NULL, remove it (and an empty vms). */
int config_doc_set_vm(struct json_object *root, unsigned long vmid, struct json_object *entry);
/* The same for attach/detach: the VM's tuning (params, unlock) stays whatever entry is (NULL:
 * only the tuning is left, or nothing). */
int config_doc_set_managed(struct json_object *root, unsigned long vmid, struct json_object *entry);
/* For tune: vms.<vmid>'s params and unlock replaced (NULL: removed; takes ownership), its other
 * keys kept; an entry left empty is removed. */
int config_doc_set_tuning(
    struct json_object *root, unsigned long vmid, struct json_object *params,
    struct json_object *unlock
);
/* vms.<vmid>.identity set to id (nothing when the entry does not exist or id is empty). */
int config_doc_set_identity(
    struct json_object *root, unsigned long vmid, const struct vm_identity *id
);
/* vms.<vmid>.params/.unlock as JSON: an unlock integer as a JSON number (TOML's forms such as
 * 0x1B38 or 8_294_400 resolved), all else as a string. NULL / -ENOMEM when out of memory. */
int config_tuning_set(struct json_object *obj, const char *key, const char *value, bool number);
struct json_object *config_tuning_json(const struct tune_kv *kv, size_t n, bool unlock);
/* Back from those objects, checked as the settings file is; *t freed by tuning_free. */
int config_tuning_parse(
    struct json_object *params, struct json_object *unlock, struct vm_tuning *t
);
/* Pretty JSON text with a final newline (malloc'ed); *empty when nothing but {} is left. */
char *config_doc_serialize(struct json_object *root, size_t *len, bool *empty);

#endif
