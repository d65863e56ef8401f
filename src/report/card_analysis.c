/* card_analysis.c - the data card's "Dataset-level analysis" section: the counts of each step
 * of the run's stored analysis (the recipe's finalize:, docs/analyze.md). */
#include <string.h>

#include "report/report.h"
#include "util/jsonx.h"

int report_card_analysis(store *st, store_id run, struct buf *out, char *err, size_t n) {
  json_t *a = NULL;
  int rc = store_analysis_get(st, run, &a);
  if (rc == AD_ENOTFOUND) return 0;
  if (rc) return report_err(err, n, rc, "%s", store_errmsg(st));
  const json_t *nd = json_object_get(a, "near_duplicates"),
               *ct = json_object_get(a, "contamination"), *dv = json_object_get(a, "diversity"),
               *qt = json_object_get(dv, "question_types"), *d = json_object_get(dv, "distinct"),
               *so = json_object_get(dv, "sources");
  int removes = json_is_true(json_object_get(json_object_get(a, "finalize"), "remove"));
  struct buf b = BUF_INIT;
  rc = buf_printf(
      &b,
      "## Dataset-level analysis\n\n"
      "After the loop the recipe's `finalize:` step analysed the %lld accepted examples "
      "(docs/analyze.md); %s.\n\n"
      "| step | result |\n|---|---|\n"
      "| near-duplicates (Jaccard >= %g over %lld-word shingles of the question) | %lld pairs in "
      "%lld clusters, %lld removed (kept per cluster: %s) |\n"
      "| contamination (%lld-gram overlap with %lld reference items) | %lld examples flagged |\n"
      "| examples kept | %lld |\n"
      "| question types | %lld, entropy %.3f bits |\n"
      "| distinct-1 / 2 / 3 of the questions | %.3f / %.3f / %.3f |\n"
      "| source coverage | %lld of %lld sources (%.3f) |\n\n",
      jx_int(a, "examples", 0),
      removes
          ? "the removed examples are in `removed.jsonl` with their reason, not in "
            "`dataset.jsonl`"
          : "nothing was removed (`finalize.remove: false`); `analysis.json` lists what would be",
      jx_num(nd, "threshold", 0), jx_int(nd, "shingle_words", 0), jx_int(nd, "pairs_found", 0),
      jx_int(nd, "clusters_found", 0), jx_int(nd, "removed", 0),
      jx_str(nd, "keep_rule") ? jx_str(nd, "keep_rule") : "?", jx_int(ct, "ngram_words", 0),
      jx_int(ct, "reference_items", 0), jx_int(ct, "flagged", 0), jx_int(a, "kept", 0),
      jx_int(qt, "types", 0), jx_num(qt, "entropy_bits", 0), jx_num(d, "1", 0), jx_num(d, "2", 0),
      jx_num(d, "3", 0), jx_int(so, "with_examples", 0), jx_int(so, "total", 0),
      jx_num(so, "coverage", 0));
  if (!rc) rc = buf_append(out, b.data, b.len);
  buf_release(&b);
  json_decref(a);
  if (rc) return report_err(err, n, rc, "rendering the data card's analysis section");
  return 0;
}
