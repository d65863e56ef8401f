#!/bin/sh
# bench/analysis/run.sh - build and run the analysis benchmark (bench_analysis.c): near-duplicate
# signatures/s/core and the 13-gram contamination scan's MB/s/core (docs/performance.md).
#
#   bench/analysis/run.sh [--n QUESTIONS] [--mb MB_SCANNED]
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CC=${CC:-cc}
PKGS="jansson libxxhash"
PKG_CFLAGS=$(pkg-config --cflags $PKGS 2>/dev/null || true)
PKG_LIBS=$(pkg-config --libs $PKGS 2>/dev/null || echo -ljansson -lxxhash)
mkdir -p "$BUILD/bench"
$CC -std=c17 -D_GNU_SOURCE -Isrc $PKG_CFLAGS -Wall -Wextra -Wpedantic -Wshadow -g -O2 \
  bench/analysis/bench_analysis.c src/analyze/text.c src/analyze/minhash.c src/analyze/contam.c \
  src/util/hash.c src/util/rng.c src/util/mem.c src/util/err.c \
  -o "$BUILD/bench/bench_analysis" $PKG_LIBS -lm
exec "$BUILD/bench/bench_analysis" "$@"
