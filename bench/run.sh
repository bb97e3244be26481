#!/usr/bin/env bash
# make bench: every benchmark, each on its own stack (ports offset by
# FEIRA_BENCH_PORT_OFFSET, default 2000); results in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
"$FEIRA_ROOT/scripts/install-deps.sh" bench
for b in ${BENCHMARKS:-auth login services realtime mixed}; do
    say "benchmark: $b"
    "$FEIRA_VENV/bin/python" "bench/$b.py"
done
