#!/usr/bin/env bash
# bench/optimize/run.sh - the full `autodata optimize` study on the sim world (not part of
# `make test` or `make bench`: about a minute per seed with the release build).
#
#   bench/optimize/run.sh [SEEDS...]     default seeds: 1 2 3
#   PARALLEL=P bench/optimize/run.sh ... P iterations in flight (default 1)
#
# For each seed: 480 sim sources (corpus seed 1), examples/sim-optimize.yaml with its defaults
# (30 iterations; train 20, validation 60, test 400 sources; minibatch 5; 2 rounds per source),
# then one table row: the baseline's and the best harness's test-split pass rate with their
# bootstrap 95% CIs, the difference, whether the CIs are apart, the iterations' outcomes and
# the calls sent. docs/optimize.md has the last measured table.
set -euo pipefail
cd "$(dirname "$0")/../.."
AUTODATA=${AUTODATA:-${BUILD:-build}/autodata}
[ -x "$AUTODATA" ] || { echo "bench: $AUTODATA not found: run make (or set AUTODATA=)" >&2; exit 2; }
OUT=${BUILD:-build}/bench/optimize
mkdir -p "$OUT"
"$AUTODATA" sim-sources --count 480 --seed 1 --out "$OUT/sources.jsonl" >/dev/null 2>&1
P=${PARALLEL:-1}
echo "| seed | P | baseline test pass rate | best test pass rate | difference | CIs apart | admitted / not better / refused | calls used | seconds |"
echo "|---|---|---|---|---|---|---|---|---|"
for seed in "${@:-1 2 3}"; do
  for s in $seed; do
    rm -rf "$OUT/seed-$s-p$P"
    t0=$(date +%s)
    AUTODATA_SEED=$s AUTODATA_SIM_SOURCES="$OUT/sources.jsonl" AUTODATA_OUT="$OUT/seed-$s-p$P" \
      "$AUTODATA" optimize examples/sim-optimize.yaml --quiet --parallel "$P" >"$OUT/seed-$s-p$P.out" 2>&1
    t1=$(date +%s)
    python3 - "$OUT/seed-$s-p$P" "$s" $((t1 - t0)) "$P" <<'PY'
import json, re, sys
d, seed, secs, par = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
lines = [json.loads(l) for l in open(d + "/optimize/curve.jsonl")]
fin, its = lines[-1], lines[:-1]
t = fin["test"]
n = lambda st: sum(1 for i in its if i["status"] == st)
calls = its[-1]["calls_used"] if its else 0
print("| %s | %s | %.3f [%.3f, %.3f] | %.3f [%.3f, %.3f] | %+.3f [%+.3f, %+.3f] | %s | %d / %d / %d | %d | %s |" % (
    seed, par, *t["baseline"], *t["best"], *t["difference"], "yes" if t["best"][1] > t["baseline"][2] else "no",
    n("accepted"), n("rejected"), n("refused"), calls, secs))
PY
  done
done
