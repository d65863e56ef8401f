#!/usr/bin/env bash
# t_verifiable.sh - a verifiable task end to end (examples/sim-verifiable.yaml):
# the maths exact-count gate with 4 + 4 samples, the local matcher and the LLM
# verifier (a perfect sim judge) agree, and every accepted example satisfies the gate.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 40 --seed 8 --out "$T/src.jsonl" 2>/dev/null
export AUTODATA_SIM_SOURCES=$T/src.jsonl
AUTODATA_OUT=$T/auto "$AUTODATA" run examples/sim-verifiable.yaml --quiet >"$T/auto.out" 2>&1
check "verifiable run (local matcher) exits 0" test $? -eq 0
check "verifiable run accepts examples" test "$(wc -l <"$T/auto/dataset.jsonl")" -gt 10
# The sim judge errs at its configured rate (docs/sim.md); the two matchers agree only with
# a perfect one, so this run's judge is sim-judge@err=0,lenient=0.
sed "s|model: sim-judge}|model: 'sim-judge@err=0,lenient=0'}|" examples/sim-verifiable.yaml >"$T/perfect.yaml"
check "the recipe copy has the perfect judge" grep -q "sim-judge@err=0,lenient=0" "$T/perfect.yaml"
AUTODATA_MATCHER=llm AUTODATA_OUT=$T/llm "$AUTODATA" run "$T/perfect.yaml" --quiet >"$T/llm.out" 2>&1
check "verifiable run (LLM verifier) exits 0" test $? -eq 0
check "the LLM verifier judged the answers" bash -c \
  "'$AUTODATA' status --store '$T/llm/store.db' --json | python3 -c \"import json,sys; r=json.load(sys.stdin)['calls']['by_role']; sys.exit(0 if r['judge_weak']['ok']>0 and r['judge_strong']['ok']>0 else 1)\""
check "local matcher and LLM verifier give the same dataset" cmp "$T/auto/dataset.jsonl" "$T/llm/dataset.jsonl"
check "every example meets the exact-count gate (weak <= 1/4, strong >= 3/4)" python3 -c "
import json, sys
for line in open('$T/auto/dataset.jsonl'):
    e = json.loads(line)
    w, s = e['weak_scores'], e['strong_scores']
    assert 'answer' in e and 'rubric' not in e, e['id']
    assert len(w) == 4 and len(s) == 4, e['id']
    assert sum(w) <= 1 and sum(s) >= 3, (e['id'], w, s)
"
finish
