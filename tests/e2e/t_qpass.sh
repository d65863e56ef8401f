#!/usr/bin/env bash
# t_qpass.sh - the end-of-loop quality pass (recipe `finalize: {quality: ...}`, issue 17;
# docs/analyze.md): the loop runs with a lax quality verifier (sim-quality@miss=0.9 misses
# most leaks), the pass re-checks every accepted example with a careful one (sim-quality):
#   - it removes examples, each into removed.jsonl with reason "quality_pass: <issues>", and
#     every example it removes for leakage really states a rubric fact's value in its context;
#   - dataset.jsonl + removed.jsonl = the accepted examples, disjoint; the card counts them;
#     `autodata export` leaves them out; `autodata card` regenerates the same card;
#   - a rerun answers every call from the cache (no call paid twice) and writes the same files;
#   - the ablation: a pass whose verifier misses every leak (miss=1) removes none for leakage.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 80 --seed 3 --out "$T/src.jsonl" 2>/dev/null
# recipe NAME PASS_MODEL
recipe() {
  sed -e "s|model: sim-quality}|model: 'sim-quality@miss=0.9'}|" \
      -e "s|^budgets:|finalize:\n  quality: {model: '$2'}\n\nbudgets:|" examples/sim.yaml >"$T/$1.yaml"
  echo "$T/$1.yaml"
}
run() { AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/$1 "$AUTODATA" run "$T/$1.yaml" --quiet; }
recipe pass sim-quality >/dev/null
run pass >"$T/pass.out" 2>&1
check "run with the quality pass exits 0" test $? -eq 0
D=$T/pass
acc=$(sqlite3 "$D/store.db" "select count(*) from examples")
kept=$(grep -c . "$D/dataset.jsonl"); rem=$(grep -c . "$D/removed.jsonl")
echo "  accepted $acc, kept $kept, removed $rem"
check "the pass removed examples" test "$rem" -gt 0
check "dataset + removed = accepted" test $((kept + rem)) -eq "$acc"
check "every removal names the pass and the verifier's reason" python3 - "$D" <<'PY'
import json, re, sys
d = sys.argv[1]
rem = [json.loads(l) for l in open(d + "/removed.jsonl")]
kept = {json.loads(l)["id"] for l in open(d + "/dataset.jsonl")}
assert all(r["removed"]["reason"].startswith("quality_pass: ") for r in rem), rem[0]["removed"]
assert not kept & {r["id"] for r in rem}
# a leakage verdict is right: the context states the value of a fact a criterion asks for
for r in rem:
    if "leakage" not in r["removed"]["reason"]:
        continue
    crit = {m.group(1): m.group(2) for c in r["rubric"]
            for m in [re.search(r"(F-[0-9a-f]{4}) is (\d+)", c["criterion"])] if m}
    stated = dict(re.findall(r"(F-[0-9a-f]{4}) = (\d+)", r["context"]))
    assert any(stated.get(f) == v for f, v in crit.items()), r["id"]
PY
check "the card reports the pass" grep -q "end-of-loop quality pass .* re-checked $acc accepted examples: $rem failed" "$D/DATACARD.md"
check "analysis.json keeps each verdict" python3 -c "
import json; q = json.load(open('$D/analysis.json'))['quality_pass']
assert q['checked'] == $acc and q['failed'] == $rem and len(q['examples']) == $acc"
"$AUTODATA" export --store "$D/store.db" --format jsonl --out "$T/exp" >/dev/null 2>&1
check "export leaves the removed examples out" test "$(grep -c . "$T/exp/train.jsonl")" -eq "$kept"
"$AUTODATA" card --store "$D/store.db" --out "$T/card.md" >/dev/null 2>&1
check "the card regenerates from the store" cmp "$D/DATACARD.md" "$T/card.md"
cp "$D/dataset.jsonl" "$T/ds1"; cp "$D/removed.jsonl" "$T/rm1"
run pass >"$T/pass2.out" 2>&1
check "rerun exits 0" test $? -eq 0
check "rerun pays no call (the pass answers from the cache)" grep -q "model calls sent: 0," "$T/pass2.out"
check "rerun writes the same dataset.jsonl" cmp "$T/ds1" "$D/dataset.jsonl"
check "rerun writes the same removed.jsonl" cmp "$T/rm1" "$D/removed.jsonl"
# The ablation: a pass that misses every leak finds no leakage.
recipe blind 'sim-quality@miss=1' >/dev/null
AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/blind "$AUTODATA" run "$T/blind.yaml" --quiet \
  --cache-from "$D/store.db" >/dev/null 2>&1
check "ablation run exits 0" test $? -eq 0
check "a pass blind to leaks removes none for leakage" bash -c "! grep -q 'quality_pass: leakage' '$T/blind/removed.jsonl'"
finish
