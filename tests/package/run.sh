#!/usr/bin/env bash
# The Debian package, end to end:
#   tests/package/run.sh MKFAKEHOST
# builds pve-vgpu-hook_<version>_amd64.deb from the committed tree with dpkg-buildpackage (the
# unit tests run during the build), requires lintian to report no error and no warning, installs
# the package into a fresh Debian 12 root made with debootstrap (cached as a tarball; when
# debootstrap cannot run, the test fails: every check below needs that root), and runs the
# installed files there: --version, types on a simulated host, the man page and the bash
# completion, that the metrics timer ships disabled and the publish timer enabled. All 17
# checks must run.
# Cache: $PVH_CACHE_DIR (default: ~/.cache/pve-vgpu-hook, outside the clone, so that every
# fresh clone on this machine, as CI makes one, reuses the downloads).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
MK=$(readlink -f "$1")
cache=${PVH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pve-vgpu-hook}
work=$(mktemp -d)
trap '[ -n "${PVH_KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
passed=0 failed=0
ok() { echo "RESULT PASS $1"; passed=$((passed + 1)); }
bad() { echo "RESULT FAIL $1: $2"; failed=$((failed + 1)); }
finish() { echo "package: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

"$repo/scripts/deps.sh" debhelper dpkg-dev lintian debootstrap fakeroot

# ---- build from what git tracks (plus uncommitted edits), like a fresh clone
mkdir -p "$work/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - --no-recursion) |
    tar -xf - -C "$work/src"
ver=$(dpkg-parsechangelog -l "$repo/debian/changelog" -S Version)
deb=$work/pve-vgpu-hook_${ver}_amd64.deb
if (cd "$work/src" && DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1); then
    ok "dpkg-buildpackage"
else
    tail -40 "$work/build.log"
    bad "dpkg-buildpackage" "see the build log above"
    finish
fi
grep -q '100% tests passed' "$work/build.log" && ok "unit tests ran in the build" ||
    bad "unit tests ran in the build" "no ctest summary in the build log"

# ---- lintian: no errors, no warnings (overrides are justified in debian/*.lintian-overrides)
if lintian --fail-on error,warning "$deb" >"$work/lintian.log" 2>&1; then
    ok "lintian clean"
else
    cat "$work/lintian.log"
    bad "lintian clean" "lintian reported errors or warnings"
fi

# ---- install into a fresh Debian 12 root
tarball=$cache/debootstrap-bookworm-minbase.tar
root=$work/root
mkdir -p "$cache" "$root"
if [ ! -s "$tarball" ]; then
    if debootstrap --variant=minbase --include=libjson-c5,bash-completion,man-db \
        bookworm "$work/dbs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1; then
        tar -C "$work/dbs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$work/dbs"
    else
        tail -20 "$work/debootstrap.log"
        bad "debootstrap a Debian 12 root" "see its log above"
        finish
    fi
fi
tar -C "$root" -xf "$tarball"
cp "$deb" "$root/tmp/"
if chroot "$root" dpkg -i "/tmp/${deb##*/}" >"$work/install.log" 2>&1; then
    ok "dpkg -i into a fresh Debian 12 root"
else
    cat "$work/install.log"
    bad "dpkg -i into a fresh Debian 12 root" "see above"
fi
in_root() { chroot "$root" "$@"; }
fixture=/tmp/fixture

# ---- the installed files work
"$MK" "$root/tmp/fixture" >/dev/null
out=$(in_root /usr/bin/pve-vgpu-hook --version 2>&1) &&
    [ "$out" = "pve-vgpu-hook $ver" ] && ok "--version" || bad "--version" "$out"
out=$(in_root /usr/bin/pve-vgpu-hook --root "$fixture" types 2>&1) &&
    grep -q 'nvidia-46    GRID P40-1Q' <<<"$out" && ok "types --root fixture" || bad "types --root fixture" "$out"
for f in /usr/share/man/man8/pve-vgpu-hook.8.gz /usr/share/bash-completion/completions/pve-vgpu-hook \
    /usr/share/doc/pve-vgpu-hook/examples/vgpu-hook.json /usr/share/doc/pve-vgpu-hook/README.md.gz \
    /usr/share/pve-vgpu-hook/json/check.schema.json /usr/share/pve-vgpu-hook/json/types.schema.json; do
    [ -s "$root$f" ] && ok "installed $f" || bad "installed $f" "missing"
done
out=$(in_root bash -c 'source /usr/share/bash-completion/bash_completion;
    source /usr/share/bash-completion/completions/pve-vgpu-hook; complete -p pve-vgpu-hook' 2>&1) &&
    grep -q '_pve_vgpu_hook' <<<"$out" && ok "bash completion loads" || bad "bash completion loads" "$out"
out=$(in_root man -l /usr/share/man/man8/pve-vgpu-hook.8.gz 2>&1 | head -20) &&
    grep -q 'HOOKSCRIPT CONTRACT' <<<"$(in_root zcat /usr/share/man/man8/pve-vgpu-hook.8.gz)" &&
    ok "man page" || bad "man page" "$out"
# the metrics timer ships, and stays off until the admin enables it
# (as dpkg lists them: on Debian 12's merged /usr, /lib/... and /usr/lib/... are one file)
units=$(in_root dpkg -L pve-vgpu-hook | grep -E '/systemd/system/pve-vgpu-hook-metrics\.(service|timer)$' |
    while read -r f; do [ -s "$root$f" ] && echo "$f"; done | wc -l)
[ "$units" -eq 2 ] && ok "installed the metrics service and timer" ||
    bad "installed the metrics service and timer" "$units of 2 unit files"
enabled=$(find "$root/etc/systemd/system" -name 'pve-vgpu-hook-metrics*' 2>/dev/null)
[ -z "$enabled" ] && ok "metrics timer not enabled" || bad "metrics timer not enabled" "$enabled"
# the publish timer ships enabled: the cluster view needs every node's inventory
enabled=$(find "$root/etc/systemd/system" -name 'pve-vgpu-hook-publish.timer' 2>/dev/null)
[ -n "$enabled" ] && ok "publish timer enabled" || bad "publish timer enabled" "not linked in /etc/systemd/system"
# every check above ran: a count that shrinks means a check silently went away
[ "$passed" -eq 17 ] || bad "all 17 checks ran" "only $passed passed"
finish
