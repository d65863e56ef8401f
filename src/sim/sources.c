/* sources.c - generated sim "papers": a title, filler prose and named facts. */
#include "sim/sources.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/jsonx.h"
#include "util/rng.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define PICK(r, a) ((a)[rng_below((r), N_OF(a))])

static const char *const ADJ[] = {
    "thermal",     "adaptive",        "sparse",      "stochastic", "layered",      "latent",
    "coupled",     "asymmetric",      "robust",      "nonlinear",  "hierarchical", "transient",
    "distributed", "self-organising", "anisotropic", "low-rank",   "resonant",     "granular",
    "modular",     "recurrent",       "porous",      "chiral",     "bounded",      "dissipative"};
static const char *const NOUN[] = {"stability",   "dynamics",    "scaling",     "transport",
                                   "coherence",   "yield",       "drift",       "response",
                                   "capacity",    "attenuation", "selectivity", "convergence",
                                   "hysteresis",  "throughput",  "variance",    "resilience",
                                   "sensitivity", "efficiency",  "decay",       "coupling"};
static const char *const THING[] = {"perovskite catalysts",
                                    "river deltas",
                                    "graph neural networks",
                                    "soil microbiomes",
                                    "superconducting qubits",
                                    "urban traffic flows",
                                    "protein condensates",
                                    "alpine glaciers",
                                    "lithium anodes",
                                    "coral reef fish",
                                    "spiking neural circuits",
                                    "wind turbine wakes",
                                    "peer-to-peer caches",
                                    "cortical organoids",
                                    "sea-ice floes",
                                    "polymer membranes",
                                    "retrieval-augmented models",
                                    "tidal marshes",
                                    "quantum dot arrays",
                                    "forest canopies",
                                    "microfluidic mixers",
                                    "compiler pipelines",
                                    "bacterial biofilms",
                                    "exoplanet atmospheres"};
static const char *const METHOD[] = {
    "a controlled field campaign", "a randomised ablation",
    "finite-element simulation",   "a longitudinal survey",
    "high-throughput screening",   "Bayesian hierarchical modelling",
    "in-situ spectroscopy",        "a matched-pairs design",
    "Monte Carlo resampling",      "a lesion study",
    "cross-validated regression",  "time-resolved imaging"};
static const char *const CONDITION[] = {
    "baseline",  "high-load",   "low-temperature", "control",   "perturbed", "steady-state",
    "saturated", "early-phase", "late-phase",      "reference", "stressed",  "annealed"};
static const char *const SUBTITLE[] = {"evidence from", "a case study of",
                                       "revisiting",    "new measurements in",
                                       "lessons from",  "a systematic look at"};

static const char *const TITLE_FMT[] = {"On the %s %s of %s",        "%s %s in %s: %s %s",
                                        "Measuring %s %s in %s",     "Toward %s %s for %s",
                                        "The %s %s of %s Revisited", "%s %s across %s"};

/* Filler sentences: %A adjective, %N noun, %T thing, %M method, %C condition. */
static const char *const FILLER[] = {
    "This study examines the %A %N of %T using %M.",
    "Prior work on %T has mostly ignored how %A effects shape their %N.",
    "We combine %M with careful calibration to separate %A %N from measurement noise.",
    "The %C regime is of particular interest because %N there is poorly understood.",
    "Our analysis suggests that %N in %T is governed by a small number of %A mechanisms.",
    "Several confounders, including %A drift, were controlled for throughout.",
    "These results refine earlier accounts of %N and motivate a %A model of %T.",
    "A limitation is that %M cannot fully capture the %A behaviour of %T.",
    "We release our protocol so that others can reproduce the %C measurements.",
    "Differences between the %C and %C conditions were larger than anticipated.",
    "Taken together, the evidence points to %A %N as a central factor.",
    "The remainder of this section discusses how %N varies with scale.",
    "Reviewers of earlier drafts asked whether %M biases the estimates; it does not appear to.",
    "In the %C setting, the observed %N was consistent with a %A interpretation.",
    "We note that %T differ widely in their %N, which complicates comparison.",
    "Future work should test whether these findings extend beyond %T."};

/* Fact sentences: %F is replaced by "F-xxxx = N"; other slots as above. */
static const char *const FACT_SENT[] = {
    "Under the %C protocol we measured %F, a figure that held across replicates.",
    "The calibrated estimate was %F after correcting for %A drift.",
    "Table %D lists %F for the %C condition.",
    "A secondary analysis using %M gives %F, consistent with earlier reports on %T.",
    "In the %C setting, %F, which exceeds the value most models predict.",
    "Across all runs the %A %N settled at %F.",
    "For %T we obtain %F, although the estimate is sensitive to the %C regime.",
    "The key quantity, %F, was stable under %M.",
    "We report %F (pooled over the %C and %C conditions).",
    "Notably, %F when %N is measured with %M."};

/* Append word, turning a preceding " a " into " an " before a vowel. */
static int put_word(struct buf *b, const char *w) {
  if (strchr("aeiou", w[0]) && b->len >= 3 && !memcmp(b->data + b->len - 3, " a ", 3)) {
    b->len--;
    int rc = buf_puts(b, "n ");
    if (rc) return rc;
  }
  return buf_puts(b, w);
}

static int expand(struct buf *b, struct rng *r, const char *fmt, const char *fact) {
  size_t last_cond = N_OF(CONDITION);
  for (const char *p = fmt; *p; p++) {
    int rc;
    if (p[0] != '%' || !p[1]) {
      rc = buf_putc(b, *p);
    } else {
      p++;
      switch (*p) {
      case 'A': rc = put_word(b, PICK(r, ADJ)); break;
      case 'N': rc = buf_puts(b, PICK(r, NOUN)); break;
      case 'T': rc = buf_puts(b, PICK(r, THING)); break;
      case 'M': rc = buf_puts(b, PICK(r, METHOD)); break;
      case 'C': { /* two conditions in one sentence differ */
        size_t c;
        do c = rng_below(r, N_OF(CONDITION));
        while (c == last_cond);
        last_cond = c;
        rc = put_word(b, CONDITION[c]);
        break;
      }
      case 'D': rc = buf_printf(b, "%u", 1 + (unsigned)rng_below(r, 9)); break;
      case 'F': rc = buf_puts(b, fact ? fact : ""); break;
      default: rc = buf_putc(b, *p); break;
      }
    }
    if (rc) return rc;
  }
  return 0;
}

/* Title case, leaving short function words (after the first word) in lower case. */
static void capitalise(char *s) {
  static const char *const small[] = {"a ",   "an ",     "of ",   "in ", "for ",
                                      "the ", "across ", "from ", "to "};
  for (char *p = s; *p; p++) {
    if (p != s && p[-1] != ' ') continue;
    int keep = 0;
    for (size_t i = 0; i < N_OF(small) && p != s && !keep; i++)
      keep = !strncmp(p, small[i], strlen(small[i]));
    if (!keep && *p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
  }
}

static int make_title(struct rng *r, struct buf *b) {
  size_t f = rng_below(r, N_OF(TITLE_FMT));
  const char *adj = PICK(r, ADJ), *noun = PICK(r, NOUN), *thing = PICK(r, THING);
  int rc;
  if (f == 1) rc = buf_printf(b, TITLE_FMT[f], adj, noun, thing, PICK(r, SUBTITLE), PICK(r, THING));
  else rc = buf_printf(b, TITLE_FMT[f], adj, noun, thing);
  if (!rc) capitalise(b->data);
  return rc;
}

/* Draw names until one falls in each difficulty band; names unique in the source. */
static void draw_facts(struct rng *r, unsigned k, struct sim_fact *out) {
  for (unsigned band = 0; band < k; band++) {
    double lo = (double)band / k, hi = (double)(band + 1) / k;
    for (;;) {
      char name[SIM_FACT_NAME_LEN + 2];
      sim_fact_name((unsigned)rng_below(r, 65536), name);
      double d = sim_fact_difficulty(name);
      if (d < lo || d >= hi) continue;
      int dup = 0;
      for (unsigned j = 0; j < band && !dup; j++) dup = !strcmp(out[j].name, name);
      if (dup) continue;
      memcpy(out[band].name, name, sizeof name);
      out[band].value = sim_fact_value(name);
      out[band].difficulty = d;
      break;
    }
  }
}

static int make_text(struct rng *r, unsigned k, const struct sim_fact *facts, struct buf *b) {
  /* Fact order in the text is a shuffle of the band order. */
  unsigned order[SIM_SOURCE_MAX_FACTS];
  for (unsigned i = 0; i < k; i++) order[i] = i;
  for (unsigned i = k; i > 1; i--) {
    unsigned j = (unsigned)rng_below(r, i);
    unsigned t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  unsigned paras = 4 + (unsigned)rng_below(r, 4) + k / 8;
  unsigned next = 0;
  size_t last_filler = N_OF(FILLER);
  int rc = 0;
  for (unsigned p = 0; p < paras && !rc; p++) {
    /* Paragraph 0 is an introduction; the facts spread over the rest. */
    unsigned nf = 0;
    if (p > 0) {
      unsigned left = k - next, paras_left = paras - p;
      nf = (left + paras_left - 1) / paras_left;
      if (nf > 1 && rng_below(r, 3) == 0) nf--;
      if (p == paras - 1) nf = left;
    }
    unsigned nfill = 3 + (unsigned)rng_below(r, 4);
    unsigned total = nfill + nf, placed = 0;
    if (p > 0) rc = buf_puts(b, "\n\n");
    for (unsigned s = 0; s < total && !rc; s++) {
      if (s > 0) rc = buf_putc(b, ' ');
      if (rc) break;
      /* Place the remaining facts at random among the remaining slots. */
      int fact_here = placed < nf && rng_below(r, total - s) < nf - placed;
      if (fact_here) {
        const struct sim_fact *f = &facts[order[next++]];
        char stmt[48];
        snprintf(stmt, sizeof stmt, "%s = %lld", f->name, f->value);
        rc = expand(b, r, PICK(r, FACT_SENT), stmt);
        placed++;
      } else {
        size_t f; /* no filler sentence twice in a row */
        do f = rng_below(r, N_OF(FILLER));
        while (f == last_filler);
        last_filler = f;
        rc = expand(b, r, FILLER[f], NULL);
      }
    }
  }
  return rc;
}

int sim_source_make(uint64_t seed, unsigned index, unsigned facts_per_source,
                    struct sim_source *out) {
  memset(out, 0, sizeof *out);
  if (facts_per_source < 1 || facts_per_source > SIM_SOURCE_MAX_FACTS) return AD_EINVAL;
  struct rng r;
  rng_seed(&r, rng_derive(seed, "sim-source/%u", index));
  struct buf title = BUF_INIT, text = BUF_INIT;
  buf_init(&title, 4096);
  buf_init(&text, 1u << 20);
  snprintf(out->id, sizeof out->id, "sim-%04u", index);
  out->nfacts = facts_per_source;
  draw_facts(&r, facts_per_source, out->facts);
  int rc = make_title(&r, &title);
  if (!rc) rc = make_text(&r, facts_per_source, out->facts, &text);
  if (!rc) {
    out->title = buf_take(&title, NULL);
    out->text = buf_take(&text, NULL);
  }
  buf_release(&title);
  buf_release(&text);
  if (rc) sim_source_release(out);
  return rc;
}

void sim_source_release(struct sim_source *s) {
  free(s->title);
  free(s->text);
  s->title = s->text = NULL;
}

int sim_sources_write(FILE *f, unsigned count, uint64_t seed, unsigned facts_per_source) {
  if (facts_per_source < 1 || facts_per_source > SIM_SOURCE_MAX_FACTS) return AD_EINVAL;
  struct buf line = BUF_INIT;
  int rc = 0;
  for (unsigned i = 1; i <= count && !rc; i++) {
    struct sim_source s;
    rc = sim_source_make(seed, i, facts_per_source, &s);
    if (rc) break;
    json_t *o = json_pack("{s:s, s:s, s:s}", "id", s.id, "title", s.title, "text", s.text);
    buf_reset(&line);
    rc = jx_dump_buf(o, &line, JSON_COMPACT | JSON_PRESERVE_ORDER); /* AD_EINVAL if o is NULL */
    if (!rc) rc = buf_putc(&line, '\n');
    if (!rc && fwrite(line.data, 1, line.len, f) != line.len) rc = AD_EIO;
    json_decref(o);
    sim_source_release(&s);
  }
  buf_release(&line);
  return rc;
}
