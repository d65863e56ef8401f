/* dnote.h - batched dataset-level feedback during a run (recipe `analysis: {every: N}`,
 * docs/analyze.md "Batched feedback").
 *
 * The run's accepted examples go, in source order, into an incremental analysis
 * (analyze/analyze.h, struct an_feed). A checkpoint is taken each time the examples of the
 * finished prefix of the corpus (sources 0..p-1, all finished) reach the next multiple of
 * N; it keeps the dataset note of that moment. The source at position i gets the note of
 * the last checkpoint whose prefix ends at or before i - N, and starts only once every
 * source before i - N has finished. So a source's note depends only on the examples of
 * sources before a fixed point of the corpus, never on which calls came back first: a
 * rerun, a resume after kill -9 or another --concurrency give every source the same note.
 *
 * Not thread-safe; the run's loop thread only.
 */
#ifndef AD_DNOTE_H
#define AD_DNOTE_H

#include <jansson.h>
#include <stddef.h>

#include "source/source.h"

struct dnote;

/* A new state for corpus (borrowed; must outlive it) with checkpoints every `every`
 * accepted examples (> 0). */
struct dnote *dnote_new(int every, const struct src_corpus *corpus);
void dnote_free(struct dnote *d);

/* An accepted example of source_id (one with the same example_id replaces it). */
void dnote_example(struct dnote *d, const char *source_id, const char *example_id,
                   const json_t *example);
/* source_id has finished (this session, or an earlier one). */
void dnote_finished(struct dnote *d, const char *source_id);

/* May the source at position pos start now? 1 with *note (borrowed until dnote_free; NULL:
 * no note yet) and *checkpoint (0: none), or 0: it must wait for earlier sources. */
int dnote_ready(const struct dnote *d, size_t pos, const char **note, int *checkpoint);

/* The checkpoints taken since the last call, one at a time: 1 with their number, the
 * examples and sources they cover and the note (borrowed), or 0 when there is none. */
int dnote_next_new(struct dnote *d, int *checkpoint, size_t *examples, size_t *sources,
                   const char **note);

#endif
