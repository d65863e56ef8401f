#!/usr/bin/env bash
# t_agent.sh - `--method agent` (docs/agent.md): a sim run produces a dataset with its
# trajectories; in-process and over HTTP with injected faults give byte-identical datasets;
# SIGKILL + resume gives the same dataset; a scripted hostile orchestrator (sim-hostile) is
# answered with readable tool errors, never crashes the run and never gets past the gate;
# an endpoint that refuses tools stops the run with one line that names it.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 24 --seed 1 --out "$T/src.jsonl" 2>/dev/null
export AUTODATA_SIM_SOURCES=$T/src.jsonl
R=examples/sim-agent.yaml

# --- in-process
AUTODATA_OUT=$T/a "$AUTODATA" run "$R" --quiet >"$T/a.out" 2>&1
check "in-process agent run exits 0" test $? -eq 0
n=$(wc -l <"$T/a/dataset.jsonl")
check "the agent produced a dataset ($n examples of 24)" test "$n" -ge 8
check "an evaluate that stopped early says so (answers given < planned)" python3 - "$T/a/candidates.jsonl" <<'PY'
import json, re, sys
seen = 0
for l in open(sys.argv[1]):
    for st in json.loads(l)["record"]["agent"]["trajectory"]:
        r = st.get("result") or {}
        if st.get("tool") == "evaluate" and r.get("stopped_early"):
            m = re.search(r"after (\d+) of (\d+) answers", r["note"])
            assert m and int(m.group(1)) == len(r["answers"]) < int(m.group(2)), r
            seen += 1
assert seen > 0, "no evaluate stopped early"
PY
check "candidates.jsonl carries each source's trajectory" python3 - "$T/a/candidates.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 24, len(rows)
tools = set()
for r in rows:
    a = r["record"]["agent"]
    assert a["turns"] >= 1 and a["tool_calls"] == len([t for t in a["trajectory"] if "tool" in t])
    for t in a["trajectory"]:
        tools.add(t["tool"])
        assert isinstance(t["arguments"], str) and "result" in t
assert {"generate", "check_quality", "evaluate", "submit"} <= tools, tools
PY
check "the data card records the agent's prompt and tools" \
  grep -q "Produce one accepted question for this source" "$T/a/DATACARD.md"
check "the data card lists the tool definitions" grep -q '"check_quality"' "$T/a/DATACARD.md"

# --- over HTTP with injected faults: the same dataset, byte for byte
port=$(free_port)
start_sim_server "$port" --seed 3 --retry-after 0 --faults "429=0.05,500=0.05,drop=0.03,garbage=0.03" ||
  fail "sim-server start"
python3 - "$R" "$T/http.yaml" "http://127.0.0.1:$port/v1" <<'PY'
import sys
text = open(sys.argv[1]).read().replace("endpoint: sim,", "endpoint: simhttp,")
text = text.replace("\nroles:", "\nendpoints:\n  simhttp:\n    base_url: %s\n    max_retries: 12\n\nroles:" % sys.argv[3], 1)
open(sys.argv[2], "w").write(text)
PY
AUTODATA_OUT=$T/h "$AUTODATA" run "$T/http.yaml" --quiet >"$T/h.out" 2>&1
check "HTTP agent run with faults exits 0" test $? -eq 0
check "in-process and HTTP-with-faults datasets are byte-identical" cmp "$T/a/dataset.jsonl" "$T/h/dataset.jsonl"
stop_sim_server "$port"

# --- SIGKILL and resume over HTTP (slow replies so the kills land mid-conversation)
port=$(free_port)
start_sim_server "$port" --seed 1 --latency-ms 15 --jitter-ms 5 || fail "sim-server start"
sed -e "s#http://127.0.0.1:[0-9]*/v1#http://127.0.0.1:$port/v1#" "$T/http.yaml" >"$T/kill.yaml"
RANDOM=7
killed=0
for i in 1 2 3 4; do
  AUTODATA_OUT=$T/k "$AUTODATA" run "$T/kill.yaml" --quiet --concurrency 4 >"$T/k.$i.out" 2>&1 &
  pid=$!
  sleep "0.$(printf '%03d' $((RANDOM % 400 + 300)))"
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; killed=$((killed + 1)); fi
  wait "$pid" 2>/dev/null
done
AUTODATA_OUT=$T/k "$AUTODATA" run "$T/kill.yaml" --quiet --concurrency 4 >"$T/k.final.out" 2>&1
check "final resume exits 0" test $? -eq 0
check "kills landed mid-run ($killed)" test "$killed" -ge 2
check "dataset after SIGKILL + resume equals the uninterrupted one" cmp "$T/a/dataset.jsonl" "$T/k/dataset.jsonl"
stop_sim_server "$port"

# --- a hostile orchestrator
hostile() { # NAME SCRIPT STEPS
  AUTODATA_LIMIT=4 AUTODATA_AGENT_STEPS=$3 AUTODATA_AGENT_MODEL="sim-hostile@script=$2" \
    AUTODATA_OUT=$T/$1 "$AUTODATA" run "$R" --quiet >"$T/$1.out" 2>&1
  check "hostile $1: the run exits 0" test $? -eq 0
}
hostile errors "unknown:badjson:badargs:badid:multi:gen:submit:quality:weak:submit:strong:submit:giveup" 30
hostile text "gen:text:gen:text:text" 30
hostile loop "gen:quality:badid" 9
hostile noid "noid" 30
check "hostile: every case answered as documented, and the gate never bypassed" python3 - "$T" <<'PY'
import json, sys
T = sys.argv[1]
def rows(name):
    return [json.loads(l) for l in open(f"{T}/{name}/candidates.jsonl")]
def results(r, tool):
    return [t["result"] for t in r["record"]["agent"]["trajectory"] if t.get("tool") == tool]
errs = rows("errors")
assert len(errs) == 4
seen = set()
for r in errs:
    tr = r["record"]["agent"]["trajectory"]
    for t in tr:
        res, e = t.get("result", {}), t.get("result", {}).get("error", "")
        if t["tool"] == "drop_bounds": assert e.startswith("unknown tool 'drop_bounds'"); seen.add("unknown tool")
        if "not valid JSON" in e: seen.add("malformed JSON")
        if "unknown argument 'samples'" in e: seen.add("sampling argument refused")
        if "unknown candidate id 'c999'" in e: seen.add("unknown id")
        if t["tool"] == "submit" and "cannot be submitted yet" in e:
            assert res["accepted"] is False and "evaluate strong" in res["missing"]; seen.add("submit before evaluation")
        if t["tool"] == "submit" and res.get("failing_bounds"):
            assert res["accepted"] is False and res["reason"]; seen.add("submit of a failing candidate")
    # the gate: an accepted source's submit came after evaluations where every bound holds
    if r["verdict"] == "accepted":
        ev = [t["result"] for t in tr if t["tool"] == "evaluate" and "bounds" in t["result"]]
        assert ev and all(b["holds"] is True for b in ev[-1]["bounds"]), ev
    else:
        assert r["reason"] == "gave_up", r["reason"]
want = {"unknown tool", "malformed JSON", "sampling argument refused", "unknown id",
        "submit before evaluation", "submit of a failing candidate"}
assert want <= seen, want - seen
# no example whose scores fail the deployed gate, recomputed here from its scores
for name in ("errors", "text", "loop", "noid"):
    for l in open(f"{T}/{name}/dataset.jsonl"):
        ex = json.loads(l)
        w, s = ex["weak_scores"], ex["strong_scores"]
        wm, sm = sum(w) / len(w), sum(s) / len(s)
        assert wm <= 0.65 and max(w) <= 0.75 and min(w) > 0, ex["id"]
        assert 0.6 <= sm < 0.95 and min(s) > 0 and sm - wm >= 0.2, ex["id"]
for r in rows("text"):
    assert r["reason"] == "no_tool_call" and "no tool call" in r["record"]["detail"], r
    assert not r["record"]["candidate"]
for r in rows("loop"):
    assert r["reason"] == "step_budget" and r["record"]["agent"]["tool_calls"] == 9, r["reason"]
for r in rows("noid"):
    assert r["reason"] == "no_tool_call" and "tool_calls[0].id" in r["record"]["detail"], r
PY

# --- an endpoint without tool calling: one line naming it, and the way out
AUTODATA_LIMIT=2 AUTODATA_AGENT_MODEL=sim-orchestrator AUTODATA_OUT=$T/notools \
  "$AUTODATA" run "$R" --quiet >"$T/notools.out" 2>&1
rc=$?
check "tools refused: the run stops (exit $rc)" test "$rc" -ne 0
check "tools refused: the diagnosis names the endpoint and suggests --method agentic" \
  grep -q "endpoint 'sim' (model 'sim-orchestrator') does not take tool calls.*--method agentic" "$T/notools.out"
check "tools refused: no source is written off" \
  python3 -c "import sys; sys.exit(open('$T/notools/candidates.jsonl').read() != '')"
# --- validate checks the agent's own prompt as run will load it
cp -r prompts "$T/vp" && rm "$T/vp/agent.md"
"$AUTODATA" validate --prompts "$T/vp" "$R" >/dev/null 2>"$T/v.err"
check "validate: a missing agent.md is an error (exit 2)" test $? -eq 2
check "validate: the error names agent.md and the cause" grep -q "agent.md: No such file" "$T/v.err"
echo 'Act through tools. {{no_such_var}}' >"$T/vp/agent.md"
"$AUTODATA" validate --prompts "$T/vp" "$R" >/dev/null 2>"$T/v.err"
check "validate: an unknown variable in agent.md is an error" grep -q "unknown variable 'no_such_var'" "$T/v.err"
"$AUTODATA" validate --prompts prompts "$R" >/dev/null 2>&1
check "validate: the shipped agent.md passes" test $? -eq 0

finish
