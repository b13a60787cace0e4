#!/usr/bin/env bash
# Builds the rig's tiny initramfs: static busybox, the kernel modules needed to mount the
# host's root over virtio-9p with a tmpfs overlay (in load order), and scripts/vm/init.
# Usage: initramfs.sh KERNEL_DIR OUT.cpio.gz
set -euo pipefail
kdir=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
release=$(ls "$kdir/root/lib/modules")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,modules,host,upper,newroot}
cp /bin/busybox "$stage/bin/busybox"
cp "$here/init" "$stage/init"
chmod +x "$stage/init"
: >"$stage/modules/order"
for module in virtio_pci 9pnet_virtio 9p overlay; do
  modprobe -d "$kdir/root" -S "$release" --show-depends "$module" | while read -r verb path _; do
    [ "$verb" = insmod ] || continue
    name=$(basename "$path")
    if ! grep -qx "$name" "$stage/modules/order"; then
      cp "$path" "$stage/modules/$name"
      echo "$name" >>"$stage/modules/order"
    fi
  done
done
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
