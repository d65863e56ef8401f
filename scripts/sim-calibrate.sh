#!/usr/bin/env bash
# sim-calibrate.sh - regenerate the calibration table of docs/sim.md: the sim world against
# the paper, on the real program (in-process sim, no server, no network).
#
#   scripts/sim-calibrate.sh [BINARY] [SOURCES]     (defaults: build/autodata, 200)
#
# Runs, each on SOURCES sim sources (corpus seed 1): the CS-like world (examples/sim.yaml,
# 32 facts per source) with the agentic loop and CoT-Self-Instruct, and the legal-like world
# (examples/sim-legal.yaml, 64 facts per source) with both; prints a markdown table of
# `autodata compare`'s figures next to the paper's, and the agentic loop's rejection mix.
# About a minute on one core.
set -euo pipefail
B=${1:-build/autodata}
N=${2:-200}
T=$(mktemp -d /tmp/autodata-calib.XXXXXX)
trap 'rm -rf "$T"' EXIT
run() { # run WORLD RECIPE FACTS METHOD
  [ -s "$T/src-$3.jsonl" ] ||
    "$B" sim-sources --count "$N" --seed 1 --facts-per-source "$3" --out "$T/src-$3.jsonl" 2>/dev/null
  AUTODATA_SIM_SOURCES=$T/src-$3.jsonl "$B" run "$2" --quiet --method "$4" --out "$T/$1-$4" \
    >"$T/$1-$4.log" 2>&1 || { cat "$T/$1-$4.log" >&2; exit 1; }
}
run cs examples/sim.yaml 32 cot-self-instruct
run cs examples/sim.yaml 32 agentic
run legal examples/sim-legal.yaml 64 cot-self-instruct
run legal examples/sim-legal.yaml 64 agentic
"$B" compare "$T/cs-cot-self-instruct" "$T/cs-agentic" --format json >"$T/cs.json"
"$B" compare "$T/legal-cot-self-instruct" "$T/legal-agentic" --format json >"$T/legal.json"
python3 - "$T" "$N" <<'PY'
import json, sys
T, N = sys.argv[1], sys.argv[2]
# The paper's figures (Table 1: CS, Table 3: legal; weak-rollout std in points / 100).
paper = {
    ("cs", "weak_mean", "cot"): "0.677", ("cs", "weak_mean", "agentic"): "0.458",
    ("cs", "strong_mean", "cot"): "0.696", ("cs", "strong_mean", "agentic"): "0.772",
    ("cs", "gap", "cot"): "0.019", ("cs", "gap", "agentic"): "0.314",
    ("cs", "rounds", "cot"): "1.00", ("cs", "rounds", "agentic"): "6.59",
    ("cs", "question_chars", "cot"): "723", ("cs", "question_chars", "agentic"): "619",
    ("cs", "rubric_items", "cot"): "13.2", ("cs", "rubric_items", "agentic"): "13.1",
    ("legal", "weak_mean", "cot"): "0.159", ("legal", "weak_mean", "agentic"): "0.283",
    ("legal", "strong_mean", "cot"): "0.717", ("legal", "strong_mean", "agentic"): "0.698",
    ("legal", "gap", "cot"): "0.558", ("legal", "gap", "agentic"): "0.415",
    ("legal", "weak_std", "cot"): "0.079", ("legal", "weak_std", "agentic"): "0.126",
    ("legal", "rounds", "cot"): "1.00", ("legal", "rounds", "agentic"): "4.98",
    ("legal", "question_chars", "cot"): "1569", ("legal", "question_chars", "agentic"): "900",
    ("legal", "rubric_items", "cot"): "18.6", ("legal", "rubric_items", "agentic"): "17.3",
}
rows = [("acceptance (gate)", None), ("weak mean", "weak_mean"), ("strong mean", "strong_mean"),
        ("gap", "gap"), ("weak-rollout std", "weak_std"), ("rounds", "rounds"),
        ("question length (chars)", "question_chars"), ("rubric items", "rubric_items")]
def ci(c, k):
    if k is None: x = c["acceptance_rate"]
    else: x = c["dataset"].get(k)
    if not x: return "—"
    return f"{x['est']:.3f} [{x['lo']:.3f}, {x['hi']:.3f}]" if "lo" in x and x["lo"] is not None else f"{x['est']:.2f}"
print(f"| {N} sim sources | CS-like CoT-SI | CS-like agentic | paper CS CoT / agentic | "
      f"legal-like CoT-SI | legal-like agentic | paper legal CoT / agentic |")
print("|---|---|---|---|---|---|---|")
w = {k: json.load(open(f"{T}/{k}.json"))["runs"] for k in ("cs", "legal")}
for label, k in rows:
    cells = []
    for world in ("cs", "legal"):
        cot, ag = w[world]
        p = f"{paper.get((world, k, 'cot'), '—')} / {paper.get((world, k, 'agentic'), '—')}"
        cells += [ci(cot, k), ci(ag, k), p]
    print(f"| {label} | " + " | ".join(cells) + " |")
for world in ("cs", "legal"):
    rej = w[world][1]["rejections"]
    g = {"too easy": 0, "failed on strong": 0, "quality": 0}
    for r, v in rej.items():
        g["too easy" if r == "too_easy" else "failed on strong" if r in ("too_hard", "failed_on_strong", "no_gap") else "quality"] += v
    n = sum(g.values()) or 1
    print(f"\n{world}-like agentic rejection mix (paper, CS: 80 / 13 / 7): " +
          " / ".join(f"{k} {100 * v / n:.0f}%" for k, v in g.items()) + f" of {n}")
PY
