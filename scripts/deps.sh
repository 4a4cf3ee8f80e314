#!/usr/bin/env bash
# Install what building and testing pve-vgpu-hook needs, only what is missing (Debian 12 /
# Proxmox VE). Re-running is cheap: nothing is downloaded when everything is there.
set -euo pipefail
pkgs=(cmake gcc make pkg-config libjson-c-dev libcmocka-dev libsystemd-dev)
pkgs+=("$@")
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
