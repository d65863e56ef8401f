#!/usr/bin/env bash
# bench/sim-scale/run.sh - the whole agentic loop at scale over loopback HTTP.
#
#   bench/sim-scale/run.sh
#
# Generates SIM_SCALE_COUNT (default 10,000) sim sources, starts `autodata sim-server
# --threads 2` on a free 127.0.0.1 port, runs examples/sim-http.yaml against it with
# `autodata run ... --quiet --concurrency 256` (store, dataset and card included) and
# prints sources/s, model calls/s, the run process's CPU per model call and its peak RSS
# (from /usr/bin/time -v, which measures the autodata process only; the server is a
# separate process). Pins the server to CPU 0 and the run to CPU 1 when taskset exists.
#
# Environment: AUTODATA (default $BUILD/autodata), BUILD (build), SIM_SCALE_COUNT (10000),
# SIM_SCALE_CONC (256), NO_PIN=1. Writes $BUILD/bench/summary-sim-scale.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
AUTODATA=${AUTODATA:-$BUILD/autodata}
COUNT=${SIM_SCALE_COUNT:-10000}
CONC=${SIM_SCALE_CONC:-256}
DIR=$BUILD/bench/sim-scale
SUMMARY=$BUILD/bench/summary-sim-scale.txt
[ -x "$AUTODATA" ] || { echo "bench/sim-scale: $AUTODATA not found (make first, or set AUTODATA=)" >&2; exit 2; }
rm -rf "$DIR"
mkdir -p "$DIR"
: >"$SUMMARY"

PIN_SERVER=() PIN_CLIENT=()
if [ "${NO_PIN:-0}" != 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER=(taskset -c 0)
  PIN_CLIENT=(taskset -c 1)
  echo "bench/sim-scale: pinning sim-server to CPU 0 and autodata run to CPU 1 (taskset)"
fi
TIME=()
if [ -x /usr/bin/time ]; then TIME=(/usr/bin/time -v -o "$DIR/time.txt"); fi

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT INT TERM

"$AUTODATA" sim-sources --count "$COUNT" --seed 1 --out "$DIR/sources.jsonl" >/dev/null
"${PIN_SERVER[@]}" "$AUTODATA" sim-server --host 127.0.0.1 --port 0 --threads 2 >"$DIR/server.out" 2>&1 &
SERVER_PID=$!
URL=""
for _ in $(seq 100); do
  URL=$(sed -n 's/^sim-server listening on //p' "$DIR/server.out")
  [ -n "$URL" ] && break
  sleep 0.05
done
[ -n "$URL" ] || { echo "bench/sim-scale: sim-server did not start" >&2; cat "$DIR/server.out" >&2; exit 1; }
echo "bench/sim-scale: $COUNT sources, sim-server --threads 2 on $URL, autodata run --concurrency $CONC"

t0=$(date +%s.%N)
set +e
AUTODATA_SIM_URL=$URL AUTODATA_SIM_SOURCES=$DIR/sources.jsonl AUTODATA_OUT=$DIR/out \
  "${TIME[@]}" "${PIN_CLIENT[@]}" "$AUTODATA" run examples/sim-http.yaml --quiet --concurrency "$CONC" \
  >"$DIR/run.out" 2>"$DIR/run.err"
rc=$?
set -e
t1=$(date +%s.%N)
stop_server
tail -1 "$DIR/server.out" | sed 's/^/  /'
if [ $rc -ne 0 ]; then
  echo "bench/sim-scale: autodata run failed (exit $rc):" >&2
  tail -20 "$DIR/run.err" >&2
  exit 1
fi

wall=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")
calls=$(sed -n 's/^model calls sent: \([0-9]*\).*/\1/p' "$DIR/run.out")
done_line=$(head -1 "$DIR/run.out")
finished=$(printf '%s\n' "$done_line" | sed -n 's/.* \([0-9]*\) finished.*/\1/p')
accepted=$(sed -n 's/^examples accepted: \([0-9]*\).*/\1/p' "$DIR/run.out")
echo "  $done_line"
sps=$(awk "BEGIN { printf \"%.1f\", $finished / $wall }")
cps=$(awk "BEGIN { printf \"%.0f\", $calls / $wall }")
echo "  wall ${wall} s: ${sps} sources/s, ${calls} model calls = ${cps} calls/s, ${accepted} accepted"
{
  echo "sources=$COUNT"
  echo "finished=$finished"
  echo "accepted=$accepted"
  echo "wall_s=$wall"
  echo "sources_per_s=$sps"
  echo "calls=$calls"
  echo "calls_per_s=$cps"
} >>"$SUMMARY"
if [ -f "$DIR/time.txt" ]; then
  user=$(sed -n 's/.*User time (seconds): //p' "$DIR/time.txt")
  sys=$(sed -n 's/.*System time (seconds): //p' "$DIR/time.txt")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$DIR/time.txt")
  cpu_call=$(awk "BEGIN { printf \"%.1f\", ($user + $sys) * 1e6 / $calls }")
  echo "  autodata run CPU: user ${user} s + sys ${sys} s = ${cpu_call} us per model call" \
    "(the whole loop: prompts, parsing, scoring, store); peak RSS $((rss / 1024)) MB"
  { echo "cpu_us_per_call=$cpu_call"; echo "peak_rss_kb=$rss"; } >>"$SUMMARY"
fi
if awk "BEGIN { exit !($wall > 180) }"; then
  echo "  note: took more than 3 minutes (SIM_SCALE_COUNT=N runs a smaller corpus)"
fi
