/* minhash.c - near-duplicates: word shingles, MinHash signatures, LSH banding, the exact
 * Jaccard check of every candidate pair, union-find clusters and the keep rule. */
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"
#include "util/hash.h"
#include "util/mem.h"
#include "util/rng.h"

void an_dedup_defaults(struct an_dedup_opts *o) {
  o->threshold = 0.7;
  o->shingle = 3;
  o->perms = 128;
  o->bands = 32;
  o->seed = 1;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

size_t an_shingles(const struct an_words *w, int k, uint64_t **out) {
  *out = NULL;
  if (!w->n) return 0;
  size_t kk = (size_t)k < w->n ? (size_t)k : w->n;
  size_t m = w->n - kk + 1;
  uint64_t *s = xmalloc(m * sizeof *s);
  for (size_t i = 0; i < m; i++) s[i] = an_gram_hash(w, i, kk);
  qsort(s, m, sizeof *s, cmp_u64);
  size_t u = 0;
  for (size_t i = 0; i < m; i++)
    if (!u || s[u - 1] != s[i]) s[u++] = s[i];
  *out = s;
  return u;
}

double an_jaccard(const uint64_t *a, size_t na, const uint64_t *b, size_t nb) {
  if (!na && !nb) return 1.0;
  size_t i = 0, j = 0, inter = 0;
  while (i < na && j < nb) {
    if (a[i] == b[j]) {
      inter++;
      i++;
      j++;
    } else if (a[i] < b[j]) {
      i++;
    } else {
      j++;
    }
  }
  return (double)inter / (double)(na + nb - inter);
}

/* Permutation i: h -> high 32 bits of a_i * h + b_i (a_i odd), a_i and b_i from the seed. */
static void perm_params(const struct an_dedup_opts *o, uint64_t *a, uint64_t *b) {
  struct rng r;
  rng_seed(&r, o->seed ^ 0x6d696e68617368ull);
  for (int i = 0; i < o->perms; i++) {
    a[i] = rng_next(&r) | 1u;
    b[i] = rng_next(&r);
  }
}

static void minhash_with(int perms, const uint64_t *a, const uint64_t *b, const uint64_t *sh,
                         size_t n, uint32_t *sig) {
  for (int i = 0; i < perms; i++) sig[i] = UINT32_MAX;
  for (size_t k = 0; k < n; k++) {
    uint64_t h = sh[k];
    for (int i = 0; i < perms; i++) {
      uint32_t v = (uint32_t)((a[i] * h + b[i]) >> 32);
      if (v < sig[i]) sig[i] = v;
    }
  }
}

void an_minhash(const struct an_dedup_opts *o, const uint64_t *sh, size_t n, uint32_t *sig) {
  uint64_t *a = xmalloc((size_t)o->perms * sizeof *a), *b = xmalloc((size_t)o->perms * sizeof *b);
  perm_params(o, a, b);
  minhash_with(o->perms, a, b, sh, n, sig);
  free(a);
  free(b);
}

void an_uf_init(struct an_uf *u, size_t n) {
  u->n = n;
  u->parent = xmalloc((n ? n : 1) * sizeof *u->parent);
  u->rank = xcalloc(n ? n : 1, sizeof *u->rank);
  for (size_t i = 0; i < n; i++) u->parent[i] = (uint32_t)i;
}

uint32_t an_uf_find(struct an_uf *u, uint32_t x) {
  uint32_t r = x;
  while (u->parent[r] != r) r = u->parent[r];
  while (u->parent[x] != r) { /* path compression */
    uint32_t next = u->parent[x];
    u->parent[x] = r;
    x = next;
  }
  return r;
}

void an_uf_union(struct an_uf *u, uint32_t a, uint32_t b) {
  a = an_uf_find(u, a);
  b = an_uf_find(u, b);
  if (a == b) return;
  if (u->rank[a] < u->rank[b]) {
    uint32_t t = a;
    a = b;
    b = t;
  }
  u->parent[b] = a;
  if (u->rank[a] == u->rank[b]) u->rank[a]++;
}

void an_uf_release(struct an_uf *u) {
  free(u->parent);
  free(u->rank);
  memset(u, 0, sizeof *u);
}

int an_keep_first(double gap_a, const char *id_a, double gap_b, const char *id_b) {
  if (gap_a != gap_b) return gap_a > gap_b;
  return strcmp(id_a, id_b) <= 0;
}

struct bucket_entry {
  uint64_t key;
  uint32_t item;
};

static int cmp_entry(const void *x, const void *y) {
  const struct bucket_entry *a = x, *b = y;
  if (a->key != b->key) return (a->key > b->key) - (a->key < b->key);
  return (a->item > b->item) - (a->item < b->item);
}

static int cmp_pair(const void *x, const void *y) {
  const struct an_pair *a = x, *b = y;
  if (a->a != b->a) return (a->a > b->a) - (a->a < b->a);
  return (a->b > b->b) - (a->b < b->b);
}

int an_dedup(const struct an_dedup_opts *o, const char *const *texts, size_t n,
             struct an_dedup_result *res, char *err, size_t errlen) {
  memset(res, 0, sizeof *res);
  if (o->perms < 1 || o->bands < 1 || o->perms % o->bands || o->shingle < 1 ||
      !(o->threshold > 0 && o->threshold <= 1) || n > UINT32_MAX) {
    ad_set_err(err, errlen,
               "near-duplicates: bad options (threshold %g must be in (0, 1], shingle %d >= 1, "
               "permutations %d a multiple of bands %d)",
               o->threshold, o->shingle, o->perms, o->bands);
    return AD_EINVAL;
  }
  int perms = o->perms, rows = o->perms / o->bands;
  uint64_t *a = xmalloc((size_t)perms * sizeof *a), *b = xmalloc((size_t)perms * sizeof *b);
  perm_params(o, a, b);
  uint64_t **sets = xcalloc(n ? n : 1, sizeof *sets);
  size_t *nset = xcalloc(n ? n : 1, sizeof *nset);
  uint32_t *sig = xmalloc((size_t)perms * sizeof *sig);
  struct bucket_entry *ent = xmalloc((n ? n : 1) * (size_t)o->bands * sizeof *ent);
  size_t nent = 0;
  struct an_words w = {0};
  for (size_t i = 0; i < n; i++) {
    w.n = 0;
    an_words_split(&w, texts[i], strlen(texts[i]));
    nset[i] = an_shingles(&w, o->shingle, &sets[i]);
    if (!nset[i]) continue; /* an empty text is nobody's duplicate */
    minhash_with(perms, a, b, sets[i], nset[i], sig);
    for (int band = 0; band < o->bands; band++) {
      ent[nent].key = hash64_seed(sig + band * rows, (size_t)rows * sizeof *sig, (uint64_t)band);
      ent[nent].item = (uint32_t)i;
      nent++;
    }
  }
  an_words_release(&w);
  qsort(ent, nent, sizeof *ent, cmp_entry);
  struct an_pair *cand = NULL;
  size_t ncand = 0, capc = 0;
  for (size_t s = 0; s < nent;) {
    size_t e = s + 1;
    while (e < nent && ent[e].key == ent[s].key) e++;
    for (size_t x = s; x < e; x++)
      for (size_t y = x + 1; y < e; y++) {
        if (ent[x].item == ent[y].item) continue;
        if (ncand == capc) {
          capc = capc ? 2 * capc : 64;
          cand = xrealloc(cand, capc * sizeof *cand);
        }
        cand[ncand++] = (struct an_pair){ent[x].item, ent[y].item, 0};
      }
    s = e;
  }
  if (ncand) qsort(cand, ncand, sizeof *cand, cmp_pair);
  struct an_uf uf;
  an_uf_init(&uf, n);
  size_t keep = 0;
  for (size_t i = 0; i < ncand; i++) {
    if (i && cand[i].a == cand[i - 1].a && cand[i].b == cand[i - 1].b) continue;
    res->candidates++;
    double j = an_jaccard(sets[cand[i].a], nset[cand[i].a], sets[cand[i].b], nset[cand[i].b]);
    if (j + 1e-12 < o->threshold) continue;
    cand[keep] = cand[i];
    cand[keep].jaccard = j;
    keep++;
    an_uf_union(&uf, cand[i].a, cand[i].b);
  }
  res->pairs = cand;
  res->npairs = keep;
  res->root = xmalloc((n ? n : 1) * sizeof *res->root);
  for (size_t i = 0; i < n; i++) res->root[i] = an_uf_find(&uf, (uint32_t)i);
  an_uf_release(&uf);
  for (size_t i = 0; i < n; i++) free(sets[i]);
  free(sets);
  free(nset);
  free(sig);
  free(ent);
  free(a);
  free(b);
  return 0;
}

void an_dedup_release(struct an_dedup_result *r) {
  free(r->pairs);
  free(r->root);
  memset(r, 0, sizeof *r);
}
