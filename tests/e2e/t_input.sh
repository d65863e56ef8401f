#!/usr/bin/env bash
# t_input.sh - configurations and inputs that would silently do nothing, or lose work, are
# refused up front: empty accept bounds (unless 'accept: all'), unusable prompt files, bad
# corpus records (sources.on_invalid: fail | skip), an unset api_key_env variable (no store
# left behind to block the corrected rerun), and the messages of a few bad invocations.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
B=$AUTODATA
"$B" sim-sources --count 6 --seed 4 --out "$T/src.jsonl" 2>/dev/null

# recipe FILE [EXTRA_TOP_LEVEL_YAML] [SOURCES_PATH]: a sim recipe (two rounds per source).
recipe() {
  cat >"$1" <<Y
name: input
task: rubric
goal: g
sources: {path: ${3:-$T/src.jsonl}${4:+, on_invalid: $4}}
roles:
  orchestrator: {endpoint: sim, model: sim-orchestrator}
  challenger:   {endpoint: sim, model: sim-challenger${5:+, prompt: $5}}
  quality:      {endpoint: sim, model: sim-quality}
  weak:         {endpoint: sim, model: sim-solver@0.35, samples: 3}
  strong:       {endpoint: sim, model: sim-solver@0.8, samples: 3}
  judge:        {endpoint: sim, model: sim-judge}
budgets: {rounds_per_source: 2}
output: {folder: $T/out-$(basename "$1" .yaml)}
${2:-accept: {preset: cs-deployed\}}
Y
}

# ---- accept bounds
recipe "$T/empty-accept.yaml" "accept: []"
"$B" validate "$T/empty-accept.yaml" >"$T/ea.out" 2>&1; rc=$?
check "accept: [] refused by validate (exit $rc)" test "$rc" -eq 2
check "accept: [] names the explicit form" grep -q "write 'accept: all'" "$T/ea.out"
recipe "$T/empty-bounds.yaml" "accept: {bounds: []}"
"$B" validate "$T/empty-bounds.yaml" >/dev/null 2>&1
check "accept.bounds: [] refused" test $? -eq 2
recipe "$T/all.yaml" "accept: all"
"$B" validate "$T/all.yaml" >"$T/all.out" 2>&1
check "accept: all is valid" test $? -eq 0
check "accept: all is shown as such" grep -q "accept      preset all" "$T/all.out"

# ---- prompt files
printf '' >"$T/empty.md"
printf '   \n\n' >"$T/blank.md"
head -c 600 /dev/urandom >"$T/random.md"
printf 'Write a question about {{source_text}}\xff\xfe\n' >"$T/latin.md"
printf 'Write\x00 a question\n' >"$T/nul.md"
for f in empty blank random latin nul; do
  recipe "$T/p-$f.yaml" "" "" "" "$T/$f.md"
  "$B" validate "$T/p-$f.yaml" >"$T/p-$f.out" 2>&1; rc=$?
  check "prompt file $f.md refused by validate (exit $rc)" test "$rc" -eq 2
  check "prompt file $f.md: the message names the role and the file" grep -q "roles.challenger.prompt: prompt file '.*$f.md'" "$T/p-$f.out"
done
check "an empty prompt is called empty" grep -q "is empty" "$T/p-blank.out"
check "a non-UTF-8 prompt says so with the byte" grep -q "is not valid UTF-8 at byte" "$T/p-latin.out"

# ---- corpus records
cp "$T/src.jsonl" "$T/bad.jsonl"
printf '\x00\x01\x02garbage\xff\n' >>"$T/bad.jsonl"                 # line 7: random bytes
printf '{"id": "x8", "text": "caf\xe9 au lait"}\n' >>"$T/bad.jsonl"  # line 8: Latin-1
printf '{"id": "x9", "text": "   "}\n' >>"$T/bad.jsonl"             # line 9: empty text
recipe "$T/c-fail.yaml" "" "$T/bad.jsonl"
"$B" validate "$T/c-fail.yaml" >"$T/cf.out" 2>&1; rc=$?
check "bad corpus: validate exits 2 (got $rc)" test "$rc" -eq 2
check "bad corpus: validate names file:line of the first bad record" grep -q "bad.jsonl:7: the line holds a NUL byte" "$T/cf.out"
"$B" run "$T/c-fail.yaml" --quiet >"$T/cfr.out" 2>&1; rc=$?
check "bad corpus: run exits 2, not 1 (got $rc)" test "$rc" -eq 2
check "bad corpus: run names file:line" grep -q "bad.jsonl:7:" "$T/cfr.out"
check "bad corpus: run creates no store" test ! -e "$T/out-c-fail/store.db"
for l in 8 9; do
  sed -n "1,6p;${l}p" "$T/bad.jsonl" >"$T/bad$l.jsonl"
  recipe "$T/c$l.yaml" "" "$T/bad$l.jsonl"
  "$B" validate "$T/c$l.yaml" >"$T/c$l.out" 2>&1
  check "bad corpus record ($l) refused with file:line" grep -q "bad$l.jsonl:7:" "$T/c$l.out"
done
check "invalid UTF-8 in a record is named" grep -q "not valid UTF-8" "$T/c8.out"
check "an empty text is named" grep -q "field 'text' is empty" "$T/c9.out"
recipe "$T/c-skip.yaml" "" "$T/bad.jsonl" skip
"$B" validate "$T/c-skip.yaml" >"$T/cs.out" 2>&1
check "on_invalid: skip: validate passes" test $? -eq 0
check "on_invalid: skip: validate counts them" grep -q "3 of the first 9 records are invalid" "$T/cs.out"
"$B" run "$T/c-skip.yaml" --quiet >"$T/csr.out" 2>&1; rc=$?
check "on_invalid: skip: run exits 0 (got $rc)" test "$rc" -eq 0
check "on_invalid: skip: the summary counts them" grep -q "invalid source records skipped: 3" "$T/csr.out"
check "on_invalid: skip: the card counts them" grep -q "invalid records skipped: 3" "$T/out-c-skip/DATACARD.md"
check "on_invalid: skip: the valid records all ran" test "$(sqlite3 "$T/out-c-skip/store.db" 'SELECT count(*) FROM sources')" -eq 6
mkdir -p "$T/docs"
printf '# A paper\nSome text.\n' >"$T/docs/a.md"
head -c 300 /dev/urandom >"$T/docs/b.txt"
recipe "$T/dir.yaml" "" "$T/docs"
"$B" validate "$T/dir.yaml" >"$T/dir.out" 2>&1; rc=$?
check "folder corpus with a binary file: validate exits 2" test "$rc" -eq 2
check "folder corpus: the message names the file" grep -q "docs/b.txt: the file" "$T/dir.out"

# ---- an unset api_key_env: validate catches it; run creates nothing; the fix just works
sed -e 's|^roles:|endpoints:\n  sim2: {base_url: sim, api_key_env: AUTODATA_T_MISSPELT}\nroles:|' \
    -e 's|endpoint: sim, model: sim-judge|endpoint: sim2, model: sim-judge|' "$T/all.yaml" >"$T/key.yaml"
"$B" validate "$T/key.yaml" >"$T/k.out" 2>&1; rc=$?
check "unset api_key_env: validate exits 2" test "$rc" -eq 2
check "unset api_key_env: validate names the variable" grep -q "environment variable AUTODATA_T_MISSPELT is not set" "$T/k.out"
"$B" run "$T/key.yaml" --quiet >"$T/kr.out" 2>&1; rc=$?
check "unset api_key_env: run exits 2" test "$rc" -eq 2
check "unset api_key_env: run creates no store" test ! -e "$T/out-all/store.db"
AUTODATA_T_MISSPELT=some-key-value "$B" run "$T/key.yaml" --quiet >"$T/kr2.out" 2>&1
check "unset api_key_env: the corrected rerun runs" test $? -eq 0
# A key that the client refuses (a line break) fails before the store is made, message once.
AUTODATA_T_MISSPELT=$'bad\nkey-value' "$B" run "$T/key.yaml" --out "$T/lb" --quiet >"$T/lb.out" 2>&1
check "client setup error: exit 1" test $? -eq 1
check "client setup error: the endpoint named once" bash -c "grep -q \"endpoint 'sim2': environment\" '$T/lb.out' && ! grep -q \"endpoint 'sim2': endpoint\" '$T/lb.out'"
check "client setup error: no store left behind" test ! -e "$T/lb/store.db"

# ---- messages
mkdir -p "$T/adir"
"$B" run "$T/adir" >"$T/dir.run" 2>&1
check "run DIR: exit 2" test $? -eq 2
check "run DIR: says it is a folder" grep -q "Is a directory" "$T/dir.run"
"$B" run "$T/all.yaml" --out "" >"$T/eo.out" 2>&1
check "--out \"\": exit 2" test $? -eq 2
check "--out \"\": says the value is empty" grep -q -- "--out needs a value, got an empty one" "$T/eo.out"
check "--out \"\": never 'Success'" bash -c "! grep -q Success '$T/eo.out'"
touch "$T/afile"
"$B" run "$T/all.yaml" --out "$T/afile" >"$T/af.out" 2>&1
check "--out FILE: says it is not a folder" grep -q "Not a directory" "$T/af.out"
[ -n "${KEEP:-}" ] && cp -r "$T" /tmp/hh/keep2
finish
