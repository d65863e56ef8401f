#!/bin/sh
# bench/store/run.sh - build and run the store write benchmark (bench_store.c).
#
#   bench/store/run.sh [bench_store options...]   e.g. --n 200000 --path /some/disk/x.db
#
# Builds with the project's release flags into $BUILD/bench (BUILD defaults to build),
# then persists 200,000 model-call records (~2 KB request + ~1 KB reply) through the
# store API and prints records/s and CPU us per record, then makes as many random cache
# lookups (100,000 at most; --lookups L for L, 0 for none). Target: >= 20,000 records/s.
# Then the same on PostgreSQL (target >= 10,000 records/s): on AUTODATA_BENCH_PG_URL when
# set, else on a throwaway server it starts and stops (scripts/pg-test-server.sh);
# AUTODATA_BENCH_PG=0 skips it. Options given are passed to both runs (--path only to SQLite).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CC=${CC:-cc}
PKGS="jansson sqlite3 libxxhash libzstd libpq"
PKG_CFLAGS=$(pkg-config --cflags $PKGS 2>/dev/null || true)
PKG_LIBS=$(pkg-config --libs $PKGS 2>/dev/null || echo -ljansson -lsqlite3 -lxxhash -lzstd -lpq)
mkdir -p "$BUILD/bench"
$CC -std=c17 -D_GNU_SOURCE -Isrc $PKG_CFLAGS -Wall -Wextra -Wpedantic -Wshadow \
  -Wno-unused-parameter -g -O2 \
  bench/store/bench_store.c src/store/*.c src/util/*.c \
  -o "$BUILD/bench/bench_store" $PKG_LIBS -lm -lpthread
echo "== SQLite"
"$BUILD/bench/bench_store" "$@"
[ "${AUTODATA_BENCH_PG:-1}" = 0 ] && exit 0
# the PostgreSQL run takes the same options but its own --path
pgargs=""
skip=0
for a in "$@"; do
  if [ $skip = 1 ]; then skip=0; continue; fi
  if [ "$a" = --path ]; then skip=1; continue; fi
  pgargs="$pgargs $a"
done
echo "== PostgreSQL"
if [ -n "${AUTODATA_BENCH_PG_URL:-}" ]; then
  # shellcheck disable=SC2086
  exec "$BUILD/bench/bench_store" $pgargs --path "$AUTODATA_BENCH_PG_URL"
fi
pgdir=$(mktemp -d /tmp/adbench-pg.XXXXXX)
trap 'scripts/pg-test-server.sh stop "$pgdir" >/dev/null 2>&1' EXIT INT TERM
url=$(scripts/pg-test-server.sh start "$pgdir")
# The server's CPU: its backends' time is added to the postmaster's cutime/cstime when they
# exit (the bench's connection ends before we read it again).
pm=$(head -1 "$pgdir/data/postmaster.pid")
srv_cpu() { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"; }
c0=$(srv_cpu)
# shellcheck disable=SC2086
"$BUILD/bench/bench_store" $pgargs --path "$url" | tee "$pgdir/out"
sleep 0.5
c1=$(srv_cpu)
n=$(sed -n 's/^store bench: \([0-9]*\) call records.*/\1/p' "$pgdir/out")
hz=$(getconf CLK_TCK)
awk -v a="$c0" -v b="$c1" -v n="$n" -v hz="$hz" \
  'BEGIN { printf "  server CPU: %.1f us/record (all PostgreSQL processes: the writes, and the lookups unless --lookups 0)\n", (b - a) / hz * 1e6 / n }' 
