#!/usr/bin/env bash
# t_feedback.sh - batched dataset-level feedback (recipe `analysis: {every: N}`, issue 17;
# docs/analyze.md "Batched feedback"), on the real binary and the sim world:
#   - 300 sim sources, a challenger with a favourite question (sim-challenger@habit=0.4,
#     docs/sim.md): the run with `analysis: {every: 10}` has a higher question-type entropy
#     and a lower near-duplicate rate than the same run without it, with non-overlapping 95%
#     bootstrap intervals (tests/e2e/feedback_stats.py: 2000 resamples of the sources), at an
#     acceptance inside the interval of the run without it;
#   - the ablation: the same run with a challenger that ignores the note
#     (sim-challenger@habit=0.4,notes=0) is not distinguishable from the run without it
#     (its entropy and near-duplicate intervals overlap those of the run without feedback);
#   - the notes are deterministic: another --concurrency gives the same dataset, and so does
#     a run over HTTP (the ASan build) killed (SIGKILL) at random moments and resumed;
#   - the notes are in the store (events), the candidate records and the data card.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
N=${AUTODATA_FEEDBACK_SOURCES:-300}
BIN=${AUTODATA_RELEASE:-$AUTODATA} # the 300-source arms: the release build when make e2e built it
"$AUTODATA" sim-sources --count "$N" --seed 1 --out "$T/src.jsonl" 2>/dev/null

# recipe NAME CHALLENGER_MODEL [EVERY]
recipe() {
  sed -e "s|model: sim-challenger,|model: '$2',|" examples/sim.yaml >"$T/$1.yaml"
  [ -z "$3" ] || printf 'analysis: {every: %s}\n' "$3" >>"$T/$1.yaml"
  echo "$T/$1.yaml"
}
arm() { # arm NAME RECIPE [ARGS...]
  local name=$1 f=$2; shift 2
  AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/$name "$BIN" run "$f" --quiet "$@" \
    >"$T/$name.out" 2>&1
  check "$name run exits 0" test $? -eq 0
  "$BIN" analyze "$T/$name" --json --out "$T/$name/analysis.json" >/dev/null
  python3 tests/e2e/feedback_stats.py "$T/$name" "$N" >"$T/$name.json"
  echo "  $name: $(cat "$T/$name.json")"
}
arm off "$(recipe off 'sim-challenger@habit=0.4')"
arm on "$(recipe on 'sim-challenger@habit=0.4' 10)"
arm ablation "$(recipe ablation 'sim-challenger@habit=0.4,notes=0' 10)"

# cmp_ci A B FIELD REL: REL is above (A's interval entirely above B's), below, or overlap.
cmp_ci() {
  python3 - "$T/$1.json" "$T/$2.json" "$3" "$4" <<'PY'
import json, sys
a, b = (json.load(open(p))[sys.argv[3]] for p in sys.argv[1:3])
rel = sys.argv[4]
ok = {"above": a[1] > b[2], "below": a[2] < b[1],
      "overlap": not (a[1] > b[2] or a[2] < b[1]),
      "inside": b[1] <= a[0] <= b[2]}[rel]
sys.exit(0 if ok else 1)
PY
}
check "feedback raises question-type entropy (CIs do not overlap)" cmp_ci on off entropy above
check "feedback lowers the near-duplicate rate (CIs do not overlap)" cmp_ci on off near_dup_rate below
check "acceptance with feedback lies inside the CI of the run without it" cmp_ci on off acceptance inside
check "ablation (note ignored): entropy CI overlaps the run without feedback" cmp_ci ablation off entropy overlap
check "ablation (note ignored): near-duplicate CI overlaps the run without feedback" \
  cmp_ci ablation off near_dup_rate overlap

# The notes: events in the store, the checkpoint in the candidate records, the card.
check "the store holds the dataset notes" bash -c \
  "sqlite3 '$T/on/store.db' \"select count(*) from events where json_extract(event,'\$.msg')='dataset note'\" | grep -qv '^0$'"
check "candidate records name their note" grep -q '"dataset_note":' "$T/on/candidates.jsonl"
check "the card shows the batched feedback" grep -q "Batched dataset feedback" "$T/on/DATACARD.md"
check "no note without analysis:" bash -c "! grep -q '\"dataset_note\":' '$T/off/candidates.jsonl'"

# Deterministic: another concurrency gives the same dataset.
AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/c3 "$BIN" run "$T/on.yaml" --quiet \
  --limit 80 --concurrency 3 >/dev/null 2>&1
AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/c64 "$BIN" run "$T/on.yaml" --quiet \
  --limit 80 --concurrency 64 >/dev/null 2>&1
check "concurrency 3 and 64 give the same dataset" cmp "$T/c3/dataset.jsonl" "$T/c64/dataset.jsonl"

# Deterministic over HTTP with kills (as t_resume.sh): the dataset equals an uninterrupted run's.
port=$(free_port)
start_sim_server "$port" --seed 1 --latency-ms 10 --jitter-ms 10 || fail "sim-server start"
sed -e "s|model: sim-challenger,|model: 'sim-challenger@habit=0.4',|" examples/sim-http.yaml \
  >"$T/http.yaml"
printf 'analysis: {every: 5}\n' >>"$T/http.yaml"
export AUTODATA_SIM_URL=http://127.0.0.1:$port/v1 AUTODATA_SIM_SOURCES=$T/src.jsonl
AUTODATA_OUT=$T/ref "$AUTODATA" run "$T/http.yaml" --quiet --limit 40 --concurrency 16 \
  >/dev/null 2>&1
check "uninterrupted HTTP run exits 0" test $? -eq 0
RANDOM=17
killed=0
for i in 1 2 3 4; do
  AUTODATA_OUT=$T/k "$AUTODATA" run "$T/http.yaml" --quiet --limit 40 --concurrency 16 \
    >/dev/null 2>&1 &
  pid=$!
  sleep "0.$(printf '%03d' $((RANDOM % 400 + 200)))"
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; killed=$((killed + 1)); fi
  wait "$pid" 2>/dev/null
done
AUTODATA_OUT=$T/k "$AUTODATA" run "$T/http.yaml" --quiet --limit 40 --concurrency 16 >/dev/null 2>&1
check "final resume exits 0" test $? -eq 0
echo "  kills landed: $killed"
check "at least one kill landed mid-run" test "$killed" -ge 1
check "dataset after kills equals the uninterrupted one" cmp "$T/ref/dataset.jsonl" "$T/k/dataset.jsonl"
stop_sim_server "$port" >/dev/null 2>&1
finish
