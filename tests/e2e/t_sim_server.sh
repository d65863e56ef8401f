#!/usr/bin/env bash
# t_sim_server.sh - `autodata sim-server` over loopback with curl: routes, reply
# shape, determinism, keep-alive, errors, chunked bodies, faults, latency.
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh

echo "sim-server"
CHAT='{"model":"gpt-test","messages":[{"role":"user","content":"What is 2+2?"}]}'

# --- flags
check "bad flag exits 2" bash -c '"$AUTODATA" sim-server --bogus >/dev/null 2>&1; [ $? -eq 2 ]'
check "bad fault spec exits 2 naming the item" bash -c \
  '"$AUTODATA" sim-server --faults "429=0.1,boom=1" 2>&1 >/dev/null | grep -q "boom" &&
   { "$AUTODATA" sim-server --faults "429=0.1,boom=1" >/dev/null 2>&1; [ $? -eq 2 ]; }'
check "bad number exits 2" bash -c '"$AUTODATA" sim-server --threads zero >/dev/null 2>&1; [ $? -eq 2 ]'

# --- --port 0 prints the chosen port
"$AUTODATA" sim-server --port 0 --threads 1 >"$E2E_TMP/p0.log" 2>&1 &
P0PID=$!
E2E_PIDS+=($P0PID)
for _ in $(seq 1 100); do grep -q listening "$E2E_TMP/p0.log" && break; sleep 0.05; done
P0=$(sed -n 's|^sim-server listening on http://127.0.0.1:\([0-9]*\)/v1$|\1|p' "$E2E_TMP/p0.log")
check "--port 0 prints the port" test -n "$P0"
check "the printed port serves" curl -sf -o /dev/null "http://127.0.0.1:$P0/v1/models"
kill -TERM "$P0PID"; wait "$P0PID"; rc=$?
check "SIGTERM stops cleanly (exit 0)" test "$rc" -eq 0
check "stats line at exit" grep -q "requests" "$E2E_TMP/p0.log"

# --- a plain server
PORT=$(free_port)
start_sim_server "$PORT" || exit 1
U="http://127.0.0.1:$PORT"

curl -s "$U/v1/models" >"$E2E_TMP/models.json"
check "models list" python3 -c '
import json,sys
d=json.load(open(sys.argv[1])); ids=[m["id"] for m in d["data"]]
assert d["object"]=="list"
assert ids==["sim-challenger","sim-orchestrator","sim-quality","sim-judge","sim-solver@0.35","sim-solver@0.8"], ids
' "$E2E_TMP/models.json"

curl -s -H 'Content-Type: application/json' -d "$CHAT" "$U/v1/chat/completions" >"$E2E_TMP/a.json"
curl -s -H 'Content-Type: application/json' -d "$CHAT" "$U/v1/chat/completions" >"$E2E_TMP/b.json"
check "chat completion has the OpenAI shape" python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
assert d["object"]=="chat.completion" and d["model"]=="gpt-test" and d["id"].startswith("chatcmpl-")
assert isinstance(d["created"],int)
c=d["choices"][0]
assert c["index"]==0 and c["finish_reason"]=="stop" and c["message"]["role"]=="assistant"
assert "gpt-test" in c["message"]["content"]
u=d["usage"]; assert u["prompt_tokens"]>0 and u["completion_tokens"]>0
assert u["total_tokens"]==u["prompt_tokens"]+u["completion_tokens"]
' "$E2E_TMP/a.json"
check "same request twice gives identical bytes" cmp -s "$E2E_TMP/a.json" "$E2E_TMP/b.json"

curl -s -H 'Content-Type: application/json' -d '{"model":"gpt-test","n":3,"messages":[{"role":"user","content":"hi"}]}' \
  "$U/chat/completions" >"$E2E_TMP/n3.json"
check "n=3 gives 3 choices (path without /v1)" python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); assert [c["index"] for c in d["choices"]]==[0,1,2]
' "$E2E_TMP/n3.json"

curl -sv "$U/v1/models" "$U/v1/models" "$U/v1/models" -o /dev/null -o /dev/null -o /dev/null \
  2>"$E2E_TMP/ka.log"
check "keep-alive: curl reuses the connection" grep -q "Re-using existing connection" "$E2E_TMP/ka.log"
check "keep-alive: one connect for three requests" test "$(grep -c '^\* Connected to' "$E2E_TMP/ka.log")" -eq 1

code=$(curl -s -o "$E2E_TMP/bad.json" -w '%{http_code}' -d '{"model": ' "$U/v1/chat/completions")
check "malformed JSON gives 400" test "$code" = 400
check "400 carries an error message" python3 -c '
import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert e["message"] and e["type"]=="invalid_request_error"
' "$E2E_TMP/bad.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -d '{"messages":[]}' "$U/v1/chat/completions")
check "missing model gives 400" test "$code" = 400
code=$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/nowhere")
check "unknown path gives 404" test "$code" = 404
code=$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/chat/completions")
check "GET on chat gives 405" test "$code" = 405

curl -s -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' -d "$CHAT" \
  "$U/v1/chat/completions" >"$E2E_TMP/chunked.json"
check "chunked request body gets the same reply" cmp -s "$E2E_TMP/a.json" "$E2E_TMP/chunked.json"

# --- faults
P429=$(free_port)
start_sim_server "$P429" --faults 429=1 --retry-after 1 || exit 1
curl -s -D "$E2E_TMP/429.h" -o /dev/null -d "$CHAT" "http://127.0.0.1:$P429/v1/chat/completions"
check "429=1 gives 429" grep -q '^HTTP/1.1 429' "$E2E_TMP/429.h"
check "429 carries Retry-After: 1" grep -qi '^Retry-After: 1' "$E2E_TMP/429.h"

PG=$(free_port)
start_sim_server "$PG" --faults garbage=1 || exit 1
code=$(curl -s -o "$E2E_TMP/g.out" -w '%{http_code}' -d "$CHAT" "http://127.0.0.1:$PG/v1/chat/completions")
check "garbage=1 gives 200" test "$code" = 200
check "garbage=1 body is not JSON" bash -c '! python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$1" 2>/dev/null' _ "$E2E_TMP/g.out"

PD=$(free_port)
start_sim_server "$PD" --faults drop=1 || exit 1
curl -s -o /dev/null -d "$CHAT" "http://127.0.0.1:$PD/v1/chat/completions"; rc=$?
check "drop=1 gives an empty reply (curl exit 52)" test "$rc" -eq 52

PT=$(free_port)
start_sim_server "$PT" --faults truncate=1 || exit 1
curl -s -o /dev/null -d "$CHAT" "http://127.0.0.1:$PT/v1/chat/completions"; rc=$?
check "truncate=1 gives a partial body (curl exit 18)" test "$rc" -eq 18

# --- latency
PL=$(free_port)
start_sim_server "$PL" --latency-ms 200 || exit 1
t=$(curl -s -o /dev/null -w '%{time_total}' -d "$CHAT" "http://127.0.0.1:$PL/v1/chat/completions")
check "latency-ms 200: a request takes >= 200 ms (took ${t}s)" python3 -c "import sys; assert float(sys.argv[1]) >= 0.195" "$t"

finish
