/* test_screen.c - the evaluation order of a parallel round's survivors (eval/screen.h). */
#include <criterion/criterion.h>

#include "eval/screen.h"

Test(screen_order, survivors_only_in_index_order_by_default) {
  struct screen_cand c[4] = {{1, 0, 0}, {0, 0, 0}, {1, 0, 0}, {1, 0, 0}};
  int order[4] = {-1, -1, -1, -1};
  cr_assert_eq(screen_order(c, 4, order), 3);
  cr_assert_eq(order[0], 0);
  cr_assert_eq(order[1], 2);
  cr_assert_eq(order[2], 3);
}

Test(screen_order, fewer_quality_issues_first) {
  struct screen_cand c[3] = {{1, 2, 0}, {1, 0, 0}, {1, 1, 0}};
  int order[3];
  cr_assert_eq(screen_order(c, 3, order), 3);
  cr_assert_eq(order[0], 1);
  cr_assert_eq(order[1], 2);
  cr_assert_eq(order[2], 0);
}

Test(screen_order, first_reply_before_repaired_then_index) {
  /* issues decide before the repair turn; the repair turn before the index */
  struct screen_cand c[4] = {{1, 0, 1}, {1, 0, 0}, {1, 1, 0}, {1, 0, 0}};
  int order[4];
  cr_assert_eq(screen_order(c, 4, order), 4);
  cr_assert_eq(order[0], 1);
  cr_assert_eq(order[1], 3);
  cr_assert_eq(order[2], 0);
  cr_assert_eq(order[3], 2);
}

Test(screen_order, none_survived) {
  struct screen_cand c[3] = {{0, 0, 0}, {0, 3, 1}, {0, 0, 0}};
  int order[3] = {7, 7, 7};
  cr_assert_eq(screen_order(c, 3, order), 0);
  cr_assert_eq(order[0], 7); /* nothing written */
}

Test(screen_order, total_and_stable) {
  /* every permutation of the same keys gives an order consistent with screen_before, and
   * equal keys keep their index order */
  struct screen_cand c[6] = {{1, 1, 0}, {1, 0, 1}, {1, 1, 0}, {1, 0, 0}, {1, 0, 1}, {1, 0, 0}};
  int order[6];
  cr_assert_eq(screen_order(c, 6, order), 6);
  int want[6] = {3, 5, 1, 4, 0, 2};
  for (int i = 0; i < 6; i++) cr_assert_eq(order[i], want[i], "position %d: %d", i, order[i]);
  for (int i = 0; i + 1 < 6; i++)
    cr_assert(!screen_before(&c[order[i + 1]], order[i + 1], &c[order[i]], order[i]));
}
