#!/usr/bin/env bash
# reference-outputs.sh BINARY OUTDIR - run a fixed set of offline recipes with BINARY and write
# OUTDIR/SUMS: the sha256 of every output file and of every store table (timestamps and
# latencies left out). Two builds that behave the same give the same SUMS, so a refactoring
# that must not change behaviour is checked by
#
#   scripts/reference-outputs.sh /tmp/old/autodata /tmp/ref-old   # a build of the old commit
#   scripts/reference-outputs.sh build/autodata /tmp/ref-new
#   diff /tmp/ref-old/SUMS /tmp/ref-new/SUMS
#
# Cases: the agentic loop (5 and 8 rounds), a budget stop and its resume, both baselines
# (rubric and verifiable, LLM and local matchers, other filter settings), and the HTTP sim
# server with injected faults. Uses the examples/ recipes and prompts/ of this checkout.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BINARY OUTDIR" >&2; exit 2; }
A=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EX=$ROOT/examples
export AUTODATA_PROMPTS=$ROOT/prompts
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
"$A" sim-sources --count 60 --seed 1 --out "$OUT/sources.jsonl" >/dev/null
export AUTODATA_SIM_SOURCES=$OUT/sources.jsonl

run() { # case recipe [args...]
  local c=$1 rec=$2
  shift 2
  AUTODATA_OUT="$OUT/$c" "$A" run "$rec" --quiet "$@" >"$OUT/$c.stdout" 2>"$OUT/$c.stderr" ||
    echo "rc=$?" >>"$OUT/$c.stdout"
}
run agentic "$EX/sim.yaml"
AUTODATA_ROUNDS=8 run agentic-r8 "$EX/sim.yaml"
run si-rubric "$EX/sim.yaml" --method self-instruct
run cot-rubric "$EX/sim.yaml" --method cot-self-instruct
run cot-rubric-k6 "$EX/sim.yaml" --method cot-self-instruct --cot-k 6 --rip-threshold 0.3
AUTODATA_MAX_CALLS=700 run budget "$EX/sim.yaml"
cp "$OUT/budget/dataset.jsonl" "$OUT/budget.first.jsonl"
run budget "$EX/sim.yaml"
run verif "$EX/sim-verifiable.yaml"
AUTODATA_MATCHER=llm run verif-llm "$EX/sim-verifiable.yaml"
run si-verif "$EX/sim-verifiable.yaml" --method self-instruct
run cot-verif "$EX/sim-verifiable.yaml" --method cot-self-instruct
AUTODATA_MATCHER=llm run cot-verif-llm "$EX/sim-verifiable.yaml" --method cot-self-instruct

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$A" sim-server --host 127.0.0.1 --port "$port" --seed 9 --retry-after 0 \
  --faults 429=0.1,500=0.05,drop=0.02,garbage=0.02 >"$OUT/sim.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v1/models" && break; sleep 0.1; done
export AUTODATA_SIM_URL=http://127.0.0.1:$port/v1
run http "$EX/sim-http.yaml"
run http-cot "$EX/sim-http.yaml" --method cot-self-instruct
kill $pid
wait $pid 2>/dev/null || true

# The store's tables as SQL sees them; a cache key written as bytes (docs/store.md, compact
# records) is shown as the hex of the text keys written before. Candidates' records and the
# examples are compressed in the store: their content is checked through the run's
# candidates.jsonl (every candidate with its record) and dataset.jsonl, which it writes from them.
for d in "$OUT"/*/; do
  db=$d/store.db
  [ -f "$db" ] || continue
  key="CASE typeof(cache_key) WHEN 'blob' THEN lower(hex(cache_key)) ELSE cache_key END"
  sqlite3 "$db" "SELECT role, source_id, round, endpoint, model, $key AS k, status, error, http_status,
    prompt_tokens, completion_tokens, cache_hit FROM calls
    ORDER BY source_id, round, role, k, cache_hit, status" >"$d/calls.txt"
  sqlite3 "$db" "SELECT source_id, round, idx, verdict, reason FROM candidates
    ORDER BY source_id, round, idx" >"$d/candidates.txt"
  sqlite3 "$db" "SELECT run, example_id, source_id FROM examples ORDER BY example_id" >"$d/examples.txt"
  sqlite3 "$db" "SELECT * FROM sources ORDER BY source_id" >"$d/sources.txt"
  sqlite3 "$db" "SELECT level, event FROM events ORDER BY id" >"$d/events.txt"
done
cd "$OUT"
sed -i -E 's/ in [0-9.]+s:/ in Xs:/' ./*.stdout # wall time
sed -i "s#$OUT#OUT#g" ./*.stdout ./*/DATACARD.md # where this copy was written
rm -f http/DATACARD.md http-cot/DATACARD.md # the port and the retry counts vary
find . -type f ! -name 'store.db*' ! -name '*.log' ! -name '*.stderr' ! -name SUMS | sort |
  xargs sha256sum >SUMS
echo "$OUT/SUMS: $(wc -l <SUMS) files"
