/* candidate.c - parse and validate a challenger's candidate (see candidate.h). */
#include "eval/candidate.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/extract.h"
#include "eval/override.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"

int cand_task_parse(const char *name, enum cand_task *t) {
  if (!name) return AD_EINVAL;
  if (strcmp(name, "rubric") == 0) {
    *t = CAND_TASK_RUBRIC;
    return 0;
  }
  if (strcmp(name, "verifiable") == 0) {
    *t = CAND_TASK_VERIFIABLE;
    return 0;
  }
  return AD_EINVAL;
}

const char *cand_task_name(enum cand_task t) {
  return t == CAND_TASK_VERIFIABLE ? "verifiable" : "rubric";
}

void cand_checks_default(struct cand_checks *c) {
  memset(c, 0, sizeof *c);
  c->max_context_chars = 6000;
  c->min_context_chars = 0;
  c->leakage_ngram = 8;
  c->leakage_max_overlap = 0.5;
  c->rubric_min = 1;
  c->rubric_max = 20;
  c->max_weight = 7;
  c->dedup = 1;
  c->signed_rubric = 0;
  c->positive_min = 1;
  c->positive_max = 0;
  c->negative_min = 0;
  c->negative_max = 0;
  c->reasoning_skills = 0;
}

int cand_rubric_preset(const char *name, struct cand_checks *c) {
  if (!name) return AD_EINVAL;
  if (!strcmp(name, "positive")) {
    c->signed_rubric = 0;
    c->rubric_min = 1;
    c->rubric_max = 20;
    c->max_weight = 7;
    c->positive_min = 1;
    c->positive_max = 0;
    c->negative_min = c->negative_max = 0;
    return 0;
  }
  if (!strcmp(name, "signed")) {
    c->signed_rubric = 1;
    c->rubric_min = 10;
    c->rubric_max = 15;
    c->max_weight = 10;
    c->positive_min = 7;
    c->positive_max = 10;
    c->negative_min = 3;
    c->negative_max = 5;
    return 0;
  }
  return AD_EINVAL;
}

static void issue_set(struct cand_issue *is, enum cand_issue_kind kind, const char *reason,
                      const char *fmt, ...) AD_PRINTF(4, 5);
static void issue_set(struct cand_issue *is, enum cand_issue_kind kind, const char *reason,
                      const char *fmt, ...) {
  if (!is) return;
  is->kind = kind;
  snprintf(is->reason, sizeof is->reason, "%s", reason);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(is->message, sizeof is->message, fmt, ap);
  va_end(ap);
}

static void issue_clear(struct cand_issue *is) {
  if (!is) return;
  is->kind = CAND_OK;
  is->reason[0] = 0;
  is->message[0] = 0;
}

void cand_release(struct cand *c) {
  if (!c) return;
  json_decref(c->json);
  free(c->rubric);
  memset(c, 0, sizeof *c);
}

/* ---- text helpers ---- */

static int is_word_byte(unsigned char c) { return isalnum(c) || c >= 0x80; }

static int blank(const char *s) {
  for (; *s; s++)
    if (!isspace((unsigned char)*s)) return 0;
  return 1;
}

/* Words of s, lowercased, joined by single spaces into norm (owned);
 * start[i]/end[i] are the byte ranges of word i in norm; n is the word count. */
struct words {
  char *norm;
  size_t *start, *end;
  size_t n;
};

static void words_split(const char *s, struct words *w) {
  size_t len = strlen(s);
  memset(w, 0, sizeof *w);
  w->norm = xmalloc(len + 1);
  w->start = xmalloc((len / 2 + 1) * sizeof(size_t));
  w->end = xmalloc((len / 2 + 1) * sizeof(size_t));
  size_t k = 0;
  for (size_t i = 0; i < len;) {
    if (!is_word_byte((unsigned char)s[i])) {
      i++;
      continue;
    }
    if (w->n) w->norm[k++] = ' ';
    w->start[w->n] = k;
    while (i < len && is_word_byte((unsigned char)s[i]))
      w->norm[k++] = (char)tolower((unsigned char)s[i++]);
    w->end[w->n] = k;
    w->n++;
  }
  w->norm[k] = 0;
}

static void words_free(struct words *w) {
  free(w->norm);
  free(w->start);
  free(w->end);
  memset(w, 0, sizeof *w);
}

static uint64_t gram_hash(const struct words *w, size_t i, size_t n) {
  return hash64(w->norm + w->start[i], w->end[i + n - 1] - w->start[i]);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Sorted, de-duplicated n-gram hashes of w; *out owned (NULL with 0). */
static size_t grams(const struct words *w, size_t n, uint64_t **out) {
  *out = NULL;
  if (n == 0 || w->n < n) return 0;
  size_t m = w->n - n + 1;
  uint64_t *h = xmalloc(m * sizeof *h);
  for (size_t i = 0; i < m; i++) h[i] = gram_hash(w, i, n);
  qsort(h, m, sizeof *h, cmp_u64);
  size_t u = 0;
  for (size_t i = 0; i < m; i++)
    if (u == 0 || h[u - 1] != h[i]) h[u++] = h[i];
  *out = h;
  return u;
}

double cand_ngram_overlap(const char *reference, const char *text, int n) {
  if (!reference || !text || n <= 0) return 0;
  struct words r, t;
  words_split(reference, &r);
  words_split(text, &t);
  double frac = 0;
  size_t g = (size_t)n < r.n ? (size_t)n : r.n;
  if (g > 0) {
    uint64_t *rh = NULL, *th = NULL;
    size_t nr = grams(&r, g, &rh), nt = grams(&t, g, &th);
    size_t hit = 0;
    for (size_t i = 0; i < nr; i++)
      if (nt && bsearch(&rh[i], th, nt, sizeof *th, cmp_u64)) hit++;
    if (nr) frac = (double)hit / (double)nr;
    free(rh);
    free(th);
  }
  words_free(&r);
  words_free(&t);
  return frac;
}

int cand_answer_in_text(const char *answer, const char *text) {
  if (!answer || !text) return 0;
  struct words a, t;
  words_split(answer, &a);
  words_split(text, &t);
  int found = 0;
  if (a.n > 0 && t.n >= a.n) {
    size_t alen = strlen(a.norm);
    for (size_t i = 0; i + a.n <= t.n && !found; i++) {
      size_t span = t.end[i + a.n - 1] - t.start[i];
      if (span == alen && memcmp(t.norm + t.start[i], a.norm, alen) == 0) found = 1;
    }
  }
  words_free(&a);
  words_free(&t);
  return found;
}

uint64_t cand_question_hash(const char *question) {
  if (!question) question = "";
  size_t len = strlen(question);
  char *n = xmalloc(len + 1);
  size_t k = 0;
  int pending = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)question[i];
    if (isalnum(c) || c >= 0x80) {
      if (pending && k) n[k++] = ' ';
      pending = 0;
      n[k++] = (char)tolower(c);
    } else {
      pending = 1;
    }
  }
  n[k] = 0;
  uint64_t h = hash64(n, k);
  free(n);
  return h;
}

/* ---- schema ---- */

/* A required string member; on failure fills the issue and returns NULL. */
static const char *need_str(json_t *o, const char *key, int allow_empty, struct cand_issue *is) {
  json_t *v = json_object_get(o, key);
  if (!v) {
    issue_set(is, CAND_SCHEMA, "missing_field", "the candidate has no \"%s\" field", key);
    return NULL;
  }
  if (!json_is_string(v)) {
    issue_set(is, CAND_SCHEMA, "field_type", "\"%s\" must be a string", key);
    return NULL;
  }
  const char *s = json_string_value(v);
  if (!allow_empty && blank(s)) {
    issue_set(is, CAND_SCHEMA, "empty_field", "\"%s\" is empty", key);
    return NULL;
  }
  return s;
}

/* Fill c->rubric from arr. 0; AD_EPARSE for a schema problem; AD_EINVAL when the
 * rubric has more than CAND_MAX_RUBRIC items (a check failure). is is filled. */
static int parse_rubric(json_t *arr, struct cand *c, int signed_rubric, struct cand_issue *is) {
  if (!json_is_array(arr)) {
    issue_set(
        is, CAND_SCHEMA, "rubric_type",
        "\"rubric\" must be a JSON array of {\"criterion\": string, \"weight\": integer} items");
    return AD_EPARSE;
  }
  size_t n = json_array_size(arr);
  if (n > CAND_MAX_RUBRIC) {
    issue_set(is, CAND_CHECK, "check:rubric_size",
              "the rubric has %zu criteria; at most %d are allowed", n, CAND_MAX_RUBRIC);
    return AD_EINVAL;
  }
  c->rubric = xcalloc(n ? n : 1, sizeof *c->rubric);
  for (size_t i = 0; i < n; i++) {
    json_t *it = json_array_get(arr, i);
    if (!json_is_object(it)) {
      issue_set(is, CAND_SCHEMA, "rubric_item_type",
                "rubric item %zu must be an object {\"criterion\": string, \"weight\": integer}",
                i + 1);
      return AD_EPARSE;
    }
    json_t *cr = json_object_get(it, "criterion");
    if (!json_is_string(cr) || blank(json_string_value(cr))) {
      issue_set(
          is, CAND_SCHEMA, "rubric_empty_criterion",
          "rubric item %zu has %s \"criterion\"; each item needs a non-empty criterion string",
          i + 1, cr && !json_is_string(cr) ? "a non-string" : "an empty or missing");
      return AD_EPARSE;
    }
    json_t *w = json_object_get(it, "weight");
    long long wv = 0;
    if (json_is_integer(w)) {
      wv = json_integer_value(w);
    } else if (json_is_real(w) && floor(json_real_value(w)) == json_real_value(w) &&
               fabs(json_real_value(w)) < 1e9) {
      wv = (long long)json_real_value(w);
    } else {
      const char *what = !w                   ? "no weight"
                         : json_is_string(w)  ? "a string weight"
                         : json_is_boolean(w) ? "a boolean weight"
                         : json_is_real(w)    ? "a fractional weight"
                                              : "a non-numeric weight";
      if (json_is_string(w))
        issue_set(
            is, CAND_SCHEMA, "rubric_weight_type",
            "rubric item %zu has %s (\"%.20s\"); weights are integers, written without quotes",
            i + 1, what, json_string_value(w));
      else
        issue_set(is, CAND_SCHEMA, "rubric_weight_type",
                  "rubric item %zu has %s; weights are integers, written without quotes", i + 1,
                  what);
      return AD_EPARSE;
    }
    json_t *cat = json_object_get(it, "category");
    const char *cv = json_is_string(cat) ? json_string_value(cat) : NULL;
    int neg = cv && !strcmp(cv, "negative");
    if ((cat || signed_rubric) && !(neg || (cv && !strcmp(cv, "positive")))) {
      issue_set(is, CAND_SCHEMA, "rubric_category",
                "rubric item %zu has %s \"category\"; it must be \"positive\" or \"negative\"",
                i + 1, cat ? "an invalid" : "no");
      return AD_EPARSE;
    }
    c->rubric[i].criterion = json_string_value(cr);
    c->rubric[i].negative = neg;
    c->n_negative += neg;
    c->rubric[i].weight = wv > 1000000 ? 1000000 : (wv < -1000000 ? -1000000 : (int)wv);
    c->total_weight += c->rubric[i].weight > 0 ? c->rubric[i].weight : 0;
  }
  c->n_rubric = (int)n;
  return 0;
}

/* "reasoning_skills": absent (an error only when required) or 2-3 non-empty strings. */
static int parse_skills(json_t *obj, int required, struct cand *c, struct cand_issue *is) {
  json_t *a = json_object_get(obj, "reasoning_skills");
  if (!a || json_is_null(a)) {
    if (!required) return 0;
    issue_set(is, CAND_SCHEMA, "reasoning_skills",
              "the candidate has no \"reasoning_skills\" field (2 or 3 short tags)");
    return AD_EPARSE;
  }
  size_t n = json_array_size(a), i;
  int ok = json_is_array(a) && n >= 2 && n <= 3;
  json_t *v;
  if (ok) json_array_foreach(a, i, v) ok &= json_is_string(v) && !blank(json_string_value(v));
  if (!ok) {
    issue_set(is, CAND_SCHEMA, "reasoning_skills",
              "\"reasoning_skills\" must be an array of 2 or 3 non-empty strings (short tags "
              "such as \"causal_reasoning\")");
    return AD_EPARSE;
  }
  c->reasoning_skills = a;
  return 0;
}

int cand_from_json(json_t *obj, enum cand_task task, const struct cand_checks *checks,
                   const struct cand_seen *seen, struct cand *out, struct cand_issue *issue) {
  struct cand_checks dflt;
  if (!checks) {
    cand_checks_default(&dflt);
    checks = &dflt;
  }
  memset(out, 0, sizeof *out);
  issue_clear(issue);
  out->task = task;
  if (!json_is_object(obj)) {
    issue_set(issue, CAND_SCHEMA, "not_object", "expected a JSON object, got %s",
              json_is_array(obj) ? "an array" : "a scalar");
    return AD_EPARSE;
  }
  out->json = json_incref(obj);
  json_t *qt = json_object_get(obj, "question_type");
  out->question_type = json_is_string(qt) ? json_string_value(qt) : "";
  if (parse_skills(obj, checks->reasoning_skills, out, issue)) goto bad;
  if (!(out->question = need_str(obj, "question", 0, issue))) goto bad;
  if (task == CAND_TASK_RUBRIC) {
    if (!(out->context = need_str(obj, "context", 1, issue))) goto bad;
    const char *ref_key = json_object_get(obj, "reference_answer") ||
                                  !json_object_get(obj, "answer")
                              ? "reference_answer"
                              : "answer";
    if (!(out->reference_answer = need_str(obj, ref_key, 0, issue))) goto bad;
    json_t *rub = json_object_get(obj, "rubric");
    if (!rub) {
      issue_set(issue, CAND_SCHEMA, "missing_field", "the candidate has no \"rubric\" field");
      goto bad;
    }
    out->signed_rubric = checks->signed_rubric;
    int r = parse_rubric(rub, out, checks->signed_rubric, issue);
    if (r == AD_EINVAL) return AD_EINVAL; /* oversized rubric: a check failure, cand kept */
    if (r < 0) goto bad;
  } else {
    json_t *ctx = json_object_get(obj, "context");
    if (ctx && !json_is_string(ctx) && !json_is_null(ctx)) {
      issue_set(issue, CAND_SCHEMA, "field_type", "\"context\" must be a string");
      goto bad;
    }
    out->context = json_is_string(ctx) ? json_string_value(ctx) : "";
    json_t *a = json_object_get(obj, "answer");
    if (json_is_integer(a)) {
      snprintf(out->answer_buf, sizeof out->answer_buf, "%lld", (long long)json_integer_value(a));
      out->reference_answer = out->answer_buf;
    } else if (json_is_real(a)) {
      snprintf(out->answer_buf, sizeof out->answer_buf, "%.15g", json_real_value(a));
      out->reference_answer = out->answer_buf;
    } else if (!(out->reference_answer = need_str(obj, "answer", 0, issue))) {
      goto bad;
    }
  }
  out->question_hash = cand_question_hash(out->question);
  return cand_check(out, checks, seen, issue);
bad:
  cand_release(out);
  out->task = task;
  return AD_EPARSE;
}

int cand_parse(const char *text, size_t len, enum cand_task task, const struct cand_checks *checks,
               const struct cand_seen *seen, struct cand *out, struct cand_issue *issue) {
  static const char *const rubric_keys[] = {"question", "rubric", NULL};
  static const char *const verif_keys[] = {"question", "answer", NULL};
  char err[400];
  memset(out, 0, sizeof *out);
  out->task = task;
  issue_clear(issue);
  json_t *v = extract_json(text, len, task == CAND_TASK_RUBRIC ? rubric_keys : verif_keys, 0, err,
                           sizeof err);
  if (!v) {
    issue_set(issue, CAND_PARSE, "parse_error", "%s", err);
    return AD_EPARSE;
  }
  int rc = cand_from_json(v, task, checks, seen, out, issue);
  json_decref(v);
  return rc;
}

/* ---- checks ---- */

/* The counts of positive and negative criteria against their bounds. */
static int kinds_check(const struct cand *c, const struct cand_checks *k, struct cand_issue *is) {
  int neg = c->n_negative, pos = c->n_rubric - neg;
  if (neg && !k->signed_rubric) {
    issue_set(is, CAND_CHECK, "check:rubric_kinds",
              "the rubric has %d negative criteria; this rubric takes positive criteria only", neg);
    return AD_EINVAL;
  }
  if (pos < k->positive_min || (k->positive_max > 0 && pos > k->positive_max)) {
    issue_set(is, CAND_CHECK, "check:rubric_kinds",
              "the rubric has %d positive criteria; it must have %s%d%s%.0d", pos,
              k->positive_max > 0 ? "between " : "at least ", k->positive_min,
              k->positive_max > 0 ? " and " : "", k->positive_max);
    return AD_EINVAL;
  }
  if (neg < k->negative_min || (k->negative_max > 0 && neg > k->negative_max)) {
    issue_set(is, CAND_CHECK, "check:rubric_kinds",
              "the rubric has %d negative criteria; it must have %s%d%s%.0d", neg,
              k->negative_max > 0 ? "between " : "at least ", k->negative_min,
              k->negative_max > 0 ? " and " : "", k->negative_max);
    return AD_EINVAL;
  }
  return 0;
}

int cand_check(const struct cand *c, const struct cand_checks *checks, const struct cand_seen *seen,
               struct cand_issue *issue) {
  struct cand_checks dflt;
  if (!checks) {
    cand_checks_default(&dflt);
    checks = &dflt;
  }
  issue_clear(issue);
  if (c->task == CAND_TASK_RUBRIC) {
    if (c->n_rubric < checks->rubric_min ||
        (checks->rubric_max > 0 && c->n_rubric > checks->rubric_max)) {
      issue_set(issue, CAND_CHECK, "check:rubric_size",
                "the rubric has %d criteria; it must have between %d and %d", c->n_rubric,
                checks->rubric_min, checks->rubric_max > 0 ? checks->rubric_max : CAND_MAX_RUBRIC);
      return AD_EINVAL;
    }
    int maxw = checks->max_weight > 0 ? checks->max_weight : 7;
    for (int i = 0; i < c->n_rubric; i++) {
      int w = c->rubric[i].weight;
      if (c->rubric[i].negative && checks->signed_rubric) {
        if (w > -1 || w < -maxw) {
          issue_set(issue, CAND_CHECK, "check:rubric_weight",
                    "rubric item %d is a negative criterion with weight %d; negative criteria "
                    "have integer weights from -%d to -1",
                    i + 1, w, maxw);
          return AD_EINVAL;
        }
      } else if (w < 1 || w > maxw) {
        issue_set(issue, CAND_CHECK, "check:rubric_weight",
                  "rubric item %d has weight %d; weights are integers from 1 to %d", i + 1, w,
                  maxw);
        return AD_EINVAL;
      }
    }
    if (kinds_check(c, checks, issue)) return AD_EINVAL;
  }
  const char *ctx = c->context ? c->context : "";
  size_t nch = jx_utf8_chars(ctx);
  if (checks->max_context_chars > 0 && nch > (size_t)checks->max_context_chars) {
    issue_set(issue, CAND_CHECK, "check:context_length",
              "the context has %zu characters; at most %d are allowed", nch,
              checks->max_context_chars);
    return AD_EINVAL;
  }
  if (c->task == CAND_TASK_RUBRIC && checks->min_context_chars > 0 &&
      nch < (size_t)checks->min_context_chars) {
    issue_set(issue, CAND_CHECK, "check:context_length",
              "the context has %zu characters; at least %d are required", nch,
              checks->min_context_chars);
    return AD_EINVAL;
  }
  if (checks->leakage_ngram > 0 && c->reference_answer) {
    if (c->task == CAND_TASK_RUBRIC) {
      double f = cand_ngram_overlap(c->reference_answer, ctx, checks->leakage_ngram);
      if (f > checks->leakage_max_overlap) {
        issue_set(
            issue, CAND_CHECK, "check:leakage",
            "%.0f%% of the reference answer's %d-word sequences appear verbatim in the context "
            "(limit %.0f%%); the context must not contain the answer",
            f * 100, checks->leakage_ngram, checks->leakage_max_overlap * 100);
        return AD_EINVAL;
      }
    } else {
      const char *where = cand_answer_in_text(c->reference_answer, ctx) ? "context"
                          : cand_answer_in_text(c->reference_answer, c->question ? c->question : "")
                              ? "question"
                              : NULL;
      if (where) {
        issue_set(
            issue, CAND_CHECK, "check:leakage",
            "the answer \"%.60s\" appears verbatim in the %s; the %s must not contain the answer",
            c->reference_answer, where, where);
        return AD_EINVAL;
      }
    }
  }
  if (override_check(checks->overrides, c->question, ctx, issue)) return AD_EINVAL;
  if (checks->dedup && seen && seen->hashes) {
    for (size_t i = 0; i < seen->n; i++) {
      if (seen->hashes[i] == c->question_hash) {
        issue_set(
            issue, CAND_CHECK, "check:duplicate",
            "the question repeats an earlier candidate for this source or an accepted example; "
            "ask a new question");
        return AD_EINVAL;
      }
    }
  }
  return 0;
}

/* ---- output ---- */

json_t *cand_to_json(const struct cand *c) {
  json_t *o = json_object();
  if (c->question_type && c->question_type[0])
    json_object_set_new(o, "question_type", json_string(c->question_type));
  if (c->reasoning_skills) json_object_set(o, "reasoning_skills", c->reasoning_skills);
  json_object_set_new(o, "context", json_string(c->context ? c->context : ""));
  json_object_set_new(o, "question", json_string(c->question ? c->question : ""));
  if (c->task == CAND_TASK_RUBRIC) {
    json_object_set_new(o, "reference_answer",
                        json_string(c->reference_answer ? c->reference_answer : ""));
    json_object_set_new(o, "rubric", cand_rubric_json(c));
  } else {
    json_object_set_new(o, "answer", json_string(c->reference_answer ? c->reference_answer : ""));
  }
  return o;
}

json_t *cand_rubric_json(const struct cand *c) {
  json_t *r = json_array();
  for (int i = 0; i < c->n_rubric; i++) {
    json_t *it = json_pack("{s:s,s:i}", "criterion", c->rubric[i].criterion, "weight",
                           c->rubric[i].weight);
    if (c->signed_rubric)
      json_object_set_new(it, "category",
                          json_string(c->rubric[i].negative ? "negative" : "positive"));
    json_array_append_new(r, it);
  }
  return r;
}

json_t *cand_rubric_vars(const struct cand *c) {
  json_t *a = json_array();
  for (int i = 0; i < c->n_rubric; i++)
    json_array_append_new(a, json_pack("{s:i,s:i,s:s,s:s,s:b}", "number", i + 1, "weight",
                                       c->rubric[i].weight, "criterion", c->rubric[i].criterion,
                                       "category", c->rubric[i].negative ? "negative" : "positive",
                                       "negative", c->rubric[i].negative));
  return a;
}

/* A string property of at least min (and at most max when > 0) characters. */
static json_t *str_prop(const char *desc, int min, int max) {
  json_t *p = json_pack("{s:s,s:s}", "type", "string", "description", desc);
  if (min > 0) json_object_set_new(p, "minLength", json_integer(min));
  if (max > 0) json_object_set_new(p, "maxLength", json_integer(max));
  return p;
}

json_t *cand_json_schema(enum cand_task task, const struct cand_checks *checks) {
  struct cand_checks dflt;
  if (!checks) {
    cand_checks_default(&dflt);
    checks = &dflt;
  }
  if (task == CAND_TASK_VERIFIABLE) {
    return json_pack("{s:s,s:b,s:[s,s],s:{s:o,s:o}}", "type", "object", "additionalProperties", 0,
                     "required", "question", "answer", "properties", "question",
                     str_prop("a single, self-contained question", 1, 0), "answer",
                     str_prop("the short, exact answer", 1, 0));
  }
  int wmax = checks->max_weight > 0 ? checks->max_weight : 1;
  json_t *item;
  if (checks->signed_rubric)
    item = json_pack(
        "{s:s,s:b,s:[s,s,s],s:{s:o,s:{s:s,s:s,s:i,s:i},s:{s:s,s:[s,s]}}}", "type", "object",
        "additionalProperties", 0, "required", "criterion", "weight", "category", "properties",
        "criterion",
        str_prop("one checkable statement, phrased in the affirmative; a negative criterion "
                 "states the error an answer may make",
                 1, 0),
        "weight", "type", "integer", "description",
        "importance: from 1 to the maximum weight for a positive criterion, from minus the "
        "maximum weight to -1 for a negative one",
        "minimum", -wmax, "maximum", wmax, "category", "type", "string", "enum", "positive",
        "negative");
  else
    item = json_pack("{s:s,s:b,s:[s,s],s:{s:o,s:{s:s,s:s,s:i,s:i}}}", "type", "object",
                     "additionalProperties", 0, "required", "criterion", "weight", "properties",
                     "criterion", str_prop("one checkable statement a correct answer makes", 1, 0),
                     "weight", "type", "integer", "description",
                     "importance, an integer from 1 to the maximum weight", "minimum", 1, "maximum",
                     wmax);
  json_t *rubric = json_pack("{s:s,s:o}", "type", "array", "items", item);
  int rmin = checks->rubric_min > 0 ? checks->rubric_min : 1;
  int rmax = checks->rubric_max > 0 && checks->rubric_max < CAND_MAX_RUBRIC ? checks->rubric_max
                                                                            : CAND_MAX_RUBRIC;
  json_object_set_new(rubric, "minItems", json_integer(rmin));
  json_object_set_new(rubric, "maxItems", json_integer(rmax));
  json_t *s = json_pack("{s:s,s:b,s:[s,s,s,s,s],s:{s:o,s:o,s:o,s:o,s:o}}", "type", "object",
                        "additionalProperties", 0, "required", "question_type", "context",
                        "question", "reference_answer", "rubric", "properties", "question_type",
                        str_prop("a short phrase naming the kind of question", 0, 0), "context",
                        str_prop("background that situates the solver without giving the answer",
                                 checks->min_context_chars, checks->max_context_chars),
                        "question", str_prop("one focused question that requires reasoning", 1, 0),
                        "reference_answer",
                        str_prop("the correct answer, grounded in the source", 1, 0), "rubric",
                        rubric);
  if (checks->reasoning_skills) {
    json_array_append_new(json_object_get(s, "required"), json_string("reasoning_skills"));
    json_object_set_new(json_object_get(s, "properties"), "reasoning_skills",
                        json_pack("{s:s,s:o,s:i,s:i}", "type", "array", "items",
                                  str_prop("a short tag such as causal_reasoning", 1, 0),
                                  "minItems", 2, "maxItems", 3));
  }
  return s;
}

/* Drop the keywords some servers' schema support rejects: string lengths, array
 * sizes, number ranges (recursively; the program's own checks still apply). */
static void schema_basic(json_t *s) {
  static const char *const drop[] = {"minLength", "maxLength", "minItems", "maxItems",
                                     "minimum",   "maximum",   "pattern",  NULL};
  if (json_is_object(s)) {
    for (int i = 0; drop[i]; i++) json_object_del(s, drop[i]);
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) schema_basic(v);
  } else if (json_is_array(s)) {
    size_t i;
    json_t *v;
    json_array_foreach(s, i, v) schema_basic(v);
  }
}

json_t *cand_schema_wrap(const char *name, json_t *schema, int basic) {
  if (basic) schema_basic(schema);
  return json_pack("{s:s,s:{s:s,s:b,s:o}}", "type", "json_schema", "json_schema", "name", name,
                   "strict", 1, "schema", schema);
}

json_t *cand_response_format(enum cand_task task, const struct cand_checks *checks, int basic) {
  return cand_schema_wrap(task == CAND_TASK_RUBRIC ? "rubric_candidate" : "verifiable_candidate",
                          cand_json_schema(task, checks), basic);
}
