/* world.c - the sim world's models: challenger, orchestrator, quality verifier,
 * judge and solvers (see world.h and docs/sim.md).
 *
 * Every model reads the rendered prompt text (the prompt <-> sim contract),
 * draws from one rng seeded by hash(canonical messages) + model + seed, and
 * writes its reply in the real format. Nothing here keeps state between calls.
 */
#include "sim/world.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim/facts.h"
#include "sim/judge_batch.h"
#include "sim/think.h"
#include "sim/world_agent.h"
#include "sim/world_notes.h"
#include "sim/world_optimize.h"
#include "sim/world_paper.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/rng.h"

/* ---- parameters (documented in docs/sim.md; calibrated by scripts/sim-calibrate.sh) ----
 *
 * World parameters a recipe can set live in the model name ("sim-challenger@prior=0.85",
 * "sim-judge@err=0.05,lenient=0.3"): see struct wparams and param_table below. The rest are
 * fixed here. */

/* Challenger faults: probability without / with the guidance topic in the prompt. */
#define P_LEAK 0.15
#define P_LEAK_GUARDED 0.03
#define P_WEIGHT_STRING 0.10
#define P_WEIGHT_STRING_GUARDED 0.02
#define P_BROKEN_JSON 0.10
#define P_BROKEN_JSON_GUARDED 0.02
#define P_GENERIC 0.15 /* a generic question on facts any model knows */
#define P_GENERIC_GUARDED 0.04
#define P_COMPOUND 0.12 /* two facts in one rubric criterion */
#define P_COMPOUND_GUARDED 0.01
#define HARDEST_SHIFT 0.25 /* decoy "as hard as possible": the target moves up this much */
#define GENERIC_MAX 0.15   /* a generic question's facts look at most this difficult */

#define CALL_NOISE 0.06    /* sd of a challenger's or orchestrator's target between calls */
#define PICK_SPREAD 0.08   /* sd of each picked fact's wanted difficulty around the target */
#define ANCHOR_FROM 0.25   /* with the anchor topic, targets from here build on one easy fact */
#define ANCHOR_MAX 0.10    /* the anchor's wanted difficulty ~ U[0, ANCHOR_MAX] */
#define AVOID_PENALTY 0.10 /* facts already asked about look this much further */

/* What the challenger and orchestrator believe about solvers (their own model of the
 * world, not the world's): a solver of skill s gets a fact it perceives at difficulty p
 * with probability sigma(BELIEF_SLOPE (s - p)); before evidence the strong solver is
 * BELIEF_GAP above the weak one; they aim AIM of the way from weak to strong. */
#define BELIEF_SLOPE 8.0
#define BELIEF_GAP 0.30
#define AIM 0.5

/* Solvers: a fact not recalled is hedged (no value) with this probability, else a wrong
 * value is stated. */
#define SOLVER_HEDGE 0.30

/* Judge: a response longer than this many characters counts as long. */
#define JUDGE_LONG 600

/* Quality verifier noise. */
#define QV_LEAK_MISS 0.10     /* a leak goes unnoticed */
#define QV_COMPOUND_MISS 0.20 /* a compound criterion goes unnoticed */
#define QV_FALSE_ALARM 0.01   /* a clean candidate is flagged "question_quality" */

/* The orchestrator phrases its target relative to the last question's facts, with steps of at
 * most this size. */
#define STEP_MAX 0.30

#define MAX_FACTS 256
#define MAX_NAMES 32
#define MAX_ITEMS 128
#define MAX_QFACTS 24
#define MAX_PICK 20     /* facts one question asks about */
#define MAX_CRITERIA 64 /* rubric lines judged / checked; bounds the work on hostile input */

/* Guidance topics the challenger recognises in its messages (case-insensitive; any phrase
 * of a topic counts). Each lowers one failure rate; the decoys do nothing or hurt. */
static const char *const TOPIC_LEAK[] = {"must not contain the answer",
                                         "keep the answer out of the context", NULL};
static const char *const TOPIC_WEIGHT[] = {"weights are integers", "integer weights", NULL};
static const char *const TOPIC_JSON[] = {"Reply with only the JSON object", NULL};
static const char *const TOPIC_SPECIFIC[] = {"answerable from the source", "only this source",
                                             "specific to this source", NULL};
static const char *const TOPIC_ONE_TEST[] = {"one test per criterion", "one fact per criterion",
                                             NULL};
static const char *const TOPIC_ANCHOR[] = {"anchor fact", "one premise any model knows",
                                           "one quantity a weaker model will know", NULL};
static const char *const DECOY_HARDEST[] = {"as hard as possible", "as difficult as possible",
                                            "hardest possible", NULL};
/* Decoys that sound useful and change nothing (documented; listed for the docs' sake). */
static const char *const DECOY_NOOP[] = {"be creative", "think step by step", "high quality", NULL};

enum wmodel {
  W_NONE = 0,
  W_CHALLENGER,
  W_ORCHESTRATOR,
  W_QUALITY,
  W_JUDGE,
  W_SOLVER,
  W_EXTRACTOR,
  W_LOOP_JUDGE
};

/* The world parameters a model name can set after '@' ("key=value,key=value"). */
struct wparams {
  double prior;      /* challenger: its one-shot target; orchestrator: its target before evidence */
  double est;        /* sd of its (fixed, per fact) misjudgement of a fact's difficulty */
  double conf;       /* weight of its prior against one feedback item */
  double trust;      /* challenger: weight of the orchestrator's target against one feedback item */
  double topic;      /* challenger: sd of its (fixed, per source) misjudgement of a whole source */
  double err;        /* judge: probability of a wrong verdict on a clear-cut criterion */
  double lenient;    /* judge: extra probability of passing a vague or long answer's criterion */
  double generic;    /* challenger: probability of a generic question without the guidance topic */
  double unsuitable; /* extractor: probability of declaring a document unsuitable (world_paper.c) */
  double habit;      /* challenger: probability of its favourite question (world_notes.c) */
  double notes;      /* challenger: 1 reads a dataset note's lines, 0 ignores them */
  double miss;       /* quality verifier: probability of missing a leak */
};

struct param_def {
  enum wmodel kind;
  const char *key;
  size_t off;
  double dflt, lo, hi;
};

#define WP(f) offsetof(struct wparams, f)
static const struct param_def param_table[] = {
    {W_CHALLENGER, "prior", WP(prior), 0.10, 0, 1},
    {W_CHALLENGER, "est", WP(est), 0.08, 0, 1},
    {W_CHALLENGER, "topic", WP(topic), 0.25, 0, 1},
    {W_CHALLENGER, "conf", WP(conf), 1.0, 0, 100},
    {W_CHALLENGER, "trust", WP(trust), 2.0, 0, 100},
    {W_CHALLENGER, "generic", WP(generic), P_GENERIC, 0, 1},
    {W_CHALLENGER, "habit", WP(habit), 0, 0, 1},
    {W_CHALLENGER, "notes", WP(notes), 1, 0, 1},
    {W_ORCHESTRATOR, "prior", WP(prior), 0.20, 0, 1},
    {W_ORCHESTRATOR, "est", WP(est), 0.08, 0, 1},
    {W_ORCHESTRATOR, "conf", WP(conf), 1.0, 0, 100},
    {W_QUALITY, "miss", WP(miss), QV_LEAK_MISS, 0, 1},
    {W_JUDGE, "err", WP(err), 0.03, 0, 0.5},
    {W_JUDGE, "lenient", WP(lenient), 0.25, 0, 1},
    {W_EXTRACTOR, "unsuitable", WP(unsuitable), 0.0, 0, 1},
    {W_LOOP_JUDGE, "err", WP(err), 0.05, 0, 0.5},
};
#undef WP

struct wreq {
  enum wmodel kind;
  double skill; /* solvers */
  struct wparams par;
  struct buf all;  /* every message's text, joined by blank lines */
  struct buf user; /* user messages only */
  struct buf last; /* the last user message */
  double shift;    /* challenger: its misjudgement of the whole source (parameter topic) */
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

static int topic_in(const char *hay, const char *const *phrases) {
  for (; *phrases; phrases++)
    if (contains_ci(hay, *phrases)) return 1;
  return 0;
}

/* A model's fixed misjudgement of a fact's difficulty: a standard normal draw from the
 * fact's name and a salt per model (the same every call, as a model's beliefs are). */
static double misjudgement(const char *name, unsigned long long salt) {
  unsigned long long h1 = hash64_seed(name, SIM_FACT_NAME_LEN, salt);
  unsigned long long h2 = hash64_seed(name, SIM_FACT_NAME_LEN, salt ^ 0x9e3779b97f4a7c15ull);
  double u1 = ((double)(h1 >> 11) + 0.5) * 0x1.0p-53, u2 = (double)(h2 >> 11) * 0x1.0p-53;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
#define SALT_CHALLENGER 0xc4a11e9e5ull
#define SALT_ORCHESTRATOR 0x0c4e57a7ull
#define SALT_TOPIC 0x70b1c5eedull

/* The difficulty of a fact as the model of kind `kind` perceives it. */
static double perceived(const char *name, const struct wreq *w) {
  unsigned long long salt = w->kind == W_ORCHESTRATOR ? SALT_ORCHESTRATOR : SALT_CHALLENGER;
  return sim_fact_difficulty(name) + w->shift + w->par.est * misjudgement(name, salt);
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

/* Parameters after '@' in a model name ("prior=0.8,est=0.1") into *p, which holds the
 * kind's defaults. 0, or AD_EINVAL with a message naming the model and the key. */
static int parse_params(const char *model, enum wmodel kind, const char *spec, struct wparams *p,
                        char *err, size_t errlen) {
  const char *q = spec;
  while (*q) {
    const char *eq = strchr(q, '=');
    size_t kl = eq ? (size_t)(eq - q) : strcspn(q, ",");
    const struct param_def *d = NULL;
    for (size_t i = 0; i < sizeof param_table / sizeof *param_table && !d; i++)
      if (param_table[i].kind == kind && strlen(param_table[i].key) == kl &&
          !strncmp(param_table[i].key, q, kl))
        d = &param_table[i];
    if (!d || !eq) {
      ad_set_err(err, errlen, "model '%s': unknown world parameter '%.*s' (see docs/sim.md)", model,
                 (int)kl, q);
      return AD_EINVAL;
    }
    char *end;
    double v = strtod(eq + 1, &end);
    if (end == eq + 1 || (*end && *end != ',') || !(v >= d->lo && v <= d->hi)) {
      ad_set_err(err, errlen, "model '%s': parameter '%s' must be a number in [%g, %g]", model,
                 d->key, d->lo, d->hi);
      return AD_EINVAL;
    }
    *(double *)((char *)p + d->off) = v;
    q = *end ? end + 1 : end;
  }
  return 0;
}

/* The world model a model name selects: a W_* kind, W_NONE when it is not a world
 * model, or AD_EINVAL (message in err) for a solver with a bad skill or a bad parameter. */
static int classify(const char *model, double *skill, struct wparams *par, char *err,
                    size_t errlen) {
  static const struct {
    const char *name;
    enum wmodel kind;
  } names[] = {{"sim-challenger", W_CHALLENGER}, {"sim-orchestrator", W_ORCHESTRATOR},
               {"sim-quality", W_QUALITY},       {"sim-judge", W_JUDGE},
               {"sim-extractor", W_EXTRACTOR},   {"sim-loop-judge", W_LOOP_JUDGE}};
  if (!strncmp(model, "sim-solver@", 11)) {
    char *end;
    double s = strtod(model + 11, &end);
    if (end == model + 11 || (*end && *end != ',') || !(s >= 0 && s <= 1)) {
      ad_set_err(err, errlen, "model '%s': the skill after '@' must be a number in [0,1]", model);
      return AD_EINVAL;
    }
    struct sim_think t; /* its reasoning (think.h): the backend writes it, not the world */
    if (*end && sim_think_parse(model, end + 1, &t, err, errlen)) return AD_EINVAL;
    *skill = s;
    return W_SOLVER;
  }
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    size_t n = strlen(names[i].name);
    if (strncmp(model, names[i].name, n) || (model[n] && model[n] != '@')) continue;
    memset(par, 0, sizeof *par);
    for (size_t k = 0; k < sizeof param_table / sizeof *param_table; k++)
      if (param_table[k].kind == names[i].kind)
        *(double *)((char *)par + param_table[k].off) = param_table[k].dflt;
    if (model[n] == '@') {
      int rc = parse_params(model, names[i].kind, model + n + 1, par, err, errlen);
      if (rc) return rc;
    }
    return names[i].kind;
  }
  return W_NONE;
}

int sim_world_params(const char *model, json_t **params, char *err, size_t errlen) {
  double skill = 0;
  struct wparams par;
  *params = NULL;
  if (sim_agent_model(model)) return sim_agent_params(model, params, err, errlen); /* agents */
  int kind = classify(model, &skill, &par, err, errlen);
  if (kind <= 0) return kind;
  json_t *o = json_object();
  if (kind == W_SOLVER) {
    json_object_set_new(o, "skill", json_real(skill));
    json_object_set_new(o, "hedge", json_real(SOLVER_HEDGE));
    json_object_set_new(o, "recall_slope", json_real(SIM_RECALL_SLOPE));
    json_object_set_new(o, "slip", json_real(SIM_RECALL_SLIP));
    json_object_set_new(o, "form", json_real(SIM_SOLVER_FORM));
    struct sim_think t;
    if (sim_think_of_model(model, &t, NULL, 0) == 1 && strchr(model, ',')) {
      json_object_set_new(o, "think", json_integer(t.tokens));
      json_object_set_new(o, "tags", json_integer(t.tags));
    }
  }
  for (size_t k = 0; k < sizeof param_table / sizeof *param_table; k++)
    if (param_table[k].kind == (enum wmodel)kind)
      json_object_set_new(o, param_table[k].key,
                          json_real(*(const double *)((const char *)&par + param_table[k].off)));
  *params = o;
  return 1;
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

/* ---- feedback parsing (the contract's block, also the orchestrator's history) ---- */

enum fgroup { G_NONE = 0, G_EASY, G_STRONG, G_QUALITY };

struct fitem {
  enum fgroup group;
  double pd[MAX_QFACTS]; /* the reader's perceived difficulty of each fact the question names */
  fname_t names[MAX_QFACTS];
  int npd;
  int round;     /* the history's "round N" line under the item, 0 when none */
  double weak;   /* -1 when not shown */
  double strong; /* -1 when not shown ("n/a") */
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

/* Item lines of the feedback block under its three headings: the group, the facts the
 * quoted question names (as w's model perceives them) and the scores shown. */
static int parse_feedback(const struct wreq *w, const char *text, struct fitem *items, int max) {
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
      if (n > 0 && len - i > 6 && !memcmp(p + i, "round ", 6)) /* history: the item's round */
        items[n - 1].round = atoi(p + i + 6);
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
        memset(it, 0, sizeof *it);
        it->group = g;
        it->weak = pct_after(st, stl, "weak avg:", -1);
        it->strong = pct_after(st, stl, "strong avg:", -1);
        size_t nn = sim_fact_names_scan(qs, (size_t)(qe - qs), it->names, MAX_QFACTS);
        for (size_t k = 0; k < nn; k++) it->pd[it->npd++] = perceived(it->names[k], w);
        n++;
      }
    }
    p = eol ? eol + 1 : p + len;
  }
  return n;
}

/* The score a reader expects of a solver of skill s on item it's question. */
static double expected_score(const struct fitem *it, double s) {
  double e = 0;
  for (int j = 0; j < it->npd; j++) e += 1.0 / (1.0 + exp(-BELIEF_SLOPE * (s - it->pd[j])));
  return e / it->npd;
}

/* The skill that best explains the scores shown (weak, or strong when `strong`): least
 * squares over the items that name facts and show that score, plus a prior pulling to s0
 * with weight conf (one item's worth). *used gets the number of items used. */
static double fit_skill(const struct fitem *it, int n, int strong, double s0, double conf,
                        int *used) {
  double best = s0, bestv = HUGE_VAL;
  *used = 0;
  for (int i = 0; i < n; i++) *used += it[i].npd > 0 && (strong ? it[i].strong : it[i].weak) >= 0;
  if (!*used) return s0;
  double lambda = conf; /* a skill off by 0.5 from the prior costs a quarter of a full miss */
  for (int k = -40; k <= 140; k++) {
    double s = k / 100.0, v = lambda * (s - s0) * (s - s0);
    for (int i = 0; i < n; i++) {
      double sc = strong ? it[i].strong : it[i].weak;
      if (it[i].npd == 0 || sc < 0) continue;
      double r = sc - expected_score(&it[i], s);
      v += r * r;
    }
    if (v < bestv) {
      bestv = v;
      best = s;
    }
  }
  return best;
}

/* The target a reader (challenger or orchestrator) derives from feedback items, starting
 * from its prior target: it estimates the weak and the strong solver's skill from the
 * scores shown next to the questions' facts and aims AIM of the way between them.
 * Returns the number of items that carried evidence (0: the prior target is returned). */
static int target_from_items(const struct fitem *it, int n, double prior, double conf, double *t) {
  double w0 = prior - AIM * BELIEF_GAP;
  int nw, ns;
  double sw = fit_skill(it, n, 0, w0, conf, &nw);
  double ss = fit_skill(it, n, 1, sw + BELIEF_GAP, conf, &ns);
  if (ss < sw) ss = sw;
  *t = nw || ns ? clamp01(sw + AIM * (ss - sw)) : prior;
  return nw > ns ? nw : ns;
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

/* The orchestrator's target relative to a question it names: the last "asked about <facts>;
 * ... quantities about D harder|easier than those" in text. The target is where the reader
 * perceives those facts (their mean) moved by D: 1, or 0 when text has no such instruction. */
static int find_relative(const struct wreq *w, const char *text, double *t) {
  static const char ask[] = "asked about ", step[] = "quantities about ";
  const char *a = NULL;
  for (const char *p = text; (p = strstr(p, ask)) != NULL; p++) a = p + sizeof ask - 1;
  if (!a) return 0;
  const char *semi = strchr(a, ';'), *s = semi ? strstr(semi, step) : NULL;
  if (!s || s - semi > 80) return 0;
  char *end;
  double d = strtod(s + sizeof step - 1, &end);
  if (end == s + sizeof step - 1 || !(d >= 0 && d <= 1)) return 0;
  if (!strncmp(end, " easier", 7)) d = -d;
  else if (strncmp(end, " harder", 7)) return 0;
  fname_t names[MAX_QFACTS];
  size_t n = sim_fact_names_scan(a, (size_t)(semi - a), names, MAX_QFACTS);
  if (!n) return 0;
  double m = 0;
  for (size_t k = 0; k < n; k++) m += perceived(names[k], w) / (double)n;
  *t = clamp01(m + d);
  return 1;
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

/* How many facts (rubric criteria) a question asks about, before a draw of 0 or 1 more:
 * about a quarter of the source's facts, at least 3 (8 facts: 3-4; 16: 5-6; 32: 9-10). */
static size_t criteria_count(size_t nf) {
  size_t m = 1 + nf / 4;
  return m < 3 ? 3 : m > MAX_PICK - 1 ? MAX_PICK - 1 : m;
}

/* Pick m distinct facts whose difficulties are near target (with PICK_SPREAD
 * noise); with anchor, the first is an easy fact instead. Facts with avoid[i]
 * set (asked before) count as AVOID_PENALTY further away. */
static size_t pick_facts(struct rng *r, struct sim_fact *facts, size_t nf, double t, size_t m,
                         int anchor, const unsigned char *avoid, struct sim_fact **out) {
  if (m > nf) m = nf;
  /* Footholds: a quarter of the picks (at least one) when anchoring. */
  size_t anchors = anchor ? (m / 4 > 1 ? m / 4 : 1) : 0;
  int used[MAX_FACTS] = {0};
  for (size_t k = 0; k < m; k++) {
    double g = gauss(r), a = rng_double(r) * ANCHOR_MAX;
    double want = k < anchors ? a : t + PICK_SPREAD * g;
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
  /* Its fixed misjudgement of this source as a whole (topic x a standard normal drawn from
   * the source's first fact): it finds some sources' material easier or harder than it is,
   * and only feedback whose numbers belong to its questions can correct that. */
  if (nf) w->shift = w->par.topic * misjudgement(facts[0].name, SALT_TOPIC);
  /* The challenger never sees a fact's difficulty, only its own estimate of it. */
  for (size_t i = 0; i < nf; i++) facts[i].difficulty = perceived(facts[i].name, w);
  int g_leak = topic_in(w->all.data, TOPIC_LEAK);
  int g_weight = topic_in(w->all.data, TOPIC_WEIGHT);
  int g_json = topic_in(w->all.data, TOPIC_JSON);
  int g_specific = topic_in(w->all.data, TOPIC_SPECIFIC);
  int g_one_test = topic_in(w->all.data, TOPIC_ONE_TEST);
  int d_hardest = topic_in(w->all.data, DECOY_HARDEST);
  int g_anchor = topic_in(w->all.data, TOPIC_ANCHOR);
  (void)DECOY_NOOP;
  int verifiable = strstr(w->all.data, "\"answer\"") && !strstr(w->all.data, "\"rubric\"");

  /* Draws happen in a fixed order so each is independent of the others' outcome. */
  double u_generic = rng_double(r), u_leak = rng_double(r), u_weight = rng_double(r);
  double u_json = rng_double(r), u_compound = rng_double(r);
  unsigned json_kind = (unsigned)rng_below(r, 3);
  double noise = gauss(r);
  /* Its favourite question (habit > 0 only: without it the draws stay as they were), unless
   * a dataset note it reads names its type as over-represented or quotes its wording. */
  double u_habit = w->par.habit > 0 ? rng_double(r) : 1;
  char overused[SIM_NOTES_MAX_TYPES][SIM_NOTES_TYPE_LEN];
  int n_over = w->par.notes > 0 ? sim_notes_overused(w->user.data, overused, SIM_NOTES_MAX_TYPES)
                                : 0;
  int habit = u_habit < w->par.habit && !sim_habit_asked_before(w->user.data) &&
              !sim_notes_listed(overused, n_over, SIM_HABIT_TYPE) &&
              !(w->par.notes > 0 && sim_notes_steer_away(w->user.data, SIM_HABIT_FMT));

  /* Its own target: the prior, moved by what the feedback's items show; then combined
   * with the orchestrator's target when the instructions give one, each weighted by the
   * evidence behind it (its prior and items against the orchestrator's trust). */
  int ni = parse_feedback(w, w->user.data, items, MAX_ITEMS);
  double t, t_orch;
  int used = target_from_items(items, ni, w->par.prior, w->par.conf, &t);
  /* A question the weak solver scored nothing on teaches it to give one foothold. */
  for (int i = 0; i < ni && !g_anchor; i++) g_anchor = items[i].npd && items[i].weak == 0;
  if (find_relative(w, w->user.data, &t_orch) || find_target(w->user.data, &t_orch)) {
    double wc = w->par.conf + used, wo = w->par.trust;
    t = wc + wo > 0 ? (wc * t + wo * t_orch) / (wc + wo) : t;
  }
  if (d_hardest) t += HARDEST_SHIFT;
  t = clamp01(t + CALL_NOISE * noise);
  int generic = u_generic <
                (g_specific ? w->par.generic * (P_GENERIC_GUARDED / P_GENERIC) : w->par.generic);
  if (generic) t = 0;
  int leak = u_leak < (g_leak ? P_LEAK_GUARDED : P_LEAK);
  int wstring = u_weight < (g_weight ? P_WEIGHT_STRING_GUARDED : P_WEIGHT_STRING);
  int broken = u_json < (g_json ? P_BROKEN_JSON_GUARDED : P_BROKEN_JSON);
  int compound = u_compound < (g_one_test ? P_COMPOUND_GUARDED : P_COMPOUND);
  /* A fact the user text names more than once was asked about before (the source states
   * each fact once): prefer new ones so the question is new. */
  unsigned char avoid[MAX_FACTS] = {0};
  for (size_t i = 0; i < nf; i++) {
    int count = 0;
    for (const char *p = w->user.data; count < 2 && (p = strstr(p, facts[i].name)) != NULL; p++)
      count++;
    avoid[i] = count >= 2;
  }

  struct sim_fact *pick[MAX_PICK];
  struct buf q = BUF_INIT, ctx = BUF_INIT, ref = BUF_INIT;
  rc = 0;
  if (verifiable) {
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
    size_t m = nf ? pick_facts(r, facts, nf, t, criteria_count(nf) + (size_t)rng_below(r, 2),
                               g_anchor && t >= ANCHOR_FROM && !generic, avoid, pick)
                  : 0;
    const struct qtype *lv = t < 0.3 ? Q_EASY : t < 0.55 ? Q_MID : Q_HARD;
    size_t nlv = t < 0.3 ? 2 : 3, ok[3], nok = 0;
    for (size_t i = 0; i < nlv && n_over; i++) /* types a note it reads says are over-used */
      if (!sim_notes_listed(overused, n_over, lv[i].type)) ok[nok++] = i;
    const struct qtype fav = {SIM_HABIT_TYPE, SIM_HABIT_FMT};
    const struct qtype *qt = habit                  ? &fav
                             : nok > 0 && nok < nlv ? &lv[ok[rng_below(r, nok)]]
                                                    : &lv[rng_below(r, nlv)];
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
      char crit[96];
      if (compound && m >= 2 && i == m - 2) {
        /* one criterion testing two facts ("X and Y"): the judge checks the first only */
        snprintf(crit, sizeof crit, "States that %s is %lld and that %s is %lld", pick[i]->name,
                 pick[i]->value, pick[i + 1]->name, pick[i + 1]->value);
        m--;
      } else {
        snprintf(crit, sizeof crit, "States that %s is %lld", pick[i]->name, pick[i]->value);
      }
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
    if (!rc && sim_paper_wants_negative(w->all.data)) /* a signed rubric (world_paper.c) */
      rc = sim_paper_sign_rubric(r, o, pick, m);
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
  int n = parse_feedback(w, w->user.data, items, MAX_ITEMS);
  double noise = CALL_NOISE * gauss(&w->rng);
  int rc;
  if (n == 0) {
    rc = buf_printf(out,
                    "This is the first round for this source. Aim for a question that combines one "
                    "quantity a weaker model will know with several it is unlikely to recall. "
                    "Use a target difficulty around %.2f. Ask for reasoning, not a list of facts, "
                    "and keep every value out of the context.",
                    w->par.prior);
  } else {
    int easy = 0, strong = 0, qual = 0;
    for (int i = 0; i < n; i++) {
      easy += items[i].group == G_EASY;
      strong += items[i].group == G_STRONG;
      qual += items[i].group == G_QUALITY;
    }
    double t;
    target_from_items(items, n, w->par.prior, w->par.conf, &t);
    t = clamp01(t + noise);
    /* The latest question with facts (the highest round; else the last listed), and where
     * it stood, as it perceives it. */
    int li = -1;
    for (int i = 0; i < n; i++)
      if (items[i].npd && (li < 0 || items[i].round >= items[li].round)) li = i;
    double last = -1;
    if (li >= 0) {
      last = 0;
      for (int j = 0; j < items[li].npd; j++) last += items[li].pd[j] / items[li].npd;
    }
    rc = buf_printf(out,
                    "Analysis of %d earlier round%s: %d too easy, %d where the strong solver "
                    "struggled, %d that failed the quality check. ",
                    n, n == 1 ? "" : "s", easy, strong, qual);
    if (!rc && last >= 0 && t > last + 0.05)
      rc = buf_puts(out,
                    "The weak solver recalled too much, so the next question must rest on "
                    "less familiar quantities. ");
    else if (!rc && last >= 0 && t < last - 0.05)
      rc = buf_puts(out,
                    "The question overshot: even the strong solver could not recall enough, "
                    "so step back toward quantities a capable model knows. ");
    else if (!rc && last >= 0)
      rc = buf_puts(out, "The level was about right; change the angle, not the difficulty. ");
    if (!rc && li >= 0) {
      /* Its target as a step from the last question's facts, which the challenger can place
       * on its own scale. */
      double d = t - last;
      d = d > STEP_MAX ? STEP_MAX : d < -STEP_MAX ? -STEP_MAX : d;
      rc = buf_puts(out, "The last question asked about ");
      for (int j = 0; j < items[li].npd && !rc; j++)
        rc = buf_printf(out, "%s%s",
                        j == 0                   ? ""
                        : j + 1 == items[li].npd ? (items[li].npd > 2 ? ", and " : " and ")
                                                 : ", ",
                        items[li].names[j]);
      if (!rc)
        rc = buf_printf(out, "; the next should rest on quantities about %.2f %s than those. ",
                        fabs(d), d < 0 ? "easier" : "harder");
    }
    if (!rc && qual)
      rc = buf_puts(out, "Keep every value out of the context and write the weights as integers. ");
    if (!rc)
      rc = buf_printf(out,
                      "Next: target difficulty around %.2f, from a different reasoning angle, "
                      "mixing one anchor fact with harder ones.",
                      t);
  }
  if (!rc) rc = sim_notes_relay(w->user.data, out); /* a dataset note, passed on */
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
  /* This sample's form: its skill for every fact of the question. */
  double skill = w->skill + SIM_SOLVER_FORM * gauss(r);
  if (!rc) rc = buf_puts(out, SOLVER_OPEN[rng_below(r, 4)]);
  for (size_t i = 0; i < n && !rc; i++) {
    long long v;
    double u = rng_double(r), u_hedge = rng_double(r);
    unsigned delta = 1 + (unsigned)rng_below(r, 3);
    int sign = rng_below(r, 2) ? 1 : -1;
    if (sim_fact_stated(ctx.data, ctx.len, names[i], SIM_STATE_ANY, &v) ||
        sim_fact_stated(q.data, q.len, names[i], SIM_STATE_ANY, &v)) {
      /* stated in the prompt: always right */
    } else if (u < sim_recall_prob(skill, sim_fact_difficulty(names[i]))) {
      v = sim_fact_value(names[i]);
    } else if (!verifiable && u_hedge < SOLVER_HEDGE) {
      /* not recalled: a vague answer that commits to no value */
      rc = buf_printf(out,
                      " %s is hard to pin down, though it sits in the range the study's "
                      "design would suggest.",
                      names[i]);
      continue;
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

static int judge_one(struct wreq *w, struct buf *out) {
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
    /* Errs at rate err; more often lenient with no final answer (vague) or a long one. */
    double p_wrong = w->par.err +
                     (ok ? 0
                         : (!have ? w->par.lenient : 0) +
                               (resp && strlen(resp) > JUDGE_LONG ? w->par.lenient / 2 : 0));
    if (rng_double(&w->rng) < p_wrong) ok = !ok;
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
        /* The judge errs at rate err on every criterion; when the response is vague about
         * the fact (names no value for it) or long, it is lenient on top of that. */
        double u = rng_double(&w->rng);
        if (named == 2) {
          int vague = !resp || !sim_fact_stated(resp, rlen, nm, SIM_STATE_EQ | SIM_STATE_IS, &said);
          double p_wrong = w->par.err;
          if (!met)
            p_wrong += (vague ? w->par.lenient : 0) + (rlen > JUDGE_LONG ? w->par.lenient / 2 : 0);
          if (u < p_wrong) {
            met = !met;
            snprintf(reason, sizeof reason,
                     met ? "The response covers %s well enough."
                         : "The response does not clearly establish %s.",
                     nm);
          }
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

/* One response of a batched request, graded as the single judge grades it. */
static int judge_single(void *ctx, const char *text, struct buf *reply) {
  struct wreq *w = ctx;
  buf_reset(&w->last);
  int rc = buf_puts(&w->last, text);
  return rc ? rc : judge_one(w, reply);
}

/* The judge: one response, or several (batched judging: sim/judge_batch.h). */
static int judge(struct wreq *w, struct buf *out) {
  if (!sim_judge_is_batch(w->last.data)) return judge_one(w, out);
  char *text = xstrdup(w->last.data);
  int rc = sim_judge_batch(text, judge_single, w, out);
  free(text);
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
  double u_miss = rng_double(r), u_false = rng_double(r), u_cmiss = rng_double(r);
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
    int leak = 0, malformed = 0, compound = 0;
    if (!q || !*q)
      rc = add_issue(issues, &fb, "missing_question", "The candidate has no question. ");
    if (rubric || !json_object_get(cand, "answer")) {
      if (!json_is_array(rubric) || json_array_size(rubric) == 0) malformed = 1;
      size_t i;
      const json_t *it;
      if (json_is_array(rubric)) json_array_foreach(rubric, i, it) {
          const char *crit = jx_str(it, "criterion");
          if (!crit || !sim_paper_weight_ok(it)) malformed = 1;
          if (!crit || i >= MAX_CRITERIA) continue;
          size_t cl = strlen(crit);
          fname_t cn[2];
          if (sim_fact_names_scan(crit, cl, cn, 2) >= 2) compound = 1;
          if (!ctx) continue;
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
    if (leak && u_miss < w->par.miss) leak = 0;
    if (!rc && leak)
      rc = add_issue(issues, &fb, "leakage",
                     "The context states the value of a fact the rubric asks for. ");
    if (compound && u_cmiss < QV_COMPOUND_MISS) compound = 0;
    if (!rc && compound)
      rc = add_issue(issues, &fb, "compound_criterion",
                     "A rubric criterion tests more than one statement. ");
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
  int orc = sim_world_optimize_answer(request, model, content, prompt_tokens, completion_tokens,
                                      err, errlen); /* sim-analyzer, sim-implementer */
  if (orc) return orc;
  struct wreq w;
  memset(&w, 0, sizeof w);
  int kind = classify(model, &w.skill, &w.par, err, errlen);
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
  /* Seed: canonical messages + model + seed; a solver's reasoning keys (",think=N") are
   * not part of it, so its answers are the same whatever its reasoning length. */
  canon = jx_dump_canonical(msgs);
  long long seed = jx_int(request, "seed", 0);
  int mlen = w.kind == W_SOLVER ? (int)strcspn(model, ",") : (int)strlen(model);
  rng_seed(&w.rng, rng_derive(hash64(canon, strlen(canon)), "%.*s/%lld", mlen, model, seed));
  switch (w.kind) {
  case W_CHALLENGER: rc = challenger(&w, &reply); break;
  case W_ORCHESTRATOR: rc = orchestrator(&w, &reply); break;
  case W_QUALITY: rc = quality(&w, &reply); break;
  case W_JUDGE: rc = judge(&w, &reply); break;
  case W_SOLVER: rc = solver(&w, &reply); break;
  case W_EXTRACTOR: rc = sim_paper_extractor(&w.rng, w.user.data, w.par.unsuitable, &reply); break;
  case W_LOOP_JUDGE: rc = sim_paper_loop_judge(&w.rng, w.last.data, w.par.err, &reply); break;
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
