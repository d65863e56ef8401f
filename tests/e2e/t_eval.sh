#!/usr/bin/env bash
# t_eval.sh - `autodata eval` and `autodata reward-server` on a sim dataset (issue 19):
# the weak and strong sim solvers ordered with non-overlapping CIs, the run's own weak
# scores reproduced (same seeds, same judge), --compare's paired difference, a killed
# eval resumed without paying a call twice; the reward server's two protocols, the
# reference answer rewarded high and garbage low, rewards equal to the run's judging of
# the same answer, 1,024 concurrent requests each answered once with the direct scores,
# the cache, clear 4xx answers and a 503 naming a judge endpoint that is down.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
HERE=$(dirname "$0")
"$AUTODATA" sim-sources --count 30 --seed 1 --out "$T/src.jsonl" 2>/dev/null
AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/run "$AUTODATA" run examples/sim.yaml --quiet \
  >"$T/run.out" 2>&1
check "sim run made a dataset" test -s "$T/run/dataset.jsonl"

# ---- eval -------------------------------------------------------------------------------
ev() { "$AUTODATA" eval "$T/run" --base-url sim --quiet "$@"; }
ev --model sim-solver@0.35 --out "$T/weak" --json >"$T/weak.json" 2>"$T/weak.err"
check "eval of the weak solver exits 0" test $? -eq 0
ev --model sim-solver@0.8 --out "$T/strong" --json >"$T/strong.json" 2>"$T/strong.err"
check "eval of the strong solver exits 0" test $? -eq 0
python3 - "$T" <<'PY' >"$T/order.txt" 2>&1
import json, sys
t = sys.argv[1]
w, s = (json.load(open(f"{t}/{n}.json")) for n in ("weak", "strong"))
mw, ms = w["metrics"]["mean@3"], s["metrics"]["mean@3"]
bw, bs = w["metrics"]["best@3"], s["metrics"]["best@3"]
n = sum(1 for _ in open(f"{t}/run/dataset.jsonl"))
assert w["examples"] == n and w["scored"] == n, (w["examples"], n)
assert mw["lo"] <= mw["est"] <= mw["hi"] and ms["lo"] <= ms["est"] <= ms["hi"]
assert ms["lo"] > mw["hi"], f"CIs overlap: weak {mw} strong {ms}"
assert bs["est"] >= bw["est"]
lines = [json.loads(l) for l in open(f"{t}/weak/eval.jsonl")]
assert all(len(l["scores"]) == 3 and len(l["answers"]) == 3 for l in lines)
print("ok", mw, ms)
PY
check "strong above weak, CIs do not overlap" grep -q '^ok' "$T/order.txt"

ev --model sim-solver@0.35 --seeds weak --out "$T/replay" >/dev/null 2>&1
python3 - "$T" <<'PY' >"$T/replay.txt" 2>&1
import json, sys
t = sys.argv[1]
ds = {json.loads(l)["id"]: json.loads(l) for l in open(f"{t}/run/dataset.jsonl")}
ev = {json.loads(l)["id"]: json.loads(l) for l in open(f"{t}/replay/eval.jsonl")}
assert ds.keys() == ev.keys()
for k, d in ds.items():
    assert d["weak_scores"] == ev[k]["scores"], (k, d["weak_scores"], ev[k]["scores"])
print("ok", len(ds))
PY
check "--seeds weak reproduces the dataset's weak scores" grep -q '^ok' "$T/replay.txt"

"$AUTODATA" eval --compare "$T/strong" "$T/weak" --json >"$T/cmp.json" 2>&1
python3 - "$T/cmp.json" <<'PY' >"$T/cmp.txt" 2>&1
import json, sys
c = json.load(open(sys.argv[1]))
m = c["metrics"]["mean@3"]
assert m["diff"] > 0 and m["lo"] > 0 and m["lo"] <= m["diff"] <= m["hi"], m
assert abs(m["diff"] - (m["a"] - m["b"])) < 1e-5
print("ok")
PY
check "--compare: paired difference with a CI above 0" grep -q '^ok' "$T/cmp.txt"
"$AUTODATA" eval --compare "$T/strong" "$T/weak" >"$T/cmp.out" 2>&1
check "--compare prints a table" grep -q "mean@3" "$T/cmp.out"

# a verifiable dataset graded by the LLM verifier: avg@k / pass@k, the run's scores again
AUTODATA_MATCHER=llm AUTODATA_LIMIT=12 AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/vrun \
  "$AUTODATA" run examples/sim-verifiable.yaml --quiet >/dev/null 2>&1
ev_v() { "$AUTODATA" eval "$T/vrun" --base-url sim --quiet "$@"; }
ev_v --model sim-solver@0.35 --seeds weak --k 4 --out "$T/vweak" --json >"$T/vweak.json" 2>&1
python3 - "$T" <<'PY' >"$T/vreplay.txt" 2>&1
import json, sys
t = sys.argv[1]
s = json.load(open(f"{t}/vweak.json"))
assert set(s["metrics"]) == {"avg@4", "pass@4"}, s["metrics"]
ds = {json.loads(l)["id"]: json.loads(l) for l in open(f"{t}/vrun/dataset.jsonl")}
ev = {json.loads(l)["id"]: json.loads(l) for l in open(f"{t}/vweak/eval.jsonl")}
assert ds and all(ds[k]["weak_scores"] == ev[k]["scores"] for k in ds)
assert all(ev[k]["pass@4"] == max(ev[k]["scores"]) for k in ev)
print("ok")
PY
check "verifiable: avg@k/pass@k, the run's weak scores reproduced" grep -q '^ok' "$T/vreplay.txt"

# ---- resume: a killed eval reruns without paying a call twice ----------------------------
P=$(free_port)
start_sim_server "$P" --latency-ms 40
"$AUTODATA" eval "$T/run" --base-url "http://127.0.0.1:$P/v1" --model sim-solver@0.8 \
  --concurrency 4 --out "$T/killed" --quiet >/dev/null 2>&1 &
EPID=$!
for _ in $(seq 1 200); do # until some calls are committed
  n=$(sqlite3 "$T/killed/store.db" "SELECT count(*) FROM calls" 2>/dev/null || echo 0)
  [ "${n:-0}" -ge 20 ] && break
  sleep 0.05
done
kill -9 "$EPID" 2>/dev/null
wait "$EPID" 2>/dev/null
before=$(sqlite3 "$T/killed/store.db" "SELECT count(*) FROM calls WHERE cache_hit = 0")
check "the eval was killed part way" test ! -e "$T/killed/eval.jsonl"
"$AUTODATA" eval "$T/run" --base-url "http://127.0.0.1:$P/v1" --model sim-solver@0.8 \
  --concurrency 4 --out "$T/killed" --json >"$T/resumed.json" 2>/dev/null
check "the rerun finishes" test $? -eq 0
twice=$(sqlite3 "$T/killed/store.db" \
  "SELECT count(*) FROM (SELECT cache_key FROM calls WHERE cache_hit = 0 GROUP BY cache_key HAVING count(*) > 1)")
check "no call paid twice ($before before the kill)" test "$twice" -eq 0
check "the rerun replayed calls from the store" \
  python3 -c "import json,sys; assert json.load(open(sys.argv[1]))['calls']['cache_hits'] > 0" "$T/resumed.json"
check "resumed eval equals the uninterrupted one" cmp -s "$T/killed/eval.jsonl" "$T/strong/eval.jsonl"
stop_sim_server "$P"

# ---- the reward server -------------------------------------------------------------------
start_reward() { # start_reward NAME ARGS...: RS_PORT, RS_PID
  local name=$1; shift
  RS_PORT=$(free_port)
  "$AUTODATA" reward-server "$T/run" --port "$RS_PORT" "$@" >"$T/$name.out" 2>"$T/$name.err" &
  RS_PID=$!
  E2E_PIDS+=($RS_PID)
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$RS_PORT/health" && return 0
    kill -0 "$RS_PID" 2>/dev/null || break
    sleep 0.05
  done
  cat "$T/$name.err"
  return 1
}
check "reward-server starts" start_reward rs --seeds weak
R=http://127.0.0.1:$RS_PORT
check "GET /health" sh -c "curl -s $R/health | grep -q '\"status\":\"ok\"'"
check "binds 127.0.0.1 only" grep -q "listening on http://127.0.0.1:$RS_PORT" "$T/rs.out"

python3 - "$T" "$R" <<'PY' >"$T/rewards.txt" 2>&1
import json, sys, urllib.request, urllib.error
t, base = sys.argv[1], sys.argv[2]
def post(path, obj):
    req = urllib.request.Request(base + path, data=json.dumps(obj).encode())
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
ds = [json.loads(l) for l in open(f"{t}/run/dataset.jsonl")]
ev = {json.loads(l)["id"]: json.loads(l) for l in open(f"{t}/replay/eval.jsonl")}
ref, junk, loads = [], [], []
for d in ds:
    st, r = post("/v1/reward", {"id": d["id"], "responses": [d["reference_answer"], "I do not know."]})
    assert st == 200, (st, r)
    ref.append(r["scores"][0]); junk.append(r["scores"][1])
    det = r["results"][0]["detail"]
    assert len(det) == len(d["rubric"]) and all("met" in c for c in det), det
    # the run's weak answer 0, scored as the run's judge scored it (same prompt, seed, scoring)
    a0 = ev[d["id"]]["answers"][0]
    st, r = post("/v1/reward", {"id": d["id"], "response": a0})
    assert st == 200 and r["scores"][0] == d["weak_scores"][0], (d["id"], r, d["weak_scores"])
    # OpenRLHF: the rl export's prompt + the response, found by prompt text and by label
    u = (d["context"] + "\n\n" + d["question"]) if d.get("context") else d["question"]
    st, r = post("/get_reward", {"query": [u + a0, a0], "prompts": [u, ""], "labels": ["", d["id"]]})
    assert st == 200 and r["rewards"] == [d["weak_scores"][0]] * 2, (st, r, d["weak_scores"])
    loads.append({"body": {"id": d["id"], "response": a0}, "expect": d["weak_scores"][0]})
    loads.append({"body": {"id": d["id"], "response": d["reference_answer"]}, "expect": ref[-1]})
mr, mj = sum(ref) / len(ref), sum(junk) / len(junk)
assert mr >= 0.8 and mj <= 0.5 and mr > mj + 0.3, (mr, mj)
with open(f"{t}/load.jsonl", "w") as f:
    for l in loads:
        f.write(json.dumps(l) + "\n")
print("ok", round(mr, 3), round(mj, 3))
PY
check "reference answers rewarded high, garbage low; rewards equal the run's judging" \
  grep -q '^ok' "$T/rewards.txt"

python3 "$HERE/reward_load.py" "$RS_PORT" "$T/load.jsonl" 1024 >"$T/load.out" 2>&1
python3 - "$T" <<'PY' >"$T/load.txt" 2>&1
import json, sys
t = sys.argv[1]
o = json.loads(open(f"{t}/load.out").read())
exp = [json.loads(l)["expect"] for l in open(f"{t}/load.jsonl")]
assert o["answered"] == 1024 and o["status"] == {"200": 1024} and o["twice"] == 0, {k: o[k] for k in ("answered", "status", "twice", "errors")}
for i, s in enumerate(o["scores"]):
    assert s == [exp[i % len(exp)]], (i, s, exp[i % len(exp)])
print("ok")
PY
check "1,024 concurrent requests: each answered once, scores equal to direct judging" \
  grep -q '^ok' "$T/load.txt"

code() { curl -s -o "$T/body" -w '%{http_code}' -X POST "$R$1" --data-binary "$2"; }
check "malformed JSON: 400" test "$(code /get_reward '{"query": [')" = 400
check "400 body is JSON naming the problem" grep -q '"message":"body is not JSON' "$T/body"
check "missing field: 400" test "$(code /get_reward '{"prompts": []}')" = 400
check "400 names the field" grep -q 'missing field \\"query\\"' "$T/body"
check "unknown prompt: 404" test "$(code /get_reward '{"query":["q"],"prompts":["no such prompt"]}')" = 404
check "unknown id: 404" test "$(code /v1/reward '{"id":"nope","response":"a"}')" = 404
check "unknown path: 404" test "$(code /v2/x '{}')" = 404
head -c 9000000 /dev/zero | tr '\0' 'a' >"$T/big"
big=$(curl -s -o "$T/body" -w '%{http_code}' -X POST "$R/v1/reward" --data-binary @"$T/big")
check "oversized body: 413" test "$big" = 413
check "413 body says the limit" grep -q 'exceeds the 8 MiB limit' "$T/body"
kill "$RS_PID"
wait "$RS_PID" 2>/dev/null
check "judge calls cached: answered from the store" \
  grep -Eq 'answered from the store [1-9]' "$T/rs.err"
check "a second start pays no call for the same responses" start_reward rs2 --seeds weak
curl -s -X POST "http://127.0.0.1:$RS_PORT/v1/reward" \
  -d "$(head -1 "$T/load.jsonl" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["body"]))')" >/dev/null
kill "$RS_PID"
wait "$RS_PID" 2>/dev/null
check "... (0 judge calls sent)" grep -q 'judge calls sent 0, answered from the store 1' "$T/rs2.err"

DOWN=$(free_port)
check "reward-server with a judge that is down starts" start_reward rsdown \
  --judge-base-url "http://127.0.0.1:$DOWN/v1" --judge-retries 0 --cache "$T/down.db"
st=$(curl -s -m 60 -o "$T/body" -w '%{http_code}' -X POST "http://127.0.0.1:$RS_PORT/v1/reward" \
  -d "{\"id\":\"$(head -1 "$T/run/dataset.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')\",\"response\":\"x\"}")
check "judge down: 503" test "$st" = 503
check "503 names the endpoint" grep -q "127.0.0.1:$DOWN" "$T/body"
kill "$RS_PID"
wait "$RS_PID" 2>/dev/null
finish
