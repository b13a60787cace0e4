#!/usr/bin/env bash
# The real-stack rig: boots Debian's own kernel under QEMU (TCG, no KVM, no network) with the
# host's root read-only over virtio-9p, and runs PinBridge's flows through the kernel's real
# USB stack (dummy_hcd + libcomposite + FunctionFS gadget <-> usbcore/usbfs/libusb/rusb) and
# the real Bluetooth stack (hci_vhci + btvirt + bluetoothd: bluer peripheral <-> btleplug).
# The guest runs this checkout's debug binaries from the shared target dir. Every VM run is
# bounded by `timeout`; the VM and everything it started go when the script exits.
# The last line of the output is "N passed, M failed". Both stacks run by default, in one VM
# (PINBRIDGE_RIG_STACKS=usb,ble); PINBRIDGE_RIG_STACKS=usb (or ble) runs one of them.
# PINBRIDGE_RIG_STACKS=usb,ble,conformance adds the conformance kit against a test unit over USB
# (75 cases; opt-in while its timing cases under TCG have only a few runs behind them).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

kdir=$(bash scripts/vm/setup.sh | tail -n1)
source scripts/env.sh
cargo build -q -p bank-sandbox -p device-sim -p companion --bins --example real_stack_ping
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

# Not under /tmp: the guest mounts a tmpfs of its own there.
mkdir -p "$HOME/.cache/pinbridge/vm"
work=$(mktemp -d "$HOME/.cache/pinbridge/vm/run.XXXXXX")
# The shared target dir is rebuilt by other checkouts: the guest runs links to this build.
bin="$work/bin"
mkdir -p "$bin"
for name in bank-sandbox pinpad-sim pinbridge examples/real_stack_ping; do
  cp -l "$CARGO_TARGET_DIR/debug/$name" "$bin/" 2>/dev/null || cp "$CARGO_TARGET_DIR/debug/$name" "$bin/"
done
# PINBRIDGE_RIG_APP: a desktop app binary for the "app" stack (scripts/app-usb.sh).
if [ -n "${PINBRIDGE_RIG_APP:-}" ]; then cp "$PINBRIDGE_RIG_APP" "$bin/pinbridge-app"; fi

# What needs no kernel stack is made here, natively: the bank's database and keys, the
# issuing CA, the manufactured PIN pad, the identities the bank allows.
prep="$work/prep"
mkdir -p "$prep"
serial=RIG-1
"$bin/bank-sandbox" seed --database "sqlite://$prep/bank.db" >/dev/null
"$bin/bank-sandbox" keys --database "sqlite://$prep/bank.db" >"$prep/bank-keys.json"
"$bin/pinpad-sim" ca new --out "$prep/ca.json" >"$prep/ca.pub"
"$bin/pinpad-sim" init --serial "$serial" --state "$prep/device.json" --ca-key "$prep/ca.json" \
  --bank-keys "$prep/bank-keys.json" >/dev/null
"$bin/pinpad-sim" info --state "$prep/device.json" \
  | sed -n 's/^  "firmware_hash": "\([0-9a-f]*\)".*/\1/p' >"$prep/firmware"
sha256sum "$bin/pinbridge" | cut -d' ' -f1 >"$prep/app" # the app measures its own executable
echo "$serial" >"$prep/serial"
# The conformance kit's test unit: its own test bank (the kit signs Initialise, Enrol and
# OperatorReset as that bank and resets the unit).
"$bin/pinbridge" conformance new-test-bank --out "$prep/test-bank.json" >/dev/null
"$bin/pinpad-sim" init --serial RIG-CONF --state "$prep/conf-device.json" --ca-key "$prep/ca.json" \
  --bank-keys "$prep/test-bank.json" >/dev/null
qemu_pid=""
cleanup() {
  if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then kill "$qemu_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
mkdir -p "$work/results"
bash scripts/vm/initramfs.sh "$kdir" "$work/initrd.gz"

run_vm() { # stage-2 script
  local started=$SECONDS
  timeout --kill-after=10 "${PINBRIDGE_VM_TIMEOUT:-840}" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp 2 -m 2048 \
    -nographic -no-reboot -nic none -serial file:"$work/console.log" -monitor none \
    -kernel "$kdir"/root/boot/vmlinuz-* -initrd "$work/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 pinbridge.script=$1 pinbridge.bin=$bin pinbridge.modules=$kdir/root/lib/modules pinbridge.prep=$prep pinbridge.stacks=${PINBRIDGE_RIG_STACKS:-usb,ble} pinbridge.trace=${PINBRIDGE_RIG_TRACE:-} pinbridge.repo=$repo pinbridge.tools=${PINBRIDGE_TOOLS:-$HOME/.cache/pinbridge/tools}/bin" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path="$work/results",mount_tag=results,security_model=none,multidevs=remap &
  qemu_pid=$!
  local status=0
  wait "$qemu_pid" || status=$?
  qemu_pid=""
  echo "rig: VM for $(basename "$1") exited with status $status after $((SECONDS - started)) s" >&2
}

run_vm "$repo/scripts/vm/guest.sh"
cat "$work/results/guest.log" 2>/dev/null || { echo "rig: no guest log; console:" >&2; tail -n 40 "$work/console.log" >&2; }

passed=$(grep -c '^PASS' "$work/results/checks" 2>/dev/null || true)
failed=$(grep -c '^FAIL' "$work/results/checks" 2>/dev/null || true)
[ -s "$work/results/checks" ] || failed=$((failed + 1))
grep '^FAIL' "$work/results/checks" 2>/dev/null || true
if [ -s "$work/results/bench" ]; then
  echo "rig: figures (TCG under a shared CPU: not hardware times)"
  cat "$work/results/bench"
fi
# PINBRIDGE_RIG_KEEP=DIR: the guest's results (logs, traces) are copied there.
if [ -n "${PINBRIDGE_RIG_KEEP:-}" ]; then mkdir -p "$PINBRIDGE_RIG_KEEP" && cp -r "$work/results/." "$PINBRIDGE_RIG_KEEP/"; fi
if [ -n "${PINBRIDGE_RIG_SHOT_DIR:-}" ] && [ -s "$work/results/app-usb.png" ]; then
  cp "$work/results/app-usb.png" "$PINBRIDGE_RIG_SHOT_DIR/"
fi
echo "${passed:-0} passed, ${failed:-0} failed"
[ "${failed:-0}" -eq 0 ]
