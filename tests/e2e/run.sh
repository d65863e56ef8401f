#!/usr/bin/env bash
# run.sh - run every tests/e2e/t_*.sh against $AUTODATA; print one closing tally.
set -u
cd "$(dirname "$0")/../.."
: "${AUTODATA:=build/autodata}"
export AUTODATA
# An optimised build of the same source for the one study too slow under ASan
# (t_optimize.sh's 30 iterations); `make e2e` sets it.
[ -n "${AUTODATA_RELEASE:-}" ] && export AUTODATA_RELEASE
total_p=0; total_f=0
for t in tests/e2e/t_*.sh; do
  [ -e "$t" ] || continue
  echo "== $t"
  out=$(timeout 900 bash "$t" 2>&1); rc=$?
  echo "$out"
  line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
  p=${p:-0}; f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "  FAIL $t exited $rc"; fi
  total_p=$((total_p + p)); total_f=$((total_f + f))
done
echo "e2e: $total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
