/* qpass.h - the end-of-loop quality pass (recipe `finalize: {quality: ...}`, docs/analyze.md
 * "The end-of-loop quality pass"): the quality verifier's prompt, with the model the recipe
 * names, re-checks every accepted example of a run, as the paper's final pass did.
 *
 * Each example is shown as the loop showed its candidate (candidate_json from the stored
 * example, the source's title and text from the recipe's corpus). Calls go through a client
 * of the recipe's endpoints and the store's cache, recorded like the loop's (role
 * "quality_pass", callrec.h), each with its own seed (label "quality_pass"): a rerun answers
 * every call from the cache, and no call is paid twice.
 */
#ifndef AD_QPASS_H
#define AD_QPASS_H

#include <jansson.h>
#include <stdint.h>

#include "recipe/recipe.h"
#include "store/store.h"

/* Re-check the accepted examples of run (st open for writing; rc->finalize.quality set).
 * *out (new): {"endpoint", "model", "checked", "failed", "invalid",
 *   "examples": {example_id: {"source_id", "pass", "issues": [...], "feedback", "reason"}}}
 * where "reason" is "quality_pass: <issues>" for a failed example and "invalid" counts replies
 * that did not parse (their examples are kept). 0, or an AD_E* code with a message in err (the
 * corpus cannot be read, an example's source is not in it, a call failed, the store failed). */
struct qpass_calls {
  int64_t sent, cache_hits; /* calls sent, calls answered from the cache */
};
/* counts (may be NULL) gets the pass's call counts, kept out of *out so that the stored analysis
 * is the same whether the calls were paid or answered from the cache. */
int qpass_run(const struct recipe *rc, store *st, store_id run, json_t **out,
              struct qpass_calls *counts, char *err, size_t errlen);

#endif
