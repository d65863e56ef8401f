#!/usr/bin/env bash
# bench/reward/run.sh - `autodata reward-server` throughput: POST /v1/reward requests at 256 in
# flight over loopback against a sim dataset (in-process sim judge), first with every response
# new (one judge call each), then the same responses again (answered from the cache store).
# Prints requests/s and the server's CPU time per request. Release binary $AUTODATA.
set -euo pipefail
cd "$(dirname "$0")/../.."
AUTODATA=${AUTODATA:-build/autodata}
INFLIGHT=${BENCH_INFLIGHT:-256}
TOTAL=${BENCH_REQUESTS:-10240}
T=$(mktemp -d /tmp/autodata-bench-reward.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
"$AUTODATA" sim-sources --count 30 --seed 1 --out "$T/src.jsonl" 2>/dev/null
AUTODATA_SIM_SOURCES=$T/src.jsonl AUTODATA_OUT=$T/run "$AUTODATA" run examples/sim.yaml --quiet >/dev/null 2>&1
python3 - "$T" "$TOTAL" <<'PY'
import json, sys
t, n = sys.argv[1], int(sys.argv[2])
ds = [json.loads(l) for l in open(f"{t}/run/dataset.jsonl")]
with open(f"{t}/bodies.jsonl", "w") as f:
    for i in range(n):
        d = ds[i % len(ds)]
        f.write(json.dumps({"body": {"id": d["id"], "response": d["reference_answer"] + f" (variant {i})"}}) + "\n")
PY
"$AUTODATA" reward-server "$T/run" --port 0 --cache "$T/cache.db" --quiet >"$T/rs.out" 2>&1 &
PID=$!
for _ in $(seq 1 200); do grep -q listening "$T/rs.out" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$T/rs.out")
echo "reward-server: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo -n "new responses (a judge call each):  "
python3 bench/reward/load.py "$PORT" "$T/bodies.jsonl" "$INFLIGHT" "$TOTAL" "$PID"
echo -n "the same responses (from the cache): "
python3 bench/reward/load.py "$PORT" "$T/bodies.jsonl" "$INFLIGHT" "$TOTAL" "$PID"
