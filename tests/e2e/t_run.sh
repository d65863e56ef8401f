#!/usr/bin/env bash
# t_run.sh - `autodata run` end to end on the sim world: outputs, resume,
# in-process vs HTTP-with-faults byte identity, recipe-change refusal.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 40 --seed 3 --out "$T/src.jsonl" 2>/dev/null

run_sim() { # run_sim RECIPE OUTDIR [ARGS...]
  local recipe=$1 out=$2; shift 2
  AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$out "$AUTODATA" run "$recipe" --quiet "$@"
}

run_sim examples/sim.yaml "$T/a" >"$T/a.out" 2>"$T/a.err"; rc=$?
check "in-process run exits 0" test "$rc" -eq 0
check "summary names the dataset" grep -q "^dataset: *$T/a/dataset.jsonl" "$T/a.out"
check "dataset has examples" test "$(wc -l <"$T/a/dataset.jsonl")" -gt 5
check "rejected.jsonl written" test -s "$T/a/rejected.jsonl"
check "DATACARD.md written" grep -q "sim-demo" "$T/a/DATACARD.md"
check "dataset lines are JSON with scores" bash -c "head -1 '$T/a/dataset.jsonl' | grep -q '\"weak_scores\"'"
check "dataset sorted by id" bash -c "python3 -c \"
import json,sys
ids=[json.loads(l)['id'] for l in open('$T/a/dataset.jsonl')]
sys.exit(0 if ids==sorted(ids) and len(set(ids))==len(ids) else 1)\""
check "no wall-clock fields in the dataset" bash -c "! grep -q -E '\"(created|time|timestamp)\"' '$T/a/dataset.jsonl'"

check "a reply that did not parse got its repair turn" bash -c \
  "sqlite3 '$T/a/store.db' \"SELECT count(*) FROM calls WHERE role = 'challenger_repair'\" | grep -qv '^0$'"
check "repaired candidates are recorded as such" grep -q '"repaired":true' "$T/a/candidates.jsonl"

# A second run resumes: nothing to do, nothing sent, same bytes.
cp "$T/a/dataset.jsonl" "$T/a.first"
run_sim examples/sim.yaml "$T/a" >"$T/a2.out" 2>&1
check "resume sends no call" grep -q "model calls sent: 0," "$T/a2.out"
check "resume keeps the dataset" cmp -s "$T/a.first" "$T/a/dataset.jsonl"

# A changed seed refuses to resume and says what changed; --new-run proceeds.
AUTODATA_SEED=2 run_sim examples/sim.yaml "$T/a" >"$T/a3.out" 2>&1; rc=$?
check "changed seed refused (exit 2 or 1)" test "$rc" -ne 0
check "refusal names the change" grep -q "seed 1 -> 2" "$T/a3.out"
AUTODATA_SEED=2 run_sim examples/sim.yaml "$T/a" --new-run >"$T/a4.out" 2>&1; rc=$?
check "--new-run proceeds" test "$rc" -eq 0

# The same recipe over HTTP, against a faulty server: byte-identical dataset.
port=$(free_port)
start_sim_server "$port" --seed 9 --faults 429=0.1,500=0.05,drop=0.02,garbage=0.02 --retry-after 0 || fail "sim-server start"
AUTODATA_SIM_URL=http://127.0.0.1:$port/v1 run_sim examples/sim-http.yaml "$T/b" >"$T/b.out" 2>"$T/b.err"; rc=$?
check "HTTP run with faults exits 0" test "$rc" -eq 0
check "in-process and HTTP-with-faults datasets are byte-identical" cmp "$T/a.first" "$T/b/dataset.jsonl"
retries=$("$AUTODATA" status --store "$T/b/store.db" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['calls']['retries'])")
echo "  (HTTP run retried $retries attempts)"
check "faults caused retries" test "${retries:-0}" -gt 0

# A malformed recipe names file:line:column.
printf 'name: x\nroles:\n  weak: {endpoint: nowhere, model: m}\n' >"$T/bad.yaml"
"$AUTODATA" run "$T/bad.yaml" >"$T/bad.out" 2>&1; rc=$?
check "bad recipe exits 2" test "$rc" -eq 2
check "bad recipe error names file:line:col" grep -q "bad.yaml:[0-9]*:[0-9]*:" "$T/bad.out"
finish
