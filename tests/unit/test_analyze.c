/* test_analyze.c - analyze module: words, MinHash and LSH, union-find and the keep rule,
 * n-gram contamination, reference-file parsing, entropy and distinct-n. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"

static size_t nwords(const char *s) {
  struct an_words w = {0};
  an_words_split(&w, s, strlen(s));
  size_t n = w.n;
  an_words_release(&w);
  return n;
}

Test(analyze, words_are_normalised) {
  struct an_words a = {0}, b = {0};
  const char *x = "Hello, WORLD! It's 42.", *y = "hello world it s 42";
  an_words_split(&a, x, strlen(x));
  an_words_split(&b, y, strlen(y));
  cr_assert_eq(a.n, 5);
  cr_assert_eq(b.n, 5);
  for (size_t i = 0; i < a.n; i++) cr_assert_eq(a.h[i], b.h[i], "word %zu", i);
  cr_assert_eq(a.off[1], 7);
  cr_assert_eq(a.len[1], 5);
  an_words_release(&a);
  an_words_release(&b);
  cr_assert_eq(nwords("  ...  "), 0);
  cr_assert_eq(nwords("caf\xc3\xa9 na\xc3\xafve"), 2, "UTF-8 words stay whole");
}

Test(analyze, jaccard_exact) {
  uint64_t a[] = {1, 2, 3, 4}, b[] = {3, 4, 5, 6, 7, 8};
  cr_assert_float_eq(an_jaccard(a, 4, b, 6), 2.0 / 8.0, 1e-12);
  cr_assert_float_eq(an_jaccard(a, 4, a, 4), 1.0, 1e-12);
  cr_assert_float_eq(an_jaccard(a, 0, b, 0), 1.0, 1e-12);
  cr_assert_float_eq(an_jaccard(a, 4, b, 0), 0.0, 1e-12);
}

/* Sets with a known Jaccard: the MinHash estimate (share of equal signature values) is
 * within 4 standard deviations of it, for several similarities. */
Test(analyze, minhash_estimates_known_jaccard) {
  struct an_dedup_opts o;
  an_dedup_defaults(&o);
  const double want[] = {0.0, 0.2, 1.0 / 3.0, 0.5, 0.8, 0.95, 1.0};
  for (size_t t = 0; t < sizeof want / sizeof *want; t++) {
    /* |A| = |B| = 1000, |A ∩ B| = i: J = i / (2000 - i). */
    size_t inter = (size_t)lround(2000 * want[t] / (1 + want[t]));
    uint64_t *a = malloc(1000 * sizeof *a), *b = malloc(1000 * sizeof *b);
    for (size_t i = 0; i < 1000; i++) {
      a[i] = 0x1000 + i * 7919;
      b[i] = i < inter ? a[i] : 0x10000000 + i * 104729;
    }
    double exact = an_jaccard(a, 1000, a, 1000) * 0 + (double)inter / (2000.0 - (double)inter);
    uint32_t sa[128], sb[128];
    an_minhash(&o, a, 1000, sa);
    an_minhash(&o, b, 1000, sb);
    int eq = 0;
    for (int i = 0; i < 128; i++) eq += sa[i] == sb[i];
    double est = eq / 128.0, sd = sqrt(exact * (1 - exact) / 128.0);
    cr_assert(fabs(est - exact) <= 4 * sd + 1e-9, "J %.3f: estimate %.3f", exact, est);
    free(a);
    free(b);
  }
}

static const char *base =
    "Which measurement of the coastal wetland survey best explains the drop in nitrogen "
    "retention after the second flooding season, and why does it matter for restoration?";

Test(analyze, dedup_finds_near_duplicates_not_unrelated) {
  const char *texts[] = {
      base,
      /* one word changed: near-duplicate */
      "Which measurement of the coastal wetland survey best explains the drop in nitrogen "
      "retention after the second flooding season, and why does it matter for recovery?",
      "Explain how the gradient clipping threshold interacts with the learning-rate warmup in "
      "the transformer experiments of section four.",
      /* exact copy, different case and punctuation */
      "which MEASUREMENT of the coastal wetland survey best explains the drop in nitrogen "
      "retention after the second flooding season and why does it matter for restoration",
      "",
      "What does the table of pooled runs report for the baseline condition?",
  };
  struct an_dedup_opts o;
  an_dedup_defaults(&o);
  struct an_dedup_result r;
  cr_assert_eq(an_dedup(&o, texts, 6, &r, NULL, 0), 0);
  cr_assert_eq(r.npairs, 3, "pairs: %zu", r.npairs); /* 0-1, 0-3, 1-3 */
  cr_assert_eq(r.root[0], r.root[1]);
  cr_assert_eq(r.root[0], r.root[3]);
  cr_assert_neq(r.root[0], r.root[2]);
  cr_assert_neq(r.root[0], r.root[5]);
  cr_assert_neq(r.root[2], r.root[5]);
  cr_assert_neq(r.root[4], r.root[0], "an empty text is nobody's duplicate");
  for (size_t i = 0; i < r.npairs; i++) {
    cr_assert_lt(r.pairs[i].a, r.pairs[i].b);
    cr_assert_geq(r.pairs[i].jaccard, o.threshold);
  }
  cr_assert_float_eq(r.pairs[1].jaccard, 1.0, 1e-12, "0-3 identical after normalisation");
  an_dedup_release(&r);
  /* A threshold above the one-word change's similarity keeps only the exact copy. */
  o.threshold = 0.95;
  cr_assert_eq(an_dedup(&o, texts, 6, &r, NULL, 0), 0);
  cr_assert_eq(r.npairs, 1);
  cr_assert_eq(r.pairs[0].a, 0);
  cr_assert_eq(r.pairs[0].b, 3);
  an_dedup_release(&r);
  char err[256] = "";
  o.bands = 30;
  cr_assert_eq(an_dedup(&o, texts, 6, &r, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "bands"), "%s", err);
}

Test(analyze, union_find_clusters) {
  struct an_uf u;
  an_uf_init(&u, 6);
  an_uf_union(&u, 0, 1);
  an_uf_union(&u, 4, 5);
  an_uf_union(&u, 1, 5);
  cr_assert_eq(an_uf_find(&u, 0), an_uf_find(&u, 4));
  cr_assert_eq(an_uf_find(&u, 1), an_uf_find(&u, 5));
  cr_assert_neq(an_uf_find(&u, 2), an_uf_find(&u, 0));
  cr_assert_neq(an_uf_find(&u, 2), an_uf_find(&u, 3));
  an_uf_union(&u, 2, 2);
  cr_assert_eq(an_uf_find(&u, 2), 2);
  an_uf_release(&u);
}

Test(analyze, keep_rule) {
  cr_assert(an_keep_first(0.5, "b", 0.3, "a"), "the larger gap is kept");
  cr_assert_not(an_keep_first(0.3, "a", 0.5, "b"));
  cr_assert(an_keep_first(0.4, "a", 0.4, "b"), "equal gaps: the smaller id");
  cr_assert_not(an_keep_first(0.4, "b", 0.4, "a"));
}

struct hits {
  uint32_t items[16];
  size_t n;
};
static int on_hit(void *ud, const struct an_words *w, size_t word, uint32_t item) {
  (void)w;
  (void)word;
  struct hits *h = ud;
  if (h->n < 16) h->items[h->n++] = item;
  return 0;
}

Test(analyze, ngram_overlap_normalised) {
  struct an_index ix;
  an_index_init(&ix, 13);
  const char *bench0 =
      "The quick brown fox jumps over the lazy dog while the farmer sleeps under "
      "an old oak tree.";
  const char *bench1 = "A short item.";
  cr_assert_eq(an_index_add(&ix, bench0, strlen(bench0), 0), 18 - 13 + 1);
  cr_assert_eq(an_index_add(&ix, bench1, strlen(bench1), 1), 0, "fewer than 13 words: no gram");
  /* 13 consecutive words of item 0, other case and punctuation: one match. */
  const char *t1 =
      "Intro: THE quick, brown fox -- jumps over the lazy dog; while the farmer "
      "sleeps. The end.";
  struct hits h = {0};
  cr_assert_eq(an_index_scan(&ix, t1, strlen(t1), on_hit, &h), 1);
  cr_assert_eq(h.items[0], 0);
  /* 12 of them: none. */
  const char *t2 = "the quick brown fox jumps over the lazy dog while the farmer naps";
  cr_assert_eq(an_index_scan(&ix, t2, strlen(t2), NULL, NULL), 0);
  const char *t3 = "A short item.";
  cr_assert_eq(an_index_scan(&ix, t3, strlen(t3), NULL, NULL), 0);
  an_index_release(&ix);
}

struct items {
  int lines[8];
  char text[8][128];
  int n;
};
static int on_item(void *ud, int line, const char *text, size_t len) {
  struct items *it = ud;
  if (it->n < 8) {
    it->lines[it->n] = line;
    snprintf(it->text[it->n], sizeof it->text[0], "%.*s", (int)len, text);
    it->n++;
  }
  return 0;
}

Test(analyze, reference_files) {
  const char *jl =
      "{\"id\": \"q1\", \"question\": \"What is X?\", \"answer\": \"Y\"}\n"
      "\n"
      "{\"question\": \"Nested?\", \"meta\": {\"question\": \"deep\", \"n\": 3}}\n";
  struct items it = {0};
  const char *f1[] = {"question"};
  cr_assert_eq(an_against_parse(jl, strlen(jl), "b.jsonl", f1, 1, on_item, &it, NULL, 0), 0);
  cr_assert_eq(it.n, 2);
  cr_assert_eq(it.lines[0], 1);
  cr_assert_str_eq(it.text[0], "What is X?");
  cr_assert_eq(it.lines[1], 3);
  cr_assert_str_eq(it.text[1], "Nested?\ndeep");
  memset(&it, 0, sizeof it);
  cr_assert_eq(an_against_parse(jl, strlen(jl), "b.jsonl", NULL, 0, on_item, &it, NULL, 0), 0);
  cr_assert_str_eq(it.text[0], "What is X?\nY", "every field but the id");
  const char *txt = "first paragraph\nstill first\n\n  \nsecond one\n\nthird";
  memset(&it, 0, sizeof it);
  cr_assert_eq(an_against_parse(txt, strlen(txt), "b.txt", NULL, 0, on_item, &it, NULL, 0), 0);
  cr_assert_eq(it.n, 3);
  cr_assert_str_eq(it.text[0], "first paragraph\nstill first");
  cr_assert_eq(it.lines[1], 5);
  cr_assert_str_eq(it.text[2], "third");
  cr_assert_eq(it.lines[2], 7);
  const char *bad = "{\"q\": 1}\n{\"q\": \n";
  char err[256] = "";
  cr_assert_eq(
      an_against_parse(bad, strlen(bad), "b.jsonl", NULL, 0, on_item, &it, err, sizeof err),
      AD_EINVAL);
  cr_assert(!strncmp(err, "b.jsonl:2: ", 11), "%s", err);
  const char *arr = "{\"q\": 1}\n[1]\n";
  cr_assert_eq(
      an_against_parse(arr, strlen(arr), "c.jsonl", NULL, 0, on_item, &it, err, sizeof err),
      AD_EINVAL);
  cr_assert(strstr(err, "c.jsonl:2: a JSONL line must be an object"), "%s", err);
}

Test(analyze, entropy) {
  size_t u[] = {5, 5, 5, 5}, one[] = {7, 0, 0}, half[] = {3, 1};
  cr_assert_float_eq(an_entropy(u, 4), 2.0, 1e-12);
  cr_assert_float_eq(an_entropy(one, 3), 0.0, 1e-12);
  cr_assert_float_eq(an_entropy(half, 2), -(0.75 * log2(0.75) + 0.25 * log2(0.25)), 1e-12);
  cr_assert_float_eq(an_entropy(u, 0), 0.0, 1e-12);
}

Test(analyze, distinct_n) {
  struct an_distinct d = {0};
  const char *t = "a b a b";
  an_distinct_add(&d, t, strlen(t));
  cr_assert_float_eq(an_distinct_value(&d, 1), 2.0 / 4.0, 1e-12);
  cr_assert_float_eq(an_distinct_value(&d, 2), 2.0 / 3.0, 1e-12); /* ab ba ab */
  cr_assert_float_eq(an_distinct_value(&d, 3), 2.0 / 2.0, 1e-12); /* aba bab */
  an_distinct_add(&d, t, strlen(t));
  cr_assert_float_eq(an_distinct_value(&d, 1), 2.0 / 8.0, 1e-12, "across texts");
  cr_assert_float_eq(an_distinct_value(&d, 3), 2.0 / 4.0, 1e-12);
  an_distinct_release(&d);
}

/* The set: key 0 and other keys, values kept as first added (0 or not), growth, and every key
 * listed once by an_set_next. */
Test(analyze, set_keys_values_and_listing) {
  struct an_set s = {0};
  cr_assert_eq(an_set_get(&s, 0, NULL), 0);
  cr_assert_eq(an_set_get(&s, 5, NULL), 0);
  for (uint64_t k = 0; k < 1000; k++) cr_assert_eq(an_set_add(&s, k * 0x9e3779b97f4a7c15ull, 0), 1);
  cr_assert_eq(an_set_add(&s, 0, 7), 0, "already there: the first value stays");
  cr_assert_eq(an_set_add(&s, 42, 9), 1);
  cr_assert_eq(s.n, 1001);
  uint32_t v = 1;
  cr_assert(an_set_get(&s, 0, &v) && v == 0);
  cr_assert(an_set_get(&s, 42, &v) && v == 9);
  cr_assert(an_set_get(&s, 3 * 0x9e3779b97f4a7c15ull, &v) && v == 0);
  cr_assert_eq(an_set_get(&s, 43, NULL), 0);
  size_t pos = 0, listed = 0;
  uint64_t key, sum = 0;
  while (an_set_next(&s, &pos, &key)) {
    listed++;
    sum += key;
  }
  uint64_t want = 42;
  for (uint64_t k = 0; k < 1000; k++) want += k * 0x9e3779b97f4a7c15ull;
  cr_assert_eq(listed, 1001);
  cr_assert_eq(sum, want);
  an_set_release(&s);
}

/* Batched feedback (feed.c): near-duplicates found as examples arrive, over-represented
 * types named, the note's lines only when they have something to say. */
Test(analyze, feed_note_names_types_and_clusters) {
  struct an_feed *f = an_feed_new();
  char *note = an_feed_note(f);
  cr_assert(strstr(note, "DATASET NOTE: what the 0 examples"));
  cr_assert_null(strstr(note, "Over-represented"));
  cr_assert_null(strstr(note, "Near-duplicate"));
  free(note);
  const char *stock =
      "Using the reported values of the main protocol and the controls of the "
      "study reason about which quantity dominates the overall response of the "
      "system and state every value first: ";
  char q[512];
  for (int i = 0; i < 6; i++) { /* the same long wording, a different short tail */
    snprintf(q, sizeof q, "%sF-%04x and F-%04x.", stock, 0x1000 + i, 0x2000 + i);
    an_feed_add(f, "quantitative reasoning", q, "A source with F-1000 = 12 in it.");
  }
  an_feed_add(f, "comparison", "Compare the two lakes by depth.", NULL);
  an_feed_add(f, "definition", "What is a condensate droplet in this paper?", NULL);
  cr_assert_eq(an_feed_examples(f), 8);
  cr_assert_eq(an_feed_duplicates(f), 6);
  note = an_feed_note(f);
  cr_assert(strstr(note, "- Over-represented question types: quantitative reasoning (75%)."), "%s",
            note);
  cr_assert_null(strstr(note, "comparison ("), "%s", note);
  cr_assert(strstr(note,
                   "steer away from this wording: \"Using the reported values of the main "
                   "protocol ...\" (6 near-identical questions)"),
            "%s", note);
  cr_assert(strstr(note, "- Parts of the sources used:"), "%s", note);
  free(note);
  an_feed_free(f);
}
