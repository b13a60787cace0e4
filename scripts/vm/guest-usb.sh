#!/bin/bash
# Stage 2 of the rig, inside the VM (root, the host's userspace on a tmpfs overlay): the real
# USB stack end to end. dummy_hcd is both a USB device controller and a host controller in
# one kernel: pinpad-sim binds its gadget (configfs + FunctionFS) to the device side, and
# `pinbridge` finds it on the host side through usbcore -> usbfs -> libusb -> rusb, with
# systemd-udevd feeding libusb's hotplug. The sandbox bank runs on loopback in the VM.
# Writes one line per check to /results/checks ("PASS name" / "FAIL name: why").
set -u
param() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p"; }
BIN=$(param pinbridge.bin)
RESULTS=/results
CHECKS=$RESULTS/checks
: >"$CHECKS"
PIN=739164820573
WRONG_PIN=482605
SERIAL=$(cat "$(param pinbridge.prep)/serial")
W=/tmp/rig
mkdir -p "$W"
t0=$(date +%s%N)
say() { printf '[%6d ms] %s\n' $(( ($(date +%s%N) - t0) / 1000000 )) "$*"; }
pass() { echo "PASS $1" >>"$CHECKS"; say "PASS $1"; }
fail() { echo "FAIL $1: $2" >>"$CHECKS"; say "FAIL $1: $2"; }

ip link set lo up
for m in dummy_hcd libcomposite usb_f_fs; do modprobe "$m" || { fail setup "modprobe $m"; exit 1; }; done
mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
/lib/systemd/systemd-udevd --daemon
udevadm trigger --action=add && udevadm settle --timeout=30
UDC=$(ls /sys/class/udc | head -n1)
say "kernel $(uname -r), UDC $UDC"

# Waits (bounded) until a command succeeds: the rig waits for a state, not for a time.
wait_for() { # seconds what command...
  local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { say "timed out waiting for $what"; return 1; }
    sleep 0.05
  done
}
# Starts a server in the background; waits for its line starting with PREFIX; prints the rest.
start_server() { # name prefix command...
  local name=$1 prefix=$2; shift 2
  "$@" >"$W/$name.out" 2>&1 &
  local pid=$!
  echo $pid >"$W/$name.pid"
  started() { grep -q "^$prefix" "$W/$name.out" || ! kill -0 "$pid"; }
  wait_for 120 "$name to start" started && grep -q "^$prefix" "$W/$name.out" \
    || { cat "$W/$name.out" >&2; return 1; }
  grep "^$prefix" "$W/$name.out" | head -n1 | cut -c$(( ${#prefix} + 1 ))-
}

# The bank's database, the device's manufacture and the CA were made on the host (natively:
# seconds instead of a minute of TCG); they are copied out of the read-only share.
cp -a "$(param pinbridge.prep)"/. "$W"/
DB="sqlite://$W/bank.db"
CA=$(cat "$W/ca.pub")
FIRMWARE=$(cat "$W/firmware")
APP=$(cat "$W/app")
keys() { for ((i = 0; i < ${#1}; i++)); do printf '"%s", ' "${1:i:1}"; done; }
cat >"$W/scenario.toml" <<TOML
[[device]]
index = 0
[[device.step]]
on = "pin"
keys = [$(keys $PIN)"enter", $(keys $PIN)"enter"]
[[device.step]]
on = "confirm"
confirm = true
[[device.step]]
on = "pin"
pin = "$PIN"
[[device.step]]
on = "pin"
pin = "$WRONG_PIN"
[[device.step]]
on = "pin"
digits = "73"
[[device.step]]
on = "idle"
[[device.step]]
on = "pin"
pin = "$PIN"
[[device.step]]
on = "pin"
pin = "$PIN"
[[device.step]]
on = "pin"
digits = "12"
[[device.step]]
on = "pin"
digits_entered = 2
tamper = true
TOML

BANK=$(start_server bank "bank-sandbox: listening on " "$BIN/bank-sandbox" serve --database "$DB" \
  --listen 127.0.0.1:0 --trust-ca "$CA" --allow-firmware "$FIRMWARE" --allow-app "$APP") \
  || { fail setup "bank did not start"; exit 1; }
start_server sim "control " "$BIN/pinpad-sim" serve --state "$W/device.json" --usb-gadget "$UDC" \
  --listen 127.0.0.1:0 --control 127.0.0.1:0 --scenario "$W/scenario.toml" >"$W/control" \
  || { fail setup "pinpad-sim did not start"; exit 1; }
CONTROL=$(cat "$W/control")
SIMLINK=$(sed -n 's/^device 0 .* link //p' "$W/sim.out")
say "bank $BANK, control $CONTROL, sim link $SIMLINK"

export PINBRIDGE_BANK_URL=$BANK PINBRIDGE_STATE_DIR=$W/state PINBRIDGE_DEVICE=$SERIAL
export PINBRIDGE_STAFF_USER=teller PINBRIDGE_STAFF_PASSWORD=teller-password
# Unplug and replug: the gadget is unbound from the controller and bound again (configfs), as
# when the cable is pulled; the host side sees a disconnect and later a new enumeration.
gadget_udc() { grep -l "^$UDC\$" /sys/kernel/config/usb_gadget/*/UDC | head -n1; }
unplug() { GADGET_UDC=$(gadget_udc); echo "" >"$GADGET_UDC"; say "unplugged (gadget unbound from $UDC)"; }
replug() { echo "$UDC" >"$GADGET_UDC"; say "replugged (gadget bound to $UDC)"; }
device_state() { curl -fsS "$CONTROL/devices/0"; }
journal() { sqlite3 -readonly "$W/bank.db" 'SELECT COUNT(*) FROM journal;'; }
enumerated() { lsusb -d 1209:0001 >/dev/null; }
# pinbridge ARGS: output in $W/out, status in $?; bounded.
pb() { RUST_LOG=${RUST_LOG:-warn} timeout 120 "$BIN/pinbridge" "$@" >"$W/out" 2>&1; }
PAY=(--json pay --to FR7630006000011234567890189 --payee-name "Shop SARL" --amount 12.34 --currency EUR)

if wait_for 60 "the PIN pad on the USB bus" enumerated; then
  pass "usb: the gadget enumerates as 1209:0001 with serial $SERIAL"
  lsusb -v -d 1209:0001 2>/dev/null | grep -E "iSerial|bInterfaceClass|wMaxPacketSize|bmAttributes|Transfer Type" | head -n 12
else
  fail "usb: enumeration" "no 1209:0001 on the bus"; exit 1
fi
pb devices && grep -q "$SERIAL" "$W/out" && pass "usb: pinbridge devices lists the PIN pad" \
  || fail "usb: pinbridge devices" "$(cat "$W/out")"

for step in "staff init:staff init" "staff enrol:staff enrol --customer alice" "pair:pair --name RIG-PC" "login:login"; do
  name=${step%%:*}
  # shellcheck disable=SC2086
  if pb ${step#*:}; then pass "usb: $name"; else fail "usb: $name" "$(tail -n 5 "$W/out")"; fi
done

before=$(journal)
started=$(date +%s%N)
if pb "${PAY[@]}" && grep -q '"bankResult":"approved"' "$W/out"; then
  usb_payment_ms=$(( ($(date +%s%N) - started) / 1000000 ))
  pass "usb: payment approved ($(( $(journal) - before )) journal entry)"
else fail "usb: payment approved" "$(tail -n 5 "$W/out")"; fi

before=$(journal)
if ! pb "${PAY[@]}" && grep -q "pin_incorrect" "$W/out" && [ "$(journal)" = "$before" ]; then
  pass "usb: wrong PIN refused, nothing paid"
else fail "usb: wrong PIN" "$(tail -n 5 "$W/out")"; fi

# Unplug during PIN entry: two digits typed, then the gadget leaves the bus.
before=$(journal)
pb "${PAY[@]}" &
pay=$!
if wait_for 120 "two PIN digits" sh -c "curl -fsS $CONTROL/devices/0 | grep -q '\"pin_digits_entered\":2'"; then
  unplug
fi
wait $pay; status=$?
say "pay after unplug: status $status: $(tail -n 3 "$W/out")"
if [ $status -ne 0 ] && grep -qi "unplugged" "$W/out" && [ "$(journal)" = "$before" ]; then
  pass "usb: unplug during PIN entry fails clearly (unplugged), nothing paid"
else fail "usb: unplug during PIN entry" "status $status: $(tail -n 3 "$W/out")"; fi

# Replug: a payment started while the PIN pad is away waits for it and carries on.
pb "${PAY[@]}" &
pay=$!
wait_for 60 "pinbridge to wait for the PIN pad" grep -q "waiting for the PIN pad" "$W/out"
replug
wait_for 30 "the PIN pad back on the bus" enumerated && say "back: $(lsusb -d 1209:0001)"
wait $pay; status=$?
[ $status -eq 0 ] || { dmesg | tail -n 15; tail -n 15 "$W/sim.out"; lsusb; }
if [ $status -eq 0 ] && grep -q '"bankResult":"approved"' "$W/out"; then
  pass "usb: replug, automatic reconnect, second payment approved"
else fail "usb: replug and second payment" "status $status: $(tail -n 5 "$W/out")"; fi

# Figures: the same device over USB and over the sim link in this VM (docs/BENCHMARKS.md).
BENCH=$RESULTS/bench
for device in "$SERIAL" "sim:$SIMLINK"; do
  if timeout 120 "$BIN/real_stack_ping" "$device" 200 >>"$BENCH" 2>"$W/ping.err"; then
    pass "bench: 200 one-packet round trips over $device"
  else fail "bench: round trips over $device" "$(tail -n 3 "$W/ping.err")"; fi
done
started=$(date +%s%N)
if PINBRIDGE_DEVICE=sim:$SIMLINK pb "${PAY[@]}" && grep -q '"bankResult":"approved"' "$W/out"; then
  sim_payment_ms=$(( ($(date +%s%N) - started) / 1000000 ))
  echo "{\"payment_end_to_end_ms\":{\"usb\":${usb_payment_ms:-null},\"sim\":$sim_payment_ms}}" >>"$BENCH"
  pass "sim link: the same PIN pad pays over the sim link beside USB"
else fail "sim link: payment" "$(tail -n 5 "$W/out")"; fi

before=$(journal)
if ! pb "${PAY[@]}" && [ "$(journal)" = "$before" ] && device_state | grep -q '"tampered":true'; then
  pass "usb: tamper mid-payment refused, nothing paid"
else fail "usb: tamper mid-payment" "$(tail -n 5 "$W/out"; device_state)"; fi

kill -TERM "$(cat "$W/sim.pid")" "$(cat "$W/bank.pid")" 2>/dev/null
wait
say "done"
