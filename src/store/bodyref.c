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

int bodyrefs_grow(struct bodyrefs *t, int64_t run, const char *source, const char *kind,
                  const char *p, size_t n, struct bodyref_gen *gen) {
  memset(gen, 0, sizeof *gen);
  if (!t || !source || !p || !n) return 0;
  struct slot *s = slot_of(t, run, source);
  if (!s->source || s->run != run || strcmp(s->source, source)) { /* empty, or another's */
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
  }
  uint64_t k = hash64_str(kind ? kind : "");
  for (int i = 0; i < s->nk; i++)
    if (s->kinds[i] == k) return 0;
  if (s->nk == MAX_KINDS || s->len + n > BODYREF_MAX) return 0;
  void *z;
  size_t zn;
  int rc = compress(t, s, p, n, &z, &zn);
  if (rc) return rc;
  char *content = xrealloc(s->content, s->len + n);
  memcpy(content + s->len, p, n);
  ZSTD_CDict *cd = ZSTD_createCDict(content, s->len + n, BODYREF_LEVEL);
  if (!cd) { /* keep the slot as it was (content's first len bytes are unchanged) */
    s->content = content;
    free(z);
    return AD_ENOMEM;
  }
  ZSTD_freeCDict(s->cd);
  s->cd = cd;
  s->content = content;
  s->len += n;
  s->kinds[s->nk++] = k;
  gen->id = t->next_id++;
  gen->base = s->id;
  gen->data = z;
  gen->n = zn;
  s->id = gen->id;
  return 1;
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
