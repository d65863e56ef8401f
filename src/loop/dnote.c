/* dnote.c - batched dataset-level feedback: the finished prefix of the corpus, its
 * checkpoints and the note each source gets (dnote.h). */
#include "loop/dnote.h"

#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"
#include "util/jsonx.h"
#include "util/mem.h"

struct ckpt {
  size_t boundary; /* the prefix it covers: sources [0, boundary) */
  size_t examples;
  char *note;
};

struct dnote {
  int every;
  const struct src_corpus *corpus;
  json_t *pos;         /* source id -> its position */
  json_t **examples;   /* per position: example id -> example (NULL: none yet) */
  unsigned char *done; /* per position: finished */
  size_t prefix;       /* sources [0, prefix) are finished and analysed */
  struct an_feed *feed;
  struct ckpt *ck;
  size_t nck, reported;
};

struct dnote *dnote_new(int every, const struct src_corpus *corpus) {
  struct dnote *d = xcalloc(1, sizeof *d);
  d->every = every > 0 ? every : 1;
  d->corpus = corpus;
  d->pos = json_object();
  for (size_t i = 0; i < corpus->n; i++)
    json_object_set_new(d->pos, src_corpus_id(corpus, i), json_integer((json_int_t)i));
  d->examples = xcalloc(corpus->n + 1, sizeof *d->examples);
  d->done = xcalloc(corpus->n + 1, 1);
  d->ck = xcalloc(corpus->n + 1, sizeof *d->ck);
  d->feed = an_feed_new();
  return d;
}

void dnote_free(struct dnote *d) {
  if (!d) return;
  for (size_t i = 0; i < d->corpus->n; i++) json_decref(d->examples[i]);
  for (size_t i = 0; i < d->nck; i++) free(d->ck[i].note);
  free(d->examples);
  free(d->done);
  free(d->ck);
  json_decref(d->pos);
  an_feed_free(d->feed);
  free(d);
}

static long position(const struct dnote *d, const char *source_id) {
  const json_t *p = source_id ? json_object_get(d->pos, source_id) : NULL;
  return p ? (long)json_integer_value(p) : -1;
}

void dnote_example(struct dnote *d, const char *source_id, const char *example_id,
                   const json_t *example) {
  long p = position(d, source_id);
  if (p < 0 || !example_id || !example || (size_t)p < d->prefix) return;
  if (!d->examples[p]) d->examples[p] = json_object();
  json_object_set(d->examples[p], example_id, (json_t *)example);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Add the examples of the source at position p, in example id order. */
static void add_source(struct dnote *d, size_t p) {
  json_t *ex = d->examples[p];
  size_t n = json_object_size(ex), k = 0;
  if (!n) return;
  const char **ids = xcalloc(n, sizeof *ids);
  const char *key;
  json_t *v;
  json_object_foreach(ex, key, v) ids[k++] = key;
  qsort(ids, n, sizeof *ids, cmp_str);
  /* A streamed corpus holds a text only while its episode runs: read it again here, so the
     note does not depend on which episode happened to end last (nor on a resume). */
  struct src_doc *doc = NULL;
  char err[256];
  if (src_doc_open(d->corpus, p, &doc, err, sizeof err)) doc = NULL; /* its text unseen */
  for (k = 0; k < n; k++) {
    const json_t *e = json_object_get(ex, ids[k]);
    an_feed_add(d->feed, jx_str(e, "question_type"), jx_str(e, "question"), doc ? doc->text : NULL);
  }
  src_doc_close(d->corpus, doc);
  free(ids);
  json_decref(ex);
  d->examples[p] = NULL;
}

void dnote_finished(struct dnote *d, const char *source_id) {
  long p = position(d, source_id);
  if (p < 0) return;
  d->done[p] = 1;
  while (d->prefix < d->corpus->n && d->done[d->prefix]) {
    add_source(d, d->prefix++);
    size_t n = an_feed_examples(d->feed);
    if (n >= (d->nck + 1) * (size_t)d->every) {
      struct ckpt *c = &d->ck[d->nck++];
      c->boundary = d->prefix;
      c->examples = n;
      c->note = an_feed_note(d->feed);
    }
  }
}

int dnote_ready(const struct dnote *d, size_t pos, const char **note, int *checkpoint) {
  *note = NULL;
  *checkpoint = 0;
  size_t lag = (size_t)d->every;
  if (pos < lag) return 1;
  size_t upto = pos - lag; /* sources [0, upto) decide the note */
  if (d->prefix < upto) return 0;
  for (size_t k = d->nck; k > 0; k--)
    if (d->ck[k - 1].boundary <= upto) {
      *note = d->ck[k - 1].note;
      *checkpoint = (int)k;
      break;
    }
  return 1;
}

int dnote_next_new(struct dnote *d, int *checkpoint, size_t *examples, size_t *sources,
                   const char **note) {
  if (d->reported >= d->nck) return 0;
  const struct ckpt *c = &d->ck[d->reported++];
  *checkpoint = (int)d->reported;
  *examples = c->examples;
  *sources = c->boundary;
  *note = c->note;
  return 1;
}
