/*
 * vmstate: what Proxmox's VMs are doing on this node, as qemu-server itself tells: running (pid
 * file and QEMU's command line), busy (the VM's config lock), and which VM holds each VF of
 * NVIDIA's vendor interface. Also this node's name.
 */
#ifndef PVH_VMSTATE_H
#define PVH_VMSTATE_H

#include "hostfs.h"
#include "inventory.h"
#include "nvidia_iface.h"
#include "pveconf.h"

#include <stdbool.h>
#include <stddef.h>

/* Every VF with a type set; *out malloc'ed. */
int inventory_vf_holders(const struct hostfs *fs, struct vf_holder **out, size_t *n);

/* Fill the state of every mdev in the array (each VM is asked once). */
void inventory_read_vm_states(const struct hostfs *fs, struct inv_mdev *mdevs, size_t n);

/* PVE's own test: the pid file names a live, non-zombie process whose cmdline holds
 * "-pidfile /var/run/qemu-server/<vmid>.pid". 1 running, 0 not. */
int vm_is_running(const struct hostfs *fs, unsigned long vmid);

/* This node's name: /etc/pve/local's target, else /etc/hostname, else the short host name,
 * else "localhost". */
void node_name(const struct hostfs *fs, char *buf, size_t size);

/* Is vmid a container (it has /etc/pve/lxc/<vmid>.conf)? */
bool vmid_is_container(const struct hostfs *fs, unsigned long vmid);

/* 1 when Proxmox holds the VM's config lock (a start or stop is under way). */
int vm_is_busy(const struct hostfs *fs, unsigned long vmid);

#endif
