#!/usr/bin/env python3
"""feedback_stats.py RUNDIR SOURCES [SEED] - the figures of t_feedback.sh for one arm:
acceptance (share of the SOURCES sources with an accepted example), question-type entropy
(bits, over the accepted examples of dataset.jsonl) and the near-duplicate rate (accepted
examples in a near-duplicate cluster of `autodata analyze --json`, RUNDIR/analysis.json,
divided by the accepted examples), each with a 95% percentile bootstrap interval: 2000
resamples of the sources with replacement (a source brings its examples; the cluster
membership is the full run's). Prints one JSON object."""
import json, math, random, sys

run, n_src = sys.argv[1], int(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
an = json.load(open(run + "/analysis.json"))
dup = {m for c in an["near_duplicates"]["clusters"] for m in c["members"]}
per = {}  # source index -> [(type, in_cluster)]
for line in open(run + "/dataset.jsonl"):
    e = json.loads(line)
    idx = int(e["source_id"].split("-")[-1]) - 1
    per.setdefault(idx, []).append((e["question_type"], e["id"] in dup))

def figures(sample):
    types, ex, dups, acc = {}, 0, 0, 0
    for s in sample:
        rows = per.get(s, [])
        acc += bool(rows)
        for t, d in rows:
            types[t] = types.get(t, 0) + 1
            ex += 1
            dups += d
    h = -sum(c / ex * math.log2(c / ex) for c in types.values()) if ex else 0.0
    return acc / len(sample), h, (dups / ex if ex else 0.0)

point = figures(range(n_src))
rng = random.Random(seed)
boots = [figures([rng.randrange(n_src) for _ in range(n_src)]) for _ in range(2000)]
out = {}
for k, name in enumerate(["acceptance", "entropy", "near_dup_rate"]):
    v = sorted(b[k] for b in boots)
    out[name] = [round(point[k], 4), round(v[49], 4), round(v[1949], 4)]
print(json.dumps(out))
