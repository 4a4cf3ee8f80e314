/*
 * The catalogue of host paths pve-vgpu-hook reads or writes (mdevctl keeps its own in
 * environment.rs). All are host paths, resolved below --root by hostfs.
 */
#ifndef PVH_HOSTPATHS_H
#define PVH_HOSTPATHS_H

/* Proxmox (pmxcfs and qemu-server) */
#define PVE_LOCAL_LINK "/etc/pve/local" /* -> nodes/<this node> */
#define PVE_VM_CONF_DIR "/etc/pve/qemu-server"
#define PVE_VM_CONF_FMT "/etc/pve/qemu-server/%lu.conf"
#define PVE_NODES_DIR "/etc/pve/nodes"
#define PVE_NODE_INVENTORY_FMT "/etc/pve/nodes/%s/vgpu-hook.json" /* our published inventory */
#define PVE_MEMBERS "/etc/pve/.members" /* the nodes and which are online (pmxcfs) */
#define PVE_NODE_VM_CONF_FMT "/etc/pve/nodes/%s/qemu-server/%lu.conf"
#define PVE_CT_CONF_FMT "/etc/pve/lxc/%lu.conf"
#define PVE_STORAGE_CFG "/etc/pve/storage.cfg"
#define PVE_PCI_MAPPING_CFG "/etc/pve/mapping/pci.cfg"
#define PVE_HA_RESOURCES_CFG "/etc/pve/ha/resources.cfg" /* "vm: <vmid>": HA starts it */
#define PVE_CLUSTER_LOCK_DIR "/etc/pve/priv/lock"
#define PVE_HA_RULES_CFG "/etc/pve/ha/rules.cfg"       /* pve-ha-manager 5.0.2 and later */
#define PVE_HA_GROUPS_CFG "/etc/pve/ha/groups.cfg"     /* before */
#define PVE_HA_LOCK_DIR "/etc/pve/priv/lock/domain-ha" /* cfs_lock_domain('ha') */
#define PVE_VM_LOCK_FMT "/var/lock/qemu-server/lock-%lu.conf"
#define PVE_VM_PID_FMT "/run/qemu-server/%lu.pid"
#define PVE_VM_PIDFILE_ARG_FMT "/var/run/qemu-server/%lu.pid" /* as QEMU's -pidfile names it */
#define DPKG_STATUS "/var/lib/dpkg/status"
#define DPKG_UPDATES_DIR "/var/lib/dpkg/updates"
#define ETC_HOSTNAME "/etc/hostname"
#define PVE_TASKS_DIR "/var/log/pve/tasks" /* <last hex digit of starttime>/<UPID> */
#define PVE_TASKS_ACTIVE "/var/log/pve/tasks/active"
#define PVE_TASKS_INDEX "/var/log/pve/tasks/index"
#define PVE_TASKS_INDEX_OLD "/var/log/pve/tasks/index.1" /* rotated past 50,000 bytes */
#define JOURNAL_DIR "/var/log/journal" /* journald's persistent files, read under --root */

/* the kernel */
#define SYS_MDEV_BUS_CLASS "/sys/class/mdev_bus"
#define SYS_MDEV_DEVICES "/sys/bus/mdev/devices"
#define SYS_PCI_DEVICES "/sys/bus/pci/devices"
#define SYS_NVIDIA_VERSION "/sys/module/nvidia/version"
#define PROC_PID_FMT "/proc/%ld"
#define LIB_MODULES_DIR "/lib/modules" /* one directory per installed kernel release */
#define MODULES_DEP_FMT "/lib/modules/%s/modules.dep"
#define BOOT_VMLINUZ_FMT "/boot/vmlinuz-%s" /* a release the boot loader can boot */

/* vgpu_unlock-rs, as its README and the seed guide set it up */
#define UNLOCK_OVERRIDE_TOML "/etc/vgpu_unlock/profile_override.toml"
#define UNLOCK_CONFIG_TOML "/etc/vgpu_unlock/config.toml"
#define VGPU_MGR_DROPIN_DIR "/etc/systemd/system/nvidia-vgpu-mgr.service.d"

/* ours */
#define PVH_INSTALLED_BINARY "/usr/bin/pve-vgpu-hook" /* what setup links snippets to */
#define CONFIG_DEFAULT_PATH "/etc/pve/vgpu-hook.json"
#define CONFIG_LOCK_DIR "/etc/pve/priv/lock/file-vgpu-hook_json" /* as cfs_lock_file names it */
#define PCI_MAPPING_LOCK_DIR "/etc/pve/priv/lock/file-mapping_pci_cfg" /* Mapping::PCI's lock */
#define HOST_LOCK_DIR "/run/pve-vgpu-hook" /* root-only (0700): nobody else can hold our lock */
#define HOST_LOCK_PATH HOST_LOCK_DIR "/host.lock"
#define HOOKS_DIR "/etc/pve-vgpu-hook/hooks.d"

#endif
