#include "vgpulog.h"

#include "mdev_uuid.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A canonical UUID at s (followed by a byte that cannot continue it). */
static bool vgpulog_uuid_at(const char *s, char uuid[VGPULOG_UUID_SIZE]) {
    if (strnlen(s, MDEV_UUID_LEN) < MDEV_UUID_LEN || isxdigit((unsigned char)s[MDEV_UUID_LEN])) {
        return false;
    }
    memcpy(uuid, s, MDEV_UUID_LEN);
    uuid[MDEV_UUID_LEN] = '\0';
    return uuid_is_canonical(uuid);
}

bool vgpulog_kernel_uuid(const char *msg, char uuid[VGPULOG_UUID_SIZE]) {
    static const char tag[] = "[nvidia-vgpu-vfio] ";
    const char *p = strstr(msg, tag);
    return p && vgpulog_uuid_at(p + sizeof(tag) - 1, uuid) &&
           p[sizeof(tag) - 1 + MDEV_UUID_LEN] == ':';
}

bool vgpulog_start_call_uuid(const char *msg, char uuid[VGPULOG_UUID_SIZE]) {
    static const char call[] = "Received start call from nvidia-vgpu-vfio module";
    static const char tag[] = "mdev uuid ";
    const char *p = strstr(msg, call);
    p = p ? strstr(p, tag) : NULL;
    return p && vgpulog_uuid_at(p + sizeof(tag) - 1, uuid);
}

bool vgpulog_unlock_vmid(const char *msg, unsigned long *vmid) {
    static const char tag[] = "Applying proxmox VMID ";
    const char *p = strstr(msg, tag);
    if (!p) {
        return false;
    }
    p += sizeof(tag) - 1;
    size_t digits = strspn(p, "0123456789");
    char num[16];
    if (!digits || digits >= sizeof(num) || strncmp(p + digits, " profile overrides", 18)) {
        return false;
    }
    memcpy(num, p, digits);
    num[digits] = '\0';
    return vmid_parse(num, vmid);
}

bool vgpulog_any_uuid(const char *msg, char uuid[VGPULOG_UUID_SIZE]) {
    for (const char *p = msg; *p; p++) {
        if ((p == msg || !isxdigit((unsigned char)p[-1])) && vgpulog_uuid_at(p, uuid)) {
            return true;
        }
    }
    return false;
}

/* Is [p, p + len) a whole token: not glued to more of an address on either side (a ':' before
 * it only where colon_ok: "PCI:0000:41:00.4", but not the domain of another "0001:41:00.4")? */
static bool vgpulog_whole(const char *msg, const char *p, size_t len, bool colon_ok) {
    bool left = p == msg ||
                !(isxdigit((unsigned char)p[-1]) || p[-1] == '.' || (p[-1] == ':' && !colon_ok));
    bool right = !(isxdigit((unsigned char)p[len]) || p[len] == '.');
    return left && right;
}

bool vgpulog_names_pci(const char *msg, const char *bdf) {
    size_t len = strlen(bdf);
    const char *short_bdf = len == 12 && bdf[4] == ':' ? bdf + 5 : NULL;
    for (const char *p = msg; *p; p++) {
        if (!strncasecmp(p, bdf, len) && vgpulog_whole(msg, p, len, true)) {
            return true;
        }
        if (short_bdf && !strncasecmp(p, short_bdf, 7) && vgpulog_whole(msg, p, 7, false)) {
            return true;
        }
    }
    return false;
}
