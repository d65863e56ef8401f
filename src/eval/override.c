/* override.c - programmatic overrides (see override.h). */
#include "eval/override.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/candidate.h"
#include "util/err.h"
#include "util/jsonx.h"
#include "util/mem.h"

void override_release(struct override_set *o) {
  if (!o) return;
  for (int i = 0; i < o->n; i++) {
    regfree(&o->re[i]);
    free(o->src[i]);
  }
  free(o->re);
  free(o->src);
  memset(o, 0, sizeof *o);
}

int override_compile(struct override_set *o, const char *const *patterns, int n,
                     int max_question_chars, char *err, size_t errlen) {
  override_release(o);
  if (n < 0 || n > OVERRIDE_MAX_PATTERNS) {
    ad_set_err(err, errlen, "at most %d patterns", OVERRIDE_MAX_PATTERNS);
    return AD_EINVAL;
  }
  o->max_question_chars = max_question_chars;
  o->re = xcalloc((size_t)n + 1, sizeof *o->re);
  o->src = xcalloc((size_t)n + 1, sizeof *o->src);
  for (int i = 0; i < n; i++) {
    int rc = regcomp(&o->re[i], patterns[i], REG_EXTENDED | REG_ICASE);
    if (rc) {
      char msg[200];
      regerror(rc, &o->re[i], msg, sizeof msg);
      ad_set_err(err, errlen, "pattern %d '%s' is not a valid regular expression: %s", i + 1,
                 patterns[i], msg);
      override_release(o);
      return AD_EINVAL;
    }
    o->src[i] = xstrdup(patterns[i]);
    o->n = i + 1;
  }
  return 0;
}

static void set_issue(struct cand_issue *is, const char *reason, const char *msg) {
  if (!is) return;
  is->kind = CAND_CHECK;
  snprintf(is->reason, sizeof is->reason, "%s", reason);
  snprintf(is->message, sizeof is->message, "%s", msg);
}

/* The first pattern matching text: its index and the matched bytes, else -1. */
static int first_match(const struct override_set *o, const char *text, regmatch_t *m) {
  for (int i = 0; i < o->n; i++)
    if (!regexec(&o->re[i], text, 1, m, 0)) return i;
  return -1;
}

int override_check(const struct override_set *o, const char *question, const char *context,
                   struct cand_issue *is) {
  if (!o) return 0;
  char msg[512];
  size_t nq = jx_utf8_chars(question ? question : "");
  if (o->max_question_chars > 0 && nq > (size_t)o->max_question_chars) {
    snprintf(msg, sizeof msg,
             "the question has %zu characters; at most %d are allowed: ask one focused "
             "question and move background into the context",
             nq, o->max_question_chars);
    set_issue(is, "check:question_length", msg);
    return AD_EINVAL;
  }
  const char *fields[2] = {question, context}, *names[2] = {"question", "context"};
  for (int f = 0; f < 2; f++) {
    if (!fields[f] || !*fields[f]) continue;
    regmatch_t m;
    int k = first_match(o, fields[f], &m);
    if (k < 0) continue;
    int len = (int)(m.rm_eo - m.rm_so);
    if (len > 120) len = 120;
    snprintf(msg, sizeof msg,
             "the %s matches the refused pattern '%s': \"%.*s\"; rewrite it without that text",
             names[f], o->src[k], len, fields[f] + m.rm_so);
    set_issue(is, "check:pattern", msg);
    return AD_EINVAL;
  }
  return 0;
}
