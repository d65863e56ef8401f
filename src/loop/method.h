/* method.h - generation methods as strategies (in the spirit of redis's dictType).
 *
 * A method says how an episode's rounds proceed: which steps run, what a failed
 * check or quality verdict means, and which examples the dataset keeps. The episode
 * core (episode.c) owns everything else - the state, the prompts and requests, the
 * repair turn, judging, statistics, the records and the environment - and offers it
 * to methods as the steps below. After every step the core calls the method's
 * next(ep, step): the method looks at the step's outcome and starts the next step or
 * ends the round. A method never sees a model call, the store or the run.
 *
 * The methods (docs/baselines.md):
 *   agentic            the Agentic Self-Instruct loop: orchestrator, feedback, rounds
 *                      (method_agentic.c)
 *   self-instruct      one challenger call per source from a plain prompt, every parsed
 *                      candidate evaluated once, the gate recorded (method_oneshot.c)
 *   cot-self-instruct  the same with a reasoning challenger and the CoT-Self-Instruct
 *                      filter (RIP / Answer-Consistency) deciding what is kept
 *                      (method_oneshot.c)
 *   agent              the data scientist as a tool-calling agent: one conversation per
 *                      source in which the orchestrator model acts through tools (generate,
 *                      check_quality, evaluate, submit, give_up) and the program holds the
 *                      gate (method_agent.c, docs/agent.md)
 * A new method is one new file defining a `const struct method_ops` and one entry in
 * the table in method.c.
 *
 * Rules a method follows:
 *   - next() either starts exactly one step (ep_orchestrate, ep_challenge, ep_screen,
 *     ep_quality, ep_solve) or ends the round (ep_end_round), then returns;
 *   - a step's outcome is read in next() (ep_failure, ep_cand, ep_qv, ep_stats,
 *     ep_samples), before anything else is started;
 *   - a step that was set aside (budget, signal, infrastructure) never reaches next():
 *     the core parks the episode.
 */
#ifndef AD_METHOD_H
#define AD_METHOD_H

#include <jansson.h>
#include <stddef.h>

#include "eval/accept.h"
#include "eval/baseline.h"
#include "eval/candidate.h"
#include "eval/score.h"
#include "loop/episode.h"
#include "recipe/recipe.h"

struct method_ops {
  const char *name;                /* as on the command line and in the records */
  const char *challenger_prompt;   /* NULL: the recipe's challenger prompt; else the stem of
                                    the method's own, <stem>-<task>.md in the prompts folder */
  int challenger_schema;           /* send the challenger response_format (when the endpoint
                                    takes it); 0 for a challenger that reasons before its JSON */
  int uses_orchestrator;           /* the orchestrator role takes part (recorded prompts) */
  const char *orchestrator_prompt; /* NULL: the recipe's orchestrator prompt; else the stem of
                                      the method's own, <stem>.md in the prompts folder (the
                                      method then needs roles.orchestrator) */
  int baseline;                    /* a one-shot baseline: the gate is recorded, never looped on;
                                    the dataset keeps what the method's own rule keeps */
  int max_rounds;                  /* 0: the recipe's rounds_per_source */
  size_t state_size;               /* bytes of per-episode method state (ep_method_state) */
  /* Release what the state holds and zero it: called when a round begins and when the
   * episode is freed. NULL when the state holds nothing to release. */
  void (*reset)(void *state);
  /* The method and its settings as recorded in the run's identity (a resume with other
   * settings is refused). New reference. NULL: {"name": name}. */
  json_t *(*identity)(const struct method_ops *m, const struct bl_params *filter);
  /* Decide what follows `done` (EP_IDLE: a round begins). See the rules above. */
  void (*next)(struct episode *ep, enum ep_state done);
  /* Add the method's fields to a round's records (cand_rec always, example when one is
   * kept) just before they are written; reason/detail as given to ep_end_round. NULL:
   * none. */
  void (*annotate)(struct episode *ep, const char *reason, const char *detail, json_t *cand_rec,
                   json_t *example);
};

/* The methods, NULL-terminated, and lookup by name (NULL when unknown). */
extern const struct method_ops *const method_table[];
const struct method_ops *method_find(const char *name);

/* One of a method's own prompts (the challenger's <stem>-<task>.md, the orchestrator's
 * <stem>.md), read from the recipe's prompts folder (else the default one), compiled and
 * checked against the role's variables; `run` uses it and `validate` checks it. */
struct method_prompt {
  struct tpl_prompt tpl;
  char *path, *text;
  size_t len;
  char sha[65];
};
/* 1 when method m brings its own prompt for role (challenger or orchestrator). */
int method_has_prompt(const struct method_ops *m, enum recipe_role_id role);
/* Load it into *pr (released with method_prompt_release, also on failure). 0 or AD_E*
 * with the path in err. */
int method_prompt_load(const struct method_ops *m, const struct recipe *rc,
                       enum recipe_role_id role, struct method_prompt *pr, char *err,
                       size_t errlen);
void method_prompt_release(struct method_prompt *pr);
/* The names, NULL-terminated (for recipe_load_opts.methods), and as one phrase for
 * messages ("agentic, self-instruct or cot-self-instruct"). Static storage. */
const char *const *method_name_list(void);
const char *method_names(void);
/* The method's identity JSON (ops->identity, or {"name": name}). New reference. */
json_t *method_identity(const struct method_ops *m, const struct bl_params *filter);

extern const struct method_ops method_agentic;
extern const struct method_ops method_self_instruct;
extern const struct method_ops method_cot_self_instruct;
extern const struct method_ops method_agent;

/* ---- steps: each runs asynchronously and ends in next(ep, <its state>) ---------- */

/* The orchestrator analyses this source's earlier rounds and writes instructions for
 * the challenger. A failed call is recorded on the round; instructions stay empty. */
void ep_orchestrate(struct episode *ep);
/* The extractor (the recipe's optional `extractor` role, the first stage of a two-stage
 * challenger) reads the source once per episode: {"suitable", "reason", "extraction"}. Its
 * extraction goes to every later challenger prompt (`extraction`). Fails with "unsuitable"
 * (the document cannot ground a question: end the source with ep_end_source), or
 * "error:extractor" / "error:extractor_reply". */
void ep_extract(struct episode *ep);
/* The loop judge (the recipe's optional `loop_judge` role) reads the evaluated candidate and
 * its scores and answers {"verdict": "accept"|"improve", "reason"}; the verdict becomes the
 * statistic loop_accept (1/0) that bounds may require ("loop_accept == 1"): the program still
 * decides. Fails with "error:loop_judge" / "error:loop_judge_reply". */
void ep_loop_judge(struct episode *ep);
/* The loop judge's reason this round ("" when none). */
const char *ep_loop_reason(const struct episode *ep);
/* 1 once the extractor has judged the document (suitable or not). */
int ep_extracted(const struct episode *ep);
/* End the round and the source: as ep_end_round with keep 0, and no round follows. */
void ep_end_source(struct episode *ep, const char *reason, const char *detail);
/* The challenger writes a candidate from the source, the instructions and the feedback
 * on earlier rounds; it is parsed and checked (with one repair turn when the reply does
 * not parse). Fails with "error:challenger", "parse_error" or "check:<name>" (in that
 * last case ep_cand() is set: the candidate parsed but a programmatic check failed). */
void ep_challenge(struct episode *ep);
/* The quality verifier judges the candidate (passes at once when the recipe has none).
 * Fails with "error:quality", "error:quality_reply" or "quality:<issue>". */
void ep_quality(struct episode *ep);
/* n samples of the phase's solver (EP_WEAK, EP_STRONG; EP_FILTER draws from the strong
 * solver's role under its own labels and seeds), each judged; then the statistics of
 * weak and strong are updated. n <= 0: the role's `samples`. Fails with "error:<phase>"
 * when no sample could be judged. */
void ep_solve(struct episode *ep, enum ep_state phase, int n);
/* End the round: reason NULL when the candidate passed the acceptance gate; keep 1 to
 * put the example in the dataset. Records the round; then the next round begins, or
 * the episode finishes (examples or rounds spent) or parks (the run is stopping). */
void ep_end_round(struct episode *ep, const char *reason, const char *detail, int keep);

/* ---- several challengers per round (roles.challenger.parallel; docs/loop.md) ------------
 * ep_screen(ep, n) replaces ep_challenge + ep_quality for a round of n candidates: candidate k
 * (0-based) is asked with the seeds of candidate k and the angle line "k+1 of n" at the end of
 * its prompt (fb_angle_line), parsed (with its repair turn), checked and put to the quality
 * verifier, all n at once; questions repeated within the round fail as check:duplicate in
 * index order. Ends in next(ep, EP_SCREEN) with no candidate current; the survivors are in
 * the order of screen_order (eval/screen.h). The method then picks a candidate, which
 * becomes the current one for ep_solve, ep_loop_judge and ep_end_round; an evaluated
 * candidate that is rejected while others remain is recorded with ep_screen_reject. At the
 * round's end (ep_end_round) the candidates not recorded yet get their records, in index
 * order, with their own reasons (a survivor never evaluated: not_evaluated:accepted_earlier,
 * or not_evaluated:round_ended). */
void ep_screen(struct episode *ep, int n);
/* The round's candidates (0 in a round without ep_screen). */
int ep_screen_count(const struct episode *ep);
/* The survivor to evaluate next (the first one before any pick), or -1 when none is left. */
int ep_screen_next(const struct episode *ep);
/* Make candidate k (0..count-1, not picked before) the current one; ep_failure() is then its
 * screening failure ({NULL, ""} for a survivor). */
void ep_screen_pick(struct episode *ep, int k);
/* Record the current, evaluated candidate as rejected (reason, detail) with its own entry in
 * the next rounds' feedback, and leave no candidate current. 0, or -1: the store refused the
 * record and the episode parked (the method returns). */
int ep_screen_reject(struct episode *ep, const char *reason, const char *detail);

/* ---- what a step left (borrowed, valid until the next step starts) ------------- */

struct ep_failure {
  const char *reason; /* NULL when the last step succeeded */
  const char *detail; /* a one-line explanation, "" when none */
};
/* The last step's failure ({NULL, ""} when it succeeded). */
struct ep_failure ep_failure(const struct episode *ep);
const struct recipe *ep_recipe(const struct episode *ep);
const struct bl_params *ep_filter_params(const struct episode *ep);
const struct method_ops *ep_method(const struct episode *ep);
/* The round's candidate, or NULL when none parsed. */
const struct cand *ep_cand(const struct episode *ep);
/* The quality verifier's verdict, or NULL when there was none. */
const struct score_qv *ep_qv(const struct episode *ep);
/* Statistics of the round's weak and strong samples (filled after each solve). */
const struct accept_stats *ep_stats(const struct episode *ep);

struct ep_sample {
  int done;     /* judged or failed */
  int ok;       /* judged: score is valid */
  double score; /* in [0, 1] */
  char *answer; /* the solver's reply, or NULL */
  char *error;  /* why there is no score, or NULL */
  /* the judge call's request messages, for its repair turn (owned) */
  json_t *judge_messages;
  int judge_repaired; /* the judgement was invalid and a repair turn was asked for */
  int judge_invalid;  /* the judgement stayed invalid (the sample has an error) */
  int *met;           /* rubric tasks: the judge's verdict per criterion (n_met of them), or NULL */
  int n_met;
};
/* The samples of a phase (EP_WEAK, EP_STRONG, EP_FILTER) and their count. */
const struct ep_sample *ep_samples(const struct episode *ep, enum ep_state phase, int *n);
/* The samples a phase planned to ask for (its role's samples), which ep_samples' count is
 * below when early decisions stopped the phase once its rejection was certain. */
int ep_samples_planned(const struct episode *ep, enum ep_state phase);
/* The first sample error of a phase, or "no answer". */
const char *ep_first_error(const struct episode *ep, enum ep_state phase);
/* The method's per-episode state (ops->state_size bytes, zeroed at each round). */
void *ep_method_state(struct episode *ep);

/* ---- conversations and several candidates in one round (the agent method's seam) -----
 * A conversational method plays one round in which the orchestrator model talks to the
 * program over several turns and several candidates are made, checked and evaluated by
 * the steps above. The round's candidate state (candidate, quality verdict, samples,
 * statistics) is the current candidate's: ep_slot_take() moves it out into a slot,
 * ep_slot_put() moves a slot back in, so each step runs on the candidate put in. */

/* The orchestrator's prompt (the method's own or the recipe's) rendered for this source:
 * a new messages array, or NULL with a message in err (a template error). */
json_t *ep_orchestrator_messages(struct episode *ep, char *err, size_t errlen);
/* One orchestrator turn: messages (borrowed) with tools offered (tool_choice "auto"),
 * seeded by turn. Ends in next(ep, EP_ORCHESTRATE); ep_turn() reads the reply. */
void ep_converse(struct episode *ep, const json_t *messages, const json_t *tools, int turn);
struct ep_turn {
  int ok;                    /* 1: the model replied (content, tool_calls) */
  const char *content;       /* "" when none */
  const json_t *tool_calls;  /* as sent (untrusted), or NULL */
  const char *finish_reason; /* or NULL */
  const char *error;         /* when !ok: why */
};
/* The last turn's reply (borrowed, valid until the next step starts). */
struct ep_turn ep_turn(const struct episode *ep);
/* The instructions the next ep_challenge() passes to the challenger (copied; NULL: none). */
void ep_set_instructions(struct episode *ep, const char *text);
/* Draw the seeds of the next steps' calls for candidate `variant` (0: as every other
 * method does), so candidates of one round get independent samples. */
void ep_set_variant(struct episode *ep, int variant);
struct ep_slot;
/* Move the current candidate state out (the episode's is then empty, as at a round's
 * start). Never NULL. */
struct ep_slot *ep_slot_take(struct episode *ep);
/* Move a slot's state back in (the slot is freed); the current state must be empty. */
void ep_slot_put(struct episode *ep, struct ep_slot *s);
void ep_slot_free(struct ep_slot *s);

#endif
