#!/bin/bash
# Stage 2 of the rig, inside the VM (root, the host's userspace on a tmpfs overlay): the same
# flows through each real stack named on the kernel command line (pinbridge.stacks, default
# "usb ble"), each with a fresh bank and a freshly manufactured PIN pad.
# - usb: dummy_hcd is a USB device controller and a host controller in one kernel: pinpad-sim
#   binds its gadget (configfs + FunctionFS) to the device side, and `pinbridge` finds it on
#   the host side through usbcore -> usbfs -> libusb -> rusb, with systemd-udevd feeding
#   libusb's hotplug.
# - ble: hci_vhci + btvirt make two linked virtual LE controllers; bluetoothd and the system
#   D-Bus run as on a desktop; pinpad-sim is a GATT peripheral on the first (bluer), and
#   `pinbridge` (btleplug) is the central, on the adapter it chooses itself.
# The sandbox bank runs on the guest's loopback. One line per check goes to /results/checks
# ("PASS name" / "FAIL name: why"), figures to /results/bench.
set -u
param() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p"; }
BIN=$(param pinbridge.bin)
RESULTS=/results
CHECKS=$RESULTS/checks
: >"$CHECKS"
PIN=739164820573
WRONG_PIN=482605
SERIAL=$(cat "$(param pinbridge.prep)/serial")
t0=$(date +%s%N)
say() { printf '[%6d ms] %s\n' $(( ($(date +%s%N) - t0) / 1000000 )) "$*"; }
pass() { echo "PASS $1" >>"$CHECKS"; say "PASS $1"; }
fail() {
  echo "FAIL $1: $2" >>"$CHECKS"; say "FAIL $1: $2"
  # What the PIN pad's link saw last (its event log), to tell a lost packet from a stuck device.
  [ -n "${CONTROL:-}" ] && curl -fsS "$CONTROL/devices/0/events" 2>/dev/null | tr '}' '\n' | tail -n 25
}


# pinbridge ARGS: output in $PB_OUT (default $W/out), status in $?; bounded.
pb() { RUST_LOG=${RUST_LOG:-warn} timeout 120 "$BIN/pinbridge" "$@" >"${PB_OUT:-$W/out}" 2>&1; }
PAY=(--json pay --to FR7630006000011234567890189 --payee-name "Shop SARL" --amount 12.34 --currency EUR)
BENCH=$RESULTS/bench
: >"$BENCH"
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

ip link set lo up
/lib/systemd/systemd-udevd --daemon
udevadm trigger --action=add && udevadm settle --timeout=30
say "kernel $(uname -r)"

# USB: the gadget on dummy_hcd's device side. Unplug and replug: the gadget is unbound from
# the controller and bound again (configfs), as when the cable is pulled; the host side sees a
# disconnect and later a new enumeration.
setup_usb() {
  for m in dummy_hcd libcomposite usb_f_fs; do modprobe "$m" || return 1; done
  mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
  udevadm settle --timeout=30
  UDC=$(ls /sys/class/udc | head -n1)
  SIM_FLAGS=(--usb-gadget "$UDC")
  GONE_WORD=unplugged
  AWAY=1 BACK="replug, automatic reconnect"
  say "usb: UDC $UDC"
}
# Presence checks run while a payment in the background writes $W/out: their own file.
present_usb() { lsusb -d 1209:0001 >/dev/null && PB_OUT=$W/devices pb devices && grep -q "$SERIAL" "$W/devices"; }
describe_usb() {
  lsusb -v -d 1209:0001 2>/dev/null | grep -E "idVendor|idProduct|iSerial|bInterfaceClass|Transfer Type|wMaxPacketSize"
}
gadget_udc() { grep -l "^$UDC\$" /sys/kernel/config/usb_gadget/*/UDC | head -n1; }
unplug_usb() { GADGET_UDC=$(gadget_udc); echo "" >"$GADGET_UDC"; say "usb: unplugged (gadget unbound from $UDC)"; }
replug_usb() {
  [ -n "${GADGET_UDC:-}" ] || return 0
  echo "$UDC" >"$GADGET_UDC"
  say "usb: replugged (gadget bound to $UDC)"
}

# BLE: two virtual LE controllers linked by btvirt; the PIN pad advertises on the first. The
# link drops when the PIN pad ends it (its BlueZ disconnects the central, as a PIN pad walking
# out of range or dropping the link does); it advertises again at once (PROTOCOL.md §2.1.1),
# and the next command reconnects by itself.
setup_ble() {
  modprobe hci_vhci || return 1
  mkdir -p /run/dbus
  dbus-daemon --system --fork || return 1
  controllers() { [ "$(btmgmt info 2>/dev/null | grep -c -E '^hci[0-9]+:')" -ge 2 ]; }
  in_bluez() { [ "$(busctl tree org.bluez 2>/dev/null | grep -c -E '/org/bluez/hci[0-9]+$')" -ge 2 ]; }
  # Under TCG btvirt may answer a controller's first HCI Reset after the kernel's timeout
  # ("Opcode 0x0c03 failed: -110"): that controller never initialises. Closing /dev/vhci
  # removes both; a second start is fast (everything cached).
  # The kernel logs the timed-out command ("Opcode 0x0c03 failed: -110"): restart at once
  # instead of waiting out the attempt.
  init_failed() { dmesg | grep -q -E "Opcode 0x[0-9a-f]+ failed: -110"; }
  up_or_failed() { controllers || init_failed; }
  # pinbridge.trace (PINBRIDGE_RIG_TRACE=hci): every HCI packet of both controllers (btmon,
  # decoded by scripts/vm/att-trace.py); =all adds bluetoothd's debug log and the D-Bus
  # traffic of the GATT values (slow under TCG: it multiplies the latencies), all in /results,
  # to tell on which layer a packet went missing or was delayed.
  BLUETOOTHD_FLAGS=()
  local trace
  trace=$(param pinbridge.trace)
  if [ -n "$trace" ]; then btmon -w "$RESULTS/btmon.snoop" >/dev/null 2>&1 & fi
  if [ "$trace" = all ]; then
    dbus-monitor --system "type='signal',member='PropertiesChanged'" \
      "type='method_call',interface='org.bluez.GattCharacteristic1'" >"$RESULTS/dbus.log" 2>&1 &
    BLUETOOTHD_FLAGS=(-d)
  fi
  local attempt
  for attempt in 1 2 3; do
    dmesg -C
    btvirt -L -l2 >"$RESULTS/btvirt.log" 2>&1 &
    BTVIRT=$!
    wait_for 30 "two initialised Bluetooth controllers (attempt $attempt)" up_or_failed \
      && controllers && break
    say "ble: btvirt attempt $attempt: $(dmesg | grep -E 'hci[0-9]' | tail -n 2 | tr '\n' ' ')"
    kill "$BTVIRT"; wait "$BTVIRT" 2>/dev/null
    wait_for 10 "the controllers to go" sh -c '[ -z "$(ls /sys/class/bluetooth)" ]'
  done
  # One ATT bearer per link (no EATT): BlueZ 5.66 (Debian 12) opens two Enhanced ATT bearers
  # besides the fixed one and spreads notifications and writes over all three, so packets
  # overtake each other (a message's continuation packets reached the central before its
  # init packet: btmon, 2026-12-05). A PIN pad offers one bearer (PROTOCOL.md §2.1.1), as
  # BlueZ does by default from 5.67 on.
  printf '[GATT]\nChannels = 1\n' >/tmp/bluetoothd.conf
  # bluetoothd only once both controllers are initialised: one still initialising when
  # bluetoothd reads the list is left out.
  /usr/libexec/bluetooth/bluetoothd -n -f /tmp/bluetoothd.conf "${BLUETOOTHD_FLAGS[@]}" \
    >"$RESULTS/bluetoothd.log" 2>&1 &
  if ! wait_for 120 "bluetoothd with both controllers" in_bluez; then
    btmgmt info; dmesg | grep -i -E "hci|bluetooth" | tail -n 20
    ls -l /dev/vhci /sys/class/bluetooth; lsmod | grep -i -E "bt|bluetooth|vhci"
    tail -n 20 "$RESULTS/btvirt.log" "$RESULTS/bluetoothd.log"; busctl tree org.bluez
    return 1
  fi
  busctl tree org.bluez
  PERIPHERAL=$(ls /sys/class/bluetooth | sort | head -n1)
  CENTRAL=$(ls /sys/class/bluetooth | sort | tail -n1)
  SIM_FLAGS=(--ble "$PERIPHERAL")
  GONE_WORD=disconnected
  AWAY=0 BACK="link dropped, automatic reconnect"
  say "ble: controllers $(ls /sys/class/bluetooth | tr '\n' ' '), peripheral on $PERIPHERAL"
}
present_ble() { PB_OUT=$W/devices pb devices && grep -q "$SERIAL" "$W/devices"; }
describe_ble() { bluetoothctl list; grep -i "$SERIAL" "$W/devices"; }
# Not by powering the peripheral's controller off, as the rig did until 2026-12-05: btvirt
# emulates both controllers in one process, and a powered-off hci0 kept advertising (the
# kernel's power-off leaves a registered advertisement enabled, hci_vhci sends no HCI Reset on
# close, and the link drop makes the kernel re-enable advertising as it closes: dmesg
# "Opcode 0x2006 failed: -22"), so the next payment heard the PIN pad, connected to a
# controller with no host and failed; clearing that by connecting to it once crashed the
# guest kernel's Bluetooth stack (list_del corruption). A real controller is silent once off.
address_of() { btmgmt --index "${1#hci}" info 2>/dev/null | sed -n 's/^[[:space:]]*addr \([0-9A-F:]*\).*/\1/p' | head -n1; }
unplug_ble() {
  local central
  central=$(address_of "$CENTRAL")
  busctl call org.bluez "/org/bluez/$PERIPHERAL/dev_${central//:/_}" org.bluez.Device1 Disconnect
  say "ble: link dropped ($PERIPHERAL disconnected the central $central)"
}
# The PIN pad advertises again by itself: nothing to plug back.
replug_ble() { :; }

run_stack() {
  S=$1
  W=/tmp/rig-$S
  mkdir -p "$W"
  present() { "present_$S"; }
  describe() { "describe_$S"; }
  unplug() { "unplug_$S"; }
  replug() { "replug_$S"; }
  "setup_$S" || { fail "$S: setup" "the stack did not come up"; return 1; }
  # The bank's database, the device's manufacture and the CA were made on the host (natively:
  # seconds instead of a minute of TCG); they are copied out of the read-only share.
  cp -a "$(param pinbridge.prep)"/. "$W"/
  DB="sqlite://$W/bank.db"
  CA=$(cat "$W/ca.pub")
  FIRMWARE=$(cat "$W/firmware")
  APP=$(cat "$W/app")
  cat >"$W/scenario.toml" <<TOML
[[device]]
index = 0
[[device.step]]
on = "pin"
pin = "$PIN"
[[device.step]]
on = "pin"
pin = "$PIN"
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
    || { fail "$S: setup" "bank did not start"; return 1; }
  start_server sim "control " env RUST_LOG=info "$BIN/pinpad-sim" serve --state "$W/device.json" "${SIM_FLAGS[@]}" \
    --listen 127.0.0.1:0 --control 127.0.0.1:0 --scenario "$W/scenario.toml" >"$W/control" \
    || { fail "$S: setup" "pinpad-sim did not start"; return 1; }
  CONTROL=$(cat "$W/control")
  SIMLINK=$(sed -n 's/^device 0 .* link //p' "$W/sim.out")
  say "bank $BANK, control $CONTROL, sim link $SIMLINK"

  export PINBRIDGE_BANK_URL=$BANK PINBRIDGE_STATE_DIR=$W/state PINBRIDGE_DEVICE=$SERIAL
  export PINBRIDGE_STAFF_USER=teller PINBRIDGE_STAFF_PASSWORD=teller-password
  # The guest has no Secret Service: the pairing store is sealed under a passphrase
  # (docs/SECURITY.md, "Pairing keys at rest"); the log stays beside the run.
  export PINBRIDGE_KEYSTORE_PASSPHRASE=real-stack-rig PINBRIDGE_LOG_DIR=$W/logs
  device_state() { curl -fsS "$CONTROL/devices/0"; }
  journal() { sqlite3 -readonly "$W/bank.db" 'SELECT COUNT(*) FROM journal;'; }

  if wait_for 90 "the PIN pad to be present" present; then
    pass "$S: the PIN pad is present with serial $SERIAL"
    describe
  else
    fail "$S: presence" "no PIN pad with serial $SERIAL"; return 1
  fi
  # One listing is one scan (2 s): under TCG a BLE scan can miss BlueZ's advertisements
  # (1.28 s apart), so the listing is asked for again, bounded.
  lists() { pb devices && grep -q "$SERIAL" "$W/out"; }
  wait_for 60 "pinbridge devices to list the PIN pad" lists && pass "$S: pinbridge devices lists the PIN pad" \
    || fail "$S: pinbridge devices" "$(cat "$W/out")"

  for step in "staff init:staff init" "staff enrol:staff enrol --customer alice" "pair:pair --name RIG-PC" "login:login"; do
    name=${step%%:*}
  # shellcheck disable=SC2086
    if pb ${step#*:}; then pass "$S: $name"; else fail "$S: $name" "$(tail -n 5 "$W/out")"; fi
  done

  before=$(journal)
  started=$(date +%s%N)
  if pb "${PAY[@]}" && grep -q '"bankResult":"approved"' "$W/out"; then
    stack_payment_ms=$(( ($(date +%s%N) - started) / 1000000 ))
    pass "$S: payment approved ($(( $(journal) - before )) journal entry)"
  else fail "$S: payment approved" "$(tail -n 5 "$W/out")"; fi

  before=$(journal)
  if ! pb "${PAY[@]}" && grep -q "pin_incorrect" "$W/out" && [ "$(journal)" = "$before" ]; then
    pass "$S: wrong PIN refused, nothing paid"
  else fail "$S: wrong PIN" "$(tail -n 5 "$W/out")"; fi

  # Unplug during PIN entry: two digits typed, then the gadget leaves the bus.
  before=$(journal)
  pb "${PAY[@]}" &
  pay=$!
  if wait_for 120 "two PIN digits" sh -c "curl -fsS $CONTROL/devices/0 | grep -q '\"pin_digits_entered\":2'"; then
    unplug
  fi
  wait $pay; status=$?
  say "pay after unplug: status $status: $(tail -n 3 "$W/out")"
  if [ $status -ne 0 ] && grep -qi "$GONE_WORD" "$W/out" && [ "$(journal)" = "$before" ]; then
    pass "$S: unplug during PIN entry fails clearly ($GONE_WORD), nothing paid"
  else fail "$S: unplug during PIN entry" "status $status: $(tail -n 3 "$W/out")"; fi

  # Replug: a payment started while the PIN pad is away waits for it and carries on (USB).
  # Over BLE the PIN pad advertises again at once: the next payment reconnects by itself.
  pb "${PAY[@]}" &
  pay=$!
  if [ "$AWAY" = 1 ]; then
    wait_for 60 "pinbridge to wait for the PIN pad" grep -q "waiting for the PIN pad" "$W/out"
    replug
    wait_for 60 "the PIN pad back" present && say "back"
  fi
  wait $pay; status=$?
  [ $status -eq 0 ] || { dmesg | tail -n 15; tail -n 15 "$W/sim.out"; }
  if [ $status -eq 0 ] && grep -q '"bankResult":"approved"' "$W/out"; then
    pass "$S: $BACK, second payment approved"
  else fail "$S: $BACK and second payment" "status $status: $(tail -n 5 "$W/out")"; fi

  # Figures: the same device over USB and over the sim link in this VM (docs/BENCHMARKS.md).
  BENCH=$RESULTS/bench
  for device in "$SERIAL" "sim:$SIMLINK"; do
    if timeout 120 "$BIN/real_stack_ping" "$device" 200 >>"$BENCH" 2>"$W/ping.err"; then
      pass "$S: 200 one-packet round trips over $device"
    else fail "$S: round trips over $device" "$(tail -n 3 "$W/ping.err")"; fi
  done
  started=$(date +%s%N)
  if PINBRIDGE_DEVICE=sim:$SIMLINK pb "${PAY[@]}" && grep -q '"bankResult":"approved"' "$W/out"; then
    sim_payment_ms=$(( ($(date +%s%N) - started) / 1000000 ))
    echo "{\"payment_end_to_end_ms\":{\"$S\":${stack_payment_ms:-null},\"sim\":$sim_payment_ms}}" >>"$BENCH"
    pass "$S: the same PIN pad pays over the sim link too"
  else fail "$S: sim link payment" "$(tail -n 5 "$W/out")"; fi

  before=$(journal)
  if ! pb "${PAY[@]}" && [ "$(journal)" = "$before" ] && device_state | grep -q '"tampered":true'; then
    pass "$S: tamper mid-payment refused, nothing paid"
  else fail "$S: tamper mid-payment" "$(tail -n 5 "$W/out"; device_state)"; fi

  if grep -q "^FAIL $S" "$CHECKS"; then
    say "$S: the PIN pad's log (last lines)"
    tail -n 60 "$W/sim.out"
  fi
  kill -TERM "$(cat "$W/sim.pid")" "$(cat "$W/bank.pid")" 2>/dev/null
  wait "$(cat "$W/sim.pid")" "$(cat "$W/bank.pid")" 2>/dev/null
  say "$S: done"
}

# The conformance kit (`pinbridge conformance`, every case of PROTOCOL.md) against a test unit
# served as a USB gadget: the same kit that passes over the sim link, through the kernel's USB
# stack. The report goes to /results/conformance-usb.json.
run_conformance() {
  W=/tmp/rig-conformance
  mkdir -p "$W"
  setup_usb || { fail "conformance: setup" "the USB stack did not come up"; return 1; }
  cp -a "$(param pinbridge.prep)"/. "$W"/
  start_server sim "control " env RUST_LOG=warn "$BIN/pinpad-sim" serve --state "$W/conf-device.json" \
    "${SIM_FLAGS[@]}" --listen 127.0.0.1:0 --control 127.0.0.1:0 >"$W/control" \
    || { fail "conformance: setup" "pinpad-sim did not start"; return 1; }
  CONTROL=$(cat "$W/control")
  export PINBRIDGE_STATE_DIR=$W/state PINBRIDGE_KEYSTORE_PASSPHRASE=real-stack-rig PINBRIDGE_LOG_DIR=$W/logs
  conf_present() { "$BIN/pinbridge" devices 2>/dev/null | grep -q RIG-CONF; }
  wait_for 90 "the test unit on the USB stack" conf_present \
    || { fail "conformance: presence" "no RIG-CONF on the USB stack"; return 1; }
  # Timers are measured from the host; TCG and dummy_hcd's jiffy-driven transfers are slow.
  if timeout 600 "$BIN/pinbridge" --device RIG-CONF conformance --bank-keys "$W/test-bank.json" \
    --sim-control "$CONTROL" --tolerance-ms 400 --report "$RESULTS/conformance-usb.json" >"$W/out" 2>&1; then
    pass "conformance over USB: $(tail -n 1 "$W/out")"
  else
    fail "conformance over USB" "$(grep -E '^(FAIL|pinbridge)' "$W/out" | head -n 12; tail -n 1 "$W/out")"
    grep -v "^PASS" "$W/out" | tail -n 40
  fi
  kill -TERM "$(cat "$W/sim.pid")" 2>/dev/null
  wait "$(cat "$W/sim.pid")" 2>/dev/null
}

# The desktop app (production build, pinbridge.bin/pinbridge-app) under Xvfb with the PIN pad on
# the USB stack: it lists it as a USB device, connects, checks it genuine; the screenshot goes
# to /results/app-usb.png (scripts/app-usb.sh copies it to docs/screenshots/).
run_app() {
  W=/tmp/rig-app
  mkdir -p "$W" "$W/home" "$W/config" "$W/data" "$W/cache" "$W/run"
  chmod 700 "$W/run"
  setup_usb || { fail "app: setup" "the USB stack did not come up"; return 1; }
  cp -a "$(param pinbridge.prep)"/. "$W"/
  start_server sim "control " env RUST_LOG=info "$BIN/pinpad-sim" serve --state "$W/device.json" "${SIM_FLAGS[@]}" \
    --listen 127.0.0.1:0 --control 127.0.0.1:0 >"$W/control" \
    || { fail "app: setup" "pinpad-sim did not start"; return 1; }
  # The bank's package installs the profile; this one allows USB PIN pads only. Connecting
  # needs no bank (the address is never called here).
  mkdir -p /etc/pinbridge
  cat >/etc/pinbridge/bank.toml <<TOML
display_name = "Rig Bank"
url = "https://bank.invalid/"
transports = ["usb"]
allow_user_override = false
TOML
  Xvfb :42 -screen 0 1280x900x24 -nolisten tcp -noreset >"$W/xvfb.log" 2>&1 &
  export DISPLAY=:42 WEBKIT_DISABLE_DMABUF_RENDERER=1
  # The app inherits tauri-driver's environment.
  HOME=$W/home XDG_CONFIG_HOME=$W/config XDG_DATA_HOME=$W/data XDG_CACHE_HOME=$W/cache \
    XDG_RUNTIME_DIR=$W/run PINBRIDGE_KEYSTORE_PASSPHRASE=real-stack-rig \
    PINBRIDGE_DEVICE_CA=$(cat "$W/ca.pub") \
    "$(param pinbridge.tools)/tauri-driver" --port 4444 --native-port 4445 \
    --native-driver /usr/bin/WebKitWebDriver >"$W/driver.log" 2>&1 &
  wait_for 60 "tauri-driver" bash -c 'exec 3<>/dev/tcp/127.0.0.1/4444'
  say "app: the production app, PIN pad $SERIAL on the USB stack"
  if PINBRIDGE_APP="$BIN/pinbridge-app" SERIAL=$SERIAL SCREENSHOT=$RESULTS/app-usb.png \
    timeout 600 node "$(param pinbridge.repo)/src-tauri/e2e/usb-device.mjs" >"$W/app.out" 2>&1; then
    pass "app: lists the PIN pad over USB, connects, checks it genuine"
    cat "$W/app.out"
  else
    fail "app: over USB" "$(tail -n 8 "$W/app.out")"
    tail -n 20 "$W/driver.log" "$W/sim.out"
  fi
}

for stack in $(param pinbridge.stacks | tr ',' ' '); do
  case "$stack" in
    app) run_app ;;
    conformance) run_conformance ;;
    *) run_stack "$stack" ;;
  esac
done
