/* score.c - judge/verifier reply parsing and scoring (see score.h). */
#include "eval/score.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eval/extract.h"
#include "util/err.h"
#include "util/mem.h"

/* A JSON value as a boolean: true/false, 1/0, "yes"/"no"/"true"/"false"/
 * "pass"/"fail"/"met"/"unmet"/"1"/"0". Returns 0/1, or -1 when not a boolean. */
static int as_bool(const json_t *v) {
  if (json_is_boolean(v)) return json_is_true(v);
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    return i == 1 ? 1 : i == 0 ? 0 : -1;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    return d == 1.0 ? 1 : d == 0.0 ? 0 : -1;
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    while (isspace((unsigned char)*s)) s++;
    static const char *const yes[] = {"yes",     "true", "pass", "passed", "met",
                                      "correct", "1",    "y",    NULL};
    static const char *const no[] = {"no",      "false",     "fail", "failed", "unmet",
                                     "not met", "incorrect", "0",    "n",      NULL};
    size_t n = strlen(s);
    while (n && (isspace((unsigned char)s[n - 1]) || s[n - 1] == '.')) n--;
    for (int i = 0; yes[i]; i++)
      if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0) return 1;
    for (int i = 0; no[i]; i++)
      if (strlen(no[i]) == n && strncasecmp(s, no[i], n) == 0) return 0;
  }
  return -1;
}

/* ---- rubric judge ---- */

static int verdict_index(const json_t *v) {
  static const char *const keys[] = {"criterion",        "index", "number", "id",
                                     "criterion_number", NULL};
  for (int i = 0; keys[i]; i++) {
    json_t *x = json_object_get(v, keys[i]);
    if (json_is_integer(x)) {
      json_int_t k = json_integer_value(x);
      return (k < -1000000 || k > 1000000) ? -1000000 : (int)k;
    }
    if (json_is_real(x)) {
      double d = json_real_value(x);
      return (floor(d) == d && fabs(d) < 1e6) ? (int)d : -1000000;
    }
    if (json_is_string(x)) {
      const char *s = json_string_value(x);
      char *end;
      errno = 0;
      long k = strtol(s, &end, 10);
      if (end != s && errno == 0 && k > -1000000 && k < 1000000) return (int)k;
    }
  }
  return 0; /* no number: positional */
}

/* Append "a, b, c" style numbers to a message. */
static void list_nums(char *out, size_t cap, const int *nums, int n) {
  size_t k = strlen(out);
  for (int i = 0; i < n && k + 16 < cap; i++) {
    if (i == 6 && n > 7) {
      snprintf(out + k, cap - k, ", ... (%d in all)", n);
      return;
    }
    k += (size_t)snprintf(out + k, cap - k, "%s%d", i ? ", " : "", nums[i]);
  }
}

int score_parse_verdicts(const char *text, size_t len, int n, int *met, char *err, size_t errlen) {
  static const char *const keys[] = {"verdicts", NULL};
  char e1[300] = "";
  if (err && errlen) err[0] = 0;
  for (int i = 0; i < n; i++) met[i] = 0;
  json_t *root = extract_json(text, len, keys, EXTRACT_ALLOW_ARRAY, e1, sizeof e1);
  if (!root) {
    ad_set_err(err, errlen, "judge reply: %s", e1);
    return AD_EPARSE;
  }
  json_t *arr = json_is_array(root) ? root : json_object_get(root, "verdicts");
  if (!json_is_array(arr)) {
    ad_set_err(err, errlen,
               "judge reply: expected {\"verdicts\": [{\"criterion\": 1, \"met\": true}, ...]}");
    json_decref(root);
    return AD_EPARSE;
  }
  int rc = 0;
  int *count = xcalloc((size_t)(n > 0 ? n : 1), sizeof *count);
  int *bad = xcalloc(json_array_size(arr) + 1, sizeof *bad);
  int n_bad = 0, first_nonbool = 0;
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    if (!json_is_object(v)) {
      ad_set_err(err, errlen, "judge reply: verdict %zu is not an object", i + 1);
      rc = AD_EPARSE;
      goto out;
    }
    json_t *m = json_object_get(v, "met");
    if (!m) m = json_object_get(v, "satisfied");
    if (!m) m = json_object_get(v, "pass");
    int b = as_bool(m);
    int k = verdict_index(v);
    if (k == 0) k = (int)i + 1; /* positional */
    if (b < 0) {
      if (!first_nonbool) first_nonbool = k;
      continue;
    }
    if (k < 1 || k > n) {
      bad[n_bad++] = k;
      continue;
    }
    count[k - 1]++;
    met[k - 1] = b;
  }
  if (json_array_size(arr) == 0) {
    ad_set_err(err, errlen,
               "judge reply: the verdict list is empty; give one verdict for each "
               "of the %d criteria",
               n);
    rc = AD_EPARSE;
    goto out;
  }
  if (first_nonbool) {
    ad_set_err(err, errlen,
               "judge reply: the verdict for criterion %d has no boolean \"met\" (true or false)",
               first_nonbool);
    rc = AD_EPARSE;
    goto out;
  }
  int *miss = xcalloc((size_t)(n > 0 ? n : 1), sizeof *miss), n_miss = 0;
  int *dup = xcalloc((size_t)(n > 0 ? n : 1), sizeof *dup), n_dup = 0;
  for (int k = 0; k < n; k++) {
    if (count[k] == 0) miss[n_miss++] = k + 1;
    if (count[k] > 1) dup[n_dup++] = k + 1;
  }
  if (n_miss || n_dup || n_bad) {
    char msg[400] = "judge reply: the verdicts must cover criteria 1 to ";
    size_t l = strlen(msg);
    snprintf(msg + l, sizeof msg - l, "%d exactly once each;", n);
    if (n_miss) {
      l = strlen(msg);
      snprintf(msg + l, sizeof msg - l, " missing: ");
      list_nums(msg, sizeof msg, miss, n_miss);
    }
    if (n_dup) {
      l = strlen(msg);
      snprintf(msg + l, sizeof msg - l, "%s given more than once: ", n_miss ? ";" : "");
      list_nums(msg, sizeof msg, dup, n_dup);
    }
    if (n_bad) {
      l = strlen(msg);
      snprintf(msg + l, sizeof msg - l, "%s not in the rubric: ", n_miss || n_dup ? ";" : "");
      list_nums(msg, sizeof msg, bad, n_bad);
    }
    ad_set_err(err, errlen, "%s", msg);
    rc = AD_EPARSE;
  }
  free(miss);
  free(dup);
out:
  if (rc)
    for (int k = 0; k < n; k++) met[k] = 0;
  free(count);
  free(bad);
  json_decref(root);
  return rc;
}

double score_rubric(const int *weights, const int *met, int n) {
  double num = 0, den = 0;
  for (int i = 0; i < n; i++) {
    if (weights[i] > 0) den += weights[i];
    if (met[i]) num += weights[i];
  }
  if (den <= 0) return 0;
  double s = num / den;
  return s < 0 ? 0 : s > 1 ? 1 : s;
}

/* ---- verifiable ---- */

int score_matcher_parse(const char *name, enum score_matcher *m) {
  if (!name) return AD_EINVAL;
  if (!strcmp(name, "auto")) *m = SCORE_AUTO;
  else if (!strcmp(name, "exact")) *m = SCORE_EXACT;
  else if (!strcmp(name, "normalised") || !strcmp(name, "normalized")) *m = SCORE_NORMALISED;
  else if (!strcmp(name, "numeric")) *m = SCORE_NUMERIC;
  else if (!strcmp(name, "llm")) *m = SCORE_LLM;
  else return AD_EINVAL;
  return 0;
}

const char *score_matcher_name(enum score_matcher m) {
  switch (m) {
  case SCORE_AUTO: return "auto";
  case SCORE_EXACT: return "exact";
  case SCORE_NORMALISED: return "normalised";
  case SCORE_NUMERIC: return "numeric";
  case SCORE_LLM: return "llm";
  }
  return "exact";
}

/* Trim whitespace, markdown emphasis and a trailing '.'; returns a new string. */
static char *clean_answer(const char *s, size_t n) {
  size_t a = 0, b = n;
  for (;;) {
    while (a < b && (isspace((unsigned char)s[a]) || s[a] == '*' || s[a] == '_' || s[a] == '`'))
      a++;
    while (b > a && (isspace((unsigned char)s[b - 1]) || s[b - 1] == '*' || s[b - 1] == '_' ||
                     s[b - 1] == '`'))
      b--;
    if (b > a && s[b - 1] == '.') {
      b--;
      continue;
    }
    break;
  }
  return xstrndup(s + a, b - a);
}

/* Content of the last \boxed{...} in t[0..n) (balanced braces), or NULL. */
static char *last_boxed(const char *t, size_t n) {
  const char *best = NULL;
  size_t best_len = 0;
  for (size_t i = 0; i + 7 <= n; i++) {
    if (memcmp(t + i, "\\boxed{", 7) != 0) continue;
    size_t j = i + 7, depth = 1;
    for (; j < n; j++) {
      if (t[j] == '{') depth++;
      else if (t[j] == '}' && --depth == 0) break;
    }
    if (j < n) {
      best = t + i + 7;
      best_len = j - (i + 7);
    }
  }
  return best ? clean_answer(best, best_len) : NULL;
}

/* Byte range of the last number (digits with optional sign, separators,
 * decimal point, exponent, fraction) in t[0..n). Returns 0 when none. */
static int last_number(const char *t, size_t n, size_t *a, size_t *b) {
  size_t i = n;
  while (i > 0) {
    if (!isdigit((unsigned char)t[i - 1])) {
      i--;
      continue;
    }
    size_t e = i, s = i - 1;
    while (
        s > 0 &&
        (isdigit((unsigned char)t[s - 1]) || t[s - 1] == '.' || t[s - 1] == '/' ||
         (t[s - 1] == ',' && s >= 2 && isdigit((unsigned char)t[s - 2])) ||
         ((t[s - 1] == 'e' || t[s - 1] == 'E') && s >= 2 && isdigit((unsigned char)t[s - 2])) ||
         ((t[s - 1] == '-' || t[s - 1] == '+') && s >= 2 && (t[s - 2] == 'e' || t[s - 2] == 'E'))))
      s--;
    if (s > 0 && (t[s - 1] == '-' || t[s - 1] == '+') &&
        (s < 2 || !isalnum((unsigned char)t[s - 2])))
      s--;
    while (s < e && !isdigit((unsigned char)t[s]) && t[s] != '-' && t[s] != '+') s++;
    *a = s;
    *b = e;
    return 1;
  }
  return 0;
}

char *score_final_answer(const char *text, size_t len) {
  size_t n = 0;
  const char *t = extract_skip_think(text ? text : "", text ? len : 0, &n);
  /* 1. last "ANSWER:" */
  const char *hit = NULL;
  for (size_t i = 0; i + 7 <= n; i++)
    if (strncasecmp(t + i, "answer:", 7) == 0 && (i == 0 || !isalpha((unsigned char)t[i - 1])))
      hit = t + i + 7;
  /* also "**ANSWER**:" */
  for (size_t i = 0; i + 10 <= n; i++)
    if (strncasecmp(t + i, "answer**:", 9) == 0 && (i == 0 || !isalpha((unsigned char)t[i - 1])) &&
        (!hit || t + i + 9 > hit))
      hit = t + i + 9;
  if (hit) {
    size_t rest = n - (size_t)(hit - t);
    const char *nl = memchr(hit, '\n', rest);
    size_t l = nl ? (size_t)(nl - hit) : rest;
    /* an answer on the next line ("ANSWER:\n17") */
    size_t k = 0;
    while (k < l && isspace((unsigned char)hit[k])) k++;
    if (k == l && nl) {
      const char *p = nl + 1;
      size_t r2 = n - (size_t)(p - t);
      const char *nl2 = memchr(p, '\n', r2);
      return clean_answer(p, nl2 ? (size_t)(nl2 - p) : r2);
    }
    char *boxed = last_boxed(hit, l);
    if (boxed) return boxed;
    return clean_answer(hit, l);
  }
  /* 2. \boxed{} */
  char *boxed = last_boxed(t, n);
  if (boxed) return boxed;
  /* 3. last number */
  size_t a, b;
  if (last_number(t, n, &a, &b)) return xstrndup(t + a, b - a);
  /* 4. last non-empty line */
  size_t e = n;
  while (e > 0 && isspace((unsigned char)t[e - 1])) e--;
  size_t s = e;
  while (s > 0 && t[s - 1] != '\n') s--;
  return clean_answer(t + s, e - s);
}

/* Remove \boxed{ }, \text{ }, \mathrm{ } wrappers and '$' into a new string. */
static char *strip_latex(const char *s) {
  size_t n = strlen(s);
  char *o = xmalloc(n + 1);
  size_t k = 0;
  int depth_wrap = 0; /* open wrappers whose closing brace must be dropped */
  int depth = 0;
  int wrap_at[64];
  for (size_t i = 0; i < n;) {
    static const char *const wraps[] = {"\\boxed{",  "\\text{",   "\\mathrm{",
                                        "\\textbf{", "\\mathbf{", NULL};
    int w = 0;
    for (int q = 0; wraps[q]; q++) {
      size_t wl = strlen(wraps[q]);
      if (n - i >= wl && memcmp(s + i, wraps[q], wl) == 0) {
        if (depth_wrap < 64) wrap_at[depth_wrap++] = depth;
        depth++;
        i += wl;
        w = 1;
        break;
      }
    }
    if (w) continue;
    char c = s[i++];
    if (c == '$') continue;
    if (c == '{') depth++;
    if (c == '}') {
      depth--;
      if (depth_wrap > 0 && wrap_at[depth_wrap - 1] == depth) {
        depth_wrap--;
        continue;
      }
    }
    o[k++] = c;
  }
  o[k] = 0;
  return o;
}

static char *normalise(const char *s) {
  char *l = strip_latex(s);
  size_t n = strlen(l);
  char *o = xmalloc(n + 1);
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)l[i];
    if (!(isalnum(c) || c >= 0x80)) {
      i++;
      continue;
    }
    size_t j = i;
    while (j < n && (isalnum((unsigned char)l[j]) || (unsigned char)l[j] >= 0x80)) j++;
    size_t wl = j - i;
    int article = (wl == 1 && tolower(c) == 'a') || (wl == 2 && strncasecmp(l + i, "an", 2) == 0) ||
                  (wl == 3 && strncasecmp(l + i, "the", 3) == 0);
    if (!article)
      for (size_t q = i; q < j; q++) o[k++] = (char)tolower((unsigned char)l[q]);
    i = j;
  }
  o[k] = 0;
  free(l);
  return o;
}

/* Parse a plain number: sign, digits with optional thousands separators,
 * decimals, exponent. Whole string must be consumed. 0, or AD_EPARSE. */
static int parse_plain(const char *s, size_t n, double *v) {
  char buf[128];
  size_t k = 0;
  if (n == 0 || n >= sizeof buf) return AD_EPARSE;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == ',') {
      /* thousands separator: exactly three digits follow, a digit precedes */
      if (i == 0 || !isdigit((unsigned char)s[i - 1]) || i + 3 >= n + 0 ||
          !(isdigit((unsigned char)s[i + 1]) && isdigit((unsigned char)s[i + 2]) &&
            isdigit((unsigned char)s[i + 3])) ||
          (i + 4 < n && isdigit((unsigned char)s[i + 4])))
        return AD_EPARSE;
      continue;
    }
    if (c == ' ' || c == '_') continue;
    if (!(isdigit((unsigned char)c) || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+'))
      return AD_EPARSE;
    buf[k++] = c;
  }
  buf[k] = 0;
  if (k == 0) return AD_EPARSE;
  char *end;
  errno = 0;
  double d = strtod(buf, &end);
  if (end == buf || *end || !isfinite(d)) return AD_EPARSE;
  /* reject things strtod accepts that are not numbers for us (hex, inf handled above) */
  *v = d;
  return 0;
}

int score_parse_number(const char *s0, double *v) {
  if (!s0) return AD_EINVAL;
  char *s = strip_latex(s0);
  int rc = AD_EPARSE;
  size_t n = strlen(s), a = 0;
  while (a < n && isspace((unsigned char)s[a])) a++;
  while (n > a && (isspace((unsigned char)s[n - 1]) || s[n - 1] == '.')) n--;
  /* \frac{p}{q} (also \dfrac, \tfrac) with optional sign */
  const char *f = s + a;
  int neg = 0;
  if (*f == '-' && (n - a) > 1) {
    neg = 1;
    f++;
  }
  const char *fr = NULL;
  if (!strncmp(f, "\\frac{", 6)) fr = f + 6;
  else if (!strncmp(f, "\\dfrac{", 7) || !strncmp(f, "\\tfrac{", 7)) fr = f + 7;
  if (fr) {
    const char *c1 = strchr(fr, '}');
    if (c1 && c1[1] == '{') {
      const char *c2 = strchr(c1 + 2, '}');
      double p, q;
      if (c2 && (size_t)(c2 + 1 - s) == n && parse_plain(fr, (size_t)(c1 - fr), &p) == 0 &&
          parse_plain(c1 + 2, (size_t)(c2 - c1 - 2), &q) == 0 && q != 0) {
        *v = (neg ? -p : p) / q;
        rc = 0;
      }
    }
    goto out;
  }
  const char *slash = memchr(s + a, '/', n - a);
  if (slash) {
    double p, q;
    if (parse_plain(s + a, (size_t)(slash - (s + a)), &p) == 0 &&
        parse_plain(slash + 1, n - (size_t)(slash + 1 - s), &q) == 0 && q != 0) {
      *v = p / q;
      rc = 0;
    }
    goto out;
  }
  rc = parse_plain(s + a, n - a, v);
out:
  free(s);
  return rc;
}

static char *trim_dup(const char *s) {
  size_t n = strlen(s), a = 0;
  while (a < n && isspace((unsigned char)s[a])) a++;
  while (n > a && isspace((unsigned char)s[n - 1])) n--;
  return xstrndup(s + a, n - a);
}

/* 1 when f(a) and f(b) (new strings) are equal. */
static int equal_by(char *(*f)(const char *), const char *a, const char *b) {
  char *x = f(a), *y = f(b);
  int r = strcmp(x, y) == 0;
  free(x);
  free(y);
  return r;
}

int score_match(enum score_matcher m, const char *answer, const char *reference) {
  if (!answer || !reference) return 0;
  int r = 0;
  if (m == SCORE_AUTO) {
    double v;
    m = score_parse_number(reference, &v) == 0 ? SCORE_NUMERIC : SCORE_NORMALISED;
  }
  switch (m) {
  case SCORE_AUTO: break; /* resolved above */
  case SCORE_EXACT: r = equal_by(trim_dup, answer, reference); break;
  case SCORE_NORMALISED: r = equal_by(normalise, answer, reference); break;
  case SCORE_NUMERIC: {
    double a, b;
    if (score_parse_number(reference, &b) != 0) return 0;
    if (score_parse_number(answer, &a) != 0) {
      size_t s, e;
      size_t n = strlen(answer);
      if (!last_number(answer, n, &s, &e)) return 0;
      char *x = xstrndup(answer + s, e - s);
      int ok = score_parse_number(x, &a) == 0;
      free(x);
      if (!ok) return 0;
    }
    double scale = fmax(fabs(a), fabs(b));
    r = (a == b) || fabs(a - b) <= 1e-6 * scale;
    break;
  }
  case SCORE_LLM: r = 0; break;
  }
  return r;
}

int score_parse_correct(const char *text, size_t len, int *correct, char *err, size_t errlen) {
  static const char *const keys[] = {"correct", NULL};
  char e1[300] = "";
  if (err && errlen) err[0] = 0;
  json_t *root = extract_json(text, len, keys, 0, e1, sizeof e1);
  if (root) {
    json_t *c = json_object_get(root, "correct");
    if (!c) c = json_object_get(root, "is_correct");
    if (!c) c = json_object_get(root, "verdict");
    int b = as_bool(c);
    json_decref(root);
    if (b >= 0) {
      *correct = b;
      return 0;
    }
    ad_set_err(err, errlen, "verifier reply: \"correct\" must be true or false");
    return AD_EPARSE;
  }
  /* line form: CORRECT: yes|no */
  size_t n = 0;
  const char *t = extract_skip_think(text ? text : "", text ? len : 0, &n);
  for (size_t i = n; i-- > 0;) {
    if ((i == 0 || t[i - 1] == '\n') && n - i >= 8 && strncasecmp(t + i, "correct:", 8) == 0) {
      const char *p = t + i + 8;
      const char *end = memchr(p, '\n', n - (size_t)(p - t));
      size_t l = end ? (size_t)(end - p) : n - (size_t)(p - t);
      char *v = clean_answer(p, l);
      json_t *js = json_string(v); /* NULL for invalid UTF-8: not a boolean */
      int b = as_bool(js);
      json_decref(js);
      free(v);
      if (b >= 0) {
        *correct = b;
        return 0;
      }
    }
  }
  ad_set_err(err, errlen,
             "verifier reply: %s; expected {\"correct\": true|false, \"reason\": \"...\"}", e1);
  return AD_EPARSE;
}

/* ---- quality verifier ---- */

static void copy_utf8(char *dst, size_t cap, const char *src) {
  size_t n = strlen(src);
  if (n >= cap) {
    n = cap - 1;
    while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) n--;
  }
  memcpy(dst, src, n);
  dst[n] = 0;
}

static void qv_add_issue(struct score_qv *q, const char *s) {
  if (q->n_issues >= SCORE_QV_MAX_ISSUES) return;
  for (int i = 0; i < q->n_issues; i++)
    if (strcmp(q->issues[i], s) == 0) return;
  /* tags are kept short and printable: [a-z0-9_:-], others become '_' */
  char *d = q->issues[q->n_issues];
  size_t k = 0;
  for (; *s && k + 1 < sizeof q->issues[0]; s++) {
    unsigned char c = (unsigned char)*s;
    d[k++] = (isalnum(c) || c == '_' || c == '-' || c == ':') ? (char)tolower(c) : '_';
  }
  d[k] = 0;
  if (k) q->n_issues++;
}

/* Value after "KEY:" at the start of a line (last occurrence); NULL if none. */
static const char *line_value(const char *t, size_t n, const char *key, size_t *vl) {
  size_t kl = strlen(key);
  const char *best = NULL;
  for (size_t i = 0; i + kl <= n; i++) {
    if (i > 0 && t[i - 1] != '\n') continue;
    size_t j = i;
    while (j < n && (t[j] == ' ' || t[j] == '*' || t[j] == '#')) j++;
    if (n - j >= kl && strncasecmp(t + j, key, kl) == 0) best = t + j + kl;
  }
  if (!best) return NULL;
  while (best < t + n && (*best == ' ' || *best == '*' || *best == '\t')) best++;
  const char *e = memchr(best, '\n', (size_t)(t + n - best));
  *vl = e ? (size_t)(e - best) : (size_t)(t + n - best);
  return best;
}

static int starts_ci(const char *p, size_t l, const char *w) {
  size_t wl = strlen(w);
  return l >= wl && strncasecmp(p, w, wl) == 0;
}

int score_parse_qv(const char *text, size_t len, struct score_qv *out, char *err, size_t errlen) {
  static const char *const keys[] = {"pass", NULL};
  memset(out, 0, sizeof *out);
  if (err && errlen) err[0] = 0;
  char e1[300] = "";
  json_t *root = extract_json(text, len, keys, 0, e1, sizeof e1);
  if (root && json_is_object(root)) {
    json_t *p = json_object_get(root, "pass");
    if (!p) p = json_object_get(root, "passed");
    int b = as_bool(p);
    if (b >= 0) {
      out->pass = b;
      json_t *iss = json_object_get(root, "issues");
      size_t i;
      json_t *v;
      if (json_is_array(iss)) {
        json_array_foreach(iss, i, v) {
          if (json_is_string(v)) qv_add_issue(out, json_string_value(v));
        }
      } else if (json_is_string(iss) && json_string_value(iss)[0]) {
        qv_add_issue(out, json_string_value(iss));
      }
      json_t *fb = json_object_get(root, "feedback");
      if (json_is_string(fb)) copy_utf8(out->feedback, sizeof out->feedback, json_string_value(fb));
      json_decref(root);
      return 0;
    }
  }
  json_decref(root);
  /* line form */
  size_t n = 0;
  const char *t = extract_skip_think(text ? text : "", text ? len : 0, &n);
  size_t vl = 0;
  const char *ov = line_value(t, n, "OVERALL:", &vl);
  if (!ov) {
    ad_set_err(err, errlen,
               "quality verifier reply: %s; expected {\"pass\": true|false, \"issues\": [...], "
               "\"feedback\": \"...\"}",
               e1[0] ? e1 : "no verdict");
    return AD_EPARSE;
  }
  if (starts_ci(ov, vl, "PASS")) out->pass = 1;
  else if (starts_ci(ov, vl, "FAIL")) out->pass = 0;
  else {
    ad_set_err(err, errlen, "quality verifier reply: OVERALL must be PASS or FAIL");
    return AD_EPARSE;
  }
  const char *c;
  if ((c = line_value(t, n, "CHECK_1_VERDICT:", &vl)) && starts_ci(c, vl, "LEAKS"))
    qv_add_issue(out, "leakage");
  if ((c = line_value(t, n, "CHECK_2_VERDICT:", &vl)) &&
      (starts_ci(c, vl, "TOO_EASY") || starts_ci(c, vl, "RECALL")))
    qv_add_issue(out, "question_quality");
  if ((c = line_value(t, n, "CHECK_3_VERDICT:", &vl)) && starts_ci(c, vl, "FAIL"))
    qv_add_issue(out, "rubric_malformed");
  if ((c = line_value(t, n, "CHECK_4_VERDICT:", &vl)) && starts_ci(c, vl, "INCONSISTENT"))
    qv_add_issue(out, "type_mismatch");
  const char *fb = line_value(t, n, "FEEDBACK:", &vl);
  if (fb) {
    /* feedback runs to the end of the reply */
    size_t rest = n - (size_t)(fb - t);
    while (rest > 0 && isspace((unsigned char)fb[rest - 1])) rest--;
    char *tmp = xstrndup(fb, rest);
    copy_utf8(out->feedback, sizeof out->feedback, tmp);
    free(tmp);
  }
  return 0;
}

void score_qv_reason(const struct score_qv *qv, char *out, size_t n) {
  if (!out || n == 0) return;
  snprintf(out, n, "quality:%s", qv->n_issues > 0 ? qv->issues[0] : "rejected");
}

/* ---- structured outputs ---- */

json_t *score_judge_schema(int n) {
  if (n < 1) n = 1;
  json_t *item = json_pack("{s:s,s:b,s:[s,s,s],s:{s:{s:s,s:i,s:i},s:{s:s},s:{s:s}}}", "type",
                           "object", "additionalProperties", 0, "required", "criterion", "met",
                           "reason", "properties", "criterion", "type", "integer", "minimum", 1,
                           "maximum", n, "met", "type", "boolean", "reason", "type", "string");
  return json_pack("{s:s,s:b,s:[s],s:{s:{s:s,s:o,s:i,s:i}}}", "type", "object",
                   "additionalProperties", 0, "required", "verdicts", "properties", "verdicts",
                   "type", "array", "items", item, "minItems", n, "maxItems", n);
}

json_t *score_correct_schema(void) {
  return json_pack("{s:s,s:b,s:[s,s],s:{s:{s:s},s:{s:s}}}", "type", "object",
                   "additionalProperties", 0, "required", "correct", "reason", "properties",
                   "correct", "type", "boolean", "reason", "type", "string");
}

json_t *score_qv_schema(void) {
  return json_pack("{s:s,s:b,s:[s,s,s],s:{s:{s:s},s:{s:s,s:{s:s},s:i},s:{s:s}}}", "type", "object",
                   "additionalProperties", 0, "required", "pass", "issues", "feedback",
                   "properties", "pass", "type", "boolean", "issues", "type", "array", "items",
                   "type", "string", "maxItems", SCORE_QV_MAX_ISSUES, "feedback", "type", "string");
}
