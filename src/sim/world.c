/* world.c - the sim world's models: challenger, orchestrator, quality verifier,
 * judge and solvers (see world.h and docs/sim.md).
 *
 * Every model reads the rendered prompt text (the prompt <-> sim contract),
 * draws from one rng seeded by hash(canonical messages) + model + seed, and
 * writes its reply in the real format. Nothing here keeps state between calls.
 */
#include "sim/world.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim/facts.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/rng.h"

/* ---- parameters (documented in docs/sim.md; tuned by test_sim_world.c) ---- */

/* Challenger faults: probability without / with the guard phrase. */
#define P_LEAK 0.15
#define P_LEAK_GUARDED 0.03
#define P_WEIGHT_STRING 0.10
#define P_WEIGHT_STRING_GUARDED 0.02
#define P_BROKEN_JSON 0.10
#define P_BROKEN_JSON_GUARDED 0.02

#define ONESHOT_TARGET_MAX 0.35  /* default target ~ U[0, 0.35] */
#define PHRASE_TARGET_NOISE 0.03 /* sd of the challenger's reading of a given target */
#define PICK_SPREAD 0.35         /* sd of each picked fact's wanted difficulty around the target */
#define ANCHOR_FROM 0.40         /* targets at or above this build on one easy "anchor" fact */
#define ANCHOR_MAX 0.20          /* the anchor's wanted difficulty ~ U[0, ANCHOR_MAX] */
#define AVOID_PENALTY 0.25       /* verifiable: facts already asked about look this much further */
#define ORCH_FIRST_TARGET 0.55   /* orchestrator's round-1 target */

/* Feedback adaptation (shared by challenger and orchestrator). */
#define UP_BASE 0.10 /* TOO EASY: new floor = level + UP_BASE + UP_SLOPE*(weak-0.5) */
#define UP_SLOPE 0.25
#define UP_STRONG 0.08 /* strong scored >= 95%: floor = level + UP_STRONG */
#define DOWN_BASE 0.06 /* strong struggled: ceiling = level - DOWN_BASE - DOWN_SLOPE*(0.6-strong) */
#define DOWN_SLOPE 0.30
#define DOWN_WEAK_ZERO 0.06 /* weak scored 0 (strong n/a): ceiling = level - DOWN_WEAK_ZERO */

/* Quality verifier noise. */
#define QV_LEAK_MISS 0.10   /* a leak goes unnoticed */
#define QV_FALSE_ALARM 0.03 /* a clean candidate is flagged "question_quality" */

#define MAX_FACTS 256
#define MAX_NAMES 32
#define MAX_ITEMS 128
#define MAX_CRITERIA 64 /* rubric lines judged / checked; bounds the work on hostile input */

static const char GUARD_LEAK[] = "The context must not contain the answer";
static const char GUARD_WEIGHT[] = "weights are integers";
static const char GUARD_JSON[] = "Reply with only the JSON object";

enum wmodel { W_NONE = 0, W_CHALLENGER, W_ORCHESTRATOR, W_QUALITY, W_JUDGE, W_SOLVER };

struct wreq {
  enum wmodel kind;
  double skill;    /* solvers */
  struct buf all;  /* every message's text, joined by blank lines */
  struct buf user; /* user messages only */
  struct buf last; /* the last user message */
  long long chars; /* prompt characters, for usage */
  struct rng rng;
};

typedef char fname_t[SIM_FACT_NAME_LEN + 2];

/* ---- small helpers ---- */

static double clamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

static double gauss(struct rng *r) {
  double u1 = rng_double(r), u2 = rng_double(r);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int contains_ci(const char *hay, const char *needle) {
  return strcasestr(hay, needle) != NULL;
}

/* Text of one message's content: a string, or an array of {"type":"text","text":...}. */
static int content_text(const json_t *c, struct buf *out) {
  if (json_is_string(c)) return buf_append(out, json_string_value(c), json_string_length(c));
  if (!json_is_array(c)) return 0;
  size_t i;
  const json_t *part;
  json_array_foreach(c, i, part) {
    const char *t = jx_str(part, "text");
    if (t) {
      int rc = buf_puts(out, t);
      if (rc) return rc;
    }
  }
  return 0;
}

/* The world model a model name selects: a W_* kind, W_NONE when it is not a world
 * model, or AD_EINVAL (message in err) for a solver with a bad skill. */
static int classify(const char *model, double *skill, char *err, size_t errlen) {
  if (!strcmp(model, "sim-challenger")) return W_CHALLENGER;
  if (!strcmp(model, "sim-orchestrator")) return W_ORCHESTRATOR;
  if (!strcmp(model, "sim-quality")) return W_QUALITY;
  if (!strcmp(model, "sim-judge")) return W_JUDGE;
  if (!strncmp(model, "sim-solver@", 11)) {
    char *end;
    double s = strtod(model + 11, &end);
    if (end == model + 11 || *end || !(s >= 0 && s <= 1)) {
      ad_set_err(err, errlen, "model '%s': the skill after '@' must be a number in [0,1]", model);
      return AD_EINVAL;
    }
    *skill = s;
    return W_SOLVER;
  }
  return W_NONE;
}

/* Find heading h in text (case-sensitive) and return the start of its body, or NULL. */
static const char *after(const char *text, const char *h) {
  const char *p = strstr(text, h);
  return p ? p + strlen(h) : NULL;
}

/* Copy [p, end) trimmed into out. */
static int put_trimmed(struct buf *out, const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  while (end > p && (end[-1] == ' ' || end[-1] == '\n' || end[-1] == '\r' || end[-1] == '\t'))
    end--;
  return buf_append(out, p, (size_t)(end - p));
}

/* The body of section `h` up to the earliest of the `stops` headings after it (or the end). */
static int section(const char *text, const char *h, const char *const *stops, struct buf *out) {
  const char *p = after(text, h);
  if (!p) return 0;
  const char *end = p + strlen(p);
  for (; stops && *stops; stops++) {
    const char *s = strstr(p, *stops);
    if (s && s < end) end = s;
  }
  return put_trimmed(out, p, end);
}

/* The level of a question: the mean difficulty of the facts it names, leaving
 * out the easiest when it names 3 or more (the anchor); -1 when none is named. */
static double question_level(const char *s, size_t len) {
  fname_t names[MAX_NAMES];
  size_t n = sim_fact_names_scan(s, len, names, MAX_NAMES);
  if (!n) return -1;
  double sum = 0, mn = 1;
  for (size_t i = 0; i < n; i++) {
    double d = sim_fact_difficulty(names[i]);
    sum += d;
    if (d < mn) mn = d;
  }
  if (n >= 3) return (sum - mn) / (double)(n - 1);
  return sum / (double)n;
}

/* ---- feedback parsing (the contract's block, also the orchestrator's history) ---- */

enum fgroup { G_NONE = 0, G_EASY, G_STRONG, G_QUALITY };

struct fitem {
  enum fgroup group;
  double level;  /* mean difficulty of the facts the question named (or estimated) */
  double weak;   /* -1 when not shown */
  double strong; /* -1 when not shown ("n/a") */
  double gap;    /* -2 when not shown */
};

/* A percentage after label in line[0..n) ("weak avg: 83%"), as a fraction, or dflt. */
static double pct_after(const char *line, size_t n, const char *label, double dflt) {
  size_t ll = strlen(label);
  for (size_t i = 0; i + ll <= n; i++) {
    if (memcmp(line + i, label, ll)) continue;
    const char *p = line + i + ll;
    while (p < line + n && *p == ' ') p++;
    if (p >= line + n || !(*p == '-' || (*p >= '0' && *p <= '9'))) return dflt;
    char tmp[32];
    size_t k = 0;
    while (p < line + n && k + 1 < sizeof tmp &&
           (*p == '-' || *p == '.' || (*p >= '0' && *p <= '9')))
      tmp[k++] = *p++;
    tmp[k] = '\0';
    double v = strtod(tmp, NULL);
    return (p < line + n && *p == '%') ? v / 100.0 : v;
  }
  return dflt;
}

static int parse_feedback(const char *text, struct fitem *items, int max) {
  int n = 0;
  enum fgroup g = G_NONE;
  const char *p = text;
  while (*p && n < max) {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    /* Headings switch the group. */
    char save[160];
    size_t sl = len < sizeof save - 1 ? len : sizeof save - 1;
    memcpy(save, p, sl);
    save[sl] = '\0';
    if (strstr(save, "Questions that were TOO EASY")) g = G_EASY;
    else if (strstr(save, "Questions that FAILED ON STRONG")) g = G_STRONG;
    else if (strstr(save, "Questions that FAILED QUALITY CHECK")) g = G_QUALITY;
    else if (g != G_NONE) {
      size_t i = 0;
      while (i < len && p[i] == ' ') i++;
      size_t d0 = i;
      while (i < len && p[i] >= '0' && p[i] <= '9') i++;
      const char *q1 = memchr(p, '"', len);
      if (i > d0 && i < len && p[i] == '.' && q1) {
        /* The question: from the first quote to the last quote before the stats. */
        const char *stats = NULL;
        for (size_t k = 0; k + 9 <= len && !stats; k++)
          if (!memcmp(p + k, "weak avg:", 9) || !memcmp(p + k, "QV reason", 9)) stats = p + k;
        const char *qend = stats ? stats : p + len;
        const char *qs = qend,
                   *qe = qend; /* the question: empty when the quote is after the stats */
        if (q1 < qend) {
          qs = q1 + 1;
          while (qe > qs && qe[-1] != '"') qe--;
          qe = qe > qs ? qe - 1 : qend;
        }
        const char *st = stats ? stats : p + len;
        size_t stl = (size_t)(p + len - st);
        struct fitem *it = &items[n];
        it->group = g;
        it->weak = pct_after(st, stl, "weak avg:", -1);
        it->strong = pct_after(st, stl, "strong avg:", -1);
        it->gap = pct_after(st, stl, "gap:", -2);
        it->level = question_level(qs, (size_t)(qe - qs));
        if (it->level < 0 && it->weak >= 0) {
          /* No fact named: estimate the level from the weak score. */
          double w = it->weak < 0.02 ? 0.02 : it->weak > 0.98 ? 0.98 : it->weak;
          it->level = clamp01(0.35 - log(w / (1 - w)) / SIM_RECALL_SLOPE);
        }
        if (g == G_QUALITY || it->level >= 0) n++;
      }
    }
    p = eol ? eol + 1 : p + len;
  }
  return n;
}

/* Move target t by the feedback: TOO EASY items set a floor above their level,
 * items where the strong solver struggled set a ceiling below theirs. */
static double adapt_target(double t, const struct fitem *it, int n, int *floors, int *ceils) {
  double lo = -1, hi = 2;
  *floors = *ceils = 0;
  for (int i = 0; i < n; i++) {
    double f = -1, c = 2;
    if (it[i].group == G_EASY) {
      if (it[i].weak < 0) f = it[i].level + UP_BASE;
      else if (it[i].weak >= 0.45)
        f = it[i].level + UP_BASE + UP_SLOPE * (it[i].weak - 0.5 > 0 ? it[i].weak - 0.5 : 0);
    } else if (it[i].group == G_STRONG) {
      if (it[i].strong < 0) c = it[i].level - DOWN_WEAK_ZERO;     /* weak hit 0 */
      else if (it[i].strong >= 0.95) f = it[i].level + UP_STRONG; /* strong too easy */
      else if (it[i].strong < 0.6) c = it[i].level - DOWN_BASE - DOWN_SLOPE * (0.6 - it[i].strong);
      else if (it[i].gap > -2 && it[i].gap < 0.2) f = it[i].level + 0.05; /* weak too close */
      else c = it[i].level - 0.04; /* a strong sample hit 0 */
    }
    if (f >= 0) {
      (*floors)++;
      if (f > lo) lo = f;
    }
    if (c <= 1) {
      (*ceils)++;
      if (c < hi) hi = c;
    }
  }
  if (lo >= 0 && t < lo) t = lo;
  if (hi <= 1 && t > hi) t = hi;
  if (lo >= 0 && hi <= 1 && lo > hi) t = (lo + hi) / 2;
  return clamp01(t);
}

/* The last "target difficulty" phrase followed within 20 chars by a number in [0,1]. */
static int find_target(const char *text, double *t) {
  int found = 0;
  static const char phrase[] = "target difficulty";
  for (const char *p = text; (p = strcasestr(p, phrase)) != NULL; p++) {
    const char *q = p + sizeof phrase - 1;
    for (int k = 0; k < 20 && q[k]; k++) {
      if (q[k] >= '0' && q[k] <= '9') {
        char *end;
        double v = strtod(q + k, &end);
        if (v >= 0 && v <= 1 && *end != '%') {
          *t = v;
          found = 1;
        }
        break;
      }
    }
  }
  return found;
}

/* ---- challenger ---- */

static const char *const CTX_MENTION[] = {
    "The authors report a value for %s under their main protocol.",
    "%s is measured in the study's reference condition.",
    "The study also tracks %s, which the authors relate to the system's overall response.",
    "A separate table gives %s for the pooled runs.",
    "%s is one of the quantities the authors use to characterise the system.",
    "The discussion returns to %s when comparing conditions."};
static const char *const CTX_LEAK[] = {"The authors report %s = %lld under their main protocol.",
                                       "In the reference condition, %s = %lld.",
                                       "The pooled runs give %s = %lld."};
static const char *const CTX_INTRO[] = {
    "This question concerns a study that reports several named quantities measured under controlled conditions.",
    "The following background summarises a study and the quantities it measures.",
    "A recent study characterises a system through a handful of named measurements."};
static const char *const CTX_OUTRO[] = {
    "The study discusses how these quantities relate, but a good answer must supply their reported values.",
    "Answers should be grounded in the values the study reports rather than in general intuition.",
    "The relationships between these measurements are the focus of the study's discussion section."};

struct qtype {
  const char *type;
  const char *fmt; /* %s = list of fact names */
};
static const struct qtype Q_EASY[] = {
    {"factual recall", "What values does the study report for %s?"},
    {"definition", "What does the study report for %s? Give the value of each."}};
static const struct qtype Q_MID[] = {
    {"comparison",
     "Compare %s as reported in the study: what is the value of each, and which is largest?"},
    {"synthesis",
     "Drawing on the whole study, state the reported values of %s and explain how together they characterise the system."},
    {"quantitative reasoning",
     "Using the study's reported values of %s, reason about which condition dominates the outcome."}};
static const struct qtype Q_HARD[] = {
    {"causal reasoning",
     "Explain the causal chain that links %s in the study, stating the reported value of each quantity."},
    {"counterfactual",
     "If the study's main protocol had been changed, which of %s would move most? State the reported value of each first."},
    {"multi-step synthesis",
     "Reconstruct the study's argument from %s: give each reported value and show how the conclusion follows from them."}};

static int names_list(struct buf *b, struct sim_fact *const *f, size_t n) {
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    if (i > 0) rc = buf_puts(b, i + 1 == n ? (n > 2 ? ", and " : " and ") : ", ");
    if (!rc) rc = buf_puts(b, f[i]->name);
  }
  return rc;
}

/* Pick m distinct facts whose difficulties are near target (with PICK_SPREAD
 * noise); with anchor, the first is an easy fact instead. Facts with avoid[i]
 * set (asked before) count as AVOID_PENALTY further away. */
static size_t pick_facts(struct rng *r, struct sim_fact *facts, size_t nf, double t, size_t m,
                         int anchor, const unsigned char *avoid, struct sim_fact **out) {
  if (m > nf) m = nf;
  int used[MAX_FACTS] = {0};
  for (size_t k = 0; k < m; k++) {
    double g = gauss(r), a = rng_double(r) * ANCHOR_MAX;
    double want = (anchor && k == 0) ? a : t + PICK_SPREAD * g;
    size_t best = nf;
    double bd = 1e9;
    for (size_t i = 0; i < nf; i++) {
      double d = fabs(facts[i].difficulty - want) + (avoid && avoid[i] ? AVOID_PENALTY : 0);
      if (!used[i] && d < bd) {
        bd = d;
        best = i;
      }
    }
    used[best] = 1;
    out[k] = &facts[best];
  }
  /* Present them in source order (stable, reads naturally). */
  for (size_t a = 1; a < m; a++)
    for (size_t b = a; b > 0 && out[b] < out[b - 1]; b--) {
      struct sim_fact *tmp = out[b];
      out[b] = out[b - 1];
      out[b - 1] = tmp;
    }
  return m;
}

/* Dump a model's reply object o into out: 0, AD_EINVAL when o is NULL (json_pack
 * refused a string that is not UTF-8), or AD_ETOOBIG past out's limit. */
static int put_reply(const json_t *o, struct buf *out) {
  return o ? jx_dump_buf(o, out, JSON_PRESERVE_ORDER) : AD_EINVAL;
}

/* Apply a broken-JSON fault of kind k to the dumped JSON in b. */
static int break_json(struct buf *b, unsigned k) {
  if (b->len < 2) return 0;
  if (k == 0) { /* missing closing brace */
    b->len--;
    b->data[b->len] = '\0';
    return 0;
  }
  if (k == 1) { /* trailing comma */
    b->data[b->len - 1] = '\0';
    b->len--;
    return buf_puts(b, ",}");
  }
  /* fenced and wrapped in prose */
  struct buf t = BUF_INIT;
  int rc = buf_printf(
      &t, "Here is the new question.\n\n```json\n%s\n```\n\nI chose facts that need deeper recall.",
      b->data);
  if (!rc) {
    buf_reset(b);
    rc = buf_append(b, t.data, t.len);
  }
  buf_release(&t);
  return rc;
}

static int challenger(struct wreq *w, struct buf *out) {
  struct rng *r = &w->rng;
  struct sim_fact *facts = xcalloc(MAX_FACTS, sizeof *facts);
  struct fitem *items = xcalloc(MAX_ITEMS, sizeof *items);
  json_t *o = NULL;
  int rc;
  size_t nf = sim_facts_scan(w->user.data, w->user.len, SIM_STATE_EQ, facts, MAX_FACTS);
  int g_leak = contains_ci(w->all.data, GUARD_LEAK);
  int g_weight = contains_ci(w->all.data, GUARD_WEIGHT);
  int g_json = contains_ci(w->all.data, GUARD_JSON);
  int verifiable = strstr(w->all.data, "\"answer\"") && !strstr(w->all.data, "\"rubric\"");

  /* Draws happen in a fixed order so each is independent of the others' outcome. */
  double u_default = rng_double(r), u_leak = rng_double(r), u_weight = rng_double(r);
  double u_json = rng_double(r);
  unsigned json_kind = (unsigned)rng_below(r, 3);
  double noise = gauss(r);

  double t;
  if (find_target(w->user.data, &t)) {
    t = clamp01(t + PHRASE_TARGET_NOISE * noise);
  } else {
    int ni = parse_feedback(w->user.data, items, MAX_ITEMS), fl, ce;
    t = adapt_target(u_default * ONESHOT_TARGET_MAX, items, ni, &fl, &ce);
  }
  int leak = u_leak < (g_leak ? P_LEAK_GUARDED : P_LEAK);
  int wstring = u_weight < (g_weight ? P_WEIGHT_STRING_GUARDED : P_WEIGHT_STRING);
  int broken = u_json < (g_json ? P_BROKEN_JSON_GUARDED : P_BROKEN_JSON);

  struct sim_fact *pick[4];
  struct buf q = BUF_INIT, ctx = BUF_INIT, ref = BUF_INIT;
  rc = 0;
  if (verifiable) {
    /* A fact the user text names more than once was asked about before (the
     * source states each fact once): prefer new ones so the question is new. */
    unsigned char avoid[MAX_FACTS] = {0};
    for (size_t i = 0; i < nf; i++) {
      int count = 0;
      for (const char *p = w->user.data; count < 2 && (p = strstr(p, facts[i].name)) != NULL; p++)
        count++;
      avoid[i] = count >= 2;
    }
    size_t m = nf ? pick_facts(r, facts, nf, t, t >= 0.45 ? 2 : 1, 0, avoid, pick) : 0;
    long long ans = 0;
    if (m == 0) {
      rc = buf_puts(&q, "What is the number of named quantities the study reports?");
    } else if (m == 1) {
      ans = pick[0]->value;
      rc = buf_printf(&q, "What value does the study report for %s? Answer with the integer only.",
                      pick[0]->name);
    } else {
      ans = pick[0]->value + pick[1]->value;
      rc = buf_printf(
          &q,
          "What is the sum of the values the study reports for %s and %s? Answer with the integer only.",
          pick[0]->name, pick[1]->name);
    }
    if (!rc && leak && m > 0)
      rc = buf_printf(&q, " (Recall that %s = %lld.)", pick[0]->name, pick[0]->value);
    char a[32];
    snprintf(a, sizeof a, "%lld", ans);
    if (!rc) o = json_pack("{s:s, s:s}", "question", q.data, "answer", a);
  } else {
    size_t m = nf ? pick_facts(r, facts, nf, t, 3 + (size_t)rng_below(r, 2), t >= ANCHOR_FROM, NULL,
                               pick)
                  : 0;
    const struct qtype *qt = t < 0.3    ? &Q_EASY[rng_below(r, 2)]
                             : t < 0.55 ? &Q_MID[rng_below(r, 3)]
                                        : &Q_HARD[rng_below(r, 3)];
    struct buf list = BUF_INIT;
    rc = m ? names_list(&list, pick, m) : buf_puts(&list, "the study's main quantities");
    if (!rc) rc = buf_printf(&q, qt->fmt, list.data);
    buf_release(&list);
    size_t leak_at = m ? (size_t)rng_below(r, m) : 0;
    if (!rc) rc = buf_puts(&ctx, CTX_INTRO[rng_below(r, 3)]);
    size_t mention0 = (size_t)rng_below(r, 6); /* consecutive templates: none repeats */
    for (size_t i = 0; i < m && !rc; i++) {
      rc = buf_putc(&ctx, ' ');
      if (rc) break;
      if (leak && i == leak_at)
        rc = buf_printf(&ctx, CTX_LEAK[rng_below(r, 3)], pick[i]->name, pick[i]->value);
      else rc = buf_printf(&ctx, CTX_MENTION[(mention0 + i) % 6], pick[i]->name);
    }
    if (!rc) rc = buf_printf(&ctx, " %s", CTX_OUTRO[rng_below(r, 3)]);
    for (size_t i = 0; i < m && !rc; i++)
      rc = buf_printf(&ref, "%s%s is %lld.", i ? " " : "", pick[i]->name, pick[i]->value);
    if (!rc && m == 0) rc = buf_puts(&ref, "The study reports no named quantities.");
    if (!rc) rc = buf_puts(&ref, " Together these values support the study's main conclusion.");
    json_t *rub = json_array();
    size_t wstring_at = m ? (size_t)rng_below(r, m) : 0;
    for (size_t i = 0; i < m && !rc; i++) {
      char crit[64];
      snprintf(crit, sizeof crit, "States that %s is %lld", pick[i]->name, pick[i]->value);
      long long wt = 1 + (long long)rng_below(r, 7);
      char ws[24];
      snprintf(ws, sizeof ws, "%lld", wt);
      json_t *weight = (wstring && i == wstring_at) ? json_string(ws) : json_integer(wt);
      if (json_array_append_new(rub, json_pack("{s:s, s:o}", "criterion", crit, "weight", weight)))
        rc = AD_EINVAL; /* json_pack refused the criterion */
    }
    if (m == 0 && !rc)
      json_array_append_new(rub, json_pack("{s:s, s:i}", "criterion",
                                           "Gives a coherent summary of the study", "weight", 3));
    if (!rc)
      o = json_pack("{s:s, s:s, s:s, s:s, s:o}", "question_type", qt->type, "context", ctx.data,
                    "question", q.data, "reference_answer", ref.data, "rubric", rub);
    else json_decref(rub);
  }
  buf_release(&q);
  buf_release(&ctx);
  buf_release(&ref);
  if (!rc) rc = put_reply(o, out);
  if (!rc && broken) rc = break_json(out, json_kind);
  json_decref(o);
  free(facts);
  free(items);
  return rc;
}

/* ---- orchestrator ---- */

static int orchestrator(struct wreq *w, struct buf *out) {
  struct fitem *items = xcalloc(MAX_ITEMS, sizeof *items);
  int n = parse_feedback(w->user.data, items, MAX_ITEMS), floors = 0, ceils = 0;
  double noise = 0.02 * gauss(&w->rng);
  int rc;
  if (n == 0) {
    rc = buf_printf(out,
                    "This is the first round for this source. Aim for a question that combines one "
                    "quantity a weaker model will know with several it is unlikely to recall. "
                    "Use a target difficulty around %.2f. Ask for reasoning, not a list of facts, "
                    "and keep every value out of the context.",
                    ORCH_FIRST_TARGET);
  } else {
    int easy = 0, strong = 0, qual = 0;
    for (int i = 0; i < n; i++) {
      easy += items[i].group == G_EASY;
      strong += items[i].group == G_STRONG;
      qual += items[i].group == G_QUALITY;
    }
    double t = clamp01(adapt_target(ORCH_FIRST_TARGET, items, n, &floors, &ceils) + noise);
    rc = buf_printf(out,
                    "Analysis of %d earlier round%s: %d too easy, %d where the strong solver "
                    "struggled, %d that failed the quality check. ",
                    n, n == 1 ? "" : "s", easy, strong, qual);
    if (!rc && floors && !ceils)
      rc = buf_puts(out,
                    "The weak solver recalled too much, so the next question must rest on "
                    "less familiar quantities. ");
    else if (!rc && ceils && !floors)
      rc = buf_puts(out,
                    "The question overshot: even the strong solver could not recall enough, "
                    "so step back toward quantities a capable model knows. ");
    else if (!rc && ceils && floors)
      rc = buf_puts(out, "The right level lies between the earlier attempts. ");
    if (!rc && qual)
      rc = buf_puts(out, "Keep every value out of the context and write the weights as integers. ");
    if (!rc)
      rc = buf_printf(out,
                      "Next: target difficulty around %.2f, from a different reasoning angle, "
                      "mixing one anchor fact with harder ones.",
                      t);
  }
  free(items);
  return rc;
}

/* ---- solver ---- */

static const char *const SOLVER_OPEN[] = {
    "Based on the study as I understand it:", "Here is what the study reports.",
    "Working through the question step by step:", "From what I recall of this work:"};
static const char *const SOLVER_CLOSE[] = {
    "These values together explain the behaviour the question asks about.",
    "Taken together, they support the study's main conclusion.",
    "The relationship between them follows from the study's design.",
    "This is consistent with the study's discussion."};

static int solver(struct wreq *w, struct buf *out) {
  static const char *const ctx_stops[] = {"QUESTION:", NULL};
  static const char *const q_stops[] = {"CONTEXT:", NULL};
  struct rng *r = &w->rng;
  struct buf ctx = BUF_INIT, q = BUF_INIT;
  int rc = section(w->last.data, "CONTEXT:", ctx_stops, &ctx);
  if (!rc)
    rc = strstr(w->last.data, "QUESTION:") ? section(w->last.data, "QUESTION:", q_stops, &q)
                                           : buf_puts(&q, w->last.data);
  fname_t names[MAX_NAMES];
  size_t n = rc ? 0 : sim_fact_names_scan(q.data, q.len, names, MAX_NAMES);
  int verifiable = strstr(w->all.data, "ANSWER:") != NULL;
  long long sum = 0;
  if (!rc) rc = buf_puts(out, SOLVER_OPEN[rng_below(r, 4)]);
  for (size_t i = 0; i < n && !rc; i++) {
    long long v;
    double u = rng_double(r);
    unsigned delta = 1 + (unsigned)rng_below(r, 3);
    int sign = rng_below(r, 2) ? 1 : -1;
    if (sim_fact_stated(ctx.data, ctx.len, names[i], SIM_STATE_ANY, &v) ||
        sim_fact_stated(q.data, q.len, names[i], SIM_STATE_ANY, &v)) {
      /* stated in the prompt: always right */
    } else if (u < sim_recall_prob(w->skill, sim_fact_difficulty(names[i]))) {
      v = sim_fact_value(names[i]);
    } else {
      v = sim_fact_value(names[i]) + sign * (long long)delta;
    }
    sum += v;
    rc = buf_printf(out, " %s is %lld.", names[i], v);
  }
  if (!rc && n == 0)
    rc = buf_puts(
        out,
        " The question names no specific quantity, so I describe the study's findings in general terms.");
  if (!rc) rc = buf_printf(out, " %s", SOLVER_CLOSE[rng_below(r, 4)]);
  if (!rc && verifiable) {
    if (n == 0) rc = buf_puts(out, "\nANSWER: unknown");
    else if (n >= 2 && contains_ci(q.data, "sum")) rc = buf_printf(out, "\nANSWER: %lld", sum);
    else {
      long long v = 0;
      sim_fact_stated(out->data, out->len, names[0], SIM_STATE_IS, &v);
      rc = buf_printf(out, "\nANSWER: %lld", v);
    }
  }
  buf_release(&ctx);
  buf_release(&q);
  return rc;
}

/* ---- judge ---- */

/* p[0..n) into out[outlen] (cut to fit), NUL-terminated; returns 1. */
static int put_answer(char *out, size_t outlen, const char *p, size_t n) {
  if (n >= outlen) n = outlen - 1;
  memcpy(out, p, n);
  out[n] = '\0';
  return 1;
}

/* The response's final answer: the last "ANSWER:" line, else the last integer. */
static int final_answer(const char *resp, char *out, size_t outlen) {
  const char *a = NULL;
  for (const char *p = resp; (p = strstr(p, "ANSWER:")) != NULL; p += 7) a = p + 7;
  if (a) {
    while (*a == ' ' || *a == '\t') a++;
    size_t n = strcspn(a, "\r\n");
    while (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '.')) n--;
    return put_answer(out, outlen, a, n);
  }
  const char *last = NULL;
  size_t ln = 0;
  for (const char *p = resp; *p; p++) {
    if ((*p >= '0' && *p <= '9') && (p == resp || !(p[-1] >= '0' && p[-1] <= '9'))) {
      size_t n = strspn(p, "0123456789");
      last = (p > resp && p[-1] == '-') ? p - 1 : p;
      ln = n + (size_t)(p - last);
    }
  }
  if (!last) return 0;
  return put_answer(out, outlen, last, ln);
}

static int answers_equal(const char *a, const char *b) {
  char *ea, *eb;
  double x = strtod(a, &ea), y = strtod(b, &eb);
  if (ea != a && eb != b && !*ea && !*eb) return fabs(x - y) < 1e-9;
  return !strcasecmp(a, b);
}

static int judge(struct wreq *w, struct buf *out) {
  const char *text = w->last.data;
  json_t *o = NULL;
  int rc = 0;
  const char *rub = after(text, "RUBRIC:");
  const char *ref = after(text, "REFERENCE ANSWER:");
  if (!rub && ref) {
    /* verifiable: compare final answers */
    const char *resp = after(ref, "RESPONSE:");
    struct buf refb = BUF_INIT;
    rc = put_trimmed(&refb, ref, resp ? resp - strlen("RESPONSE:") : ref + strlen(ref));
    char ra[128] = "", sa[128] = "";
    int have = resp && final_answer(resp, sa, sizeof sa);
    snprintf(ra, sizeof ra, "%s", refb.data);
    int ok = have && answers_equal(sa, ra);
    char reason[320];
    if (!have) snprintf(reason, sizeof reason, "The response gives no final answer.");
    else
      snprintf(reason, sizeof reason, "The response's final answer %s %s the reference %s.", sa,
               ok ? "matches" : "does not match", ra);
    buf_release(&refb);
    if (!rc) o = json_pack("{s:b, s:s}", "correct", ok, "reason", reason);
  } else {
    const char *resp = rub ? after(rub, "RESPONSE:") : NULL;
    const char *rend = resp ? resp - strlen("RESPONSE:") : (rub ? rub + strlen(rub) : NULL);
    size_t rlen = resp ? strlen(resp) : 0;
    json_t *verdicts = json_array();
    o = json_pack("{s:o}", "verdicts", verdicts);
    const char *p = rub;
    size_t judged = 0;
    while (p && p < rend && !rc && judged < MAX_CRITERIA) {
      const char *eol = memchr(p, '\n', (size_t)(rend - p));
      size_t len = eol ? (size_t)(eol - p) : (size_t)(rend - p);
      size_t i = 0;
      while (i < len && (p[i] == ' ' || p[i] == '\t')) i++;
      size_t d0 = i;
      long long num = 0;
      while (i < len && p[i] >= '0' && p[i] <= '9' && i - d0 < 9) num = num * 10 + (p[i++] - '0');
      if (i > d0 && i < len && (p[i] == '.' || p[i] == ')')) {
        judged++;
        /* find the fact and its value in the criterion */
        char reason[200];
        int met = 0, named = 0;
        long long v = 0;
        char nm[SIM_FACT_NAME_LEN + 2] = "";
        for (size_t k = i; k < len && !named; k++) {
          if (p[k] == 'F' && sim_fact_name_at(p, len, k)) {
            memcpy(nm, p + k, SIM_FACT_NAME_LEN);
            named = sim_fact_statement_at(p, len, k, SIM_STATE_ANY, &v, NULL) ? 2 : 1;
          }
        }
        long long said;
        if (named < 2) {
          snprintf(reason, sizeof reason, "The criterion names no fact with a checkable value.");
        } else if (!resp || !sim_fact_stated(resp, rlen, nm, SIM_STATE_EQ | SIM_STATE_IS, &said)) {
          snprintf(reason, sizeof reason, "The response does not state %s.", nm);
        } else if (said != v) {
          snprintf(reason, sizeof reason, "The response states %s is %lld, not %lld.", nm, said, v);
        } else {
          met = 1;
          snprintf(reason, sizeof reason, "The response states %s is %lld.", nm, v);
        }
        if (json_array_append_new(verdicts,
                                  json_pack("{s:I, s:b, s:s}", "criterion", (json_int_t)num, "met",
                                            met, "reason", reason)))
          rc = AD_EINVAL; /* json_pack refused the reason (not UTF-8) */
      }
      p = eol ? eol + 1 : rend;
    }
  }
  if (!rc) rc = put_reply(o, out);
  json_decref(o);
  return rc;
}

/* ---- quality verifier ---- */

/* Record one issue of the quality verdict: its name in issues, its sentence in fb. */
static int add_issue(json_t *issues, struct buf *fb, const char *issue, const char *sentence) {
  json_array_append_new(issues, json_string(issue));
  return buf_puts(fb, sentence);
}

static int quality(struct wreq *w, struct buf *out) {
  struct rng *r = &w->rng;
  double u_miss = rng_double(r), u_false = rng_double(r);
  const char *c = after(w->last.data, "CANDIDATE:");
  json_t *cand = NULL, *issues = json_array(), *o = NULL;
  struct buf fb = BUF_INIT;
  int rc = 0;
  if (c) {
    while (*c == ' ' || *c == '\n' || *c == '\r' || *c == '\t') c++;
    if (!strncmp(c, "```", 3)) c = strchr(c, '\n') ? strchr(c, '\n') + 1 : c + 3;
    cand = json_loads(c, JSON_DISABLE_EOF_CHECK, NULL);
  }
  if (!json_is_object(cand)) {
    rc = add_issue(issues, &fb, "unparseable", "The candidate is not a JSON object. ");
  } else {
    const char *ctx = jx_str(cand, "context");
    const char *q = jx_str(cand, "question");
    const json_t *rubric = json_object_get(cand, "rubric");
    int leak = 0, malformed = 0;
    if (!q || !*q)
      rc = add_issue(issues, &fb, "missing_question", "The candidate has no question. ");
    if (rubric || !json_object_get(cand, "answer")) {
      if (!json_is_array(rubric) || json_array_size(rubric) == 0) malformed = 1;
      size_t i;
      const json_t *it;
      if (json_is_array(rubric)) json_array_foreach(rubric, i, it) {
          const json_t *wt = json_object_get(it, "weight");
          const char *crit = jx_str(it, "criterion");
          if (!crit || !json_is_integer(wt) || json_integer_value(wt) < 1 ||
              json_integer_value(wt) > 7)
            malformed = 1;
          if (!crit || !ctx || i >= MAX_CRITERIA) continue;
          size_t cl = strlen(crit);
          for (size_t k = 0; k + SIM_FACT_NAME_LEN <= cl; k++) {
            long long v, cv;
            if (crit[k] == 'F' && sim_fact_statement_at(crit, cl, k, SIM_STATE_ANY, &v, NULL)) {
              char nm[SIM_FACT_NAME_LEN + 2];
              memcpy(nm, crit + k, SIM_FACT_NAME_LEN);
              nm[SIM_FACT_NAME_LEN] = '\0';
              if (sim_fact_stated(ctx, strlen(ctx), nm, SIM_STATE_ANY, &cv) && cv == v) leak = 1;
              break;
            }
          }
        }
    } else {
      /* verifiable: any stated fact value in the question or context is a leak */
      struct sim_fact f[4];
      if ((q && sim_facts_scan(q, strlen(q), SIM_STATE_ANY, f, 4)) ||
          (ctx && sim_facts_scan(ctx, strlen(ctx), SIM_STATE_ANY, f, 4)))
        leak = 1;
    }
    if (leak && u_miss < QV_LEAK_MISS) leak = 0;
    if (!rc && leak)
      rc = add_issue(issues, &fb, "leakage",
                     "The context states the value of a fact the rubric asks for. ");
    if (!rc && malformed)
      rc = add_issue(issues, &fb, "rubric_malformed",
                     "The rubric must be non-empty with integer weights from 1 to 7. ");
    if (!rc && json_array_size(issues) == 0 && u_false < QV_FALSE_ALARM)
      rc = add_issue(issues, &fb, "question_quality",
                     "The question reads as a list of lookups rather than a reasoning task. ");
  }
  if (!rc && json_array_size(issues) == 0)
    rc = buf_puts(&fb, "The candidate is well formed and does not leak its answer.");
  if (!rc) {
    while (fb.len && fb.data[fb.len - 1] == ' ') fb.data[--fb.len] = '\0';
    o = json_pack("{s:b, s:O, s:s}", "pass", json_array_size(issues) == 0, "issues", issues,
                  "feedback", fb.data);
    rc = put_reply(o, out);
  }
  json_decref(o);
  json_decref(issues);
  json_decref(cand);
  buf_release(&fb);
  return rc;
}

/* ---- entry point ---- */

int sim_world_answer(const json_t *request, char **content, int64_t *prompt_tokens,
                     int64_t *completion_tokens, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  *content = NULL;
  if (!json_is_object(request)) {
    ad_set_err(err, errlen, "request must be a JSON object");
    return AD_EINVAL;
  }
  const char *model = jx_str(request, "model");
  if (!model) {
    ad_set_err(err, errlen, "request has no 'model' string");
    return AD_EINVAL;
  }
  struct wreq w;
  memset(&w, 0, sizeof w);
  int kind = classify(model, &w.skill, err, errlen);
  if (kind <= 0) return kind;
  w.kind = (enum wmodel)kind;
  const json_t *msgs = json_object_get(request, "messages");
  if (!json_is_array(msgs)) {
    ad_set_err(err, errlen, "request for model '%s' has no 'messages' array", model);
    return AD_EINVAL;
  }
  struct buf reply = BUF_INIT;
  buf_init(&w.all, AD_MAX_REQUEST);
  buf_init(&w.user, AD_MAX_REQUEST);
  buf_init(&w.last, AD_MAX_REQUEST);
  buf_init(&reply, AD_MAX_RESPONSE);
  char *canon = NULL;
  int rc = 0;
  size_t i;
  const json_t *m;
  json_array_foreach(msgs, i, m) {
    if (!json_is_object(m)) {
      ad_set_err(err, errlen, "messages[%zu] must be an object", i);
      rc = AD_EINVAL;
      goto cleanup;
    }
    const char *role = jx_str(m, "role");
    size_t before = w.all.len;
    if (i > 0 && !rc) rc = buf_puts(&w.all, "\n\n");
    size_t start = w.all.len;
    if (!rc) rc = content_text(json_object_get(m, "content"), &w.all);
    w.chars += (long long)(w.all.len - before);
    if (!rc && role && !strcmp(role, "user")) {
      if (w.user.len) rc = buf_puts(&w.user, "\n\n");
      if (!rc) rc = buf_append(&w.user, w.all.data + start, w.all.len - start);
      buf_reset(&w.last);
      if (!rc) rc = buf_append(&w.last, w.all.data + start, w.all.len - start);
    }
  }
  if (rc) {
    ad_set_err(err, errlen, "request for model '%s': messages too large (%s)", model,
               ad_strerror(rc));
    goto cleanup;
  }
  /* Seed: canonical messages + model + seed. */
  canon = jx_dump_canonical(msgs);
  long long seed = jx_int(request, "seed", 0);
  rng_seed(&w.rng, rng_derive(hash64(canon, strlen(canon)), "%s/%lld", model, seed));
  switch (w.kind) {
  case W_CHALLENGER: rc = challenger(&w, &reply); break;
  case W_ORCHESTRATOR: rc = orchestrator(&w, &reply); break;
  case W_QUALITY: rc = quality(&w, &reply); break;
  case W_JUDGE: rc = judge(&w, &reply); break;
  case W_SOLVER: rc = solver(&w, &reply); break;
  default: rc = AD_EINTERNAL; break;
  }
  if (rc) {
    ad_set_err(err, errlen, "sim model '%s' failed: %s", model, ad_strerror(rc));
    goto cleanup;
  }
  *prompt_tokens = w.chars / 4 > 0 ? w.chars / 4 : 1;
  *completion_tokens = reply.len / 4 > 0 ? (int64_t)(reply.len / 4) : 1;
  *content = buf_take(&reply, NULL);
  rc = 1;
cleanup:
  free(canon);
  buf_release(&w.all);
  buf_release(&w.user);
  buf_release(&w.last);
  buf_release(&reply);
  return rc;
}
