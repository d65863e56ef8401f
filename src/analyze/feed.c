/* feed.c - batched dataset-level feedback (docs/analyze.md, "Batched feedback"): an
 * incremental analysis of the accepted examples, added one at a time in a fixed order, and
 * the short dataset note it gives the orchestrator (or the challenger): over-represented
 * question types, near-duplicate clusters to steer away from, parts of the sources left
 * unused. Incremental: each example's MinHash bands go into one bucket index and only the
 * questions sharing a bucket with it are compared, so adding an example costs its own
 * signature and a few exact Jaccard checks, never a pass over the set. */
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/mem.h"

#define FEED_TYPES 64        /* distinct question types counted; the rest are "other" */
#define FEED_LISTED 3        /* types and clusters named in a note */
#define FEED_QUOTE_WORDS 8   /* words of a cluster's first question quoted */
#define FEED_OVER_FACTOR 1.5 /* a type is over-represented at this many even shares */

struct feed_item {
  uint64_t *sh; /* sorted distinct shingle hashes */
  size_t nsh;
  char *quote; /* the question's first words, as written */
};

struct an_feed {
  struct an_dedup_opts o;
  char *type_name[FEED_TYPES + 1];
  size_t type_n[FEED_TYPES + 1], ntypes;
  struct feed_item *items;
  size_t n, cap;
  struct an_set heads; /* band key -> the first item in that bucket */
  uint32_t *link;      /* link[item * bands + band]: the next item in the bucket, or UINT32_MAX */
  uint32_t *parent, *size, *first; /* union-find; size and first member per root */
  size_t parts[3];                 /* question words found in each third of their source */
};

struct an_feed *an_feed_new(void) {
  struct an_feed *f = xcalloc(1, sizeof *f);
  an_dedup_defaults(&f->o);
  return f;
}

void an_feed_free(struct an_feed *f) {
  if (!f) return;
  for (size_t i = 0; i < f->ntypes; i++) free(f->type_name[i]);
  for (size_t i = 0; i < f->n; i++) {
    free(f->items[i].sh);
    free(f->items[i].quote);
  }
  free(f->items);
  an_set_release(&f->heads);
  free(f->link);
  free(f->parent);
  free(f->size);
  free(f->first);
  free(f);
}

size_t an_feed_examples(const struct an_feed *f) { return f->n; }

static uint32_t find(struct an_feed *f, uint32_t x) {
  while (f->parent[x] != x) {
    f->parent[x] = f->parent[f->parent[x]];
    x = f->parent[x];
  }
  return x;
}

static void unite(struct an_feed *f, uint32_t a, uint32_t b) {
  a = find(f, a);
  b = find(f, b);
  if (a == b) return;
  if (f->size[a] < f->size[b]) {
    uint32_t t = a;
    a = b;
    b = t;
  }
  f->parent[b] = a;
  f->size[a] += f->size[b];
  if (f->first[b] < f->first[a]) f->first[a] = f->first[b];
}

static void count_type(struct an_feed *f, const char *qtype) {
  const char *t = qtype && qtype[0] ? qtype : "(none)";
  for (size_t i = 0; i < f->ntypes; i++)
    if (!strcmp(f->type_name[i], t)) {
      f->type_n[i]++;
      return;
    }
  if (f->ntypes < FEED_TYPES) {
    f->type_name[f->ntypes] = xstrdup(t);
    f->type_n[f->ntypes++] = 1;
  } else {
    if (!f->type_name[FEED_TYPES]) f->type_name[FEED_TYPES] = xstrdup("other");
    f->type_n[FEED_TYPES]++;
  }
}

/* Where in its source the question draws from: each question word that occurs exactly
 * once in the source is counted in the third of the source where it stands. */
static void count_parts(struct an_feed *f, const struct an_words *q, const char *src) {
  if (!src || !src[0] || !q->n) return;
  struct an_words s = {0};
  an_words_split(&s, src, strlen(src));
  struct an_set seen = {0}, twice = {0}; /* word -> its first index; words seen again */
  for (size_t i = 0; i < s.n; i++)
    if (!an_set_add(&seen, s.h[i], (uint32_t)i)) an_set_add(&twice, s.h[i], 0);
  for (size_t i = 0; i < q->n; i++) {
    uint32_t at;
    if (an_set_get(&seen, q->h[i], &at) && !an_set_get(&twice, q->h[i], NULL))
      f->parts[3 * (size_t)at / s.n]++;
  }
  an_set_release(&seen);
  an_set_release(&twice);
  an_words_release(&s);
}

void an_feed_add(struct an_feed *f, const char *qtype, const char *question,
                 const char *source_text) {
  count_type(f, qtype);
  if (f->n == f->cap) {
    f->cap = f->cap ? 2 * f->cap : 64;
    f->items = xrealloc(f->items, f->cap * sizeof *f->items);
    f->link = xrealloc(f->link, f->cap * (size_t)f->o.bands * sizeof *f->link);
    f->parent = xrealloc(f->parent, f->cap * sizeof *f->parent);
    f->size = xrealloc(f->size, f->cap * sizeof *f->size);
    f->first = xrealloc(f->first, f->cap * sizeof *f->first);
  }
  uint32_t id = (uint32_t)f->n++;
  struct feed_item *it = &f->items[id];
  f->parent[id] = f->first[id] = id;
  f->size[id] = 1;
  const char *q = question ? question : "";
  struct an_words w = {0};
  an_words_split(&w, q, strlen(q));
  size_t k = w.n < FEED_QUOTE_WORDS ? w.n : FEED_QUOTE_WORDS;
  it->quote = k ? xstrndup(q + w.off[0], w.off[k - 1] + w.len[k - 1] - w.off[0]) : xstrdup("");
  it->nsh = an_shingles(&w, f->o.shingle, &it->sh);
  count_parts(f, &w, source_text);
  an_words_release(&w);
  int bands = f->o.bands, rows = f->o.perms / f->o.bands;
  for (int b = 0; b < bands; b++) f->link[(size_t)id * (size_t)bands + (size_t)b] = UINT32_MAX;
  if (!it->nsh) return; /* an empty question is nobody's duplicate */
  uint32_t *sig = xmalloc((size_t)f->o.perms * sizeof *sig);
  an_minhash(&f->o, it->sh, it->nsh, sig);
  for (int b = 0; b < bands; b++) {
    uint64_t key = hash64_seed(sig + b * rows, (size_t)rows * sizeof *sig, (uint64_t)b);
    uint32_t head;
    if (!an_set_get(&f->heads, key, &head)) {
      an_set_add(&f->heads, key, id);
      continue;
    }
    for (uint32_t j = head; j != UINT32_MAX; j = f->link[(size_t)j * (size_t)bands + (size_t)b])
      if (find(f, j) != find(f, id) &&
          an_jaccard(f->items[j].sh, f->items[j].nsh, it->sh, it->nsh) + 1e-12 >= f->o.threshold)
        unite(f, j, id);
    /* after the head: the head stays the set's value */
    size_t hl = (size_t)head * (size_t)bands + (size_t)b;
    f->link[(size_t)id * (size_t)bands + (size_t)b] = f->link[hl];
    f->link[hl] = id;
  }
  free(sig);
}

size_t an_feed_duplicates(const struct an_feed *f) {
  size_t n = 0;
  for (size_t i = 0; i < f->n; i++)
    if (f->parent[i] == i && f->size[i] > 1) n += f->size[i];
  return n;
}

char *an_feed_note(const struct an_feed *f) {
  struct buf b;
  buf_init(&b, 1u << 16);
  size_t total = 0, k = f->ntypes + (f->type_name[FEED_TYPES] != NULL);
  for (size_t i = 0; i < k; i++) total += f->type_n[i];
  int rc = buf_printf(&b,
                      "DATASET NOTE: what the %zu examples accepted so far, across all sources, "
                      "look like.",
                      f->n);
  /* over-represented types: at least FEED_OVER_FACTOR even shares, most frequent first */
  double even = 1.0 / (double)(k > 2 ? k : 2);
  unsigned char listed[FEED_TYPES + 1] = {0};
  for (int n = 0; n < FEED_LISTED && !rc; n++) {
    size_t best = k;
    for (size_t i = 0; i < k; i++)
      if (!listed[i] && f->type_n[i] >= 2 &&
          (double)f->type_n[i] >= FEED_OVER_FACTOR * even * (double)total &&
          (best == k || f->type_n[i] > f->type_n[best]))
        best = i;
    if (best == k) break;
    listed[best] = 1;
    rc = buf_printf(&b, "%s%s (%.0f%%)",
                    n ? "; " : "\n- Over-represented question types: ", f->type_name[best],
                    100.0 * (double)f->type_n[best] / (double)total);
  }
  if (!rc && memchr(listed, 1, sizeof listed))
    rc = buf_puts(&b, ". Ask a different kind of question.");
  /* near-duplicate clusters: the largest first, then the earliest */
  unsigned char *named = xcalloc(f->n + 1, 1);
  for (int n = 0; n < FEED_LISTED && !rc; n++) {
    size_t best = f->n;
    for (size_t i = 0; i < f->n; i++)
      if (f->parent[i] == i && f->size[i] > 1 && !named[i] &&
          (best == f->n || f->size[i] > f->size[best] ||
           (f->size[i] == f->size[best] && f->first[i] < f->first[best])))
        best = i;
    if (best == f->n) break;
    named[best] = 1;
    rc = buf_printf(&b, "%s\"%s ...\" (%u near-identical questions)",
                    n ? "; " : "\n- Near-duplicate questions, steer away from this wording: ",
                    f->items[f->first[best]].quote, f->size[best]);
  }
  free(named);
  size_t parts = f->parts[0] + f->parts[1] + f->parts[2];
  if (!rc && parts) {
    static const char *const name[] = {"opening", "middle", "closing"};
    int least = 0;
    for (int i = 1; i < 3; i++)
      if (f->parts[i] < f->parts[least]) least = i;
    rc = buf_printf(&b,
                    "\n- Parts of the sources used: the questions draw on the opening third "
                    "%.0f%%, the middle third %.0f%%, the closing third %.0f%% of their sources; "
                    "the %s third is the least used.",
                    100.0 * (double)f->parts[0] / (double)parts,
                    100.0 * (double)f->parts[1] / (double)parts,
                    100.0 * (double)f->parts[2] / (double)parts, name[least]);
  }
  (void)rc; /* past the cap the note is cut short, which is still a note */
  return buf_take(&b, NULL);
}
