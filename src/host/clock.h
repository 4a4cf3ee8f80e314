/*
 * clock: whether the kernel considers the system clock synchronised. A syscall, not a host path:
 * it is this machine's, also under --root (the test suite fakes it in the preload kernel).
 */
#ifndef PVH_CLOCK_H
#define PVH_CLOCK_H

#include <stdbool.h>

/* 0 and *synced from the kernel's NTP status (STA_UNSYNC, which chrony and systemd-timesyncd
 * clear); a negative errno when the kernel does not answer. */
int clock_synced(bool *synced);

#endif
