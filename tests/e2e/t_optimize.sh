#!/usr/bin/env bash
# t_optimize.sh - `autodata optimize` on the sim world (examples/sim-optimize.yaml):
#   - 12 iterations from the basic challenger prompt raise the held-out test split's pass rate
#     of the best harness over the baseline with non-overlapping bootstrap 95% CIs;
#   - OPTIMIZE.md shows the lineage, the accepted diffs and the test comparison; best/ holds
#     the prompts; the store records the splits (disjoint), the variants (refusals with their
#     reasons) and the evaluations, and the test split is evaluated only for the baseline
#     and the best harness, once each;
#   - a run killed with SIGKILL twice and resumed reproduces the uninterrupted run's lineage,
#     best harness and test numbers;
#   - Pareto selection with the minibatch gate under a calls budget stops (exit 3), still reads
#     the test split, and a rerun under the same budget replays the same lineage, sending nothing;
#   - bad input (no optimize: roles, a corpus too small for the splits) exits 2.
# The full 30-iteration study is bench/optimize/run.sh.
cd "$(dirname "$0")/../.." || exit 1
source tests/e2e/lib.sh
T=$E2E_TMP
"$AUTODATA" sim-sources --count 480 --seed 1 --out "$T/src.jsonl" >/dev/null 2>&1
check "sim corpus" test "$(wc -l <"$T/src.jsonl")" -eq 480

opt() { # opt OUT [ENV...] -- ARGS...
  local out=$1; shift
  env AUTODATA_SIM_SOURCES="$T/src.jsonl" AUTODATA_OUT="$T/$out" "$@"
}

# ---- the study: 12 iterations ----
opt main AUTODATA_ITERATIONS=12 "$AUTODATA" optimize examples/sim-optimize.yaml --quiet \
  >"$T/main.out" 2>"$T/main.err"
check "optimize exits 0" test $? -eq 0
O=$T/main/optimize
cat "$T/main.out"
check "OPTIMIZE.md, curve.jsonl, best/challenger.md" test -s "$O/OPTIMIZE.md" -a -s "$O/curve.jsonl" -a -s "$O/best/challenger.md"
check "OPTIMIZE.md has the lineage, accepted diffs and the test comparison" \
  bash -c "grep -q '^## Lineage' '$O/OPTIMIZE.md' && grep -q '^## Accepted diffs' '$O/OPTIMIZE.md' && grep -q '^| best |' '$O/OPTIMIZE.md' && grep -q '^+' '$O/OPTIMIZE.md'"
check "curve.jsonl: one line per iteration and the final numbers" \
  test "$(wc -l <"$O/curve.jsonl")" -eq 13
check "the best harness beats the baseline on the test split, CIs apart" python3 - "$O/curve.jsonl" <<'PY'
import json, sys
fin = [json.loads(l) for l in open(sys.argv[1])][-1]
t = fin["test"]
print("  baseline %.3f [%.3f, %.3f]  best %.3f [%.3f, %.3f]  (%d sources)" % (*t["baseline"], *t["best"], t["sources"]))
sys.exit(0 if fin["best"] != fin["baseline"] and t["best"][1] > t["baseline"][2] and t["sources"] == 400 else 1)
PY
DB=$O/store.db
q() { python3 -c "import sqlite3,sys; print(sqlite3.connect('file:$DB?mode=ro', uri=True).execute(sys.argv[1]).fetchone()[0])" "$1"; }
check "splits recorded, disjoint, sized" test "$(q "select count(*)||','||count(distinct key)||','||sum(json_extract(record,'$.split')='test') from opt_splits")" = "480,480,400"
check "refused proposals are recorded with their reason" \
  test "$(q "select count(*) from opt_variants where json_extract(record,'$.status')='refused' and (json_extract(record,'$.reason') like '%locked evaluator%' or json_extract(record,'$.reason') like '%no longer uses%')")" -ge 1
check "the test split is evaluated only for the baseline and the best, once each" \
  test "$(q "select count(*)||','||max(json_extract(record,'$.k')) from opt_evaluations where json_extract(record,'$.split')='test'")" = "2,0"
check "best/challenger.md is the best variant's text, not the baseline's" python3 - "$DB" "$O" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
fin = [json.loads(l) for l in open(sys.argv[2] + "/curve.jsonl")][-1]
rec = lambda sha: json.loads(db.execute("select record from opt_variants where key=?", (sha,)).fetchone()[0])
best = open(sys.argv[2] + "/best/challenger.md").read()
sys.exit(0 if best == rec(fin["best"])["prompts"]["challenger"] != rec(fin["baseline"])["prompts"]["challenger"] else 1)
PY
check "no evaluation on a test source before the end" \
  test "$(q "select count(*) from opt_evaluations e, json_each(json_extract(e.record,'$.per_source')) p, opt_splits s where s.key=p.key and json_extract(s.record,'$.split')='test' and json_extract(e.record,'$.split')!='test'")" = "0"

"$AUTODATA" status --store "$DB" >"$T/status.out" 2>&1
check "autodata status shows the optimisation's progress" \
  grep -qE '^optimization [0-9a-f]{16}: 12 iterations \([0-9]+ admitted, [0-9]+ not better, [0-9]+ refused\); best [0-9a-f]{8}' "$T/status.out"

# ---- resume: the same lineage after SIGKILLs ----
SMALL=(optimize examples/sim-optimize.yaml --quiet --train 10 --minibatch 3)
small() { # small OUT: a small optimisation
  opt "$1" AUTODATA_ITERATIONS=6 AUTODATA_VAL=12 AUTODATA_TEST=20 "$AUTODATA" "${SMALL[@]}"
}
small ref >"$T/ref.out" 2>&1
check "small optimisation exits 0" test $? -eq 0
# Kill it with SIGKILL twice: once it has recorded an iteration, then once the rerun has
# recorded a third (the store is read while it runs).
iters() {
  python3 -c "import sqlite3; print(sqlite3.connect('file:$T/killed/optimize/store.db?mode=ro', uri=True).execute('select count(*) from opt_iterations').fetchone()[0])" 2>/dev/null || echo 0
}
kills=0
for want in 1 3; do
  AUTODATA_SIM_SOURCES="$T/src.jsonl" AUTODATA_OUT="$T/killed" AUTODATA_ITERATIONS=6 \
    AUTODATA_VAL=12 AUTODATA_TEST=20 "$AUTODATA" "${SMALL[@]}" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 1200); do
    [ "$(iters)" -ge "$want" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
  wait "$pid" 2>/dev/null
done
check "killed twice mid-optimisation" test "$kills" -eq 2
small killed >"$T/killed.out" 2>&1
check "the resumed optimisation exits 0" test $? -eq 0
tail_of() { sed -n '/^## Test split/,$p' "$1"; }
check "same lineage, diffs, history and test numbers after SIGKILL and resume" \
  diff <(tail_of "$T/ref/optimize/OPTIMIZE.md") <(tail_of "$T/killed/optimize/OPTIMIZE.md")
check "same best harness after SIGKILL and resume" diff -r "$T/ref/optimize/best" "$T/killed/optimize/best"
check "the resumed session answered calls from the cache" grep -qE 'answered from the cache: [1-9]' "$T/killed.out"
check "... and sent fewer calls than the uninterrupted run" python3 -c "
import re, sys
n = lambda f: int(re.search(r'model calls sent: (\d+)', open(f).read()).group(1))
sys.exit(0 if n('$T/killed.out') < n('$T/ref.out') else 1)"

# ---- GEPA's settings, and the calls budget: stopped, tested, replayed the same ----
gepa() { # gepa OUT
  opt "$1" AUTODATA_ITERATIONS=50 AUTODATA_VAL=12 AUTODATA_TEST=20 AUTODATA_STRATEGY=pareto \
    AUTODATA_GATE=true AUTODATA_OPT_MAX_CALLS=4000 "$AUTODATA" "${SMALL[@]}"
}
gepa gepa >"$T/gepa.out" 2>&1
check "pareto + minibatch gate under a calls budget: exit 3 (stopped)" test $? -eq 3
check "... says the budget stopped it" grep -q 'stopped: budget reached: optimize.budgets.max_calls' "$T/gepa.out"
check "... and still compares baseline and best on the test split" grep -q '^test split (20 sources' "$T/gepa.out"
check "... OPTIMIZE.md names the strategy and the gate" grep -q 'strategy pareto (temperature 0.1), minibatch gate' "$T/gepa/optimize/OPTIMIZE.md"
cp "$T/gepa/optimize/OPTIMIZE.md" "$T/gepa1.md"
gepa gepa >"$T/gepa2.out" 2>&1
check "a rerun under the same budget replays: no call sent" grep -q 'model calls sent: 0,' "$T/gepa2.out"
check "... and reports the same lineage" diff <(tail_of "$T/gepa1.md") <(tail_of "$T/gepa/optimize/OPTIMIZE.md")

# ---- bad input ----
sed '/^optimize:/,/^output:/{/^output:/!d}' examples/sim-optimize.yaml >"$T/noopt.yaml"
cp examples/sim-optimize-challenger.md "$T/"
opt bad "$AUTODATA" optimize "$T/noopt.yaml" >"$T/noopt.out" 2>&1
check "no analyzer/implementer: exit 2" test $? -eq 2
check "... naming the missing roles" grep -q 'must name the analyzer and implementer' "$T/noopt.out"
opt bad "$AUTODATA" optimize examples/sim-optimize.yaml --test 1000 >"$T/small.out" 2>&1
check "a corpus too small for the splits: exit 2" test $? -eq 2
check "... saying how many sources the splits need" grep -q 'the splits need 1080' "$T/small.out"
finish
