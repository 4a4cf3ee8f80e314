#include "mdev_uuid.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mdev_uuid_for(unsigned long vmid, unsigned index, char *out) {
    snprintf(out, MDEV_UUID_LEN + 1, "%08u-0000-0000-0000-%012lu", index % 100000000u, vmid);
}

bool uuid_is_canonical(const char *s) {
    if (strlen(s) != MDEV_UUID_LEN) {
        return false;
    }
    for (int i = 0; i < MDEV_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !(isdigit((unsigned char)s[i]) || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

static bool all_digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

bool mdev_uuid_parse(const char *uuid, unsigned *index, unsigned long *vmid) {
    if (!uuid_is_canonical(uuid) || strncmp(uuid + 8, "-0000-0000-0000-", 16) != 0 ||
        !all_digits(uuid, 8) || !all_digits(uuid + 24, 12)) {
        return false;
    }
    unsigned long idx = strtoul(uuid, NULL, 10);
    unsigned long id = strtoul(uuid + 24, NULL, 10);
    if (id < VMID_MIN || id > VMID_MAX) {
        return false;
    }
    if (index) {
        *index = (unsigned)idx;
    }
    if (vmid) {
        *vmid = id;
    }
    return true;
}

bool vmid_parse(const char *s, unsigned long *vmid) {
    size_t n = strlen(s);
    if (n == 0 || n > 9 || !all_digits(s, n) || s[0] == '0') {
        return false;
    }
    unsigned long v = strtoul(s, NULL, 10);
    if (v < VMID_MIN || v > VMID_MAX) {
        return false;
    }
    *vmid = v;
    return true;
}
