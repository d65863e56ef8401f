#!/usr/bin/env bash
# t_store_ro.sh - a store on read-only media: status, card, export and compare read it (as
# immutable when SQLite cannot make its -shm file there); a store whose -wal still holds
# writes is refused with a message saying so; run fails at once. The read-only disk is a
# read-only bind mount in a private mount namespace (unshare -m; root), else a folder
# without write permission (non-root); skipped when neither is possible.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
B=$(cd "$(dirname "$AUTODATA")" && pwd)/$(basename "$AUTODATA")
"$B" sim-sources --count 3 --seed 4 --out "$T/src.jsonl" 2>/dev/null
AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/out "$B" run examples/sim.yaml --quiet >/dev/null 2>&1
check "reference run" test $? -eq 0
check "a closed store is one file: its WAL is empty" test ! -s "$T/out/store.db-wal"
mkdir -p "$T/media" "$T/ro"
cp "$T/out/store.db" "$T/media/"          # the store alone, as copied to other media
"$B" status --store "$T/out/store.db" >"$T/status.ref" 2>&1

# in_ro CMD: run CMD with $T/ro a read-only view of $T/media.
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
  in_ro() { unshare -m sh -c "mount --bind '$T/media' '$T/ro' && mount -o remount,ro,bind '$T/ro' && $1"; }
elif [ "$(id -u)" != 0 ]; then
  rmdir "$T/ro"; ln -s "$T/media" "$T/ro"
  in_ro() { chmod 555 "$T/media"; sh -c "$1"; local rc=$?; chmod 755 "$T/media"; return $rc; }
else
  echo "  (skipped: no private mount namespace and running as root)"; finish; exit
fi

in_ro "'$B' status --store '$T/ro/store.db' >'$T/st.out' 2>&1"
check "read-only media: status works" test $? -eq 0
check "read-only media: status shows the same as on the original" \
  cmp <(sed 1d "$T/status.ref") <(sed 1d "$T/st.out")
in_ro "'$B' card --store '$T/ro/store.db' --out '$T/card.md' >'$T/card.out' 2>&1"
check "read-only media: card works" test $? -eq 0
check "read-only media: same card" cmp "$T/out/DATACARD.md" "$T/card.md"
in_ro "'$B' export --store '$T/ro/store.db' --format jsonl --out '$T/exp' >'$T/exp.out' 2>&1"
check "read-only media: export works" test $? -eq 0
in_ro "'$B' compare '$T/ro/store.db' '$T/out/store.db' >'$T/cmp.out' 2>&1"
check "read-only media: compare works" test $? -eq 0
in_ro "cd '$T' && AUTODATA_SIM_SOURCES='$T/src.jsonl' AUTODATA_OUT='$T/ro' '$B' run '$PWD/examples/sim.yaml' --quiet >'$T/run.out' 2>&1"
check "read-only media: run fails" test $? -ne 0
check "read-only media: run says read-only" grep -q "read-only" "$T/run.out"

# A -wal with writes in it next to the store: refused, with the reason.
printf 'not empty' >"$T/media/store.db-wal"
in_ro "'$B' status --store '$T/ro/store.db' >'$T/wal.out' 2>&1"
check "read-only media with a pending WAL: refused" test $? -ne 0
check "read-only media with a pending WAL: says why" grep -q "last writes are still in" "$T/wal.out"
finish
