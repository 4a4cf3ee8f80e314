#!/usr/bin/env bash
# Fuzz the parsers with libFuzzer + ASan + UBSan (clang), seeded with the VM-config corpus.
#   fuzz/run.sh [SECONDS]     (default 60; a crash leaves crash-* files in fuzz/out)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
out=${PVH_FUZZ_OUT:-fuzz/out}
[ -z "${PVH_FUZZ_FRESH:-}" ] || rm -rf "$out/corpus"
mkdir -p "$out/corpus"
# the parsers and the layers below them, as the build's layer folders hold them
srcs=(src/base/*.c src/host/*.c src/formats/*.c src/model/*.c src/pve/*.c)
incs=(-Isrc/base -Isrc/host -Isrc/formats -Isrc/model -Isrc/pve)
clang -g -O1 -std=gnu11 -D_GNU_SOURCE -DPVH_VERSION='"fuzz"' "${incs[@]}" \
    -Werror=implicit-function-declaration -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    fuzz/fuzz_parsers.c "${srcs[@]}" $(pkg-config --cflags --libs json-c libsystemd) -o "$out/fuzz_parsers"
# seeds: every corpus config as a VM config input (selector byte 0)
for f in tests/data/corpus/qemu-server-test-configs/*.conf; do
    { printf '\000'; cat "$f"; } >"$out/corpus/$(basename "$f")"
done
printf '\001{"policy": "mixed-size", "vms": {"100": {"type": "P40-1Q", "gpus": {"pve1": ["06:00.0"]}}}}' >"$out/corpus/json"
printf '\0020000:06:00.0,mdev=nvidia-46,pcie=1' >"$out/corpus/hostpci"
printf '\005vgpu\n\tmap node=pve1,path=0000:41:00.4;0000:41:00.5,id=10de:2235\n\ndir: local\n\tpath /var/lib/vz\n' >"$out/corpus/sectioncfg"
printf '\005a40\n\tmap node=pve1,path=0000:41:00.0,id=10de:2235\n\nvgpu-hook-2\n\tdescription d\n\tmdev 1' >"$out/corpus/mapping"
printf '\007# overrides\n[profile.nvidia-46]\nframebuffer = "896MiB"\ncard_name = '"'"'x'"'"'\n\n[vm.100]\n# managed by pve-vgpu-hook\nfrl_enabled = 0\n' >"$out/corpus/toml"
printf '\007[mdev."00000000-0000-0000-0000-000000000100"]\npci_id = 0x1B38_10DE\nx = true # c\n' >"$out/corpus/toml2"
printf '\011UPID:pve1:00001234:00ABCDEF:6553F10A:qmstart:101:root@pam: 6553F10F start failed: QEMU exited with code 1\nUPID:pve1:00001234:00ABCDEF:6553F10A:qmstart:101:root@pam: 1 6553F10F OK\nkvm: x\nTASK ERROR: y\n' >"$out/corpus/tasks"
printf '\012notice: vmiop_env_log: (0x0): Received start call from nvidia-vgpu-vfio module: mdev uuid 00000000-0000-0000-0000-000000000101 GPU PCI id 00:01:00.0\n[nvidia-vgpu-vfio] 00000000-0000-0000-0000-000000000101: start failed. status: 0x1 Applying proxmox VMID 101 profile overrides NVRM: Xid (PCI:0000:41:00.4): 79' >"$out/corpus/vgpulog"
printf '\006ID : vGPU Name\n1414 : NVIDIA L40S-2Q\n' >"$out/corpus/creatable"
# The suite's run (PVH_FUZZ_FRESH=1) starts from the seeds each time, so it is repeatable; run
# by hand, the corpus grows across runs. Crash reproducers stay in $out.
"$out/fuzz_parsers" -max_total_time="$secs" -max_len=16384 -artifact_prefix="$out/" \
    -print_final_stats=1 "$out/corpus" 2>&1 | tail -25
status=${PIPESTATUS[0]}
echo "fuzz: $([ "$status" -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed") (${secs}s)"
exit "$status"
