#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds (incrementally, in build/ and
# build-asan/), runs every test normally and again under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
status=0
for variant in build:OFF build-asan:ON; do
    dir=${variant%%:*} san=${variant##*:}
    echo "== $dir (sanitizers: $san)"
    cmake -S . -B "$dir" -DPVH_SANITIZE="$san" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$dir" -j"$jobs" >/dev/null
    (cd "$dir" && ctest --output-on-failure -j"$jobs") || status=1
done
exit $status
