#!/usr/bin/env bash
# t_run_edges.sh - `autodata run` at its edges: a budget stop and its resume, a model
# that answers garbage in one role, the lock against a second process, and the
# store-only regeneration of the card and the exports.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 30 --seed 4 --out "$T/src.jsonl" 2>/dev/null
export AUTODATA_SIM_SOURCES=$T/src.jsonl

# Reference run.
AUTODATA_OUT=$T/ref "$AUTODATA" run examples/sim.yaml --quiet >/dev/null 2>&1
check "reference run exits 0" test $? -eq 0

# A call budget stops the run cleanly (exit 3), resuming finishes it identically.
AUTODATA_MAX_CALLS=300 AUTODATA_OUT=$T/b "$AUTODATA" run examples/sim.yaml --quiet >"$T/b1.out" 2>&1; rc=$?
check "budget stop exits 3" test "$rc" -eq 3
check "budget stop says why" grep -q "budget reached: max_calls" "$T/b1.out"
check "budget stop leaves sources in progress or pending" bash -c \
  "'$AUTODATA' status --store '$T/b/store.db' --json | python3 -c \"import json,sys; s=json.load(sys.stdin)['sources']; sys.exit(0 if s['in_progress']+s['pending']>0 else 1)\""
AUTODATA_OUT=$T/b "$AUTODATA" run examples/sim.yaml --quiet >"$T/b2.out" 2>&1; rc=$?
check "resume after the budget stop exits 0" test "$rc" -eq 0
check "resume after the budget stop gives the reference dataset" cmp "$T/ref/dataset.jsonl" "$T/b/dataset.jsonl"

# --cache-from: a fresh store answered entirely from another run's calls.
AUTODATA_OUT=$T/cf "$AUTODATA" run examples/sim.yaml --quiet --cache-from "$T/ref/store.db" >"$T/cf.out" 2>&1
check "--cache-from run exits 0" test $? -eq 0
check "--cache-from sends no call" grep -q "model calls sent: 0," "$T/cf.out"
check "--cache-from gives the same dataset" cmp "$T/ref/dataset.jsonl" "$T/cf/dataset.jsonl"

# A judge that answers prose, not verdicts: the candidates judged so far end with a
# recorded reason, and the run stops (exit 3) with a diagnosis naming the role, the
# model and a sample reply instead of writing off the whole corpus.
# (Full evaluation: with early decisions' waves of one sample, the 10 replies that stop the
# run are each a different source's first, and no candidate has ended by then.)
sed -e 's/model: sim-judge}/model: not-a-sim-model}/' \
  -e 's/^budgets:/evaluation: {early_stop: false}\n\nbudgets:/' examples/sim.yaml >"$T/garbage-judge.yaml"
AUTODATA_OUT=$T/g "$AUTODATA" run "$T/garbage-judge.yaml" --quiet >"$T/g.out" 2>&1; rc=$?
check "garbage judge: the run stops (exit 3)" test "$rc" -eq 3
check "garbage judge: the diagnosis names role, model and a reply" \
  grep -q "role judge (model 'not-a-sim-model' on endpoint 'sim') gave 10 unusable replies in a row; last: judge reply: .*reply: 'This is a simulated reply" "$T/g.out"
check "garbage judge: no example accepted" test ! -s "$T/g/dataset.jsonl"
check "garbage judge: rejections say error:weak" grep -q '"reason":"error:weak"' "$T/g/rejected.jsonl"
check "garbage judge: the detail names the parse problem" bash -c \
  "grep -q 'no weak answer could be judged' '$T/g/rejected.jsonl'"

# The card and the exports come from the store alone.
"$AUTODATA" card --store "$T/ref/store.db" --out "$T/card.md" >/dev/null 2>&1
check "card regenerated from the store equals the run's" cmp "$T/ref/DATACARD.md" "$T/card.md"
check "card holds the sha256 of every prompt the run used" bash -c \
  "for h in \$(cd prompts && sha256sum orchestrator.md challenger-rubric.md quality.md solver.md judge-rubric.md | cut -c1-64); do grep -q \$h '$T/card.md' || exit 1; done"
"$AUTODATA" export --store "$T/ref/store.db" --format chat --holdout 3 --seed 7 --out "$T/exp" >/dev/null 2>&1
check "chat export: train + heldout cover the dataset" test \
  "$(( $(wc -l <"$T/exp/train.jsonl") + $(wc -l <"$T/exp/heldout.jsonl") ))" -eq "$(wc -l <"$T/ref/dataset.jsonl")"
check "chat export lines carry messages" bash -c "head -1 '$T/exp/train.jsonl' | grep -q '\"messages\"'"

# A server without structured outputs (400 on response_format): the run warns once,
# sends the challenger's requests without it and still makes the same dataset.
nrf_port=$(free_port)
start_sim_server "$nrf_port" --no-response-format || fail "sim-server start"
AUTODATA_SIM_URL=http://127.0.0.1:$nrf_port/v1 AUTODATA_OUT=$T/nrf "$AUTODATA" run examples/sim-http.yaml --quiet >"$T/nrf.out" 2>"$T/nrf.err"; rc=$?
check "no response_format: run exits 0" test "$rc" -eq 0
check "no response_format: one warning naming the endpoint" test "$(grep -c "endpoint 'simhttp' refused response_format" "$T/nrf.err")" -eq 1
check "no response_format: same dataset as with it" cmp "$T/ref/dataset.jsonl" "$T/nrf/dataset.jsonl"

# A server that is down: the run stops after a few failed calls, writes no source
# off, and a rerun once the server is up finishes with the reference dataset.
down_port=$(free_port)
sed -e 's/max_retries: 12/max_retries: 1/' examples/sim-http.yaml >"$T/down.yaml"
AUTODATA_SIM_URL=http://127.0.0.1:$down_port/v1 AUTODATA_OUT=$T/down "$AUTODATA" run "$T/down.yaml" --quiet >"$T/down1.out" 2>&1; rc=$?
check "down server: run stops with exit 3" test "$rc" -eq 3
check "down server: the reason names the endpoint and the refusal" \
  grep -q "stopped: 3 calls in a row failed after their retries; last: endpoint 'simhttp' (http://127.0.0.1:$down_port/v1): connection refused" "$T/down1.out"
check "down server: no source written off" bash -c \
  "'$AUTODATA' status --store '$T/down/store.db' --json | python3 -c \"import json,sys; s=json.load(sys.stdin)['sources']; sys.exit(0 if s['exhausted']==0 and s['done']==0 else 1)\""
start_sim_server "$down_port" || fail "sim-server start"
AUTODATA_SIM_URL=http://127.0.0.1:$down_port/v1 AUTODATA_OUT=$T/down "$AUTODATA" run "$T/down.yaml" --quiet >"$T/down2.out" 2>&1; rc=$?
check "down server: the rerun finishes (exit 0)" test "$rc" -eq 0
check "down server: the rerun gives the reference dataset" cmp "$T/ref/dataset.jsonl" "$T/down/dataset.jsonl"

# A second process on the same store is refused while the first runs.
port=$(free_port)
start_sim_server "$port" --latency-ms 100 || fail "sim-server start"
AUTODATA_SIM_URL=http://127.0.0.1:$port/v1 AUTODATA_OUT=$T/l "$AUTODATA" run examples/sim-http.yaml --quiet >/dev/null 2>&1 &
first=$!
for _ in $(seq 1 50); do [ -e "$T/l/store.db" ] && break; sleep 0.1; done
sleep 0.3
AUTODATA_SIM_URL=http://127.0.0.1:$port/v1 AUTODATA_OUT=$T/l "$AUTODATA" run examples/sim-http.yaml --quiet >"$T/l2.out" 2>&1; rc=$?
check "second process refused" test "$rc" -ne 0
check "refusal names the lock holder" grep -q "in use by pid $first" "$T/l2.out"
kill -INT "$first"; wait "$first"; rc=$?
check "SIGINT stops the first run cleanly (exit 3)" test "$rc" -eq 3

# The first Ctrl-C is acknowledged at once with what the run waits for; the last progress
# line says the run stopped (no "ETA 0s"); no progress line comes before a second has passed.
port=$(free_port)
start_sim_server "$port" --latency-ms 400 || fail "sim-server start"
AUTODATA_SIM_URL=http://127.0.0.1:$port/v1 AUTODATA_OUT=$T/ack "$AUTODATA" run examples/sim-http.yaml \
  --progress plain >"$T/ack.out" 2>"$T/ack.err" &
pid=$!
sleep 2
kill -INT "$pid"; wait "$pid"; rc=$?
check "ack: interrupted run exits 3" test "$rc" -eq 3
check "ack: the interrupt is acknowledged with the calls in flight" \
  grep -Eq "^autodata: interrupted: starting no new work; waiting for [1-9][0-9]* call\(s\) in flight" "$T/ack.err"
check "ack: the last progress line says the run stopped" \
  bash -c "grep '^autodata: sources' '$T/ack.err' | tail -1 | grep -q 'stopped after [0-9]*s'"
check "ack: no progress line claims ETA 0s" bash -c "! grep -q 'ETA 0s' '$T/ack.err'"

# A wrong base URL: the 404 names the URL requested and suggests the fix.
sed -e 's/max_retries: 12/max_retries: 0/' examples/sim-http.yaml >"$T/nov1.yaml"
AUTODATA_SIM_URL=http://127.0.0.1:$port/api AUTODATA_OUT=$T/nov1 AUTODATA_LIMIT=2 "$AUTODATA" run "$T/nov1.yaml" \
  --quiet >"$T/nov1.out" 2>&1; rc=$?
check "404: run stops with exit 3" test "$rc" -eq 3
check "404: the error names the URL requested and the likely fix" \
  grep -q "(POST http://127.0.0.1:$port/api/chat/completions): answered HTTP 404.*base_url usually ends in /v1" "$T/nov1.out"
check "404: no 'after 1 attempts'" bash -c "! grep -q 'after 1 attempts' '$T/nov1.out'"
stop_sim_server "$port"
finish
