#!/usr/bin/env bash
# t_cli_opts.sh - every subcommand parses its options the same way (src/cli/opts.h):
# -h/--help, `--opt=value` and `--opt value`, and one message format for an unknown
# option, a missing value and a bad value, each naming the command, flag and value;
# exit 2 for all of them.
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
T=$E2E_TMP
CMDS="run compare status card export sim-sources sim-server chat chat-load validate version"

# usage_err NAME EXPECTED CMD...: CMD exits 2 and its first stderr line is EXPECTED.
usage_err() {
  local name=$1 want=$2; shift 2
  "$AUTODATA" "$@" >"$T/ue.out" 2>"$T/ue.err"; local rc=$?
  local got; got=$(head -1 "$T/ue.err")
  if [ "$rc" -eq 2 ] && [ "$got" = "$want" ]; then ok "$name"
  else fail "$name" "exit $rc, stderr '$got', want '$want'"; fi
}

# --- -h and --help everywhere: the help on stdout, exit 0
for c in $CMDS; do
  check "$c --help" bash -c "\"\$AUTODATA\" $c --help | head -1 | grep -q '^usage: autodata $c'"
  check "$c -h" bash -c "\"\$AUTODATA\" $c -h | grep -q -- '-h, --help'"
done

# --- an unknown option, in every command
for c in $CMDS; do
  usage_err "$c: unknown option" "autodata $c: unknown option '--bogus'" $c --bogus=1
done
check "an unknown option also prints the usage line" \
  bash -c '"$AUTODATA" card --nope 2>&1 | grep -q "^usage: autodata card --store FILE"'
usage_err "ambiguous prefix lists the candidates" \
  "autodata run: ambiguous option '--c' (--concurrency, --cache-from, --cot-k)" run --c 4 x.yaml
usage_err "a switch given a value" "autodata status: --json takes no value" status --json=1

# --- a missing value
usage_err "run: missing value" "autodata run: --limit needs a value" run x.yaml --limit
usage_err "status: missing value" "autodata status: --store needs a value" status --store
usage_err "export: missing value" "autodata export: --out needs a value" export --out
usage_err "validate: missing value" "autodata validate: --prompts needs a value" validate x --prompts
usage_err "chat-load: missing value" "autodata chat-load: --model needs a value" chat-load --model

# --- bad integers
usage_err "run: bad integer" \
  "autodata run: --concurrency expects an integer in 1..100000, got 'x'" run x.yaml --concurrency x
usage_err "run: integer out of range (=form)" \
  "autodata run: --cot-k expects an integer in 1..64, got '65'" run x.yaml --cot-k=65
usage_err "card: run id 0" "autodata card: --run expects an integer >= 1, got '0'" card --store s --run 0
usage_err "export: negative seed" \
  "autodata export: --seed expects a non-negative integer, got '-1'" export --seed -1
usage_err "compare: negative seed (no wrap-around)" \
  "autodata compare: --seed expects a non-negative integer, got '-1'" compare --seed=-1 x
usage_err "compare: resamples" \
  "autodata compare: --resamples expects an integer in 100..1000000, got '99'" compare --resamples 99 x
usage_err "sim-sources: count" \
  "autodata sim-sources: --count expects an integer in 0..1000000, got '1e3'" sim-sources --count 1e3
usage_err "sim-server: port" \
  "autodata sim-server: --port expects an integer in 0..65535, got '65536'" sim-server --port=65536
usage_err "chat: retries not a whole number" \
  "autodata chat: --retries expects an integer in 0..100, got '2.5'" chat --retries 2.5
usage_err "chat-load: calls" \
  "autodata chat-load: --calls expects an integer in 1..10000000, got '0'" chat-load --calls 0
usage_err "status: trailing garbage" \
  "autodata status: --run expects an integer >= 1, got '3x'" status --run 3x

# --- bad numbers and choices
usage_err "run: double out of range" \
  "autodata run: --rip-threshold expects a number in [0, 1], got '1.5'" run x.yaml --rip-threshold 1.5
usage_err "run: negative share (=form)" \
  "autodata run: --ac-share expects a number in [0, 1], got '-0.1'" run --ac-share=-0.1 x.yaml
usage_err "chat: temperature" \
  "autodata chat: --temperature expects a number in [0, 10], got 'hot'" chat --temperature hot
usage_err "chat-load: rpm" \
  "autodata chat-load: --rpm expects a number in [0, 1e+09], got 'nan'" chat-load --rpm nan
usage_err "run: progress choice" \
  "autodata run: --progress expects live or plain, got 'fast'" run x.yaml --progress fast
usage_err "compare: format choice" \
  "autodata compare: --format expects table, markdown or json, got 'csv'" compare --format=csv x
usage_err "export: format choice" \
  "autodata export: --format expects jsonl, chat or rl, got 'csv'" export --format csv
usage_err "sim-sources: empty --out" \
  "autodata sim-sources: --out needs a value, got an empty one" sim-sources --out ''

# --- required arguments and positional arguments
usage_err "run: no recipe" "autodata run: RECIPE is required" run --quiet
usage_err "validate: two recipes" "autodata validate: one RECIPE at a time, got 2 arguments" validate a b
usage_err "status: --store required" "autodata status: --store FILE is required" status --json
usage_err "card: no positional arguments" "autodata card: unexpected argument 'x'" card x --store s
usage_err "version: no arguments" "autodata version: unexpected argument 'x'" version x

# --- --opt=value and --opt value give the same result
"$AUTODATA" sim-sources --count 4 --seed 5 --facts-per-source 3 >"$T/a.jsonl" 2>/dev/null
"$AUTODATA" sim-sources --count=4 --seed=5 --facts-per-source=3 >"$T/b.jsonl" 2>/dev/null
check "sim-sources: --opt=value = --opt value" cmp -s "$T/a.jsonl" "$T/b.jsonl"
check "sim-sources: 4 lines" test "$(wc -l <"$T/a.jsonl")" -eq 4
"$AUTODATA" sim-sources --count=6 --out="$T/src.jsonl" 2>/dev/null
AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/o \
  "$AUTODATA" run examples/sim.yaml --limit=3 --concurrency=2 --progress=plain --quiet >"$T/run.out" 2>&1
check "run with --opt=value options" grep -q "3 sources, 3 finished" "$T/run.out"
S=$T/o/store.db
"$AUTODATA" status --store "$S" --run 1 --json >"$T/st1.json" 2>&1
"$AUTODATA" status --json --store="$S" --run=1 >"$T/st2.json" 2>&1
check "status: --opt=value = --opt value" cmp -s "$T/st1.json" "$T/st2.json"
check "status: abbreviated option" bash -c "\"\$AUTODATA\" status --sto='$S' --js | grep -q '\"run\"'"
check "card: --store= --out=" bash -c "\"\$AUTODATA\" card --store='$S' --out='$T/card.md' >/dev/null && test -s '$T/card.md'"
"$AUTODATA" export --store "$S" --format rl --out "$T/e1" --holdout 1 --seed 3 >/dev/null 2>&1
"$AUTODATA" export --store="$S" --format=rl --out="$T/e2" --holdout=1 --seed=3 >/dev/null 2>&1
check "export: --opt=value = --opt value" diff -r "$T/e1" "$T/e2"
check "compare: --format=json" bash -c "\"\$AUTODATA\" compare --format=json --resamples=200 '$T/o' | grep -q '\"bootstrap\"'"
check "validate: --prompts=DIR" bash -c '"$AUTODATA" validate --prompts=prompts examples/sim.yaml | grep -q "is valid"'
check "chat: --base-url=sim --model=M" bash -c \
  '"$AUTODATA" chat --base-url=sim --model=m --retries=0 "hi" | grep -q "^usage: prompt="'
check "chat: a PROMPT after -- may start with a dash" bash -c \
  '"$AUTODATA" chat --base-url sim --model m -- "-hi" | grep -q "^usage: prompt="'
check "chat-load: --opt=value" bash -c \
  '"$AUTODATA" chat-load --base-url=sim --model=m --calls=5 --concurrency=2 --quiet | grep -q "\"ok\":5"'

finish
