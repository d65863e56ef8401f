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

/* How many shingles w has: the bound of shingles_into's output. */
static size_t shingle_count(const struct an_words *w, int k) {
  if (!w->n) return 0;
  return w->n - ((size_t)k < w->n ? (size_t)k : w->n) + 1;
}

/* The sorted distinct shingle hashes of w into s (room for shingle_count(w, k)); their number.
 * A question's few dozen shingles are sorted by insertion, longer texts by qsort. */
static size_t shingles_into(const struct an_words *w, int k, uint64_t *s) {
  size_t m = shingle_count(w, k), kk = (size_t)k < w->n ? (size_t)k : w->n;
  for (size_t i = 0; i < m; i++) s[i] = an_gram_hash(w, i, kk);
  if (m > 64) {
    qsort(s, m, sizeof *s, cmp_u64);
  } else {
    for (size_t i = 1; i < m; i++) {
      uint64_t x = s[i];
      size_t j = i;
      for (; j > 0 && s[j - 1] > x; j--) s[j] = s[j - 1];
      s[j] = x;
    }
  }
  size_t u = 0;
  for (size_t i = 0; i < m; i++)
    if (!u || s[u - 1] != s[i]) s[u++] = s[i];
  return u;
}

size_t an_shingles(const struct an_words *w, int k, uint64_t **out) {
  *out = NULL;
  if (!w->n) return 0;
  *out = xmalloc(shingle_count(w, k) * sizeof **out);
  return shingles_into(w, k, *out);
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

/* The signature, 8 permutations at a time in vectors (GCC/Clang vector extensions, lowered to
 * what the target has: SSE2 by default, AVX2 or AVX-512 in the clones below), the 8 minima
 * kept in a register across the shingles; then the remaining permutations one by one. */
typedef uint64_t u64x8 __attribute__((vector_size(64)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MINHASH_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MINHASH_CLONES
#endif

MINHASH_CLONES
static void minhash_with(int perms, const uint64_t *a, const uint64_t *b, const uint64_t *sh,
                         size_t n, uint32_t *sig) {
  int i = 0;
  for (; i + 8 <= perms; i += 8) {
    u64x8 va, vb;
    memcpy(&va, a + i, sizeof va);
    memcpy(&vb, b + i, sizeof vb);
    u32x8 m = {UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX,
               UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX};
    for (size_t k = 0; k < n; k++) {
      u32x8 v = __builtin_convertvector((va * sh[k] + vb) >> 32, u32x8);
      u32x8 lt = (u32x8)(v < m);
      m = (v & lt) | (m & ~lt);
    }
    memcpy(sig + i, &m, sizeof m);
  }
  for (; i < perms; i++) {
    uint32_t m = UINT32_MAX;
    for (size_t k = 0; k < n; k++) {
      uint32_t v = (uint32_t)((a[i] * sh[k] + b[i]) >> 32);
      m = v < m ? v : m;
    }
    sig[i] = m;
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

/* Sort entries by key, items in their order of insertion (ascending) within a key: an LSD
 * radix sort, 8 stable passes of 8 bits (a pass where every key has the same byte is
 * skipped). */
static void sort_entries(struct bucket_entry *e, size_t n) {
  if (n < 2) return;
  size_t(*count)[256] = xcalloc(8, sizeof *count);
  for (size_t i = 0; i < n; i++)
    for (int d = 0; d < 8; d++) count[d][(e[i].key >> (8 * d)) & 255]++;
  struct bucket_entry *tmp = xmalloc(n * sizeof *tmp), *src = e, *dst = tmp;
  for (int d = 0; d < 8; d++) {
    if (count[d][(e[0].key >> (8 * d)) & 255] == n) continue;
    size_t at = 0;
    for (int v = 0; v < 256; v++) {
      size_t c = count[d][v];
      count[d][v] = at;
      at += c;
    }
    for (size_t i = 0; i < n; i++) dst[count[d][(src[i].key >> (8 * d)) & 255]++] = src[i];
    struct bucket_entry *t = src;
    src = dst;
    dst = t;
  }
  if (src != e) memcpy(e, src, n * sizeof *e);
  free(tmp);
  free(count);
}

static int cmp_pair(const void *x, const void *y) {
  const struct an_pair *a = x, *b = y;
  if (a->a != b->a) return (a->a > b->a) - (a->a < b->a);
  return (a->b > b->b) - (a->b < b->b);
}

/* The shingles of one text into a growing buffer (*buf, *cap); their number. */
static size_t text_shingles(struct an_words *w, const char *text, int k, uint64_t **buf,
                            size_t *cap) {
  w->n = 0;
  an_words_split(w, text, strlen(text));
  size_t m = shingle_count(w, k);
  if (m > *cap) {
    *cap = m;
    *buf = xrealloc(*buf, m * sizeof **buf);
  }
  return shingles_into(w, k, *buf);
}

/* Near-duplicates in a few passes that hold 8 bytes per band per text (and the texts, which
 * the caller has): (1) per text its shingles, signature and band keys; (2) per band the texts
 * sorted by key, each pair in a bucket a candidate; (3) the distinct candidates, sorted, get
 * their exact Jaccard from shingles recomputed from the two texts. */
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
  size_t nn = n ? n : 1, cap = 0, capb = 0;
  uint64_t *keys = xmalloc(nn * (size_t)o->bands * sizeof *keys), *sh = NULL, *sh2 = NULL;
  unsigned char *empty = xcalloc(nn, 1);
  uint32_t *sig = xmalloc((size_t)perms * sizeof *sig);
  struct an_words w = {0};
  for (size_t i = 0; i < n; i++) {
    size_t m = text_shingles(&w, texts[i], o->shingle, &sh, &cap);
    if (!m) { /* an empty text is nobody's duplicate */
      empty[i] = 1;
      continue;
    }
    minhash_with(perms, a, b, sh, m, sig);
    for (int band = 0; band < o->bands; band++)
      keys[(size_t)band * n + i] = hash64_seed(sig + band * rows, (size_t)rows * sizeof *sig,
                                               (uint64_t)band);
  }
  struct bucket_entry *ent = xmalloc(nn * sizeof *ent);
  struct an_pair *cand = NULL;
  size_t ncand = 0, capc = 0;
  for (int band = 0; band < o->bands; band++) {
    size_t nent = 0;
    for (size_t i = 0; i < n; i++)
      if (!empty[i]) ent[nent++] = (struct bucket_entry){keys[(size_t)band * n + i], (uint32_t)i};
    sort_entries(ent, nent);
    for (size_t s = 0; s < nent;) {
      size_t e = s + 1;
      while (e < nent && ent[e].key == ent[s].key) e++;
      for (size_t x = s; x < e; x++)
        for (size_t y = x + 1; y < e; y++) {
          if (ncand == capc) {
            capc = capc ? 2 * capc : 64;
            cand = xrealloc(cand, capc * sizeof *cand);
          }
          cand[ncand++] = (struct an_pair){ent[x].item, ent[y].item, 0};
        }
      s = e;
    }
  }
  free(ent);
  free(keys);
  free(empty);
  if (ncand) qsort(cand, ncand, sizeof *cand, cmp_pair);
  struct an_uf uf;
  an_uf_init(&uf, n);
  size_t keep = 0, na = 0;
  uint32_t shingled = UINT32_MAX; /* the text whose shingles are in sh */
  for (size_t i = 0; i < ncand; i++) {
    if (i && cand[i].a == cand[i - 1].a && cand[i].b == cand[i - 1].b) continue;
    res->candidates++;
    if (cand[i].a != shingled) {
      na = text_shingles(&w, texts[cand[i].a], o->shingle, &sh, &cap);
      shingled = cand[i].a;
    }
    size_t nb = text_shingles(&w, texts[cand[i].b], o->shingle, &sh2, &capb);
    double j = an_jaccard(sh, na, sh2, nb);
    if (j + 1e-12 < o->threshold) continue;
    cand[keep] = cand[i];
    cand[keep].jaccard = j;
    keep++;
    an_uf_union(&uf, cand[i].a, cand[i].b);
  }
  an_words_release(&w);
  res->pairs = cand;
  res->npairs = keep;
  res->root = xmalloc(nn * sizeof *res->root);
  for (size_t i = 0; i < n; i++) res->root[i] = an_uf_find(&uf, (uint32_t)i);
  an_uf_release(&uf);
  free(sh);
  free(sh2);
  free(sig);
  free(a);
  free(b);
  return 0;
}

void an_dedup_release(struct an_dedup_result *r) {
  free(r->pairs);
  free(r->root);
  memset(r, 0, sizeof *r);
}
