# Sourced by the scripts that build the shipped desktop app (app-build.sh, app-footprint.sh):
# the release profile tuned for size. The app has no hot path of its own (it waits on the user,
# the PIN pad and the bank), and its executable's resident pages are most of PinBridge's share
# of the app's memory (docs/BENCHMARKS.md, "Desktop app footprint"): opt-level "s" and whole-
# program LTO in one codegen unit shrink them. Set through cargo's environment so the bank's and
# the CLI's release builds (benchmarks) keep the workspace's opt-level 3; cargo keeps both sets
# of artifacts side by side (the profile is part of each artifact's hash).
export CARGO_PROFILE_RELEASE_OPT_LEVEL=s
export CARGO_PROFILE_RELEASE_LTO=fat
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
