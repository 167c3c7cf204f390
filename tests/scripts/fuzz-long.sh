#!/usr/bin/env bash
# The long fuzz run of issue 10: runs node's `sync::fuzz_tests` (release build) again
# and again, each time with fresh random cases, until MINUTES have passed or a case
# fails. Each round is a process of its own: a damaged bundle that hangs automerge's
# parser leaves its parse thread spinning until the process ends, so a single
# process with a huge case count would slow to a crawl.
#
#   bash tests/scripts/fuzz-long.sh [MINUTES] [CASES_PER_ROUND] [LOG]
#                                   (defaults: 10, 5120, fuzz-long.log)
set -uo pipefail
cd "$(dirname "$0")/../.."
minutes=${1:-10}
cases=${2:-5120}
log=${3:-fuzz-long.log}
cargo test --release -p mart-node --lib --no-run > "$log" 2>&1 || { echo "build failed: $log"; exit 1; }
started=$(date +%s)
rounds=0
while [ $(( $(date +%s) - started )) -lt $(( minutes * 60 )) ]; do
  rounds=$((rounds + 1))
  if ! MART_FUZZ_RANDOM=1 MART_FUZZ_CASES=$cases cargo test --release -p mart-node --lib fuzz_tests >> "$log" 2>&1; then
    echo "round $rounds failed after $(( $(date +%s) - started )) s: see $log"
    exit 1
  fi
done
# Two properties run `cases` cases in every round.
echo "$rounds rounds, $(( rounds * cases * 2 )) cases in $(( $(date +%s) - started )) s, no failure"
