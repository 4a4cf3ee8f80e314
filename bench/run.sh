#!/usr/bin/env bash
# Benchmark: a large simulated host -- 8 physical A40s x 16 SR-IOV VFs, the 29 A40 types on
# every VF (3,712 type directories), 64 active mdevs -- and, per command, the median wall time
# of 5 runs, the system calls (strace -f) and the peak RSS (GNU time). Prints figures; it
# asserts nothing. Targets (issue 3):
#   types: <= 15,000 system calls; >= 3x faster than Debian's mdevctl types (side by side)
#   check / pre-start: system calls must not grow from 1 to 8 GPUs
#   every command: peak RSS < 4 MiB
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh strace time mdevctl
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
BIN=$PWD/build/pve-vgpu-hook MK=$PWD/build/tests/mkfakehost SO=$PWD/build/tests/libfakekernel_preload.so
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
RUNS=${RUNS:-5}

# Host with N GPUs: PFs 0000:41:00.0.., 16 VFs each, 8 mdevs (A40-2Q) per GPU for N=8 (64).
build_host() {
    local dir=$1 n=$2 args=() vm=1000
    for ((g = 0; g < n; g++)); do args+=(--a40 "$(printf '0000:%02x:00.0' $((0x41 + g)))" 16); done
    for ((g = 0; g < n; g++)); do
        for ((v = 0; v < 64 / n && v < 8; v++)); do
            fn=$((4 + v))
            args+=(--mdev "$(printf '0000:%02x:%02x.%d' $((0x41 + g)) $((fn / 8)) $((fn % 8)))" nvidia-558 \
                "$(printf '00000000-0000-0000-0000-%012d' $vm)")
            vm=$((vm + 1))
        done
    done
    "$MK" "$dir" "${args[@]}" >/dev/null
    echo '{"remove_wait_s": 0}' >"$dir/etc/pve/vgpu-hook.json"
    # VM 2000 asks for an A40-2Q on a free VF of the first GPU
    printf 'cores: 4\nhostpci0: 0000:41:01.7,mdev=nvidia-558\n' >"$dir/etc/pve/nodes/pve1/qemu-server/2000.conf"
}

now_ns() { date +%s%N; }
median_ms() { sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1e6}'; }

# measure NAME AFTER -- CMD...: median ms, syscalls, peak RSS KiB; AFTER runs after each run
measure() {
    local name=$1 after=$2; shift 3
    local times=() t0
    for ((i = 0; i < RUNS; i++)); do
        t0=$(now_ns); "$@" >/dev/null 2>&1 || true; times+=($(($(now_ns) - t0)))
        eval "$after"
    done
    local med calls rss
    med=$(printf '%s\n' "${times[@]}" | median_ms)
    strace -f -qq -o "$work/trace" "$@" >/dev/null 2>&1 || true; eval "$after"
    calls=$(grep -vc 'resumed>' "$work/trace")
    /usr/bin/time -o "$work/rss" -f '%M' "$@" >/dev/null 2>&1 || true; eval "$after"
    rss=$(tail -1 "$work/rss")
    printf '%-22s %10s ms %9s syscalls %7s KiB peak RSS\n' "$name" "$med" "$calls" "$rss"
}

# The measured commands are the binary itself (strace and time need an executable); the
# host is chosen through the environment, and with --root for hook mode (which ignores the
# environment). pre-start needs the simulated kernel preloaded.
on() { export PVE_VGPU_HOOK_ROOT=$1; }
undo_pre() { LD_PRELOAD=$SO "$BIN" --root "$PVE_VGPU_HOOK_ROOT" 2000 post-stop >/dev/null 2>&1; }
pre() {
    local n=$1 h=$2
    (on "$h"; export LD_PRELOAD=$SO FAKE_MDEV_BENCH=1; measure "$n" "undo_pre" -- "$BIN" --root "$h" 2000 pre-start)
}

echo "building the hosts (8 GPUs x 16 VFs x 29 types = 3712 type dirs, 64 mdevs; and 1 GPU)..."
build_host "$work/h8" 8
build_host "$work/h1" 1
echo "type directories: $(find "$work/h8/sys/devices" -path '*mdev_supported_types/*' -maxdepth 4 -type d | wc -l)," \
    "mdevs: $(ls "$work/h8/sys/bus/mdev/devices" | wc -l)"
echo
H=$work/h8
(
    on "$H"
    measure "types"        : -- "$BIN" types
    measure "types --json" : -- "$BIN" types --json
    measure "types --dumpjson" : -- "$BIN" types --dumpjson
    measure "status"       : -- "$BIN" status
    measure "check 2000"   : -- "$BIN" check 2000
)
pre "pre-start 2000" "$H"
echo
echo "check and pre-start read only the candidate GPU: 1 GPU vs 8 GPUs"
echo "(pre-start runs with the simulated kernel preloaded; its own bookkeeping is left out)"
(on "$work/h1"; measure "check (1 GPU)" : -- "$BIN" check 2000)
(on "$H"; measure "check (8 GPUs)" : -- "$BIN" check 2000)
pre "pre-start (1 GPU)" "$work/h1"
pre "pre-start (8 GPUs)" "$H"
echo

# mdevctl 1.2 ignores MDEVCTL_ENV_ROOT: give it the fake sys in a private mount namespace.
if [ "$(id -u)" -eq 0 ] && command -v mdevctl >/dev/null && unshare --mount true 2>/dev/null; then
    cat >"$work/side.sh" <<SIDE
mount --bind "$H/sys" /sys
now() { date +%s%N; }
for i in \$(seq $RUNS); do t=\$(now); mdevctl types >/dev/null; echo "m \$((\$(now) - t))"; done
for i in \$(seq $RUNS); do t=\$(now); PVE_VGPU_HOOK_ROOT=$H "$BIN" types >/dev/null; echo "o \$((\$(now) - t))"; done
SIDE
    unshare --mount bash "$work/side.sh" >"$work/side.out"
    m=$(awk '$1=="m"{print $2}' "$work/side.out" | median_ms)
    o=$(awk '$1=="o"{print $2}' "$work/side.out" | median_ms)
    echo "side by side, same tree: mdevctl types ${m} ms, pve-vgpu-hook types ${o} ms:" \
        "$(awk -v m="$m" -v o="$o" 'BEGIN{printf "%.1fx faster", m/o}')"
else
    echo "mdevctl comparison skipped: needs root, unshare and Debian's mdevctl"
fi
