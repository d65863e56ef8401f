#!/usr/bin/python3
"""peer.py - the Python + numpy peer of bench_analysis.c: the same algorithms on the same inputs
(the files bench_analysis --write DIR writes), written as a competent numpy user would write them,
timed in CPU seconds (time.process_time) so the figures are per core.

  peer.py DIR [--mb MB] [--batched]

Near-duplicates (as src/analyze/minhash.c, the defaults): words are the same normalisation
(ASCII lowercased; runs of ASCII letters, digits and bytes >= 0x80), shingles of 3 words
hashed with Python's hash(); 128 permutations h -> high 32 bits of (a_i*h + b_i) mod 2^64,
the signature computed for all shingles and permutations of a question at once (one numpy
array shingles x permutations, its minimum per column: datasketch's way); 32 bands of 4 values
into a dict of buckets; every candidate pair's exact Jaccard from Python sets; union-find.

With --batched, the signatures of 2,000 questions at a time in one array (all their shingles x
permutations, np.minimum.reduceat per question) and the LSH buckets per band by sorting the
band's keys: what a numpy expert would write to leave fewer Python-level steps per question.

Contamination (as src/analyze/contam.c): 13-grams of the same words, a polynomial rolling
hash of the word hashes computed with numpy over the whole text (13 shifted slices), the
benchmark's 13-grams in one sorted numpy array, the scan's looked up with np.searchsorted.
"""
import re
import sys
import time

import numpy as np

WORD = re.compile(rb"[a-z0-9\x80-\xff]+")
SHINGLE, PERMS, BANDS, THRESHOLD, NGRAM = 3, 128, 32, 0.7, 13
ROLL_B = np.uint64(0x100000001B3)
M64 = (1 << 64) - 1


def words(text):
    return WORD.findall(text.lower())


def shingles(ws):
    if not ws:
        return set()
    k = min(SHINGLE, len(ws))
    return {hash(tuple(ws[i : i + k])) & M64 for i in range(len(ws) - k + 1)}


def find(parent, x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def dedup(questions):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2**64, PERMS, dtype=np.uint64, endpoint=False) | np.uint64(1)
    b = rng.integers(0, 2**64, PERMS, dtype=np.uint64, endpoint=False)
    rows = PERMS // BANDS
    sets = []
    buckets = [dict() for _ in range(BANDS)]
    for i, q in enumerate(questions):
        s = shingles(words(q))
        sets.append(s)
        if not s:
            continue
        h = np.fromiter(s, dtype=np.uint64, count=len(s))
        sig = ((h[:, None] * a + b) >> np.uint64(32)).astype(np.uint32).min(axis=0)
        for band in range(BANDS):
            key = sig[band * rows : (band + 1) * rows].tobytes()
            buckets[band].setdefault(key, []).append(i)
    candidates = set()
    for bk in buckets:
        for items in bk.values():
            for x in range(len(items)):
                for y in range(x + 1, len(items)):
                    candidates.add((items[x], items[y]))
    parent = list(range(len(questions)))
    pairs = 0
    for x, y in sorted(candidates):
        sx, sy = sets[x], sets[y]
        inter = len(sx & sy)
        if inter / (len(sx) + len(sy) - inter) + 1e-12 >= THRESHOLD:
            pairs += 1
            rx, ry = find(parent, x), find(parent, y)
            if rx != ry:
                parent[ry] = rx
    return len(candidates), pairs


def dedup_batched(questions, block=2000):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2**64, PERMS, dtype=np.uint64, endpoint=False) | np.uint64(1)
    b = rng.integers(0, 2**64, PERMS, dtype=np.uint64, endpoint=False)
    rows = PERMS // BANDS
    n = len(questions)
    sets = [shingles(words(q)) for q in questions]
    sig = np.full((n, PERMS), 0xFFFFFFFF, dtype=np.uint32)
    for s0 in range(0, n, block):
        ids = [i for i in range(s0, min(n, s0 + block)) if sets[i]]
        if not ids:
            continue
        counts = np.array([len(sets[i]) for i in ids])
        h = np.fromiter((x for i in ids for x in sets[i]), dtype=np.uint64, count=int(counts.sum()))
        v = ((h[:, None] * a + b) >> np.uint64(32)).astype(np.uint32)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        sig[ids] = np.minimum.reduceat(v, starts, axis=0)
    nonempty = np.array([bool(s) for s in sets])
    candidates = set()
    for band in range(BANDS):
        k = np.ascontiguousarray(sig[:, band * rows : (band + 1) * rows]).view(np.uint64)
        key = k[:, 0] * np.uint64(0x9E3779B97F4A7C15) + k[:, 1]
        ids = np.flatnonzero(nonempty)
        order = ids[np.argsort(key[ids], kind="stable")]
        ks = key[order]
        same = np.flatnonzero(ks[1:] == ks[:-1])
        run_starts = same[np.concatenate(([True], same[1:] != same[:-1] + 1))] if len(same) else same
        for r0 in run_starts:
            r1 = r0 + 1
            while r1 + 1 < len(ks) and ks[r1 + 1] == ks[r0]:
                r1 += 1
            items = sorted(order[r0 : r1 + 1].tolist())
            for x in range(len(items)):
                for y in range(x + 1, len(items)):
                    candidates.add((items[x], items[y]))
    parent = list(range(n))
    pairs = 0
    for x, y in sorted(candidates):
        sx, sy = sets[x], sets[y]
        inter = len(sx & sy)
        if inter / (len(sx) + len(sy) - inter) + 1e-12 >= THRESHOLD:
            pairs += 1
            rx, ry = find(parent, x), find(parent, y)
            if rx != ry:
                parent[ry] = rx
    return len(candidates), pairs


def grams(text):
    ws = words(text)
    if len(ws) < NGRAM:
        return np.empty(0, dtype=np.uint64)
    h = np.fromiter((hash(w) & M64 for w in ws), dtype=np.uint64, count=len(ws))
    m = len(ws) - NGRAM + 1
    g = np.zeros(m, dtype=np.uint64)
    for j in range(NGRAM):  # sum_j h[i+j] * B^(NGRAM-1-j) mod 2^64
        g = g * ROLL_B + h[j : j + m]
    return g


def main():
    d, mb = sys.argv[1], 16
    if "--mb" in sys.argv:
        mb = int(sys.argv[sys.argv.index("--mb") + 1])
    np.seterr(over="ignore")
    with open(d + "/questions.txt", "rb") as f:
        questions = f.read().split(b"\n")[:-1]
    t0 = time.process_time()
    batched = "--batched" in sys.argv
    ncand, npairs = (dedup_batched if batched else dedup)(questions)
    t1 = time.process_time()
    n = len(questions)
    print(
        "python%s near-duplicates: %d questions, %d candidate pairs, %d pairs >= %.2f; %.3f CPU s: "
        "%.0f signatures/s/core" % (" (batched)" if batched else "", n, ncand, npairs, THRESHOLD, t1 - t0, n / (t1 - t0))
    )
    with open(d + "/benchmark.txt", "rb") as f:
        items = f.read().split(b"\n")[:-1]
    t0 = time.process_time()
    index = np.unique(np.concatenate([grams(t) for t in items]))
    t1 = time.process_time()
    ref = sum(len(t) for t in items)
    print(
        "python contamination index: %d items, %.1f MB, %d 13-grams; %.3f CPU s: %.1f MB/s/core"
        % (len(items), ref / 1e6, len(index), t1 - t0, ref / 1e6 / (t1 - t0))
    )
    with open(d + "/scan.txt", "rb") as f:
        text = f.read()
    scanned = hits = 0
    t0 = time.process_time()
    while scanned < mb * 1000000:
        g = grams(text)
        pos = np.minimum(np.searchsorted(index, g), len(index) - 1)
        hits += int(np.count_nonzero(index[pos] == g))
        scanned += len(text)
    t1 = time.process_time()
    print(
        "python contamination scan: %.1f MB scanned, %d matching 13-grams; %.3f CPU s: "
        "%.1f MB/s/core" % (scanned / 1e6, hits, t1 - t0, scanned / 1e6 / (t1 - t0))
    )


if __name__ == "__main__":
    main()
