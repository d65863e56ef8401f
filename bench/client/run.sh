#!/usr/bin/env bash
# bench/client/run.sh - the model client against a local `autodata sim-server`.
#
#   bench/client/run.sh [cpu|latency|all]          (default all)
#
# cpu:     N calls at C in flight (no server latency): calls/s, client CPU us per call and
#          peak RSS of `autodata chat-load` (without and with --store persistence), then
#          the official `openai` npm client (bench/client/openai_load.mjs) with the same
#          server, C and request shape, and the CPU ratio openai / autodata.
#          Targets at C = 256: ratio >= 15 without persistence, >= 10 with it.
# latency: sim-server --latency-ms 200, C in {1024, 4096}: achieved / ideal throughput,
#          ideal = C / 0.2 s. Target >= 95% at 1024.
#
# Environment (all optional):
#   AUTODATA=path      the binary (default $BUILD/autodata, BUILD defaults to build)
#   CLIENT_CALLS=N     autodata calls in cpu mode (20000)     CLIENT_CONC=C (256)
#   CLIENT_REPEAT=R    autodata runs per variant; the median CPU/call is reported (3)
#   NODE_CALLS=N       openai calls in cpu mode (5000)        NODE_WARMUP=W (1000)
#   OPENAI_VERSION=V   npm version spec (5: the v5 line runs on Node 20)
#   LAT_CONCS="..."    in-flight counts for latency mode ("1024 4096")
#   LAT_ROUNDS=R       calls per in-flight slot, N = R x C (100 = 20 s of ideal time)
#   NO_PIN=1           do not pin with taskset
# Writes key=value lines to $BUILD/bench/summary-client.txt for bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=${1:-all}
BUILD=${BUILD:-build}
AUTODATA=${AUTODATA:-$BUILD/autodata}
OUT=$BUILD/bench
mkdir -p "$OUT"
SUMMARY=$OUT/summary-client.txt
: >"$SUMMARY"
CLIENT_CALLS=${CLIENT_CALLS:-20000}
CLIENT_CONC=${CLIENT_CONC:-256}
CLIENT_REPEAT=${CLIENT_REPEAT:-3}
NODE_CALLS=${NODE_CALLS:-5000}
NODE_WARMUP=${NODE_WARMUP:-1000}
OPENAI_VERSION=${OPENAI_VERSION:-5}
LAT_CONCS=${LAT_CONCS:-1024 4096}
LAT_ROUNDS=${LAT_ROUNDS:-100}

[ -x "$AUTODATA" ] || { echo "bench/client: $AUTODATA not found (make first, or set AUTODATA=)" >&2; exit 2; }

# ---- pinning: server on CPU 0, clients on CPU 1 -------------------------------------
PIN_SERVER=() PIN_CLIENT=()
if [ "${NO_PIN:-0}" != 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER=(taskset -c 0)
  PIN_CLIENT=(taskset -c 1)
  echo "bench/client: pinning sim-server to CPU 0 and the client to CPU 1 (taskset), $(nproc) CPUs"
else
  echo "bench/client: not pinning (taskset missing, NO_PIN=1 or fewer than 2 CPUs)"
fi

# ---- helpers ---------------------------------------------------------------------------
jget() { # jget JSON key -> value (numbers, true/false, or a string without quotes)
  printf '%s\n' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" | head -1
}
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
say() { printf '%s\n' "$*"; }
put() { printf '%s=%s\n' "$1" "$2" >>"$SUMMARY"; }

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT INT TERM

start_server() { # start_server [extra flags...]; sets URL
  local log=$OUT/sim-server.out
  : >"$log"
  "${PIN_SERVER[@]}" "$AUTODATA" sim-server --host 127.0.0.1 --port 0 --threads 2 --quiet "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    URL=$(sed -n 's/^sim-server listening on //p' "$log")
    [ -n "$URL" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.05
  done
  [ -n "$URL" ] || { echo "bench/client: sim-server did not start" >&2; cat "$log" >&2; exit 1; }
  say "bench/client: sim-server --threads 2 $* on $URL (pid $SERVER_PID)"
}

chat_load() { # chat_load CALLS CONC [extra...] -> summary JSON line
  local n=$1 c=$2
  shift 2
  "${PIN_CLIENT[@]}" "$AUTODATA" chat-load --base-url "$URL" --model gpt-x --calls "$n" \
    --concurrency "$c" --no-adaptive --retries 0 --quiet "$@" | grep '"summary":true'
}

median() { # median JSON... -> the summary line with the median client CPU per call
  local j
  for j in "$@"; do printf '%s %s\n' "$(jget "$j" client_cpu_us_per_call)" "$j"; done |
    sort -n | sed -n "$(( ($# + 1) / 2 ))p" | cut -d' ' -f2-
}

report_line() { # report_line LABEL JSON
  printf '  %-34s %8s calls/s  %7s us CPU/call (user %s, sys %s)  peak RSS %s MB\n' "$1" \
    "$(jget "$2" calls_per_s)" "$(jget "$2" client_cpu_us_per_call)" \
    "$(jget "$2" client_user_us_per_call)" "$(jget "$2" client_sys_us_per_call)" \
    "$(calc "$(jget "$2" peak_rss_kb) / 1024" 1)"
}

# ---- mode 1: CPU per call, autodata vs openai ----------------------------------------------
cpu_mode() {
  say ""
  say "== client CPU: $CLIENT_CALLS calls (openai: $NODE_CALLS + $NODE_WARMUP warm-up) at $CLIENT_CONC in flight, sim-server without latency"
  start_server
  local plain store cache
  chat_load 2000 "$CLIENT_CONC" >/dev/null # warm the server and the page cache
  local runs_p=() runs_s=() runs_c=()
  for _ in $(seq "$CLIENT_REPEAT"); do
    runs_p+=("$(chat_load "$CLIENT_CALLS" "$CLIENT_CONC")")
    rm -f "$OUT"/client-store.db*
    runs_s+=("$(chat_load "$CLIENT_CALLS" "$CLIENT_CONC" --store "$OUT/client-store.db")")
    rm -f "$OUT"/client-store.db*
    runs_c+=("$(chat_load "$CLIENT_CALLS" "$CLIENT_CONC" --store "$OUT/client-store.db" --cache-lookup)")
    rm -f "$OUT"/client-store.db*
  done
  plain=$(median "${runs_p[@]}")
  store=$(median "${runs_s[@]}")
  cache=$(median "${runs_c[@]}")
  say "  (each autodata figure: the run with the median CPU/call of $CLIENT_REPEAT; CPU/call of all runs:" \
    "$(for j in "${runs_p[@]}"; do printf '%s ' "$(jget "$j" client_cpu_us_per_call)"; done)/" \
    "$(for j in "${runs_s[@]}"; do printf '%s ' "$(jget "$j" client_cpu_us_per_call)"; done)/" \
    "$(for j in "${runs_c[@]}"; do printf '%s ' "$(jget "$j" client_cpu_us_per_call)"; done| sed 's/ $//'))"
  for j in "$plain" "$store" "$cache"; do
    [ "$(jget "$j" ok)" = "$CLIENT_CALLS" ] || { echo "bench/client: chat-load failed: $j" >&2; exit 1; }
  done
  report_line "autodata chat-load" "$plain"
  report_line "autodata chat-load --store" "$store"
  report_line "autodata --store --cache-lookup" "$cache"
  local a_cpu s_cpu c_cpu
  a_cpu=$(jget "$plain" client_cpu_us_per_call)
  s_cpu=$(jget "$store" client_cpu_us_per_call)
  c_cpu=$(jget "$cache" client_cpu_us_per_call)
  put autodata_calls_per_s "$(jget "$plain" calls_per_s)"
  put autodata_cpu_us_per_call "$a_cpu"
  put autodata_peak_rss_kb "$(jget "$plain" peak_rss_kb)"
  put autodata_store_calls_per_s "$(jget "$store" calls_per_s)"
  put autodata_store_cpu_us_per_call "$s_cpu"
  put autodata_store_cache_cpu_us_per_call "$c_cpu"
  put autodata_store_peak_rss_kb "$(jget "$store" peak_rss_kb)"

  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    say "  openai (npm): skipped, node/npm not installed"
    put openai "skipped"
    stop_server
    return 0
  fi
  local prefix=$OUT/node
  mkdir -p "$prefix"
  if [ ! -f "$prefix/node_modules/openai/package.json" ]; then
    say "bench/client: npm install --prefix $prefix openai@$OPENAI_VERSION"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "openai@$OPENAI_VERSION" >/dev/null
  fi
  local oj
  oj=$("${PIN_CLIENT[@]}" node bench/client/openai_load.mjs --prefix "$prefix" --base-url "$URL" \
    --model gpt-x --calls "$NODE_CALLS" --concurrency "$CLIENT_CONC" --warmup "$NODE_WARMUP" \
    --max-retries 0 | grep '"summary":true')
  [ "$(jget "$oj" ok)" = "$NODE_CALLS" ] || { echo "bench/client: openai_load failed: $oj" >&2; exit 1; }
  report_line "$(jget "$oj" client) ($(jget "$oj" node))" "$oj"
  local o_cpu r1 r2 r3
  o_cpu=$(jget "$oj" client_cpu_us_per_call)
  r1=$(calc "$o_cpu / $a_cpu" 1)
  r2=$(calc "$o_cpu / $s_cpu" 1)
  r3=$(calc "$o_cpu / $c_cpu" 1)
  say "  ratio openai CPU/call / autodata CPU/call at $CLIENT_CONC in flight:"
  say "    no persistence         ${r1}x   (target >= 15x: $(awk "BEGIN{print ($r1 >= 15) ? \"met\" : \"MISSED\"}"))"
  say "    --store                ${r2}x   (target >= 10x: $(awk "BEGIN{print ($r2 >= 10) ? \"met\" : \"MISSED\"}"))"
  say "    --store --cache-lookup ${r3}x   (target >= 10x: $(awk "BEGIN{print ($r3 >= 10) ? \"met\" : \"MISSED\"}"))"
  put openai_client "$(jget "$oj" client)"
  put openai_calls_per_s "$(jget "$oj" calls_per_s)"
  put openai_cpu_us_per_call "$o_cpu"
  put openai_peak_rss_kb "$(jget "$oj" peak_rss_kb)"
  put ratio_plain "$r1"
  put ratio_store "$r2"
  put ratio_store_cache "$r3"
  stop_server
}

# ---- mode 2: throughput at 200 ms latency --------------------------------------------------
latency_mode() {
  say ""
  say "== client throughput: sim-server --latency-ms 200, N = $LAT_ROUNDS x in-flight (adaptive concurrency off)"
  start_server --latency-ms 200
  local c n j ideal wall rounds ideal_wall overall steady
  for c in $LAT_CONCS; do
    n=$((LAT_ROUNDS * c))
    j=$(chat_load "$n" "$c" --timeout-ms 120000)
    [ "$(jget "$j" ok)" = "$n" ] || { echo "bench/client: chat-load failed at $c: $j" >&2; exit 1; }
    ideal=$(calc "$c / 0.2" 0)
    wall=$(jget "$j" wall_ms)
    rounds=$(( (n + c - 1) / c ))
    ideal_wall=$(calc "$rounds * 200" 0)
    overall=$(calc "100 * $(jget "$j" calls_per_s) / $ideal" 1)
    steady=$(calc "100 * $(jget "$j" steady_calls_per_s) / $ideal" 1)
    say "  $c in flight, $n calls: ${wall} ms (ideal ${ideal_wall} ms), $(jget "$j" calls_per_s) calls/s of ideal $ideal = ${overall}%;"
    say "      between 10% and 90% done: $(jget "$j" steady_calls_per_s) calls/s = ${steady}%; first reply after $(jget "$j" first_done_ms) ms;"
    say "      client CPU $(jget "$j" client_cpu_us_per_call) us/call, peak RSS $(calc "$(jget "$j" peak_rss_kb) / 1024" 1) MB"
    put "lat${c}_calls" "$n"
    put "lat${c}_calls_per_s" "$(jget "$j" calls_per_s)"
    put "lat${c}_overall_pct" "$overall"
    put "lat${c}_steady_pct" "$steady"
    put "lat${c}_cpu_us_per_call" "$(jget "$j" client_cpu_us_per_call)"
    put "lat${c}_peak_rss_kb" "$(jget "$j" peak_rss_kb)"
  done
  stop_server
}

case "$MODE" in
cpu) cpu_mode ;;
latency) latency_mode ;;
all) cpu_mode; latency_mode ;;
*) echo "usage: bench/client/run.sh [cpu|latency|all]" >&2; exit 2 ;;
esac
