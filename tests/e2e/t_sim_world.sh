#!/usr/bin/env bash
# t_sim_world.sh - the sim world's regimes and ablations (issue 12), on the real binary:
# 200 sim sources per arm (AUTODATA_SIM_WORLD_SOURCES), the CS-like world of
# examples/sim.yaml (the world's defaults, 32-fact sources) and the legal-like world of
# examples/sim-legal.yaml (64-fact sources), in-process sim except where noted.
#   - full loop vs plain retries (no feedback, no orchestrator), same round budget:
#     acceptance CIs do not overlap; feedback only and orchestrator only each beat
#     plain retries (difference CI above 0);
#   - feedback whose numbers are shuffled between items (tests/e2e/shuffle_proxy.py in
#     front of a sim-server, challenger only) does worse than the true feedback
#     (difference CI below 0);
#   - CS-like regime: the agentic dataset's gap CI lies above CoT-Self-Instruct's and its
#     weak mean CI below; legal-like regime: the agentic gap CI lies below CoT-Self-Instruct's
#     and its weak-rollout std CI above;
#   - the full loop's rejection mix (too easy / failed on strong / quality) is within 10
#     points of the paper's 80 / 13 / 7 on each group;
#   - a basic challenger prompt (no guidance topics) accepts fewer than the shipped one;
#   - the store and the data card record the sim world's parameters.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
N=${AUTODATA_SIM_WORLD_SOURCES:-200}
"$AUTODATA" sim-sources --count "$N" --seed 1 --out "$T/src.jsonl" 2>/dev/null
"$AUTODATA" sim-sources --count "$N" --seed 1 --facts-per-source 64 --out "$T/lsrc.jsonl" 2>/dev/null

# Prompts: the shipped challenger prompt without its feedback block (plain retries,
# orchestrator only), and a basic prompt with none of the guidance topics.
sed '/^{{#feedback}}$/,/^{{\/feedback}}$/d' prompts/challenger-rubric.md >"$T/nofb.md"
check "the no-feedback prompt has no feedback variable" bash -c "! grep -q '^{{feedback}}' '$T/nofb.md'"
cat >"$T/basic.md" <<'P'
=== system ===
Write one question about the source, with a context, a reference answer and a rubric, as a
JSON object: {"question_type": "...", "context": "...", "question": "...",
"reference_answer": "...", "rubric": [{"criterion": "...", "weight": 5}]}
=== user ===
SOURCE:
{{source_text}}
{{#feedback}}

{{feedback}}
{{/feedback}}
{{#instructions}}

Instructions from the lead data scientist:
{{instructions}}
{{/instructions}}
P

PORT=$(free_port); PPORT=$(free_port)
start_sim_server "$PORT" || { fail "sim-server starts"; finish; exit 1; }

# recipe NAME ORCH(0/1) PROMPT(shipped|nofb|basic) CHALLENGER_ENDPOINT(sim|proxy)
recipe() {
  local f=$T/$1.yaml
  sed -e "s|^  challenger: .*|  challenger:   {endpoint: $4, model: sim-challenger, temperature: 0.7PROMPT}|" \
      examples/sim.yaml >"$f"
  case $3 in
    shipped) sed -i 's|PROMPT||' "$f" ;;
    *) sed -i "s|PROMPT|, prompt: $T/$3.md|" "$f" ;;
  esac
  [ "$2" = 1 ] || sed -i '/^  orchestrator:/d' "$f"
  if [ "$4" = proxy ]; then
    printf 'endpoints:\n  proxy: {base_url: "http://127.0.0.1:%s/v1", max_inflight: 32}\n' "$PPORT" >>"$f"
  fi
  echo "$f"
}
arm() { # arm NAME RECIPE [ARGS...]
  local name=$1 f=$2 src=$T/src.jsonl; shift 2
  case $name in legal-*) src=$T/lsrc.jsonl ;; esac
  AUTODATA_SIM_SOURCES=$src AUTODATA_OUT=$T/$name "$AUTODATA" run "$f" --quiet "$@" \
    >"$T/$name.out" 2>&1
  check "$name run exits 0" test $? -eq 0
}
arm full "$(recipe full 1 shipped sim)"
arm plain "$(recipe plain 0 nofb sim)"
arm fb "$(recipe fb 0 shipped sim)"
arm orch "$(recipe orch 1 nofb sim)"
# The bank of other items' numbers: the feedback statistics of the fb arm's rejected
# candidates, by feedback group (as src/eval/feedback.c prints them).
python3 - "$T/fb/candidates.jsonl" >"$T/bank.tsv" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    c = json.loads(l)
    s = c["record"].get("stats")
    if c["verdict"] != "rejected" or not s or not s.get("n_weak"): continue
    pct = lambda x: int(round(100 * x))
    if c["reason"] == "too_easy":
        print(f"Questions that were TOO EASY\tweak avg: {pct(s['weak_mean'])}%")
    elif c["reason"] in ("too_hard", "failed_on_strong", "no_gap"):
        st = (f"strong avg: {pct(s['strong_mean'])}%, gap: {pct(s['gap'])}%"
              if s.get("strong_ran") and s.get("n_strong") else "strong avg: n/a, gap: n/a")
        print(f"Questions that FAILED ON STRONG\tweak avg: {pct(s['weak_mean'])}%, {st}")
PY
check "bank of feedback numbers" test "$(wc -l <"$T/bank.tsv")" -gt 50
python3 tests/e2e/shuffle_proxy.py "$PPORT" "http://127.0.0.1:$PORT/v1" 7 "$T/bank.tsv" \
  >"$T/proxy.log" 2>&1 &
E2E_PIDS+=($!)
for _ in $(seq 1 100); do grep -q ready "$T/proxy.log" && break; sleep 0.1; done
check "shuffle proxy starts" grep -q ready "$T/proxy.log"
arm shuffled "$(recipe shuffled 0 shipped proxy)"
arm basic "$(recipe basic 1 basic sim)"
arm cot "$(recipe cot 0 shipped sim)" --method cot-self-instruct
arm legal-cot examples/sim-legal.yaml --method cot-self-instruct
arm legal-agentic examples/sim-legal.yaml

# The world's parameters are recorded in the store's run info and in the data card.
check "store records the sim world's parameters" python3 -c "
import json, sqlite3, sys
info = json.loads(sqlite3.connect('file:$T/full/store.db?mode=ro', uri=True).execute('select info from runs').fetchone()[0])
sys.exit(0 if info['extra']['sim_world']['judge']['params']['err'] == 0.03 else 1)"
check "card lists the sim world's parameters" grep -q 'challenger: `sim-challenger` `{"conf":1.0,"est":0.08,"generic":0.15,"habit":0.0,"notes":1.0,"prior":0.1,"topic":0.25,"trust":2.0}`' "$T/full/DATACARD.md"
check "card names a parameter set in the model name" grep -q 'judge: `sim-judge`' "$T/cot/DATACARD.md"

cmpj() { # cmpj OUT RUN...
  local out=$1; shift
  "$AUTODATA" compare "$@" --format json >"$out" 2>"$out.err"
}
cmpj "$T/c_plain.json" "$T/plain" "$T/full" "$T/fb" "$T/orch"
cmpj "$T/c_shuf.json" "$T/fb" "$T/shuffled"
cmpj "$T/c_cot.json" "$T/full" "$T/cot"
cmpj "$T/c_basic.json" "$T/full" "$T/basic"
cmpj "$T/c_legal.json" "$T/legal-agentic" "$T/legal-cot"
"$AUTODATA" compare "$T/full" "$T/plain" "$T/fb" "$T/orch" "$T/shuffled" "$T/basic" "$T/cot" \
  >"$T/cmp.txt" 2>&1
echo "  --- the arms ($N sim sources each): full, plain, fb, orch, shuffled, basic, cot ---"
grep -E '^(acceptance rate|dataset: (weak mean|strong mean|gap|weak-rollout))' "$T/cmp.txt" | sed 's/^/  /'
"$AUTODATA" compare "$T/legal-cot" "$T/legal-agentic" >"$T/cmp_legal.txt" 2>&1
echo "  --- the legal-like world: CoT-Self-Instruct, agentic ---"
grep -E '^(acceptance rate|dataset: (weak mean|strong mean|gap|weak-rollout))' "$T/cmp_legal.txt" | sed 's/^/  /'

python3 - "$T" >"$T/claims.out" 2>&1 <<'PY'
import json, sys
T = sys.argv[1]
def load(n): return json.load(open(f"{T}/{n}.json"))["runs"]
def f(ci): return f"{ci['est']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]"
bad = []
plain, full, fb, orch = load("c_plain")
print(f"acceptance: full {f(full['acceptance_rate'])}, plain retries {f(plain['acceptance_rate'])}")
if not full["acceptance_rate"]["lo"] > plain["acceptance_rate"]["hi"]:
    bad.append("full-loop and plain-retries acceptance CIs overlap")
for r, name in ((fb, "feedback only"), (orch, "orchestrator only")):
    d = r["vs_first"]["acceptance_rate"]
    print(f"{name} - plain retries: {f(d)}")
    if not d["lo"] > 0: bad.append(f"{name} does not beat plain retries")
true_fb, shuf = load("c_shuf")
d = shuf["vs_first"]["acceptance_rate"]
print(f"shuffled - true feedback: {f(d)}")
if not d["hi"] < 0: bad.append("shuffled feedback does not do worse than the true feedback")
a, cot = load("c_cot")
print(f"gap: agentic {f(a['dataset']['gap'])}, cot {f(cot['dataset']['gap'])}; "
      f"weak: agentic {f(a['dataset']['weak_mean'])}, cot {f(cot['dataset']['weak_mean'])}")
if not a["dataset"]["gap"]["lo"] > cot["dataset"]["gap"]["hi"]: bad.append("CS: agentic gap CI not above CoT's")
if not a["dataset"]["weak_mean"]["hi"] < cot["dataset"]["weak_mean"]["lo"]: bad.append("CS: agentic weak CI not below CoT's")
la, lcot = load("c_legal")
print(f"legal-like gap: agentic {f(la['dataset']['gap'])}, cot {f(lcot['dataset']['gap'])}; "
      f"weak-rollout std: agentic {f(la['dataset']['weak_std'])}, cot {f(lcot['dataset']['weak_std'])}")
if not la["dataset"]["gap"]["hi"] < lcot["dataset"]["gap"]["lo"]: bad.append("legal: agentic gap CI not below CoT's")
if not la["dataset"]["weak_std"]["lo"] > lcot["dataset"]["weak_std"]["hi"]: bad.append("legal: agentic weak std CI not above CoT's")
shipped, basic = load("c_basic")
d = basic["vs_first"]["acceptance_rate"]
print(f"basic prompt - shipped prompt: {f(d)}")
if not d["hi"] < 0: bad.append("the basic prompt does not accept fewer than the shipped one")
rej = full["rejections"]
g = {"too easy": 0, "failed on strong": 0, "quality": 0}
for k, v in rej.items():
    g["too easy" if k == "too_easy" else "failed on strong" if k in ("too_hard", "failed_on_strong", "no_gap") else "quality"] += v
n = sum(g.values())
print("rejection mix of the full loop (paper 80 / 13 / 7): " +
      " / ".join(f"{k} {100 * v / n:.0f}%" for k, v in g.items()) + f" of {n}")
for k, paper in (("too easy", 80), ("failed on strong", 13), ("quality", 7)):
    if abs(100 * g[k] / n - paper) > 10: bad.append(f"rejection mix: {k} more than 10 points from the paper's")
print("CLAIMS HOLD" if not bad else "CLAIMS FAIL: " + "; ".join(bad))
PY
sed 's/^/  /' "$T/claims.out"
for c in "acceptance CIs overlap" "feedback only does not" "orchestrator only does not" \
         "shuffled feedback" "CS: agentic gap CI" "CS: agentic weak CI" "legal: agentic gap CI" \
         "legal: agentic weak std" "rejection mix" "basic prompt"; do
  check "claim: no '$c'" bash -c "grep -q 'CLAIMS' '$T/claims.out' && ! grep 'CLAIMS FAIL' '$T/claims.out' | grep -q '$c'"
done
finish
