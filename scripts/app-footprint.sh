#!/usr/bin/env bash
# The desktop app's footprint, production and sandbox flavours measured in one run, as a
# markdown table (for docs/BENCHMARKS.md). Per flavour, the release build under Xvfb:
#   - idle memory of the app and all its WebKit processes with a PIN pad connected: the physical
#     memory they occupy together (distinct resident pages, each shared library page counted
#     once: scripts/resident-pages.py, needs root), the naive RSS and the PSS sums, and
#     PinBridge's own share (its executable's pages and the app process's heap and anonymous
#     memory);
#   - idle CPU and wake-ups per second (context switches of every thread) over IDLE_SECONDS
#     (60) with the PIN pad connected, for the app process and for its WebKit processes;
#   - time to first paint (median of 3 launches through WebDriver) and the .deb's size.
# The production flavour gets a bank profile (/etc/pinbridge/bank.toml, put back as it was
# afterwards: this needs root) allowing the sim link, and a pinpad-sim on loopback as its PIN
# pad; the sandbox flavour connects its embedded mock PIN pad. The production flavour's first
# screen with no bank profile is saved to docs/screenshots/production-no-bank-profile.png.
# Builds first (scripts/app-build.sh, then the sandbox .deb) unless APP_FOOTPRINT_NO_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
source scripts/env.sh
source scripts/app-xvfb.sh
IDLE_SECONDS="${IDLE_SECONDS:-60}"
# The Tauri CLI and tauri-driver live in the tools cache (scripts/app-build.sh installs the CLI).
export PATH="${PINBRIDGE_TOOLS:-$HOME/.cache/pinbridge/tools}/bin:$PATH"
release="$CARGO_TARGET_DIR/release"
kept="$CARGO_TARGET_DIR/footprint"
mkdir -p "$kept"

# Both flavours build to the same path: each is kept aside after its build.
if [ "${APP_FOOTPRINT_NO_BUILD:-0}" != 1 ]; then
  bash scripts/app-build.sh >&2
  cp "$release/pinbridge-app" "$kept/pinbridge-app-production"
  cp "$(ls -t "$release"/bundle/deb/*.deb | head -1)" "$kept/production.deb"
  echo "==> cargo tauri build --bundles deb --features sandbox" >&2
  (source scripts/app-profile.sh && cd src-tauri && cargo tauri build --ci --bundles deb --features sandbox) >&2
  cp "$release/pinbridge-app" "$kept/pinbridge-app-sandbox"
  cp "$(ls -t "$release"/bundle/deb/*.deb | head -1)" "$kept/sandbox.deb"
  cargo build --locked -q -p device-sim --bin pinpad-sim
fi
for f in pinbridge-app-production pinbridge-app-sandbox production.deb sandbox.deb; do
  [ -e "$kept/$f" ] || { echo "app-footprint: $kept/$f is missing; run without APP_FOOTPRINT_NO_BUILD" >&2; exit 1; }
done
# The production binary is what it claims to be.
bash scripts/check-production-app.sh "$kept/pinbridge-app-production" >&2
ensure_tauri_driver

scratch="$(mktemp -d)"
profile=/etc/pinbridge/bank.toml
profile_saved=""
if [ -e "$profile" ]; then
  profile_saved="$scratch/bank.toml.saved"
  cp -p "$profile" "$profile_saved"
fi
restore_profile() {
  if [ -n "$profile_saved" ]; then cp -p "$profile_saved" "$profile"; else rm -f "$profile"; fi
}
trap 'restore_profile; cleanup_started; rm -rf "$scratch"' EXIT
# The app inherits tauri-driver's environment, not the WebDriver client's: its config home is
# fixed here, before the driver starts, and each run rewrites the settings in it (config_home).
export HOME="$scratch/home" XDG_DATA_HOME="$scratch/data" XDG_CACHE_HOME="$scratch/cache" \
  XDG_RUNTIME_DIR="$scratch/run" XDG_CONFIG_HOME="$scratch/config"
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
# No OS key store in this session: the pairing store's passphrase fallback.
export PINBRIDGE_KEYSTORE_PASSPHRASE="footprint-scratch-passphrase"
start_xvfb

port="$(free_port)"
native_port="$(free_port)"
while [ "$native_port" = "$port" ]; do native_port="$(free_port)"; done
tauri-driver --port "$port" --native-port "$native_port" --native-driver /usr/bin/WebKitWebDriver \
  >"$scratch/driver.log" 2>&1 &
started_pids+=("$!")
wait_for_port "$port"
export WEBDRIVER="http://127.0.0.1:$port"

# The production flavour's PIN pad: a pinpad-sim on loopback (manufactured, not initialised:
# connecting reads its identity and status, which is all an idle app does).
sim="$CARGO_TARGET_DIR/debug/pinpad-sim"
"$sim" ca new --out "$scratch/ca.json" >/dev/null
"$sim" init --serial PB-FOOTPRINT-1 --state "$scratch/unit.json" --ca-key "$scratch/ca.json" >/dev/null
sim_port="$(free_port)"
"$sim" serve --state "$scratch/unit.json" --listen "127.0.0.1:$sim_port" >"$scratch/sim.log" 2>&1 &
started_pids+=("$!")
wait_for_port "$sim_port"

# config_home FLAVOUR: fresh settings in the app's config home (the production one lists the
# pinpad-sim; the others start from the defaults).
config_home() {
  local dir="$XDG_CONFIG_HOME/app.pinbridge.desktop"
  rm -rf "$dir"
  mkdir -p "$dir"
  if [ "$1" = production ]; then
    # A whole settings file: one missing a field is moved aside as malformed (settings.json.bad).
    printf '{"bankUrl": "", "bankCaPem": null, "language": "en", "theme": "light", "discovery": {"usb": true, "ble": false, "simDevices": ["127.0.0.1:%s"]}}\n' \
      "$sim_port" >"$dir/settings.json"
  fi
}

mkdir -p docs/screenshots
# The production app with no bank profile: the first-run screen says so.
rm -f "$profile"
config_home none
PINBRIDGE_APP="$kept/pinbridge-app-production" \
  SCREENSHOT="$root/docs/screenshots/production-no-bank-profile.png" IDLE_SECONDS=1 SETTLE_SECONDS=0 \
  node src-tauri/e2e/footprint.mjs >"$scratch/no-profile.json"
mkdir -p "$(dirname "$profile")"
cat >"$profile" <<TOML
display_name = "Footprint Bank"
url = "https://bank.invalid/"
transports = ["sim"]
allow_user_override = false
TOML

declare -A measured paint
for flavour in production sandbox; do
  echo "==> $flavour: idle ${IDLE_SECONDS} s with a PIN pad connected" >&2
  config_home "$flavour"
  measured[$flavour]="$(EXPECT_DEVICE=1 \
    PINBRIDGE_APP="$kept/pinbridge-app-$flavour" IDLE_SECONDS="$IDLE_SECONDS" \
    node src-tauri/e2e/footprint.mjs)"
  config_home "$flavour"
  paint[$flavour]="$(PINBRIDGE_APP="$kept/pinbridge-app-$flavour" node src-tauri/e2e/first-paint.mjs)"
done

python3 - "${measured[production]}" "${measured[sandbox]}" "${paint[production]}" "${paint[sandbox]}" \
  "$(stat -c %s "$kept/production.deb")" "$(stat -c %s "$kept/sandbox.deb")" "$IDLE_SECONDS" <<'PY'
import json, sys
m = {"production": json.loads(sys.argv[1]), "sandbox": json.loads(sys.argv[2])}
p = {"production": json.loads(sys.argv[3]), "sandbox": json.loads(sys.argv[4])}
deb = {"production": int(sys.argv[5]), "sandbox": int(sys.argv[6])}
idle = sys.argv[7]
mib = lambda kib: kib / 1024

def own(r):
    app = r["memory"]["processes"][0]
    exe = [n for n, _ in r["memory"]["by_mapping"] if n.startswith("pinbridge-app")]
    mine = lambda n: n in exe or n.endswith(" of " + app["name"])
    return sum(k for n, k in r["memory"]["by_mapping"] if mine(n))

def procs(r, app):
    rows = [i for i in r["idle"] if (i["pid"] == r["memory"]["processes"][0]["pid"]) == app]
    return (sum(i["wakeupsPerSecond"] for i in rows), sum(i["cpuMs"] for i in rows))

rows = [
    ("PIN pad connected (its card)", lambda f: m[f]["connected"] or "none", None),
    ("idle memory, all processes: distinct physical pages", lambda f: "%.1f MiB" % mib(m[f]["memory"]["unique_kib"]), ("<= 160 MiB", lambda f: mib(m[f]["memory"]["unique_kib"]) <= 160)),
    ("the same, naive RSS sum", lambda f: "%.1f MiB" % mib(m[f]["memory"]["rss_sum_kib"]), None),
    ("the same, PSS sum", lambda f: "%.1f MiB" % mib(m[f]["memory"]["pss_sum_kib"]), None),
    ("PinBridge's own share: its executable's pages + the app process's heap and anonymous memory", lambda f: "%.1f MiB" % mib(own(m[f])), ("<= 20 MiB", lambda f: mib(own(m[f])) <= 20)),
    ("largest contributors", lambda f: "; ".join("%s %.1f" % (n, mib(k)) for n, k in m[f]["memory"]["by_mapping"][:5]), None),
    (f"app process over {idle} s idle: wake-ups/s, CPU ms", lambda f: "%.1f/s, %d ms" % procs(m[f], True), None),
    (f"WebKit processes over {idle} s idle: wake-ups/s, CPU ms", lambda f: "%.1f/s, %d ms" % procs(m[f], False), None),
    ("time to first paint (median of 3)", lambda f: "%d ms (%s)" % (p[f]["medianMs"], ", ".join(map(str, p[f]["runs"]))), ("<= 1 s", lambda f: p[f]["medianMs"] <= 1000)),
    (".deb size", lambda f: "%.1f MiB" % (deb[f] / 1048576), None),
]
print("| measure | production | sandbox | goal (production) |")
print("| --- | --- | --- | --- |")
for name, value, goal in rows:
    g = "" if goal is None else "%s: %s" % (goal[0], "met" if goal[1]("production") else "**missed**")
    print(f"| {name} | {value('production')} | {value('sandbox')} | {g} |")

def groups(r):
    """The distinct pages by owner: PinBridge, the web engine, software GL, speech, the rest."""
    app = r["memory"]["processes"][0]
    exe = [n for n, _ in r["memory"]["by_mapping"] if n.startswith("pinbridge-app")]
    kinds = [
        ("PinBridge (its executable, the app process's heap and anonymous memory)",
         lambda n: n in exe or n.endswith(" of " + app["name"])),
        ("WebKitGTK + JavaScriptCore libraries", lambda n: n.startswith(("libwebkit2gtk", "libjavascriptcoregtk"))),
        ("the web processes' heap and anonymous memory", lambda n: " of WebKit" in n or n.startswith("memfd:WebKit")),
        ("software GL: Mesa llvmpipe, LLVM, EGL/GL", lambda n: n.startswith(("libLLVM", "swrast_dri", "libgallium", "libGL", "libEGL", "libglapi", "libepoxy", "libgbm", "libz3", "libdrm", "libvulkan"))),
        ("speech synthesis (flite, linked by WebKitGTK)", lambda n: n.startswith("libflite")),
    ]
    out = {k: 0 for k, _ in kinds}
    out["everything else: GTK, GLib, ICU, fonts, other libraries"] = 0
    for n, k in r["memory"]["by_mapping"]:
        for name, test in kinds:
            if test(n):
                out[name] += k
                break
        else:
            out["everything else: GTK, GLib, ICU, fonts, other libraries"] += k
    return out

print()
print("Where the distinct pages go (MiB):")
print()
print("| owner | production | sandbox |")
print("| --- | --- | --- |")
g = {f: groups(m[f]) for f in ("production", "sandbox")}
for name in g["production"]:
    print("| %s | %.1f | %.1f |" % (name, mib(g["production"][name]), mib(g["sandbox"][name])))
print()
print("Per process over the idle window (production): " + "; ".join(
    "%s %.1f wake-ups/s %d ms" % (i["comm"], i["wakeupsPerSecond"], i["cpuMs"]) for i in m["production"]["idle"]))
print("Per process over the idle window (sandbox): " + "; ".join(
    "%s %.1f wake-ups/s %d ms" % (i["comm"], i["wakeupsPerSecond"], i["cpuMs"]) for i in m["sandbox"]["idle"]))
PY
