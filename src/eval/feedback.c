/* feedback.c - challenger feedback and orchestrator history (see feedback.h). */
#include "eval/feedback.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/hash.h"

const char *const fb_heading_too_easy =
    "Questions that were TOO EASY (weak model scored too high):";
const char *const fb_heading_failed_on_strong =
    "Questions that FAILED ON STRONG (weak was low but strong also struggled or scored worse):";
const char *const fb_heading_quality =
    "Questions that FAILED QUALITY CHECK (quality verifier rejected):";
const char *const fb_closing =
    "Generate an ENTIRELY NEW question from a DIFFERENT angle that requires deeper reasoning.";
const char *const fb_orchestrator_heading = "Instructions from the lead data scientist:";

static const char refinement_line[] =
    "REFINEMENT: The following questions were previously generated for this source but did not "
    "meet our criteria:";

enum fb_group fb_group_of(const char *v) {
  if (!v || !*v || strcmp(v, "accepted") == 0) return FB_NONE;
  if (strcmp(v, "too_easy") == 0) return FB_TOO_EASY;
  if (strcmp(v, "too_hard") == 0 || strcmp(v, "failed_on_strong") == 0 || strcmp(v, "no_gap") == 0)
    return FB_FAILED_ON_STRONG;
  if (strncmp(v, "parse_error", 11) == 0 || strncmp(v, "check:", 6) == 0 ||
      strncmp(v, "quality:", 8) == 0 || strncmp(v, "schema", 6) == 0 ||
      strncmp(v, "loop_judge:", 11) == 0)
    return FB_QUALITY;
  return FB_NONE;
}

static long pct(double x) {
  if (!isfinite(x)) return 0;
  return lround(x * 100.0);
}

/* Append s on one line: whitespace runs -> one space, trimmed, cut to max
 * bytes on a UTF-8 boundary with an ellipsis. */
static int put_line(struct buf *out, const char *s, size_t max) {
  int rc = 0;
  size_t k = 0;
  int space = 0, any = 0;
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = any;
      continue;
    }
    if (k >= max && (c & 0xC0) != 0x80) return buf_puts(out, "…");
    if (space) {
      if ((rc = buf_putc(out, ' '))) return rc;
      k++;
      space = 0;
    }
    if ((rc = buf_putc(out, (char)(c < 0x20 ? ' ' : c)))) return rc;
    k++;
    any = 1;
  }
  return 0;
}

static int put_item(struct buf *out, int num, const struct fb_round *r, enum fb_group g) {
  int rc;
  const char *qt = r->question_type && r->question_type[0] ? r->question_type : "unspecified";
  if ((rc = buf_printf(out, "%d. [", num))) return rc;
  if ((rc = put_line(out, qt, 80))) return rc;
  if ((rc = buf_puts(out, "] \""))) return rc;
  if (r->question && r->question[0]) rc = put_line(out, r->question, FB_MAX_QUESTION);
  else rc = buf_puts(out, "(no question: the reply did not parse)");
  if (rc) return rc;
  if ((rc = buf_puts(out, "\" — "))) return rc;
  switch (g) {
  case FB_TOO_EASY: return buf_printf(out, "weak avg: %ld%%", pct(r->weak_mean));
  case FB_FAILED_ON_STRONG:
    if (r->strong_ran)
      return buf_printf(out, "weak avg: %ld%%, strong avg: %ld%%, gap: %ld%%", pct(r->weak_mean),
                        pct(r->strong_mean), pct(r->gap));
    return buf_printf(out, "weak avg: %ld%%, strong avg: n/a, gap: n/a", pct(r->weak_mean));
  case FB_QUALITY: {
    const char *reason = r->qv_reason && r->qv_reason[0] ? r->qv_reason : r->verdict;
    if ((rc = buf_puts(out, "QV reason: "))) return rc;
    if ((rc = put_line(out, reason ? reason : "rejected", 200))) return rc;
    if (r->qv_message && r->qv_message[0]) {
      if ((rc = buf_puts(out, ": "))) return rc;
      if ((rc = put_line(out, r->qv_message, 1000))) return rc;
    }
    return 0;
  }
  case FB_NONE: break;
  }
  return 0;
}

/* Groups in order; history adds round/excerpt lines. Sets *items. */
static int put_groups(struct buf *out, const struct fb_round *r, int n, int history, int *items) {
  static const enum fb_group order[] = {FB_TOO_EASY, FB_FAILED_ON_STRONG, FB_QUALITY};
  const char *heads[] = {fb_heading_too_easy, fb_heading_failed_on_strong, fb_heading_quality};
  int num = 0, rc;
  for (int gi = 0; gi < 3; gi++) {
    int first = 1;
    for (int i = 0; i < n; i++) {
      if (fb_group_of(r[i].verdict) != order[gi]) continue;
      if (first) {
        if (num > 0 && (rc = buf_puts(out, "\n\n"))) return rc;
        if ((rc = buf_puts(out, heads[gi]))) return rc;
        first = 0;
      }
      if ((rc = buf_putc(out, '\n'))) return rc;
      if ((rc = put_item(out, ++num, &r[i], order[gi]))) return rc;
      if (history) {
        if ((rc = buf_printf(out, "\n   round %d, verdict %s", r[i].round, r[i].verdict)))
          return rc;
        if (r[i].weak_excerpt && r[i].weak_excerpt[0]) {
          if ((rc = buf_puts(out, "; a weak answer began: \""))) return rc;
          if ((rc = put_line(out, r[i].weak_excerpt, 300))) return rc;
          if ((rc = buf_putc(out, '"'))) return rc;
        }
      }
    }
  }
  *items = num;
  return 0;
}

int fb_compose(struct buf *out, const struct fb_round *r, int n, const char *analysis) {
  int rc, items = 0;
  int any = 0;
  for (int i = 0; i < n; i++)
    if (fb_group_of(r[i].verdict) != FB_NONE) any = 1;
  if (any) {
    if ((rc = buf_puts(out, refinement_line))) return rc;
    if ((rc = buf_puts(out, "\n\n"))) return rc;
    if ((rc = put_groups(out, r, n, 0, &items))) return rc;
    if ((rc = buf_puts(out, "\n\n"))) return rc;
    if ((rc = buf_puts(out, fb_closing))) return rc;
  }
  if (analysis && analysis[0]) {
    size_t a = 0, e = strlen(analysis);
    while (a < e && (analysis[a] == '\n' || analysis[a] == ' ' || analysis[a] == '\r' ||
                     analysis[a] == '\t'))
      a++;
    while (e > a && (analysis[e - 1] == '\n' || analysis[e - 1] == ' ' || analysis[e - 1] == '\r' ||
                     analysis[e - 1] == '\t'))
      e--;
    if (e > a) {
      if (any && (rc = buf_puts(out, "\n\n"))) return rc;
      if ((rc = buf_puts(out, fb_orchestrator_heading))) return rc;
      if ((rc = buf_putc(out, '\n'))) return rc;
      if ((rc = buf_append(out, analysis + a, e - a))) return rc;
    }
  }
  return 0;
}

int fb_history(struct buf *out, const struct fb_round *r, int n) {
  int rc, items = 0;
  if (n <= 0) return buf_puts(out, "No earlier rounds for this source.");
  if ((rc = put_groups(out, r, n, 1, &items))) return rc;
  int c[4] = {0, 0, 0, 0};
  for (int i = 0; i < n; i++) c[fb_group_of(r[i].verdict)]++;
  if (items && (rc = buf_puts(out, "\n\n"))) return rc;
  int rounds = 0; /* several candidates of one round (challenger.parallel) share its number */
  for (int i = 0; i < n; i++) {
    int seen = 0;
    for (int j = 0; j < i && !seen; j++) seen = r[j].round == r[i].round;
    rounds += !seen;
  }
  if (rounds != n && (rc = buf_printf(out, "Rounds so far: %d, with %d candidates", rounds, n)))
    return rc;
  if (rounds == n && (rc = buf_printf(out, "Rounds so far: %d", n))) return rc;
  return buf_printf(out,
                    " (too easy: %d, failed on strong: %d, failed quality check: %d, other: %d).",
                    c[FB_TOO_EASY], c[FB_FAILED_ON_STRONG], c[FB_QUALITY], c[FB_NONE]);
}

static void angle_text(char *out, size_t cap, const char *k, const char *n) {
  snprintf(out, cap,
           "\n\nThis round %s challengers write a candidate for this source at the same time, "
           "and you are challenger %s of %s. Take angle %s of %s: ask about a different part "
           "of the source, or test a different kind of reasoning, than the most obvious "
           "question would, so that the candidates differ.",
           n, k, n, k, n);
}

void fb_angle_line(char *out, size_t cap, int k, int n) {
  char ks[16], ns[16];
  snprintf(ks, sizeof ks, "%d", k);
  snprintf(ns, sizeof ns, "%d", n);
  angle_text(out, cap, ks, ns);
}

void fb_repair_message(char *out, size_t cap, const char *problem) {
  snprintf(out, cap,
           "Your reply could not be used: %s\nReply again with only the corrected JSON object, "
           "with the same content and nothing before or after it.",
           problem);
}

void fb_judge_repair_note(char *out, size_t cap, int verifiable, int n, const char *problem) {
  if (verifiable)
    snprintf(out, cap,
             "NOTE: your previous judgement of this response could not be used: %s\nReply "
             "with only the JSON object {\"correct\": true or false, \"reason\": \"...\"}.\n\n",
             problem);
  else
    snprintf(out, cap,
             "NOTE: your previous judgement of this response could not be used: %s\nReply "
             "with only the JSON object: exactly one verdict for each criterion from 1 to %d, "
             "each with a boolean \"met\".\n\n",
             problem, n);
}

static void text_add(json_t *o, const char *name, const char *text) {
  char sha[65];
  sha256_hex(text, strlen(text), sha);
  json_object_set_new(o, name, json_pack("{s:s, s:s}", "text", text, "sha256", sha));
}

json_t *fb_program_texts(void) {
  /* one sample round per group, and one outside every group */
  static const struct fb_round sample[] = {
      {1, "<question_type>", "<question>", "too_easy", 0.83, 0, 0, 0, NULL, NULL, "<weak answer>"},
      {2, "<question_type>", "<question>", "failed_on_strong", 0.2, 0.4, 0.2, 1, NULL, NULL, NULL},
      {3, "<question_type>", "<question>", "quality:leakage", 0, 0, 0, 0, "<reason>", "<message>",
       NULL},
      {4, "<question_type>", "<question>", "error:weak", 0, 0, 0, 0, NULL, NULL, NULL},
  };
  int n = (int)(sizeof sample / sizeof *sample);
  json_t *o = json_object();
  struct buf b = BUF_INIT;
  if (!fb_compose(&b, sample, n, "<the orchestrator's instructions>"))
    text_add(o, "feedback_block", buf_str(&b));
  buf_reset(&b);
  if (!fb_history(&b, sample, n)) text_add(o, "orchestrator_history", buf_str(&b));
  buf_release(&b);
  char t[1024];
  fb_repair_message(t, sizeof t, "<the parse error>");
  text_add(o, "challenger_repair", t);
  fb_judge_repair_note(t, sizeof t, 0, 5, "<the problem>");
  text_add(o, "judge_repair_rubric", t);
  fb_judge_repair_note(t, sizeof t, 1, 0, "<the problem>");
  text_add(o, "judge_repair_verifiable", t);
  angle_text(t, sizeof t, "<k>", "<n>");
  text_add(o, "challenger_angle", t);
  return o;
}
