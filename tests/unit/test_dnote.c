/* test_dnote.c - batched dataset feedback's schedule (loop/dnote.c): a source's note comes
 * from the finished prefix up to a fixed point, whatever order the sources finish in. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "loop/dnote.h"

#define NDOC 8

static void corpus(struct src_corpus *c, struct src_doc *docs, char ids[][16]) {
  memset(c, 0, sizeof *c);
  memset(docs, 0, NDOC * sizeof *docs);
  for (int i = 0; i < NDOC; i++) {
    snprintf(ids[i], 16, "s%d", i);
    docs[i].id = ids[i];
    docs[i].text = "A source text.";
    docs[i].title = "";
  }
  c->docs = docs;
  c->n = NDOC;
}

static void accept_one(struct dnote *d, int i, const char *type) {
  char sid[16], eid[16];
  snprintf(sid, sizeof sid, "s%d", i);
  snprintf(eid, sizeof eid, "s%d-1", i);
  json_t *ex = json_pack("{s:s, s:s}", "question_type", type, "question", "What is it?");
  dnote_example(d, sid, eid, ex);
  json_decref(ex);
  dnote_finished(d, sid);
}

/* The notes each source gets, after the sources finish in the given order. */
static void notes_after(const int *order, char out[NDOC][512]) {
  struct src_corpus c;
  struct src_doc docs[NDOC];
  char ids[NDOC][16];
  corpus(&c, docs, ids);
  struct dnote *d = dnote_new(2, &c);
  for (int k = 0; k < NDOC; k++) accept_one(d, order[k], order[k] % 3 ? "recall" : "comparison");
  for (int i = 0; i < NDOC; i++) {
    const char *note;
    int ck;
    cr_assert(dnote_ready(d, (size_t)i, &note, &ck), "source %d", i);
    snprintf(out[i], 512, "%d|%s", ck, note ? note : "-");
  }
  dnote_free(d);
}

Test(dnote, the_note_depends_on_the_prefix_not_the_order) {
  struct src_corpus c;
  struct src_doc docs[NDOC];
  char ids[NDOC][16];
  corpus(&c, docs, ids);
  struct dnote *d = dnote_new(2, &c);
  const char *note;
  int ck;
  cr_assert(dnote_ready(d, 0, &note, &ck) && !note && ck == 0); /* before position 2: none */
  cr_assert(dnote_ready(d, 1, &note, &ck) && !note);
  cr_assert(dnote_ready(d, 2, &note, &ck) && !note); /* sources [0, 0) decide: none */
  cr_assert_not(dnote_ready(d, 3, &note, &ck));      /* waits for source 0 */
  accept_one(d, 1, "recall");                        /* out of order: not in the prefix yet */
  cr_assert_not(dnote_ready(d, 3, &note, &ck));
  accept_one(d, 0, "recall");
  cr_assert(dnote_ready(d, 3, &note, &ck)); /* sources 0 and 1 finished */
  cr_assert_eq(ck, 0);                      /* the first checkpoint ends at 2 > 3 - 2 */
  cr_assert(dnote_ready(d, 4, &note, &ck));
  cr_assert_eq(ck, 1);
  cr_assert(strstr(note, "what the 2 examples accepted so far"), "%s", note);
  int k;
  size_t ex, srcs;
  cr_assert(dnote_next_new(d, &k, &ex, &srcs, &note));
  cr_assert(k == 1 && ex == 2 && srcs == 2);
  cr_assert_not(dnote_next_new(d, &k, &ex, &srcs, &note));
  dnote_free(d);

  char a[NDOC][512], b[NDOC][512];
  const int in_order[NDOC] = {0, 1, 2, 3, 4, 5, 6, 7};
  const int shuffled[NDOC] = {3, 1, 7, 0, 2, 6, 5, 4};
  notes_after(in_order, a);
  notes_after(shuffled, b);
  for (int i = 0; i < NDOC; i++) cr_assert_str_eq(a[i], b[i], "source %d", i);
}
