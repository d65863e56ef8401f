#!/usr/bin/env bash
# check-layers.sh - check the module layering of src/ against src/LAYERS.
#
#   scripts/check-layers.sh [SRC_DIR]      (default: the src/ next to this script)
#
# Reads every `#include "..."` in SRC_DIR/**/*.[ch] and fails (exit 1) when a module includes
# a module that its line in SRC_DIR/LAYERS does not list, or when modules include each other
# (any cycle between modules, whatever LAYERS allows), naming file:line and the edge.  The
# module of a file is its first directory under SRC_DIR; SRC_DIR/version.h belongs to util.
# An include is resolved as the compiler does with -Isrc: next to the including file first,
# then from SRC_DIR.  Exit 2: LAYERS missing or malformed.
set -euo pipefail

src=${1:-"$(dirname "$0")/../src"}
src=${src%/}
[ -d "$src" ] || { echo "check-layers: no directory $src" >&2; exit 2; }
[ -f "$src/LAYERS" ] || { echo "check-layers: $src/LAYERS not found" >&2; exit 2; }
# Shown in messages: the path as given, or src/ when run from the repository root.
shown=$src
case "$shown" in */../src) shown=src ;; esac

mapfile -t files < <(cd "$src" && find . -name '*.[ch]' -type f | sed 's|^\./||' | LC_ALL=C sort)

awk -v shown="$shown" '
function fail(msg) { print msg; bad = 1 }
function module_of(p) {
  if (index(p, "/")) return substr(p, 1, index(p, "/") - 1)
  if (p == "version.h") return "util"
  return ""
}
function dir_of(p) { return index(p, "/") ? substr(p, 1, match(p, /\/[^\/]*$/) - 1) : "" }

# 1. LAYERS: "module: deps..."; comments (#) and blank lines ignored.
FILENAME == ARGV[1] {
  sub(/#.*/, "")
  if ($0 ~ /^[[:space:]]*$/) next
  if (!match($0, /^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*[[:space:]]*:/)) {
    print shown "/LAYERS:" FNR ": expected \"module: deps...\"" > "/dev/stderr"; malformed = 1; next
  }
  m = $0; sub(/[[:space:]]*:.*/, "", m); gsub(/[[:space:]]/, "", m)
  if (m in listed) { print shown "/LAYERS:" FNR ": module " m " listed twice" > "/dev/stderr"; malformed = 1 }
  listed[m] = 1; order[++n_mod] = m; lline[m] = FNR
  rest = $0; sub(/^[^:]*:/, "", rest)
  nd = split(rest, deps, /[[:space:]]+/)
  allow_txt[m] = ""
  for (i = 1; i <= nd; i++) if (deps[i] != "") {
    allowed[m, deps[i]] = 1; allow_txt[m] = allow_txt[m] " " deps[i]
    ledges[++n_ledge] = m SUBSEP deps[i]
  }
  next
}

# 2. The files under src/.
FILENAME == ARGV[2] {
  exists[$0] = 1; n_files++
  fm = module_of($0)
  if (fm == "") fail(shown "/" $0 ": not in a module (put it under src/<module>/)")
  else if (!(fm in listed) && !(fm in unlisted)) {
    unlisted[fm] = 1; fail(shown "/" $0 ": module " fm " has no line in " shown "/LAYERS")
  }
  next
}

# 3. grep -n output: path:line:#include "target"
{
  p = $0; sub(/:.*/, "", p)
  rest = substr($0, length(p) + 2); ln = rest; sub(/:.*/, "", ln)
  t = rest; sub(/^[^"]*"/, "", t); sub(/".*/, "", t)
  n_inc++
  fm = module_of(p)
  if (fm == "" || !(fm in listed)) next          # already reported above
  d = dir_of(p)
  if (d != "" && ((d "/" t) in exists)) tm = fm   # next to the including file
  else if (t in exists) tm = module_of(t)         # from src/
  else if (index(t, "/")) tm = module_of(t)       # a module header that is not there (yet)
  else { fail(shown "/" p ":" ln ": cannot resolve #include \"" t "\""); next }
  if (tm == fm) next
  if (!(tm in listed)) { fail(shown "/" p ":" ln ": " fm " -> " tm " (#include \"" t "\"): no module " tm " in " shown "/LAYERS"); next }
  if (!((fm, tm) in allowed))
    fail(shown "/" p ":" ln ": " fm " -> " tm " (#include \"" t "\") is not allowed; " fm " may include:" (allow_txt[fm] == "" ? " nothing" : allow_txt[fm]))
  if (!((fm, tm) in edge)) { edge[fm, tm] = shown "/" p ":" ln " (#include \"" t "\")"; n_edge++ }
}

# Strongly connected components of the module graph g[] (Floyd-Warshall closure; a dozen
# modules).  Prints every group of modules that include each other, with the edges inside it.
function cycles(g, what,    i, j, k, a, b, c, e, seen, grp, line, reach) {
  split("", reach); split("", seen)
  for (e in g) { split(e, ab, SUBSEP); reach[ab[1], ab[2]] = 1 }
  for (k = 1; k <= n_all; k++) for (i = 1; i <= n_all; i++) if ((all[i], all[k]) in reach)
    for (j = 1; j <= n_all; j++) if ((all[k], all[j]) in reach) reach[all[i], all[j]] = 1
  for (i = 1; i <= n_all; i++) {
    a = all[i]
    if ((a in seen) || !((a, a) in reach)) continue
    grp = a; seen[a] = 1
    for (j = 1; j <= n_all; j++) {
      b = all[j]
      if (b != a && ((a, b) in reach) && ((b, a) in reach)) { grp = grp " " b; seen[b] = 1 }
    }
    line = what " cycle between modules: " grp
    split(grp, mem, " ")
    for (j in mem) for (k in mem) if ((mem[j], mem[k]) in g)
      line = line "\n  " mem[j] " -> " mem[k] ": " g[mem[j], mem[k]]
    fail(line)
  }
}

END {
  if (malformed) exit 2
  for (i = 1; i <= n_mod; i++) all[++n_all] = order[i]
  for (i = 1; i <= n_ledge; i++) {
    split(ledges[i], ab, SUBSEP)
    if (!(ab[2] in listed)) { print shown "/LAYERS:" lline[ab[1]] ": " ab[1] " -> " ab[2] ": no module " ab[2] > "/dev/stderr"; exit 2 }
    lg[ab[1], ab[2]] = shown "/LAYERS:" lline[ab[1]]
  }
  cycles(lg, "LAYERS allows a")
  cycles(edge, "include")
  if (bad) { print "check-layers: FAILED (allowed edges: " shown "/LAYERS)"; exit 1 }
  printf "check-layers: %d files, %d includes, %d module edges: ok\n", n_files, n_inc, n_edge
}
' "$src/LAYERS" <(printf '%s\n' "${files[@]}") \
  <(cd "$src" && grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "${files[@]}" /dev/null || true)
