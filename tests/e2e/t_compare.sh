#!/usr/bin/env bash
# t_compare.sh - the baselines and `autodata compare` on the sim world (issue 6,
# and issue 5's loop-vs-one-shot claim): 200 sim sources, three runs
# (agentic, self-instruct, cot-self-instruct) of examples/sim.yaml, the
# comparison as JSON, an independent recomputation of its figures in Python
# from the runs' dataset.jsonl / candidates.jsonl / rejected.jsonl (and the
# calls table of each store), and the method's claims: the agentic loop
# accepts clearly more sources, and its dataset's gap CI lies above both
# baselines' CIs. Also: baseline resume, method-mismatch refusal, determinism.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
N=${AUTODATA_COMPARE_SOURCES:-200}
"$AUTODATA" sim-sources --count "$N" --seed 1 --out "$T/src.jsonl" 2>/dev/null

run_sim() { # run_sim OUTDIR [ARGS...]
  local out=$1; shift
  AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$out "$AUTODATA" run examples/sim.yaml --quiet "$@"
}

run_sim "$T/agentic" >"$T/agentic.out" 2>&1; rc=$?
check "agentic run exits 0" test "$rc" -eq 0
run_sim "$T/si" --method self-instruct >"$T/si.out" 2>&1; rc=$?
check "self-instruct run exits 0" test "$rc" -eq 0
run_sim "$T/cot" --method cot-self-instruct >"$T/cot.out" 2>&1; rc=$?
check "cot-self-instruct run exits 0" test "$rc" -eq 0
check "baseline summary names its method" grep -q "method cot-self-instruct: examples kept" "$T/cot.out"
for d in agentic si cot; do
  check "$d: candidates.jsonl written" test -s "$T/$d/candidates.jsonl"
done

# Resume of a baseline: nothing sent, same bytes; another method in the same
# store is refused; --cot-k is part of the identity.
cp "$T/si/dataset.jsonl" "$T/si.first"
run_sim "$T/si" --method self-instruct >"$T/si2.out" 2>&1
check "baseline resume sends no call" grep -q "model calls sent: 0," "$T/si2.out"
check "baseline resume keeps the dataset" cmp -s "$T/si.first" "$T/si/dataset.jsonl"
run_sim "$T/si" >"$T/si3.out" 2>&1; rc=$?
check "agentic on a self-instruct store refused" test "$rc" -ne 0
check "refusal names both methods" grep -q '"self-instruct"} -> {"name":"agentic"}' "$T/si3.out"
run_sim "$T/cot" --method cot-self-instruct --cot-k 8 >"$T/cot2.out" 2>&1; rc=$?
check "changed --cot-k refused" test "$rc" -ne 0
# Determinism: the same baseline in a fresh folder gives the same bytes.
run_sim "$T/si-again" --method self-instruct >/dev/null 2>&1
check "self-instruct is deterministic" cmp -s "$T/si/dataset.jsonl" "$T/si-again/dataset.jsonl"

"$AUTODATA" compare "$T/agentic" "$T/si" "$T/cot" --format json >"$T/cmp.json" 2>"$T/cmp.err"; rc=$?
check "compare --format json exits 0" test "$rc" -eq 0
"$AUTODATA" compare "$T/agentic" "$T/si" "$T/cot" >"$T/cmp.txt" 2>&1; rc=$?
check "compare table exits 0" test "$rc" -eq 0
check "table has the gap row" grep -q "^dataset: gap" "$T/cmp.txt"
"$AUTODATA" compare "$T/agentic" "$T/si" --format markdown >"$T/cmp.md" 2>&1
check "markdown table" grep -q "^| dataset: gap" "$T/cmp.md"
"$AUTODATA" compare "$T/nope" >/dev/null 2>&1; rc=$?
check "compare of a missing store exits 2" test "$rc" -eq 2
echo "  --- autodata compare ($N sim sources) ---"
sed 's/^/  /' "$T/cmp.txt"

# Independent recomputation from the JSONL files (and each store's calls table).
python3 - "$T" >"$T/py.out" 2>&1 <<'PY'
import json, random, sqlite3, sys
T = sys.argv[1]
cmp = json.load(open(f"{T}/cmp.json"))
dirs = ["agentic", "si", "cot"]
fails = []
def close(a, b, tol, what):
    if a is None or b is None:
        if a != b: fails.append(f"{what}: {a} vs {b}")
        return
    if abs(a - b) > tol: fails.append(f"{what}: compare {a} vs python {b}")
def mean(x): return sum(x) / len(x) if x else None
def boot(x, y=None, B=2000, seed=0, level=0.95):
    rnd = random.Random(seed); n = len(x); out = []
    for _ in range(B):
        m = sum(x[rnd.randrange(n)] for _ in range(n)) / n
        if y is not None: m -= sum(y[rnd.randrange(len(y))] for _ in range(len(y))) / len(y)
        out.append(m)
    out.sort()
    def q(p):
        h = p * (B - 1); i = int(h); return out[i] + (h - i) * (out[min(i + 1, B - 1)] - out[i])
    return q((1 - level) / 2), q((1 + level) / 2)
pops = []
for i, d in enumerate(dirs):
    r = cmp["runs"][i]
    ds = [json.loads(l) for l in open(f"{T}/{d}/dataset.jsonl")]
    cands = [json.loads(l) for l in open(f"{T}/{d}/candidates.jsonl")]
    rej = [json.loads(l) for l in open(f"{T}/{d}/rejected.jsonl")]
    # rejected.jsonl is exactly the gate-rejected candidates
    rk = sorted((x["source_id"], x["round"], x["reason"]) for x in rej)
    ck = sorted((c["source_id"], c["round"], c["reason"]) for c in cands if c["verdict"] == "rejected")
    if rk != ck: fails.append(f"{d}: rejected.jsonl differs from the rejected candidates")
    if d != "agentic" and not all(e.get("passed_filter") is True for e in ds):
        fails.append(f"{d}: a dataset example without passed_filter")
    if d != "agentic":
        kept = sum(1 for c in cands if c["record"].get("passed_filter"))
        if kept != len(ds): fails.append(f"{d}: {kept} candidates passed the filter, {len(ds)} examples")
    pop = {
        "weak_mean": [e["weak_mean"] for e in ds], "strong_mean": [e["strong_mean"] for e in ds],
        "gap": [e["gap"] for e in ds], "weak_std": [e["weak_std"] for e in ds],
        "question_chars": [len(e["question"]) for e in ds],
        "rubric_items": [len(e["rubric"]) for e in ds if "rubric" in e],
        "rounds": [e["rounds_used"] for e in ds],
    }
    srcs = sorted({c["source_id"] for c in cands})
    accepted_src = {c["source_id"] for c in cands if c["verdict"] == "accepted"}
    acc = [1.0 if s in accepted_src else 0.0 for s in srcs]
    n_acc = sum(1 for c in cands if c["verdict"] == "accepted")
    ev = [c["record"]["stats"] for c in cands if c["record"].get("stats")]
    evp = {"weak_mean": [s["weak_mean"] for s in ev if s["n_weak"] > 0],
           "strong_mean": [s["strong_mean"] for s in ev if s["strong_ran"] and s["n_strong"] > 0],
           "gap": [s["gap"] for s in ev if s["n_weak"] > 0 and s["strong_ran"] and s["n_strong"] > 0]}
    pops.append((pop, acc, evp))
    db = sqlite3.connect(f"file:{T}/{d}/store.db?mode=ro", uri=True)
    run_id = r["run_id"]
    calls, toks = db.execute("SELECT count(*), coalesce(sum(prompt_tokens + completion_tokens), 0) "
                             "FROM calls WHERE run = ? AND cache_hit = 0", (run_id,)).fetchone()
    if r["calls"] != calls: fails.append(f"{d}: calls {r['calls']} vs {calls}")
    if r["tokens"] != toks: fails.append(f"{d}: tokens {r['tokens']} vs {toks}")
    close(r["calls_per_accepted"], calls / n_acc if n_acc else None, 1e-6, f"{d} calls/accepted")
    if r["sources"] != len(srcs): fails.append(f"{d}: sources {r['sources']} vs {len(srcs)}")
    if r["accepted"] != n_acc: fails.append(f"{d}: accepted {r['accepted']} vs {n_acc}")
    if r["kept"] != len(ds): fails.append(f"{d}: kept {r['kept']} vs {len(ds)}")
    if r["candidates"] != len(cands): fails.append(f"{d}: candidates")
    close(r["rounds_per_accepted"], len(cands) / n_acc if n_acc else None, 1e-9, f"{d} rounds/accepted")
    ra = [c["round"] for c in cands if c["verdict"] == "accepted"]
    close(r["rounds_to_accept"], mean(ra), 1e-9, f"{d} rounds to accept")
    rejs = {}
    for c in cands:
        if c["verdict"] == "rejected": rejs[c["reason"]] = rejs.get(c["reason"], 0) + 1
    if r["rejections"] != rejs: fails.append(f"{d}: rejections {r['rejections']} vs {rejs}")
    close(r["acceptance_rate"]["est"], mean(acc), 1e-9, f"{d} acceptance")
    lo, hi = boot(acc, seed=11 + i)
    close(r["acceptance_rate"]["lo"], lo, 0.02, f"{d} acceptance lo")
    close(r["acceptance_rate"]["hi"], hi, 0.02, f"{d} acceptance hi")
    for k, xs in pop.items():
        ci = r["dataset"][k]
        if not xs:
            if ci is not None: fails.append(f"{d} dataset.{k}: expected null")
            continue
        close(ci["est"], mean(xs), 1e-6, f"{d} dataset.{k}")
        if ci["n"] != len(xs): fails.append(f"{d} dataset.{k}: n {ci['n']} vs {len(xs)}")
        if k in ("weak_mean", "strong_mean", "gap", "weak_std"):
            lo, hi = boot(xs, seed=100 + i)
            close(ci["lo"], lo, 0.012, f"{d} dataset.{k} lo")
            close(ci["hi"], hi, 0.012, f"{d} dataset.{k} hi")
    for k, xs in evp.items():
        close(r["evaluated"][k]["est"], mean(xs), 1e-5, f"{d} evaluated.{k}")
    if i:
        a_pop, a_acc, _ = pops[0]
        vs = r["vs_first"]
        close(vs["dataset.gap"]["est"], mean(pop["gap"]) - mean(a_pop["gap"]), 1e-5, f"{d} vs first gap")
        lo, hi = boot(pop["gap"], a_pop["gap"], seed=200 + i)
        close(vs["dataset.gap"]["lo"], lo, 0.015, f"{d} vs first gap lo")
        close(vs["dataset.gap"]["hi"], hi, 0.015, f"{d} vs first gap hi")
        close(vs["acceptance_rate"]["est"], mean(acc) - mean(a_acc), 1e-9, f"{d} vs first acceptance")
print("FAILS" if fails else "AGREE")
for f in fails: print(" ", f)
PY
check "python recomputation agrees with compare" grep -q "^AGREE" "$T/py.out"
grep -v '^AGREE' "$T/py.out" | sed 's/^/  /' | head -20

# The claims (issue 5 and 6): clearly more accepted sources, and a wider gap
# whose CI lies above both baselines' CIs.
python3 - "$T/cmp.json" >"$T/claims.out" 2>&1 <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
a, si, cot = c["runs"]
bad = []
def fmt(ci): return f"{ci['est']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]"
for b in (si, cot):
    name = b["method"]
    print(f"{name}: acceptance {fmt(b['acceptance_rate'])}, dataset gap {fmt(b['dataset']['gap'])} "
          f"(n {b['dataset']['gap']['n']}); agentic: acceptance {fmt(a['acceptance_rate'])}, "
          f"gap {fmt(a['dataset']['gap'])} (n {a['dataset']['gap']['n']})")
    if not a["acceptance_rate"]["est"] >= b["acceptance_rate"]["est"] + 0.30:
        bad.append(f"acceptance not clearly above {name}")
    if not a["acceptance_rate"]["lo"] > b["acceptance_rate"]["hi"]:
        bad.append(f"acceptance CI overlaps {name}")
    if not a["dataset"]["gap"]["lo"] > b["dataset"]["gap"]["hi"]:
        bad.append(f"gap CI overlaps {name}")
    d = b["vs_first"]["dataset.gap"]
    if not d["hi"] < 0:
        bad.append(f"difference of gaps vs {name} includes 0")
print("CLAIMS HOLD" if not bad else "CLAIMS FAIL: " + "; ".join(bad))
PY
sed 's/^/  /' "$T/claims.out"
check "agentic accepts clearly more sources than both baselines" bash -c "! grep -q 'acceptance' <(grep 'CLAIMS FAIL' '$T/claims.out')"
check "agentic gap CI lies above both baselines' CIs" bash -c "! grep -q 'gap' <(grep 'CLAIMS FAIL' '$T/claims.out') && grep -q 'CLAIMS HOLD' '$T/claims.out'"
finish
