#!/usr/bin/env bash
# Runs every benchmark under dist/test/bench/ (build first: npm run bench does). Each prints
# plain "key: value" lines; machines are noisy, so benchmarks report medians of several runs.
# BENCH_FILTER=substring runs only the matching ones.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
status=0
for f in dist/test/bench/*.bench.js; do
  [ -e "$f" ] || continue
  case "$f" in *"${BENCH_FILTER:-}"*) ;; *) continue ;; esac
  echo "# $(basename "$f" .bench.js)"
  node "$f" || status=1
done
exit $status
