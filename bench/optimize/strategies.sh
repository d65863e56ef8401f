#!/usr/bin/env bash
# bench/optimize/strategies.sh - the paper's strategy against GEPA's at the same call budgets
# (not part of `make test`; a few minutes with the release build).
#
#   bench/optimize/strategies.sh [SEED]      default seed 1
#
# For each strategy (boltzmann / pareto, with and without the minibatch gate) it runs
# examples/sim-optimize.yaml with optimize.budgets.max_calls = 10000, 20000, 40000 in the same
# folder: each budget resumes the previous one (the calls used so far are replayed from the
# store) and goes on until the new budget, then reads the test split. Prints one plot-ready
# row per (strategy, budget): the test-split pass rate of the best harness with its 95% CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
AUTODATA=${AUTODATA:-${BUILD:-build}/autodata}
[ -x "$AUTODATA" ] || { echo "bench: $AUTODATA not found: run make (or set AUTODATA=)" >&2; exit 2; }
SEED=${1:-1}
OUT=${BUILD:-build}/bench/optimize-strategies
mkdir -p "$OUT"
"$AUTODATA" sim-sources --count 480 --seed 1 --out "$OUT/sources.jsonl" >/dev/null 2>&1
echo "| strategy | minibatch gate | calls budget | iterations | admitted / not better / gated / refused | baseline test | best test | difference |"
echo "|---|---|---|---|---|---|---|---|"
for cfg in "boltzmann false" "boltzmann true" "pareto false" "pareto true"; do
  set -- $cfg
  dir=$OUT/$1-$2-seed$SEED
  rm -rf "$dir"
  for budget in 10000 20000 40000; do
    AUTODATA_SEED=$SEED AUTODATA_ITERATIONS=1000 AUTODATA_OPT_MAX_CALLS=$budget AUTODATA_STRATEGY=$1 \
      AUTODATA_GATE=$2 AUTODATA_SIM_SOURCES="$OUT/sources.jsonl" AUTODATA_OUT="$dir" \
      "$AUTODATA" optimize examples/sim-optimize.yaml --quiet >"$dir-$budget.out" 2>&1 || true
    python3 - "$dir-$budget.out" "$1" "$2" "$budget" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
it = re.search(r"(\d+) iteration\(s\): (\d+) admitted, (\d+) not better, (\d+) gated, (\d+) refused", t)
ts = re.search(r"baseline ([\d.]+) \[([\d.]+), ([\d.]+)\], best ([\d.]+) \[([\d.]+), ([\d.]+)\], difference ([+-][\d.]+) \[([+-][\d.]+), ([+-][\d.]+)\]", t)
if not it or not ts:
    print("| %s | %s | %s | failed: %s |" % (sys.argv[2], sys.argv[3], sys.argv[4], t.strip().splitlines()[-1:])); sys.exit(0)
g = ts.groups()
print("| %s | %s | %s | %s | %s / %s / %s / %s | %s [%s, %s] | %s [%s, %s] | %s [%s, %s] |" % (sys.argv[2], sys.argv[3], sys.argv[4], it.group(1), *it.groups()[1:], *g))
PY
  done
done
