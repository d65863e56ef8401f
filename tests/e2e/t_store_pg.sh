#!/usr/bin/env bash
# t_store_pg.sh - the PostgreSQL store end to end, against the throwaway server `make test`
# starts (AUTODATA_TEST_PG_URL; skipped with a message when unset, unless
# AUTODATA_TEST_PG_REQUIRED=1). A sim run on PostgreSQL gives the SQLite run's dataset bytes;
# `autodata store copy` SQLite -> PostgreSQL -> SQLite keeps export, status and the cache; a
# password in the URL reaches no output, log, card or table.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
need_pg
PGU=$AUTODATA_TEST_PG_URL
SCH=e2e_$$_$RANDOM
psql -q "$PGU" -c "SET client_min_messages = warning; CREATE SCHEMA ${SCH}_a; CREATE SCHEMA ${SCH}_b; CREATE SCHEMA ${SCH}_c" >/dev/null
drop_schemas() { psql -q "$PGU" -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS ${SCH}_a, ${SCH}_b, ${SCH}_c CASCADE" >/dev/null 2>&1; cleanup; }
trap drop_schemas EXIT
url() { echo "$PGU&options=-csearch_path%3D${SCH}_$1"; }

"$AUTODATA" sim-sources --count 8 --seed 4 --out "$T/src.jsonl" 2>/dev/null
# examples/sim.yaml with the store taken from AUTODATA_STORE (the recipe's output.store key)
sed 's|^  folder: \(.*\)$|  folder: \1\n  store: ${AUTODATA_STORE}|' examples/sim.yaml >"$T/sim-pg.yaml"
cp -r prompts "$T/" 2>/dev/null
grep -q 'store: ${AUTODATA_STORE}' "$T/sim-pg.yaml" || fail "recipe with a store key"

AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/sq "$AUTODATA" run examples/sim.yaml --quiet >/dev/null 2>&1
check "reference run on SQLite" test $? -eq 0
AUTODATA_STORE=$(url a) AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/pg \
  "$AUTODATA" run "$T/sim-pg.yaml" --quiet >"$T/pg.out" 2>&1
check "the same run on PostgreSQL" test $? -eq 0
check "PostgreSQL: no store file in the output folder" test ! -e "$T/pg/store.db"
check "PostgreSQL: dataset byte-identical to SQLite's" cmp "$T/sq/dataset.jsonl" "$T/pg/dataset.jsonl"
check "PostgreSQL: rejected.jsonl identical" cmp "$T/sq/rejected.jsonl" "$T/pg/rejected.jsonl"
"$AUTODATA" status --store "$T/sq/store.db" | sed '1d;/^latency/d' >"$T/st.sq"
"$AUTODATA" status --store "$(url a)" >"$T/st.pg.all"
sed '1d;/^latency/d;/^workers:/,$d' "$T/st.pg.all" >"$T/st.pg"
check "PostgreSQL: status shows the same run" cmp "$T/st.sq" "$T/st.pg"
check "  and the run's one worker, gone with no lease" grep -Eq "^  worker 1 .* left .* 0 leases" "$T/st.pg.all"

for c in "show $(url a)" "compare $(url a) $T/sq/store.db" "report $(url a) --out $T/r.html" \
  "card --store $(url a) --out $T/card.md" "analyze $(url a)"; do
  # shellcheck disable=SC2086
  "$AUTODATA" $c >"$T/cmd.out" 2>&1
  check "PostgreSQL: ${c%% *} reads the store" test $? -eq 0
done

# copy SQLite -> PostgreSQL -> SQLite
"$AUTODATA" store copy "$T/sq/store.db" "$(url b)" >"$T/cp1.out" 2>&1
check "store copy SQLite -> PostgreSQL" test $? -eq 0
"$AUTODATA" store copy "$(url b)" "$T/back.db" >"$T/cp2.out" 2>&1
check "store copy PostgreSQL -> SQLite" test $? -eq 0
"$AUTODATA" store copy "$T/sq/store.db" "$T/back.db" >"$T/cp3.out" 2>&1
check "store copy refuses a target that holds runs (exit 2)" test $? -eq 2
check "  and says so" grep -q "already holds runs" "$T/cp3.out"
n=0
for s in "$T/sq/store.db" "$(url b)" "$T/back.db"; do
  n=$((n + 1))
  "$AUTODATA" export --store "$s" --format jsonl --out "$T/exp$n" >/dev/null 2>&1
  "$AUTODATA" export --store "$s" --format rl --out "$T/rl$n" >/dev/null 2>&1
  "$AUTODATA" status --store "$s" --json | python3 -c '
import json, sys
d = json.load(sys.stdin); d["run"].pop("created"); d.pop("wall_s", None)
print(json.dumps(d, sort_keys=True))' >"$T/sj$n"
done
check "copies: export jsonl identical" sh -c "cmp '$T/exp1/train.jsonl' '$T/exp2/train.jsonl' && cmp '$T/exp1/train.jsonl' '$T/exp3/train.jsonl'"
check "copies: export rl identical" sh -c "diff -r '$T/rl1' '$T/rl2' && diff -r '$T/rl1' '$T/rl3'"
check "copies: status --json identical (calls, tokens, latency, rejections)" sh -c "cmp '$T/sj1' '$T/sj2' && cmp '$T/sj1' '$T/sj3'"
# the copy's cache serves the whole run: a resume sends nothing
AUTODATA_STORE=$(url b) AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/pgb \
  "$AUTODATA" run "$T/sim-pg.yaml" >"$T/pgb.out" 2>&1
check "the copied run resumes on PostgreSQL with nothing left to do" grep -q "model calls sent: 0" "$T/pgb.out"
check "  and writes the same dataset" cmp "$T/sq/dataset.jsonl" "$T/pgb/dataset.jsonl"

# a password in the URL: redacted everywhere (trust auth ignores it)
PW=Pw0rdE2eSecret
PWURL=$(url c | sed "s|^postgresql://|postgresql://autodata:$PW@|")
AUTODATA_STORE=$PWURL AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/pw \
  "$AUTODATA" run "$T/sim-pg.yaml" >"$T/pw.out" 2>&1
check "a URL with a password works" test $? -eq 0
"$AUTODATA" status --store "$PWURL" >>"$T/pw.out" 2>&1
"$AUTODATA" store copy "$PWURL" "$T/pw.db" >>"$T/pw.out" 2>&1
"$AUTODATA" report "$PWURL" --out "$T/pw/r2.html" >>"$T/pw.out" 2>&1
"$AUTODATA" compare "$PWURL" "$T/sq/store.db" >>"$T/pw.out" 2>&1
check "the run's output names the store with the password masked" grep -q "autodata:\[redacted\]@" "$T/pw.out"
check "the password is in no output, card, report or log" sh -c "! grep -rq '$PW' '$T/pw' '$T/pw.out'"
pg_dump "$PGU" -n "${SCH}_c" >"$T/dump.sql" 2>/dev/null
check "  nor in any table" sh -c "test -s '$T/dump.sql' && ! grep -q '$PW' '$T/dump.sql' && ! grep -aq '$PW' '$T/pw.db'"
finish
