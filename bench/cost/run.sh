#!/usr/bin/env bash
# bench/cost/run.sh - cost per accepted example: full evaluation against early decisions.
#
#   bench/cost/run.sh
#
# Runs the CS-like sim recipe (examples/sim.yaml, in-process sim) over COST_COUNT (default
# 200) sim sources in each arm - full evaluation (evaluation.early_stop: false), early
# decisions (the default, waves of 1) and early decisions with batched judging (waves of
# COST_BATCH_WAVE answers, default the weak samples, each wave graded in one judge call) -
# and prints, per accepted example, the model calls, prompt and completion
# tokens, their ratios to full evaluation, and the prefix share of the prompts
# (`autodata compare --format json` on the three stores). Checks that every arm's
# dataset.jsonl is the same as full evaluation's (batched judging may differ: its agreement
# is printed instead). Writes $BUILD/bench/summary-cost.txt.
#
# Environment: AUTODATA (default $BUILD/autodata), BUILD (build), COST_COUNT (200),
# COST_SAMPLES ("3 3": weak and strong samples per candidate), COST_BATCH_WAVE.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
AUTODATA=${AUTODATA:-$BUILD/autodata}
COUNT=${COST_COUNT:-200}
read -r WS SS <<<"${COST_SAMPLES:-3 3}"
DIR=$BUILD/bench/cost
SUMMARY=$BUILD/bench/summary-cost.txt
[ -x "$AUTODATA" ] || { echo "bench/cost: $AUTODATA not found (make first, or set AUTODATA=)" >&2; exit 2; }
rm -rf "$DIR"
mkdir -p "$DIR"
"$AUTODATA" sim-sources --count "$COUNT" --seed 1 --out "$DIR/sources.jsonl" >/dev/null 2>&1

# arm NAME EVALUATION-BLOCK: examples/sim.yaml with that evaluation block and sample counts
arm() {
  sed -e "s|^budgets:|evaluation: $2\n\nbudgets:|" \
    -e "s|sim-solver@0.35, samples: 3|sim-solver@0.35, samples: $WS|" \
    -e "s|sim-solver@0.8, samples: 3|sim-solver@0.8, samples: $SS|" examples/sim.yaml >"$DIR/$1.yaml"
  AUTODATA_SIM_SOURCES="$DIR/sources.jsonl" AUTODATA_OUT="$DIR/$1" \
    "$AUTODATA" run "$DIR/$1.yaml" --quiet >"$DIR/$1.log" 2>&1
}
ARMS="full early"
arm full "{early_stop: false}"
arm early "{early_stop: true, wave: 1}"
# early decisions + batched judging: one judge call per wave of BATCH_WAVE answers
arm batch "{early_stop: true, wave: ${COST_BATCH_WAVE:-$WS}, batch_judge: true}"
ARMS="full early batch"
STORES=()
for a in $ARMS; do STORES+=("$DIR/$a/store.db"); done
"$AUTODATA" compare "${STORES[@]}" --format json --resamples 200 >"$DIR/compare.json"

python3 - "$DIR" "$COUNT" "$WS" "$SS" $ARMS <<'PY' | tee "$SUMMARY"
import json, sys, filecmp
d, count, ws, ss, arms = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
runs = json.load(open(f"{d}/compare.json"))["runs"]
base = runs[0]
print(f"cost: {count} CS-like sim sources, {ws} weak + {ss} strong samples per candidate")
print(f"{'arm':<8} {'accepted':>8} {'calls/acc':>10} {'prompt/acc':>11} {'compl/acc':>10} "
      f"{'tokens/acc':>11} {'vs full':>8} {'prefix':>7}")
for a, r in zip(arms, runs):
    tok = r["tokens_per_accepted"]
    print(f"{a:<8} {r['accepted']:>8} {r['calls_per_accepted']:>10.1f} "
          f"{r['prompt_tokens_per_accepted']:>11.0f} {r['completion_tokens_per_accepted']:>10.0f} "
          f"{tok:>11.0f} {tok / base['tokens_per_accepted']:>8.3f} {r['prefix_share']:>7.1%}")
for a, r in zip(arms[1:], runs[1:]):
    same = filecmp.cmp(f"{d}/full/dataset.jsonl", f"{d}/{a}/dataset.jsonl", shallow=False)
    print(f"{a}: calls x{r['calls_per_accepted'] / base['calls_per_accepted']:.3f}, "
          f"tokens x{r['tokens_per_accepted'] / base['tokens_per_accepted']:.3f}, "
          f"dataset.jsonl {'identical to' if same else 'differs from'} full evaluation's")
PY
