/*
 * Proxmox section-config files, read as PVE::SectionConfig::parse_config does: one parser for
 * /etc/pve/storage.cfg ("<type>: <id>" headers) and /etc/pve/mapping/pci.cfg (bare "<id>"
 * headers). A section's properties are the tab- or space-indented "key value" lines up to the
 * next empty line; '#' lines are skipped. Values are held whole.
 */
#ifndef PVH_SECTIONCFG_H
#define PVH_SECTIONCFG_H

#include "cleanup.h"
#include "log.h"

#include <stdbool.h>
#include <stddef.h>

struct sectioncfg_prop {
    char *key;
    char *value; /* "" when the line has no value */
};

struct sectioncfg_section {
    char *type; /* "" for bare-id headers */
    char *id;
    struct sectioncfg_prop *props;
    size_t nprops;
    size_t start, end; /* its bytes: the header line through the empty line that ends it */
};

struct sectioncfg {
    struct sectioncfg_section *sections;
    size_t n;
};

/* typed: headers are "<type>: <id>" (storage.cfg); else "<id>" (mapping files). */
int sectioncfg_parse(const char *text, bool typed, struct sectioncfg *out);
void sectioncfg_free(struct sectioncfg *c);
DEFINE_CLEANUP_FUNC(sectioncfg_freep, struct sectioncfg, sectioncfg_free)
/* The first section with this id, or NULL (ids are case-sensitive, as Proxmox's hash keys). */
const struct sectioncfg_section *sectioncfg_find(const struct sectioncfg *c, const char *id);
/* The first value of key in a section, or NULL. */
const char *sectioncfg_get(const struct sectioncfg_section *s, const char *key);

/* Where the first section with this id lies in text (NUL-terminated), as the parser reads it:
 * [*start, *end) runs from the header line through the empty line that ends the section, or
 * up to the line that starts the next one, or to the end. -ENOENT when there is none. */
int sectioncfg_span(const char *text, bool typed, const char *id, size_t *start, size_t *end);

/* A storage of storage.cfg. Strings point into the parsed file. */
struct storage_info {
    const char *type;
    const char *path;    /* NULL when the storage has no directory */
    const char *content; /* "" when not set */
};
int storage_find(const struct sectioncfg *storage_cfg, const char *id, struct storage_info *out);
/* Is item in a comma-separated list? */
bool list_has(const char *list, const char *item);

/* PCI paths that mapping id of mapping/pci.cfg lists for node, in order (normalised ids).
 * paths is malloc'ed ([n][16]). -ENOENT with e filled when there is none. */
int mapping_paths(
    const struct sectioncfg *pci_cfg, const char *id, const char *node, char (**paths)[16],
    size_t *n, struct pvh_err *e
);

#endif
