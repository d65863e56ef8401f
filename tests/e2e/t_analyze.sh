#!/usr/bin/env bash
# t_analyze.sh - `autodata analyze` on a sim run: a clean control flags nothing; planted
# near-duplicates (paraphrases at several similarities) are found with precision and recall
# >= 0.95 against the exact Jaccard of every pair (computed here in Python); an --against file
# holding a copy of one accepted question is found with its item and n-grams, unrelated text
# is not; an export's held-out split is checked against its train split; bad reference files
# are named with their line.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 40 --seed 5 --out "$T/src.jsonl" 2>/dev/null
AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/r "$AUTODATA" run examples/sim.yaml --quiet \
  >"$T/run.out" 2>&1
check "sim run exits 0" test $? -eq 0

"$AUTODATA" analyze "$T/r" --json >"$T/clean.json" 2>"$T/clean.err"
check "analyze of the clean run exits 0" test $? -eq 0
check "clean control: no near-duplicate, nothing removed" python3 - "$T/clean.json" "$T/r/dataset.jsonl" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n = sum(1 for _ in open(sys.argv[2]))
assert d["examples"] == n > 10, (d["examples"], n)
assert d["near_duplicates"]["pairs_found"] == 0 and d["removed"] == [] and d["kept"] == n, d["near_duplicates"]
dv = d["diversity"]
assert dv["examples"] == n and sum(t["count"] for t in dv["question_types"]["distribution"]) == n
assert 0 < dv["question_types"]["entropy_bits"] and 0 < dv["distinct"]["1"] <= dv["distinct"]["2"] <= 1
assert dv["sources"]["total"] == 40 and dv["sources"]["with_examples"] == n
assert sum(dv["weak_mean_histogram"]["bins"]) == n
PY

# Plant paraphrases of accepted questions into a copy of the store, at several similarities
# (the store keeps examples compressed: read them with export, write plain JSON rows).
cp "$T/r/store.db" "$T/planted.db"
"$AUTODATA" export --store "$T/r/store.db" --format jsonl --out "$T/exp0" >/dev/null
python3 - "$T/planted.db" "$T/exp0/train.jsonl" >"$T/plant.out" <<'PY'
import json, random, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
lines = sorted((json.loads(l) for l in open(sys.argv[2])), key=lambda e: e["id"])
rows = [(e["id"], e["source_id"], json.dumps(e)) for e in lines]
rnd = random.Random(7)
fill = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta", "lambda", "zeta"]
run = db.execute("select max(id) from runs").fetchone()[0]
n = 0
for k, (eid, sid, ex) in enumerate(rows[:12]):
    e = json.loads(ex)
    w = e["question"].split()
    for v, changes in enumerate([0, 1, 2, 3, 5, 8]):
        ww = list(w)
        if changes == 0:
            ww = [x.upper() for x in ww]                 # same words, other case
        for c in range(changes):                          # replace words near the end, spread out
            i = len(ww) - 1 - c * 3 % len(ww)
            ww[i] = fill[(c + k) % len(fill)]
        e2 = dict(e, id=f"{eid}-p{v}", question=" ".join(ww), gap=0.01 * v)
        db.execute("insert into examples(run, example_id, source_id, example, created) values(?,?,?,?,0)",
                   (run, e2["id"], sid, json.dumps(e2)))
        n += 1
db.commit()
print(n)
PY
check "planted 72 paraphrases" grep -qx 72 "$T/plant.out"
"$AUTODATA" analyze "$T/planted.db" --json >"$T/planted.json" 2>"$T/planted.err"
check "analyze of the planted store exits 0" test $? -eq 0
"$AUTODATA" export --store "$T/planted.db" --format jsonl --out "$T/exp-planted" >/dev/null
python3 - "$T/planted.json" "$T/exp-planted/train.jsonl" >"$T/pr.out" <<'PY'
import itertools, json, re, sys
d = json.load(open(sys.argv[1]))
ex = {e["id"]: e for e in map(json.loads, open(sys.argv[2]))}
def shingles(s, k=3):
    w = re.findall(rb"[a-z0-9]+|[\x80-\xff]+", s.lower().encode())
    k = min(k, len(w))
    return {tuple(w[i:i + k]) for i in range(len(w) - k + 1)} if w else set()
S = {i: shingles(e["question"]) for i, e in ex.items()}
th = d["near_duplicates"]["threshold"]
truth = {(a, b) for a, b in itertools.combinations(sorted(S), 2)
         if S[a] and S[b] and len(S[a] & S[b]) / len(S[a] | S[b]) >= th}
found = {(p["a"], p["b"]) for p in d["near_duplicates"]["pairs"]}
assert d["near_duplicates"]["pairs_found"] == len(found), "every pair listed"
tp = len(found & truth)
prec = tp / len(found) if found else 1.0
rec = tp / len(truth) if truth else 1.0
sims = sorted({round(len(S[a] & S[b]) / len(S[a] | S[b]), 2) for a, b in truth})
below = sum(1 for a, b in itertools.combinations(sorted(S), 2)
            if a.split("-p")[0] == b.split("-p")[0] and len(S[a] & S[b]) / len(S[a] | S[b]) < th)
print(f"near-duplicates at threshold {th}: {len(truth)} true pairs (Jaccard {sims[0]}..{sims[-1]}), "
      f"{len(found)} found, precision {prec:.3f}, recall {rec:.3f}; {below} planted pairs below the threshold")
assert len(truth) >= 30 and below >= 10, (len(truth), below)
assert prec >= 0.95 and rec >= 0.95
# Clusters: each kept example has the largest gap of its cluster, the rest are removed.
removed = {r["id"]: r for r in d["removed"]}
for c in d["near_duplicates"]["clusters"]:
    m = c["members"]
    best = sorted(m, key=lambda i: (-ex[i].get("gap", 0), i))[0]
    assert c["kept"] == best, (c, best)
    for i in m:
        assert (i in removed) == (i != best), i
        if i != best: assert removed[i]["reason"] == "near_duplicate" and removed[i]["detail"] == f"of {best}"
assert d["kept"] == d["examples"] - len(removed)
print("ok")
PY
check "planted near-duplicates: precision and recall >= 0.95, keep rule" grep -qx ok "$T/pr.out"
sed -n 1p "$T/pr.out"

# Contamination: a benchmark holding a copy of one accepted question, and unrelated text.
python3 - "$T/r/dataset.jsonl" "$T" <<'PY'
import json, sys
ex = [json.loads(l) for l in open(sys.argv[1])]
t = sys.argv[2]
q = ex[3]["question"]
with open(f"{t}/bench.jsonl", "w") as f:
    f.write(json.dumps({"id": "b1", "question": "What is the boiling point of water at sea level in degrees Celsius under standard atmospheric pressure conditions today?", "answer": "100"}) + "\n")
    f.write(json.dumps({"id": "b2", "question": "Consider this. " + q.lower().replace(",", " ;"), "answer": "n/a"}) + "\n")
    f.write(json.dumps({"id": "b3", "question": "Name the largest planet of the solar system and give two of its moons discovered by Galileo in sixteen ten."}) + "\n")
with open(f"{t}/bench.txt", "w") as f:
    f.write("An unrelated paragraph about the history of the printing press and the spread of\n"
            "literacy in early modern Europe, with no overlap at all.\n\nA second paragraph.\n")
open(f"{t}/target", "w").write(ex[3]["id"])
PY
"$AUTODATA" analyze "$T/r" --against "$T/bench.jsonl" --against "$T/bench.txt" --field question \
  --json --out "$T/contam-out.json" >"$T/contam.json" 2>"$T/contam.err"
check "analyze --against exits 0" test $? -eq 0
check "--out writes the same document" cmp -s "$T/contam.json" <(cat "$T/contam-out.json"; echo)
check "the planted copy is found with its item and n-grams, nothing else" python3 - "$T/contam.json" "$T/r/dataset.jsonl" "$(cat "$T/target")" "$T" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
ex = {json.loads(l)["id"]: json.loads(l) for l in open(sys.argv[2])}
target, t = sys.argv[3], sys.argv[4]
c = d["contamination"]
assert c["ngram_words"] == 13 and c["reference_items"] == 5, c
assert [f["items"] for f in c["files"]] == [3, 2], c["files"]
# Expected: every example sharing a 13-gram with a benchmark item (exact, here).
def words(s): return re.findall(rb"[a-z0-9]+|[\x80-\xff]+", s.lower().encode())
def grams(s): w = words(s); return {tuple(w[i:i + 13]) for i in range(len(w) - 12)}
bench = [json.loads(l)["question"] for l in open(f"{t}/bench.jsonl")]
B = set().union(*[grams(b) for b in bench])
want = {i for i, e in ex.items() if any(grams(e.get(f) or "") & B for f in ("question", "context", "reference_answer"))}
got = {e["id"] for e in c["examples"]}
assert target in got and got == want, (got, want)
m = [e for e in c["examples"] if e["id"] == target][0]["matches"][0]
assert m["item"] == f"{t}/bench.jsonl:2" and "question" in m["fields"] and m["count"] >= 1, m
for ng in m["ngrams"]:
    assert len(words(ng)) == 13 and tuple(words(ng)) in grams(ex[target]["question"]), ng
assert {r["id"] for r in d["removed"] if r["reason"] == "contamination"} == want
PY
"$AUTODATA" analyze "$T/r" --against "$T/bench.jsonl" >"$T/contam.txt" 2>&1
check "the text summary names the example and the item" grep -q "$(cat "$T/target"): $T/bench.jsonl:2" "$T/contam.txt"

# An export's held-out split against its train split.
"$AUTODATA" export --store "$T/r/store.db" --format jsonl --holdout 5 --out "$T/exp" >/dev/null
"$AUTODATA" analyze "$T/r" --export "$T/exp" --json >"$T/split.json" 2>"$T/split.err"
check "analyze --export exits 0" test $? -eq 0
check "the split check counts what Python counts" python3 - "$T/split.json" "$T/exp" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))["split"]
def strings(v, out):
    if isinstance(v, str): out.append(v)
    elif isinstance(v, list): [strings(x, out) for x in v]
    elif isinstance(v, dict):
        for k, x in v.items():
            if k == "id" or k.endswith("_id") or k.endswith("hashes"): continue
            strings(x, out)
    return out
def grams(v):
    w = re.findall(rb"[a-z0-9]+|[\x80-\xff]+", "\n".join(strings(v, [])).lower().encode())
    return {tuple(w[i:i + 13]) for i in range(len(w) - 12)}
tr = [grams(json.loads(l)) for l in open(sys.argv[2] + "/train.jsonl")]
he = [grams(json.loads(l)) for l in open(sys.argv[2] + "/heldout.jsonl")]
T = set().union(*tr)
H = set().union(*he)
assert d["heldout"] == 5
assert d["heldout_overlapping"] == sum(1 for h in he if h & T), d
assert d["train_overlapping"] == sum(1 for x in tr if x & H), d
PY

# Errors name the file and line.
printf '{"question": "ok"}\n{"question": \n' >"$T/bad.jsonl"
"$AUTODATA" analyze "$T/r" --against "$T/bad.jsonl" >"$T/bad.out" 2>&1
check "a bad JSONL line: exit 2" test $? -eq 2
check "... naming file:line" grep -q "$T/bad.jsonl:2: " "$T/bad.out"
"$AUTODATA" analyze "$T/r" --against "$T/missing.jsonl" >"$T/miss.out" 2>&1
check "a missing file: exit 2 naming it" bash -c "test $? -eq 2 && grep -q 'missing.jsonl' '$T/miss.out'"
"$AUTODATA" analyze "$T/r" --threshold 2 >"$T/th.out" 2>&1
check "a bad --threshold: exit 2" test $? -eq 2
# The recipe's finalize: the same analysis at the end of `autodata run` (a new run of the same
# store: every call from the cache), kept in the store; dataset.jsonl, removed.jsonl,
# analysis.json and the card agree and regenerate from the store.
{ cat examples/sim.yaml; printf 'finalize:\n  against: [%s]\n  fields: [question]\n' "$T/bench.jsonl"; } >"$T/fin.yaml"
AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/r "$AUTODATA" run "$T/fin.yaml" --new-run --quiet \
  >"$T/fin.out" 2>&1
check "a run with finalize: exits 0" test $? -eq 0
check "... and names analysis.json" grep -q "analysis:   $T/r/analysis.json (1 examples removed" "$T/fin.out"
check "report.html shows the analysis: its counts and the contaminated example" python3 - "$T/r" "$(cat "$T/target")" <<'PY'
import json, re, sys
r, target = sys.argv[1], sys.argv[2]
page = open(f"{r}/report.html").read()
m = re.search(r'<section class="analysis" id="analysis">(.*?)</section>', page, re.S)
assert m, "no analysis section"
sec = m.group(1)
a = json.load(open(f"{r}/analysis.json"))
assert f'{a["kept"]} of {a["examples"]}' in sec, sec[:400]
c = re.search(r"<h3>Contaminated examples</h3>(.*?)</table>", sec, re.S).group(1)
assert target in c and c.count("<tr>") == 2, c
assert 'id="plot-qtypes"' in sec and 'id="plot-weakhist"' in sec
PY
check "outputs, store and card agree" python3 - "$T/r" "$(cat "$T/target")" <<'PY'
import json, sqlite3, sys
r, target = sys.argv[1], sys.argv[2]
db = sqlite3.connect(f"{r}/store.db")
run = db.execute("select max(id) from runs").fetchone()[0]
ids = {x[0] for x in db.execute("select example_id from examples where run=?", (run,))}
a = json.loads(db.execute("select analysis from analyses where run=?", (run,)).fetchone()[0])
assert a == json.load(open(f"{r}/analysis.json")) and a["run"] == run and a["finalize"]["remove"] is True
ds = [json.loads(l)["id"] for l in open(f"{r}/dataset.jsonl")]
rm = [json.loads(l) for l in open(f"{r}/removed.jsonl")]
assert [x["id"] for x in rm] == [target] and rm[0]["removed"]["reason"] == "contamination", rm
assert set(ds) | {x["id"] for x in rm} == ids and not set(ds) & {x["id"] for x in rm}
assert a["kept"] == len(ds) and [x["id"] for x in a["removed"]] == [target]
card = open(f"{r}/DATACARD.md").read()
assert "## Dataset-level analysis" in card and "| examples kept | %d |" % len(ds) in card, card[-2000:]
assert "| 1 examples flagged |" in card
PY
mkdir -p "$T/before" && cp "$T/r/dataset.jsonl" "$T/r/removed.jsonl" "$T/r/analysis.json" "$T/r/DATACARD.md" "$T/before/"
rm -f "$T/r/dataset.jsonl" "$T/r/removed.jsonl" "$T/r/analysis.json"
AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/r "$AUTODATA" run "$T/fin.yaml" --quiet >/dev/null 2>&1
check "the rerun regenerates the same files from the store" bash -c \
  "for f in dataset.jsonl removed.jsonl analysis.json DATACARD.md; do cmp -s '$T/before/'\$f '$T/r/'\$f || exit 1; done"

# finalize: errors name the file, line and field.
{ cat examples/sim.yaml; printf 'finalize:\n  against: [%s]\n  thresold: 0.5\n' "$T/nope.jsonl"; } >"$T/bad.yaml"
"$AUTODATA" validate "$T/bad.yaml" >"$T/badv.out" 2>&1
check "validate refuses a bad finalize: (exit 2)" test $? -eq 2
check "... an unreadable against file, with its line" grep -qE "bad.yaml:[0-9]+:[0-9]+: finalize.against\[0\]: cannot read '$T/nope.jsonl'" "$T/badv.out"
check "... an unknown key" grep -q "thresold" "$T/badv.out"
finish
