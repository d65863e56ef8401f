/* feedback.h - the challenger's refinement feedback and the orchestrator's history.
 *
 * The text follows the paper's refinement message (and the prompt <-> sim
 * contract, helpers/contract.md):
 *
 *   REFINEMENT: The following questions were previously generated for this source but did not meet our criteria:
 *
 *   Questions that were TOO EASY (weak model scored too high):
 *   1. [<question_type>] "<question>" — weak avg: 83%
 *
 *   Questions that FAILED ON STRONG (weak was low but strong also struggled or scored worse):
 *   2. [<question_type>] "<question>" — weak avg: 20%, strong avg: 40%, gap: 20%
 *
 *   Questions that FAILED QUALITY CHECK (quality verifier rejected):
 *   3. [<question_type>] "<question>" — QV reason: <reason>: <message>
 *
 *   Generate an ENTIRELY NEW question from a DIFFERENT angle that requires deeper reasoning.
 *
 * Only non-empty groups appear; numbering continues across groups; inside a
 * group items keep round order. Percentages are rounded integers (gap may be
 * negative). Verdict -> group:
 *   "too_easy"                              -> TOO EASY
 *   "too_hard", "failed_on_strong", "no_gap" -> FAILED ON STRONG (too_hard is a
 *       weak answer scoring 0 before the strong solver ran: the line then reads
 *       "weak avg: 20%, strong avg: n/a, gap: n/a")
 *   "parse_error", "check:*", "quality:*", "schema*", "loop_judge:*" -> FAILED QUALITY CHECK
 *   NULL, "", "accepted", anything else (e.g. infrastructure errors) -> omitted
 * Question text is put on one line (runs of whitespace -> one space) and cut to
 * FB_MAX_QUESTION bytes on a UTF-8 boundary with "…". A missing question_type
 * prints as "unspecified"; a missing question as "(no question: the reply did
 * not parse)".
 *
 * Pure functions, thread-safe.
 */
#ifndef AD_FEEDBACK_H
#define AD_FEEDBACK_H

#include <jansson.h>
#include <stddef.h>

#include "util/buf.h"

#define FB_MAX_QUESTION 600

enum fb_group { FB_NONE = 0, FB_TOO_EASY, FB_FAILED_ON_STRONG, FB_QUALITY };

/* One earlier round of this source. All strings borrowed, may be NULL. */
struct fb_round {
  int round; /* 1-based, for the history block */
  const char *question_type;
  const char *question;
  const char *verdict; /* rejection reason (see above) or NULL/"accepted" */
  double weak_mean, strong_mean, gap;
  int strong_ran;           /* 0: strong avg/gap print as n/a */
  const char *qv_reason;    /* quality group: shown after "QV reason: "; NULL = verdict */
  const char *qv_message;   /* appended as ": <message>" when non-empty */
  const char *weak_excerpt; /* optional excerpt of a weak answer (history only) */
};

enum fb_group fb_group_of(const char *verdict);

/* The three headings and the closing sentence, exactly as emitted. */
extern const char *const fb_heading_too_easy;
extern const char *const fb_heading_failed_on_strong;
extern const char *const fb_heading_quality;
extern const char *const fb_closing;
extern const char *const fb_orchestrator_heading; /* "Instructions from the lead data scientist:" */

/* Append the challenger's feedback block for rounds r[0..n) to out. When no
 * round falls in a group nothing is written for the groups (no REFINEMENT line,
 * no closing sentence). When orchestrator_analysis is non-empty it is appended
 * (after a blank line if anything precedes it) as
 *   "Instructions from the lead data scientist:\n<analysis>".
 * Output ends without a trailing newline. Returns 0 or AD_ETOOBIG (out's cap). */
int fb_compose(struct buf *out, const struct fb_round *r, int n, const char *orchestrator_analysis);

/* Append the orchestrator's history: the same group lines as fb_compose (same
 * numbering, no REFINEMENT line, no closing sentence), each item followed by
 * an indented detail line
 *   "   round 2, verdict too_easy; a weak answer began: \"...\""
 * (the excerpt part only when weak_excerpt is set; cut to 300 bytes), then a
 * blank line and one summary line:
 *   "Rounds so far: 3 (too easy: 1, failed on strong: 1, failed quality check: 1, other: 0)."
 * (items that share a round number - a parallel round's candidates - make it
 * "Rounds so far: 2, with 5 candidates (...)"; the counts are per item).
 * n == 0 writes "No earlier rounds for this source." Returns 0 or AD_ETOOBIG. */
int fb_history(struct buf *out, const struct fb_round *r, int n);

/* The challenger's repair turn: the user message that follows its unusable reply,
 *   "Your reply could not be used: <problem>\nReply again with only the corrected JSON
 *    object, with the same content and nothing before or after it."
 * written into out[cap] (cut at cap, as snprintf). */
void fb_repair_message(char *out, size_t cap, const char *problem);

/* The judge's repair note, put before the judge's task in its repair turn: names the
 * problem and restates the reply's shape (verifiable: {"correct", "reason"}; rubric:
 * one verdict for each criterion 1..n). Written into out[cap] as snprintf. */
void fb_judge_repair_note(char *out, size_t cap, int verifiable, int n, const char *problem);

/* Several challengers per round (roles.challenger.parallel > 1): the line appended to the end
 * of challenger k's (1-based) last user message, so that the n candidates of a round come
 * from varied angles while the prompt's start (its shared prefix) stays the same:
 *   "\n\nThis round <n> challengers write a candidate for this source at the same time, and
 *    you are challenger <k> of <n>. Take angle <k> of <n>: ..."
 * Written into out[cap] as snprintf. */
void fb_angle_line(char *out, size_t cap, int k, int n);

/* Every text the program itself writes into prompts, as specimens rendered by the
 * functions above over fixed sample rounds (placeholders in <angle brackets>):
 * {"feedback_block": {"text", "sha256"}, "orchestrator_history": ..., "challenger_repair":
 *  ..., "judge_repair_rubric": ..., "judge_repair_verifiable": ..., "challenger_angle": ...}. The run records it;
 * the data card shows it with the hashes. New reference. */
json_t *fb_program_texts(void);

#endif
