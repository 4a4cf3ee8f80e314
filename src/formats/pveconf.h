/*
 * Proxmox VM configuration files (/etc/pve/qemu-server/<vmid>.conf), read as qemu-server's
 * parse_vm_config reads them, and Proxmox property strings ("k=v,k=v").
 *
 * The document is kept as its raw lines: rewriting an unchanged document reproduces it byte
 * for byte, and edits touch only the key lines of the top section (the current config, before
 * any [PENDING], [special:*] or snapshot section). '#' lines are the VM's description (data,
 * not comments) and are never touched.
 *
 * What Proxmox sees is what we act on: of several lines with one key, the last one whose value
 * Proxmox accepts counts (a rejected value leaves the key as the lines before it set it).
 * Values are held whole, whatever their length.
 */
#ifndef PVH_PVECONF_H
#define PVH_PVECONF_H

#include "cleanup.h"
#include "log.h"

#include <stdbool.h>
#include <stddef.h>

struct pveconf_line {
    char *text; /* raw bytes including the trailing '\n' when present */
    size_t len;
    int section;  /* 0 = top section, 1.. = following sections in order */
    char key[40]; /* key of a "key: value" line, "" otherwise */
    char *value;  /* the value as Proxmox trims it; NULL unless a key line */
};

struct pveconf {
    struct pveconf_line *lines;
    size_t n;
    size_t cap;
};

int pveconf_parse(const char *text, size_t len, struct pveconf *c);
void pveconf_free(struct pveconf *c);
/* The value Proxmox uses for key in the top section; NULL when it has none. Valid until the
 * document changes. */
const char *pveconf_get(const struct pveconf *c, const char *key);
/* Set key: the line Proxmox reads for it gets the new value (keeping its spacing), or a new
 * line is inserted in PVE's sorted key order. -EINVAL for an empty value or one with a line
 * break. */
int pveconf_set(struct pveconf *c, const char *key, const char *value);
/* Remove every line of key in the top section (so Proxmox sees no value); -ENOENT if none. */
int pveconf_delete(struct pveconf *c, const char *key);
/* Apply the [PENDING] section as qemu-server does at a cold start, before pre-start runs: its
 * "delete:" keys go, its keys replace the current ones. In memory only (check predicts a start
 * with it; the file is never written from it). 1 when there was something pending, 0 when not. */
int pveconf_apply_pending(struct pveconf *c);
/* The value key has at the VM's next cold start: its [PENDING] value, NULL when pending
 * deletion, else the current one. */
const char *pveconf_next(const struct pveconf *c, const char *key);
/* qm set on a running VM, for a key that is not hot-plugged (args, hostpciN): the new value
 * (NULL: the key's removal) goes into [PENDING] as qemu-server writes it: keys sorted, a
 * removal listed in "delete: k1,k2" (sorted, comma-separated), a pending value equal to the
 * current one dropped, an empty [PENDING] removed. The current config is not touched. */
int pveconf_set_pending(struct pveconf *c, const char *key, const char *value);
/* The whole document as text (malloc'ed, NUL-terminated). */
char *pveconf_serialize(const struct pveconf *c, size_t *len);
DEFINE_CLEANUP_FUNC(pveconf_freep, struct pveconf, pveconf_free)
/* Lines of the top section that Proxmox ignores or overrides, for the keys we act on
 * (hostpciN): one warning each, naming path and line. */
void pveconf_warn_ignored(const struct pveconf *c, const char *path, struct pvh_warnings *w);

/* Property strings, parsed as PVE::JSONSchema::parse_property_string does: parts split at ',',
 * blank parts skipped, "key=value" (value non-empty) or a bare value for default_key, no key
 * twice. Items point into a private copy (buf). */
#define PROPSTR_MAX 24
struct propstr {
    char *buf;
    struct {
        const char *key;
        const char *value;
    } items[PROPSTR_MAX];
    size_t n;
};
int propstr_parse(const char *s, const char *default_key, struct propstr *out, struct pvh_err *e);
void propstr_free(struct propstr *p);
const char *propstr_get(const struct propstr *p, const char *key);
/* A property string with key's part (the first "key=...") replaced by "key=newval", or removed
 * when newval is NULL; every other part kept byte for byte (malloc'ed; NULL: out of memory).
 * Without such a part, newval is appended. */
char *propstr_with(const char *value, const char *key, const char *newval);
/* Is v a true value of Proxmox's boolean format (1, on, yes, true; any case)? */
bool pve_bool_true(const char *v);

/* One hostpciN entry that asks for a mediated device. */
#define HOSTPCI_MAX 16     /* hostpci0..15, as qemu-server's $MAX_HOSTPCI_DEVICES */
#define HOSTPCI_HOST_MAX 8 /* PCI ids in one host= list that we hold */
#define PCI_ID_LEN 16      /* "0000:06:00.0" and its NUL, with room for a longer domain */
#define MDEV_TYPE_ID_MAX 64
#define MAPPING_ID_MAX 64
/* What Proxmox's resource mappings record of a PCI function, to notice changed hardware
 * (pve-guest-common's Mapping::PCI::assert_valid): ids as 4 lowercase hex digits without 0x,
 * "" when sysfs has none; iommu_group -1 when the device has none. Here, below the host model
 * that reads it, so that a node's published inventory can carry it too. */
struct pci_ident {
    char vendor[5], device[5], subsys_vendor[5], subsys_device[5];
    long iommu_group;
};
struct hostpci {
    unsigned index;                          /* N of hostpciN */
    char host[HOSTPCI_HOST_MAX][PCI_ID_LEN]; /* host= ids, normalised to 0000:bb:dd.f */
    size_t nhost;                            /* >1 means a multifunction group */
    char mapping[MAPPING_ID_MAX];            /* mapping= id, "" when host= is used */
    char mdev[MDEV_TYPE_ID_MAX];             /* mdev= type id, "" when none */
};
/* An mdev type id safe to use as a path component: PVE's [^/\.:]+, and no blanks or control
 * bytes. */
bool mdev_type_id_valid(const char *id);
/* Would qemu-server accept this hostpciN value (its pve-qm-hostpci property-string schema)?
 * 0, or -EINVAL with why (may be NULL) saying what it rejects. */
int hostpci_check_syntax(const char *value, char *why, size_t whysize);
/* Parse the value of hostpciN: Proxmox's schema, then what a start needs (host or mapping, a
 * usable mdev type id). */
int hostpci_parse(unsigned index, const char *value, struct hostpci *out, struct pvh_err *e);
/* The hostpciN entries of the top section that ask for a mediated device (mdev=), in index
 * order, as Proxmox sees them (lines it ignores are not entries). An entry a start cannot use
 * is skipped; the first one's error is returned (e filled, *bad its index) after the others
 * were collected, so callers choose to refuse or to carry on. */
int hostpci_mdev_entries(
    const struct pveconf *c, struct hostpci out[HOSTPCI_MAX], size_t *n, unsigned *bad,
    struct pvh_err *e
);
/* The VM's smbios1 uuid, lowercase: 0 and out filled; -ENOENT without smbios1; -EINVAL when
 * smbios1 has no valid uuid=. */
int pveconf_smbios_uuid(const struct pveconf *c, char *out, size_t size);
/* Who a VM is, beyond its VMID (which Proxmox reuses once a VM is deleted): the ctime of its
 * `meta:` line and its smbios1 uuid, whichever it has ("" / 0 when absent). */
struct vm_identity {
    long long ctime; /* 0: no meta ctime */
    char uuid[40];   /* lowercase; "": no valid smbios1 uuid */
};
void pveconf_identity(const struct pveconf *c, struct vm_identity *id);
bool vm_identity_empty(const struct vm_identity *id);
/* Is the VM that `now` describes the one `recorded` was taken from? Every part the record has
 * must be the VM's now; an empty record (written before identities existed) always matches. */
bool vm_identity_matches(const struct vm_identity *recorded, const struct vm_identity *now);
/* "ctime 1700000000, smbios1 uuid ..." for messages; "no identity" when empty. */
void vm_identity_describe(const struct vm_identity *id, char *out, size_t size);
/* Normalise a PCI id ("06:00.0", "0000:06:00.0") to "0000:06:00.0"; -EINVAL when malformed. */
int pci_id_normalize(const char *id, char *out, size_t size);

#endif
