#!/usr/bin/env bash
# bench/run.sh - every benchmark (`make bench`; never part of `make test`).
#
#   bench/run.sh                  store, client (cpu + latency modes), sim-scale, cost, summary
#   BENCH_ONLY="client" bench/run.sh     a subset: any of store client sim-scale analysis cost reward
#
# Uses the release binary $BUILD/autodata (BUILD defaults to build; AUTODATA=path overrides).
# See docs/performance.md for what each figure means and the last measured values.
set -euo pipefail
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
export AUTODATA=${AUTODATA:-$BUILD/autodata}
ONLY=${BENCH_ONLY:-store client sim-scale analysis cost reward}
OUT=$BUILD/bench
mkdir -p "$OUT"
[ -x "$AUTODATA" ] || { echo "bench: $AUTODATA not found: run make (or set AUTODATA=)" >&2; exit 2; }

echo "bench: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $AUTODATA ($("$AUTODATA" version 2>/dev/null | head -1))"
echo "bench: load average now: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
status=0
has() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if has store; then
  echo ""
  echo "== store: bench/store/run.sh"
  if bench/store/run.sh | tee "$OUT/store.out"; then :; else status=1; fi
fi
if has client; then
  bench/client/run.sh all || status=1
fi
if has sim-scale; then
  echo ""
  echo "== sim-scale: bench/sim-scale/run.sh"
  bench/sim-scale/run.sh || status=1
fi
if has analysis; then
  echo ""
  echo "== analysis: bench/analysis/run.sh"
  bench/analysis/run.sh || status=1
fi
if has reward; then
  echo ""
  echo "== reward: bench/reward/run.sh"
  bench/reward/run.sh | tee "$OUT/reward.out" || status=1
fi
if has cost; then
  echo ""
  echo "== cost: bench/cost/run.sh"
  bench/cost/run.sh || status=1
  bench/cost/agreement.sh || status=1
fi

# ---- summary ------------------------------------------------------------------------------
v() { sed -n "s/^$2=//p" "$OUT/summary-$1.txt" 2>/dev/null | head -1; }
mb() { local k; k=$(v "$1" "$2"); echo $(( ${k:-0} / 1024 )); }
echo ""
echo "== summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs)"
if has store && [ -f "$OUT/store.out" ]; then
  sed -n 's/^  write: \([0-9]*\) records\/s, \([0-9.]*\) CPU us\/record.*/  store writes:        \1 records\/s, \2 CPU us\/record (target >= 20,000 records\/s)/p' "$OUT/store.out"
fi
if has client && [ -s "$OUT/summary-client.txt" ]; then
  echo "  client, 256 in flight: autodata $(v client autodata_cpu_us_per_call) us CPU/call" \
    "($(v client autodata_calls_per_s) calls/s, $(mb client autodata_peak_rss_kb) MB);" \
    "with --store $(v client autodata_store_cpu_us_per_call) us"
  if [ -n "$(v client openai_cpu_us_per_call)" ]; then
    echo "                       $(v client openai_client): $(v client openai_cpu_us_per_call) us CPU/call" \
      "($(v client openai_calls_per_s) calls/s, $(mb client openai_peak_rss_kb) MB)"
    echo "                       ratio $(v client ratio_plain)x (target 15x), with --store" \
      "$(v client ratio_store)x (target 10x)"
  fi
  for c in ${LAT_CONCS:-1024 4096}; do
    [ -n "$(v client "lat${c}_overall_pct")" ] || continue
    echo "  200 ms latency, $c in flight: $(v client "lat${c}_calls_per_s") calls/s =" \
      "$(v client "lat${c}_overall_pct")% of ideal overall, $(v client "lat${c}_steady_pct")% between" \
      "10% and 90% done$([ "$c" = 1024 ] && echo ' (target >= 95%)')"
  done
fi
if has sim-scale && [ -s "$OUT/summary-sim-scale.txt" ]; then
  echo "  sim-scale: $(v sim-scale sources) sources in $(v sim-scale wall_s) s = $(v sim-scale sources_per_s) sources/s," \
    "$(v sim-scale calls_per_s) calls/s, $(v sim-scale cpu_us_per_call) us CPU/call, peak RSS" \
    "$(mb sim-scale peak_rss_kb) MB"
fi
if has cost && [ -s "$OUT/summary-cost.txt" ]; then
  sed -n 's/^\(early\|batch\): /  cost per accepted, \1: /p' "$OUT/summary-cost.txt"
fi
exit $status
