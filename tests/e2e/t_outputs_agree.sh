#!/usr/bin/env bash
# t_outputs_agree.sh - the outputs agree with the store whatever happened: a session that
# fails after it began (here the store's disk fills up) still brings dataset.jsonl up to
# date with what the store committed, instead of leaving an earlier session's. The small
# disk is a tmpfs in a private mount namespace (root); skipped elsewhere. 4 MB: the compact
# store (schema 9) holds the whole 30-source run in less than 6 MB, so the disk must be
# smaller for the second session to fill it (after it committed some examples).
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
if [ "$(id -u)" != 0 ] || ! unshare -m true 2>/dev/null; then
  echo "  (skipped: needs root and unshare -m for a small tmpfs)"; finish; exit
fi
B=$(cd "$(dirname "$AUTODATA")" && pwd)/$(basename "$AUTODATA")
"$B" sim-sources --count 30 --seed 4 --out "$T/src.jsonl" 2>/dev/null
mkdir -p "$T/small"
# (full evaluation: the timing of the first examples this test relies on was measured so)
sed -e "s|^  folder: .*|  folder: $T/out\n  store: $T/small/store.db|" \
  -e 's/^budgets:/evaluation: {early_stop: false}\n\nbudgets:/' examples/sim.yaml >"$T/r.yaml"
examples_in_store() { sqlite3 "$T/small/store.db" "SELECT count(*) FROM examples" 2>/dev/null; }
unshare -m bash -c "
  mount -t tmpfs -o size=4m tmpfs '$T/small' || exit 99
  AUTODATA_SIM_SOURCES='$T/src.jsonl' AUTODATA_MAX_CALLS=100 '$B' run '$T/r.yaml' --quiet >'$T/s1.out' 2>&1
  echo \$? >'$T/s1.rc'
  cp '$T/out/dataset.jsonl' '$T/s1.dataset'
  AUTODATA_SIM_SOURCES='$T/src.jsonl' '$B' run '$T/r.yaml' --quiet >'$T/s2.out' 2>&1
  echo \$? >'$T/s2.rc'
  sqlite3 '$T/small/store.db' 'SELECT count(*) FROM examples' >'$T/s2.examples'
"
check "first session stops on its budget (exit 3)" test "$(cat "$T/s1.rc")" = 3
check "second session fails on the full disk (exit 1)" test "$(cat "$T/s2.rc")" = 1
check "the failure names the full disk" grep -q "disk full" "$T/s2.out"
check "the store gained examples in the failed session" test "$(cat "$T/s2.examples")" -gt "$(wc -l <"$T/s1.dataset")"
check "dataset.jsonl holds what the store holds ($(wc -l <"$T/out/dataset.jsonl") lines, $(cat "$T/s2.examples") in the store)" \
  test "$(wc -l <"$T/out/dataset.jsonl")" -eq "$(cat "$T/s2.examples")"
check "the message says the outputs were brought up to date" grep -q "the outputs in .* hold what the store holds" "$T/s2.out"
[ -n "${KEEP:-}" ] && cp -r "$T" /tmp/hh/keep3
finish
