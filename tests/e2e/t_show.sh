#!/usr/bin/env bash
# t_show.sh - `autodata show`: on sim runs (a rubric run, its replay from the cache in
# a second run, a verifiable run), every round, candidate, model call and solver
# sample of every source appears, counted against the store's own tables; each
# sample's judged score is the score the loop recorded; unknown ids and rounds are
# refused with a way to find them.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 8 --seed 3 --out "$T/src.jsonl" 2>/dev/null
export AUTODATA_SIM_SOURCES=$T/src.jsonl
AUTODATA_OUT=$T/r "$AUTODATA" run examples/sim.yaml --quiet >"$T/run.out" 2>&1
check "sim run exits 0" test $? -eq 0
AUTODATA_OUT=$T/r "$AUTODATA" run examples/sim.yaml --quiet --new-run >"$T/run2.out" 2>&1
check "second run (all from the cache) exits 0" test $? -eq 0
AUTODATA_OUT=$T/v "$AUTODATA" run examples/sim-verifiable.yaml --quiet >"$T/v.out" 2>&1
check "verifiable sim run exits 0" test $? -eq 0

# check_all STORE RUN [--prompts]: show every source of RUN and compare with the store.
check_all() {
  local store=$1 run=$2 extra=${3:-}
  python3 - "$AUTODATA" "$store" "$run" "$extra" <<'PY'
import json, sqlite3, subprocess, sys
exe, store, run, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
db = sqlite3.connect(store)
single = ("orchestrator", "challenger", "quality")
ids = [r[0] for r in db.execute("select source_id from sources where run=?", (run,))]
assert ids, "no sources"
bad = []
n_samples_total = 0
for sid in ids:
    args = [exe, "show", store, "--source", sid, "--run", str(run), "--json"] + ([extra] if extra else [])
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        bad.append((sid, "exit", p.returncode, p.stderr)); continue
    d = json.loads(p.stdout)
    rounds = [r[0] for r in db.execute(
        "select distinct round from candidates where run=? and source_id=? order by round", (run, sid))]
    ncand = db.execute("select count(*) from candidates where run=? and source_id=?", (run, sid)).fetchone()[0]
    ncalls = db.execute("select count(*) from calls where run=? and source_id=?", (run, sid)).fetchone()[0]
    solver = db.execute("select count(*) from calls where run=? and source_id=? and role not in "
                        "('orchestrator','challenger','quality') and role not like 'judge%'", (run, sid)).fetchone()[0]
    got_rounds = [r["round"] for r in d["rounds"]]
    if got_rounds != rounds: bad.append((sid, "rounds", got_rounds, rounds))
    if d["counts"]["candidates"] != ncand: bad.append((sid, "candidates", d["counts"]["candidates"], ncand))
    if sum(len(r["candidates"]) for r in d["rounds"]) != ncand: bad.append((sid, "candidate rows"))
    if d["counts"]["calls"] != ncalls or sum(len(r["calls"]) for r in d["rounds"]) != ncalls:
        bad.append((sid, "calls", d["counts"]["calls"], ncalls))
    if d["counts"]["samples"] != solver: bad.append((sid, "samples", d["counts"]["samples"], solver))
    for r in d["rounds"]:
        n_samples_total += sum(len(v) for v in r["samples"].values())
        for c in r["calls"]:
            if c["status"] == "ok" and not c["content"]: bad.append((sid, r["round"], "empty call", c["id"]))
            if extra == "--prompts" and not c.get("messages"): bad.append((sid, r["round"], "no prompt", c["id"]))
        rec = r["candidates"][-1]
        for role in ("weak", "strong"):
            ss = r["samples"].get(role, [])
            if [s["sample"] for s in ss] != list(range(len(ss))): bad.append((sid, r["round"], role, "sample order"))
            for s in ss:
                if not s["answer"]: bad.append((sid, r["round"], role, "no answer", s["sample"]))
            if ss and not rec.get("sample_errors") and len(r["candidates"]) == 1:
                want = rec.get(role + "_scores") or []
                if [s.get("score") for s in ss] != want:
                    bad.append((sid, r["round"], role, "recorded scores", [s.get("score") for s in ss], want))
            scores = [s["judge"]["score"] for s in ss if s["judge"] and "score" in s["judge"]]
            if ss and ss[0]["judge"] and not rec.get("sample_errors"):
                want = rec.get(role + "_scores") or []
                if [round(x, 6) for x in scores] != [round(x, 6) for x in want]:
                    bad.append((sid, r["round"], role, "scores", scores, want))
                for s in ss:
                    if rec["candidate"] and rec["candidate"].get("rubric") and \
                       len(s["judge"].get("verdicts", [])) != len(rec["candidate"]["rubric"]):
                        bad.append((sid, r["round"], role, "verdicts per criterion"))
    # the text rendering shows every round and every sample
    t = subprocess.run([exe, "show", store, "--source", sid, "--run", str(run)], capture_output=True, text=True)
    heads = [l for l in t.stdout.splitlines() if l.startswith("== round ")]
    marks = [l for l in t.stdout.splitlines() if l.startswith("    #")]
    if t.returncode != 0 or len(heads) != len(rounds) or len(marks) != solver:
        bad.append((sid, "text", t.returncode, len(heads), len(rounds), len(marks), solver))
if n_samples_total == 0: bad.append(("no samples at all",))
if bad:
    for b in bad[:10]: print(b)
    sys.exit(1)
PY
}
check "run 1: every round, candidate, call and sample of every source, scores as recorded" check_all "$T/r/store.db" 1
check "run 2 (cache hits): the same, answers found through the cache" check_all "$T/r/store.db" 2
check "--prompts gives every call's rendered messages" check_all "$T/r/store.db" 1 --prompts
check "verifiable run: every round, candidate, call and sample" check_all "$T/v/store.db" 1

# over HTTP with faults: failed calls, retries, garbage replies
PORT=$(free_port)
start_sim_server "$PORT" --faults 500=0.05,garbage=0.05,truncate=0.03 --retry-after 0
AUTODATA_SIM_URL=http://127.0.0.1:$PORT/v1 AUTODATA_OUT=$T/h "$AUTODATA" run examples/sim-http.yaml \
  --quiet >"$T/h.out" 2>&1
rc=$?
check "faulty HTTP run finishes or stops to be resumed (exit 0 or 3)" test $rc -eq 0 -o $rc -eq 3
check "faulty HTTP run: every round, candidate, call and sample" check_all "$T/h/store.db" 1

S=$(sqlite3 "$T/r/store.db" "select source_id from sources where run=1 and rounds_used>=2 limit 1")
"$AUTODATA" show "$T/r" --source "$S" >"$T/dir.txt" 2>&1
"$AUTODATA" show "$T/r/store.db" --source "$S" >"$T/file.txt" 2>&1
check "an output folder shows the same as its store" cmp -s "$T/dir.txt" "$T/file.txt"
"$AUTODATA" show "$T/r" --source "$S" --round 2 --json >"$T/r2.json"
check "--round 2 shows only round 2" python3 -c "
import json; d=json.load(open('$T/r2.json')); assert [r['round'] for r in d['rounds']] == [2], d['rounds']"
"$AUTODATA" show "$T/r" --source "$S" --round 99 >"$T/r99.out" 2>&1
check "a round the source did not use: exit 2" test $? -eq 2
check "... naming the rounds it used" grep -q "has no round 99.*it used" "$T/r99.out"
"$AUTODATA" show "$T/r" --source no-such-id >"$T/nosrc.out" 2>&1
check "an unknown source id: exit 2" test $? -eq 2
check "... says how to list the ids" grep -q "no source 'no-such-id'.*autodata show .* lists every source id" "$T/nosrc.out"
"$AUTODATA" show "$T/r" >"$T/list.out" 2>&1
check "without --source: one line per source" test "$(grep -c '^sim-' "$T/list.out")" -eq 8
"$AUTODATA" show "$T" --source "$S" >"$T/nostore.out" 2>&1
check "a folder without store.db: exit 2" test $? -eq 2
"$AUTODATA" show "$T/r" --round 1 >/dev/null 2>&1
check "--round without --source: exit 2" test $? -eq 2
finish
