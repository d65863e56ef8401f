#!/bin/sh
# bench/analysis/run.sh - build and run the analysis benchmark (bench_analysis.c): near-duplicate
# signatures/s/core and the 13-gram contamination scan's MB/s/core (docs/performance.md); then
# the Python + numpy peer (peer.py, Debian's /usr/bin/python3 and python3-numpy) on the same
# inputs, straightforward and batched, and the ratios. All figures are CPU time, so per core.
#
#   bench/analysis/run.sh [--n QUESTIONS] [--mb MB_SCANNED]
#   PY_MB=16 (MB the Python peer scans), NO_PYTHON=1 (the C figures only)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CC=${CC:-cc}
PKGS="jansson libxxhash"
PKG_CFLAGS=$(pkg-config --cflags $PKGS 2>/dev/null || true)
PKG_LIBS=$(pkg-config --libs $PKGS 2>/dev/null || echo -ljansson -lxxhash)
OUT="$BUILD/bench/analysis"
mkdir -p "$OUT"
$CC -std=c17 -D_GNU_SOURCE -Isrc $PKG_CFLAGS -Wall -Wextra -Wpedantic -Wshadow -g -O2 \
  bench/analysis/bench_analysis.c src/analyze/text.c src/analyze/minhash.c src/analyze/contam.c \
  src/util/hash.c src/util/rng.c src/util/mem.c src/util/err.c \
  -o "$BUILD/bench/bench_analysis" $PKG_LIBS -lm
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD/bench/bench_analysis" --write "$OUT" "$@" | tee "$OUT/c.txt"
[ "${NO_PYTHON:-0}" = 1 ] && exit 0
PY=/usr/bin/python3 # Debian's interpreter and its python3-numpy, not a python3 earlier on PATH
if ! $PY -c 'import numpy' 2>/dev/null; then
  echo "no numpy for $PY (apt-get install python3-numpy; scripts/install-deps.sh with AUTODATA_BENCH=1)"
  exit 0
fi
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when the environment sets them, slow numpy down on
# some processors: unset for the peer only.
peer() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $PY bench/analysis/peer.py "$OUT" --mb "${PY_MB:-16}" "$@"; }
peer | tee "$OUT/py.txt"
peer --batched | grep near-duplicates | tee -a "$OUT/py.txt"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# The figure before "signatures/s/core" or "MB/s/core" on the line that starts with $2.
fig() { grep "^$2" "$1" | sed -E 's|.*: ([0-9.]+) (signatures\|MB)/s/core.*|\1|'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
C=$OUT/c.txt P=$OUT/py.txt
echo "ratio C / Python, per core:"
echo "  near-duplicates: $(ratio "$(fig $C near-duplicates)" "$(fig $P 'python near')")x" \
  "($(ratio "$(fig $C near-duplicates)" "$(fig $P 'python (batched)')")x against the batched numpy)"
echo "  contamination index: $(ratio "$(fig $C 'contamination index')" "$(fig $P 'python contamination index')")x"
echo "  contamination scan: $(ratio "$(fig $C 'contamination scan')" "$(fig $P 'python contamination scan')")x"
