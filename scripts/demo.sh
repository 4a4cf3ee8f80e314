#!/usr/bin/env bash
# The hook's whole lifecycle on a simulated Proxmox host (two Tesla P40s, qemu-server 7.2-3),
# printed as Proxmox task logs would show it. The simulated kernel answers create/remove like
# the real one (tests/fixtures/fakekernel.c). Nothing on this machine is touched.
#
#   scripts/demo.sh                       install what is missing, build, run
#   scripts/demo.sh --no-build BIN MKFAKEHOST PRELOAD_SO   (used by the test suite)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--no-build" ]; then
    BIN=$2 MK=$3 SO=$4
else
    scripts/deps.sh
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
    BIN=$PWD/build/pve-vgpu-hook MK=$PWD/build/tests/mkfakehost SO=$PWD/build/tests/libfakekernel_preload.so
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
HOST=$work/host
"$MK" "$HOST" --qemu-server 7.2-3 >/dev/null
echo '{ "remove_wait_s": 1 }' >"$HOST/etc/pve/vgpu-hook.json"
# The package's binary, then `pve-vgpu-hook setup` on storage local: the snippet links to
# /usr/bin/pve-vgpu-hook
install_hook() {
    printf 'dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup,snippets\n' >"$1/etc/pve/storage.cfg"
    mkdir -p "$1/var/lib/vz" "$1/usr/bin"
    cp "$BIN" "$1/usr/bin/pve-vgpu-hook"
    PVE_VGPU_HOOK_ROOT=$1 "$BIN" setup >/dev/null
}
install_hook "$HOST"
vmconf() {
    printf '%s\nhookscript: local:snippets/pve-vgpu-hook\n' "$2" \
        >"$HOST/etc/pve/nodes/pve1/qemu-server/$1.conf"
}
run() { LD_PRELOAD=$SO "$BIN" --root "$HOST" "$@"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }

# What Proxmox does around the hookscript, reduced to the phases.
qm_start() {
    echo; echo "\$ qm start $1"
    if run "$1" pre-start 2>&1; then
        echo "  (QEMU starts with the vGPU)"
        echo "$((40000 + $1))" >"$HOST/run/qemu-server/$1.pid"
        mkdir -p "$HOST/proc/$((40000 + $1))"
        printf '/usr/bin/kvm\0-id\0%s\0-pidfile\0/var/run/qemu-server/%s.pid\0' "$1" "$1" \
            >"$HOST/proc/$((40000 + $1))/cmdline"
        run "$1" post-start 2>&1
        echo "TASK OK"; return 0
    fi
    echo "TASK ERROR: hookscript error for $1 on pre-start: exit code 1"; return 1
}
qm_stop() {
    echo; echo "\$ qm stop $1"
    run "$1" pre-stop 2>&1
    rm -f "$HOST/run/qemu-server/$1.pid"
    run "$1" post-stop 2>&1
    echo "TASK OK"
}
crash() { echo; echo "# VM $1's QEMU dies and Proxmox skips post-stop"; rm -f "$HOST/run/qemu-server/$1.pid"; }
mdevs() { echo; echo "\$ ls /sys/bus/mdev/devices"; ls "$HOST/sys/bus/mdev/devices" | sed 's/^/  /'; }

echo "Simulated host: two GRID P40 (0000:06:00.0, 0000:07:00.0), qemu-server 7.2-3"
echo; echo "\$ pve-vgpu-hook types --parent 0000:06:00.0   # the Proxmox UI shows only nvidia-46..."
# whole, then cut: a pipe into head would close early, and a write to a closed pipe is an error
run types --parent 0000:06:00.0 >"$work/types.txt"
head -8 "$work/types.txt" | sed 's/^/  /'
echo "  ..."

vmconf 100 $'boot: order=scsi0\ncores: 4\nhostpci0: 0000:06:00.0,mdev=nvidia-46,pcie=1\nmemory: 8192\nname: win10'
echo; echo "VM 100: hostpci0: 0000:06:00.0,mdev=nvidia-46 (GRID P40-1Q)"
qm_start 100 && fail "the first start should be refused to add -uuid"
echo; echo "\$ grep args /etc/pve/qemu-server/100.conf"
grep '^args' "$HOST/etc/pve/nodes/pve1/qemu-server/100.conf" | sed 's/^/  /' || fail "no args"
qm_start 100 || fail "the second start should work"

vmconf 101 $'cores: 2\nhostpci0: 0000:06:00.0,mdev=nvidia-47\nmemory: 4096\nname: cad'
echo; echo "VM 101: hostpci0: 0000:06:00.0,mdev=nvidia-47 (GRID P40-2Q) -- the GPU already holds a 1 GiB vGPU"
echo; echo "\$ pve-vgpu-hook check 101"
run check 101 && fail "check should refuse"
qm_start 101 && fail "VM 101 should be refused on 0000:06:00.0"
vmconf 101 $'args: -uuid 00000000-0000-0000-0000-000000000101\ncores: 2\nhostpci0: 0000:07:00.0,mdev=nvidia-47\nmemory: 4096\nname: cad'
echo; echo "VM 101 moved to 0000:07:00.0"
qm_start 101 || fail "VM 101 should start on 0000:07:00.0"
mdevs

qm_stop 100
crash 101
mdevs
vmconf 102 $'args: -uuid 00000000-0000-0000-0000-000000000102\ncores: 2\nhostpci0: 0000:07:00.0,mdev=nvidia-46\nname: office'
echo; echo "VM 102: hostpci0: 0000:07:00.0,mdev=nvidia-46 (GRID P40-1Q) -- blocked only by VM 101's leftover"
qm_start 102 || fail "VM 102 should reclaim the leftover"
qm_stop 102
mdevs
[ -z "$(ls "$HOST/sys/bus/mdev/devices")" ] || fail "devices left behind"

echo; echo "== Managed mode: VMs name a type; each start places it where it fits"
for v in 200 201 202; do vmconf $v $'cores: 2\nmemory: 4096'; done
echo; echo "\$ pve-vgpu-hook attach 200 --type P40-1Q"; run attach 200 --type P40-1Q 2>&1 | sed 's/^/  /'
run attach 201 --type P40-1Q >/dev/null 2>&1 || fail "attach 201"
run attach 202 --type 'GRID P40-2Q' >/dev/null 2>&1 || fail "attach 202"
echo "\$ pve-vgpu-hook attach 201 --type P40-1Q; pve-vgpu-hook attach 202 --type 'GRID P40-2Q'"
echo; echo "\$ grep args /etc/pve/qemu-server/200.conf"
grep '^args' "$HOST/etc/pve/nodes/pve1/qemu-server/200.conf" | sed 's/^/  /'
for v in 200 201 202; do qm_start $v || fail "managed VM $v should start"; done
echo; echo "\$ pve-vgpu-hook status"
run status | sed 's/^/  /'
for v in 200 201 202; do qm_stop $v >/dev/null; done
for v in 200 201 202; do run detach $v >/dev/null || fail "detach $v"; done
[ -z "$(ls "$HOST/sys/bus/mdev/devices")" ] || fail "managed devices left behind"

echo; echo "== Per-VM tuning: the seed guide's frame-rate hand edit, for one VM, at every start"
mkdir -p "$HOST/etc/systemd/system/nvidia-vgpu-mgr.service.d" "$HOST/opt/vgpu_unlock-rs/target/release" \
    "$HOST/etc/vgpu_unlock"
printf '[Service]\nEnvironment=LD_PRELOAD=/opt/vgpu_unlock-rs/target/release/libvgpu_unlock_rs.so\n' \
    >"$HOST/etc/systemd/system/nvidia-vgpu-mgr.service.d/vgpu_unlock.conf"
: >"$HOST/opt/vgpu_unlock-rs/target/release/libvgpu_unlock_rs.so"
printf '# my own profile overrides\n[profile.nvidia-47]\nnum_displays = 1\n' >"$HOST/etc/vgpu_unlock/profile_override.toml"
echo "# (vgpu_unlock-rs set up as the seed guide does it)"
echo "\$ pve-vgpu-hook tune 100 --unlock frl_enabled=0 --unlock framebuffer=896MiB --param frame_rate_limiter=0"
run tune 100 --unlock frl_enabled=0 --unlock framebuffer=896MiB --param frame_rate_limiter=0 2>&1 | sed 's/^/  /'
echo "\$ pve-vgpu-hook tune 100 --unlock frl_enabled=yes"
run tune 100 --unlock frl_enabled=yes 2>&1 | sed 's/^/  /' && fail "frl_enabled=yes should be refused"
qm_start 100 || fail "VM 100 should start with its tuning"
echo; echo "\$ cat /etc/vgpu_unlock/profile_override.toml"
sed 's/^/  /' "$HOST/etc/vgpu_unlock/profile_override.toml"
echo "\$ cat /sys/bus/mdev/devices/00000000-0000-0000-0000-000000000100/nvidia/vgpu_params"
sed 's/^/  /' "$HOST/sys/bus/mdev/devices/00000000-0000-0000-0000-000000000100/nvidia/vgpu_params"; echo
qm_stop 100 >/dev/null

echo; echo "== Is the host ready? doctor"
echo; echo "\$ pve-vgpu-hook doctor"
run doctor | sed 's/^/  /' && fail "doctor should find the simulated host not ready"
mkdir -p "$HOST/sys/kernel/iommu_groups/0" "$HOST/sys/module/nvidia_vgpu_vfio" "$HOST/proc/777" "$HOST/proc/778"
echo nvidia-vgpu-mgr >"$HOST/proc/777/comm"
echo nvidia-vgpud >"$HOST/proc/778/comm" # the P40s (Pascal) need it
echo "# (IOMMU on, nvidia-vgpu-mgr and nvidia-vgpud started)"
echo "\$ pve-vgpu-hook doctor"
run doctor | sed 's/^/  /' || fail "doctor should find the host ready now"

echo; echo "== A newer host: an L40S on NVIDIA's vendor interface (kernel 6.8), next to a P40"
HOST2=$work/host2
"$MK" "$HOST2" --p40 0000:06:00.0 --nvidia-iface 0000:81:00.0 4 --qemu-server 9.2.6 --ready >/dev/null
run2() { LD_PRELOAD=$SO "$BIN" --root "$HOST2" "$@"; }
install_hook "$HOST2"
echo; echo "\$ pve-vgpu-hook types"
run2 types >"$work/types2.txt"
head -9 "$work/types2.txt" | sed 's/^/  /'
echo "  ..."
printf 'cores: 4\nhookscript: local:snippets/pve-vgpu-hook\nhostpci0: 0000:81:00.4,mdev=nvidia-2\n' >"$HOST2/etc/pve/nodes/pve1/qemu-server/300.conf"
echo; echo "VM 300: hostpci0: 0000:81:00.4,mdev=nvidia-2 (L40S-4Q on a VF)"
echo "\$ pve-vgpu-hook check 300"
run2 check 300 | sed 's/^/  /' || fail "VM 300 should start on the VF"
echo "\$ pve-vgpu-hook doctor"
run2 doctor | sed 's/^/  /' || fail "the L40S host should be ready"
printf 'cores: 4\nmemory: 8192\n' >"$HOST2/etc/pve/nodes/pve1/qemu-server/301.conf"
cp "$HOST2/etc/pve/nodes/pve1/qemu-server/301.conf" "$work/301.before"
echo; echo "Managed mode there goes through a resource mapping (no mdev exists for args):"
echo "\$ pve-vgpu-hook attach 301 --type L40S-2Q"
run2 attach 301 --type L40S-2Q 2>/dev/null | sed 's/^/  /' || fail "attach 301 should work"
echo "\$ cat /etc/pve/mapping/pci.cfg"
sed 's/^/  /' "$HOST2/etc/pve/mapping/pci.cfg"
echo "\$ pve-vgpu-hook check 301"
run2 check 301 2>/dev/null | sed 's/^/  /' || fail "VM 301 should start"
echo "\$ pve-vgpu-hook detach 301"
run2 detach 301 2>/dev/null | sed 's/^/  /' || fail "detach 301 should work"
cmp -s "$work/301.before" "$HOST2/etc/pve/nodes/pve1/qemu-server/301.conf" || fail "301.conf not restored"
[ ! -e "$HOST2/etc/pve/mapping/pci.cfg" ] || fail "the mapping file should be gone again"
echo; echo "demo: done"
