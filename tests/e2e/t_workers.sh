#!/usr/bin/env bash
# t_workers.sh - several `autodata run` workers share one run in a PostgreSQL store
# (docs/store.md, Workers), against the throwaway server `make test` starts
# (AUTODATA_TEST_PG_URL; skipped with a message when unset, unless AUTODATA_TEST_PG_REQUIRED=1).
# Over a sim-server with injected faults, 4 workers with 2 s leases; two of them are killed
# (SIGKILL) at random moments and replaced. The survivors take the dead ones' leases over and
# replay what they had answered from the shared cache; a third stalls past its lease (SIGSTOP)
# and drops what it made of the sources taken from it. Every worker writes a dataset.jsonl
# byte-identical to a single-process SQLite run's, no source has two examples, and the workers
# sent the SQLite run's requests and no other.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
need_pg
PGU=$AUTODATA_TEST_PG_URL
SCH=e2e_w_$$_$RANDOM
psql -q "$PGU" -c "CREATE SCHEMA $SCH" >/dev/null
drop_schema() { psql -q "$PGU" -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $SCH CASCADE" >/dev/null 2>&1; cleanup; }
trap drop_schema EXIT
URL="$PGU&options=-csearch_path%3D$SCH"
sql() { psql -At "$URL" -c "$1"; }

port=$(free_port)
start_sim_server "$port" --seed 7 --latency-ms 15 --retry-after 0 \
  --faults 429=0.05,500=0.05,drop=0.02,garbage=0.02 || { fail "sim-server"; finish; exit; }
export AUTODATA_SIM_URL=http://127.0.0.1:$port/v1 AUTODATA_SIM_SOURCES=$T/src.jsonl
"$AUTODATA" sim-sources --count 12 --seed 4 --out "$T/src.jsonl" 2>/dev/null
cp -r prompts "$T/" 2>/dev/null

AUTODATA_OUT=$T/sq timeout 120 "$AUTODATA" run examples/sim-http.yaml --quiet >"$T/sq.out" 2>&1
check "reference run on SQLite" test $? -eq 0

worker() { # worker N: one `autodata run` on the shared store, in the background
  AUTODATA_OUT=$T/w$1 "$AUTODATA" run examples/sim-http.yaml --store "$URL" \
    --lease 2 --concurrency 2 --progress plain >"$T/w$1.out" 2>&1 &
  pids[$1]=$!
}
leases_of() { # the unfinished sources leased to the worker of pid $1 (0 before the schema is)
  local n
  n=$(sql "SELECT count(*) FROM sources s JOIN workers w ON w.id = s.lease_owner WHERE w.pid = $1 AND s.state NOT IN ('done', 'exhausted')" 2>/dev/null)
  echo "${n:-0}"
}
# stop_worker N: once it plays a source, SIGSTOP it; wid[N] its worker id, n_held the leases
# it holds at that instant
stop_worker() {
  for _ in $(seq 1 200); do [ "$(leases_of "${pids[$1]}")" -gt 0 ] && break; sleep 0.05; done
  kill -STOP "${pids[$1]}" 2>/dev/null
  n_held=$(leases_of "${pids[$1]}")
  wid[$1]=$(sql "SELECT id FROM workers WHERE pid = ${pids[$1]}")
}
held=0
kill_worker() { # SIGKILLed at a random moment while it plays
  stop_worker "$1"
  held=$((held + n_held))
  kill -KILL "${pids[$1]}" 2>/dev/null
  wait "${pids[$1]}" 2>/dev/null
}
pids=()
for i in 1 2 3 4; do worker $i; done
# a watchdog: a worker that waited forever for a lease would hang the test
( sleep 150; for i in 1 2 3 4 5 6; do kill -9 "${pids[$i]:-}" 2>/dev/null; done ) &
watchdog=$!
sleep "0.$((RANDOM % 8))"
kill_worker 1
worker 5
sleep "0.$((RANDOM % 8))"
kill_worker 2
worker 6
# a worker that stalls past its lease (SIGSTOP 2.8 s): its sources are taken over, and when it
# wakes up it drops what it made of them
stop_worker 3
stalled=$n_held
sleep 2.8
kill -CONT "${pids[3]}"
rcs=""
for i in 3 4 5 6; do wait "${pids[$i]}"; rcs="$rcs $?"; done
kill $watchdog 2>/dev/null
check "the four surviving workers end with exit 0 (got:$rcs)" test "$rcs" = " 0 0 0 0"
for i in 3 4 5 6; do
  check "worker $i: dataset byte-identical to the SQLite run's" cmp "$T/sq/dataset.jsonl" "$T/w$i/dataset.jsonl"
done
echo "  (the killed workers held $held lease(s))"
took=$(cat "$T"/w[3-6].out | grep -cE "took over source .* from worker (${wid[1]}|${wid[2]}),")
check "the killed workers held leases ($held)" test "$held" -gt 0
check "every lease the killed workers held was taken over once ($took of $held)" test "$took" -eq "$held"
took3=$(cat "$T"/w[4-6].out | grep -cE "took over source .* from worker ${wid[3]},")
lost3=$(sed -n 's/.* \([0-9]*\) results dropped.*/\1/p' "$T/w3.out")
echo "  (the stalled worker held $stalled lease(s), $took3 taken over)"
check "the stalled worker dropped the results of exactly the sources taken from it ($lost3 of $took3)" test "$lost3" = "$took3"
check "every source finished, no lease left" test "$(sql "SELECT count(*) FROM sources WHERE state NOT IN ('done', 'exhausted') OR lease_owner IS NOT NULL")" = 0
check "no source accepted twice (examples per source)" test "$(sql "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM examples GROUP BY source_id) x")" = 1
check "  and each source's count is its examples" test "$(sql "SELECT count(*) FROM sources s WHERE accepted <> (SELECT count(*) FROM examples e WHERE e.source_id = s.source_id)")" = 0
# (the SQLite store keeps a cache key as its 16 bytes: docs/store.md)
sqk=$(sqlite3 "$T/sq/store.db" "SELECT CASE typeof(cache_key) WHEN 'blob' THEN lower(hex(cache_key)) ELSE cache_key END AS k FROM calls WHERE cache_hit = 0 AND status = 'ok' ORDER BY k" | md5sum)
pgk=$(sql "SELECT DISTINCT cache_key COLLATE \"C\" AS k FROM calls WHERE cache_hit = 0 AND status = 'ok' ORDER BY k" | md5sum)
check "the workers sent the SQLite run's requests, no other" test "$sqk" = "$pgk"
check "  the takeovers were answered from the cache" test "$(sql "SELECT count(*) FROM calls WHERE cache_hit = 1")" -gt 0
"$AUTODATA" status --store "$URL" >"$T/status.out" 2>&1
check "status lists the 6 workers, the killed ones gone" grep -q "^workers:     6 (0 alive, 4 left, 2 gone without leaving)" "$T/status.out"
check "  two gone without leaving, with no lease" test "$(grep -cE "^  worker .* gone .* 0 leases" "$T/status.out")" = 2
"$AUTODATA" status --store "$URL" --json | python3 -c '
import json, sys
w = json.load(sys.stdin)["workers"]
assert len(w) == 6 and sum(x["calls"] for x in w) > 0 and all(not x["alive"] for x in w), w' 2>"$T/sj.err"
check "status --json: the workers array" test $? -eq 0

# budgets hold across workers: 3 workers with max_calls 60 on a new run (each alone would
# send 60, 180 in all); measured 61-66, the check allows 4 calls per worker
SCH2=${SCH}_b
psql -q "$PGU" -c "CREATE SCHEMA $SCH2" >/dev/null
URL2="$PGU&options=-csearch_path%3D$SCH2"
bp=()
for i in 1 2 3; do
  AUTODATA_MAX_CALLS=60 AUTODATA_OUT=$T/b$i "$AUTODATA" run examples/sim-http.yaml --store "$URL2" \
    --quiet >"$T/b$i.out" 2>&1 &
  bp+=($!)
done
wait "${bp[@]}"
sent=$(psql -At "$URL2" -c "SELECT count(*) FROM calls WHERE cache_hit = 0")
check "max_calls 60 over 3 workers: $sent calls sent (at most 72)" test "$sent" -ge 60 -a "$sent" -le 72
check "  each worker says the budget stopped it" test "$(grep -l "budget reached: max_calls" "$T"/b[1-3].out | wc -l)" = 3
psql -q "$PGU" -c "SET client_min_messages = warning; DROP SCHEMA $SCH2 CASCADE" >/dev/null 2>&1

# analysis.every (dataset notes need the finished prefix in source order): one writer, so a
# second run is refused, naming the key
sed 's/^budgets:/analysis: {every: 4}\nbudgets:/' examples/sim-http.yaml >"$T/notes.yaml"
grep -q "^analysis: {every: 4}" "$T/notes.yaml" || fail "a recipe with analysis.every"
psql -q "$PGU" -c "CREATE SCHEMA $SCH2" >/dev/null
AUTODATA_OUT=$T/n1 "$AUTODATA" run "$T/notes.yaml" --store "$URL2" --quiet >"$T/n1.out" 2>&1 &
np=$!
for _ in $(seq 1 200); do
  [ "$(psql -At "$PGU" -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND mode = 'ExclusiveLock' AND objsubid = 2")" -gt 0 ] && break
  sleep 0.05
done
AUTODATA_OUT=$T/n2 "$AUTODATA" run "$T/notes.yaml" --store "$URL2" --quiet >"$T/n2.out" 2>&1
check "analysis.every: a second worker is refused, naming the key" grep -q "in use by pid $np.*analysis.every runs as the store's only writer" "$T/n2.out"
wait $np
check "  and the first run ends well" test $? -eq 0
psql -q "$PGU" -c "SET client_min_messages = warning; DROP SCHEMA $SCH2 CASCADE" >/dev/null 2>&1

# SQLite stays single-writer: a second run on the same file is refused with the pid
AUTODATA_OUT=$T/sq1 "$AUTODATA" run examples/sim-http.yaml --quiet >"$T/one.out" 2>&1 &
p1=$!
for _ in $(seq 1 100); do [ -e "$T/sq1/store.db.lock" ] && break; sleep 0.05; done
AUTODATA_OUT=$T/sq1 "$AUTODATA" run examples/sim-http.yaml --quiet >"$T/two.out" 2>&1
check "SQLite: a second worker is refused" grep -q "in use by pid $p1" "$T/two.out"
wait $p1
finish
