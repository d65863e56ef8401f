#!/usr/bin/env bash
# bench/cost/run.sh - cost per accepted example: full evaluation against early decisions.
#
#   bench/cost/run.sh
#   COST_THINK="0 1000 4000 16000" bench/cost/run.sh     # reasoning solvers (docs/sim.md)
#
# Runs the CS-like sim recipe (examples/sim.yaml, in-process sim) over COST_COUNT (default
# 200) sim sources in each arm - every sample of both solvers (accept.short_circuit: false,
# evaluation.early_stop: false: the paper's evaluation), full evaluation (early_stop: false;
# the strong solver skipped when the weak gate fails), early decisions (the default, waves
# of 1) and early decisions with batched judging (waves of COST_BATCH_WAVE answers, default
# the weak samples, each wave graded in one judge call) - and prints, per accepted example,
# the model calls, prompt and completion tokens, their ratios to full evaluation and to
# every sample, and the prefix share of the prompts (`autodata compare --format json` on
# the stores). With COST_THINK, the solvers are `sim-solver@SKILL,think=N` (about N tokens
# of reasoning before each answer; solver max_tokens 65536, the paper's reasoning budget),
# once per N. Checks that every arm's dataset.jsonl is the same as full evaluation's
# (batched judging may differ: its agreement is printed instead). Writes
# $BUILD/bench/summary-cost.txt.
#
# Environment: AUTODATA (default $BUILD/autodata), BUILD (build), COST_COUNT (200),
# COST_SAMPLES ("3 3": weak and strong samples per candidate), COST_BATCH_WAVE,
# COST_THINK ("0": the solvers' mean reasoning lengths in tokens, one pass each),
# COST_RECIPE (examples/sim.yaml; examples/sim-verifiable.yaml is the maths-like setup:
# 4 + 4 samples, the exact-count gate, a local matcher; COST_SAMPLES applies to sim.yaml).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
AUTODATA=${AUTODATA:-$BUILD/autodata}
COUNT=${COST_COUNT:-200}
read -r WS SS <<<"${COST_SAMPLES:-3 3}"
THINKS=${COST_THINK:-0}
RECIPE=${COST_RECIPE:-examples/sim.yaml}
DIR=$BUILD/bench/cost
SUMMARY=$BUILD/bench/summary-cost.txt
[ -x "$AUTODATA" ] || { echo "bench/cost: $AUTODATA not found (make first, or set AUTODATA=)" >&2; exit 2; }
rm -rf "$DIR"
mkdir -p "$DIR"
"$AUTODATA" sim-sources --count "$COUNT" --seed 1 --out "$DIR/sources.jsonl" >/dev/null 2>&1

# arm THINK NAME EVALUATION-BLOCK SHORT-CIRCUIT: examples/sim.yaml with that evaluation
# block, short-circuit setting, sample counts and solver reasoning length
arm() {
  local keys="" mt=""
  if [ "$1" != 0 ]; then keys=",think=$1" mt=", max_tokens: 65536"; fi
  sed -e "s|^budgets:|evaluation: $3\n\nbudgets:|" \
    -e "s|^  preset: \(.*\)|  preset: \1\n  short_circuit: $4|" \
    -e "s|sim-solver@0.35, samples: 3|sim-solver@0.35, samples: $WS|" \
    -e "s|sim-solver@0.8, samples: 3|sim-solver@0.8, samples: $SS|" \
    -e "s|model: sim-solver@0.35|model: 'sim-solver@0.35$keys'$mt|" \
    -e "s|model: sim-solver@0.8|model: 'sim-solver@0.8$keys'$mt|" \
    "$RECIPE" >"$DIR/t$1/$2.yaml"
  AUTODATA_SIM_SOURCES="$DIR/sources.jsonl" AUTODATA_OUT="$DIR/t$1/$2" \
    "$AUTODATA" run "$DIR/t$1/$2.yaml" --quiet >"$DIR/t$1/$2.log" 2>&1
}
ARMS="every full early batch"
for t in $THINKS; do
  mkdir -p "$DIR/t$t"
  arm "$t" every "{early_stop: false}" false
  arm "$t" full "{early_stop: false}" true
  arm "$t" early "{early_stop: true, wave: 1}" true
  # early decisions + batched judging: one judge call per wave of BATCH_WAVE answers
  arm "$t" batch "{early_stop: true, wave: ${COST_BATCH_WAVE:-$WS}, batch_judge: true}" true
  STORES=()
  for a in $ARMS; do STORES+=("$DIR/t$t/$a/store.db"); done
  "$AUTODATA" compare "${STORES[@]}" --format json --resamples 200 >"$DIR/t$t/compare.json"
done

python3 - "$DIR" "$COUNT" "$WS" "$SS" "$THINKS" "$RECIPE" $ARMS <<'PY' | tee "$SUMMARY"
import json, sys, filecmp, sqlite3
d, count, ws, ss, thinks, recipe, arms = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(), sys.argv[6], sys.argv[7:]
print(f"cost: {count} sim sources, {recipe}, {ws} weak + {ss} strong samples per candidate (sim.yaml)")
print(f"{'think':>6} {'arm':<6} {'accepted':>8} {'calls/acc':>10} {'prompt/acc':>11} {'compl/acc':>10} "
      f"{'tokens/acc':>11} {'vs full':>8} {'vs every':>9} {'solv+judge':>11} {'prefix':>7}")
for t in thinks:
    runs = json.load(open(f"{d}/t{t}/compare.json"))["runs"]
    every, full = runs[0], runs[1]
    for a, r in zip(arms, runs):
        db = sqlite3.connect(f"{d}/t{t}/{a}/store.db")
        sj = db.execute("SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) FROM calls "
                        "WHERE role IN ('weak', 'strong') OR role LIKE 'judge%' OR role LIKE 'batch%'").fetchone()[0]
        tok = r["tokens_per_accepted"]
        print(f"{t:>6} {a:<6} {r['accepted']:>8} {r['calls_per_accepted']:>10.1f} "
              f"{r['prompt_tokens_per_accepted']:>11.0f} {r['completion_tokens_per_accepted']:>10.0f} "
              f"{tok:>11.0f} {tok / full['tokens_per_accepted']:>8.3f} "
              f"{tok / every['tokens_per_accepted']:>9.3f} {sj / max(r['accepted'], 1):>11.0f} "
              f"{r['prefix_share']:>7.1%}")
    for a in arms:
        if a == "full":
            continue
        same = filecmp.cmp(f"{d}/t{t}/full/dataset.jsonl", f"{d}/t{t}/{a}/dataset.jsonl", shallow=False)
        print(f"think={t} {a}: dataset.jsonl {'identical to' if same else 'differs from'} full evaluation's")
PY
