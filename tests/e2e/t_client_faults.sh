#!/usr/bin/env bash
# t_client_faults.sh - the llm client against `autodata sim-server` fault injection.
# For each fault kind, N deterministic calls (chat-load) must each end exactly once,
# with the same reply content as the in-process sim (base URL "sim"). Also: a down
# endpoint and a garbage server give a one-line diagnosis and exit 1, in time.
source "$(dirname "$0")/lib.sh"
N=${CLIENT_FAULT_CALLS:-150}
MODEL=load-test

if ! "$AUTODATA" help | grep -q "sim-server"; then
  fail "sim-server subcommand exists"
  finish
  exit
fi

# pairs FILE: "i content_hash" for every successful call, sorted by i.
pairs() { sed -n 's/^{"i":\([0-9]*\),"ok":true,"content_hash":"\([0-9a-f]*\)".*/\1 \2/p' "$1" | sort -n; }
summary() { grep '"summary":true' "$1"; }

"$AUTODATA" chat-load --base-url sim --model $MODEL --calls "$N" --concurrency 16 --seed 3 \
  >"$E2E_TMP/ref.jsonl" 2>"$E2E_TMP/ref.err"
check "in-process sim: $N calls ok" test "$(pairs "$E2E_TMP/ref.jsonl" | wc -l)" -eq "$N"
pairs "$E2E_TMP/ref.jsonl" >"$E2E_TMP/ref.pairs"

run_faults() { # NAME SERVER_ARGS... -- CLIENT_ARGS...
  local name=$1; shift
  local sargs=() cargs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do sargs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  cargs=("$@")
  local port; port=$(free_port)
  start_sim_server "$port" --seed 11 --retry-after 0 "${sargs[@]}" || { fail "$name: server"; return; }
  local out="$E2E_TMP/$name.jsonl"
  timeout 300 "$AUTODATA" chat-load --base-url "http://127.0.0.1:$port/v1" --model $MODEL \
    --calls "$N" --concurrency 16 --seed 3 --retries 12 --backoff-base-ms 5 --backoff-max-ms 50 \
    "${cargs[@]}" >"$out" 2>"$E2E_TMP/$name.err"
  local rc=$?
  check "$name: exit 0 (all calls ok)" test "$rc" -eq 0
  local lines ids dups
  lines=$(grep -c '^{"i":' "$out")
  ids=$(sed -n 's/^{"i":\([0-9]*\),.*/\1/p' "$out" | sort -n | uniq | wc -l)
  dups=$(sed -n 's/^{"i":\([0-9]*\),.*/\1/p' "$out" | sort -n | uniq -d | wc -l)
  check "$name: every call answered exactly once ($lines lines, $ids ids)" \
    test "$lines" -eq "$N" -a "$ids" -eq "$N" -a "$dups" -eq 0
  pairs "$out" >"$E2E_TMP/$name.pairs"
  check "$name: replies identical to the in-process sim" cmp -s "$E2E_TMP/ref.pairs" "$E2E_TMP/$name.pairs"
  echo "    $(summary "$out")"
}

retried() { # NAME: the fault really happened (more attempts than calls)
  local a; a=$(summary "$E2E_TMP/$1.jsonl" | sed -n 's/.*"attempts":\([0-9]*\).*/\1/p')
  check "$1: faults were retried (attempts ${a:-?} > $N)" test "${a:-0}" -gt "$N"
}

run_faults f429 --faults 429=0.3;                    retried f429
run_faults f5xx --faults 500=0.2,503=0.1;            retried f5xx
run_faults drop --faults drop=0.2;                   retried drop
run_faults garbage --faults garbage=0.2;             retried garbage
run_faults truncate --faults truncate=0.2;           retried truncate
run_faults slow --faults slow=0.2 --slow-ms 1500 -- --timeout-ms 700; retried slow
run_faults mixed --faults 429=0.1,500=0.05,drop=0.02,garbage=0.02,slow=0.05,truncate=0.02 --slow-ms 300
run_faults latency --latency-ms 20 --faults 429=0.05

# Failover: a dead URL next to a live one; every call still succeeds.
dead=$(free_port)
port=$(free_port)
start_sim_server "$port" --seed 1
"$AUTODATA" chat-load --base-url "http://127.0.0.1:$dead/v1" --base-url "http://127.0.0.1:$port/v1" \
  --model $MODEL --calls 50 --concurrency 8 --seed 3 >"$E2E_TMP/fo.jsonl" 2>&1
check "failover: all calls ok with one URL down" test $? -eq 0
head -50 "$E2E_TMP/ref.pairs" >"$E2E_TMP/ref50.pairs"
pairs "$E2E_TMP/fo.jsonl" >"$E2E_TMP/fo.pairs"
check "failover: replies identical" cmp -s "$E2E_TMP/ref50.pairs" "$E2E_TMP/fo.pairs"

# chat against a live server: content and a usage line.
out=$("$AUTODATA" chat --base-url "http://127.0.0.1:$port/v1" --model $MODEL "hello there" 2>&1)
check "chat: prints a usage line" bash -c 'grep -qE "^usage: prompt=[0-9]+ completion=[0-9]+ total=[0-9]+ tokens, 1 attempt, [0-9]+ ms, finish_reason stop$" <<<"$1"' _ "$out"
out=$("$AUTODATA" chat --json --base-url "http://127.0.0.1:$port/v1" --model $MODEL "hello there" 2>&1)
check "chat --json: raw reply JSON" bash -c 'jq -e .choices[0].message.content <<<"$1" >/dev/null' _ "$out"

# Down endpoint: one line naming the endpoint, exit 1, quickly.
start=$(date +%s)
"$AUTODATA" chat --base-url "http://127.0.0.1:$dead/v1" --model m --timeout-ms 3000 "hi" \
  >"$E2E_TMP/down.out" 2>"$E2E_TMP/down.err"
rc=$?
el=$(( $(date +%s) - start ))
check "down endpoint: exit 1" test "$rc" -eq 1
check "down endpoint: one-line diagnosis" bash -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -q "^autodata: error: endpoint '"'"'chat'"'"' (http://127.0.0.1:$2/v1): connection refused after 3 attempts$" "$1"' _ "$E2E_TMP/down.err" "$dead"
check "down endpoint: within the timeout ($el s)" test "$el" -le 10

# Garbage server: diagnosis quotes the body.
gport=$(free_port)
start_sim_server "$gport" --faults garbage=1
"$AUTODATA" chat --base-url "http://127.0.0.1:$gport/v1" --model m --retries 1 "hi" \
  >"$E2E_TMP/g.out" 2>"$E2E_TMP/g.err"
rc=$?
check "garbage server: exit 1" test "$rc" -eq 1
check "garbage server: diagnosis" grep -q "endpoint 'chat' (http://127.0.0.1:$gport/v1): answered HTTP 200 with a body that is not JSON: '<html>" "$E2E_TMP/g.err"
cat "$E2E_TMP/g.err"

# A server that accepts but never answers: the timeout ends it.
hport=$(free_port)
python3 - "$hport" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
conns = []
t = time.time()
s.settimeout(0.5)
while time.time() - t < 30:
    try: conns.append(s.accept()[0])
    except socket.timeout: pass
PY
E2E_PIDS+=($!)
# wait until it listens (python can take seconds to start on a loaded machine)
for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$hport") 2>/dev/null && break; sleep 0.1; done
start=$(date +%s)
"$AUTODATA" chat --base-url "http://127.0.0.1:$hport/v1" --model m --timeout-ms 500 --retries 1 "hi" \
  >/dev/null 2>"$E2E_TMP/h.err"
rc=$?
el=$(( $(date +%s) - start ))
check "silent server: exit 1 within the timeout ($el s)" test "$rc" -eq 1 -a "$el" -le 8
check "silent server: diagnosis" grep -q "no complete answer within 500 ms" "$E2E_TMP/h.err"
finish
