/* card_analysis.c - the data card's "Dataset-level analysis" section: the counts of each step
 * of the run's stored analysis (the recipe's finalize:, docs/analyze.md), and its "Batched
 * dataset feedback" section: the dataset notes the run gave (the recipe's analysis:). */
#include <string.h>

#include "report/report.h"
#include "util/jsonx.h"

static int card_finalize(store *st, store_id run, struct buf *out, char *err, size_t n);

struct notes_seen {
  json_t *last; /* the event of the highest checkpoint */
  long long every;
};

static int note_event(void *ud, const json_t *row) {
  struct notes_seen *s = ud;
  const json_t *ev = json_object_get(row, "event");
  const char *msg = jx_str(ev, "msg");
  if (!msg || strcmp(msg, "dataset note")) return 0;
  s->every = jx_int(ev, "every", 0);
  if (!s->last || jx_int(ev, "checkpoint", 0) >= jx_int(s->last, "checkpoint", 0)) {
    json_decref(s->last);
    s->last = json_incref((json_t *)ev);
  }
  return 0;
}

/* The notes are events (a resumed run records a checkpoint again: the highest counts). */
static int card_notes(store *st, store_id run, struct buf *out, char *err, size_t n) {
  struct notes_seen s = {NULL, 0};
  int rc = store_events_each(st, run, note_event, &s);
  if (rc) return report_err(err, n, rc, "%s", store_errmsg(st));
  if (!s.last) return 0;
  rc = buf_printf(out,
                  "## Batched dataset feedback\n\n"
                  "The recipe's `analysis: {every: %lld}` gave the orchestrator (the challenger in "
                  "rounds without its instructions) a dataset note, renewed every %lld accepted "
                  "examples in source order (docs/analyze.md): %lld notes. The last, after %lld "
                  "examples of the first %lld sources:\n\n```\n%s\n```\n\n",
                  s.every, s.every, jx_int(s.last, "checkpoint", 0), jx_int(s.last, "examples", 0),
                  jx_int(s.last, "sources", 0),
                  jx_str(s.last, "note") ? jx_str(s.last, "note") : "");
  json_decref(s.last);
  if (rc) return report_err(err, n, rc, "rendering the data card's feedback section");
  return 0;
}

int report_card_analysis(store *st, store_id run, struct buf *out, char *err, size_t n) {
  int rc = card_finalize(st, run, out, err, n);
  return rc ? rc : card_notes(st, run, out, err, n);
}

static int card_finalize(store *st, store_id run, struct buf *out, char *err, size_t n) {
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
  const json_t *qp = json_object_get(a, "quality_pass");
  if (!rc && qp) /* after the table's blank line: its own line */
    rc = buf_printf(&b,
                    "The end-of-loop quality pass (model `%s` on endpoint `%s`, the quality "
                    "verifier's prompt) re-checked %lld accepted examples: %lld failed (removed "
                    "with reason `quality_pass: <issues>`), %lld replies did not parse (kept).\n\n",
                    jx_str(qp, "model") ? jx_str(qp, "model") : "?",
                    jx_str(qp, "endpoint") ? jx_str(qp, "endpoint") : "?", jx_int(qp, "checked", 0),
                    jx_int(qp, "failed", 0), jx_int(qp, "invalid", 0));
  if (!rc) rc = buf_append(out, b.data, b.len);
  buf_release(&b);
  json_decref(a);
  if (rc) return report_err(err, n, rc, "rendering the data card's analysis section");
  return 0;
}
