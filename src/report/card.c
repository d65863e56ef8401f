/* card.c - DATACARD.md: a Hugging Face dataset card for a run, from the store.
 *
 * Everything comes from the store: the run row (recipe, prompts, corpus,
 * command line, version, seed, prices), sources, candidates, examples and
 * calls. Nothing time-dependent is printed (no dates, no latencies), so the
 * same store gives the same card. See report.h for the secrets scrub.
 *
 * The method comes from the run info (info.extra.method, docs/baselines.md;
 * else the recipe's `method`, else agentic). A baseline's card says what the
 * method did (one round per source, no orchestrator, no feedback, its own
 * challenger prompt) and what the dataset holds (examples that passed the
 * method's filters; the acceptance gate only recorded, as passed_gate). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eval/feedback.h"
#include "report/report.h"
#include "util/fs.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/secret.h"

/* ======== a sticky-error writer ======== */

struct cw {
  struct buf *b;
  int rc;
};

static void out(struct cw *w, const char *fmt, ...) AD_PRINTF(2, 3);
static void out(struct cw *w, const char *fmt, ...) {
  if (w->rc) return;
  va_list ap;
  va_start(ap, fmt);
  w->rc = buf_vprintf(w->b, fmt, ap);
  va_end(ap);
}

static void outs(struct cw *w, const char *s) {
  if (!w->rc) w->rc = buf_puts(w->b, s ? s : "");
}

/* A markdown table cell: '|' escaped, line breaks as spaces, NULL as "—". */
static void cell(struct cw *w, const char *s) {
  if (!s) {
    outs(w, "—");
    return;
  }
  for (const char *p = s; *p && !w->rc; p++) {
    if (*p == '|') w->rc = buf_puts(w->b, "\\|");
    else if (*p == '\n' || *p == '\r' || *p == '\t') w->rc = buf_putc(w->b, ' ');
    else w->rc = buf_putc(w->b, *p);
  }
}

/* Inline code: `s` (backticks inside replaced by '), for paths and hashes. */
static void code(struct cw *w, const char *s) {
  if (!s) {
    outs(w, "not recorded");
    return;
  }
  outs(w, "`");
  for (const char *p = s; *p && !w->rc; p++)
    w->rc = buf_putc(w->b, (*p == '`' || *p == '\n' || *p == '|') ? '\'' : *p);
  outs(w, "`");
}

/* A fenced block longer than any backtick run inside text. */
static void fenced(struct cw *w, const char *lang, const char *text) {
  size_t run = 0, longest = 0;
  for (const char *p = text; *p; p++) {
    run = *p == '`' ? run + 1 : 0;
    if (run > longest) longest = run;
  }
  size_t fl = longest >= 3 ? longest + 1 : 3;
  char fence[64];
  if (fl >= sizeof fence) fl = sizeof fence - 1; /* a 63-backtick run inside a prompt: give up */
  memset(fence, '`', fl);
  fence[fl] = '\0';
  size_t tl = strlen(text);
  out(w, "%s%s\n%s%s%s\n\n", fence, lang ? lang : "", text,
      (tl && text[tl - 1] == '\n') ? "" : "\n", fence);
}

/* A YAML double-quoted scalar. */
static void yaml_str(struct cw *w, const char *s) {
  outs(w, "\"");
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && !w->rc; p++) {
    if (*p == '"' || *p == '\\') out(w, "\\%c", *p);
    else if (*p < 0x20) outs(w, " ");
    else w->rc = buf_putc(w->b, (char)*p);
  }
  outs(w, "\"");
}

/* A JSON scalar as text: strings as is, numbers with %g, null/missing as NULL. */
static const char *scalar(const json_t *v, char *tmp, size_t n) {
  if (!v || json_is_null(v)) return NULL;
  if (json_is_string(v)) return json_string_value(v);
  if (json_is_integer(v)) snprintf(tmp, n, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v)) snprintf(tmp, n, "%g", json_real_value(v));
  else if (json_is_true(v)) snprintf(tmp, n, "true");
  else if (json_is_false(v)) snprintf(tmp, n, "false");
  else {
    char *d = jx_dump_canonical(v);
    snprintf(tmp, n, "%s", d ? d : "?");
    free(d);
  }
  return tmp;
}

static void cell_json(struct cw *w, const json_t *v, const char *dflt) {
  char tmp[512];
  const char *s = scalar(v, tmp, sizeof tmp);
  cell(w, s ? s : dflt);
}

/* ======== ordering helpers ======== */

static const char *const k_role_order[] = {"orchestrator", "challenger", "challenger_repair",
                                           "quality",      "weak",       "strong",
                                           "judge",        "judge_weak", "judge_strong"};

static int role_rank(const char *r) {
  for (size_t i = 0; i < sizeof k_role_order / sizeof *k_role_order; i++)
    if (!strcmp(r, k_role_order[i])) return (int)i;
  return 1000;
}

static int cmp_role(const void *a, const void *b) {
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  int rx = role_rank(x), ry = role_rank(y);
  return rx != ry ? (rx < ry ? -1 : 1) : strcmp(x, y);
}

/* The keys of obj in role order (known roles first, then by name); caller frees
 * the array (keys are borrowed). NULL with *n = 0 for an empty/absent object. */
static const char **role_keys(const json_t *obj, size_t *n) {
  *n = 0;
  size_t cnt = json_is_object(obj) ? json_object_size(obj) : 0;
  if (!cnt) return NULL;
  const char **keys = xcalloc(cnt, sizeof *keys);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v) keys[(*n)++] = k;
  qsort(keys, *n, sizeof *keys, cmp_role);
  return keys;
}

/* ======== the data the card summarises ======== */

struct dstat {
  size_t n;
  double sum, sumsq, min, max;
};

static void dstat_add(struct dstat *d, const json_t *v) {
  if (!json_is_number(v)) return;
  double x = json_number_value(v);
  if (!isfinite(x)) return;
  if (!d->n || x < d->min) d->min = x;
  if (!d->n || x > d->max) d->max = x;
  d->n++;
  d->sum += x;
  d->sumsq += x * x;
}

struct card_data {
  store *st;
  store_id run;
  json_t *row;
  const json_t *meta, *recipe;
  /* examples */
  size_t n_examples;
  struct dstat weak, strong, gap, weak_std;
  size_t *rounds; /* rounds[r] = examples accepted after r rounds */
  size_t n_rounds, rounds_unknown;
  json_t *no_rounds; /* source ids of examples that recorded no rounds_used (older runs): their
                       sources' rounds_used, read once the examples are counted */
  /* sources */
  size_t src_total, src_pending, src_progress, src_done, src_exhausted;
  /* the method */
  const char *method;        /* "agentic", "self-instruct", "cot-self-instruct", ... */
  int baseline;              /* 1 for a one-shot baseline (any method but agentic and agent) */
  const json_t *method_info; /* the recorded {"name", "k", ...}, or NULL */
  size_t ex_passed_gate;     /* baselines: kept examples whose passed_gate is true */
  /* candidates */
  size_t cand_total, cand_accepted, cand_rejected;
  json_t *reasons;        /* reason -> count */
  size_t cand_kept;       /* baselines: candidates with passed_filter true */
  json_t *filter_reasons; /* baselines: filter_reason -> count (not kept) */
  /* calls */
  json_t *stats; /* store_stats() */
  json_t *roles; /* role -> {calls, ok, error, cache_hits, retries, prompt, completion, cost} */
  int any_priced, any_unpriced;
};

/* o[k] += by (an integer member, 0 when absent). */
static int is_agent(const struct card_data *d) { return !strcmp(d->method, "agent"); }

static void bump(json_t *o, const char *k, long long by) {
  json_object_set_new(o, k, json_integer(jx_int(o, k, 0) + by));
}

static int source_row(void *ud, const json_t *row) {
  struct card_data *d = ud;
  const char *state = jx_str(row, "state");
  d->src_total++;
  if (!state) return 0;
  if (!strcmp(state, "pending")) d->src_pending++;
  else if (!strcmp(state, "in_progress")) d->src_progress++;
  else if (!strcmp(state, "done")) d->src_done++;
  else if (!strcmp(state, "exhausted")) d->src_exhausted++;
  return 0;
}

static void add_round(struct card_data *d, long long r) {
  if (r <= 0 || r > 100000) {
    d->rounds_unknown++;
    return;
  }
  if ((size_t)r >= d->n_rounds) {
    size_t nn = (size_t)r + 1;
    d->rounds = xrealloc(d->rounds, nn * sizeof *d->rounds);
    memset(d->rounds + d->n_rounds, 0, (nn - d->n_rounds) * sizeof *d->rounds);
    d->n_rounds = nn;
  }
  d->rounds[r]++;
}

static int example_row(void *ud, const json_t *row) {
  struct card_data *d = ud;
  const json_t *ex = json_object_get(row, "example");
  d->n_examples++;
  dstat_add(&d->weak, json_object_get(ex, "weak_mean"));
  dstat_add(&d->strong, json_object_get(ex, "strong_mean"));
  dstat_add(&d->gap, json_object_get(ex, "gap"));
  dstat_add(&d->weak_std, json_object_get(ex, "weak_std"));
  if (json_is_true(json_object_get(ex, "passed_gate"))) d->ex_passed_gate++;
  long long r = jx_int(ex, "rounds_used", 0);
  const char *sid = jx_str(row, "source_id");
  if (r <= 0 && sid) json_array_append_new(d->no_rounds, json_string(sid)); /* after the scan */
  else add_round(d, r);
  return 0;
}

static int candidate_row(void *ud, const json_t *row) {
  struct card_data *d = ud;
  const char *verdict = jx_str(row, "verdict");
  d->cand_total++;
  if (d->baseline) {
    const json_t *rec = json_object_get(row, "record");
    if (json_is_true(json_object_get(rec, "passed_filter"))) {
      d->cand_kept++;
    } else {
      const char *fr = jx_str(rec, "filter_reason");
      if (!fr) fr = "unspecified";
      bump(d->filter_reasons, fr, 1);
    }
  }
  if (verdict && !strcmp(verdict, "accepted")) {
    d->cand_accepted++;
    return 0;
  }
  d->cand_rejected++;
  const char *reason = jx_str(row, "reason");
  if (!reason) reason = jx_str(json_object_get(row, "record"), "reason");
  if (!reason) reason = "unspecified";
  bump(d->reasons, reason, 1);
  return 0;
}

/* d->roles from the run's aggregates (store_stats: kept as calls are written, so the card does
 * not read every call row): {calls, ok, error, cache_hits, retries, prompt, completion, cost,
 * priced} per role; tokens and cost count real calls only. */
static void roles_from_stats(struct card_data *d) {
  const json_t *by = json_object_get(json_object_get(d->stats, "calls"), "by_role");
  const char *role;
  const json_t *v;
  json_object_foreach((json_t *)by, role, v) {
    long long ok = jx_int(v, "ok", 0), error = jx_int(v, "error", 0),
              hits = jx_int(v, "cache_hits", 0);
    int priced = json_is_number(json_object_get(v, "cost_usd"));
    json_t *r = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:b}", "calls", (json_int_t)(ok + error + hits),
        "ok", (json_int_t)ok, "error", (json_int_t)error, "cache_hits", (json_int_t)hits, "retries",
        (json_int_t)jx_int(v, "retries", 0), "prompt", (json_int_t)jx_int(v, "prompt", 0),
        "completion", (json_int_t)jx_int(v, "completion", 0), "cost", jx_num(v, "cost_usd", 0),
        "priced", priced);
    json_object_set_new(d->roles, role, r);
    if (priced) d->any_priced = 1;
  }
  d->any_unpriced = json_array_size(json_object_get(d->stats, "unpriced_models")) > 0;
}

/* The rounds of the examples that recorded none: their sources' (one lookup each). */
static int rounds_of_sources(struct card_data *d) {
  size_t i;
  const json_t *sid;
  json_array_foreach(d->no_rounds, i, sid) {
    struct store_source ss;
    int rc = store_source_get(d->st, d->run, json_string_value(sid), &ss);
    if (rc && rc != AD_ENOTFOUND) return rc;
    add_round(d, rc ? 0 : ss.rounds_used);
  }
  return 0;
}

static int collect(struct card_data *d, char *err, size_t n) {
  int rc = report_run_row(d->st, d->run, &d->row, err, n);
  if (rc) return rc;
  d->run = (store_id)jx_int(d->row, "id", d->run);
  d->meta = report_run_meta(d->row);
  d->recipe = json_object_get(d->meta, "recipe");
  d->method_info = json_object_get(d->meta, "method");
  if (!json_is_object(d->method_info)) d->method_info = NULL;
  d->method = jx_str(d->method_info, "name");
  if (!d->method) d->method = jx_str(d->recipe, "method");
  if (!d->method) d->method = "agentic"; /* runs from before methods existed */
  d->baseline = strcmp(d->method, "agentic") != 0 && !is_agent(d);
  d->no_rounds = json_array();
  d->reasons = json_object();
  d->filter_reasons = json_object();
  d->roles = json_object();
  if ((rc = store_sources_each(d->st, d->run, source_row, d)) ||
      (rc = store_examples_each(d->st, d->run, example_row, d)) || (rc = rounds_of_sources(d)) ||
      (rc = store_candidates_each(d->st, d->run, NULL, candidate_row, d)) ||
      (rc = store_stats(d->st, d->run, &d->stats)))
    return report_err(err, n, rc, "%s", store_errmsg(d->st));
  roles_from_stats(d);
  return 0;
}

static void card_data_free(struct card_data *d) {
  json_decref(d->row);
  json_decref(d->no_rounds);
  json_decref(d->stats);
  json_decref(d->reasons);
  json_decref(d->filter_reasons);
  json_decref(d->roles);
  free(d->rounds);
}

/* ======== sections ======== */

const char *report_size_category(size_t c) {
  if (c < 1000) return "n<1K";
  if (c < 10000) return "1K<n<10K";
  if (c < 100000) return "10K<n<100K";
  if (c < 1000000) return "100K<n<1M";
  if (c < 10000000) return "1M<n<10M";
  if (c < 100000000) return "10M<n<100M";
  return "100M<n<1B";
}

static double pct(size_t a, size_t b) { return b ? 100.0 * (double)a / (double)b : 0.0; }

static const char *recipe_name(const struct card_data *d) {
  const char *n = jx_str(d->row, "recipe_name");
  if (!n) n = jx_str(d->recipe, "name");
  return n ? n : "autodata dataset";
}

static void front_matter(struct cw *w, const struct card_data *d) {
  outs(w, "---\nlicense: other\npretty_name: ");
  yaml_str(w, recipe_name(d));
  out(w,
      "\ntask_categories:\n- question-answering\n- text-generation\n"
      "size_categories:\n- %s\n"
      "tags:\n- synthetic\n- autodata\n- ",
      report_size_category(d->n_examples));
  /* a baseline's tag is its method's name; a tag is one plain word */
  if (!d->baseline) outs(w, "agentic-self-instruct");
  else
    for (const char *p = d->method; *p && !w->rc; p++)
      w->rc = buf_putc(w->b, (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '-');
  outs(w,
       "\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: "
       "dataset.jsonl\n---\n\n");
}

/* The challenger prompt the run used, as recorded (a baseline records its
 * method's own prompt there). */
static const char *challenger_prompt_path(const struct card_data *d) {
  return jx_str(json_object_get(json_object_get(d->meta, "prompts"), "challenger"), "path");
}

static int is_cot(const struct card_data *d) { return !strcmp(d->method, "cot-self-instruct"); }

/* The CoT filter's settings in prose ("K 4, RIP threshold 0.5, ..."), or
 * "settings not recorded". */
static void cot_settings(struct cw *w, const struct card_data *d) {
  const json_t *m = d->method_info;
  char a[64], b[64], c[64];
  const char *k = scalar(json_object_get(m, "k"), a, sizeof a);
  const char *rip = scalar(json_object_get(m, "rip_threshold"), b, sizeof b);
  const char *ac = scalar(json_object_get(m, "ac_min_share"), c, sizeof c);
  if (!k && !rip && !ac) {
    outs(w, "filter settings not recorded");
    return;
  }
  out(w, "K = %s filter samples, RIP threshold %s, Answer-Consistency share %s",
      k ? k : "not recorded", rip ? rip : "not recorded", ac ? ac : "not recorded");
}

/* The paragraph on the CoT-Self-Instruct filter of this run's task. */
static void cot_filter_prose(struct cw *w, const struct card_data *d) {
  const char *task = jx_str(d->recipe, "task");
  int verifiable = task && !strcmp(task, "verifiable");
  const json_t *m = d->method_info;
  char a[64], b[64];
  const char *k = scalar(json_object_get(m, "k"), a, sizeof a);
  const char *x = scalar(json_object_get(m, verifiable ? "ac_min_share" : "rip_threshold"), b,
                         sizeof b);
  out(w,
      " The CoT-Self-Instruct filter then drew %s more answers from the strong solver's role "
      "(their own seeds)",
      k ? k : "K");
  if (verifiable)
    out(w,
        " and applied **Answer-Consistency**: the example is kept when the final answers "
        "have a unique most common answer, its share of the samples is at least %s, and it "
        "is the same answer as the generated one.",
        x ? x : "the recorded share");
  else
    out(w,
        " and applied **RIP**: the judge scored each answer against the example's rubric, "
        "and the example is kept when the lowest of those scores is at least %s.",
        x ? x : "the recorded threshold");
}

static void corpus_count(struct cw *w, const struct card_data *d) {
  const json_t *corpus = json_object_get(d->meta, "corpus");
  if (json_object_get(corpus, "count")) out(w, "%lld source documents", jx_int(corpus, "count", 0));
  else out(w, "%zu source documents", d->src_total);
}

/* The summary of a baseline run (self-instruct, cot-self-instruct). */
static void summary_baseline(struct cw *w, const struct card_data *d) {
  const char *task = jx_str(d->recipe, "task");
  const char *goal = jx_str(d->recipe, "goal");
  const char *version = jx_str(d->row, "version");
  const char *status = jx_str(d->row, "status");
  const char *prompt = challenger_prompt_path(d);
  out(w, "%zu %s%sexamples kept by the **%s** baseline method, made by autodata %s from ",
      d->n_examples, task ? task : "", task ? "-task " : "", d->method,
      version ? version : "(version not recorded)");
  corpus_count(w, d);
  out(w, " (method: %s", d->method);
  if (is_cot(d)) {
    outs(w, "; ");
    cot_settings(w, d);
  }
  out(w,
      "; run %lld, status %s). This is a one-shot baseline, not the Agentic Self-Instruct "
      "loop.\n\n",
      (long long)d->run, status ? status : "unknown");
  if (goal && *goal) out(w, "Goal given to the challenger: %s\n\n", goal);
  outs(w,
       "Per source document there was **one round, with no orchestrator and no feedback**: "
       "one challenger call, with the method's own challenger prompt (");
  code(w, prompt ? fs_basename(prompt) : NULL);
  outs(w,
       "), wrote one example (context, question, reference answer and a weighted rubric, or "
       "a question with a verifiable answer) from the source alone");
  if (is_cot(d)) outs(w, ", reasoning and planning step by step before writing it");
  outs(w,
       ". Nothing was revised or retried. Programmatic checks and a quality-verifier model "
       "screened every candidate; a weak and a strong solver model answered it several "
       "times without seeing the rubric or reference; a judge model scored each answer.");
  if (is_cot(d)) cot_filter_prose(w, d);
  out(w,
      "\n\n**What the dataset holds:** the examples that passed the method's filters (the "
      "programmatic checks and the quality verifier%s). The recipe's acceptance gate (the "
      "bounds below) was computed for every candidate and recorded, per example as "
      "`passed_gate` (with `gate_reason`), but it did not select the examples: %zu of the "
      "%zu kept examples passed it.\n\n",
      is_cot(d) ? ", then the CoT-Self-Instruct filter" : "", d->ex_passed_gate, d->n_examples);
  outs(w,
       "Files: `dataset.jsonl` (one kept example per line, with its weak and strong scores, "
       "`method`, `passed_filter`, `passed_gate`, `gate_reason`, `filter` and provenance: "
       "source id, prompt hashes), `rejected.jsonl` (every candidate the acceptance gate "
       "rejected, with its reason and statistics), `candidates.jsonl` (every candidate, with "
       "its gate verdict, `passed_filter` and `filter_reason`) and the run store (every model "
       "call and verdict).\n\n"
       "**Licence:** `license: other` is a placeholder. Set it to what the source corpus's "
       "licence and the model providers' terms allow before publishing.\n\n");
}

/* The agent method (docs/agent.md): how its conversations went, and its tools in full. */
static void agent_method(struct cw *w, const struct card_data *d) {
  outs(w,
       "### The agent (method `agent`)\n\n"
       "Per source document, the orchestrator model ran one conversation in which it acted "
       "only through the tools below (OpenAI tool calls): it asked challengers for candidates "
       "(`generate`), had them screened (`check_quality`), had the weak and strong solvers "
       "answer and the judge score them (`evaluate`), and submitted one (`submit`) or gave "
       "up. The program executed every tool, refused anything outside the definitions, and "
       "applied the acceptance bounds below to every submitted candidate; no tool can change "
       "a prompt, the sampling or the bounds. Its system prompt is the orchestrator's prompt "
       "under Prompts; each conversation's tool calls, arguments and results are in "
       "`candidates.jsonl` (`record.agent.trajectory`) and in the store.\n\n"
       "Tool definitions sent with every turn:\n\n");
  const json_t *tools = json_object_get(d->method_info, "tools");
  char *text = tools ? json_dumps(tools, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  if (text) fenced(w, "json", text);
  else outs(w, "Not recorded.\n\n");
  free(text);
}

/* 1 when the run had the role (its recipe records it as an object, not null). */
static int had_role(const struct card_data *d, const char *role) {
  return json_is_object(json_object_get(json_object_get(d->recipe, "roles"), role));
}

/* Challengers asked at once per round (roles.challenger.parallel; 1 when not recorded). */
static int parallel_of(const struct card_data *d) {
  const json_t *ch = json_object_get(json_object_get(d->recipe, "roles"), "challenger");
  return (int)jx_int(ch, "parallel", 1);
}

/* How a round went, naming only the roles the run had. */
static void summary_roles(struct cw *w, const struct card_data *d) {
  int orch = had_role(d, "orchestrator"), qv = had_role(d, "quality");
  if (had_role(d, "extractor"))
    outs(w,
         "Per source document, an extractor model first judged whether the document could "
         "ground a question (an unsuitable one ended its source with reason `unsuitable`) "
         "and extracted its key facts for the challenger. ");
  const char *matcher = jx_str(json_object_get(d->recipe, "checks"), "verifiable_matcher");
  int verifiable = jx_str(d->recipe, "task") && !strcmp(jx_str(d->recipe, "task"), "verifiable");
  int judge_model = !verifiable || (matcher && !strcmp(matcher, "llm"));
  if (orch)
    outs(w,
         "Per source document, an orchestrator model wrote instructions for a challenger "
         "model, which proposed one example ");
  else outs(w, "Per source document, a challenger model proposed one example ");
  outs(w,
       "(context, question, reference answer and a weighted rubric, or a question with a "
       "verifiable answer). ");
  outs(w, qv ? "Programmatic checks and a quality-verifier model screened it; "
             : "Programmatic checks screened it (the run had no quality verifier); ");
  if (parallel_of(d) > 1)
    out(w,
        "in each round %d challengers proposed a candidate at once, each from its own angle, "
        "every candidate was screened, and the survivors went on one at a time (fewer "
        "quality-verifier issues first, then a first reply before a repaired one, then the "
        "challenger's position) until one was accepted; ",
        parallel_of(d));
  outs(w,
       "a weak and a strong solver model answered it several times without seeing the rubric "
       "or reference; ");
  outs(w, judge_model ? "a judge model scored each answer. "
                      : "the program compared each final answer with the reference (no judge "
                        "model). ");
  outs(w,
       "The program (never a model) kept the example only when the scores met the acceptance "
       "bounds below; otherwise ");
  if (orch)
    outs(w,
         "the round's evidence went back to the orchestrator for another round, up to the "
         "round budget.\n\n");
  else
    outs(w,
         "the round's evidence went back to the challenger as the program's feedback block "
         "for another round, up to the round budget. **This run had no orchestrator**: no "
         "model analysed the earlier rounds or wrote instructions.\n\n");
}

static void summary(struct cw *w, const struct card_data *d) {
  const char *task = jx_str(d->recipe, "task");
  const char *method = d->method;
  const char *goal = jx_str(d->recipe, "goal");
  const char *version = jx_str(d->row, "version");
  out(w, "# %s\n\n## Summary\n\n", recipe_name(d));
  if (d->baseline) {
    summary_baseline(w, d);
    return;
  }
  out(w, "%zu accepted %s%sexamples, made by autodata %s from ", d->n_examples, task ? task : "",
      task ? "-task " : "", version ? version : "(version not recorded)");
  corpus_count(w, d);
  out(w, " with the Agentic Self-Instruct method (method: %s; run %lld, status %s).\n\n", method,
      (long long)d->run, jx_str(d->row, "status") ? jx_str(d->row, "status") : "unknown");
  if (goal) out(w, "Goal given to the agent: %s\n\n", goal);
  if (is_agent(d))
    outs(w,
         "Per source document, an orchestrator model acting through tools (the agent below) had "
         "challenger models propose examples, had them screened by programmatic checks and a "
         "quality-verifier model, had a weak and a strong solver answer them several times "
         "(each answer scored by a judge model) and submitted one; the program (never a model) "
         "accepted a submitted example only when its scores met the acceptance bounds "
         "below.\n\n");
  else summary_roles(w, d);
  outs(w,
       "Files: `dataset.jsonl` (one accepted example per line, with its weak and strong scores "
       "and provenance: source id, rounds used, prompt hashes), `rejected.jsonl` (every rejected "
       "candidate with its reason and statistics) and the run store (every model call, round "
       "and verdict).\n\n"
       "**Licence:** `license: other` is a placeholder. Set it to what the source corpus's "
       "licence and the model providers' terms allow before publishing.\n\n");
}

/* ======== paths: relative to the output folder, never absolute ======== */

/* Lexically normalise an absolute path ("." and ".." resolved, no double '/')
 * into a new string. */
static char *norm_abs(const char *p) {
  size_t n = strlen(p);
  char *out = xmalloc(n + 2);
  size_t o = 0;
  const char *s = p;
  while (*s) {
    while (*s == '/') s++;
    const char *e = strchr(s, '/');
    size_t l = e ? (size_t)(e - s) : strlen(s);
    if (l == 0) break;
    if (l == 1 && s[0] == '.') {
    } else if (l == 2 && s[0] == '.' && s[1] == '.') {
      while (o > 0 && out[o - 1] != '/') o--;
      if (o > 0) o--;
    } else {
      out[o++] = '/';
      memcpy(out + o, s, l);
      o += l;
    }
    s += l;
  }
  if (o == 0) out[o++] = '/';
  out[o] = '\0';
  return out;
}

/* Is path p (normalised) at or under folder d (normalised)? */
static int under(const char *p, const char *d) {
  size_t l = strlen(d);
  if (l == 1) return 1; /* "/" */
  return !strncmp(p, d, l) && (p[l] == '/' || p[l] == '\0');
}

/* How the card names a file the run recorded at path p: relative to the output
 * folder when the file lies in the folder the run was started from (the
 * project), else only its file name, marked as outside the project (its sha256
 * identifies it). Never an absolute local path. New string. */
static char *card_path(const struct card_data *d, const char *p) {
  if (!p || !*p) return NULL;
  if (strstr(p, "://")) return xstrdup(p); /* a store URL (its password already masked) */
  const json_t *paths = json_object_get(d->meta, "paths");
  const char *cwd = jx_str(paths, "cwd"), *outd = jx_str(paths, "output_folder");
  const char *base = strrchr(p, '/');
  base = base ? base + 1 : p;
  if (!cwd || !*cwd || !outd || !*outd) /* a run from before paths were recorded */
    return p[0] == '/' ? xasprintf("%s (outside the output folder)", base) : xstrdup(p);
  char *joined = p[0] == '/' ? xstrdup(p) : xasprintf("%s/%s", cwd, p);
  char *a = norm_abs(joined), *c = norm_abs(cwd), *o = norm_abs(outd);
  free(joined);
  char *res;
  if (!under(a, c)) {
    res = xasprintf("%s (outside the project folder)", base);
  } else {
    /* common folder of a and o, then ".." per remaining folder of o */
    size_t i = 0, last = 0;
    while (a[i] && a[i] == o[i]) {
      if (a[i] == '/') last = i;
      i++;
    }
    if (!o[i] && a[i] == '/') last = i;
    else if (!a[i] && !o[i]) last = i;
    struct buf b;
    buf_init(&b, 0);
    int rc = 0;
    for (const char *q = o + last; *q && !rc; q++)
      if (*q == '/') rc = buf_puts(&b, "../");
    if (!rc) rc = buf_puts(&b, a[last] == '/' ? a + last + 1 : a + last);
    res = rc ? xstrdup(base) : buf_take(&b, NULL);
    if (rc) buf_release(&b);
    if (!*res) {
      free(res);
      res = xstrdup(".");
    }
  }
  free(a);
  free(c);
  free(o);
  return res;
}

/* code(card_path(p)). */
static void code_path(struct cw *w, const struct card_data *d, const char *p) {
  char *cp = card_path(d, p);
  code(w, cp);
  free(cp);
}

/* The command line with every absolute path argument (or --opt=/path) shown as
 * card_path() does. New string. */
static char *card_command_line(const struct card_data *d, const char *cl) {
  struct buf b;
  buf_init(&b, 0);
  int rc = 0;
  const char *s = cl;
  while (*s && !rc) {
    size_t sp = strspn(s, " ");
    if (sp) {
      rc = buf_append(&b, s, sp);
      s += sp;
      continue;
    }
    size_t l = strcspn(s, " ");
    char *tok = xstrndup(s, l);
    char *eq = tok[0] == '-' ? strchr(tok, '=') : NULL;
    char *path = eq ? eq + 1 : tok;
    if (path[0] == '/') {
      char *cp = card_path(d, path);
      const char *sfx = strstr(cp, " (outside");
      if (sfx) cp[sfx - cp] = '\0'; /* a bare name in a command */
      rc = buf_printf(&b, "%.*s%s", (int)(path - tok), tok, cp);
      free(cp);
    } else {
      rc = buf_append(&b, s, l);
    }
    free(tok);
    s += l;
  }
  if (rc) {
    buf_release(&b);
    return xstrdup("(command line not shown)");
  }
  return buf_take(&b, NULL);
}

/* The configuration's identity and the environment variables that set it. */
static void config_section(struct cw *w, const struct card_data *d) {
  outs(w, "### Configuration and environment\n\n");
  const char *id = jx_str(d->meta, "identity_sha256");
  if (id) {
    outs(w,
         "Every value in this section is the run's effective configuration: the recipe after "
         "`${VAR}` substitution and defaults. Its identity (task, seed, method, goal, how "
         "sources are read, the endpoints and models of every role, sampling, prompt texts, "
         "acceptance and checks) hashes to ");
    code(w, id);
    outs(w,
         "; a resume with a different identity is refused, naming what changed. Recipe file "
         "sha256: ");
    code(w, jx_str(d->recipe, "recipe_sha256"));
    outs(w, ".\n\n");
  } else {
    outs(w,
         "This run was made before its effective configuration's identity was recorded; "
         "the values shown are those the run recorded.\n\n");
  }
  const json_t *env = json_object_get(d->meta, "env");
  if (!json_is_array(env)) {
    if (id) outs(w, "No environment variables were recorded.\n\n");
    return;
  }
  if (!json_array_size(env)) {
    outs(w, "The recipe read no environment variables.\n\n");
    return;
  }
  outs(w,
       "Set through environment variables (names only: values that could be secrets are never "
       "recorded):\n\n| variable | setting | value used | from |\n|---|---|---|---|\n");
  size_t i;
  const json_t *e;
  json_array_foreach(env, i, e) {
    const char *var = jx_str(e, "variable"), *field = jx_str(e, "field");
    if (!var || !field) continue;
    outs(w, "| ");
    code(w, var);
    outs(w, " | ");
    code(w, field);
    outs(w, " | ");
    /* the effective value where the setting is a plain recorded scalar */
    const json_t *v = d->recipe;
    char *f = xstrdup(field), *save = NULL;
    for (char *part = strtok_r(f, ".", &save); part && v; part = strtok_r(NULL, ".", &save))
      v = json_object_get(v, part);
    free(f);
    int is_path = !strcmp(field, "sources.path") || !strncmp(field, "output.", 7);
    if (secret_name(var, strlen(var)) || !v || json_is_object(v) || json_is_array(v)) outs(w, "—");
    else if (is_path && json_is_string(v)) code_path(w, d, json_string_value(v));
    else cell_json(w, v, NULL);
    outs(w, " | ");
    outs(w, !strcmp(jx_str(e, "from") ? jx_str(e, "from") : "", "default")
                ? "unset: the recipe's default"
                : "environment");
    outs(w, " |\n");
  }
  outs(w, "\n");
}

static void role_table(struct cw *w, const struct card_data *d) {
  const json_t *roles = json_object_get(d->recipe, "roles");
  outs(w, "### Roles\n\n");
  size_t n = 0;
  const char **keys = role_keys(roles, &n);
  if (!keys) {
    outs(w, "The run did not record its roles.\n\n");
    return;
  }
  outs(w,
       "| role | endpoint | model | temperature | top_p | max_tokens | samples | extra | prompt "
       "sha256 |\n|---|---|---|---|---|---|---|---|---|\n");
  const json_t *hashes = json_object_get(d->row, "prompt_hashes");
  for (size_t i = 0; i < n; i++) {
    const json_t *r = json_object_get(roles, keys[i]);
    if (!json_is_object(r)) continue;
    if (d->baseline && !strcmp(keys[i], "orchestrator")) continue; /* never called */
    outs(w, "| ");
    cell(w, keys[i]);
    outs(w, " | ");
    cell_json(w, json_object_get(r, "endpoint"), NULL);
    outs(w, " | ");
    cell_json(w, json_object_get(r, "model"), NULL);
    outs(w, " | ");
    cell_json(w, json_object_get(r, "temperature"), "default");
    outs(w, " | ");
    cell_json(w, json_object_get(r, "top_p"), "default");
    outs(w, " | ");
    cell_json(w, json_object_get(r, "max_tokens"), "default");
    outs(w, " | ");
    cell_json(w, json_object_get(r, "samples"), "1");
    outs(w, " | ");
    cell_json(w, json_object_get(r, "extra"), "—");
    outs(w, " | ");
    /* a baseline's challenger used the method's prompt: the run's hash */
    const char *sha = d->baseline ? jx_str(hashes, keys[i]) : NULL;
    if (!sha) sha = jx_str(json_object_get(r, "prompt"), "sha256");
    if (sha) code(w, sha);
    else outs(w, "—");
    outs(w, " |\n");
  }
  free(keys);
  /* The sim world's effective parameters, when a role used a sim world model (docs/sim.md). */
  const json_t *sw = json_object_get(d->meta, "sim_world");
  const char **sk = json_is_object(sw) ? role_keys(sw, &n) : NULL;
  if (sk) {
    outs(w, "\nSim world models (docs/sim.md), with their effective parameters:\n\n");
    for (size_t i = 0; i < n; i++) {
      const json_t *e = json_object_get(sw, sk[i]);
      char *pj = json_dumps(json_object_get(e, "params"),
                            JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
      outs(w, "- ");
      cell(w, sk[i]);
      outs(w, ": ");
      code(w, jx_str(e, "model") ? jx_str(e, "model") : "?");
      outs(w, " ");
      code(w, pj ? pj : "{}");
      outs(w, "\n");
      free(pj);
    }
    free(sk);
  }
  if (d->baseline)
    outs(w,
         "\nThe weak and strong solvers see the context and question only, never the rubric "
         "or the reference answer. Every prompt is fixed for the run (the hashes are checked "
         "on resume). The challenger used the method's own prompt; the orchestrator role was "
         "not used (no call, not part of the run's prompt hashes).\n\n");
  else
    outs(w,
         "\nThe weak and strong solvers see the context and question only, never the rubric or "
         "the reference answer. The solver and judge prompts are fixed for the run (their "
         "hashes are checked on resume); the orchestrator can change only the challenger's "
         "instructions.\n\n");

  const json_t *eps = json_object_get(d->recipe, "endpoints");
  if (json_object_size(eps)) {
    outs(w,
         "Endpoints (OpenAI-compatible servers; API keys are never recorded):\n\n"
         "| endpoint | base URLs | max in flight | structured outputs (json_schema) | extra_body "
         "|\n|---|---|---|---|---|\n");
    size_t ne = 0;
    const char **ek = role_keys(eps, &ne); /* unknown names: sorted by name */
    for (size_t i = 0; i < ne; i++) {
      const json_t *e = json_object_get(eps, ek[i]);
      outs(w, "| ");
      cell(w, ek[i]);
      outs(w, " | ");
      const json_t *urls = json_object_get(e, "base_urls");
      size_t j;
      const json_t *u;
      json_array_foreach(urls, j, u) {
        if (j) outs(w, ", ");
        cell(w, json_string_value(u));
      }
      if (!json_array_size(urls)) outs(w, "—");
      outs(w, " | ");
      cell_json(w, json_object_get(e, "max_inflight"), NULL);
      outs(w, " | ");
      const json_t *js = json_object_get(e, "json_schema");
      cell(w, json_is_string(js)  ? json_string_value(js) /* "basic" */
              : json_is_false(js) ? "off"
              : js                ? "strict"
                                  : "not recorded");
      outs(w, " | ");
      cell_json(w, json_object_get(e, "extra_body"), "—");
      outs(w, " |\n");
    }
    free(ek);
    outs(w, "\n");
  }
}

static void kv_table(struct cw *w, const json_t *obj) {
  outs(w, "| setting | value |\n|---|---|\n");
  size_t n = 0;
  const char **keys = role_keys(obj, &n); /* no role names here: plain name order */
  for (size_t i = 0; i < n; i++) {
    outs(w, "| ");
    cell(w, keys[i]);
    outs(w, " | ");
    cell_json(w, json_object_get(obj, keys[i]), NULL);
    outs(w, " |\n");
  }
  free(keys);
  outs(w, "\n");
}

/* A baseline's method: what it did and its settings. */
static void method_table(struct cw *w, const struct card_data *d) {
  const char *prompt = challenger_prompt_path(d);
  const char *sha = jx_str(json_object_get(d->row, "prompt_hashes"), "challenger");
  outs(w, "### Method\n\n| setting | value |\n|---|---|\n| method | ");
  code(w, d->method);
  outs(w,
       " |\n| rounds per source | 1 |\n| orchestrator | not used |\n| feedback | none |\n"
       "| challenger prompt | ");
  code_path(w, d, prompt);
  outs(w, " |\n| challenger prompt sha256 | ");
  code(w, sha);
  outs(w, " |\n");
  if (is_cot(d)) {
    static const char *const keys[3][2] = {
        {"k", "filter samples (K, from the strong solver)"},
        {"rip_threshold", "RIP threshold (rubric tasks)"},
        {"ac_min_share", "Answer-Consistency share (verifiable tasks)"}};
    for (int i = 0; i < 3; i++) {
      out(w, "| %s | ", keys[i][1]);
      cell_json(w, json_object_get(d->method_info, keys[i][0]), "not recorded");
      outs(w, " |\n");
    }
  }
  outs(w,
       "| kept in `dataset.jsonl` | candidates that passed the programmatic checks and the "
       "quality verifier");
  if (is_cot(d)) outs(w, ", then the CoT-Self-Instruct filter");
  outs(w,
       " |\n\nEvery parsed candidate was evaluated fully: the weak and strong solvers always "
       "ran and were judged, also for a candidate that failed a check, so every statistic "
       "exists.\n\n");
}

static void agent_section(struct cw *w, const struct card_data *d) {
  if (d->baseline) {
    out(w, "## How it was made: the %s baseline\n\n", d->method);
    method_table(w, d);
  } else {
    outs(w, "## How it was made: the agent\n\n");
    if (is_agent(d)) agent_method(w, d);
  }
  role_table(w, d);
  config_section(w, d);

  const json_t *acc = json_object_get(d->recipe, "accept");
  outs(w, "### Acceptance criteria\n\n");
  const json_t *bounds = json_object_get(acc, "bounds");
  if (json_array_size(bounds)) {
    const char *preset = jx_str(acc, "preset");
    if (d->baseline)
      out(w,
          "The acceptance gate was computed for every candidate exactly as in the agentic "
          "loop and **recorded, not applied**: it did not decide what the dataset holds "
          "(each example's `passed_gate` and `gate_reason`; the gate's rejections are in "
          "`rejected.jsonl`). A candidate passes it when it passes the quality checks and "
          "**all** of these bounds hold over its solver statistics%s%s%s:\n\n",
          preset ? " (preset `" : "", preset ? preset : "", preset ? "`)" : "");
    else
      out(w,
          "An example is accepted only when it passes the quality checks and **all** of "
          "these bounds hold over its solver statistics%s%s%s:\n\n",
          preset ? " (preset `" : "", preset ? preset : "", preset ? "`)" : "");
    size_t i;
    const json_t *b;
    json_array_foreach(bounds, i, b) {
      outs(w, "- ");
      code(w, json_string_value(b));
      outs(w, "\n");
    }
    const json_t *sc = json_object_get(acc, "short_circuit");
    if (d->baseline) outs(w, "\nShort-circuit: not used by a baseline (both solvers always run).");
    else if (sc)
      out(w, "\nShort-circuit: %s.",
          json_is_true(sc) ? "on (the strong solver is skipped when the weak solver's scores "
                             "already fail a weak bound)"
                           : "off (both solvers always run)");
    const json_t *pt = json_object_get(acc, "pass_threshold");
    if (json_is_number(pt))
      out(w, " Pass threshold for a rubric score to count as correct: %g.", json_number_value(pt));
    outs(w, "\n\n");
  } else {
    outs(w, "The run did not record its acceptance bounds.\n\n");
  }

  outs(w, "### Budgets\n\n");
  const json_t *bud = json_object_get(d->recipe, "budgets");
  if (json_object_size(bud)) {
    kv_table(w, bud);
    outs(w, "(0 = no limit.)");
    if (d->baseline)
      outs(w,
           " A baseline plays one round per source whatever "
           "`rounds_per_source` says.");
    outs(w, "\n\n");
  } else {
    outs(w, "Not recorded.\n\n");
  }

  outs(w, "### Quality checks and filters\n\n");
  const json_t *checks = json_object_get(d->recipe, "checks");
  if (json_object_size(checks)) {
    outs(w,
         "Programmatic checks run on every candidate before the quality-verifier model "
         "(context length bounds, n-gram leakage of the reference answer into the context, "
         "rubric size and weight caps, duplicates):\n\n");
    kv_table(w, checks);
    if (d->baseline)
      outs(w,
           "For this baseline the checks and the quality verifier are part of the method's "
           "own filter: a candidate that fails one is not kept.\n\n");
  } else {
    outs(w, "Not recorded.\n\n");
  }
}

static void corpus_section(struct cw *w, const struct card_data *d) {
  const json_t *c = json_object_get(d->meta, "corpus");
  const json_t *src = json_object_get(d->recipe, "sources");
  const char *path = jx_str(c, "path");
  if (!path) path = jx_str(src, "path");
  outs(w, "## Source corpus\n\n- path: ");
  code_path(w, d, path);
  outs(w, "\n- documents: ");
  if (json_object_get(c, "count")) out(w, "%lld", jx_int(c, "count", 0));
  else out(w, "%zu registered in the store", d->src_total);
  outs(w, "\n- sha256: ");
  code(w, jx_str(c, "sha256"));
  outs(w, "\n- truncated documents: ");
  if (json_object_get(c, "truncated")) {
    out(w, "%lld", jx_int(c, "truncated", 0));
    const json_t *mc = json_object_get(src, "max_chars");
    if (json_is_integer(mc)) out(w, " (cut at %lld characters)", (long long)json_integer_value(mc));
  } else {
    outs(w, "not recorded");
  }
  const json_t *inv = json_object_get(c, "invalid_skipped"); /* sources.on_invalid: skip */
  if (inv) {
    out(w, "\n- invalid records skipped: %lld (the first: ", jx_int(inv, "count", 0));
    code(w, jx_str(inv, "first"));
    outs(w, ")");
  }
  outs(w,
       "\n\nRecord the corpus's origin, version and licence here: the dataset inherits "
       "them.\n\n");
}

static int cmp_reason(const void *a, const void *b, void *ud) {
  const json_t *r = ud;
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  long long cx = jx_int(r, x, 0), cy = jx_int(r, y, 0);
  if (cx != cy) return cx > cy ? -1 : 1;
  return strcmp(x, y);
}

static void stat_row(struct cw *w, const char *name, const struct dstat *s) {
  if (!s->n) {
    out(w, "| %s | — | — | — | — |\n", name);
    return;
  }
  double mean = s->sum / (double)s->n;
  double var = s->sumsq / (double)s->n - mean * mean;
  out(w, "| %s | %.3f | %.3f | %.3f | %.3f |\n", name, mean, var > 0 ? sqrt(var) : 0.0, s->min,
      s->max);
}

/* A "| reason | count | share |" table of reasons (reason -> count), by count
 * then name; share of total. */
static void reason_table(struct cw *w, const json_t *reasons, size_t total) {
  size_t nr = json_object_size(reasons);
  const char **keys = xcalloc(nr ? nr : 1, sizeof *keys);
  size_t i = 0;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)reasons, k, v) keys[i++] = k;
  qsort_r(keys, nr, sizeof *keys, cmp_reason, (void *)reasons);
  outs(w, "| reason | count | share |\n|---|---|---|\n");
  for (i = 0; i < nr; i++) {
    long long c = jx_int(reasons, keys[i], 0);
    outs(w, "| ");
    code(w, keys[i]);
    out(w, " | %lld | %.1f%% |\n", c, pct((size_t)c, total));
  }
  free(keys);
}

/* Results of a baseline run: what was kept, why not, the gate as recorded. */
/* The score spread over the dataset's examples ("accepted" or "kept"). */
static void scores_table(struct cw *w, const struct card_data *d, const char *which) {
  out(w, "### Scores of the %s examples\n\n", which);
  if (!d->n_examples) {
    out(w, "No example was %s.\n\n", which);
    return;
  }
  out(w,
      "Rubric scores in [0, 1] (or correct fractions for verifiable tasks); the spread is "
      "over %s examples (std is the population standard deviation).\n\n"
      "| statistic | mean | std | min | max |\n|---|---|---|---|---|\n",
      which);
  stat_row(w, "weak mean", &d->weak);
  stat_row(w, "strong mean", &d->strong);
  stat_row(w, "gap (strong − weak)", &d->gap);
  stat_row(w, "weak std (per example)", &d->weak_std);
  outs(w, "\n");
}

static void results_baseline(struct cw *w, const struct card_data *d) {
  size_t processed = d->src_done + d->src_exhausted;
  outs(w, "## Results\n\n");
  out(w,
      "| | count |\n|---|---|\n| sources | %zu |\n| processed (one round each) | %zu |\n"
      "| kept (done) | %zu |\n| not kept (exhausted) | %zu |\n| pending or in progress | %zu |\n"
      "| kept examples | %zu |\n| kept examples that passed the acceptance gate | %zu |\n"
      "| candidates evaluated | %zu |\n| candidates kept by the method's filters | %zu |\n"
      "| candidates that passed the acceptance gate | %zu |\n\n",
      d->src_total, processed, d->src_done, d->src_exhausted, d->src_pending + d->src_progress,
      d->n_examples, d->ex_passed_gate, d->cand_total, d->cand_kept, d->cand_accepted);
  out(w,
      "Kept: %.1f%% of processed sources (%zu of %zu). Acceptance gate (recorded only): "
      "%.1f%% of candidates (%zu of %zu).\n\n",
      pct(d->src_done, processed), d->src_done, processed, pct(d->cand_accepted, d->cand_total),
      d->cand_accepted, d->cand_total);

  outs(w, "### Why candidates were not kept\n\n");
  size_t not_kept = d->cand_total - d->cand_kept;
  if (!json_object_size(d->filter_reasons)) {
    outs(w, "Every candidate was kept.\n\n");
  } else {
    reason_table(w, d->filter_reasons, not_kept);
    outs(w,
         "\n`check:*`: a programmatic check failed it; `quality:*`: the quality verifier "
         "failed it; `filter:rip` / `filter:answer_consistency`: the CoT-Self-Instruct filter "
         "rejected it; `parse_error`: the challenger's reply was not a valid candidate; "
         "`error:*`: a model call failed. Each candidate is in `candidates.jsonl` with its "
         "`filter_reason` and `filter_detail`.\n\n");
  }

  outs(w, "### Acceptance-gate rejections by reason (recorded only)\n\n");
  if (!json_object_size(d->reasons)) {
    outs(w, "No candidate failed the acceptance gate.\n\n");
  } else {
    reason_table(w, d->reasons, d->cand_rejected);
    outs(w,
         "\nThe gate did not select the dataset: a kept example may have failed it (its "
         "`passed_gate` is false and `gate_reason` says why). Each gate rejection is in "
         "`rejected.jsonl`.\n\n");
  }

  scores_table(w, d, "kept");
}

static void results_section(struct cw *w, const struct card_data *d) {
  size_t processed = d->src_done + d->src_exhausted;
  if (d->baseline) {
    results_baseline(w, d);
    return;
  }
  outs(w, "## Results\n\n");
  out(w,
      "| | count |\n|---|---|\n| sources | %zu |\n| processed | %zu |\n| accepted (done) | %zu "
      "|\n| exhausted (round budget spent) | %zu |\n| pending or in progress | %zu |\n"
      "| accepted examples | %zu |\n| candidates evaluated | %zu |\n| candidates rejected | %zu "
      "|\n\n",
      d->src_total, processed, d->src_done, d->src_exhausted, d->src_pending + d->src_progress,
      d->n_examples, d->cand_total, d->cand_rejected);
  out(w,
      "Acceptance rate: %.1f%% of processed sources (%zu of %zu); %.1f%% of candidates (%zu of "
      "%zu).\n\n",
      pct(d->src_done, processed), d->src_done, processed, pct(d->cand_accepted, d->cand_total),
      d->cand_accepted, d->cand_total);

  outs(w, "### Rejections by reason\n\n");
  if (!json_object_size(d->reasons)) {
    outs(w, "No candidate was rejected.\n\n");
  } else {
    reason_table(w, d->reasons, d->cand_rejected);
    outs(w,
         "\nReasons: `too_easy`: the weak solver scored above a weak bound; `too_hard`: the "
         "weak solver scored below one (for example a weak score of 0); `failed_on_strong`: "
         "the strong solver missed a strong bound; `no_gap`: the strong–weak gap was too "
         "small; `quality:*`: the quality verifier failed it; `check:*`: a programmatic check "
         "failed it; `parse_error`: the challenger's reply was not a valid candidate. Each "
         "rejected candidate is in `rejected.jsonl` with its statistics.\n\n");
  }

  outs(w, "### Rounds to accept\n\n");
  if (!d->n_examples) {
    outs(w, "No example was accepted.\n\n");
  } else {
    outs(w, "| rounds | examples |\n|---|---|\n");
    for (size_t r = 1; r < d->n_rounds; r++)
      if (d->rounds[r]) out(w, "| %zu | %zu |\n", r, d->rounds[r]);
    if (d->rounds_unknown) out(w, "| not recorded | %zu |\n", d->rounds_unknown);
    double sum = 0;
    size_t cnt = 0;
    for (size_t r = 1; r < d->n_rounds; r++) {
      sum += (double)r * (double)d->rounds[r];
      cnt += d->rounds[r];
    }
    if (cnt) out(w, "\nMean rounds to accept: %.2f.\n", sum / (double)cnt);
    outs(w, "\n");
  }

  scores_table(w, d, "accepted");
}

/* The prefix share of the run's prompts (store/prefix.h), when the store has it. */
static void prefix_line(struct cw *w, const struct card_data *d) {
  const json_t *tok = json_object_get(d->stats, "tokens");
  long long prompt = jx_int(tok, "prompt", 0), prefix = jx_int(tok, "prefix", 0);
  if (prompt > 0)
    out(w,
        "\nPrefix share: %.1f%% of the prompt tokens (%lld of %lld) repeat the start of an "
        "earlier request to the same endpoint and model, which a server with prefix caching "
        "(vLLM, SGLang) can reuse.\n",
        100.0 * (double)prefix / (double)prompt, prefix, prompt);
}

static void cost_section(struct cw *w, const struct card_data *d) {
  outs(w, "## Cost\n\n");
  size_t n = 0;
  const char **keys = role_keys(d->roles, &n);
  if (!keys) {
    outs(w, "No model call is recorded.\n\n");
    return;
  }
  outs(w,
       "Tokens and cost count real calls only: calls answered from the store's cache cost "
       "nothing.\n\n| role | calls | ok | failed | cache hits | retries | prompt tokens | "
       "completion tokens | cost (USD) |\n|---|---|---|---|---|---|---|---|---|\n");
  long long t[7] = {0};
  static const char *const cols[7] = {"calls",   "ok",     "error",     "cache_hits",
                                      "retries", "prompt", "completion"};
  double tcost = 0;
  for (size_t i = 0; i < n; i++) {
    const json_t *r = json_object_get(d->roles, keys[i]);
    outs(w, "| ");
    cell(w, keys[i]);
    for (int c = 0; c < 7; c++) {
      long long v = jx_int(r, cols[c], 0);
      t[c] += v;
      out(w, " | %lld", v);
    }
    if (json_is_true(json_object_get(r, "priced"))) {
      double cost = jx_num(r, "cost", 0);
      tcost += cost;
      out(w, " | %.4f |\n", cost);
    } else {
      outs(w, " | — |\n");
    }
  }
  free(keys);
  outs(w, "| **total**");
  for (int c = 0; c < 7; c++) out(w, " | %lld", t[c]);
  if (d->any_priced) out(w, " | %.4f%s |\n", tcost, d->any_unpriced ? " (partial)" : "");
  else outs(w, " | — |\n");
  if (!d->any_priced)
    outs(w,
         "\nNo prices were given for these models, so cost is unknown (add `prices` to the "
         "recipe's endpoints).\n");
  else if (d->any_unpriced)
    outs(w, "\nSome models had no price: the total counts priced models only.\n");
  prefix_line(w, d);
  outs(w, "\n");
}

static void prompt_block(struct cw *w, const struct card_data *d, const char *role,
                         const char *path, const char *sha, const char *text) {
  out(w, "### %s\n\n- path: ", role);
  code_path(w, d, path);
  outs(w, "\n- sha256: ");
  code(w, sha);
  outs(w, "\n\n");
  if (text) fenced(w, "text", text);
  else outs(w, "The prompt's text is not recorded in the store.\n\n");
}

/* The texts the program itself writes into prompts (eval/feedback.h, fb_program_texts), as
 * the run recorded them; only those of the roles the run had. */
static void program_texts(struct cw *w, const struct card_data *d) {
  static const struct {
    const char *key, *what, *role;
  } k[] = {
      {"feedback_block",
       "The challenger's feedback block on this source's earlier rounds (the `feedback` "
       "variable; a specimen over sample rounds, placeholders in <angle brackets>)",
       "challenger"},
      {"orchestrator_history",
       "The orchestrator's history of this source's rounds (the `history` variable)",
       "orchestrator"},
      {"challenger_repair",
       "The challenger's repair turn: the user message after a reply that did not parse",
       "challenger"},
      {"judge_repair_rubric",
       "The judge's repair note, rubric tasks: put before the judge's task after an invalid "
       "judgement",
       "judge"},
      {"judge_repair_verifiable", "The verifier's repair note, verifiable tasks", "judge"},
      {"challenger_angle",
       "Several challengers per round (`roles.challenger.parallel`): the line appended to "
       "challenger k's prompt",
       "challenger"},
  };
  outs(w, "### Text the program writes into prompts\n\n");
  json_t *texts = json_incref(json_object_get(d->meta, "program_texts"));
  if (!json_is_object(texts)) {
    json_decref(texts);
    texts = fb_program_texts();
    outs(w,
         "The run did not record these texts (it was made by an older version); this "
         "version writes:\n\n");
  } else {
    outs(w,
         "Besides the prompt files, the program writes these texts into prompts, as the run "
         "recorded them:\n\n");
  }
  int verifiable = jx_str(d->recipe, "task") && !strcmp(jx_str(d->recipe, "task"), "verifiable");
  for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
    if (!had_role(d, k[i].role)) continue;
    if (verifiable ? !strcmp(k[i].key, "judge_repair_rubric")
                   : !strcmp(k[i].key, "judge_repair_verifiable"))
      continue;
    if (d->baseline && strcmp(k[i].key, "challenger_repair") && strcmp(k[i].role, "judge"))
      continue; /* a baseline plays one round: no feedback, no history */
    if (!strcmp(k[i].key, "challenger_angle") && (parallel_of(d) < 2 || d->baseline || is_agent(d)))
      continue; /* only a run with several challengers per round wrote it */
    const json_t *t = json_object_get(texts, k[i].key);
    if (!jx_str(t, "text")) continue;
    out(w, "- %s; `%s`, sha256 ", k[i].what, k[i].key);
    code(w, jx_str(t, "sha256"));
    outs(w, ":\n\n");
    fenced(w, "text", jx_str(t, "text"));
  }
  json_decref(texts);
}

static void prompts_section(struct cw *w, const struct card_data *d) {
  outs(w,
       "## Prompts\n\nEvery prompt the run used, in full. Verify a file with "
       "`sha256sum`; the same hashes are in each example's `prompt_hashes`.\n\n");
  const json_t *prompts = json_object_get(d->meta, "prompts");
  const json_t *hashes = json_object_get(d->row, "prompt_hashes");
  const json_t *roles = json_object_get(d->recipe, "roles");
  int any = 0;
  size_t n = 0;
  const char **keys = role_keys(prompts, &n);
  for (size_t i = 0; i < n; i++) {
    const json_t *p = json_object_get(prompts, keys[i]);
    const char *sha = jx_str(p, "sha256");
    if (!sha) sha = jx_str(hashes, keys[i]);
    prompt_block(w, d, keys[i], jx_str(p, "path"), sha, jx_str(p, "text"));
    any = 1;
  }
  free(keys);
  /* prompts known only by hash (from the run row or the recipe) */
  const json_t *srcs[2] = {hashes, roles};
  for (int s = 0; s < 2; s++) {
    keys = role_keys(srcs[s], &n);
    for (size_t i = 0; i < n; i++) {
      if (json_object_get(prompts, keys[i])) continue;
      if (s == 1 && json_object_get(hashes, keys[i])) continue;
      if (d->baseline && !strcmp(keys[i], "orchestrator")) continue; /* not used */
      const json_t *v = json_object_get(srcs[s], keys[i]);
      const char *sha = s == 0 ? json_string_value(v)
                               : jx_str(json_object_get(v, "prompt"), "sha256");
      const char *path = s == 0 ? jx_str(json_object_get(json_object_get(roles, keys[i]), "prompt"),
                                         "path")
                                : jx_str(json_object_get(v, "prompt"), "path");
      if (!sha) continue;
      prompt_block(w, d, keys[i], path, sha, NULL);
      any = 1;
    }
    free(keys);
  }
  if (!any) outs(w, "The run did not record its prompts.\n\n");
  program_texts(w, d);
}

/* The environment variables the command needs: those the recipe read (set from the
 * environment, or left to their default) and each endpoint's API key variable. */
static void reproduce_env(struct cw *w, const struct card_data *d) {
  const json_t *env = json_object_get(d->meta, "env");
  json_t *set = json_object(), *dflt = json_object(), *keys = json_object();
  size_t i;
  const json_t *e;
  json_array_foreach(env, i, e) {
    const char *var = jx_str(e, "variable"), *from = jx_str(e, "from");
    if (!var) continue;
    json_t *into = from && !strcmp(from, "default") ? dflt : set;
    json_t *fields = json_object_get(into, var);
    if (!fields) json_object_set_new(into, var, fields = json_array());
    if (jx_str(e, "field")) json_array_append_new(fields, json_string(jx_str(e, "field")));
  }
  const char *name;
  const json_t *ep;
  json_object_foreach(json_object_get(d->recipe, "endpoints"), name, ep) {
    const char *k = jx_str(ep, "api_key_env");
    if (k) json_object_set_new(keys, k, json_string(name));
  }
  if (!json_object_size(set) && !json_object_size(keys) && !json_object_size(dflt)) {
    if (json_is_array(env)) outs(w, "The command needs no environment variables.\n\n");
    json_decref(set), json_decref(dflt), json_decref(keys);
    return;
  }
  outs(w, "Environment variables the command needs (names only: values are never recorded):\n\n");
  json_t *groups[2] = {set, dflt};
  for (int g = 0; g < 2; g++) {
    size_t nv = 0;
    const char **vars = role_keys(groups[g], &nv);
    for (size_t v = 0; vars && v < nv; v++) {
      outs(w, "- ");
      code(w, vars[v]);
      outs(w, g ? " (unset in the run: leave it unset for the recipe's default) for "
                : " (set in the run) for ");
      size_t j;
      const json_t *f;
      json_array_foreach(json_object_get(groups[g], vars[v]), j, f) {
        if (j) outs(w, ", ");
        code(w, json_string_value(f));
      }
      outs(w, "\n");
    }
    free(vars);
  }
  size_t nk = 0;
  const char **kv = role_keys(keys, &nk);
  for (size_t v = 0; kv && v < nk; v++) {
    outs(w, "- ");
    code(w, kv[v]);
    outs(w, ": the API key of endpoint ");
    code(w, json_string_value(json_object_get(keys, kv[v])));
    outs(w, "\n");
  }
  free(kv);
  outs(w, "\n");
  json_decref(set), json_decref(dflt), json_decref(keys);
}

static void reproduce_section(struct cw *w, const struct card_data *d) {
  const char *cl = jx_str(d->row, "command_line");
  const char *version = jx_str(d->row, "version");
  outs(w, "## Reproduce\n\n");
  if (cl) {
    char *shown = card_command_line(d, cl);
    fenced(w, "sh", shown);
    free(shown);
  } else outs(w, "The command line is not recorded.\n\n");
  reproduce_env(w, d);
  outs(w, "- autodata version: ");
  code(w, version);
  out(w, "\n- seed: %llu\n- recipe: ", (unsigned long long)(uint64_t)jx_int(d->row, "seed", 0));
  code(w, recipe_name(d));
  outs(w, jx_str(d->meta, "identity_sha256") ? ", configuration sha256 " : ", sha256 ");
  code(w, jx_str(d->row, "recipe_sha256"));
  outs(w, " (paths in this card are relative to the output folder)");
  outs(w,
       "\n\nEvery sampling seed derives from the run seed, the source, the round, the role "
       "and the sample index, and every model call is in the store. Running the same recipe, "
       "prompts and seed on the store resumes or replays the run from its cache without new "
       "model calls; `autodata card` and `autodata export` regenerate these files from the "
       "store alone.\n\n");
}

static void limitations_section(struct cw *w, const struct card_data *d) {
  outs(w,
       "## Limitations\n\n"
       "- The examples, reference answers and rubrics were written by a language model and "
       "scored by language models; they can be wrong, and a model judge can be fooled or "
       "inconsistent.\n");
  if (d->baseline)
    outs(
        w,
        "- \"Kept\" means only that the example passed the method's filters. `passed_gate` tells whether the acceptance bounds held for the "
        "sampled solver answers, relative to the weak and strong models used here and measured "
        "with few samples.\n"
        "- The data inherits the topics, biases and errors of the source corpus and of the "
        "models.\n"
        "- One-shot generation is not steered towards the bounds; read a sample of "
        "`dataset.jsonl` and `candidates.jsonl` before training on it.\n");
  else
    outs(w,
         "- \"Accepted\" means only that the acceptance bounds above held for the sampled solver "
         "answers: difficulty is relative to the weak and strong models used here and measured "
         "with few samples.\n"
         "- The data inherits the topics, biases and errors of the source corpus and of the "
         "models.\n"
         "- The agent optimises for the acceptance bounds; read a sample of `dataset.jsonl` and "
         "`rejected.jsonl` before training on it.\n");
  outs(w,
       "- Not recorded by the run (add them when you publish): the corpus licence, the training "
       "method and reward model used with this data, held-out and contamination checks against "
       "your evaluation sets (`autodata export --holdout N --seed S` makes a seeded held-out "
       "split), and post-training evaluations.\n");
}

/* ======== entry points ======== */

int report_card_render(store *st, store_id run, struct buf *dst, char *err, size_t n) {
  struct card_data d;
  memset(&d, 0, sizeof d);
  d.st = st;
  d.run = run;
  struct buf b;
  buf_init(&b, 0);
  struct cw w = {&b, 0};
  int rc = collect(&d, err, n);
  if (rc) goto cleanup;
  front_matter(&w, &d);
  summary(&w, &d);
  agent_section(&w, &d);
  corpus_section(&w, &d);
  results_section(&w, &d);
  if (!w.rc && (rc = report_card_analysis(st, d.run, &b, err, n))) goto cleanup;
  cost_section(&w, &d);
  prompts_section(&w, &d);
  reproduce_section(&w, &d);
  limitations_section(&w, &d);
  if (!w.rc) { /* a second line of defence: the store holds no secret already */
    secret_add_env();
    secret_scrub_buf(&b);
  }
  if (w.rc) {
    rc = report_err(err, n, w.rc, "rendering the data card: %s", ad_strerror(w.rc));
    goto cleanup;
  }
  if ((rc = buf_append(dst, b.data, b.len)))
    report_err(err, n, rc, "rendering the data card: %s", ad_strerror(rc));
cleanup:
  buf_release(&b);
  card_data_free(&d);
  return rc;
}

int report_write_card(store *st, store_id run, const char *path, char *err, size_t n) {
  struct buf b;
  buf_init(&b, 0);
  struct report_file rf;
  int rc = report_card_render(st, run, &b, err, n);
  if (!rc && !(rc = report_file_open(&rf, path, err, n))) {
    rc = report_file_write(&rf, b.data, b.len, err, n);
    if (!rc) rc = report_file_commit(&rf, err, n);
  }
  buf_release(&b);
  return rc;
}
