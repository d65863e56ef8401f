#!/usr/bin/env bash
# t_provenance.sh - a run's identity is its effective configuration (issue 22):
# a model changed through an environment variable is refused on resume with the
# field and both values named; budgets may change; the card shows the effective
# values, the variables that set them and no absolute local path; prompts that use
# a variable their role is not given are refused by `validate` and `run` with
# file:line before any call; a store whose run predates recorded identities resumes.
source "$(dirname "$0")/lib.sh"
AUTODATA=$(cd "$(dirname "$AUTODATA")" && pwd)/$(basename "$AUTODATA")   # the test works in its own folder
T=$E2E_TMP
REPO=$(cd "$(dirname "$0")/../.." && pwd)   # the default prompts folder lies here
"$AUTODATA" sim-sources --count 6 --seed 3 --out "$T/src.jsonl" 2>/dev/null
cat >"$T/recipe.yaml" <<'YAML'
name: prov
seed: 1
sources: {path: src.jsonl}
roles:
  challenger: {endpoint: sim, model: sim-challenger}
  weak:       {endpoint: sim, model: "${WEAK_MODEL:-sim-solver@0.35}", samples: 2}
  strong:     {endpoint: sim, model: sim-solver@0.8, samples: 2}
  judge:      {endpoint: sim, model: sim-judge}
  orchestrator: {endpoint: sim, model: sim-orchestrator}
  quality:    {endpoint: sim, model: sim-quality}
budgets:
  rounds_per_source: ${ROUNDS:-2}
output: {folder: out}
YAML
cd "$T" || exit 1

# 1. A first run (a 3-source preview), the weak model from the environment; the
# recipe named by its absolute path.
WEAK_MODEL=sim-solver@0.35 "$AUTODATA" run "$T/recipe.yaml" --limit 3 --quiet >run1.out 2>&1
check "first run exits 0" test $? -eq 0

# 2. The same recipe file, another weak model through the environment: refused.
WEAK_MODEL=sim-solver@0.6 "$AUTODATA" run recipe.yaml --quiet >run2.out 2>&1
rc=$?
check "a model changed through the environment is refused on resume" test $rc -ne 0
check "the refusal names the field and both values" \
  grep -qF 'roles.weak.model "sim-solver@0.35" -> "sim-solver@0.6"' run2.out
check "the refusal names the variable that set it" grep -qF '$WEAK_MODEL' run2.out
check "a refused resume made no call with the other model" \
  test "$(sqlite3 out/store.db "SELECT count(*) FROM calls WHERE model = 'sim-solver@0.6'")" = 0
check "... and left the sources past the preview untouched" \
  test "$(sqlite3 out/store.db "SELECT count(*) FROM sources WHERE state = 'pending' OR rounds_used > 0")" -le 3

# 3. The default in the recipe is the same effective value: resumes.
"$AUTODATA" run recipe.yaml >run3.out 2>&1
check "unset variable with the same default value resumes" test $? -eq 0
check "... as a resume of run 1" grep -q "resuming run 1" run3.out

# 4. Budgets are not part of the identity: a raised round budget resumes.
ROUNDS=3 "$AUTODATA" run recipe.yaml >run4.out 2>&1
check "a changed rounds_per_source resumes" test $? -eq 0
check "... the same run" grep -q "resuming run 1" run4.out

# q SQL: one number from the store; anything else (an SQL error) fails the check that uses it.
q() { local v; v=$(sqlite3 -bail out/store.db "$1" 2>&1); [[ "$v" =~ ^[0-9]+$ ]] && echo "$v" || echo "sql-error: $v"; }
ex_before=$(q "SELECT count(*) FROM sources WHERE state = 'exhausted'")
max_before=$(q "SELECT max(rounds_used) FROM sources")
sent_before=$(q "SELECT count(*) FROM calls WHERE cache_hit = 0 AND round <= 2")
check "the raised budget alone leaves exhausted sources as they were" test "$max_before" = 2
check "... (some sources were exhausted)" test "$ex_before" -gt 0

# 4b. --reopen-exhausted plays the rounds the raised budget allows.
ROUNDS=3 "$AUTODATA" run recipe.yaml --reopen-exhausted >run4b.out 2>&1
check "--reopen-exhausted resumes" test $? -eq 0
check "... exhausted sources got a third round" test "$(q "SELECT max(rounds_used) FROM sources")" = 3
check "... no source is left in progress" \
  test "$(q "SELECT count(*) FROM sources WHERE state NOT IN ('done', 'exhausted')")" = 0
check "... the first two rounds were replayed from the cache, not sent again ($sent_before calls)" \
  test "$(q "SELECT count(*) FROM calls WHERE cache_hit = 0 AND round <= 2")" = "$sent_before"
check "... and the third rounds were sent" \
  test "$(q "SELECT count(*) FROM calls WHERE cache_hit = 0 AND round = 3")" -gt 0

# 5. The card: effective values, variable names, no absolute path.
card=out/DATACARD.md
check "the card shows the effective weak model" grep -qF '| weak | sim | sim-solver@0.35 |' "$card"
check "the card names the variable that set it" grep -qF '| `WEAK_MODEL` | `roles.weak.model` | sim-solver@0.35 | environment |' "$card"
check "the card gives the configuration hash" grep -q 'configuration sha256' "$card"
check "the card holds no absolute local path" bash -c "! grep -qF '$T' '$card' && ! grep -qF '$REPO' '$card'"
check "the command line shows the recipe relative to the output folder" grep -qE '^autodata run .*--limit 3.* \.\./recipe\.yaml$' "$card"
check "the corpus path is relative to the output folder" grep -qF -- '- path: `../src.jsonl`' "$card"

# 6. A store whose run predates identities (info.extra has no identity): its
# recorded effective values decide.
cp -r out legacy
sqlite3 legacy/store.db "UPDATE runs SET recipe_sha256 = '$(sha256sum recipe.yaml | cut -c1-64)', info = json_remove(info, '\$.extra.identity', '\$.extra.identity_sha256')"
"$AUTODATA" run recipe.yaml --out legacy >run5.out 2>&1
check "a legacy store with the same effective values resumes" test $? -eq 0
WEAK_MODEL=sim-solver@0.6 "$AUTODATA" run recipe.yaml --out legacy >run6.out 2>&1
check "a legacy store refuses a changed model" test $? -ne 0
check "... naming it" grep -qF 'roles.weak.model "sim-solver@0.35" -> "sim-solver@0.6"' run6.out

# 7. Prompt variables by role, refused before any call.
printf '=== user ===\nQUESTION: {{question}}\nRUBRIC:\n{{#rubric}}{{number}}. {{criterion}}\n{{/rubric}}\nRESPONSE: {{anser}}\n' >judge.md
printf '=== user ===\nCONTEXT: {{context}}\n\nSOURCE: {{source_text}}\nQUESTION: {{question}}\n' >solver.md
port=$(free_port)
start_sim_server "$port" --seed 1 || fail "sim-server start"
sed -e "s|endpoint: sim,|endpoint: h,|" -e 's|^roles:|endpoints:\n  h: {base_url: "http://127.0.0.1:'"$port"'/v1"}\nroles:|' \
    -e 's|judge:      {endpoint: h, model: sim-judge}|judge:      {endpoint: h, model: sim-judge, prompt: judge.md}|' \
    -e 's|output: {folder: out}|output: {folder: bad}|' recipe.yaml >bad-judge.yaml
sed -e 's|model: sim-solver@0.8, samples: 2}|model: sim-solver@0.8, samples: 2, prompt: solver.md}|' \
    -e 's|judge:      {endpoint: h, model: sim-judge, prompt: judge.md}|judge:      {endpoint: h, model: sim-judge}|' \
    bad-judge.yaml >bad-solver.yaml
"$AUTODATA" validate bad-judge.yaml >v1.out 2>&1
check "validate refuses an unknown variable" test $? -ne 0
check "... with file:line:col" grep -qF 'judge.md:6:11: unknown variable '"'"'anser'"'" v1.out
"$AUTODATA" validate bad-solver.yaml >v2.out 2>&1
check "validate refuses a solver prompt that uses source_text" test $? -ne 0
check "... with file:line:col, saying solvers do not get it" \
  grep -qF "solver.md:4:9: unknown variable 'source_text' (not given to this role); the strong prompt may use" v2.out
WEAK_MODEL=sim-solver@0.35 "$AUTODATA" run bad-solver.yaml --quiet >r7.out 2>&1
check "run refuses it too" test $? -ne 0
# A baseline's own challenger prompt is checked too.
cp -r "$REPO/prompts" p
printf '\nHint: {{reference_answer}}\n' >>p/self-instruct-rubric.md
line=$(wc -l <p/self-instruct-rubric.md)
sed -e 's|^seed: 1|seed: 1\nmethod: self-instruct|' recipe.yaml >baseline.yaml
"$AUTODATA" validate --prompts p baseline.yaml >v3.out 2>&1
check "validate checks a baseline's own challenger prompt" test $? -ne 0
check "... with file:line:col" grep -qF "self-instruct-rubric.md:$line:7: unknown variable 'reference_answer'" v3.out
stop_sim_server "$port" || fail "sim-server stats"
check "... before any call" test "${SIM_CHAT_COUNT:-x}" = 0
check "... and before creating a store" test ! -e bad/store.db
cd - >/dev/null || true
finish
