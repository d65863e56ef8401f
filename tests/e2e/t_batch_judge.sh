#!/usr/bin/env bash
# t_batch_judge.sh - batched judging (evaluation.batch_judge): one judge call grades all the
# answers of a wave. With a noise-free sim judge it grades exactly as per-answer judging
# (dataset.jsonl byte-identical, every verdict the same) in fewer judge calls; the batch
# calls are stored under their own labels; the default judges per answer.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 24 --seed 5 --out "$T/src.jsonl" 2>/dev/null

# arm NAME EVALUATION-BLOCK TASK-RECIPE
arm() {
  sed -e "s|model: sim-judge}|model: 'sim-judge@err=0,lenient=0'}|" \
    -e "s|^budgets:|evaluation: $2\n\nbudgets:|" "examples/$3" >"$T/$1.yaml"
  AUTODATA_SIM_SOURCES="$T/src.jsonl" AUTODATA_OUT="$T/$1" "$AUTODATA" run "$T/$1.yaml" --quiet \
    >"$T/$1.log" 2>&1 || { echo "run $1 failed:"; cat "$T/$1.log"; }
}
verdicts() { sqlite3 "$T/$1/store.db" "SELECT source_id, round, verdict, reason FROM candidates ORDER BY 1, 2"; }
judge_calls() { sqlite3 "$T/$1/store.db" "SELECT count(*) FROM calls WHERE model LIKE 'sim-judge%'"; }
labels() { sqlite3 "$T/$1/store.db" "SELECT DISTINCT role FROM calls WHERE model LIKE 'sim-judge%' ORDER BY 1" | tr '\n' ' '; }

arm single "{early_stop: false}" sim.yaml
arm batch "{early_stop: false, batch_judge: true}" sim.yaml
arm ebatch "{early_stop: true, wave: 2, batch_judge: true}" sim.yaml
check "the runs accept examples" test "$(wc -l <"$T/single/dataset.jsonl")" -gt 5
for a in batch ebatch; do
  check "$a: dataset.jsonl byte-identical to per-answer judging" cmp -s "$T/single/dataset.jsonl" "$T/$a/dataset.jsonl"
  check "$a: every verdict and reason the same" test "$(verdicts single)" = "$(verdicts $a)"
  check "$a: fewer judge calls ($(judge_calls $a) < $(judge_calls single))" test "$(judge_calls $a)" -lt "$(judge_calls single)"
done
check "batch calls are labelled batch_weak, batch_strong ($(labels batch))" test "$(labels batch)" = "batch_strong batch_weak "
check "per-answer judging by default ($(labels single))" test "$(labels single)" = "judge_strong judge_weak "
identity() { AUTODATA_SIM_SOURCES="$T/src.jsonl" "$AUTODATA" validate "$T/$1.yaml" | sed -n 's/^identity *//p'; }
check "batched judging is part of the run's identity" test "$(identity single)" != "$(identity batch)"
check "early decisions are not ($(identity single))" test "$(identity batch)" = "$(identity ebatch)"
# a verifiable recipe with the LLM verifier batches its verdicts too
AUTODATA_MATCHER=llm arm vsingle "{early_stop: false}" sim-verifiable.yaml
AUTODATA_MATCHER=llm arm vbatch "{early_stop: false, batch_judge: true}" sim-verifiable.yaml
check "verifiable, LLM verifier: dataset.jsonl byte-identical" cmp -s "$T/vsingle/dataset.jsonl" "$T/vbatch/dataset.jsonl"
check "verifiable, LLM verifier: fewer judge calls ($(judge_calls vbatch) < $(judge_calls vsingle))" test "$(judge_calls vbatch)" -lt "$(judge_calls vsingle)"
finish
