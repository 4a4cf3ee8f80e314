#include "edit_result.h"

#include <stdio.h>
#include <string.h>

void edit_result_change(
    struct edit_result *res, const char *file, const char *old, size_t old_len, const char *data,
    size_t len
) {
    if ((!old && !data) || (old && data && old_len == len && !memcmp(old, data, len)) ||
        res->nchanges == EDIT_CHANGES_MAX) {
        return;
    }
    struct edit_change *c = &res->changes[res->nchanges++];
    snprintf(c->file, sizeof(c->file), "%s", file);
    c->action = !old ? EDIT_CREATE : !data ? EDIT_REMOVE : EDIT_MODIFY;
}

const char *edit_action_code(enum edit_action a) {
    return a == EDIT_CREATE ? "create" : a == EDIT_REMOVE ? "remove" : "modify";
}

void edit_result_free(struct edit_result *res) {
    warn_free(&res->details);
    warn_free(&res->warnings);
    tuning_free(&res->tuning);
    res->has_tuning = false;
}
