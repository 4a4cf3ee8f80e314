#!/usr/bin/env bash
# Fuzz the parsers with libFuzzer + ASan + UBSan (clang), seeded with the VM-config corpus.
#   fuzz/run.sh [SECONDS]     (default 60; a crash leaves crash-* files in fuzz/out)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
out=fuzz/out
mkdir -p "$out/corpus"
srcs=(src/log.c src/strutil.c src/hostfs.c src/debver.c src/vgpu_type.c src/mdev_uuid.c
      src/pveconf.c src/qemu_args.c src/sectioncfg.c src/config.c src/mdev.c src/inventory.c)
clang -g -O1 -std=gnu11 -D_GNU_SOURCE -DPVH_VERSION='"fuzz"' -Isrc \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    fuzz/fuzz_parsers.c "${srcs[@]}" $(pkg-config --cflags --libs json-c uuid) -o "$out/fuzz_parsers"
# seeds: every corpus config as a VM config input (selector byte 0)
for f in tests/data/corpus/qemu-server-test-configs/*.conf; do
    { printf '\000'; cat "$f"; } >"$out/corpus/$(basename "$f")"
done
printf '\001{"policy": "mixed-size", "vms": {"100": {"type": "P40-1Q", "gpus": {"pve1": ["06:00.0"]}}}}' >"$out/corpus/json"
printf '\0030000:06:00.0,mdev=nvidia-46,pcie=1' >"$out/corpus/hostpci"
"$out/fuzz_parsers" -max_total_time="$secs" -max_len=8192 -artifact_prefix="$out/" "$out/corpus"
