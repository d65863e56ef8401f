#!/usr/bin/env bash
# demo.sh - the offline demo: a sim corpus through examples/sim.yaml, end to end.
# Run by `make demo` after the build. Re-running resumes (and finds nothing to do).
set -euo pipefail
cd "$(dirname "$0")/.."
AUTODATA=${AUTODATA:-build/autodata}
OUT=${AUTODATA_OUT:-runs/sim-demo}
COUNT=${DEMO_SOURCES:-100}
mkdir -p "$OUT"
if [ ! -s "$OUT/sources.jsonl" ]; then
  "$AUTODATA" sim-sources --count "$COUNT" --seed 1 --out "$OUT/sources.jsonl"
fi
export AUTODATA_SIM_SOURCES="$OUT/sources.jsonl" AUTODATA_OUT="$OUT"
"$AUTODATA" run examples/sim.yaml
echo
echo "Report: $OUT/report.html   (open it in a browser; \`$AUTODATA report $OUT\` regenerates it)"
echo "Next: $AUTODATA status --store $OUT/store.db   |   less $OUT/DATACARD.md"
