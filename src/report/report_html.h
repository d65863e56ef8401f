/* report_html.h - report.html: one self-contained page about one or more runs
 * (`autodata report`, docs/report.md).
 *
 * The page holds everything inline: CSS, SVG plots drawn by svg.c and a little
 * JavaScript for the trajectory browser (filter by verdict and reason, text search,
 * the same filter from the URL fragment: #verdict=accepted&reason=too_easy&q=text).
 * It loads nothing from the network. Every stored text is escaped (html.h).
 *
 * Per run: a summary (sources, accepted, acceptance rate, rounds to accept, calls,
 * tokens and cost by role, wall time, the recipe and its models, the acceptance
 * bounds), the plots (acceptance by round, rounds to accept, weak vs strong mean with
 * the acceptance region, rejection reasons by round, cost by role), the optimisation's
 * validation curve and lineage when the store holds an `autodata optimize` run, and the
 * trajectory browser: one row per source of the run, and for the sources it includes
 * every round (report/show.h's document: orchestrator instructions, the candidate,
 * checks, quality verdict, every solver answer with the judge's per-criterion verdicts,
 * statistics, verdict and reason).
 * Size rule: with more than max_traj sources (and not all) the full trajectories are
 * those of the max_traj sources whose source id hashes lowest (a deterministic, unbiased
 * sample); every other source still has its row (state, rounds, verdict, reasons).
 * Several runs: a comparison section first (compare.h's table and the overlaid
 * distributions of the datasets' weak mean and gap), then each run as above.
 *
 * Errors: 0 or a negative AD_E* code with a message in err (store read errors with
 * the store's message, AD_ETOOBIG past the page's size cap, AD_EIO writing).
 */
#ifndef AD_REPORT_HTML_PAGE_H
#define AD_REPORT_HTML_PAGE_H

#include <stddef.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

#define REPORT_HTML_MAX_TRAJ 300 /* default: full trajectories for at most this many sources */
#define REPORT_HTML_MAX_RUNS 16

struct report_html_run {
  store *st;         /* open (read-only is enough) */
  store_id run;      /* 0 = the latest */
  const char *label; /* e.g. the path given; NULL = the store's path */
};

struct report_html_opts {
  int all;      /* every source's full trajectory */
  int max_traj; /* 0 = REPORT_HTML_MAX_TRAJ */
};

/* Render the page of runs[0..n) (1 <= n <= REPORT_HTML_MAX_RUNS) into out (appended).
 * opts may be NULL (defaults). */
AD_WUR int report_html_render(const struct report_html_run *runs, int n,
                              const struct report_html_opts *opts, struct buf *out, char *err,
                              size_t errn);

/* Render and write the page atomically to path. */
AD_WUR int report_write_html(const struct report_html_run *runs, int n,
                             const struct report_html_opts *opts, const char *path, char *err,
                             size_t errn);

#endif
