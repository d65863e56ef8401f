#!/usr/bin/env bash
# t_paper.sh - the paper's three setups: examples/cs-paper.yaml, legal-paper.yaml and
# math-paper.yaml validate (with their servers and models given by the environment), and
# their sim twins run end to end offline: the CS twin's signed rubrics (negative criteria,
# reasoning_skills), the legal twin's two-stage challenger (the unsuitable exit), loop judge,
# 5 + 3 samples and programmatic overrides (candidates sent back with the matching text,
# shown to the next round's writer), the maths twin's
# exact-count gate over 4 + 4 samples judged by the LLM verifier, with 3 challengers per round.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
printf '{"id": "p1", "title": "A paper", "text": "Some text about a result."}\n' >"$T/corpus.jsonl"
for r in cs legal math; do
  AUTODATA_CORPUS=$T/corpus.jsonl WEAK_URL=http://127.0.0.1:9/v1 STRONG_URL=http://127.0.0.1:9/v1 \
    AGENT_URL=http://127.0.0.1:9/v1 WEAK_MODEL=w STRONG_MODEL=s AGENT_MODEL=a AGENT_API_KEY=test-key-not-secret \
    "$AUTODATA" validate "examples/$r-paper.yaml" >"$T/v-$r.out" 2>&1
  check "examples/$r-paper.yaml validates" test $? -eq 0
done
check "cs-paper: the signed rubric and its prompts" bash -c \
  "grep -q 'rubric      signed: 7..10 positive (weights 1..10), 3..5 negative (weights -10..-1), reasoning_skills required' '$T/v-cs.out' &&
   grep -q 'challenger-rubric-signed.md' '$T/v-cs.out' && grep -q 'judge-rubric-signed.md' '$T/v-cs.out'"
check "legal-paper: the overrides" grep -q 'overrides   max question 1000 chars, 4 refused patterns' "$T/v-legal.out"
check "math-paper: the exact-count gate" grep -q 'weak_correct <= 1' "$T/v-math.out"
check "math-paper: 3 challengers per round" grep -q 'challenger .*parallel 3' "$T/v-math.out"

"$AUTODATA" sim-sources --count 15 --seed 3 --out "$T/src.jsonl" 2>/dev/null
export AUTODATA_SIM_SOURCES=$T/src.jsonl
for r in cs legal math; do
  AUTODATA_OUT=$T/$r "$AUTODATA" run "examples/sim-$r-paper.yaml" --quiet >"$T/$r.out" 2>&1
  check "sim-$r-paper runs end to end" test $? -eq 0
  check "sim-$r-paper accepts examples" test "$(wc -l <"$T/$r/dataset.jsonl")" -gt 3
done

check "cs twin: every example has a signed rubric and reasoning_skills" python3 -c "
import json
for line in open('$T/cs/dataset.jsonl'):
    e = json.loads(line)
    cats = [c['category'] for c in e['rubric']]
    assert 'negative' in cats and 'positive' in cats, e['id']
    for c in e['rubric']:
        assert (c['weight'] < 0) == (c['category'] == 'negative'), (e['id'], c)
    assert 2 <= len(e['reasoning_skills']) <= 3, e['id']
"
check "cs twin: candidates with negative criteria reached the solvers" python3 -c "
import json
n = 0
for line in open('$T/cs/candidates.jsonl'):
    r = json.loads(line)['record']
    c = r.get('candidate') or {}
    if any(x.get('category') == 'negative' for x in c.get('rubric', [])) and r.get('weak_scores'):
        n += 1
assert n > 0
"
check "cs twin: the card records the program's prompt texts" grep -q '### Text the program writes into prompts' "$T/cs/DATACARD.md"

check "legal twin: 5 weak + 3 strong samples per example" python3 -c "
import json
for line in open('$T/legal/dataset.jsonl'):
    e = json.loads(line)
    assert len(e['weak_scores']) == 5 and len(e['strong_scores']) == 3, e['id']
"
check "legal twin: the overrides sent candidates back with the matching text" python3 -c "
import json
d = [json.loads(l) for l in open('$T/legal/rejected.jsonl')]
d = [r['detail'] for r in d if r['reason'] == 'check:pattern']
assert d and all('refused pattern \'reconstruct the study\': \"Reconstruct the study\"' in x for x in d), d
"
sid=$(python3 -c "
import json
for line in open('$T/legal/candidates.jsonl'):
    r = json.loads(line)
    if r['reason'] == 'check:pattern':
        print(r['source_id'], r['round']); break
")
set -- $sid
"$AUTODATA" show "$T/legal" --source "$1" --round $(($2 + 1)) --prompts >"$T/show.out" 2>&1
check "legal twin: the next round's writer saw the matching text" \
  grep -q 'QV reason: check:pattern: the question matches the refused pattern' "$T/show.out"

check "legal twin: unsuitable documents end at once (one round, the extractor's call only)" python3 -c "
import json, collections
rows = [json.loads(l) for l in open('$T/legal/candidates.jsonl')]
by = collections.defaultdict(list)
for r in rows: by[r['source_id']].append(r)
uns = [s for s, rs in by.items() if any(r['reason'] == 'unsuitable' for r in rs)]
assert uns, 'no unsuitable document in the twin'
for s in uns:
    assert len(by[s]) == 1 and by[s][0]['record']['candidate'] is None, s
"
check "legal twin: the extractor ran once per source" bash -c \
  "'$AUTODATA' status --store '$T/legal/store.db' --json | python3 -c \"import json,sys; j=json.load(sys.stdin); sys.exit(0 if j['calls']['by_role']['extractor']['ok']==15 else 1)\""
check "legal twin: the writer got the extraction" grep -q "What the extractor found in the source" "$T/show.out"
check "legal twin: the loop judge's verdict is required (improve sends back, accepted ones had accept)" python3 -c "
import json
rows = [json.loads(l) for l in open('$T/legal/candidates.jsonl')]
imp = [r for r in rows if r['reason'] == 'loop_judge:improve']
assert imp and all('the loop judge asked to improve: ' in r['record']['detail'] for r in imp)
acc = [r for r in rows if r['verdict'] == 'accepted']
assert acc and all(r['record']['stats']['loop_accept'] == 1 for r in acc)
"
check "math twin: every example meets the exact-count gate over 4 + 4" python3 -c "
import json
for line in open('$T/math/dataset.jsonl'):
    e = json.loads(line)
    w, s = e['weak_scores'], e['strong_scores']
    assert len(w) == 4 and len(s) == 4 and sum(w) <= 1 and sum(s) >= 3, (e['id'], w, s)
"
check "math twin: 3 candidates per round, screened, the survivors evaluated in order" python3 -c "
import json, collections
rows = [json.loads(l) for l in open('$T/math/candidates.jsonl')]
by = collections.defaultdict(list)
for r in rows: by[(r['source_id'], r['round'])].append(r)
assert by and all(sorted(r['index'] for r in rs) == [0, 1, 2] for rs in by.values())
ev = [r for r in rows if r['record']['stats'] is not None]
assert all(r['record']['screen']['order'] is not None for r in ev)
assert any(r['index'] > 0 for r in ev)
"
check "math twin: the LLM verifier judged the answers" bash -c \
  "'$AUTODATA' status --store '$T/math/store.db' --json | python3 -c \"import json,sys; r=json.load(sys.stdin)['calls']['by_role']; sys.exit(0 if r['judge_weak']['ok']>0 else 1)\""
finish
