#!/bin/sh
# bench/store/run.sh - build and run the store write benchmark (bench_store.c).
#
#   bench/store/run.sh [bench_store options...]   e.g. --n 200000 --path /some/disk/x.db
#
# Builds with the project's release flags into $BUILD/bench (BUILD defaults to build),
# then persists 200,000 model-call records (~2 KB request + ~1 KB reply) through the
# store API and prints records/s and CPU us per record. Target: >= 20,000 records/s.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CC=${CC:-cc}
PKGS="jansson sqlite3 libxxhash libzstd"
PKG_CFLAGS=$(pkg-config --cflags $PKGS 2>/dev/null || true)
PKG_LIBS=$(pkg-config --libs $PKGS 2>/dev/null || echo -ljansson -lsqlite3 -lxxhash -lzstd)
mkdir -p "$BUILD/bench"
$CC -std=c17 -D_GNU_SOURCE -Isrc $PKG_CFLAGS -Wall -Wextra -Wpedantic -Wshadow \
  -Wno-unused-parameter -g -O2 \
  bench/store/bench_store.c src/store/*.c src/util/*.c \
  -o "$BUILD/bench/bench_store" $PKG_LIBS -lm -lpthread
exec "$BUILD/bench/bench_store" "$@"
