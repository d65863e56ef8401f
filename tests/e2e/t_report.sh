#!/usr/bin/env bash
# t_report.sh - `autodata report` and the report.html that `autodata run` writes: a sim
# run's page is self-contained (no network reference), has its sections, one row per
# source of the store with the verdicts `autodata status` counts; headless Chromium loads
# it with no console message but the page's own self-test line, the filters change what
# is shown (from the URL fragment and by the self-test, checked against the page's data
# attributes and the store), and it writes a screenshot; a copied store with hostile text
# planted in a candidate and a source title renders it as text and runs nothing; two
# stores give the comparison; the trajectory sample keeps every row.
source "$(dirname "$0")/lib.sh"
T=$E2E_TMP
"$AUTODATA" sim-sources --count 16 --seed 5 --out "$T/src.jsonl" 2>/dev/null
export AUTODATA_SIM_SOURCES=$T/src.jsonl
# two rounds a source, so that the run has rejected sources as well as accepted ones
AUTODATA_ROUNDS=2 AUTODATA_OUT=$T/r "$AUTODATA" run examples/sim.yaml --quiet >"$T/run.out" 2>&1
check "sim run exits 0" test $? -eq 0
check "run writes report.html with its outputs" test -s "$T/r/report.html"
check "run prints the report's path" grep -q "^report: *$T/r/report.html" "$T/run.out"

"$AUTODATA" report "$T/r" --out "$T/rep.html" >"$T/rep.out" 2>&1
check "report exits 0" test $? -eq 0
check "report prints its path" grep -q "^report: $T/rep.html" "$T/rep.out"
check "report is regenerated from the store alone (same bytes as the run's)" \
  cmp -s "$T/r/report.html" "$T/rep.html"
"$AUTODATA" status --store "$T/r/store.db" --json >"$T/status.json"

# static checks: self-contained, sections, counts against status and the store
python3 - "$T/rep.html" "$T/status.json" "$T/r/store.db" <<'PY' >"$T/static.out" 2>&1
import json, re, sqlite3, sys
page = open(sys.argv[1], encoding="utf-8").read()
st = json.load(open(sys.argv[2]))
db = sqlite3.connect(sys.argv[3])
bad = []
if re.search(r'''(src|href)\s*=\s*["']?\s*(https?:)?//''', page, re.I): bad.append("network src/href")
if re.search(r'<link\b|@import|url\(\s*["\']?(https?:)?//', page, re.I): bad.append("external css")
if page.count("<script") != 1: bad.append("scripts: %d" % page.count("<script"))
for id_ in ("summary", "plots", "plot-acceptance", "plot-rounds", "plot-scatter", "plot-reasons",
            "plot-cost", "trajectories"):
    if ('id="%s"' % id_) not in page: bad.append("missing #" + id_)
if page.count("<svg") < 5: bad.append("svg plots: %d" % page.count("<svg"))
if 'class="region"' not in page: bad.append("no acceptance region")
rows = re.findall(r'<details class="src" data-verdict="([a-z]+)" data-reasons="([^"]*)"', page)
total = st["sources"]["total"]
if len(rows) != total: bad.append("rows %d != sources %d" % (len(rows), total))
acc = sum(1 for v, _ in rows if v == "accepted")
if acc != st["accepted"]: bad.append("accepted rows %d != status accepted %d" % (acc, st["accepted"]))
want = db.execute("select count(distinct source_id) from candidates where verdict='accepted'").fetchone()[0]
if acc != want: bad.append("accepted rows %d != store %d" % (acc, want))
for reason, n in st["rejections"].items():
    srcs = db.execute("select count(distinct source_id) from candidates where reason=?", (reason,)).fetchone()[0]
    got = sum(1 for _, r in rows if ("|%s|" % reason) in r)
    if got != srcs: bad.append("reason %s rows %d != store %d" % (reason, got, srcs))
if ("%d examples" % st["accepted"]) not in page: bad.append("summary accepted")
if ("%d: " % total) not in page: bad.append("summary sources")
ncand = db.execute("select count(*) from candidates").fetchone()[0]
if page.count('<div class="round">') != db.execute("select count(distinct source_id || '/' || round) from candidates").fetchone()[0]:
    bad.append("rounds shown %d" % page.count('<div class="round">'))
print("ok" if not bad else bad)
PY
check "page is self-contained, has its sections and the store's counts" grep -qx ok "$T/static.out" || cat "$T/static.out"

# headless Chromium: loads, runs the script without a console error, filters
BROWSER=$(command -v chromium || true)
if [ -z "$BROWSER" ]; then
  fail "chromium is installed (make test installs it: scripts/install-deps.sh with AUTODATA_TEST=1)"
else
  chrome() { timeout 120 "$BROWSER" --headless --disable-gpu --no-sandbox --no-first-run \
    --user-data-dir="$T/chrome" --enable-logging=stderr --v=0 "$@"; }
  chrome --dump-dom "file://$T/rep.html#selftest&verdict=accepted" >"$T/dom.html" 2>"$T/chrome.err"
  check "chromium dumps the DOM" test -s "$T/dom.html"
  check "the page's script ran to its end" grep -q 'data-js="ready"' "$T/dom.html"
  grep 'CONSOLE' "$T/chrome.err" >"$T/console.txt"
  check "the console holds the self-test's line" grep -q '"autodata-selftest 1"' "$T/console.txt"
  check "and nothing else (no error, no warning)" test "$(wc -l <"$T/console.txt")" -eq 1 ||
    cat "$T/console.txt"
  python3 - "$T/rep.html" "$T/dom.html" <<'PY' >"$T/dom.out" 2>&1
import html, json, re, sys
page = open(sys.argv[1], encoding="utf-8").read()
dom = open(sys.argv[2], encoding="utf-8").read()
bad = []
rows = re.findall(r'<details class="src" data-verdict="([a-z]+)" data-reasons="([^"]*)"', page)
# the fragment's filter (verdict=accepted) hid exactly the other rows
drows = re.findall(r'<details class="src"[^>]*>', dom)
hidden = sum(1 for r in drows if re.search(r'\shidden(=""|\s|>)', r))
acc = sum(1 for v, _ in rows if v == "accepted")
if len(drows) != len(rows): bad.append("dom rows %d != %d" % (len(drows), len(rows)))
if hidden != len(rows) - acc: bad.append("hidden %d != %d" % (hidden, len(rows) - acc))
if not 0 < acc < len(rows): bad.append("the run should have accepted and rejected sources")
m = re.search(r'<pre id="selftest">([^<]*)</pre>', dom)
if not m: bad.append("no self-test result")
else:
    res = json.loads(html.unescape(m.group(1)))[0]
    for v in ("accepted", "rejected", "none"):
        want = sum(1 for x, _ in rows if x == v)
        if res["verdict"].get(v) != want: bad.append("verdict %s: %s != %d" % (v, res["verdict"].get(v), want))
    if res["verdict"].get("") != len(rows): bad.append("no filter shows all")
    reasons = [k for k in res["reason"] if k]
    if not reasons: bad.append("no reason options")
    for k in reasons:
        want = sum(1 for _, r in rows if ("|%s|" % k) in r)
        if res["reason"][k] != want: bad.append("reason %s: %d != %d" % (k, res["reason"][k], want))
    if not any(res["reason"][k] < len(rows) for k in reasons): bad.append("reasons filter nothing")
    # text search: the rows whose text holds the first source id
    chunks = page.split('<details class="src"')[1:]
    q = res["q"]["text"].lower()
    want = sum(1 for c in chunks if q in html.unescape(re.sub(r"<[^>]+>", "", c.split("</details>")[0])).lower())
    if res["q"]["shown"] != want or want < 1: bad.append("search %s: %d != %d" % (q, res["q"]["shown"], want))
print("ok" if not bad else bad)
PY
  check "filters (fragment, verdict, reason, search) show the right rows" grep -qx ok "$T/dom.out"
  grep -qx ok "$T/dom.out" || cat "$T/dom.out"
  chrome --hide-scrollbars --window-size=1280,2000 --screenshot="$T/report.png" \
    "file://$T/rep.html" >/dev/null 2>&1
  check "screenshot written (PNG)" sh -c "head -c 8 '$T/report.png' | od -An -c | grep -q 'P   N   G' && test \$(stat -c %s '$T/report.png') -gt 20000"
  [ -n "${AUTODATA_REPORT_SHOT:-}" ] && cp "$T/report.png" "$AUTODATA_REPORT_SHOT"
fi

# hostile text in a copied store: escaped, runs nothing
mkdir -p "$T/h"
cp "$T/r/store.db" "$T/h/store.db"
PAYLOAD='<script>document.title="pwned"</script><img src=x onerror="document.body.setAttribute('"'"'data-pwned'"'"','"'"'1'"'"')">'
python3 - "$T/h/store.db" "$PAYLOAD" "$T/r/candidates.jsonl" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1]); p = sys.argv[2]
rowid, sid, rnd, idx = db.execute("select rowid, source_id, round, idx from candidates "
                                  "where verdict='accepted' order by rowid limit 1").fetchone()
# the store keeps records compressed: the record from the run's candidates.jsonl, written back
# as plain JSON (which the store reads as well)
r = next(c["record"] for c in map(json.loads, open(sys.argv[3]))
         if (c["source_id"], c["round"], c["index"]) == (sid, rnd, idx))
r["candidate"]["question"] = "Q " + p; r["instructions"] = "I " + p
db.execute("update candidates set record=?, reason=?, ref=NULL where rowid=?", (json.dumps(r), None, rowid))
db.execute("update sources set title=? where rowid=(select min(rowid) from sources)", ("T " + p,))
db.commit()
PY
"$AUTODATA" report "$T/h" --out "$T/hostile.html" >/dev/null 2>&1
check "report of the planted store exits 0" test $? -eq 0
check "no raw payload in the page" sh -c "! grep -qF '<script>document.title' '$T/hostile.html' && ! grep -qF '<img src=x' '$T/hostile.html'"
check "the payload is there as escaped text (question, instructions, title)" \
  test "$(grep -oF '&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;&lt;img src=x onerror=&quot;' "$T/hostile.html" | wc -l)" -ge 3
if [ -n "$BROWSER" ]; then
  chrome --dump-dom "file://$T/hostile.html#open=1" >"$T/hdom.html" 2>"$T/hchrome.err"
  check "hostile page: the script ran" grep -q 'data-js="ready"' "$T/hdom.html"
  check "hostile page: the planted handler did not run" sh -c "grep -qE '<body[^>]* data-js=\"ready\"' '$T/hdom.html' && ! grep -qE '<body[^>]*data-pwned' '$T/hdom.html'"
  check "hostile page: the planted script did not run" sh -c "! grep -q '<title>pwned' '$T/hdom.html' && grep -q '<title>autodata report' '$T/hdom.html'"
  check "hostile page: the payload shows as text" grep -qF 'Q &lt;script&gt;document.title' "$T/hdom.html"
fi

# two stores: the comparison; a sample of trajectories keeps every row
AUTODATA_OUT=$T/o "$AUTODATA" run examples/sim.yaml --quiet --method self-instruct >/dev/null 2>&1
"$AUTODATA" report "$T/r" "$T/o" --out "$T/cmp.html" --trajectories 5 >/dev/null 2>"$T/cmp.err"
check "report of two stores exits 0" test $? -eq 0 || cat "$T/cmp.err"
check "comparison section, table and overlaid distributions" sh -c \
  "grep -q 'id=\"compare\"' '$T/cmp.html' && grep -q 'id=\"plot-compare-weak\"' '$T/cmp.html' && grep -q 'acceptance' '$T/cmp.html' && grep -q 'id=\"trajectories-2\"' '$T/cmp.html'"
check "sampled: every source has a row, 5 per run have rounds" python3 - "$T/cmp.html" <<'PY'
import re, sys
page = open(sys.argv[1], encoding="utf-8").read()
runs = page.split('<article class="run"')[1:]
assert len(runs) == 2, len(runs)
for r in runs:
    rows = r.split('<details class="src"')[1:]
    assert len(rows) == 16, len(rows)
    full = sum(1 for x in rows if '<div class="round">' in x.split("</details>")[0])
    assert full == 5, full
PY
"$AUTODATA" report "$T/nope" >/dev/null 2>"$T/nope.err"
check "a missing store exits 2 naming it" sh -c "test $? -eq 2 && grep -q 'no store at $T/nope' '$T/nope.err'"
finish
