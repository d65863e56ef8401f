#!/usr/bin/env bash
# t_real_server.sh - the run against the behaviours of real model servers, scripted in
# the sim server (docs/sim-server.md, "Real-server behaviours"): structured outputs on
# every shaped role (retries and repairs included), judges that skip or repeat criteria,
# replies cut off at max_tokens, context-size 400s, servers that ignore the schema.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 8 --seed 5 --out "$T/src.jsonl" 2>/dev/null
export AUTODATA_SIM_SOURCES=$T/src.jsonl
export AUTODATA_ROUNDS=2

# calls.py AUTODATA STORE: one JSON line per stored call: role, finish_reason, request (decoded by
# `autodata store calls`, whatever the store's compression).
cat >"$T/calls.py" <<'PY'
import json, subprocess, sys
out = subprocess.run([sys.argv[1], "store", "calls", sys.argv[2]], check=True,
                     capture_output=True, text=True).stdout
for line in out.splitlines():
    c = json.loads(line)
    req = c.get("request")
    print(json.dumps({"role": c.get("role"), "finish_reason": c.get("finish_reason"),
                      "status": c.get("status"), "request": json.loads(req) if req else None}))
PY

port=$(free_port)
start_sim_server "$port" --judge-faults skip=0.2,dup=0.1 || fail "sim-server start"
url=http://127.0.0.1:$port/v1

# 1. Every shaped role's request carries its schema, repair turns included; judges that
#    skip or repeat criteria get a repair turn, and the statistics count judgements.
AUTODATA_SIM_URL=$url AUTODATA_OUT=$T/a "$AUTODATA" run examples/sim-http.yaml --quiet \
  >"$T/a.out" 2>"$T/a.err"; rc=$?
check "judge faults: run exits 0" test "$rc" -eq 0
python3 "$T/calls.py" "$AUTODATA" "$T/a/store.db" >"$T/a.calls"
check "schemas: every challenger, quality and judge request carries response_format" python3 - "$T/a.calls" <<'PY'
import json, sys
shaped = 0
for line in open(sys.argv[1]):
    c = json.loads(line)
    r, req = c["role"], c["request"]
    if req is None:
        continue
    if r.startswith(("challenger", "quality", "judge")):
        shaped += 1
        rf = req.get("response_format")
        if not rf or rf.get("type") != "json_schema":
            sys.exit("no schema on %s" % r)
        s = rf["json_schema"]["schema"]
        if r.startswith("judge"):
            v = s["properties"]["verdicts"]
            if v["minItems"] != v["maxItems"] or v["items"]["properties"]["criterion"]["maximum"] != v["maxItems"]:
                sys.exit("judge schema does not pin the criteria: %s" % v)
    elif "response_format" in req:
        sys.exit("a solver or orchestrator request has a schema: %s" % r)
sys.exit(0 if shaped else "no shaped calls")
PY
check "schemas: judge repair turns were made and carry the judge's schema" python3 - "$T/a.calls" <<'PY'
import json, sys
calls = [json.loads(l) for l in open(sys.argv[1])]
rep = [c for c in calls if c["role"].startswith("judge_") and c["role"].endswith("_repair")]
if not rep:
    sys.exit("no judge repair turn")
for c in rep:
    msgs = c["request"]["messages"]
    if msgs[-1]["role"] != "user" or "could not be used" not in msgs[-1]["content"]:
        sys.exit("repair turn without the problem")
    if "response_format" not in c["request"]:
        sys.exit("repair turn without schema")
PY
check "judge faults: the run reports its judgements" grep -qE "^judgements: [0-9]+, invalid after their repair turn: [0-9]+" "$T/a.out"
check "judge faults: candidates record repaired judgements" \
  python3 -c "import json,sys; sys.exit(0 if any((json.loads(l)['record'].get('judgements') or {}).get('repaired',0)>0 for l in open('$T/a/candidates.jsonl')) else 1)"
check "judge faults: a judgement still invalid after its repair is the sample's error" \
  grep -q "invalid judgement after a repair turn: judge reply: the verdicts must cover criteria" "$T/a/candidates.jsonl"
check "null statistics: strong_mean and gap are null where the strong solver did not run" python3 - "$T/a/candidates.jsonl" <<'PY'
import json, sys
seen = 0
for l in open(sys.argv[1]):
    s = json.loads(l)["record"].get("stats")
    if s and not s["strong_ran"]:
        seen += 1
        if s["strong_mean"] is not None or s["gap"] is not None:
            sys.exit("unmeasured statistic is not null: %s" % s)
sys.exit(0 if seen else "no candidate stopped before the strong solver")
PY
stop_sim_server "$port"

# 2. A judge that never covers its criteria: the run stops with a diagnosis naming the
#    role and the model (and sets the sources in hand aside).
port=$(free_port)
start_sim_server "$port" --judge-faults skip=1 || fail "sim-server start"
AUTODATA_SIM_URL=http://127.0.0.1:$port/v1 AUTODATA_OUT=$T/j "$AUTODATA" run examples/sim-http.yaml --quiet \
  >"$T/j.out" 2>"$T/j.err"; rc=$?
check "broken judge: the run stops (exit 3)" test "$rc" -eq 3
check "broken judge: the diagnosis names the judge and its model" \
  grep -qE "stopped: role judge \(model 'sim-judge' on endpoint 'simhttp'\)" "$T/j.out"
check "broken judge: no source written off" bash -c \
  "'$AUTODATA' status --store '$T/j/store.db' --json | python3 -c \"import json,sys; s=json.load(sys.stdin)['sources']; sys.exit(0 if s['done']+s['exhausted']==0 else 1)\""
stop_sim_server "$port"

# 3. Replies cut off at max_tokens: recorded on the call, their own rejection reason
#    naming the limit, and no repair turn spent on them.
port=$(free_port)
start_sim_server "$port" --cut-at-max-tokens || fail "sim-server start"
sed -e 's/model: sim-challenger, temperature: 0.7}/model: sim-challenger, temperature: 0.7, max_tokens: 40}/' \
  examples/sim-http.yaml >"$T/cut.yaml"
AUTODATA_SIM_URL=http://127.0.0.1:$port/v1 AUTODATA_OUT=$T/c "$AUTODATA" run "$T/cut.yaml" --quiet \
  >"$T/c.out" 2>"$T/c.err"; rc=$?
check "truncation: the run stops on the challenger (exit 3)" test "$rc" -eq 3
check "truncation: rejections say truncated:challenger and name the limit" \
  bash -c "grep '\"reason\":\"truncated:challenger\"' '$T/c/rejected.jsonl' | grep -q 'hit max_tokens (40 tokens'"
python3 "$T/calls.py" "$AUTODATA" "$T/c/store.db" >"$T/c.calls"
check "truncation: finish_reason length is recorded on the calls" grep -q '"role": "challenger", "finish_reason": "length"' "$T/c.calls"
check "truncation: no repair turn spent on a truncated reply" bash -c "! grep -q '\"role\": \"challenger_repair\"' '$T/c.calls'"
stop_sim_server "$port"

# 4. A context smaller than the prompts: every request is refused with the same 400.
#    The run stops with the server's message and exit 3, writes no source off, and the
#    rerun against a server with room resumes them all.
port=$(free_port)
start_sim_server "$port" --ctx-size 200 || fail "sim-server start"
AUTODATA_SIM_URL=http://127.0.0.1:$port/v1 AUTODATA_OUT=$T/x "$AUTODATA" run examples/sim-http.yaml --quiet \
  >"$T/x.out" 2>"$T/x.err"; rc=$?
check "context overflow: the run stops (exit 3)" test "$rc" -eq 3
check "context overflow: it says why, in the server's words" \
  grep -q "stopped: 3 requests in a row were refused with the same error.*exceeds the available context size" "$T/x.out"
check "context overflow: no source written off" bash -c \
  "'$AUTODATA' status --store '$T/x/store.db' --json | python3 -c \"import json,sys; s=json.load(sys.stdin)['sources']; sys.exit(0 if s['done']+s['exhausted']==0 else 1)\""
stop_sim_server "$port"
port=$(free_port)
start_sim_server "$port" || fail "sim-server start"
AUTODATA_SIM_URL=http://127.0.0.1:$port/v1 AUTODATA_OUT=$T/ref "$AUTODATA" run examples/sim-http.yaml --quiet >/dev/null 2>&1
AUTODATA_SIM_URL=http://127.0.0.1:$port/v1 AUTODATA_OUT=$T/x "$AUTODATA" run examples/sim-http.yaml --quiet \
  >"$T/x2.out" 2>&1; rc=$?
check "context overflow: the corrected rerun exits 0" test "$rc" -eq 0
check "context overflow: the rerun resumes every source (reference dataset)" cmp "$T/ref/dataset.jsonl" "$T/x/dataset.jsonl"
stop_sim_server "$port"

# 5. Request errors that are not systematic (two sources, each refused once): they are
#    the candidates' errors, and a run whose sources all ended in errors exits non-zero.
port=$(free_port)
start_sim_server "$port" --ctx-size 200 || fail "sim-server start"
AUTODATA_ROUNDS=1 AUTODATA_LIMIT=2 AUTODATA_SIM_URL=http://127.0.0.1:$port/v1 AUTODATA_OUT=$T/e \
  "$AUTODATA" run examples/sim-http.yaml --quiet --concurrency 1 >"$T/e.out" 2>"$T/e.err"; rc=$?
check "all sources in errors: exit 1" test "$rc" -eq 1
check "all sources in errors: it says so" grep -q "every source finished in this session ended on an error; last: error:challenger" "$T/e.err"
stop_sim_server "$port"

# 6. A server that accepts response_format and ignores it: one warning naming the endpoint.
port=$(free_port)
start_sim_server "$port" --ignore-schema || fail "sim-server start"
AUTODATA_SIM_URL=http://127.0.0.1:$port/v1 AUTODATA_OUT=$T/i "$AUTODATA" run examples/sim-http.yaml --quiet \
  >"$T/i.out" 2>"$T/i.err"
check "ignored schema: one warning naming the endpoint and the likely cause" test \
  "$(grep -c "endpoint 'simhttp': 3 replies in a row to requests with a JSON schema (response_format) held no JSON at all.*ignores it" "$T/i.err")" -eq 1
stop_sim_server "$port"

# 7. chat prints the finish reason.
port=$(free_port)
start_sim_server "$port" --cut-at-max-tokens || fail "sim-server start"
"$AUTODATA" chat --base-url "http://127.0.0.1:$port/v1" --model sim-judge --max-tokens 3 \
  "a long question that needs a long answer" >"$T/chat.out" 2>"$T/chat.err"
check "chat: prints finish_reason length" grep -q "finish_reason length$" "$T/chat.out"
check "chat: says the reply was cut off" grep -q "cut off at the token limit" "$T/chat.err"
stop_sim_server "$port"

finish
