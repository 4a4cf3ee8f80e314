#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds (incrementally, in build/ and
# build-asan/), runs every test normally and again under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
# everything the tests use, before any test runs (ctest runs them in parallel): mdevctl for
# the agreement tests, QEMU and busybox for the kernel test, the Debian tools for the package,
# promtool (Debian's prometheus) for the metrics test, systemd-journal-remote to write the
# diagnose test's journal files, universal-ctags for the function length check
scripts/deps.sh mdevctl qemu-system-x86 busybox-static cpio libelf1 \
    debhelper dpkg-dev lintian debootstrap fakeroot clang-format clang prometheus \
    python3-jsonschema systemd-journal-remote universal-ctags
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
