#include "confcheck.h"

#include "pveconf.h"

#include <stdio.h>
#include <string.h>

bool confcheck_q35_after_7_2(const char *machine) {
    struct propstr ps;
    if (!machine || propstr_parse(machine, "type", &ps, NULL) < 0) {
        return false; /* no machine: i440fx; a value Proxmox rejects starts nothing */
    }
    const char *type = propstr_get(&ps, "type");
    unsigned major = 0, minor = 0;
    int used = 0;
    bool newer = false;
    if (type && !strcmp(type, "q35")) {
        newer = true; /* unversioned: the newest machine of the installed QEMU */
    } else if (type && sscanf(type, "pc-q35-%u.%u%n", &major, &minor, &used) == 2) {
        /* pc-q35-X.Y, optionally +pveN or .pxe after it */
        newer = major > 7 || (major == 7 && minor > 2);
    }
    propstr_free(&ps);
    return newer;
}

bool confcheck_seabios_q35(const char *bios, const char *machine) {
    return (!bios || strcmp(bios, "ovmf") != 0) && confcheck_q35_after_7_2(machine);
}

bool confcheck_x_vga_on_vgpu(const char *hostpci_value) {
    struct propstr ps;
    if (!hostpci_value || propstr_parse(hostpci_value, "host", &ps, NULL) < 0) {
        return false;
    }
    bool on = propstr_get(&ps, "mdev") && pve_bool_true(propstr_get(&ps, "x-vga"));
    propstr_free(&ps);
    return on;
}
