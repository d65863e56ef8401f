#!/usr/bin/env bash
# t_early_decisions.sh - early decisions (evaluation.early_stop) change the cost, never the
# outcome: on the sim, with the deployed CS gate (short-circuit on and off) and the
# verifiable exact-count gate, dataset.jsonl is byte-identical to full evaluation's, every
# candidate's verdict and reason are the same, fewer calls are made, and a candidate that
# stopped early says so and after how many samples. Also: the prefix share in status, card, compare.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 24 --seed 3 --out "$T/src.jsonl" 2>/dev/null

# recipe ARM BASE EARLY WAVE SHORT_CIRCUIT: examples/BASE with an evaluation block
recipe() {
  local accept="  preset: $( [ "$2" = sim.yaml ] && echo cs-deployed || echo math-exact)"
  sed -e "s|^accept:.*|accept:\n$accept\n  short_circuit: $5|" -e '/^  preset: /d' \
    -e "s|^budgets:|evaluation:\n  early_stop: $3\n  wave: $4\n\nbudgets:|" \
    "examples/$2" >"$T/$1.yaml"
  AUTODATA_SIM_SOURCES="$T/src.jsonl" AUTODATA_OUT="$T/$1" "$AUTODATA" run "$T/$1.yaml" --quiet \
    >"$T/$1.log" 2>&1 || { echo "run $1 failed:"; cat "$T/$1.log"; }
}
verdicts() { sqlite3 "$T/$1/store.db" "SELECT source_id, round, verdict, reason FROM candidates ORDER BY 1, 2"; }
calls() { sqlite3 "$T/$1/store.db" "SELECT count(*) FROM calls"; }
# (the store keeps records compressed: read them from the run's candidates.jsonl, every candidate)
stopped() {
  python3 -c 'import json, sys
print(sum(1 for l in open(sys.argv[1]) if (r := json.loads(l)["record"]).get("stopped_early") in (1, True) and (r.get("stopped_after") or 0) > 0))' "$T/$1/candidates.jsonl"
}

same() { # same FULL EARLY NAME
  check "$3: dataset.jsonl byte-identical ($(wc -l <"$T/$1/dataset.jsonl") examples)" cmp -s "$T/$1/dataset.jsonl" "$T/$2/dataset.jsonl"
  check "$3: every verdict and reason the same" test "$(verdicts "$1")" = "$(verdicts "$2")"
  check "$3: fewer calls ($(calls "$2") < $(calls "$1"))" test "$(calls "$2")" -lt "$(calls "$1")"
  check "$3: candidates that stopped early say so ($(stopped "$2"))" test "$(stopped "$2")" -gt 0
  check "$3: none stops early under full evaluation" test "$(stopped "$1")" = 0
}

recipe rf sim.yaml false 1 true
recipe r1 sim.yaml true 1 true
recipe r2 sim.yaml true 2 true
check "the runs accept examples" test "$(wc -l <"$T/rf/dataset.jsonl")" -gt 5
same rf r1 "rubric, wave 1"
same rf r2 "rubric, wave 2"
recipe nf sim.yaml false 1 false
recipe n1 sim.yaml true 1 false
same nf n1 "rubric, no short-circuit"
recipe vf sim-verifiable.yaml false 1 true
recipe v1 sim-verifiable.yaml true 1 true
same vf v1 "verifiable exact counts"
# an accepted example always carries all its samples
check "accepted examples have every weak and strong score" test "$(python3 -c 'import json, sys
print(sum(1 for l in open(sys.argv[1]) if len((e := json.loads(l)).get("weak_scores") or []) != 3 or len(e.get("strong_scores") or []) != 3))' "$T/r1/dataset.jsonl")" = 0
# the prefix share (store/prefix.h): status, the card and compare report it
"$AUTODATA" status --store "$T/r1/store.db" >"$T/status.out"
check "status reports the prefix share" grep -qE "^prefix: +[0-9.]+% of prompt tokens" "$T/status.out"
check "the card reports the prefix share" grep -q "^Prefix share: [0-9.]*% of the prompt tokens" "$T/r1/DATACARD.md"
"$AUTODATA" compare "$T/rf/store.db" "$T/r1/store.db" >"$T/compare.out"
check "compare reports the prefix share" grep -qE "^prefix share +0\.[0-9]+ +0\.[0-9]+" "$T/compare.out"
finish
