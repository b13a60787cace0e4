#!/usr/bin/env bash
# What the real-stack VM rig (scripts/real-stack-test.sh) needs on a Debian 12 machine, fetched
# once: QEMU (TCG: the rig needs no KVM), busybox for the guest's init, the kernel module tools,
# and the userspace of the real stacks the guest runs off the host's own root (udev for libusb
# hotplug, usbutils, BlueZ with btvirt, D-Bus). Then Debian's own kernel, downloaded and
# unpacked (not installed) into ~/.cache/pinbridge/vm, with its module index built there.
#
# Note: Debian's qemu-system-x86 depends on Debian 12's qemu-utils 7.2; on a machine that has
# the backported qemu-utils, apt replaces it with 7.2 (the rig needs nothing newer).
# Idempotent: each step checks first. Prints the kernel's directory on stdout.
set -euo pipefail

VM_CACHE="${PINBRIDGE_VM_CACHE:-$HOME/.cache/pinbridge/vm}"
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=()
for pkg in qemu-system-x86 busybox-static cpio kmod usbutils udev dbus bluez bluez-test-tools; do
  have_pkg "$pkg" || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "vm-setup: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    --allow-downgrades "${need[@]}" >/dev/null
fi

mkdir -p "$VM_CACHE"
# The kernel linux-image-amd64 points at (Debian's current 6.1 stable kernel).
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "vm-setup: apt knows no linux-image-amd64 (apt-get update?)" >&2; exit 1; }
kdir="$VM_CACHE/$kpkg"
if [ ! -f "$kdir/ready" ]; then
  echo "vm-setup: fetching $kpkg (about 70 MB, once)" >&2
  rm -rf "$kdir" && mkdir -p "$kdir/deb"
  (cd "$kdir/deb" && apt-get download "$kpkg" >/dev/null)
  dpkg-deb -x "$kdir"/deb/*.deb "$kdir/root"
  rm -rf "$kdir/deb"
  release=$(ls "$kdir/root/lib/modules")
  depmod -b "$kdir/root" "$release"
  touch "$kdir/ready"
fi
echo "$kdir"
