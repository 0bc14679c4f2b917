#!/usr/bin/env bash
# Fuzz smoke test: for each target, replay its committed corpus, then fuzz
# it for FUZZ_SECONDS (default 30). Fails on any crash, panic, timeout or
# model violation. Run from anywhere; works in a fresh clone.
#
#   bash fuzz/run.sh                      # every target
#   FUZZ_SECONDS=300 bash fuzz/run.sh mux_pair_ops
#
# New inputs found while fuzzing go to a temporary directory, not into
# fuzz/corpus/ (the committed corpus only changes on purpose: see README).
# Crash inputs land in fuzz/artifacts/<target>/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=(mux_frame_decode mux_connection_input mux_pair_ops yamux_frame_decode yamux_connection_input yamux_differential secure_responder secure_mux sim_scenario echo_stack sim_trace_replay admission taps_framer taps_cache taps_race taps_rendezvous session_message session_server)
fi

# Only the stable toolchain: no sanitizer (-s none). cargo-fuzz's defaults
# otherwise hold: release + debug assertions + overflow checks.
cargo fuzz build -s none

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for t in "${targets[@]}"; do
  echo "=== fuzz $t: corpus replay"
  cargo fuzz run -s none "$t" "fuzz/corpus/$t" -- -runs=0
  echo "=== fuzz $t: ${FUZZ_SECONDS}s"
  mkdir -p "$work/$t"
  cargo fuzz run -s none "$t" "$work/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout=30 -rss_limit_mb=2048 \
    -print_final_stats=1 2>&1 | awk '!/^#[0-9]+[ \t]+(NEW|REDUCE|pulse)/'
  # awk only trims libFuzzer's progress lines; with pipefail the fuzzer's
  # exit status decides.
done
echo "=== fuzz: all targets passed"
