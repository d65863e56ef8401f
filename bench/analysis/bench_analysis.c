/* bench_analysis.c - throughput of the dataset-level analysis (src/analyze/): near-duplicate
 * detection (word shingles + MinHash + LSH banding + the exact check of candidate pairs) in
 * signatures per CPU second, and the 13-gram contamination scan in MB of scanned text per CPU
 * second. Synthetic, deterministic text: questions of ~25 words from a 5,000-word vocabulary.
 * With --write DIR it also writes its inputs (questions.txt, one per line; benchmark.txt, one
 * item per line; scan.txt, the scanned text) for the Python peer (peer.py).
 *
 *   bench/analysis/run.sh [--n N] [--mb M]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyze/analyze.h"
#include "util/rng.h"

static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char vocab[5000][12];

static FILE *open_in(const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(1);
  }
  return f;
}

static char *random_text(struct rng *r, size_t words) {
  char *s = malloc(words * 12 + 1), *p = s;
  for (size_t i = 0; i < words; i++) {
    const char *w = vocab[rng_below(r, 5000)];
    size_t n = strlen(w);
    memcpy(p, w, n);
    p += n;
    *p++ = ' ';
  }
  *p = '\0';
  return s;
}

static int on_hit(void *ud, const struct an_words *w, size_t word, uint32_t item) {
  (void)w;
  (void)word;
  (void)item;
  (*(size_t *)ud)++;
  return 0;
}

int main(int argc, char **argv) {
  size_t n = 100000, mb = 64;
  const char *dir = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--n")) n = (size_t)atol(argv[i + 1]);
    if (!strcmp(argv[i], "--mb")) mb = (size_t)atol(argv[i + 1]);
    if (!strcmp(argv[i], "--write")) dir = argv[i + 1];
  }
  struct rng r;
  rng_seed(&r, 42);
  for (int i = 0; i < 5000; i++) {
    int len = 3 + (int)rng_below(&r, 8);
    for (int k = 0; k < len; k++) vocab[i][k] = (char)('a' + rng_below(&r, 26));
    vocab[i][len] = '\0';
  }
  /* near-duplicates: n questions, one in ten a copy of an earlier one with one word changed */
  char **q = malloc(n * sizeof *q);
  for (size_t i = 0; i < n; i++) {
    if (i >= 10 && i % 10 == 0) {
      q[i] = strdup(q[i - 7]);
      q[i][0] = q[i][0] == 'z' ? 'a' : (char)(q[i][0] + 1);
    } else {
      q[i] = random_text(&r, 20 + rng_below(&r, 11));
    }
  }
  if (dir) {
    FILE *f = open_in(dir, "questions.txt");
    for (size_t i = 0; i < n; i++) fprintf(f, "%s\n", q[i]);
    fclose(f);
  }
  struct an_dedup_opts o;
  an_dedup_defaults(&o);
  struct an_dedup_result res;
  double t0 = cpu_s();
  if (an_dedup(&o, (const char *const *)q, n, &res, NULL, 0)) return 1;
  double t1 = cpu_s();
  printf(
      "near-duplicates: %zu questions, %zu candidate pairs, %zu pairs >= %.2f; %.3f CPU s: "
      "%.0f signatures/s/core (shingles + %d-permutation MinHash + LSH + exact check)\n",
      n, res.candidates, res.npairs, o.threshold, t1 - t0, (double)n / (t1 - t0), o.perms);
  an_dedup_release(&res);
  for (size_t i = 0; i < n; i++) free(q[i]);
  free(q);
  /* contamination: a 10,000-item benchmark index, then mb MB of text scanned against it (a
   * 1 MB text scanned again and again; every 64 KB it quotes 20 words of a benchmark item) */
  enum { ITEMS = 10000 };
  char **item = malloc(ITEMS * sizeof *item);
  for (uint32_t i = 0; i < ITEMS; i++) item[i] = random_text(&r, 60);
  struct an_index ix;
  an_index_init(&ix, AN_NGRAM_DEFAULT);
  size_t ref_bytes = 0;
  t0 = cpu_s();
  for (uint32_t i = 0; i < ITEMS; i++) {
    ref_bytes += strlen(item[i]);
    an_index_add(&ix, item[i], strlen(item[i]), i);
  }
  t1 = cpu_s();
  printf("contamination index: %d items, %.1f MB, %zu 13-grams; %.3f CPU s: %.1f MB/s/core\n",
         ITEMS, (double)ref_bytes / 1e6, ix.grams.n, t1 - t0, (double)ref_bytes / 1e6 / (t1 - t0));
  size_t chunk = 1 << 20, hits = 0, scanned = 0;
  char *text = malloc(chunk + 256 * 1024), *p = text; /* room for the last piece */
  while ((size_t)(p - text) < chunk) {
    char *piece = random_text(&r, 64 * 1024 / 8);
    size_t m = strlen(piece);
    memcpy(p, piece, m);
    p += m;
    free(piece);
    const char *it = item[rng_below(&r, ITEMS)], *at = it;
    for (int sp = 0; sp < 20; at++) sp += *at == ' ';
    memcpy(p, it, (size_t)(at - it));
    p += at - it;
  }
  *p = '\0';
  size_t len = strlen(text);
  if (dir) {
    FILE *f = open_in(dir, "benchmark.txt");
    for (uint32_t i = 0; i < ITEMS; i++) fprintf(f, "%s\n", item[i]);
    fclose(f);
    f = open_in(dir, "scan.txt");
    fwrite(text, 1, len, f);
    fclose(f);
  }
  t0 = cpu_s();
  while (scanned < mb * 1000000) {
    an_index_scan(&ix, text, len, on_hit, &hits);
    scanned += len;
  }
  t1 = cpu_s();
  printf(
      "contamination scan: %.1f MB scanned (%zu passes over %.2f MB), %zu matching 13-grams; "
      "%.3f CPU s: %.1f MB/s/core\n",
      (double)scanned / 1e6, scanned / len, (double)len / 1e6, hits, t1 - t0,
      (double)scanned / 1e6 / (t1 - t0));
  for (uint32_t i = 0; i < ITEMS; i++) free(item[i]);
  free(item);
  free(text);
  an_index_release(&ix);
  return 0;
}
