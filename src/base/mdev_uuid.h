/*
 * The mdev UUID scheme shared with qemu-server and vgpu_unlock-rs:
 * "%08d-0000-0000-0000-%012d" with the hostpci index and the VMID, decimal digits.
 */
#ifndef PVH_MDEV_UUID_H
#define PVH_MDEV_UUID_H

#include <stdbool.h>

#define MDEV_UUID_LEN 36
#define VMID_MIN 100UL
#define VMID_MAX 999999999UL

/* out must hold MDEV_UUID_LEN + 1 bytes. */
void mdev_uuid_for(unsigned long vmid, unsigned index, char *out);
/* True when uuid follows the scheme; fills index and vmid. */
bool mdev_uuid_parse(const char *uuid, unsigned *index, unsigned long *vmid);
/* True for any well-formed lowercase hyphenated UUID (the kernel's %pUl). */
bool uuid_is_canonical(const char *s);
/* Strict VMID parse: decimal, no sign or spaces, VMID_MIN..VMID_MAX. */
bool vmid_parse(const char *s, unsigned long *vmid);

#endif
