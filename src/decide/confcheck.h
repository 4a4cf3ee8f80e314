/*
 * confcheck: pure checks of a VM config for mistakes that cost a start or a guest licence,
 * so that `check` (and pre-start, where it decides) can name them with the fix. No I/O.
 */
#ifndef PVH_CONFCHECK_H
#define PVH_CONFCHECK_H

#include <stdbool.h>

/* Is the VM's `machine` a q35 newer than 7.2 ("q35" without a version is the newest)? */
bool confcheck_q35_after_7_2(const char *machine);
/* SeaBIOS (bios unset or not ovmf) with such a q35: NVIDIA's guest driver does not license. */
bool confcheck_seabios_q35(const char *bios, const char *machine);
/* A hostpciN value that asks for a vGPU (mdev=) with x-vga on: the VM loses its console. */
bool confcheck_x_vga_on_vgpu(const char *hostpci_value);

#endif
