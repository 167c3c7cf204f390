#!/usr/bin/env bash
# The flakiness check of issue 17: runs the README's test command N times in a row
# while two CPU workers of stress-ng keep the machine busy, and prints one line per
# run (exit code, time, load average, nextest's summary) plus every failed test.
# A test that fails even once is a bug, in the test or in the code.
#
#   bash tests/scripts/repeat-suite.sh [RUNS] [LOG_DIR]     (defaults: 10, ./suite-runs)
#
# Set STRESS_WORKERS=0 to run without stress-ng (e.g. when the machine is busy anyway).
set -uo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-10}
logs=${2:-suite-runs}
workers=${STRESS_WORKERS:-2}
mkdir -p "$logs"
cargo nextest run --workspace --no-run > "$logs/build.log" 2>&1 || { echo "build failed: $logs/build.log"; exit 1; }
stress=
if [ "$workers" -gt 0 ]; then
  command -v stress-ng > /dev/null || { apt-get update -qq && apt-get install -y -qq stress-ng > /dev/null; }
  stress-ng --cpu "$workers" --timeout 0 --quiet & stress=$!
  trap 'kill $stress 2> /dev/null' EXIT
fi
failed_runs=0
for i in $(seq 1 "$runs"); do
  started=$(date +%s)
  cargo nextest run --workspace --no-fail-fast > "$logs/run$i.log" 2>&1
  rc=$?
  [ "$rc" -ne 0 ] && failed_runs=$((failed_runs + 1))
  echo "run $i: exit $rc, $(( $(date +%s) - started )) s, load $(cut -d' ' -f1-3 /proc/loadavg), $(grep -E 'Summary' "$logs/run$i.log" | tail -1 | sed 's/^ *//')"
  grep -E '^\s+FAIL' "$logs/run$i.log" | sed 's/^ */    /'
done
echo "$runs runs, $failed_runs with a failure"
[ "$failed_runs" -eq 0 ]
