#!/bin/sh
# bench/analysis/memory.sh - peak RSS and CPU of `autodata analyze` on growing datasets: a sim
# run's store (40 sources) whose examples are replaced by N copies with random 25-word questions
# and 120-word contexts (every question distinct: the worst case for distinct-n), analysed with
# --against a 2,000-item JSONL benchmark. Needs build/autodata and python3 (sqlite3 module).
#
#   bench/analysis/memory.sh [N...]        (default: 1000 10000 100000)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
A="$BUILD/autodata"
OUT="$BUILD/bench/analysis/memory"
rm -rf "$OUT"
mkdir -p "$OUT"
"$A" sim-sources --count 40 --seed 5 --out "$OUT/src.jsonl" 2>/dev/null
AUTODATA_SIM_SOURCES=$OUT/src.jsonl AUTODATA_OUT=$OUT/r "$A" run examples/sim.yaml --quiet \
  >"$OUT/run.out" 2>&1
python3 - "$OUT/bench.jsonl" <<'PY'
import json, random, sys
rnd = random.Random(2)
vocab = ["".join(rnd.choice("abcdefghijklmnop") for _ in range(rnd.randint(3, 9))) for _ in range(20000)]
with open(sys.argv[1], "w") as f:
    for i in range(2000):
        f.write(json.dumps({"id": i, "question": " ".join(rnd.choice(vocab) for _ in range(60))}) + "\n")
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in ${*:-1000 10000 100000}; do
  "$A" export --store "$OUT/r/store.db" --format jsonl --out "$OUT/exp" >/dev/null
  python3 - "$OUT/r/store.db" "$OUT/s$n.db" "$n" "$OUT/exp/train.jsonl" <<'PY'
import json, random, shutil, sqlite3, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
shutil.copy(src, dst)
db = sqlite3.connect(dst)
# the store keeps examples compressed: read them with export (train.jsonl), write plain JSON rows
exp = sorted((json.loads(l) for l in open(sys.argv[4])), key=lambda e: e["id"])
rows = [(e["source_id"], json.dumps(e)) for e in exp]
run = db.execute("select max(id) from runs").fetchone()[0]
rnd = random.Random(1)
vocab = ["".join(rnd.choice("abcdefghijklmnop") for _ in range(rnd.randint(3, 9))) for _ in range(20000)]
db.execute("delete from examples")
for i in range(n):
    sid, ex = rows[i % len(rows)]
    e = json.loads(ex)
    e["id"] = f"x{i:07d}"
    e["question"] = " ".join(rnd.choice(vocab) for _ in range(25)) + "?"
    e["context"] = " ".join(rnd.choice(vocab) for _ in range(120))
    db.execute("insert into examples(run, example_id, source_id, example, created) values(?,?,?,?,0)",
               (run, e["id"], sid, json.dumps(e)))
db.commit()
PY
  /usr/bin/time -v "$A" analyze "$OUT/s$n.db" --json --against "$OUT/bench.jsonl" \
    >"$OUT/a$n.json" 2>"$OUT/time$n.txt"
  awk -F': ' -v n="$n" '/Maximum resident/ { rss = $2 } /User time/ { u = $2 } /System time/ { s = $2 }
    END { printf "%7d examples: peak RSS %.1f MB, CPU %.2f s (user %s + sys %s)\n", n, rss / 1024, u + s, u, s }' \
    "$OUT/time$n.txt"
  rm -f "$OUT/s$n.db"
done
