/* bodyref.h - reference compression of call bodies (the compact store, docs/store.md).
 *
 * Most of a source's request bodies repeat the same text: the source itself (challenger and
 * quality prompts), the round's candidate (solver and judge prompts), the role's template.
 * So a body of a source is compressed (zstd, a raw-content dictionary) against that source's
 * *reference*: the concatenation of the first body of every kind seen for the source so far,
 * at most BODYREF_MAX bytes (the writer names the kinds: store_sqlite.c uses each role's first
 * request, each role's first reply of every round, and the first candidate record and example).
 * Bodies of new kinds grow the reference by one *generation*: a row (id, base, data) whose data
 * is those bodies compressed against the base generation's content, so
 *
 *     content(id) = content(base) + inflate(data, dictionary content(base))
 *
 * and a body stored with reference id inflates with dictionary content(id).
 *
 * The first source of a run whose episode ends leaves its reference as the run's root, the
 * base of every later source's reference, so the role templates are stored once per run.
 *
 * The writer keeps the current reference of recently active sources in a direct-mapped table
 * of BODYREF_SLOTS entries. An entry lost to a collision, or released when the source's episode
 * ends, only means that the source's next body starts a new reference: memory depends on the
 * concurrency, never on the number of sources, and no decision depends on what was evicted.
 * Not thread-safe (the store has one writer).
 */
#ifndef AD_STORE_BODYREF_H
#define AD_STORE_BODYREF_H

#include <stddef.h>
#include <stdint.h>

#define BODYREF_MAX (128u * 1024) /* bytes of a reference's content */
#define BODYREF_SLOTS 1024
#define BODYREF_LEVEL 1 /* level 3 made a store 1 % smaller for 2x the CPU */

struct bodyrefs;

/* A generation to write (before the bodies that use it). */
struct bodyref_gen {
  int64_t id, base; /* base 0: none */
  void *data;       /* malloc'd zstd frame */
  size_t n;
};

/* A table whose next generation gets id next_id (the store's max(body_refs.id) + 1). */
struct bodyrefs *bodyrefs_new(int64_t next_id);
void bodyrefs_free(struct bodyrefs *t);
/* Forget every reference (after a batch lost rows); ids keep counting. */
void bodyrefs_reset(struct bodyrefs *t);
/* The source's episode ended: free its entry. */
void bodyrefs_release(struct bodyrefs *t, int64_t run, const char *source);

/* Grow the source's reference with p[0..n) when its kind is not in it yet and it fits:
 * 1 with *gen filled (write it), 0 when nothing changed, a negative AD_E* code when zstd
 * failed (nothing changed either). */
int bodyrefs_grow(struct bodyrefs *t, int64_t run, const char *source, const char *kind,
                  const char *p, size_t n, struct bodyref_gen *gen);

/* A body offered to bodyrefs_grow_n(): its kind and bytes (p NULL or n 0: none). */
struct bodyref_part {
  const char *kind;
  const char *p;
  size_t n;
};
/* bodyrefs_grow() for up to 8 parts at once (a call's request and reply): those whose kinds are
 * new and that fit join the reference, in order, as one generation (building the reference's
 * dictionary is most of a generation's cost). Same returns. */
int bodyrefs_grow_n(struct bodyrefs *t, int64_t run, const char *source, int n_parts,
                    const struct bodyref_part *parts, struct bodyref_gen *gen);
/* Compress p[0..n) against the source's current reference: 0 with *z (malloc'd), *zn and *ref
 * set; AD_ENOTFOUND when the source has no reference (store the body as before). */
int bodyrefs_pack(struct bodyrefs *t, int64_t run, const char *source, const char *p, size_t n,
                  void **z, size_t *zn, int64_t *ref);

/* ---- reading references ----
 * A reader rebuilds a reference's content from its generations (newest first until one it
 * holds, then inflated oldest first into one buffer) and keeps the contents of the last
 * generations it saw, sharing that buffer: every generation's content is a prefix of its
 * successors', so reading the records or calls of one source after another inflates each of a
 * source's generations once and the run's root's once. */

/* Fetch generation id of the store `ud`: 0 with *base (0: none) and the frame z[0..zn) set
 * (borrowed until the next call), else a negative AD_E* code. */
typedef int (*bodyref_fetch_fn)(void *ud, int64_t id, int64_t *base, const void **z, size_t *zn);
struct bodyref_reader;
struct bodyref_reader *bodyref_reader_new(void);
void bodyref_reader_free(struct bodyref_reader *r);
/* Forget every content read from the store tagged tag (its connection closes). */
void bodyref_reader_forget(struct bodyref_reader *r, const void *tag);
/* The content of reference id of the store tagged tag (ids are per store), borrowed until the
 * next call; NULL when a generation is missing or damaged. */
const char *bodyref_reader_content(struct bodyref_reader *r, const void *tag, int64_t id,
                                   bodyref_fetch_fn fetch, void *ud, size_t *len);

struct ZSTD_DCtx_s;
/* Inflate a frame z[0..zn) written against dict[0..dn) (dn 0: none) with the context dc
 * (NULL: a new one): a malloc'd NUL-terminated string of *len bytes, or NULL for a damaged
 * frame or one over max bytes. */
char *bodyref_inflate(struct ZSTD_DCtx_s *dc, const void *z, size_t zn, const void *dict, size_t dn,
                      size_t max, size_t *len);

#endif
