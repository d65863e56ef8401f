# lib.sh - helpers for end-to-end tests (sourced by each tests/e2e/t_*.sh).
# Each test script: source this, call `check NAME COMMAND...` or `ok`/`fail`,
# and `finish` at the end. AUTODATA is the binary under test.
: "${AUTODATA:=build/autodata}"
E2E_PASSED=0
E2E_FAILED=0
E2E_TMP=$(mktemp -d /tmp/autodata-e2e.XXXXXX)
E2E_PIDS=()

ok()   { E2E_PASSED=$((E2E_PASSED + 1)); echo "  ok   $1"; }
fail() { E2E_FAILED=$((E2E_FAILED + 1)); echo "  FAIL $1${2:+: $2}"; }
# check NAME CMD...: passes when CMD exits 0.
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n"; fi; }

# A free loopback port.
free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# start_sim_server PORT [ARGS...]: starts the sim server in the background and waits.
start_sim_server() {
  local port=$1; shift
  "$AUTODATA" sim-server --host 127.0.0.1 --port "$port" "$@" >"$E2E_TMP/sim-$port.log" 2>&1 &
  E2E_PIDS+=($!)
  eval "SIM_PID_$port=$!"
  local pid=$!
  # Up to 30 s: a loaded machine running ASan builds can be slow to start one.
  for _ in $(seq 1 600); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/v1/models"; then return 0; fi
    kill -0 "$pid" 2>/dev/null || break   # it exited (e.g. the port was taken)
    sleep 0.05
  done
  echo "sim-server on port $port did not start:"; cat "$E2E_TMP/sim-$port.log"
  return 1
}

# stop_sim_server PORT: stops it and sets SIM_CHAT_COUNT to the chat completions
# it answered (from its closing stats line). Call it directly, not in $(...): a
# subshell cannot wait for the server.
stop_sim_server() {
  local port=$1 pid
  SIM_CHAT_COUNT=
  eval "pid=\${SIM_PID_$port:-}"
  [ -n "$pid" ] || return 1
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  SIM_CHAT_COUNT=$(sed -n 's/.* requests (\([0-9]*\) chat completions.*/\1/p' "$E2E_TMP/sim-$port.log" | tail -1)
  [ -n "$SIM_CHAT_COUNT" ]
}

# need_pg: the PostgreSQL tests run against AUTODATA_TEST_PG_URL (`make test` starts a
# throwaway server); without it the test ends here, skipped with a message, or failed when
# AUTODATA_TEST_PG_REQUIRED=1.
need_pg() {
  [ -n "${AUTODATA_TEST_PG_URL:-}" ] && return 0
  if [ "${AUTODATA_TEST_PG_REQUIRED:-0}" = 1 ]; then fail "AUTODATA_TEST_PG_URL is not set"; finish; exit; fi
  echo "  (skipped: AUTODATA_TEST_PG_URL is not set; make test starts a server: scripts/pg-test-server.sh)"
  finish; exit
}

cleanup() {
  for p in "${E2E_PIDS[@]+"${E2E_PIDS[@]}"}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$E2E_TMP"
}
trap cleanup EXIT

finish() {
  echo "$E2E_PASSED passed, $E2E_FAILED failed"
  [ "$E2E_FAILED" -eq 0 ]
}
