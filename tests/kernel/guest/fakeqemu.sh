#!/bin/sh
# A live process whose cmdline holds "-pidfile /var/run/qemu-server/<vmid>.pid", as Proxmox's
# running-VM test looks for; its pid goes into the pid file. Usage: fakeqemu.sh VMID
sh -c 'sleep 100000; true' -pidfile "/var/run/qemu-server/$1.pid" </dev/null >/dev/null 2>&1 &
echo $! >"/run/qemu-server/$1.pid"
