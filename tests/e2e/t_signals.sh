#!/usr/bin/env bash
# t_signals.sh - every way a terminal session can end under a running job stops the run
# like a first Ctrl-C: the outputs are written, the exit status is 3, a rerun resumes
# (docs/loop.md, "Budgets and signals"). SIGPIPE (`| head`), SIGHUP (terminal closed),
# nohup (SIGHUP ignored: the run goes on), closed standard descriptors (`>&- 2>&-`).
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 40 --seed 4 --out "$T/src.jsonl" 2>/dev/null
export AUTODATA_SIM_SOURCES=$T/src.jsonl
port=$(free_port)
start_sim_server "$port" --latency-ms 100 || fail "sim-server start"
export AUTODATA_SIM_URL=http://127.0.0.1:$port/v1

# status_of STORE: the latest run's status.
status_of() { sqlite3 "$1" "SELECT status FROM runs ORDER BY id DESC LIMIT 1"; }

# SIGPIPE: stderr (live progress) into a pipe whose reader leaves after a few bytes.
AUTODATA_OUT=$T/p "$AUTODATA" run examples/sim-http.yaml --progress live 2>&1 | head -c 20 >/dev/null
rc=${PIPESTATUS[0]}
check "closed pipe: exit 3, not killed by SIGPIPE (got $rc)" test "$rc" -eq 3
check "closed pipe: the dataset is written" test -e "$T/p/dataset.jsonl"
check "closed pipe: the card is written" test -e "$T/p/DATACARD.md"
check "closed pipe: the run is recorded as interrupted" test "$(status_of "$T/p/store.db")" = interrupted
AUTODATA_OUT=$T/p "$AUTODATA" run examples/sim-http.yaml --quiet >"$T/p2.out" 2>&1
check "closed pipe: the rerun resumes and finishes" test $? -eq 0

# SIGHUP: the terminal closes under the run.
AUTODATA_OUT=$T/h "$AUTODATA" run examples/sim-http.yaml --progress plain >"$T/h.out" 2>&1 &
pid=$!
sleep 1.5
kill -HUP "$pid"
wait "$pid"; rc=$?
check "terminal closed: exit 3 (got $rc)" test "$rc" -eq 3
check "terminal closed: says why" grep -q "stopped: the terminal was closed (SIGHUP)" "$T/h.out"
check "terminal closed: the dataset is written" test -e "$T/h/dataset.jsonl"
check "terminal closed: the run is recorded as interrupted" test "$(status_of "$T/h/store.db")" = interrupted

# Under nohup SIGHUP is ignored: the run goes on to the end.
AUTODATA_OUT=$T/n nohup "$AUTODATA" run examples/sim-http.yaml --quiet >"$T/n.out" 2>&1 &
pid=$!
sleep 1.5
kill -HUP "$pid"
wait "$pid"; rc=$?
check "nohup: SIGHUP ignored, the run finishes (exit $rc)" test "$rc" -eq 0
check "nohup: the run is recorded as done" test "$(status_of "$T/n/store.db")" = done

# stdout and stderr closed: nothing meant for them lands in an output file.
AUTODATA_OUT=$T/c "$AUTODATA" run examples/sim-http.yaml --progress plain >&- 2>&-
check "closed descriptors: exit 0" test $? -eq 0
check "closed descriptors: same dataset as a normal run" cmp "$T/n/dataset.jsonl" "$T/c/dataset.jsonl"
check "closed descriptors: every dataset line is JSON" python3 -c "
import json,sys
[json.loads(l) for l in open('$T/c/dataset.jsonl')]"
finish
