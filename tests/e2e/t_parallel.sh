#!/usr/bin/env bash
# t_parallel.sh - several challengers per round (roles.challenger.parallel): the key is
# validated; parallel: 1 is the default byte for byte; with parallel: 3 every round records
# its three candidates (index 0..2), the survivors are evaluated in the stated order
# (eval/screen.h) until one is accepted, the accepted examples are complete, the next
# round's feedback covers the evaluated candidates; the dataset does not depend on the
# order replies arrive in (in-process = HTTP with latency jitter), the call budget holds and a
# run killed mid-way resumes to the same dataset; the card records the angle line.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 16 --seed 3 --out "$T/src.jsonl" 2>/dev/null
export AUTODATA_SIM_SOURCES=$T/src.jsonl
par() { # par N RECIPE OUT: RECIPE with roles.challenger.parallel N
  sed "s/model: sim-challenger, temperature: 0.7}/model: sim-challenger, temperature: 0.7, parallel: $1}/" "$2" >"$3"
}
par 3 examples/sim.yaml "$T/p3.yaml"
par 1 examples/sim.yaml "$T/p1.yaml"
line=$(grep -n 'parallel:' "$T/p3.yaml" | cut -d: -f1)

# ---- validation: file:line:column and the field
for bad in 0 9 three; do
  par "$bad" examples/sim.yaml "$T/bad.yaml"
  "$AUTODATA" validate "$T/bad.yaml" >"$T/bad.out" 2>&1
  check "parallel: $bad is refused" test $? -ne 0
  check "parallel: $bad names file:line:col and the field" \
    grep -q "bad.yaml:$line:[0-9]*: roles.challenger.parallel" "$T/bad.out"
done
sed 's/model: sim-solver@0.35, samples: 3}/model: sim-solver@0.35, samples: 3, parallel: 2}/' \
  examples/sim.yaml >"$T/bad.yaml"
"$AUTODATA" validate "$T/bad.yaml" >"$T/bad.out" 2>&1
check "parallel is a challenger key only" grep -q "unknown key 'parallel' in roles.weak" "$T/bad.out"
"$AUTODATA" validate "$T/p3.yaml" >"$T/v3.out" 2>&1
check "validate shows it" grep -q "challenger .*parallel 3" "$T/v3.out"

# ---- parallel: 1 is the default, byte for byte
AUTODATA_OUT=$T/d "$AUTODATA" run examples/sim.yaml --quiet >/dev/null 2>&1
AUTODATA_OUT=$T/one "$AUTODATA" run "$T/p1.yaml" --quiet >/dev/null 2>&1
check "parallel: 1 gives the default's dataset" cmp "$T/d/dataset.jsonl" "$T/one/dataset.jsonl"
check "parallel: 1 gives the default's candidates" cmp "$T/d/candidates.jsonl" "$T/one/candidates.jsonl"

# ---- parallel: 3 in-process
AUTODATA_OUT=$T/a "$AUTODATA" run "$T/p3.yaml" --quiet >"$T/a.out" 2>&1
check "parallel: 3 runs" test $? -eq 0
check "records, order and examples follow the rule" python3 - "$T/a" <<'PY'
import json, sys, collections
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + '/candidates.jsonl')]
rounds = collections.defaultdict(list)
for r in rows:
    rounds[(r['source_id'], r['round'])].append(r)
multi = 0
for key, rs in rounds.items():
    assert sorted(r['index'] for r in rs) == [0, 1, 2], key
    for r in rs:
        assert r['record']['index'] == r['index'] and r['record']['screen']['of'] == 3, key
    surv = [r for r in rs if r['record']['screen']['order'] is not None]
    out = [r for r in rs if r['record']['screen']['order'] is None]
    for r in out:  # screened out: its own reason, never a solver
        assert r['reason'].split(':')[0] in ('parse_error', 'check', 'quality', 'truncated', 'error'), r
        assert r['record']['stats'] is None, key
    # the rule: fewer quality issues, then a first reply before a repaired one, then the index
    rank = lambda r: (len((r['record']['quality'] or {}).get('issues') or []),
                      r['record']['repaired'], r['index'])
    want = [r['index'] for r in sorted(surv, key=rank)]
    got = [r['index'] for r in sorted(surv, key=lambda r: r['record']['screen']['order'])]
    assert want == got and [r['record']['screen']['order'] for r in surv].count(None) == 0, key
    assert sorted(r['record']['screen']['order'] for r in surv) == list(range(len(surv))), key
    ev = [r for r in surv if r['record']['stats'] is not None]
    # evaluated: a prefix of the order; at most one accepted, the last evaluated
    assert sorted(r['record']['screen']['order'] for r in ev) == list(range(len(ev))), key
    acc = [r for r in rs if r['verdict'] == 'accepted']
    assert len(acc) <= 1, key
    if acc:
        assert acc[0]['record']['screen']['order'] == len(ev) - 1, key
    for r in surv:
        if r['record']['stats'] is None:
            assert acc and r['reason'] == 'not_evaluated:accepted_earlier', (key, r['reason'])
    multi += len(ev) >= 2
assert multi > 0, 'no round evaluated a second survivor'
ex = [json.loads(l) for l in open(d + '/dataset.jsonl')]
acc = {(r['source_id']) for r in rows if r['verdict'] == 'accepted'}
assert ex and len(ex) == len(acc), (len(ex), len(acc))
for e in ex:
    assert e['question'] and e['reference_answer'] and e['rubric'], e['id']
    assert len(e['weak_scores']) == 3 and len(e['strong_scores']) == 3, e['id']
print('rounds', len(rounds), 'with a second survivor evaluated', multi, 'examples', len(ex))
PY
# the feedback of a round with two evaluated candidates names both (orchestrator history)
sr=$(python3 - "$T/a" <<'PY'
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1] + '/candidates.jsonl')]
ev = collections.Counter((r['source_id'], r['round']) for r in rows if r['record']['stats'] is not None
                         and r['verdict'] == 'rejected')
last = {}
for r in rows:
    last[r['source_id']] = max(last.get(r['source_id'], 0), r['round'])
for (s, rd), n in sorted(ev.items()):
    if rd == 1 and n >= 2 and last[s] >= 2:
        print(s, n); break
PY
)
set -- $sr
if [ -n "${1:-}" ]; then
  "$AUTODATA" show "$T/a" --source "$1" --round 2 --prompts >"$T/show.out" 2>&1
  check "round 2's history covers round 1's $2 evaluated candidates" \
    grep -q "Rounds so far: 1, with $2 candidates" "$T/show.out"
else
  fail "no source with two evaluated candidates in round 1 and a round 2"
fi
check "the card records the angle line" grep -q '`challenger_angle`, sha256' "$T/a/DATACARD.md"
check "the card's summary names the parallel challengers" grep -q 'in each round 3 challengers' "$T/a/DATACARD.md"
check "a round of one's card has no angle line" bash -c "! grep -q challenger_angle '$T/d/DATACARD.md'"

# ---- the order replies arrive in does not matter: HTTP with latency jitter
port=$(free_port)
start_sim_server "$port" --seed 9 --latency-ms 3 --jitter-ms 6 || fail "sim-server start"
par 3 examples/sim-http.yaml "$T/h3.yaml"
export AUTODATA_SIM_URL=http://127.0.0.1:$port/v1
AUTODATA_OUT=$T/h "$AUTODATA" run "$T/h3.yaml" --quiet --concurrency 4 >"$T/h.out" 2>&1
check "HTTP run exits 0" test $? -eq 0
check "in-process and HTTP datasets are byte-identical" cmp "$T/a/dataset.jsonl" "$T/h/dataset.jsonl"
check "in-process and HTTP candidates are byte-identical" cmp "$T/a/candidates.jsonl" "$T/h/candidates.jsonl"

# ---- budgets hold, and a run stopped or killed mid-way resumes to the same dataset
AUTODATA_MAX_CALLS=120 AUTODATA_OUT=$T/b "$AUTODATA" run "$T/h3.yaml" --quiet >"$T/b.out" 2>&1
check "max_calls stops the run (exit 3)" test $? -eq 3
sent=$(sed -n 's/.*model calls sent: \([0-9]*\),.*/\1/p' "$T/b.out")
check "no more calls than max_calls ($sent <= 120)" test "${sent:-999}" -le 120
for i in 1 2 3; do
  AUTODATA_OUT=$T/b "$AUTODATA" run "$T/h3.yaml" --quiet --concurrency 4 >"$T/k.$i.out" 2>&1 &
  pid=$!
  sleep 0.$((i * 2))
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
done
AUTODATA_OUT=$T/b "$AUTODATA" run "$T/h3.yaml" --quiet >"$T/b2.out" 2>&1
check "the resume after the budget and the kills exits 0" test $? -eq 0
check "... and gives the same dataset" cmp "$T/a/dataset.jsonl" "$T/b/dataset.jsonl"
check "... and the same candidates" cmp "$T/a/candidates.jsonl" "$T/b/candidates.jsonl"
stop_sim_server "$port"
finish
