#!/usr/bin/env bash
# t_resume.sh - crash safety: SIGKILL `autodata run` at random moments of a sim
# run over HTTP, resume each time; the final dataset must equal an uninterrupted
# run's, and the calls sent beyond the uninterrupted run's count must stay within
# what can be in flight at the kills. Then a resume of the finished reference run: no output
# rewritten unless one changed; the corpus index follows the corpus.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
KILLS=${RESUME_KILLS:-12}
INFLIGHT=64   # endpoint max_inflight below: the most calls a kill can lose
"$AUTODATA" sim-sources --count 160 --seed 5 --out "$T/src.jsonl" 2>/dev/null
# Each phase gets its own server, which counts the chat completions it answers:
# that is the number of calls really sent, including those a kill cut off.
ref_port=$(free_port)
start_sim_server "$ref_port" --seed 1 --latency-ms 25 --jitter-ms 10 || fail "sim-server start"
sed -e 's/max_inflight: 256/max_inflight: 64/' examples/sim-http.yaml >"$T/recipe.yaml"
export AUTODATA_SIM_SOURCES=$T/src.jsonl

# The uninterrupted reference.
export AUTODATA_SIM_URL=http://127.0.0.1:$ref_port/v1
AUTODATA_OUT=$T/ref "$AUTODATA" run "$T/recipe.yaml" --quiet --concurrency 16 >"$T/ref.out" 2>&1
check "uninterrupted run exits 0" test $? -eq 0
stop_sim_server "$ref_port" || fail "reference server stats"
ref_calls=${SIM_CHAT_COUNT:-0}
kill_port=$(free_port)
start_sim_server "$kill_port" --seed 1 --latency-ms 25 --jitter-ms 10 || fail "sim-server start"
export AUTODATA_SIM_URL=http://127.0.0.1:$kill_port/v1

# Kill at random moments (seeded, so the test is repeatable), resuming each time.
RANDOM=42
killed=0
for i in $(seq 1 "$KILLS"); do
  AUTODATA_OUT=$T/k "$AUTODATA" run "$T/recipe.yaml" --quiet --concurrency 16 >"$T/k.$i.out" 2>&1 &
  pid=$!
  sleep "0.$(printf '%03d' $((RANDOM % 500 + 100)))"
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; killed=$((killed + 1)); fi
  wait "$pid" 2>/dev/null
done
AUTODATA_OUT=$T/k "$AUTODATA" run "$T/recipe.yaml" --quiet --concurrency 16 >"$T/k.final.out" 2>&1
check "final resume exits 0" test $? -eq 0
stop_sim_server "$kill_port" || fail "kill-phase server stats"
kill_calls=${SIM_CHAT_COUNT:-0}
extra=$((kill_calls - ref_calls))
bound=$((killed * INFLIGHT))
echo "  kills landed: $killed; calls sent: uninterrupted $ref_calls, with kills $kill_calls; extra $extra (bound: $killed kills x $INFLIGHT in flight = $bound)"
check "at least 10 kills landed mid-run" test "$killed" -ge 10
check "dataset after kills equals the uninterrupted one" cmp "$T/ref/dataset.jsonl" "$T/k/dataset.jsonl"
check "calls were counted" test "$ref_calls" -gt 0
check "extra calls within what was in flight at the kills" test "$extra" -ge 0 -a "$extra" -le "$bound"
check "store passes integrity_check" bash -c "sqlite3 '$T/k/store.db' 'PRAGMA integrity_check' | grep -qx ok"

# A resume of the finished run, nothing changed: no output is written again (each output is
# written to a new file renamed over the old one, so an unchanged inode means not rewritten).
files="dataset.jsonl rejected.jsonl candidates.jsonl DATACARD.md report.html"
inodes() { for f in $files; do stat -c %i "$T/ref/$f"; done; }
for f in $files; do cp "$T/ref/$f" "$T/saved.$f"; done
before=$(inodes)
resume_ref() { AUTODATA_OUT=$T/ref "$AUTODATA" run "$T/recipe.yaml" --quiet --concurrency 16 >"$T/$1.out" 2>&1; }
resume_ref again
check "resume of a finished run exits 0" test $? -eq 0
check "... rewrites no output" test "$before" = "$(inodes)"
check "... and prints the run's summary" grep -q "examples accepted: $(wc -l <"$T/ref/dataset.jsonl")" "$T/again.out"
echo tampered >>"$T/ref/rejected.jsonl"
rm "$T/ref/DATACARD.md"
resume_ref fixed
check "a modified and a deleted output are written again, as they were" \
  bash -c "for f in $files; do cmp \"$T/saved.\$f\" \"$T/ref/\$f\" || exit 1; done"
# The corpus index kept in the output folder (.sources.idx): written for a corpus not changed
# in the last seconds, and not trusted once the file changed, even in place with its size and
# modification time put back (the change time differs).
touch -d '-1 min' "$T/src.jsonl"
resume_ref indexed
check "the corpus index is written" test -s "$T/ref/.sources.idx"
mtime=$(stat -c %y "$T/src.jsonl")
sed -i '1s/\."}$/!"}/' "$T/src.jsonl"
touch -d "$mtime" "$T/src.jsonl"
resume_ref changed
check "a text changed in place is seen through the index" grep -q "changed since the run started" "$T/changed.out"
finish
