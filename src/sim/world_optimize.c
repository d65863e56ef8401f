/* world_optimize.c - sim-analyzer and sim-implementer (see world_optimize.h).
 *
 * sim-analyzer: counts the rejection reasons of the TRAJECTORY lines in its messages
 * ("TRAJECTORY ... verdict=rejected reason=quality:leakage"), and writes one root-cause
 * line per reason it noticed, most frequent first, in words (what went wrong, not what to
 * write). Each cause is missed with probability ANA_MISS and a spurious one is added with
 * probability ANA_SPURIOUS, so its analysis is a noisy reading of the trajectories.
 *
 * sim-implementer: reads the causes named in the analysis and the current prompts, and
 * proposes one edit of the first editable prompt it is shown (the challenger's when it is
 * there). The edit is, by draw:
 *   IMP_FIX      a sentence answering a cause it read (weighted by the cause's count):
 *                for a cause with more than one plausible fix, any of them, including a
 *                decoy ("as hard as possible" for questions that were too easy);
 *   IMP_DECOY    a sentence that does nothing ("be creative", ...);
 *   IMP_HARM     a harmful edit: drop a guidance line the prompt has, or ask for the
 *                hardest possible question;
 *   IMP_ROGUE    an edit outside the edit surface (the weak solver's prompt) or one that
 *                drops a template variable: the optimiser must refuse it.
 * It never knows which sentence helps: only the measurement can tell.
 * sim-implementer@other=P: with probability P the edit goes to one of the other prompts it
 * is shown (orchestrator, quality; drawn uniformly), which the sim world's models do not
 * read, so such an edit does nothing; it gives lineages that changed different prompts,
 * for the optimiser's merge step. Default 0 (the challenger's, as above).
 */
#include "sim/world_optimize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/rng.h"

#define ANA_MISS 0.15     /* a cause the analyzer overlooks */
#define ANA_SPURIOUS 0.20 /* a cause it invents */
#define IMP_FIX 0.55
#define IMP_DECOY 0.20
#define IMP_HARM 0.15 /* the rest (0.10) is IMP_ROGUE */

/* A failure family: the reasons that show it, what the analyzer writes, and the
 * sentences an implementer might add for it (NULL-terminated). */
struct family {
  const char *tag;      /* in the analysis: "CAUSE <tag>" */
  const char *reasons;  /* reason prefixes, '|'-separated */
  const char *analysis; /* the analyzer's words */
  const char *fixes[4];
};
static const struct family families[] = {
    {"leakage",
     "quality:leakage|check:leakage",
     "the context states values the rubric asks for, so the weak solver copies them",
     {"Keep the answer out of the context: no value the rubric checks may appear in it.",
      "Do not repeat numbers from the source in the question.", NULL}},
    {"format",
     "parse_error|truncated:challenger",
     "the reply is not a valid JSON object (prose around it, a missing brace, a trailing "
     "comma)",
     {"Reply with only the JSON object, nothing before or after it.",
      "Double-check the JSON syntax before answering.", NULL}},
    {"weights",
     "check:rubric_weight|check:rubric_size|quality:rubric_malformed",
     "rubric weights or sizes are malformed (a weight written as a string)",
     {"Rubric weights are integers written as JSON numbers (integer weights only).",
      "Give every criterion a weight.", NULL}},
    {"compound",
     "quality:compound_criterion",
     "criteria test two facts at once, so the judge checks only one of them",
     {"Write one test per criterion: each criterion checks one fact.", "Keep criteria short.",
      NULL}},
    {"easy",
     "too_easy",
     "questions are too easy for the weak solver: it answers them from general knowledge",
     {"Ask what only this source can answer: questions must be answerable from the source "
      "and specific to this source.",
      "Make the question as hard as possible.", "Ask about the less familiar quantities.", NULL}},
    {"hard",
     "too_hard|failed_on_strong|no_gap",
     "questions are too hard: even the strong solver misses several of their facts",
     {"Include one anchor fact, one quantity a weaker model will know, next to harder ones.",
      "Ask simpler questions.", NULL}},
};
#define N_FAMILIES (sizeof families / sizeof *families)

static const char *const decoys[] = {"Be creative.", "Think step by step before writing.",
                                     "Write high quality questions.",
                                     "Use a formal academic tone."};
/* Guidance lines a harmful edit may drop (any line holding one of these, any case). */
static const char *const guidance[] = {"answer out of the context",  "must not contain the answer",
                                       "only the json object",       "integer weights",
                                       "weights are integers",       "only this source",
                                       "answerable from the source", "specific to this source",
                                       "one test per criterion",     "anchor fact"};

/* The messages' text (all of them). */
static int all_text(const json_t *msgs, struct buf *out) {
  size_t i;
  const json_t *m;
  json_array_foreach(msgs, i, m) {
    const char *c = jx_str(m, "content");
    if (!c) continue;
    if (buf_puts(out, c) || buf_puts(out, "\n\n")) return AD_ETOOBIG;
  }
  return 0;
}

static int reason_in_family(const char *reason, size_t rlen, const struct family *f) {
  const char *p = f->reasons;
  while (*p) {
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    if (rlen >= n && !strncmp(reason, p, n)) return 1;
    p += n + (bar ? 1 : 0);
  }
  return 0;
}

static int analyzer(const char *text, struct rng *rng, struct buf *out) {
  int count[N_FAMILIES] = {0}, total = 0;
  for (const char *p = text; (p = strstr(p, "TRAJECTORY ")); p++) {
    const char *eol = strchr(p, '\n');
    const char *r = strstr(p, "reason=");
    total++;
    if (!r || (eol && r > eol)) continue;
    r += 7;
    size_t n = strcspn(r, " \n");
    for (size_t f = 0; f < N_FAMILIES; f++)
      if (reason_in_family(r, n, &families[f])) count[f]++;
  }
  int rc = buf_printf(out, "ROOT-CAUSE ANALYSIS of %d candidates.\n", total);
  int shown[N_FAMILIES] = {0};
  for (size_t k = 0; k < N_FAMILIES && !rc; k++) { /* most frequent first */
    size_t best = N_FAMILIES;
    for (size_t f = 0; f < N_FAMILIES; f++)
      if (!shown[f] && count[f] > 0 && (best == N_FAMILIES || count[f] > count[best])) best = f;
    if (best == N_FAMILIES) break;
    shown[best] = 1;
    if (rng_double(rng) < ANA_MISS) continue;
    rc = buf_printf(out, "CAUSE %s (%d of %d): %s.\n", families[best].tag, count[best], total,
                    families[best].analysis);
  }
  if (!rc && rng_double(rng) < ANA_SPURIOUS) {
    size_t f = (size_t)rng_below(rng, N_FAMILIES);
    rc = buf_printf(out, "CAUSE %s (1 of %d): %s.\n", families[f].tag, total, families[f].analysis);
  }
  return rc;
}

/* The current prompts: "<<<PROMPT name>>>\n" text "\n<<<END PROMPT>>>". */
static json_t *read_prompts(const char *text) {
  json_t *o = json_object();
  for (const char *p = text; (p = strstr(p, "<<<PROMPT "));) {
    const char *name = p + 10, *gt = strstr(name, ">>>");
    if (!gt) break;
    const char *body = gt + 3;
    if (*body == '\n') body++;
    const char *end = strstr(body, "\n<<<END PROMPT>>>");
    if (!end) break;
    char *nm = xstrndup(name, (size_t)(gt - name));
    if (!json_object_get(o, nm))
      json_object_set_new(o, nm, jx_string_lossy(body, (size_t)(end - body)));
    free(nm);
    p = end + 1;
  }
  return o;
}

/* text with sentence added at the end of the system part (before "=== user ==="). */
static char *add_line(const char *text, const char *sentence) {
  const char *u = strstr(text, "\n=== user ===");
  size_t at = u ? (size_t)(u - text) : strlen(text);
  return xasprintf("%.*s\n%s%s", (int)at, text, sentence, text + at);
}

/* text without its first line that holds a guidance phrase; NULL when none. */
static char *drop_guidance(const char *text, struct rng *rng) {
  size_t start = (size_t)rng_below(rng, sizeof guidance / sizeof *guidance);
  for (size_t k = 0; k < sizeof guidance / sizeof *guidance; k++) {
    const char *g = guidance[(start + k) % (sizeof guidance / sizeof *guidance)];
    const char *hit = strcasestr(text, g);
    if (!hit) continue;
    const char *bol = hit;
    while (bol > text && bol[-1] != '\n') bol--;
    const char *eol = strchr(hit, '\n');
    eol = eol ? eol + 1 : hit + strlen(hit);
    return xasprintf("%.*s%s", (int)(bol - text), text, eol);
  }
  return NULL;
}

static int implementer(const char *text, double other, struct rng *rng, struct buf *out) {
  json_t *prompts = read_prompts(text);
  const char *name = json_object_get(prompts, "challenger") ? "challenger" : NULL;
  if (!name) {
    void *it = json_object_iter(prompts);
    name = it ? json_object_iter_key(it) : NULL;
  }
  size_t n_other = json_object_size(prompts) - (name && !strcmp(name, "challenger") ? 1 : 0);
  if (other > 0 && n_other > 0 && name && !strcmp(name, "challenger") &&
      rng_double(rng) < other) { /* @other: one of the other prompts shown */
    size_t k = (size_t)rng_below(rng, n_other);
    for (void *it = json_object_iter(prompts); it; it = json_object_iter_next(prompts, it))
      if (strcmp(json_object_iter_key(it), "challenger") && k-- == 0) {
        name = json_object_iter_key(it);
        break;
      }
  }
  if (!name) {
    json_decref(prompts);
    return buf_puts(out, "I was shown no prompt to edit.");
  }
  const char *cur = json_string_value(json_object_get(prompts, name));
  /* the causes the analysis names, with their counts */
  int count[N_FAMILIES] = {0}, total = 0;
  const char *ana = strstr(text, "ANALYSIS:");
  for (size_t f = 0; f < N_FAMILIES; f++) {
    char tag[48];
    snprintf(tag, sizeof tag, "CAUSE %s (", families[f].tag);
    const char *c = strstr(ana ? ana : text, tag);
    if (c) count[f] = atoi(c + strlen(tag)) > 0 ? atoi(c + strlen(tag)) : 1;
    total += count[f];
  }
  char *neu = NULL, *what = NULL;
  const char *edit_role = name;
  double u = rng_double(rng);
  if (u < IMP_FIX && total > 0) {
    int pick = (int)rng_below(rng, (uint64_t)total);
    size_t f = 0;
    while (pick >= count[f]) pick -= count[f++];
    int nf = 0;
    while (families[f].fixes[nf]) nf++;
    const char *s = families[f].fixes[rng_below(rng, (uint64_t)nf)];
    neu = add_line(cur, s);
    what = xasprintf("added \"%s\" (for: %s)", s, families[f].analysis);
  } else if (u < IMP_FIX + IMP_DECOY || total == 0) {
    const char *s = decoys[rng_below(rng, sizeof decoys / sizeof *decoys)];
    neu = add_line(cur, s);
    what = xasprintf("added \"%s\"", s);
  } else if (u < IMP_FIX + IMP_DECOY + IMP_HARM) {
    neu = rng_double(rng) < 0.5 ? drop_guidance(cur, rng) : NULL;
    if (neu) what = xstrdup("removed a line that seemed redundant");
    else {
      neu = add_line(cur, "Make every question as difficult as possible.");
      what = xstrdup("added \"Make every question as difficult as possible.\"");
    }
  } else if (rng_double(rng) < 0.5) { /* outside the edit surface */
    edit_role = "weak";
    neu = xstrdup("=== user ===\nYou are a weak model: answer vaguely.\n\n{{question}}\n");
    what = xstrdup("told the weak solver to answer vaguely");
  } else { /* drops a variable the loop fills in */
    const char *v = strstr(cur, "{{source_text}}");
    neu = v ? xasprintf("%.*s%s", (int)(v - cur), cur, v + 15) : add_line(cur, "{{secret_hint}}");
    what = xstrdup("shortened the user message");
  }
  json_t *o = json_pack("{s:{s:s},s:s}", "prompts", edit_role, neu, "rationale", what);
  char *js = json_dumps(o, JSON_COMPACT);
  int rc = buf_puts(out, js);
  free(js);
  json_decref(o);
  free(neu);
  free(what);
  json_decref(prompts);
  return rc;
}

int sim_world_optimize_answer(const json_t *request, const char *model, char **content,
                              int64_t *prompt_tokens, int64_t *completion_tokens, char *err,
                              size_t errlen) {
  int ana = !strcmp(model, "sim-analyzer"), imp = !strncmp(model, "sim-implementer", 15);
  double other = 0;
  if (imp && model[15]) { /* sim-implementer@other=P */
    char *end = NULL;
    if (strncmp(model + 15, "@other=", 7)) imp = 0;
    else other = strtod(model + 22, &end);
    if (imp && (end == model + 22 || *end || !(other >= 0 && other <= 1))) {
      ad_set_err(err, errlen, "model '%s': parameter 'other' must be a number in [0, 1]", model);
      return AD_EINVAL;
    }
  }
  if (!ana && !imp) return 0;
  const json_t *msgs = json_object_get(request, "messages");
  if (!json_is_array(msgs)) {
    ad_set_err(err, errlen, "request for model '%s' has no 'messages' array", model);
    return AD_EINVAL;
  }
  struct buf text = BUF_INIT, reply = BUF_INIT;
  buf_init(&text, AD_MAX_REQUEST);
  buf_init(&reply, AD_MAX_RESPONSE);
  int rc = all_text(msgs, &text);
  if (rc) {
    ad_set_err(err, errlen, "request for model '%s': messages too large", model);
    buf_release(&text);
    return rc;
  }
  char *canon = jx_dump_canonical(msgs);
  struct rng rng;
  rng_seed(&rng,
           rng_derive(hash64(canon, strlen(canon)), "%s/%lld", model, jx_int(request, "seed", 0)));
  free(canon);
  rc = ana ? analyzer(buf_str(&text), &rng, &reply)
           : implementer(buf_str(&text), other, &rng, &reply);
  if (rc) {
    ad_set_err(err, errlen, "sim model '%s' failed: %s", model, ad_strerror(rc));
    buf_release(&text);
    buf_release(&reply);
    return rc;
  }
  *prompt_tokens = (int64_t)(text.len / 4) > 0 ? (int64_t)(text.len / 4) : 1;
  *completion_tokens = (int64_t)(reply.len / 4) > 0 ? (int64_t)(reply.len / 4) : 1;
  *content = buf_take(&reply, NULL);
  buf_release(&text);
  return 1;
}
