/*
 * vgpulog: what a vGPU start's log lines say about which device they concern (no I/O).
 * Formats (shared/reference/diagnosis.md):
 *   kernel   "[nvidia-vgpu-vfio] <mdev uuid>: <text>"
 *   manager  "... Received start call from nvidia-vgpu-vfio module: mdev uuid <uuid> ..." (every
 *            later line of that pid is that vGPU's); vgpu_unlock-rs: "Applying proxmox VMID <n>
 *            profile overrides"
 *   QEMU     "kvm: -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/<uuid>,...: vfio <uuid>: ..."
 */
#ifndef PVH_VGPULOG_H
#define PVH_VGPULOG_H

#include <stdbool.h>
#include <stddef.h>

#define VGPULOG_UUID_SIZE 37

/* The mdev UUID a kernel line of nvidia-vgpu-vfio names. */
bool vgpulog_kernel_uuid(const char *msg, char uuid[VGPULOG_UUID_SIZE]);
/* The mdev UUID of the manager's start call. */
bool vgpulog_start_call_uuid(const char *msg, char uuid[VGPULOG_UUID_SIZE]);
/* The VMID vgpu_unlock-rs applies overrides for. */
bool vgpulog_unlock_vmid(const char *msg, unsigned long *vmid);
/* The first canonical (lowercase, hyphenated) UUID anywhere in the line. */
bool vgpulog_any_uuid(const char *msg, char uuid[VGPULOG_UUID_SIZE]);
/* Does the line name the PCI device bdf ("0000:41:00.4"), as itself or without its domain? */
bool vgpulog_names_pci(const char *msg, const char *bdf);

#endif
