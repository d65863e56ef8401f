#!/usr/bin/env bash
# bench/cost/agreement.sh - how well batched judging agrees with per-answer judging on the sim.
#
#   bench/cost/agreement.sh
#
# Runs examples/sim.yaml with full evaluation over AGREE_COUNT (default 300) sim sources
# (--seed 7) four times: per-answer judging; batched judging (evaluation.batch_judge); per-answer
# judging with other judge draws (the judge named sim-judge@err=0.03: the default parameters
# under another name, so another stream) - the judge's test-retest agreement; and both modes
# with a noise-free judge (sim-judge@err=0,lenient=0). Compares the round-1 candidates, which
# are the same in every run (same challenger prompt, same answers): the share of answers with
# the same score and of candidates with the same verdict and reason.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
AUTODATA=${AUTODATA:-$BUILD/autodata}
COUNT=${AGREE_COUNT:-300}
DIR=$BUILD/bench/agreement
[ -x "$AUTODATA" ] || { echo "bench/cost: $AUTODATA not found (make first, or set AUTODATA=)" >&2; exit 2; }
rm -rf "$DIR"
mkdir -p "$DIR"
"$AUTODATA" sim-sources --count "$COUNT" --seed 7 --out "$DIR/sources.jsonl" >/dev/null 2>&1
# arm NAME JUDGE-MODEL BATCH
arm() {
  sed -e "s|model: sim-judge}|model: '$2'}|" \
    -e "s|^budgets:|evaluation: {early_stop: false, batch_judge: $3}\n\nbudgets:|" \
    examples/sim.yaml >"$DIR/$1.yaml"
  AUTODATA_SIM_SOURCES="$DIR/sources.jsonl" AUTODATA_OUT="$DIR/$1" \
    "$AUTODATA" run "$DIR/$1.yaml" --quiet >"$DIR/$1.log" 2>&1
}
arm single sim-judge false
arm batch sim-judge true
arm retest sim-judge@err=0.03 false
arm single0 sim-judge@err=0,lenient=0 false
arm batch0 sim-judge@err=0,lenient=0 true
python3 - "$DIR" <<'PY'
import json, sys
d = sys.argv[1]
def load(a):
    out = {}
    for l in open(f"{d}/{a}/candidates.jsonl"):
        r = json.loads(l); rec = r["record"]
        if r["round"] != 1 or not rec.get("candidate"): continue
        out[r["source_id"]] = (rec["candidate"].get("question"), rec.get("weak_scores") or [],
                               rec.get("strong_scores") or [], r["verdict"], r["reason"])
    return out
def agree(x, y, what):
    a, b = load(x), load(y)
    n = same = cands = vsame = 0
    for k in a:
        if k not in b or a[k][0] != b[k][0]: continue
        cands += 1; vsame += (a[k][3], a[k][4]) == (b[k][3], b[k][4])
        for u, v in ((a[k][1], b[k][1]), (a[k][2], b[k][2])):
            for s, t in zip(u, v):
                n += 1; same += abs(s - t) < 1e-9
    print(f"{what:<44} answers {same}/{n} = {same / max(n, 1):.1%} same score; "
          f"candidates {vsame}/{cands} = {vsame / max(cands, 1):.1%} same verdict")
agree("single", "batch", "batched vs per-answer judging:")
agree("single", "retest", "per-answer vs per-answer (other draws):")
agree("single0", "batch0", "noise-free judge, batched vs per-answer:")
PY
