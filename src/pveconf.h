/*
 * Proxmox VM configuration files (/etc/pve/qemu-server/<vmid>.conf) and property strings.
 *
 * The document is kept as its raw lines: rewriting an unchanged document reproduces it byte
 * for byte, and edits touch only the key lines of the top section (the current config, before
 * any [PENDING], [special:*] or snapshot section). '#' lines are the VM's description (data,
 * not comments) and are never touched.
 */
#ifndef PVH_PVECONF_H
#define PVH_PVECONF_H

#include "log.h"

#include <stdbool.h>
#include <stddef.h>

struct pveconf_line {
    char *text; /* raw bytes including the trailing '\n' when present */
    size_t len;
    int section;  /* 0 = top section, 1.. = following sections in order */
    char key[40]; /* key of a "key: value" line, "" otherwise */
};

struct pveconf {
    struct pveconf_line *lines;
    size_t n;
    size_t cap;
};

int pveconf_parse(const char *text, size_t len, struct pveconf *c);
void pveconf_free(struct pveconf *c);
/* Value of key in the top section, trimmed as PVE does; NULL when absent. */
const char *pveconf_get(const struct pveconf *c, const char *key, char *buf, size_t size);
/* Replace key's line in the top section, or insert it in PVE's sorted key order. */
int pveconf_set(struct pveconf *c, const char *key, const char *value);
int pveconf_delete(struct pveconf *c, const char *key);
/* The whole document as text (malloc'ed, NUL-terminated). */
char *pveconf_serialize(const struct pveconf *c, size_t *len);

/* Property strings: "k=v,k=v"; a part without '=' belongs to default_key. */
#define PROPSTR_MAX 24
struct propstr {
    struct {
        char key[32];
        char value[512];
    } items[PROPSTR_MAX];
    size_t n;
};
int propstr_parse(const char *s, const char *default_key, struct propstr *out, struct pvh_err *e);
const char *propstr_get(const struct propstr *p, const char *key);

/* One hostpciN entry that asks for a mediated device. */
#define HOSTPCI_MAX 16
struct hostpci {
    unsigned index;   /* N of hostpciN */
    char host[8][16]; /* host= ids, normalised to 0000:bb:dd.f */
    size_t nhost;     /* >1 means a multifunction group (invalid with mdev) */
    char mapping[64]; /* mapping= id, "" when host= is used */
    char mdev[64];    /* mdev= type id, "" when none */
};
/* An mdev type id safe to use as a path component: PVE's [^/\.:]+, and no blanks or control
 * bytes. */
bool mdev_type_id_valid(const char *id);
/* Parse the value of hostpciN. Validates ids and the mdev type name (no '/', no ".."). */
int hostpci_parse(unsigned index, const char *value, struct hostpci *out, struct pvh_err *e);
/* The hostpciN entries of the top section that ask for a mediated device (mdev=), in index
 * order. A malformed entry is skipped; the first one's error is returned (e filled, *bad its
 * index) after the others were collected, so callers choose to refuse or to carry on. */
int hostpci_mdev_entries(
    const struct pveconf *c, struct hostpci out[HOSTPCI_MAX], size_t *n, unsigned *bad,
    struct pvh_err *e
);
/* The VM's smbios1 uuid, lowercase: 0 and out filled; -ENOENT without smbios1; -EINVAL when
 * smbios1 has no valid uuid=. */
int pveconf_smbios_uuid(const struct pveconf *c, char *out, size_t size);
/* Normalise a PCI id ("06:00.0", "0000:06:00.0") to "0000:06:00.0"; -EINVAL when malformed. */
int pci_id_normalize(const char *id, char *out, size_t size);

/* Can args be split like a shell splits words (balanced quotes, no dangling backslash)?
 * Proxmox splits args with shellwords, which yields nothing at all for an open quote. */
bool args_splittable(const char *args);
/* The args value with "-uuid <uuid>" present: the last -uuid's value replaced, or appended.
 * *changed tells whether anything had to change. out is malloc'ed. -EINVAL when args has an
 * open quote (an edit could not be right). */
int args_with_uuid(const char *args, const char *uuid, char **out, bool *changed);
/* args without the first "opt value" word pair (and the blank before it); *found tells whether
 * it was there. out is malloc'ed. */
int args_remove_pair(const char *args, const char *opt, const char *value, char **out, bool *found);
/* The value of the last -uuid in args, or "" when there is none. */
void args_find_uuid(const char *args, char *out, size_t size);

/* PCI paths that /etc/pve/mapping/pci.cfg lists for mapping id on node, in order. */
int mapping_paths(
    const char *text, const char *id, const char *node, char paths[][16], size_t max, size_t *n,
    struct pvh_err *e
);

/* A storage of /etc/pve/storage.cfg ("<type>: <id>" sections, tab-indented properties). */
struct storage_info {
    char type[32];
    char path[512];
    char content[256];
};
int storage_find(const char *text, const char *id, struct storage_info *out);
/* Is item in a comma-separated list? */
bool list_has(const char *list, const char *item);

#endif
