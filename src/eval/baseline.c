/* baseline.c - the CoT-Self-Instruct filters (see baseline.h). */
#include "eval/baseline.h"

#include <math.h>
#include <string.h>

void bl_params_default(struct bl_params *p) {
  p->k = 4;
  p->rip_threshold = 0.5;
  p->ac_min_share = 0.5;
}

int bl_params_check(const struct bl_params *p, char *err, size_t errlen) {
  if (p->k < 1 || p->k > BL_MAX_K) {
    ad_set_err(err, errlen, "cot k must be an integer in 1..%d, got %d", BL_MAX_K, p->k);
    return AD_EINVAL;
  }
  if (!isfinite(p->rip_threshold) || p->rip_threshold < 0 || p->rip_threshold > 1) {
    ad_set_err(err, errlen, "rip threshold must be in [0, 1], got %g", p->rip_threshold);
    return AD_EINVAL;
  }
  if (!isfinite(p->ac_min_share) || p->ac_min_share <= 0 || p->ac_min_share > 1) {
    ad_set_err(err, errlen, "answer-consistency share must be in (0, 1], got %g", p->ac_min_share);
    return AD_EINVAL;
  }
  return 0;
}

int bl_rip(const double *scores, int n, double threshold, double *quality) {
  if (n <= 0) {
    if (quality) *quality = 0;
    return 0;
  }
  double q = scores[0];
  for (int i = 1; i < n; i++)
    if (scores[i] < q) q = scores[i];
  if (quality) *quality = q;
  return q >= threshold;
}

int bl_same_answer(const char *a, const char *b) {
  if (!a || !b || !*a || !*b) return 0;
  double x, y;
  if (score_parse_number(a, &x) == 0 && score_parse_number(b, &y) == 0)
    return score_match(SCORE_NUMERIC, a, b);
  return score_match(SCORE_NORMALISED, a, b);
}

void bl_majority(const char *const *answers, int n, struct bl_majority *out) {
  memset(out, 0, sizeof *out);
  out->winner = -1;
  if (n <= 0) return;
  if (n > BL_MAX_K) n = BL_MAX_K;
  int group[BL_MAX_K]; /* group leader index, -1 for no answer */
  int size[BL_MAX_K];
  for (int i = 0; i < n; i++) {
    group[i] = -1;
    size[i] = 0;
    if (!answers[i] || !*answers[i]) continue;
    group[i] = i;
    for (int j = 0; j < i; j++)
      if (group[j] == j && bl_same_answer(answers[j], answers[i])) {
        group[i] = j;
        break;
      }
    size[group[i]]++;
  }
  int best = -1, best_n = 0, ties = 0;
  for (int i = 0; i < n; i++) {
    if (group[i] != i) continue;
    if (size[i] > best_n) {
      best = i;
      best_n = size[i];
      ties = 0;
    } else if (size[i] == best_n) {
      ties++;
    }
  }
  out->count = best_n;
  out->tied = ties > 0;
  out->winner = ties ? -1 : best;
  out->share = (double)best_n / (double)n;
}

int bl_answer_consistency(const char *const *answers, int n, const char *reference,
                          double min_share, struct bl_majority *maj) {
  struct bl_majority m;
  bl_majority(answers, n, &m);
  if (maj) *maj = m;
  if (m.winner < 0) return 0;
  if (m.share + 1e-12 < min_share) return 0;
  return bl_same_answer(answers[m.winner], reference);
}
