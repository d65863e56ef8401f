/* screen.c - the evaluation order of a parallel round's survivors (screen.h). */
#include "eval/screen.h"

int screen_before(const struct screen_cand *a, int ia, const struct screen_cand *b, int ib) {
  if (a->qv_issues != b->qv_issues) return a->qv_issues < b->qv_issues;
  if (a->repaired != b->repaired) return a->repaired < b->repaired;
  return ia < ib;
}

int screen_order(const struct screen_cand *c, int n, int *order) {
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (!c[i].survived) continue;
    int j = k++; /* insertion sort: n is at most a handful */
    while (j > 0 && screen_before(&c[i], i, &c[order[j - 1]], order[j - 1])) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = i;
  }
  return k;
}
