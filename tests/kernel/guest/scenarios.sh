# End-to-end scenarios of pve-vgpu-hook on a real kernel's mdev sysfs (busybox sh).
# Each check prints "RESULT PASS name" or "RESULT FAIL name: why".
H=/usr/sbin/pve-vgpu-hook
CONF=/etc/pve/nodes/pve1/qemu-server
set -- $(ls /sys/bus/pci/drivers/nvidia | grep '^0000:')
A=$1 B=$2
echo "GPUS $A $B"

pass() { echo "RESULT PASS $1"; }
fail() { echo "RESULT FAIL $1: $2"; [ -n "$OUT" ] && echo "$OUT" | sed 's/^/    | /'; }
# run CMD...: output in OUT, status in ST
run() { OUT=$("$@" 2>&1); ST=$?; }
# expect NAME STATUS [TEXT]...: the last run exited STATUS and printed every TEXT
expect() {
    name=$1 want=$2; shift 2
    if [ "$ST" != "$want" ]; then fail "$name" "exit $ST, want $want"; return 1; fi
    for t in "$@"; do
        case "$OUT" in *"$t"*) ;; *) fail "$name" "missing: $t"; return 1 ;; esac
    done
    pass "$name"
}
is() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "'$2' != '$3'"; fi; }
uuid() { printf '%08d-0000-0000-0000-%012d' "${2:-0}" "$1"; }
parent_of() { [ -e "/sys/bus/mdev/devices/$1" ] && basename "$(dirname "$(readlink -f "/sys/bus/mdev/devices/$1")")"; }
type_of() { basename "$(readlink "/sys/bus/mdev/devices/$1/mdev_type")"; }
vmconf() { printf "$2" >"$CONF/$1.conf"; }
create() { echo "$(uuid "$1")" >"/sys/bus/pci/devices/$2/mdev_supported_types/$3/create"; }
running() { sh /tests/fakeqemu.sh "$1"; }
stopped() { [ -e "/run/qemu-server/$1.pid" ] && kill "$(cat "/run/qemu-server/$1.pid")" 2>/dev/null; rm -f "/run/qemu-server/$1.pid"; }
# sysfs state that must not change on a refusal
snap() { ls /sys/bus/mdev/devices; cat /sys/class/mdev_bus/*/mdev_supported_types/*/available_instances; }
config() { printf '%s\n' "$1" >/etc/pve/vgpu-hook.json; }
stop_all() { for v in "$@"; do stopped "$v"; $H "$v" post-stop >/dev/null 2>&1; done; }

config '{"remove_wait_s": 0}'

# ---- 1. hostpci mode: create at pre-start, remove at post-stop
vmconf 100 "cores: 2\nhostpci0: $A,mdev=nvidia-46,pcie=1\n"
run $H 100 pre-start
expect s1-prestart 0 "created mdev $(uuid 100) (nvidia-46, GRID P40-1Q) on $A"
is s1-parent "$(parent_of "$(uuid 100)")" "$A"
is s1-type "$(type_of "$(uuid 100)")" nvidia-46
is s1-devices-link "$(ls /sys/bus/pci/devices/$A/mdev_supported_types/nvidia-46/devices)" "$(uuid 100)"
run $H 100 post-stop
expect s1-poststop 0 "removed mdev $(uuid 100) (nvidia-46 on $A)"
is s1-gone "$(ls /sys/bus/mdev/devices)" ""

# ---- 1b. mdev= names the type by its name: Proxmox looks up a directory of that name and fails
# the start, so check and pre-start refuse before any write, naming the id
vmconf 102 "hostpci0: $A,mdev=P40-1Q\n"
before=$(snap)
run $H check 102
expect s1b-check-type-name 1 "mdev=P40-1Q is the name of type nvidia-46" "mdev=nvidia-46"
run $H 102 pre-start
expect s1b-prestart-type-name 1 "mdev=P40-1Q is the name of type nvidia-46"
is s1b-nothing-written "$(snap)" "$before"
rm -f "$CONF/102.conf"

# ---- 2. a different size on the same GPU is refused before any write; the other GPU works
run $H 100 pre-start
running 100
vmconf 101 "hostpci0: $A,mdev=nvidia-47\n"
before=$(snap)
run $H 101 pre-start
expect s2-refused 1 "$A has no available instances of GRID P40-2Q (the driver says no" \
    "the GPU is in equal-size mode: it takes only 1024 MiB vGPUs" \
    "it hosts: 1 x GRID P40-1Q (1024 MiB) for VM 100" "GPUs that could take nvidia-47 now: $B"
is s2-nothing-written "$(snap)" "$before"
vmconf 101 "hostpci0: $B,mdev=nvidia-47\n"
run $H 101 pre-start
expect s2-other-gpu 0 "created mdev $(uuid 101) (nvidia-47, GRID P40-2Q) on $B"
stop_all 100 101

# ---- 3. managed mode: pack and spread, same placement after a restart
for v in 110 111 112; do vmconf $v "cores: 1\n"; done
run $H attach 110 --type P40-1Q; expect s3-attach-110 0 "attached P40-1Q"
run $H attach 111 --type 'GRID P40-1Q'; expect s3-attach-111 0
run $H attach 112 --type nvidia-47; expect s3-attach-112 0
for round in 1 2; do
    for v in 110 111 112; do run $H $v pre-start; expect s3-pack-start-$v-$round 0; running $v; done
    is s3-pack-110-$round "$(parent_of "$(uuid 110)")" "$A"
    is s3-pack-111-$round "$(parent_of "$(uuid 111)")" "$A"
    is s3-pack-112-$round "$(parent_of "$(uuid 112)")" "$B"
    stop_all 110 111 112
done
cfg=$(cat /etc/pve/vgpu-hook.json)
printf '{ "placement": "spread",%s\n' "${cfg#\{}" >/etc/pve/vgpu-hook.json
for round in 1 2; do
    for v in 110 111; do run $H $v pre-start; expect s3-spread-start-$v-$round 0; running $v; done
    is s3-spread-110-$round "$(parent_of "$(uuid 110)")" "$A"
    is s3-spread-111-$round "$(parent_of "$(uuid 111)")" "$B"
    run $H 112 pre-start
    expect s3-spread-112-refused-$round 1 "no candidate GPU can take it" "$A: " "$B: "
    stop_all 110 111
done
for v in 110 111 112; do run $H detach $v; expect s3-detach-$v 0; done
config '{"remove_wait_s": 0}'

# ---- 4. leftovers: status, reclaim when blocking, cleanup; a running VM's device is kept
create 120 "$A" nvidia-47
run $H status
expect s4-status 0 "$(uuid 120)  nvidia-47   GRID P40-2Q      VM 120       leftover"
vmconf 121 "hostpci0: $A,mdev=nvidia-46\n"
run $H 121 pre-start
expect s4-reclaim 0 "removed leftover mdev $(uuid 120) of stopped VM 120 (nvidia-47 on $A)"
stop_all 121
create 122 "$B" nvidia-46
create 123 "$B" nvidia-46
running 123
run $H cleanup
expect s4-cleanup 0 "removed $(uuid 122) (VM 122, nvidia-46 on $B)" \
    "kept $(uuid 123) (VM 123, nvidia-46 on $B): its VM is running"
is s4-kept "$(ls /sys/bus/mdev/devices)" "$(uuid 123)"
stop_all 123

# ---- 5. collisions and driver refusals
create 130 "$A" nvidia-46
run sh -c "echo $(uuid 130) > /sys/bus/pci/devices/$B/mdev_supported_types/nvidia-46/create"
expect s5-kernel-eexist 1 "File exists"
vmconf 130 "hostpci0: $B,mdev=nvidia-46\n"
run $H 130 pre-start
expect s5-uuid-elsewhere-replaced 0 "removed old mdev $(uuid 130) (nvidia-46 on $A)" \
    "created mdev $(uuid 130) (nvidia-46, GRID P40-1Q) on $B"
stop_all 130
vmconf 131 "hostpci0: $A,mdev=nvidia-53\n"
run $H 131 pre-start; expect s5-24q 0
running 131
vmconf 132 "hostpci0: $A,mdev=nvidia-53\n"
before=$(snap)
run $H 132 pre-start
expect s5-exhausted 1 "$A has no available instances of GRID P40-24Q (the driver says no: available_instances is 0)"
is s5-exhausted-nothing-written "$(snap)" "$before"
run sh -c "echo $(uuid 132) > /sys/bus/pci/devices/$A/mdev_supported_types/nvidia-53/create"
expect s5-driver-enospc 1 "No space left on device"
vmconf 133 "hostpci0: $A,mdev=nvidia-999\n"
run $H 133 pre-start
expect s5-no-such-type 1 "$A does not offer type nvidia-999"
create 134 "$B" nvidia-47
vmconf 134 "hostpci0: $B,mdev=nvidia-46\n"
run $H 134 pre-start
expect s5-wrong-type-leftover 0 "removed old mdev $(uuid 134) (nvidia-47 on $B)"
is s5-wrong-type-now "$(type_of "$(uuid 134)")" nvidia-46
stop_all 131 134

# ---- 6. eight pre-starts at once on one GPU, holding their VM locks as Proxmox does
for i in 0 1 2 3 4 5 6 7; do
    v=$((140 + i)); t=nvidia-46; [ $((i % 2)) = 1 ] && t=nvidia-47
    vmconf $v "hostpci0: $A,mdev=$t\n"
done
for i in 0 1 2 3 4 5 6 7; do
    v=$((140 + i))
    flock /var/lock/qemu-server/lock-$v.conf sh -c \
        "$H $v pre-start >/tmp/s6-$v.out 2>&1; echo \$? >/tmp/s6-$v.st; [ \$(cat /tmp/s6-$v.st) = 0 ] && sh /tests/fakeqemu.sh $v" &
done
wait
ok=0 types=""
for i in 0 1 2 3 4 5 6 7; do
    v=$((140 + i))
    if [ "$(cat /tmp/s6-$v.st)" = 0 ]; then
        ok=$((ok + 1))
        [ -e "/sys/bus/mdev/devices/$(uuid $v)" ] || fail s6-device-$v "VM $v started without its device"
        types="$types $(type_of "$(uuid $v)")"
    else
        OUT=$(cat /tmp/s6-$v.out); ST=$(cat /tmp/s6-$v.st)
        expect s6-explained-$v 1 "cannot place" "what to do:"
    fi
done
is s6-one-size "$(echo $types | tr ' ' '\n' | sort -u | wc -l)" 1
is s6-four-started "$ok" 4
stop_all 140 141 142 143 144 145 146 147

# ---- 7. qemu-server older than 7.2-4: -uuid is added, one refused start, then it works
sed -i 's/^Version: 9.2.6$/Version: 7.2-3/' /var/lib/dpkg/status
vmconf 150 "args: -cpu host\nhostpci0: $A,mdev=nvidia-46\n"
run $H 150 pre-start
expect s7-first-refused 1 "added '-uuid $(uuid 150)' to args" "start the VM once more"
is s7-args "$(grep '^args' $CONF/150.conf)" "args: -cpu host -uuid $(uuid 150)"
is s7-no-device "$(ls /sys/bus/mdev/devices)" ""
run $H 150 pre-start
expect s7-second-starts 0 "created mdev $(uuid 150)"
sed -i 's/^Version: 7.2-3$/Version: 9.2.6/' /var/lib/dpkg/status

# ---- 9. a stricter driver (homogeneous) than our policy: available_instances still decides
stop_all 150
rmmod nvidia_test && insmod /modules/nvidia_test.ko rule=homogeneous iface_after=2
set -- $(ls /sys/bus/pci/drivers/nvidia | grep '^0000:')
A=$1 B=$2
is s9-reloaded "$(cat /sys/module/nvidia_test/parameters/rule)" homogeneous
vmconf 160 "hostpci0: $A,mdev=nvidia-49\n"
run $H 160 pre-start; expect s9-4q 0
running 160
vmconf 161 "hostpci0: $A,mdev=nvidia-283\n"
before=$(snap)
run $H 161 pre-start
expect s9-driver-decides 1 "$A has no available instances of GRID P40-4C (the driver says no: available_instances is 0)"
is s9-nothing-written "$(snap)" "$before"
config '{"remove_wait_s": 0, "policy": "homogeneous"}'
run $H 161 pre-start
expect s9-policy-homogeneous 1 "the homogeneous policy (your settings) allows only one type per GPU"
config '{"remove_wait_s": 0}'
stop_all 160 161
run $H 150 pre-start

# ---- 10. NVIDIA's vendor interface: a VF with nvidia/ files (the third device)
C=$(for d in $(ls /sys/bus/pci/drivers/nvidia | grep '^0000:'); do
    [ -e "/sys/bus/pci/devices/$d/nvidia/current_vgpu_type" ] && echo "$d"; done | head -1)
is s10-vf-present "$([ -n "$C" ] && echo yes)" yes
run $H status
expect s10-status-idle 0 "$C  NVIDIA vendor interface" "idle; VFs in use: 0 of 1" "nvidia-2        NVIDIA L40S-4Q               4096 MiB"
vmconf 400 "hostpci0: $C,mdev=nvidia-2\n"
run $H check 400
expect s10-check 0 "index 0: nvidia-2 on $C: left to Proxmox (NVIDIA vendor interface)"
sed -i 's/^Version: 9.2.6$/Version: 8.2.4/' /var/lib/dpkg/status
run $H 400 pre-start
expect s10-old-qemu-server 1 "qemu-server 8.2.4 cannot use NVIDIA's vendor interface" "upgrade Proxmox VE to qemu-server 8.2.5"
sed -i 's/^Version: 8.2.4$/Version: 9.2.6/' /var/lib/dpkg/status
echo 2 >"/sys/bus/pci/devices/$C/nvidia/current_vgpu_type" # what Proxmox does at start
run sh -c "echo 3 >/sys/bus/pci/devices/$C/nvidia/current_vgpu_type"
is s10-driver-busy "$ST" 1
run $H status
expect s10-status-left-over 0 "$C nvidia-2 (no VM runs it: left over)"
run $H cleanup
expect s10-cleanup 0 "reset the type of VF $C (nvidia-2, VM 400)"
is s10-reset "$(cat /sys/bus/pci/devices/$C/nvidia/current_vgpu_type)" 0
echo 2 >"/sys/bus/pci/devices/$C/nvidia/current_vgpu_type"
run $H 400 post-stop
expect s10-post-stop 0 "reset the type of VF $C (nvidia-2), which Proxmox left set"
is s10-post-stop-reset "$(cat /sys/bus/pci/devices/$C/nvidia/current_vgpu_type)" 0
# managed mode there: a resource mapping with the ids the kernel shows for the VF
vmconf 401 "cores: 2\n"
cp "$CONF/401.conf" /tmp/401.before
run $H attach 401 --type L40S-4Q
expect s10-attach 0 "hostpci0: mapping=vgpu-hook-401,mdev=nvidia-2"
ids=$(sed 's/^0x//' "/sys/bus/pci/devices/$C/vendor"):$(sed 's/^0x//' "/sys/bus/pci/devices/$C/device")
is s10-mapping-line "$(grep -c "^	map node=pve1,path=$C,id=$ids" /etc/pve/mapping/pci.cfg)" 1
run $H check 401
expect s10-mapping-check 0 "mapping vgpu-hook-401 on node pve1: $C (tried in this order; as it is now)"
run $H detach 401
expect s10-detach 0 "mapping vgpu-hook-401 (removed)"
is s10-detach-conf "$(cmp /tmp/401.before "$CONF/401.conf" && echo same)" same
is s10-detach-mapping "$([ -e /etc/pve/mapping/pci.cfg ] && echo present || echo gone)" gone
run $H doctor
expect s10-doctor 1 "nvidia-vgpu-mgr is not running"
run $H doctor --json
expect s10-doctor-json 1 "\"nvidia_gpus\": 3" "\"check\": \"vgpu-mgr-down\""

# ---- 8. types --dumpjson next to mdevctl's (compared on the host), with one vGPU active
echo JSON-OURS-BEGIN; $H types --dumpjson; echo JSON-OURS-END
if command -v mdevctl >/dev/null; then
    echo JSON-MDEVCTL-BEGIN; mdevctl types --dumpjson; echo JSON-MDEVCTL-END
fi
stop_all 150

# ---- 11. tuning: vgpu_params written at pre-start, before QEMU opens the device; the driver
# refuses parameters once it is open (a real VFIO open), and so does the next pre-start
vmconf 170 "cores: 2\nhostpci0: $A,mdev=nvidia-46\n"
run $H tune 170 --param frame_rate_limiter=0 --param disable_vnc=1
expect s11-tune 0 "VM 170: vgpu_params frame_rate_limiter=0,disable_vnc=1"
run $H 170 pre-start
expect s11-prestart 0 "vgpu_params frame_rate_limiter=0,disable_vnc=1 on mdev $(uuid 170)"
P=/sys/bus/mdev/devices/$(uuid 170)/nvidia/vgpu_params
is s11-params-written "$(cat "$P")" "frame_rate_limiter=0,disable_vnc=1"
run vfioopen "$(uuid 170)" sh -c "echo enable_uvm=1 >$P"
is s11-open-refuses-params "$ST" 1
is s11-params-kept "$(cat "$P")" "frame_rate_limiter=0,disable_vnc=1"
run vfioopen "$(uuid 170)" $H 170 pre-start
expect s11-prestart-while-open 1 "the driver refused vgpu_params" "Device or resource busy" "the device is open already"
is s11-closed-takes-params "$(echo ' ' >"$P" && echo ok)" ok
stop_all 170
# vgpu_unlock-rs set up as its README does; our table goes into the admin's file, atomically
mkdir -p /etc/systemd/system/nvidia-vgpu-mgr.service.d /opt/vgpu_unlock-rs/target/release /etc/vgpu_unlock
printf '[Service]\nEnvironment=LD_PRELOAD=/opt/vgpu_unlock-rs/target/release/libvgpu_unlock_rs.so\n' \
    >/etc/systemd/system/nvidia-vgpu-mgr.service.d/vgpu_unlock.conf
: >/opt/vgpu_unlock-rs/target/release/libvgpu_unlock_rs.so
printf '[profile.nvidia-46]\nframebuffer = 939524096\n' >/etc/vgpu_unlock/profile_override.toml
run $H tune 170 --unlock frl_enabled=0 --unlock framebuffer=896MiB
run $H 170 pre-start
expect s11-unlock-prestart 0 "wrote [vm.170] in /etc/vgpu_unlock/profile_override.toml"
is s11-unlock-file "$(sed -n '1,2p;4p;6,7p' /etc/vgpu_unlock/profile_override.toml | tr '\n' '|')" \
    "[profile.nvidia-46]|framebuffer = 939524096|[vm.170]|frl_enabled = 0|framebuffer = \"896MiB\"|"
is s11-unlock-no-temp "$(ls /etc/vgpu_unlock | tr '\n' ' ')" "profile_override.toml "
stop_all 170
run $H tune 170 --clear
run $H 170 pre-start
is s11-unlock-removed "$(cat /etc/vgpu_unlock/profile_override.toml)" "$(printf '[profile.nvidia-46]\nframebuffer = 939524096')"
stop_all 170
