#!/usr/bin/env bash
# t_think.sh - reasoning solvers (`sim-solver@SKILL,think=N`, docs/sim.md): the judge grades
# the final answer, never the reasoning, in both server shapes (reasoning_content apart, and
# <think>...</think> in the content), so the dataset is byte-identical to think=0's while the
# solvers' completion tokens count the reasoning; `autodata eval` grades the same way.
# (Without the loop's stripping the weak solver's <think> block reaches the judge, whose
# leniency depends on the response's length, and the dataset differs.)
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 12 --seed 3 --out "$T/src.jsonl" 2>/dev/null

# recipe ARM WEAK-KEYS STRONG-KEYS: examples/sim.yaml with those solver keys
recipe() {
  sed -e "s|sim-solver@0.35, samples: 3|'sim-solver@0.35$2', samples: 3|" \
    -e "s|sim-solver@0.8, samples: 3|'sim-solver@0.8$3', samples: 3|" examples/sim.yaml >"$T/$1.yaml"
  AUTODATA_SIM_SOURCES="$T/src.jsonl" AUTODATA_OUT="$T/$1" "$AUTODATA" run "$T/$1.yaml" --quiet \
    >"$T/$1.log" 2>&1 || { echo "run $1 failed:"; cat "$T/$1.log"; }
}
tokens() { sqlite3 "$T/$1/store.db" "SELECT coalesce(sum(completion_tokens), 0) FROM calls WHERE role = '$2'"; }
calls() { sqlite3 "$T/$1/store.db" "SELECT count(*) FROM calls WHERE role = '$2'"; }

recipe t0 "" ""
recipe t1 ",think=1200,tags=1" ",think=300"
check "the runs accept examples" test "$(wc -l <"$T/t0/dataset.jsonl")" -gt 3
check "dataset.jsonl byte-identical to think=0's" cmp -s "$T/t0/dataset.jsonl" "$T/t1/dataset.jsonl"
check "the same solver calls" test "$(calls t0 weak)/$(calls t0 strong)" = "$(calls t1 weak)/$(calls t1 strong)"
w0=$(tokens t0 weak) w1=$(tokens t1 weak) s0=$(tokens t0 strong) s1=$(tokens t1 strong)
check "weak completion tokens count the reasoning ($w0 -> $w1)" test "$w1" -gt $((w0 + 150 * $(calls t0 weak)))
check "strong completion tokens count the reasoning ($s0 -> $s1)" test "$s1" -gt $((s0 + 150 * $(calls t0 strong)))
check "the judge's tokens are unchanged" test "$(tokens t0 judge_weak)" = "$(tokens t1 judge_weak)"
check "the card lists the reasoning length" grep -q '"think":300}' "$T/t1/DATACARD.md"
check "report.html shows the start of each reasoning, not all of it" \
  grep -q "more bytes of reasoning: autodata show prints them" "$T/t1/report.html"
first=$(head -1 "$T/src.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$AUTODATA" show "$T/t1/store.db" --source "$first" >"$T/show.txt" 2>&1
check "autodata show prints the reasoning whole" \
  test "$(grep -c '<think>' "$T/show.txt")" -gt 0 -a "$(grep -c 'more bytes of reasoning' "$T/show.txt")" = 0
# eval: the same grades whether the answer comes with its reasoning or not
ev() { "$AUTODATA" eval "$T/t0" --base-url sim --quiet --k 2 --json --model "$1" --out "$T/$2" >"$T/$2.json" 2>"$T/$2.err"; }
ev sim-solver@0.35 e0
ev 'sim-solver@0.35,think=200,tags=1' e1
mean() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metrics"]["mean@2"]["est"])' "$T/$1.json"; }
check "eval: the same mean@2 with <think> blocks ($(mean e0) = $(mean e1))" test "$(mean e0)" = "$(mean e1)"
check "eval: the recorded answers carry no reasoning" test "$(grep -c '<think>' "$T/e1/eval.jsonl")" = 0
# a reply cut off while reasoning has no answer: eval says so instead of grading it
"$AUTODATA" eval "$T/t0" --base-url sim --quiet --k 1 --max-tokens 50 --model 'sim-solver@0.35,think=200' \
  --out "$T/e2" >"$T/e2.out" 2>&1
check "eval: an answer cut off while reasoning is not graded" grep -q "cut off" "$T/e2/eval.jsonl"
finish
