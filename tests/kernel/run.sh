#!/usr/bin/env bash
# End-to-end tests of pve-vgpu-hook on a real Linux kernel's mdev sysfs.
#
#   tests/kernel/run.sh BINARY MDEVJSON_COMPARE
#
# Fetches the kernel Debian 12 serves now (linux-image-amd64) and its headers (apt-get download +
# dpkg -x into a cache, nothing is installed on the host), builds the test-only "nvidia" mdev parent module, packs a
# busybox initramfs with the module, BINARY and its libraries, Debian's mdevctl and fixture
# /etc/pve and dpkg status, boots qemu-system-x86_64 (TCG) with three pci-testdev devices (two
# mdev parents, one VF on NVIDIA's vendor interface), runs
# guest/scenarios.sh inside, and turns the guest's RESULT lines into this test's result.
# Cache: $PVH_CACHE_DIR (default: ~/.cache/pve-vgpu-hook, outside the clone, so that every
# fresh clone on this machine, as CI makes one, reuses the downloads).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BIN=$(readlink -f "$1")
CMP=$(readlink -f "$2")
cache=${PVH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pve-vgpu-hook}/kernel
work=$(mktemp -d)
trap '[ -n "${PVH_KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
log() { echo "kernel-test: $*" >&2; }

"$repo/scripts/deps.sh" qemu-system-x86 busybox-static cpio mdevctl libelf1 gcc make

# ---- 1. the kernel Debian 12 serves now (what linux-image-amd64 depends on), downloaded once
# Debian replaces its kernel upload every few weeks and withdraws the old one, so no exact
# version is pinned: each version of linux-image-amd64 the archive offers is tried, newest
# first; a kernel cached by an earlier run is booted when none can be fetched.
mkdir -p "$cache/debs"
kernel_versions() {  # "version abi" per line, newest first, from apt's lists
    apt-cache madison linux-image-amd64 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' |
        sort -u -r -V | while read -r v; do
            a=$(apt-cache show "linux-image-amd64=$v" 2>/dev/null |
                sed -n 's/^Depends:.*linux-image-\([0-9][0-9.]*-[0-9][0-9]*\)-amd64.*/\1/p' | head -1)
            if [ -n "$a" ]; then echo "$v $a"; fi
        done || true
}
fetch_kernel() {  # VERSION ABI: image, headers and kbuild into $cache/root
    rm -f "$cache"/debs/*.deb
    (cd "$cache/debs" && apt-get download -q "linux-image-$2-amd64=$1" \
        "linux-headers-$2-amd64=$1" "linux-headers-$2-common=$1" \
        "linux-kbuild-${2%%.0-*}=$1") >"$work/download.log" 2>&1 || return 1
    # unpacked beside the cached kernel, which stays until the new one is whole
    rm -rf "$cache/root.new"
    for d in "$cache"/debs/*.deb; do dpkg -x "$d" "$cache/root.new" || return 1; done
    rm -rf "$cache/root" "$cache"/debs/*.deb
    mv "$cache/root.new" "$cache/root"
    echo "$2 $1" >"$cache/kernel"
}
cached_kernel() {
    read -r abi ver 2>/dev/null <"$cache/kernel" && [ -e "$cache/root/boot/vmlinuz-$abi-amd64" ]
}
try_versions() {  # fetch the newest kernel apt lists that can be downloaded
    while read -r v a; do
        [ -n "$v" ] || continue
        log "fetching Debian's kernel $a ($v)"
        fetch_kernel "$v" "$a" && return 0
        log "could not fetch $a ($v):"; sed 's/^/    /' "$work/download.log" >&2
    done <<<"$versions"
    return 1
}
versions=$(kernel_versions)
newest=$(echo "$versions" | awk 'NR == 1 {print $2" "$1}')
if ! cached_kernel || [ "$abi $ver" != "$newest" ]; then
    # apt's lists may be old (a withdrawn upload) or missing: refresh them once before giving up
    if ! try_versions; then
        apt-get update -q >/dev/null 2>&1 || log "apt-get update failed"
        versions=$(kernel_versions)
        if ! try_versions; then
            if cached_kernel; then
                log "no kernel could be fetched from Debian's archive; booting the cached one"
            else
                log "no Debian 12 kernel can be fetched (apt lists linux-image-amd64: $(echo "${versions:-none}" | awk '{print $1}' | paste -sd " "))"
                log "and none is cached in $cache: check apt's sources, then run 'apt-get update'"
                exit 1
            fi
        fi
    fi
    cached_kernel || { log "the kernel package has no /boot/vmlinuz-$abi-amd64"; exit 1; }
fi
log "booting Debian's kernel $abi ($ver)"
headers=$cache/root/usr/src/linux-headers-$abi-amd64
# The -amd64 headers include the -common ones by absolute path: point it into the cache.
sed -i "s|^include .*/usr/src/linux-headers-$abi-common/Makefile|include $cache/root/usr/src/linux-headers-$abi-common/Makefile|" "$headers/Makefile"
kdir=$cache/root/lib/modules/$abi-amd64/kernel/drivers/vfio

# ---- 2. the test parent module
cp -r "$here/module" "$work/module"
make -s -C "$headers" M="$work/module" modules >"$work/module.log" 2>&1 || { cat "$work/module.log"; exit 1; }

# ---- 3. initramfs
rd=$work/initramfs
mkdir -p "$rd"/{bin,modules,tests,usr/sbin,usr/bin,etc/pve/nodes/pve1/qemu-server,etc/pve/nodes/pve1/lxc,etc/pve/mapping,var/lib/dpkg}
cp /bin/busybox "$rd/bin/busybox"
cp "$here/guest/init" "$rd/init"
cp "$here/guest/scenarios.sh" "$here/guest/fakeqemu.sh" "$rd/tests/"
chmod 755 "$rd/init"
cp "$kdir/mdev/mdev.ko" "$kdir/vfio.ko" "$kdir/vfio_iommu_type1.ko" "$work/module/nvidia_test.ko" "$rd/modules/"
copy_with_libs() {
    cp "$1" "$rd$2"
    ldd "$1" | grep -o '/[^ ]*' | while read -r lib; do
        mkdir -p "$rd$(dirname "$lib")"
        cp -L "$lib" "$rd$lib"
    done
}
copy_with_libs "$BIN" /usr/sbin/pve-vgpu-hook
# QEMU's open of an mdev through VFIO, for the driver's "parameters only while unused" rule
gcc -O2 -Wall -Werror -o "$work/vfioopen" "$here/guest/vfioopen.c"
copy_with_libs "$work/vfioopen" /usr/bin/vfioopen
# Debian's busybox-static has no flock applet: util-linux's, for holding VM locks as Proxmox does
copy_with_libs "$(command -v flock)" /usr/bin/flock
if command -v mdevctl >/dev/null; then
    copy_with_libs "$(command -v mdevctl)" /usr/bin/mdevctl
    mkdir -p "$rd/etc/mdevctl.d/scripts.d/callouts" "$rd/etc/mdevctl.d/scripts.d/notifiers" \
        "$rd/usr/lib/mdevctl/scripts.d/callouts" \
        "$rd/usr/lib/mdevctl/scripts.d/notifiers"
fi
ln -s nodes/pve1 "$rd/etc/pve/local"
ln -s nodes/pve1/qemu-server "$rd/etc/pve/qemu-server"
ln -s nodes/pve1/lxc "$rd/etc/pve/lxc"
printf 'Package: qemu-server\nStatus: install ok installed\nVersion: 9.2.6\n\n' >"$rd/var/lib/dpkg/status"
echo pve1 >"$rd/etc/hostname"
(cd "$rd" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# ---- 4. boot (software emulation; a hung guest is killed by the timeout)
log "booting $abi ($ver) under qemu (tcg)"
start=$(date +%s)
timeout 300 qemu-system-x86_64 -accel tcg -m 512M -smp 1 -nographic -vga none -nic none \
    -no-reboot -kernel "$cache/root/boot/vmlinuz-$abi-amd64" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3" \
    -device pci-testdev -device pci-testdev -device pci-testdev </dev/null >"$work/console.log" 2>&1 || true
tr -d '\r' <"$work/console.log" >"$work/console.txt"
log "guest ran $(($(date +%s) - start)) s"

# ---- 5. results
sed -n '/^JSON-OURS-BEGIN$/,/^JSON-OURS-END$/p' "$work/console.txt" | sed '1d;$d' >"$work/ours.json"
sed -n '/^JSON-MDEVCTL-BEGIN$/,/^JSON-MDEVCTL-END$/p' "$work/console.txt" | sed '1d;$d' >"$work/mdevctl.json"
grep -E '^(KERNEL |RESULT|    \|)' "$work/console.txt" || true
passed=$(grep -c '^RESULT PASS' "$work/console.txt" || true)
failed=$(grep -c '^RESULT FAIL' "$work/console.txt" || true)
if [ -s "$work/mdevctl.json" ]; then
    if why=$("$CMP" "$work/ours.json" "$work/mdevctl.json"); then
        echo "RESULT PASS s8-types-json-matches-mdevctl ($why)"; passed=$((passed + 1))
    else
        echo "RESULT FAIL s8-types-json-matches-mdevctl: $why"; failed=$((failed + 1))
    fi
else
    echo "RESULT FAIL s8-types-json-matches-mdevctl: the guest printed no mdevctl output"
    failed=$((failed + 1))
fi
if ! grep -q '^ALL-DONE$' "$work/console.txt"; then
    echo "the guest did not finish; console log:"
    tail -60 "$work/console.txt"
    failed=$((failed + 1))
fi
echo "kernel: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
