/* bodyref.c - reference compression of call bodies. See bodyref.h. */
#include "store/bodyref.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "util/err.h"
#include "util/hash.h"
#include "util/mem.h"

#define MAX_KINDS 32

struct slot {
  char *source; /* NULL: empty */
  int64_t run;
  int64_t id; /* the current generation; 0 before the first */
  char *content;
  size_t len;
  ZSTD_CDict *cd; /* over content[0..len) */
  uint64_t kinds[MAX_KINDS];
  int nk;
};

/* A run's root: the reference of the first source whose episode ended, the start of every
 * later source's reference, so that the role templates and the shape of the replies are stored
 * once per run rather than once per source. */
struct root {
  int64_t run, id; /* id 0: none yet */
  char *content;
  size_t len;
};

struct bodyrefs {
  struct slot slots[BODYREF_SLOTS];
  struct root root;
  int64_t next_id;
  ZSTD_CCtx *zc;
};

struct bodyrefs *bodyrefs_new(int64_t next_id) {
  struct bodyrefs *t = xcalloc(1, sizeof *t);
  t->next_id = next_id > 0 ? next_id : 1;
  return t;
}

static void slot_clear(struct slot *s) {
  free(s->source);
  free(s->content);
  ZSTD_freeCDict(s->cd);
  memset(s, 0, sizeof *s);
}

void bodyrefs_reset(struct bodyrefs *t) {
  if (!t) return;
  for (size_t i = 0; i < BODYREF_SLOTS; i++) slot_clear(&t->slots[i]);
  free(t->root.content);
  memset(&t->root, 0, sizeof t->root);
}

void bodyrefs_free(struct bodyrefs *t) {
  if (!t) return;
  bodyrefs_reset(t);
  ZSTD_freeCCtx(t->zc);
  free(t);
}

static struct slot *slot_of(struct bodyrefs *t, int64_t run, const char *source) {
  return &t->slots[hash64_seed(source, strlen(source), (uint64_t)run) % BODYREF_SLOTS];
}

static struct slot *find(struct bodyrefs *t, int64_t run, const char *source) {
  struct slot *s = slot_of(t, run, source);
  return s->source && s->run == run && !strcmp(s->source, source) ? s : NULL;
}

void bodyrefs_release(struct bodyrefs *t, int64_t run, const char *source) {
  struct slot *s = t && source ? find(t, run, source) : NULL;
  if (!s) return;
  if (s->id && (t->root.run != run || !t->root.id) && s->len <= BODYREF_MAX / 2) {
    free(t->root.content); /* the run's root: this reference (another run's is dropped) */
    t->root = (struct root){run, s->id, s->content, s->len};
    s->content = NULL;
  }
  slot_clear(s);
}

/* Compress p[0..n) with the slot's dictionary (none when the slot is empty). */
static int compress(struct bodyrefs *t, const struct slot *s, const char *p, size_t n, void **z,
                    size_t *zn) {
  if (!t->zc && !(t->zc = ZSTD_createCCtx())) return AD_ENOMEM;
  size_t cap = ZSTD_compressBound(n);
  void *out = xmalloc(cap);
  size_t got = s && s->cd ? ZSTD_compress_usingCDict(t->zc, out, cap, p, n, s->cd)
                          : ZSTD_compressCCtx(t->zc, out, cap, p, n, BODYREF_LEVEL);
  if (ZSTD_isError(got)) {
    free(out);
    return AD_EINTERNAL;
  }
  *z = out;
  *zn = got;
  return 0;
}

/* Start the source's slot when it is empty or another source's: from the run's root. */
static struct slot *slot_for(struct bodyrefs *t, int64_t run, const char *source) {
  struct slot *s = slot_of(t, run, source);
  if (s->source && s->run == run && !strcmp(s->source, source)) return s;
  slot_clear(s);
  s->source = xstrdup(source);
  s->run = run;
  if (t->root.id && t->root.run == run &&
      (s->cd = ZSTD_createCDict(t->root.content, t->root.len, BODYREF_LEVEL))) {
    s->content = xmalloc(t->root.len);
    memcpy(s->content, t->root.content, t->root.len);
    s->len = t->root.len;
    s->id = t->root.id;
  }
  return s;
}

static int has_kind(const struct slot *s, uint64_t k) {
  for (int i = 0; i < s->nk; i++)
    if (s->kinds[i] == k) return 1;
  return 0;
}

int bodyrefs_grow_n(struct bodyrefs *t, int64_t run, const char *source, int n_parts,
                    const struct bodyref_part *parts, struct bodyref_gen *gen) {
  memset(gen, 0, sizeof *gen);
  if (!t || !source || n_parts <= 0 || n_parts > 8) return 0;
  struct slot *s = slot_for(t, run, source);
  uint64_t ks[8];
  int join[8], nk = s->nk;
  size_t add = 0;
  for (int i = 0; i < n_parts; i++) {
    ks[i] = hash64_str(parts[i].kind ? parts[i].kind : "");
    join[i] = parts[i].p && parts[i].n && nk < MAX_KINDS && !has_kind(s, ks[i]) &&
              s->len + add + parts[i].n <= BODYREF_MAX;
    for (int j = 0; join[i] && j < i; j++) join[i] = !(join[j] && ks[j] == ks[i]);
    if (join[i]) {
      add += parts[i].n;
      nk++;
    }
  }
  if (!add) return 0;
  /* one generation for every part that joins: one dictionary to build, not one per part */
  char *content = xrealloc(s->content, s->len + add);
  size_t at = s->len;
  for (int i = 0; i < n_parts; i++)
    if (join[i]) {
      memcpy(content + at, parts[i].p, parts[i].n);
      at += parts[i].n;
    }
  s->content = content; /* its first len bytes are unchanged */
  void *z;
  size_t zn;
  int rc = compress(t, s, content + s->len, add, &z, &zn);
  if (rc) return rc;
  ZSTD_CDict *cd = ZSTD_createCDict(content, s->len + add, BODYREF_LEVEL);
  if (!cd) { /* keep the slot as it was */
    free(z);
    return AD_ENOMEM;
  }
  ZSTD_freeCDict(s->cd);
  s->cd = cd;
  s->len += add;
  for (int i = 0; i < n_parts; i++)
    if (join[i]) s->kinds[s->nk++] = ks[i];
  gen->id = t->next_id++;
  gen->base = s->id;
  gen->data = z;
  gen->n = zn;
  s->id = gen->id;
  return 1;
}

int bodyrefs_grow(struct bodyrefs *t, int64_t run, const char *source, const char *kind,
                  const char *p, size_t n, struct bodyref_gen *gen) {
  struct bodyref_part part = {kind, p, n};
  return bodyrefs_grow_n(t, run, source, 1, &part, gen);
}

int bodyrefs_pack(struct bodyrefs *t, int64_t run, const char *source, const char *p, size_t n,
                  void **z, size_t *zn, int64_t *ref) {
  struct slot *s = t && source ? find(t, run, source) : NULL;
  if (!s || !s->id) return AD_ENOTFOUND;
  int rc = compress(t, s, p, n, z, zn);
  if (!rc) *ref = s->id;
  return rc;
}

char *bodyref_inflate(ZSTD_DCtx *dc, const void *z, size_t zn, const void *dict, size_t dn,
                      size_t max, size_t *len) {
  unsigned long long n = ZSTD_getFrameContentSize(z, zn);
  if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > max) return NULL;
  ZSTD_DCtx *own = dc ? NULL : ZSTD_createDCtx();
  if (!dc && !own) return NULL;
  char *r = xmalloc((size_t)n + 1);
  size_t got = ZSTD_decompress_usingDict(dc ? dc : own, r, (size_t)n, z, zn, dict, dn);
  ZSTD_freeDCtx(own);
  if (ZSTD_isError(got) || got != n) {
    free(r);
    return NULL;
  }
  r[n] = 0;
  if (len) *len = (size_t)n;
  return r;
}

/* ---- reading ---- */

#define READER_SLOTS 64
#define READER_CHAIN 256                     /* generations of one reference: a root and a source */
#define READER_MAX (4 * (size_t)BODYREF_MAX) /* a content is at most BODYREF_MAX */

struct rbuf { /* a content shared by the entries of its generations */
  int refs;
  char data[];
};

struct rentry {
  const void *tag;
  int64_t id;
  struct rbuf *buf; /* NULL: empty */
  size_t len;       /* the generation's content: buf->data[0..len) */
};

struct bodyref_reader {
  struct rentry e[READER_SLOTS]; /* direct-mapped by id */
  ZSTD_DCtx *dc;
};

struct bodyref_reader *bodyref_reader_new(void) {
  return xcalloc(1, sizeof(struct bodyref_reader));
}

static void rbuf_drop(struct rbuf *b) {
  if (b && --b->refs == 0) free(b);
}

static struct rentry *rslot(struct bodyref_reader *r, int64_t id) {
  return &r->e[(uint64_t)id % READER_SLOTS];
}

static struct rentry *rfind(struct bodyref_reader *r, const void *tag, int64_t id) {
  struct rentry *e = rslot(r, id);
  return e->buf && e->tag == tag && e->id == id ? e : NULL;
}

static void rput(struct bodyref_reader *r, const void *tag, int64_t id, struct rbuf *b,
                 size_t len) {
  struct rentry *e = rslot(r, id);
  b->refs++;
  rbuf_drop(e->buf);
  *e = (struct rentry){tag, id, b, len};
}

void bodyref_reader_forget(struct bodyref_reader *r, const void *tag) {
  if (!r) return;
  for (size_t i = 0; i < READER_SLOTS; i++)
    if (r->e[i].buf && r->e[i].tag == tag) {
      rbuf_drop(r->e[i].buf);
      memset(&r->e[i], 0, sizeof r->e[i]);
    }
}

void bodyref_reader_free(struct bodyref_reader *r) {
  if (!r) return;
  for (size_t i = 0; i < READER_SLOTS; i++) rbuf_drop(r->e[i].buf);
  ZSTD_freeDCtx(r->dc);
  free(r);
}

struct rgen {
  int64_t id;
  void *z;
  size_t zn, n;
};

/* Inflate chain[k-1] .. chain[0] after base[0..bn) into a new buffer, each generation's content
 * entered as it is made: 0, or -1 for a damaged frame. */
static int rbuild(struct bodyref_reader *r, const void *tag, const struct rgen *chain, int k,
                  const char *base, size_t bn, size_t total) {
  struct rbuf *b = xmalloc(sizeof *b + bn + total + 1);
  b->refs = 1;
  if (bn) memcpy(b->data, base, bn); /* before rput() may drop base's buffer */
  size_t off = bn;
  int rc = 0;
  for (int i = k - 1; i >= 0 && !rc; i--) {
    size_t got = ZSTD_decompress_usingDict(r->dc, b->data + off, chain[i].n, chain[i].z,
                                           chain[i].zn, off ? b->data : NULL, off);
    if (ZSTD_isError(got) || got != chain[i].n) {
      rc = -1;
      break;
    }
    off += got;
    b->data[off] = 0;
    rput(r, tag, chain[i].id, b, off);
  }
  rbuf_drop(b);
  return rc;
}

const char *bodyref_reader_content(struct bodyref_reader *r, const void *tag, int64_t id,
                                   bodyref_fetch_fn fetch, void *ud, size_t *len) {
  struct rentry *e = rfind(r, tag, id);
  if (e) {
    *len = e->len;
    return e->buf->data;
  }
  if (!r->dc && !(r->dc = ZSTD_createDCtx())) return NULL;
  struct rgen chain[READER_CHAIN];
  int k = 0, ok = 1;
  size_t total = 0, bn = 0;
  const char *base = NULL;
  for (int64_t cur = id; cur && ok;) {
    if ((e = rfind(r, tag, cur))) {
      base = e->buf->data;
      bn = e->len;
      break;
    }
    int64_t next = 0;
    const void *z = NULL;
    size_t zn = 0;
    unsigned long long n = 0;
    ok = k < READER_CHAIN && !fetch(ud, cur, &next, &z, &zn) &&
         (n = ZSTD_getFrameContentSize(z, zn)) <= READER_MAX && total + n <= READER_MAX;
    if (!ok) break; /* missing, damaged, a loop or too long */
    void *copy = xmalloc(zn ? zn : 1);
    if (zn) memcpy(copy, z, zn);
    chain[k++] = (struct rgen){cur, copy, zn, (size_t)n};
    total += (size_t)n;
    cur = next;
  }
  ok = ok && bn + total <= READER_MAX && rbuild(r, tag, chain, k, base, bn, total) == 0;
  for (int i = 0; i < k; i++) free(chain[i].z);
  if (!ok || !(e = rfind(r, tag, id))) return NULL;
  *len = e->len;
  return e->buf->data;
}
