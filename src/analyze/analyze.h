/* analyze.h - dataset-level analysis of a run's accepted examples (docs/analyze.md):
 * near-duplicates (MinHash over word shingles, LSH banding, an exact Jaccard check of
 * every candidate pair, union-find clusters, one example kept per cluster), contamination
 * against the user's files (normalised 13-gram overlap) and diversity (question types and
 * their entropy, distinct-n, source coverage, lengths, rubric size, weak-mean histogram).
 *
 * The pieces are pure and small (text.c, minhash.c, contam.c, against.c, diversity.c);
 * analyze.c reads a run's examples from the store and puts them together into one JSON
 * document. Nothing here writes the store or a file.
 *
 * Text normalisation, one for every step: ASCII letters are lowercased; a word is a maximal
 * run of ASCII letters and digits or of bytes >= 0x80 (so UTF-8 words stay whole);
 * everything else (spaces, punctuation) separates words. A word is identified by its XXH3
 * hash.
 */
#ifndef AD_ANALYZE_H
#define AD_ANALYZE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"
#include "util/err.h"

/* ======== Words (text.c) ======== */

/* The words of a text: their hashes and where each starts and ends in the text. */
struct an_words {
  size_t n, cap;
  uint64_t *h;
  uint32_t *off, *len;
};
/* Append the words of text[0..n) to w (w zeroed, or from an earlier call). */
void an_words_split(struct an_words *w, const char *text, size_t n);
void an_words_release(struct an_words *w);
/* The hash of the k words starting at word i (i + k <= w->n). */
uint64_t an_gram_hash(const struct an_words *w, size_t i, size_t k);

/* A set of 64-bit keys, each with a 32-bit value (open addressing, linear probing; key 0 is
 * allowed). 8 bytes per slot, and 4 more once a value other than 0 is added: the empty slot is
 * key 0, and the key 0 itself is kept aside. */
struct an_set {
  size_t n, cap; /* cap: a power of two */
  uint64_t *keys;
  uint32_t *vals; /* NULL while every value is 0 */
  int has_zero;   /* key 0 is in the set, with value zero_val */
  uint32_t zero_val;
};
/* Insert key with val; when it is already there its value is kept. Returns 1 when new. */
int an_set_add(struct an_set *s, uint64_t key, uint32_t val);
/* 1 and *val (may be NULL) when key is in the set, else 0. */
int an_set_get(const struct an_set *s, uint64_t key, uint32_t *val);
/* A hint: key will be looked up soon (fetches its slot's cache line). */
void an_set_prefetch(const struct an_set *s, uint64_t key);
/* The keys one by one: *pos = 0 first; 1 and *key while there is one, then 0. */
int an_set_next(const struct an_set *s, size_t *pos, uint64_t *key);
void an_set_release(struct an_set *s);

/* ======== Near-duplicates (minhash.c) ======== */

struct an_dedup_opts {
  double threshold; /* Jaccard similarity at or above which two examples are duplicates */
  int shingle;      /* words per shingle (default 3) */
  int perms;        /* MinHash permutations (default 128) */
  int bands;        /* LSH bands (default 32; perms % bands == 0) */
  uint64_t seed;    /* the permutations' seed */
};
/* The defaults: threshold 0.7, shingles of 3 words, 128 permutations in 32 bands of 4. */
void an_dedup_defaults(struct an_dedup_opts *o);

/* The sorted, distinct shingle hashes of w (k words each; a text shorter than k words is one
 * shingle of all its words, an empty text none) into *out (owned by the caller, free()). */
size_t an_shingles(const struct an_words *w, int k, uint64_t **out);
/* |A ∩ B| / |A ∪ B| of two sorted distinct sets; 1 when both are empty. */
double an_jaccard(const uint64_t *a, size_t na, const uint64_t *b, size_t nb);
/* The MinHash signature (perms values) of a shingle set. */
void an_minhash(const struct an_dedup_opts *o, const uint64_t *sh, size_t n, uint32_t *sig);

/* Union-find over n items. */
struct an_uf {
  uint32_t *parent, *rank;
  size_t n;
};
void an_uf_init(struct an_uf *u, size_t n);
uint32_t an_uf_find(struct an_uf *u, uint32_t x);
void an_uf_union(struct an_uf *u, uint32_t a, uint32_t b);
void an_uf_release(struct an_uf *u);

struct an_pair {
  uint32_t a, b; /* a < b */
  double jaccard;
};
struct an_dedup_result {
  size_t candidates;     /* distinct pairs that shared an LSH bucket */
  struct an_pair *pairs; /* the candidate pairs at or above the threshold, sorted (a, b) */
  size_t npairs;
  uint32_t *root; /* root[i]: the cluster of item i (equal roots, same cluster) */
};
/* Find the near-duplicate pairs among n texts and cluster them. 0, or AD_EINVAL for bad
 * options (a message in err). The result is released with an_dedup_release. */
AD_WUR int an_dedup(const struct an_dedup_opts *o, const char *const *texts, size_t n,
                    struct an_dedup_result *res, char *err, size_t errlen);
void an_dedup_release(struct an_dedup_result *r);

/* The keep rule of a cluster: the example with the larger gap (strong mean - weak mean:
 * the more discriminating one), then the smaller id. 1 when (gap_a, id_a) is kept over
 * (gap_b, id_b). */
int an_keep_first(double gap_a, const char *id_a, double gap_b, const char *id_b);

/* ======== Contamination (contam.c, against.c) ======== */

#define AN_NGRAM_DEFAULT 13

/* The n-grams of the reference items, each mapped to its first item. */
struct an_index {
  int n; /* words per n-gram */
  struct an_set grams;
  size_t items;
  /* A Bloom filter of grams (two bits per gram in one 64-bit word, ~16 bits per gram): most
   * scanned n-grams are in no reference item and the filter, small enough for the cache,
   * turns them away without a lookup in the set. */
  uint64_t *filter;
  size_t filter_mask; /* words - 1 (a power of two minus one) */
};
void an_index_init(struct an_index *ix, int n);
/* Add the n-grams of text as item number item; returns how many n-grams the text has. */
size_t an_index_add(struct an_index *ix, const char *text, size_t len, uint32_t item);
void an_index_release(struct an_index *ix);

/* Called for each n-gram of a scanned text that is in the index: its first word's number
 * in w, and the item it came from. Return nonzero to stop. */
typedef int (*an_match_fn)(void *ud, const struct an_words *w, size_t word, uint32_t item);
/* Scan text against the index; returns the number of matching n-grams (or, when fn stops
 * the scan, the count up to then). */
size_t an_index_scan(const struct an_index *ix, const char *text, size_t len, an_match_fn fn,
                     void *ud);

/* A reference file: JSONL (first non-space byte '{': one item per line; its text the
 * string values of the named fields, or of every field when nfields is 0, nested objects
 * and arrays included, keys "id" and "*_id" and "*hashes" skipped) or text (one item per
 * paragraph, paragraphs separated by blank lines). fn gets each item's label ("line N")
 * and text. 0, or AD_EINVAL with "NAME:LINE: ..." in err for a JSONL line that does not
 * parse or is not an object. */
typedef int (*an_item_fn)(void *ud, int line, const char *text, size_t len);
AD_WUR int an_against_parse(const char *data, size_t len, const char *name,
                            const char *const *fields, size_t nfields, an_item_fn fn, void *ud,
                            char *err, size_t errlen);

/* ======== Diversity (diversity.c) ======== */

/* Shannon entropy in bits of a distribution given as counts (zeros allowed). */
double an_entropy(const size_t *counts, size_t k);

/* distinct-n: distinct n-grams / all n-grams over a set of texts, n = 1..3. */
struct an_distinct {
  struct an_set seen[3];
  size_t total[3];
};
void an_distinct_add(struct an_distinct *d, const char *text, size_t len);
/* distinct-n for n in 1..3 (0 when there is no n-gram). */
double an_distinct_value(const struct an_distinct *d, int n);
void an_distinct_release(struct an_distinct *d);

/* ======== Batched dataset-level feedback (feed.c) ======== */

/* An incremental analysis of accepted examples added one at a time, in an order the caller
 * fixes (the run: source order), and the dataset note it gives (docs/analyze.md). */
struct an_feed;
struct an_feed *an_feed_new(void);
void an_feed_free(struct an_feed *f);
/* Add one accepted example: its question type, its question, and its source's text (may be
 * NULL: the note then says nothing about the parts of the sources used). */
void an_feed_add(struct an_feed *f, const char *qtype, const char *question,
                 const char *source_text);
size_t an_feed_examples(const struct an_feed *f);
/* Examples in near-duplicate clusters (Jaccard >= 0.7 over 3-word shingles). */
size_t an_feed_duplicates(const struct an_feed *f);
/* The note on what was added so far (a new string, caller frees): a heading line, then
 * "- Over-represented question types: T (S%); ...", "- Near-duplicate questions, steer away
 * from this wording: "FIRST WORDS ..." (N near-identical questions); ...", "- Parts of the
 * sources used: ...", each line only when it has something to say. */
char *an_feed_note(const struct an_feed *f);

/* ======== A run's analysis (analyze.c) ======== */

struct an_opts {
  struct an_dedup_opts dedup;
  int ngram;                  /* words per contamination n-gram (default 13) */
  const char *const *against; /* reference files */
  size_t nagainst;
  const char *const *fields; /* JSONL fields of the reference files; none = every field */
  size_t nfields;
  const char *export_dir;       /* an export folder: heldout.jsonl against train.jsonl */
  int max_listed;               /* n-grams listed per contaminated example (default 3) */
  const json_t *removed_before; /* example id -> {"reason", "detail"?}: removed by an earlier
                                   step (the end-of-loop quality pass); NULL: none. Such an
                                   example is not scanned and never kept in a cluster */
};
void an_opts_defaults(struct an_opts *o);

/* Analyse run (0 = latest) of st. *out is a new object (caller decrefs):
 * {"run", "examples", "near_duplicates": {...}, "contamination": {...}, "split": {...}?,
 *  "diversity": {...}, "removed": [{"id", "source_id", "reason", "detail"}], "kept"}
 * (docs/analyze.md gives every field). 0, AD_ENOTFOUND (no such run), AD_EIO (a reference
 * file that cannot be read), AD_EINVAL (bad options or a bad reference file), or a store
 * read error; a message in err. */
AD_WUR int an_run(store *st, store_id run, const struct an_opts *o, json_t **out, char *err,
                  size_t errlen);

/* The text summary of an analysis document, printed to f. */
void an_print_summary(const json_t *doc, FILE *f);

#endif
