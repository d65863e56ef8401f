#!/usr/bin/env bash
# t_docs.sh - the docs cannot drift from the program: every shell block of README.md and
# docs/guide.md runs as written, in order, in a temporary folder per document, against the
# sim world, and must exit 0. Also: the README's command table names every command and every
# option of each command's --help, and the example sim recipes say how to make a missing corpus.
#
# How the blocks run:
#   - ```sh / ```bash blocks are shell; a ```yaml block whose first line is "# NAME.yaml" is
#     written to NAME.yaml (the docs say "save this as"). Other blocks are not commands.
#   - each block runs with `bash -e` in the document's folder, where build/autodata is the
#     binary under test and examples/, prompts/, scripts/ are the repository's; variables a
#     block exports reach the next block; background jobs a block starts are stopped after it.
#   - the servers and models the docs take from the environment (WEAK_URL, WEAK_MODEL, ...,
#     AUTODATA_CORPUS) point at a sim server started here and at sim models; the README's sim
#     server port 8088 becomes a free port; `make demo` runs scripts/demo.sh (what the target
#     runs after the build) with 20 sources.
#   - a block whose first line is "# [docs-test: skip: REASON]" is not run, nor a line that
#     holds "[docs-test: skip"; the test lists each of them.
# Outputs are checked by exit status and by the files existing, never by their numbers.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case "$AUTODATA" in /*) BIN=$AUTODATA ;; *) BIN=$ROOT/$AUTODATA ;; esac
T=$E2E_TMP

PORT=$(free_port)
start_sim_server "$PORT" || { fail "sim server starts"; finish; exit 1; }
PORT2=$(free_port)
while [ "$PORT2" = "$PORT" ]; do PORT2=$(free_port); done

# Extract the blocks of DOC into DIR/NNN.{sh,file,name} and DIR/skipped.
extract() {
  python3 - "$1" "$2" "$PORT2" <<'PY'
import os, re, sys
doc, out, port2 = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
lines = open(doc).read().split("\n")
n, i, skipped = 0, 0, []
while i < len(lines):
    m = re.match(r"^```(\w*)\s*$", lines[i])
    if not m:
        i += 1
        continue
    lang, start, body = m.group(1), i + 1, []
    i += 1
    while i < len(lines) and not lines[i].startswith("```"):
        body.append(lines[i])
        i += 1
    i += 1
    where = f"{os.path.basename(doc)}:{start}"
    if lang in ("sh", "bash"):
        if body and re.match(r"^\s*#\s*\[docs-test: skip", body[0]):
            skipped.append(f"{where}: block: {body[0].strip()}")
            continue
        kept = []
        for l in body:
            if "[docs-test: skip" in l:
                skipped.append(f"{where}: line: {l.strip()}")
            else:
                kept.append(l.replace("8088", port2) if os.path.basename(doc) == "README.md" else l)
        n += 1
        open(f"{out}/{n:03d}.sh", "w").write("\n".join(kept) + "\n")
        open(f"{out}/{n:03d}.where", "w").write(where)
    elif lang == "yaml" and body and re.match(r"^# ([\w.-]+\.yaml)\s*$", body[0]):
        n += 1
        open(f"{out}/{n:03d}.file", "w").write("\n".join(body) + "\n")
        open(f"{out}/{n:03d}.name", "w").write(re.match(r"^# ([\w.-]+\.yaml)", body[0]).group(1))
        open(f"{out}/{n:03d}.where", "w").write(where)
open(f"{out}/skipped", "w").write("".join(s + "\n" for s in skipped))
PY
}

# The environment the docs' commands read, pointed at the sim world.
sim_env() {
  cat <<EOF
export WEAK_URL=http://127.0.0.1:$PORT/v1 STRONG_URL=http://127.0.0.1:$PORT/v1
export AGENT_URL=http://127.0.0.1:$PORT/v1 AGENT_API_KEY=docs-test-not-a-key
export AGENT_MODEL=sim-judge WEAK_MODEL=sim-solver@0.35 STRONG_MODEL=sim-solver@0.8
export ORCHESTRATOR_MODEL=sim-orchestrator CHALLENGER_MODEL=sim-challenger
export QUALITY_MODEL=sim-quality JUDGE_MODEL=sim-judge
export AUTODATA_CORPUS=data/papers.jsonl
EOF
}

# run_doc NAME DOC: run DOC's blocks in order in $T/NAME.
run_doc() {
  local name=$1 doc=$2 dir=$T/$1 blocks=$T/$1-blocks
  mkdir -p "$dir/build" "$dir/data"
  ln -s "$BIN" "$dir/build/autodata"
  for d in examples prompts scripts; do ln -s "$ROOT/$d" "$dir/$d"; done
  "$BIN" sim-sources --count 20 --seed 5 --out "$dir/data/papers.jsonl" 2>/dev/null
  extract "$doc" "$blocks"
  sim_env >"$blocks/env"
  local b where n=0
  for b in "$blocks"/[0-9]*.where; do
    b=${b%.where}
    where=$(cat "$b.where")
    if [ -f "$b.file" ]; then
      cp "$b.file" "$dir/$(cat "$b.name")"
      ok "$where: saved as $(cat "$b.name")"
      continue
    fi
    n=$((n + 1))
    # the block, with the environment of the blocks before it; background jobs stopped after
    {
      echo 'trap '\''rc=$?; set +e; export -p >"$DOCS_ENV_NEXT"; kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; exit $rc'\'' EXIT'
      echo 'make() { case "$1" in demo) AUTODATA=build/autodata DEMO_SOURCES=20 scripts/demo.sh ;; *) echo "t_docs: make $* is not run" >&2; return 1 ;; esac; }'
      echo "source '$blocks/env'"
      echo 'set -e'
      cat "$b.sh"
    } >"$b.run"
    (cd "$dir" && DOCS_ENV_NEXT="$b.envnext" timeout 300 bash "$b.run" >"$b.out" 2>&1 </dev/null)
    local rc=$?
    if [ $rc -eq 0 ]; then
      ok "$where: block runs"
      [ -s "$b.envnext" ] && cp "$b.envnext" "$blocks/env"
    else
      fail "$where: block exits $rc" "$(tail -5 "$b.out" | tr '\n' '|')"
      sed 's/^/      | /' "$b.sh"
    fi
  done
  echo "  skipped in $(basename "$doc") (marked [docs-test: skip]):"
  sed 's/^/    /' "$blocks/skipped"
  SKIPPED=$((SKIPPED + $(wc -l <"$blocks/skipped")))
  check "$(basename "$doc"): at least one block ran" test "$n" -gt 0
}

SKIPPED=0
echo "  mapped: WEAK_URL/STRONG_URL/AGENT_URL -> sim server on port $PORT, *_MODEL -> sim models,"
echo "          README port 8088 -> $PORT2, make demo -> scripts/demo.sh with 20 sources"
run_doc readme "$ROOT/README.md"
check "README: the demo's outputs exist" test -s "$T/readme/runs/sim-demo/dataset.jsonl" -a -s "$T/readme/runs/sim-demo/DATACARD.md"
check "README: the export was written" test -s "$T/readme/runs/sim-demo/export/train.jsonl"
check "README: the recipe's run wrote its store" test -s "$T/readme/runs/my-cs-qa/store.db"
check "README: the baseline comparison ran three methods" test -s "$T/readme/runs/cmp-cot-self-instruct/store.db"
run_doc guide "$ROOT/docs/guide.md"
check "guide: the preview and the full run wrote a dataset" test -s "$T/guide/runs/my-cs-qa/dataset.jsonl"
check "guide: show --json wrote one source's story" python3 -c "
import json; d = json.load(open('$T/guide/story.json')); assert d['rounds'] and d['source']['source_id']"
check "guide: the folder corpus was read (two sources, not the subfolder)" test \
  "$(sqlite3 "$T/guide/runs/notes/store.db" 'select count(*) from sources')" -eq 2
check "skips are few (at most 4)" test "$SKIPPED" -le 4

# The README's command table: every command of `autodata help`, and every option of its --help.
check "README's command table names every command and every option" python3 - "$BIN" "$ROOT/README.md" <<'PY'
import re, subprocess, sys
exe, readme = sys.argv[1], open(sys.argv[2]).read()
helptext = subprocess.run([exe, "help"], capture_output=True, text=True).stdout
cmds = [m.group(1) for m in re.finditer(r"^  (\S+)\s", helptext, re.M)]
cmds = [c for c in cmds if c != "chat-load"]   # internal: the client load driver
bad = []
for c in cmds:
    rows = [l for l in readme.split("\n") if l.startswith(f"| `autodata {c} ") or l.startswith(f"| `autodata {c}`")]
    if not rows:
        bad.append(f"no row for {c}"); continue
    synopsis = rows[0].split("` |")[0]
    h = subprocess.run([exe, c, "--help"], capture_output=True, text=True).stdout
    for flag in re.findall(r"^\s+(--[a-z][a-z0-9-]*)", h, re.M):
        if flag != "--help" and not re.search(re.escape(flag) + r"(?![a-z-])", synopsis):
            bad.append(f"{c}: {flag} missing")
print("\n".join(bad))
sys.exit(1 if bad or len(cmds) < 10 else 0)
PY

# Example sim recipes run as written: without their corpus they say the command that makes it.
mkdir -p "$T/ex" && ln -s "$ROOT/examples" "$T/ex/examples"
for r in sim sim-verifiable; do
  (cd "$T/ex" && "$BIN" run "examples/$r.yaml" --quiet >"$T/ex/$r.out" 2>&1)
  check "examples/$r.yaml without its corpus: exit 2 (bad input)" test $? -eq 2
  check "... the error names the file" grep -q "runs/$r.*sources.jsonl: cannot open" "$T/ex/$r.out"
  cmd=$(sed -n 's/^  \(autodata sim-sources .*\)$/\1/p' "$T/ex/$r.out")
  check "... and says the sim-sources command that makes it" test -n "$cmd"
  (cd "$T/ex" && "$BIN" ${cmd#autodata } >/dev/null 2>&1 && AUTODATA_LIMIT=3 "$BIN" run "examples/$r.yaml" --quiet >/dev/null 2>&1)
  check "... which, run as printed, makes the recipe run" test $? -eq 0
done
(cd "$T/ex" && export AUTODATA_CORPUS=nope.jsonl WEAK_URL=http://127.0.0.1:9/v1 \
  STRONG_URL=http://127.0.0.1:9/v1 AGENT_URL=http://127.0.0.1:9/v1 WEAK_MODEL=w STRONG_MODEL=s \
  AGENT_MODEL=a AGENT_API_KEY=test-key-not-secret && "$BIN" run examples/cs-research.yaml >"$T/ex/cs.out" 2>&1)
check "examples/cs-research.yaml with a missing corpus: names the file" \
  grep -q "nope.jsonl: cannot open" "$T/ex/cs.out"
check "a recipe on real servers with a missing corpus gets no sim hint" bash -c "! grep -q sim-sources '$T/ex/cs.out'"
finish
