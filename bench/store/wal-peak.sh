#!/usr/bin/env bash
# wal-peak.sh BINARY OUTDIR: run examples/sim.yaml over 400 sim sources (a ~34 MB store),
# polling the WAL size every 10 ms; prints the peak WAL size, the final store and WAL sizes
# (docs/store.md, "WAL bound"). Run from the repository root.
B=${1:?binary}; O=${2:?output folder}; rm -rf "$O"
[ -e "$O.sources.jsonl" ] || "$B" sim-sources --count 400 --seed 9 --out "$O.sources.jsonl" 2>/dev/null
AUTODATA_SIM_SOURCES="$O.sources.jsonl" AUTODATA_OUT=$O "$B" run examples/sim.yaml --quiet >/dev/null 2>&1 &
pid=$!; peak=0
while kill -0 $pid 2>/dev/null; do
  s=$(stat -c %s "$O/store.db-wal" 2>/dev/null || echo 0); [ "$s" -gt "$peak" ] && peak=$s; sleep 0.01
done
wait $pid; echo "exit $?"
echo "peak WAL: $peak bytes; store: $(stat -c %s $O/store.db) bytes; WAL after close: $(stat -c %s $O/store.db-wal 2>/dev/null || echo absent)"
