#include "storage.h"

#include "cleanup.h"
#include "config.h"
#include "hostpaths.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int storage_cfg_load(const struct hostfs *fs, struct sectioncfg *out, struct pvh_err *e) {
    _cleanup_free_ char *text = NULL;
    int r = hostfs_read_alloc(fs, PVE_STORAGE_CFG, CONFIG_MAX_BYTES, &text, NULL);
    if (r < 0) {
        return err_set(e, r, "cannot read %s: %s", PVE_STORAGE_CFG, strerror(-r));
    }
    return sectioncfg_parse(text, true, out) < 0 ? err_set(e, -ENOMEM, "out of memory") : 0;
}

const struct sectioncfg *storage_cached(const struct hostfs *fs, struct storage_cache *c) {
    if (!c->tried) {
        c->tried = true;
        c->ok = storage_cfg_load(fs, &c->cfg, NULL) == 0;
    }
    return c->ok ? &c->cfg : NULL;
}

void storage_cache_free(struct storage_cache *c) {
    sectioncfg_free(&c->cfg);
    memset(c, 0, sizeof(*c));
}
