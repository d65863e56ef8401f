#!/usr/bin/env bash
# bench/sim-scale/run.sh - the whole agentic loop at scale, at several corpus sizes.
#
#   bench/sim-scale/run.sh
#   SIM_SCALE_COUNTS="1000 10000" SIM_SCALE_MODE=inproc bench/sim-scale/run.sh
#
# For each count in SIM_SCALE_COUNTS (default "1000 10000 100000"): generates that many sim
# sources, runs the loop on them with `autodata run ... --quiet --concurrency CONC` (store,
# dataset and card included) and reports wall time, sources/s and calls/s, the run process's
# CPU per model call and peak RSS (from /usr/bin/time -v, the autodata process only), the
# store's bytes per call, the time of `autodata status` on the finished store and of a resume
# of the finished run (the same command again: it rewrites no output, docs/performance.md),
# and each count's peak RSS as a multiple of the first count's. SIM_SCALE_MODE=http (the default) runs
# examples/sim-http.yaml against `autodata sim-server --threads 2` on a free 127.0.0.1 port
# (the server pinned to CPU 0 and the run to CPU 1 when taskset exists); inproc runs
# examples/sim.yaml with the sim world in the process.
#
# Environment: AUTODATA (default $BUILD/autodata), BUILD (build), SIM_SCALE_COUNTS,
# SIM_SCALE_COUNT (one count, the former knob), SIM_SCALE_CONC (256), SIM_SCALE_MODE,
# NO_PIN=1. Writes $BUILD/bench/summary-sim-scale.txt (one block of key=value per count).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
AUTODATA=${AUTODATA:-$BUILD/autodata}
COUNTS=${SIM_SCALE_COUNTS:-${SIM_SCALE_COUNT:-1000 10000 100000}}
CONC=${SIM_SCALE_CONC:-256}
MODE=${SIM_SCALE_MODE:-http}
DIR=$BUILD/bench/sim-scale
SUMMARY=$BUILD/bench/summary-sim-scale.txt
[ -x "$AUTODATA" ] || { echo "bench/sim-scale: $AUTODATA not found (make first, or set AUTODATA=)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/sim-scale: needs /usr/bin/time (GNU time)" >&2; exit 2; }
rm -rf "$DIR"
mkdir -p "$DIR"
: >"$SUMMARY"

PIN_SERVER=() PIN_CLIENT=()
if [ "$MODE" = http ] && [ "${NO_PIN:-0}" != 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER=(taskset -c 0)
  PIN_CLIENT=(taskset -c 1)
  echo "bench/sim-scale: pinning sim-server to CPU 0 and autodata run to CPU 1 (taskset)"
fi

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT INT TERM

RECIPE=examples/sim.yaml
if [ "$MODE" = http ]; then
  RECIPE=examples/sim-http.yaml
  "${PIN_SERVER[@]}" "$AUTODATA" sim-server --host 127.0.0.1 --port 0 --threads 2 >"$DIR/server.out" 2>&1 &
  SERVER_PID=$!
  URL=""
  for _ in $(seq 100); do
    URL=$(sed -n 's/^sim-server listening on //p' "$DIR/server.out")
    [ -n "$URL" ] && break
    sleep 0.05
  done
  [ -n "$URL" ] || { echo "bench/sim-scale: sim-server did not start" >&2; cat "$DIR/server.out" >&2; exit 1; }
  export AUTODATA_SIM_URL=$URL
fi

secs() { sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$1" |
  awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }'; }
field() { sed -n "s/.*$2: //p" "$1"; }

for COUNT in $COUNTS; do
  D=$DIR/$COUNT
  mkdir -p "$D"
  "$AUTODATA" sim-sources --count "$COUNT" --seed 1 --out "$D/sources.jsonl" >/dev/null
  echo "bench/sim-scale: $COUNT sources, $MODE, autodata run --concurrency $CONC"
  run_it() { # time-file stdout
    AUTODATA_SIM_SOURCES=$D/sources.jsonl AUTODATA_OUT=$D/out \
      /usr/bin/time -v -o "$1" "${PIN_CLIENT[@]}" "$AUTODATA" run "$RECIPE" --quiet --concurrency "$CONC" \
      >"$2" 2>"$D/run.err"
  }
  if ! run_it "$D/time.txt" "$D/run.out"; then
    echo "bench/sim-scale: autodata run failed:" >&2
    tail -20 "$D/run.err" >&2
    exit 1
  fi
  wall=$(secs "$D/time.txt")
  user=$(field "$D/time.txt" "User time (seconds)")
  sys=$(field "$D/time.txt" "System time (seconds)")
  rss=$(field "$D/time.txt" "Maximum resident set size (kbytes)")
  calls=$(sed -n 's/^model calls sent: \([0-9]*\).*/\1/p' "$D/run.out")
  accepted=$(sed -n 's/^examples accepted: \([0-9]*\).*/\1/p' "$D/run.out")
  bytes=$(stat -c %s "$D/out/store.db")
  /usr/bin/time -v -o "$D/status.time" "$AUTODATA" status --store "$D/out/store.db" >/dev/null
  status_s=$(secs "$D/status.time")
  run_it "$D/resume.time" "$D/resume.out" || { echo "bench/sim-scale: the resume failed" >&2; exit 1; }
  resume_s=$(secs "$D/resume.time")
  resume_rss=$(field "$D/resume.time" "Maximum resident set size (kbytes)")
  resume_cpu=$(awk "BEGIN { printf \"%.2f\", $(field "$D/resume.time" "User time (seconds)") + $(field "$D/resume.time" "System time (seconds)") }")
  FIRST_RSS=${FIRST_RSS:-$rss} # the first count's peak RSS: the others' are compared with it
  rss_ratio=$(awk "BEGIN { printf \"%.2f\", $rss / $FIRST_RSS }")
  cpu_call=$(awk "BEGIN { printf \"%.1f\", ($user + $sys) * 1e6 / $calls }")
  bpc=$((bytes / calls))
  echo "  $(head -1 "$D/run.out")"
  echo "  wall ${wall} s, ${calls} model calls ($(awk "BEGIN { printf \"%.0f\", $calls / $wall }")/s)," \
    "${accepted} accepted; CPU ${cpu_call} us per call; peak RSS $((rss / 1024)) MB" \
    "(${rss_ratio} x the first count's)"
  echo "  store $((bytes / 1048576)) MB = ${bpc} bytes per call; status ${status_s} s;" \
    "resume of the finished run ${resume_s} s, ${resume_cpu} s CPU (peak RSS $((resume_rss / 1024)) MB)"
  {
    echo "sources=$COUNT"
    echo "mode=$MODE"
    echo "wall_s=$wall"
    echo "calls=$calls"
    echo "accepted=$accepted"
    echo "cpu_us_per_call=$cpu_call"
    echo "peak_rss_kb=$rss"
    echo "peak_rss_ratio=$rss_ratio"
    echo "store_bytes=$bytes"
    echo "store_bytes_per_call=$bpc"
    echo "status_s=$status_s"
    echo "resume_s=$resume_s"
    echo "resume_cpu_s=$resume_cpu"
    echo "resume_peak_rss_kb=$resume_rss"
    echo
  } >>"$SUMMARY"
  rm -f "$D/sources.jsonl" # the biggest file; the store and outputs stay for a look
done
stop_server
